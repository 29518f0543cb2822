-- Discovery (digest §2): operators, service providers' discovery registrations and their
-- per-operator credentials, number ranges, ported numbers, mobile-data IP ranges.
--
-- Numbers are BIGINT digits (a prefix or MSISDN never starts with 0), keyed by the number:
-- `mc-discovery` loads the tables at start in keyset pages along the primary key.

CREATE TABLE discovery_operators (
    id             TEXT    NOT NULL PRIMARY KEY,
    mcc            TEXT    NOT NULL,
    mnc            TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    country        TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    links          TEXT    NOT NULL,   -- JSON object rel -> href
    encryption_jwk TEXT,
    enabled        BOOLEAN NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    UNIQUE (mcc, mnc)
);

CREATE TABLE discovery_apps (
    client_id     TEXT    NOT NULL PRIMARY KEY,
    secret_hash   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    short_name    TEXT    NOT NULL,
    redirect_uris TEXT    NOT NULL,   -- JSON array
    enabled       BOOLEAN NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE discovery_credentials (
    app_id               TEXT    NOT NULL REFERENCES discovery_apps (client_id) ON DELETE CASCADE,
    operator_id          TEXT    NOT NULL REFERENCES discovery_operators (id) ON DELETE CASCADE,
    client_id            TEXT    NOT NULL,
    client_secret_sealed BYTEA   NOT NULL,
    client_name          TEXT,
    updated_at           BIGINT  NOT NULL,
    PRIMARY KEY (app_id, operator_id)
);
CREATE INDEX discovery_credentials_operator ON discovery_credentials (operator_id);

-- No index on operator_id: it would double the size and import time of the ported table
-- for the one statement that needs it (deleting an operator, a rare admin step that may
-- scan).
CREATE TABLE discovery_ranges (
    number      BIGINT  NOT NULL PRIMARY KEY,
    operator_id TEXT    NOT NULL REFERENCES discovery_operators (id) ON DELETE CASCADE,
    import_id   BIGINT  NOT NULL
);

CREATE TABLE discovery_ported (
    number      BIGINT  NOT NULL PRIMARY KEY,
    operator_id TEXT    NOT NULL REFERENCES discovery_operators (id) ON DELETE CASCADE,
    import_id   BIGINT  NOT NULL
);

CREATE TABLE discovery_ip_ranges (
    cidr        TEXT NOT NULL PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES discovery_operators (id) ON DELETE CASCADE
);
CREATE INDEX discovery_ip_ranges_operator ON discovery_ip_ranges (operator_id);

-- One row: the change counters (every discovery write; number-table writes).
CREATE TABLE discovery_meta (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    generation         BIGINT NOT NULL,
    numbers_generation BIGINT NOT NULL
);
INSERT INTO discovery_meta (id, generation, numbers_generation) VALUES (1, 0, 0);
