-- Discovery (digest §2): operators, service providers' discovery registrations and their
-- per-operator credentials, number ranges, ported numbers, mobile-data IP ranges.
--
-- Numbers are INTEGER digits (a prefix or MSISDN never starts with 0). The number tables
-- are WITHOUT ROWID keyed by the number: the ten-million-row ported table is one B-tree,
-- read in key order by the keyset pages `mc-discovery` loads at start.

CREATE TABLE discovery_operators (
    id             TEXT    NOT NULL PRIMARY KEY,
    mcc            TEXT    NOT NULL,
    mnc            TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    country        TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    links          TEXT    NOT NULL,   -- JSON object rel -> href
    encryption_jwk TEXT,
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (mcc, mnc)
) STRICT;

CREATE TABLE discovery_apps (
    client_id     TEXT    NOT NULL PRIMARY KEY,
    secret_hash   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    short_name    TEXT    NOT NULL,
    redirect_uris TEXT    NOT NULL,   -- JSON array
    enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE discovery_credentials (
    app_id               TEXT    NOT NULL REFERENCES discovery_apps (client_id) ON DELETE CASCADE,
    operator_id          TEXT    NOT NULL REFERENCES discovery_operators (id) ON DELETE CASCADE,
    client_id            TEXT    NOT NULL,
    client_secret_sealed BLOB    NOT NULL,
    client_name          TEXT,
    updated_at           INTEGER NOT NULL,
    PRIMARY KEY (app_id, operator_id)
) STRICT;
CREATE INDEX discovery_credentials_operator ON discovery_credentials (operator_id);

-- No index on operator_id: it would double the size and import time of the ported table
-- for the one statement that needs it (deleting an operator, a rare admin step that may
-- scan).
CREATE TABLE discovery_ranges (
    number      INTEGER NOT NULL PRIMARY KEY,
    operator_id TEXT    NOT NULL REFERENCES discovery_operators (id) ON DELETE CASCADE,
    import_id   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE discovery_ported (
    number      INTEGER NOT NULL PRIMARY KEY,
    operator_id TEXT    NOT NULL REFERENCES discovery_operators (id) ON DELETE CASCADE,
    import_id   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE discovery_ip_ranges (
    cidr        TEXT NOT NULL PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES discovery_operators (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX discovery_ip_ranges_operator ON discovery_ip_ranges (operator_id);

-- One row: the change counters (every discovery write; number-table writes).
CREATE TABLE discovery_meta (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    generation         INTEGER NOT NULL,
    numbers_generation INTEGER NOT NULL
) STRICT;
INSERT INTO discovery_meta (id, generation, numbers_generation) VALUES (1, 0, 0);
