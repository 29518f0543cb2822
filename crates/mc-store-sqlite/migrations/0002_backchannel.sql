-- Server-initiated (back-channel) login: CIBA Core 1.0 and Mobile Connect SI.
--
-- A back-channel request is a row of `sessions` (so the one-pending-per-subscriber index
-- covers both channels, and the phone finds it with `pending_for_subscriber`) plus a row of
-- `backchannel` keyed by the session id (the `auth_req_id`). Notifications to clients are
-- rows of `outbox`, inserted in the transaction that changes the session.

-- Registration metadata beyond the basics: one JSON document (`ClientMetadata`).
ALTER TABLE clients ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';

-- 1 for back-channel sessions. Only there so the pending-expiry scan below indexes the
-- back-channel requests alone: a front-channel session that expires stays 'pending' until
-- its subscriber starts another, so an index over every pending session would fill up with
-- those and `expire_backchannel` would walk through them on every run.
ALTER TABLE sessions ADD COLUMN backchannel INTEGER NOT NULL DEFAULT 0
    CHECK (backchannel IN (0, 1));

-- expire_backchannel (expires_at <= now) and pending_backchannel_count (expires_at > now).
-- Expired back-channel requests leave 'pending' as expire_backchannel runs, so the index
-- holds the live requests plus the few that expired since the last run.
CREATE INDEX sessions_pending_backchannel_expiry ON sessions (expires_at)
    WHERE status = 'pending' AND backchannel = 1;

CREATE TABLE backchannel (
    auth_req_id           TEXT    NOT NULL PRIMARY KEY REFERENCES sessions (id),
    kind                  TEXT    NOT NULL CHECK (kind IN ('ciba', 'si')),
    -- An SI notification request is 'push'.
    mode                  TEXT    NOT NULL CHECK (mode IN ('poll', 'ping', 'push')),
    notification_endpoint TEXT,
    notification_token    TEXT,
    -- Seconds between two polls; grows by 5 on every slow_down.
    interval              INTEGER NOT NULL CHECK (interval >= 0),
    last_poll_at          INTEGER
) STRICT, WITHOUT ROWID;

-- Notifications to deliver. A worker leases an item (lease_until) so that one worker at a
-- time works on it; a failed attempt releases the lease and pushes next_attempt_at back.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      TEXT    NOT NULL REFERENCES sessions (id),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    payload         BLOB,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL
) STRICT;

-- The due-scan of lease_outbox (next_attempt_at <= now, oldest first).
CREATE INDEX outbox_due ON outbox (next_attempt_at);

-- Client assertion ids seen (RFC 7523 §3), kept until the assertion expires.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) STRICT, WITHOUT ROWID;

-- The purge of expired ids that remember_jti runs first.
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);
