-- The gateway's schema on PostgreSQL: the same tables, keys and partial indexes as the
-- SQLite backend (its migrations 0001 and 0002 together), in portable types so that the
-- schema also runs on PostgreSQL-compatible distributed SQL (CockroachDB, YugabyteDB):
--
-- * times and counters are BIGINT (Unix seconds);
-- * lists and the client metadata are JSON in TEXT columns (the store only reads them
--   whole, so JSONB would buy nothing and costs portability);
-- * sealed keys and notification payloads are BYTEA;
-- * flags are BOOLEAN.
--
-- Every lookup the store makes goes through a primary key or one of the indexes below
-- (checked by the crate's `every_lookup_uses_an_index` test). Unique violations are
-- told apart by constraint name in the crate, so the names below are part of the code.

CREATE TABLE clients (
    client_id      TEXT   NOT NULL,
    secret_hash    TEXT   NOT NULL,
    name           TEXT   NOT NULL,
    short_name     TEXT   NOT NULL,
    redirect_uris  TEXT   NOT NULL,  -- JSON array
    allowed_scopes TEXT   NOT NULL,  -- JSON array
    grant_types    TEXT   NOT NULL,  -- JSON array
    sector         TEXT   NOT NULL,
    status         TEXT   NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at     BIGINT NOT NULL,
    -- Registration metadata beyond the basics: one JSON document (`ClientMetadata`).
    metadata       TEXT   NOT NULL DEFAULT '{}',
    CONSTRAINT clients_pkey PRIMARY KEY (client_id)
);

CREATE TABLE subscribers (
    id           TEXT    NOT NULL,
    msisdn       TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'retired')),
    pin_hash     TEXT,
    pin_failures BIGINT  NOT NULL DEFAULT 0 CHECK (pin_failures >= 0),
    pin_locked   BOOLEAN NOT NULL DEFAULT FALSE,
    capabilities TEXT    NOT NULL,    -- JSON array
    created_at   BIGINT  NOT NULL,
    CONSTRAINT subscribers_pkey PRIMARY KEY (id)
);

-- One non-retired holder per number; retired holders keep their row (number recycling).
CREATE UNIQUE INDEX subscribers_live_msisdn ON subscribers (msisdn) WHERE status <> 'retired';

CREATE TABLE pcrs (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    sector        TEXT NOT NULL,
    pcr           TEXT NOT NULL,
    CONSTRAINT pcrs_pkey PRIMARY KEY (subscriber_id, sector)
);

CREATE UNIQUE INDEX pcrs_sector_pcr ON pcrs (sector, pcr);

CREATE TABLE sessions (
    id              TEXT    NOT NULL,
    client_id       TEXT    NOT NULL REFERENCES clients (client_id),
    subscriber_id   TEXT             REFERENCES subscribers (id),
    redirect_uri    TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    nonce           TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    acr_values      TEXT    NOT NULL,
    max_age         BIGINT,
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
    auth_time       BIGINT,
    error           TEXT,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    -- Set by issue_code; not part of the AuthSession record.
    code_hash       TEXT,
    code_expires_at BIGINT,
    -- TRUE for back-channel requests (CIBA, SI), whose delivery details are in
    -- `backchannel`. Only there so the pending-expiry scan below indexes the back-channel
    -- requests alone: a front-channel session that expires stays 'pending' until its
    -- subscriber starts another.
    backchannel     BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT sessions_pkey PRIMARY KEY (id)
);

-- "One live transaction per subscriber": at most one pending row per subscriber. Stale
-- pending rows are moved to 'denied' inside the creating transaction before the insert, so
-- a violation of this index (SQLSTATE 23505) means a live one exists (StoreError::Busy).
CREATE UNIQUE INDEX sessions_one_pending_per_subscriber ON sessions (subscriber_id)
    WHERE status = 'pending';

CREATE UNIQUE INDEX sessions_code_hash ON sessions (code_hash) WHERE code_hash IS NOT NULL;

-- expire_backchannel (expires_at <= now) and pending_backchannel_count (expires_at > now).
CREATE INDEX sessions_pending_backchannel_expiry ON sessions (expires_at)
    WHERE status = 'pending' AND backchannel;

CREATE TABLE access_tokens (
    token_hash    TEXT    NOT NULL,
    session_id    TEXT             REFERENCES sessions (id),
    client_id     TEXT    NOT NULL REFERENCES clients (client_id),
    subscriber_id TEXT             REFERENCES subscribers (id),
    sub           TEXT,
    scope         TEXT    NOT NULL,
    expires_at    BIGINT  NOT NULL,
    revoked       BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT access_tokens_pkey PRIMARY KEY (token_hash)
);

CREATE INDEX access_tokens_session ON access_tokens (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE keys (
    kid            TEXT   NOT NULL,
    key_use        TEXT   NOT NULL CHECK (key_use IN ('sig', 'enc')),
    alg            TEXT   NOT NULL,
    private_sealed BYTEA  NOT NULL,
    created_at     BIGINT NOT NULL,
    CONSTRAINT keys_pkey PRIMARY KEY (kid)
);

-- The back-channel side of a session (keyed by the session id, the `auth_req_id`).
CREATE TABLE backchannel (
    auth_req_id           TEXT   NOT NULL REFERENCES sessions (id),
    kind                  TEXT   NOT NULL CHECK (kind IN ('ciba', 'si')),
    -- An SI notification request is 'push'.
    mode                  TEXT   NOT NULL CHECK (mode IN ('poll', 'ping', 'push')),
    notification_endpoint TEXT,
    notification_token    TEXT,
    -- Seconds between two polls; grows by 5 on every slow_down. (`interval` is a type
    -- name in SQL, hence the longer name.)
    poll_interval         BIGINT NOT NULL CHECK (poll_interval >= 0),
    last_poll_at          BIGINT,
    CONSTRAINT backchannel_pkey PRIMARY KEY (auth_req_id)
);

-- Notifications to deliver. A worker leases an item (lease_until) so that one worker at a
-- time works on it; a failed attempt releases the lease and pushes next_attempt_at back.
-- Several gateway processes lease concurrently with FOR UPDATE SKIP LOCKED.
CREATE TABLE outbox (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY,
    session_id      TEXT   NOT NULL REFERENCES sessions (id),
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    payload         BYTEA,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    CONSTRAINT outbox_pkey PRIMARY KEY (id)
);

-- The due-scan of lease_outbox (next_attempt_at <= now, oldest first).
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

-- Client assertion ids seen (RFC 7523 §3), kept until the assertion expires.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT client_assertion_jtis_pkey PRIMARY KEY (client_id, jti)
);

-- The purge of expired ids that remember_jti runs first.
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);
