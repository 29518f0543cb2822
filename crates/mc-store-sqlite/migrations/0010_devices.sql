-- App push with device keys (issue 3 item 5). An enrolment code (stored by hash, taken once)
-- authorises registering one device; a device holds the public key (a P-256 JWK) that signs
-- its subscriber's approvals. Devices are revoked, never deleted.
CREATE TABLE device_enrolments (
    code_hash     TEXT    PRIMARY KEY,
    subscriber_id TEXT    NOT NULL REFERENCES subscribers (id),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE devices (
    id            TEXT    PRIMARY KEY,
    subscriber_id TEXT    NOT NULL REFERENCES subscribers (id),
    public_jwk    TEXT    NOT NULL,
    label         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
) STRICT, WITHOUT ROWID;

-- devices_of: a subscriber's devices, oldest first.
CREATE INDEX devices_subscriber ON devices (subscriber_id, created_at);
