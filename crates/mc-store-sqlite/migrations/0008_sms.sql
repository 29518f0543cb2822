-- The SMS authenticator (mc_store::SmsStore). No foreign keys to sessions: retention purges
-- sessions and SMS rows on their own schedules.

-- One challenge per login session: the code and the link token only as hashes.
CREATE TABLE sms_challenges (
    session_id    TEXT    NOT NULL PRIMARY KEY,
    subscriber_id TEXT    NOT NULL,
    mode          TEXT    NOT NULL CHECK (mode IN ('otp', 'url', 'otp_url')),
    otp_hash      TEXT,
    link_hash     TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    state         TEXT    NOT NULL CHECK (state IN ('waiting', 'confirmed', 'rejected', 'locked')),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- find_sms_link / answer_sms_link: a link names one challenge.
CREATE UNIQUE INDEX sms_challenges_link ON sms_challenges (link_hash) WHERE link_hash IS NOT NULL;
-- purge_sms_challenges.
CREATE INDEX sms_challenges_expiry ON sms_challenges (expires_at);

-- The durable SMS outbox: written with its challenge, deleted once the SMSC took it.
CREATE TABLE sms_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      TEXT    NOT NULL,
    msisdn          TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

-- The due-scan of lease_sms.
CREATE INDEX sms_outbox_due ON sms_outbox (next_attempt_at, id);

-- SMS velocity (pumping protection): one counter per key and fixed window.
CREATE TABLE sms_velocity (
    key          TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (key, window_start)
) STRICT, WITHOUT ROWID;

-- purge_sms_velocity.
CREATE INDEX sms_velocity_window ON sms_velocity (window_start);

-- Subscribers whose SMS codes are locked (too many wrong codes) until provisioning lifts it.
CREATE TABLE sms_locks (
    subscriber_id TEXT    NOT NULL PRIMARY KEY,
    locked_at     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
