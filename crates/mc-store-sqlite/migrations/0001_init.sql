-- The gateway's schema. Times are Unix seconds; lists are JSON arrays of strings in TEXT
-- columns. Every lookup the store makes goes through a primary key or one of the indexes
-- below (checked by the crate's `every_lookup_uses_an_index` test).

CREATE TABLE clients (
    client_id      TEXT    NOT NULL PRIMARY KEY,
    secret_hash    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    short_name     TEXT    NOT NULL,
    redirect_uris  TEXT    NOT NULL,  -- JSON array
    allowed_scopes TEXT    NOT NULL,  -- JSON array
    grant_types    TEXT    NOT NULL,  -- JSON array
    sector         TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE subscribers (
    id           TEXT    NOT NULL PRIMARY KEY,
    msisdn       TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'retired')),
    pin_hash     TEXT,
    pin_failures INTEGER NOT NULL DEFAULT 0 CHECK (pin_failures >= 0),
    pin_locked   INTEGER NOT NULL DEFAULT 0 CHECK (pin_locked IN (0, 1)),
    capabilities TEXT    NOT NULL,    -- JSON array
    created_at   INTEGER NOT NULL
) STRICT;

-- One non-retired holder per number; retired holders keep their row (number recycling).
CREATE UNIQUE INDEX subscribers_live_msisdn ON subscribers (msisdn) WHERE status <> 'retired';

CREATE TABLE pcrs (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    sector        TEXT NOT NULL,
    pcr           TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, sector)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX pcrs_sector_pcr ON pcrs (sector, pcr);

CREATE TABLE sessions (
    id              TEXT    NOT NULL PRIMARY KEY,
    client_id       TEXT    NOT NULL REFERENCES clients (client_id),
    subscriber_id   TEXT             REFERENCES subscribers (id),
    redirect_uri    TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    nonce           TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    acr_values      TEXT    NOT NULL,
    max_age         INTEGER,
    claims          TEXT,
    client_name     TEXT    NOT NULL,
    context         TEXT,
    binding_message TEXT,
    correlation_id  TEXT,
    code_challenge  TEXT,
    status          TEXT    NOT NULL CHECK (status IN
                        ('awaiting_number', 'pending', 'approved', 'denied', 'code_issued', 'consumed')),
    acr             TEXT,
    amr             TEXT    NOT NULL DEFAULT '[]',  -- JSON array
    auth_time       INTEGER,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    -- Set by issue_code; not part of the AuthSession record.
    code_hash       TEXT,
    code_expires_at INTEGER
) STRICT;

-- "One live transaction per subscriber": at most one pending row per subscriber. Stale
-- pending rows are moved to 'denied' inside the creating transaction before the insert, so
-- a violation of this index means a live one exists (StoreError::Busy).
CREATE UNIQUE INDEX sessions_one_pending_per_subscriber ON sessions (subscriber_id)
    WHERE status = 'pending';

CREATE UNIQUE INDEX sessions_code_hash ON sessions (code_hash) WHERE code_hash IS NOT NULL;

CREATE TABLE access_tokens (
    token_hash    TEXT    NOT NULL PRIMARY KEY,
    session_id    TEXT             REFERENCES sessions (id),
    client_id     TEXT    NOT NULL REFERENCES clients (client_id),
    subscriber_id TEXT             REFERENCES subscribers (id),
    sub           TEXT,
    scope         TEXT    NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
) STRICT;

CREATE INDEX access_tokens_session ON access_tokens (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE keys (
    kid            TEXT    NOT NULL PRIMARY KEY,
    key_use        TEXT    NOT NULL CHECK (key_use IN ('sig', 'enc')),
    alg            TEXT    NOT NULL,
    private_sealed BLOB    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
