-- Token Manager (refresh tokens, introspection, revocation) and the Access Gateway's
-- per-day quota counters.

-- When an access token was issued (introspection `iat`; 0 for older rows) and the refresh
-- family it belongs to: a reused refresh token revokes its whole family.
ALTER TABLE access_tokens ADD COLUMN issued_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE access_tokens ADD COLUMN family_id TEXT;
CREATE INDEX access_tokens_family ON access_tokens (family_id) WHERE family_id IS NOT NULL;

-- Refresh tokens, stored by hash. One family per grant (login): every rotation adds a row
-- in the family and marks the presented one 'rotated'; presenting a 'rotated' one again is
-- reuse, and the family is revoked. `session_id` is not a foreign key: a family outlives
-- the login's session row.
CREATE TABLE refresh_tokens (
    token_hash    TEXT    NOT NULL PRIMARY KEY,
    family_id     TEXT    NOT NULL,
    client_id     TEXT    NOT NULL REFERENCES clients (client_id),
    session_id    TEXT,
    subscriber_id TEXT,
    sub           TEXT,
    scope         TEXT    NOT NULL,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'rotated', 'revoked'))
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- A replayed authorization code revokes what its login issued, refresh tokens included.
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id) WHERE session_id IS NOT NULL;

-- Calls per client per UTC day (days since the epoch), counted atomically so several
-- gateway processes share one quota.
CREATE TABLE quota_days (
    client_id TEXT    NOT NULL,
    day       BIGINT NOT NULL,
    calls     BIGINT NOT NULL,
    PRIMARY KEY (client_id, day)
);

CREATE INDEX quota_days_day ON quota_days (day);
