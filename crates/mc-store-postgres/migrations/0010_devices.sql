-- App push with device keys (issue 3 item 5). An enrolment code (stored by hash, taken once)
-- authorises registering one device; a device holds the public key (a P-256 JWK) that signs
-- its subscriber's approvals. Devices are revoked, never deleted.
CREATE TABLE device_enrolments (
    code_hash     TEXT   NOT NULL,
    subscriber_id TEXT   NOT NULL REFERENCES subscribers (id),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    CONSTRAINT device_enrolments_pkey PRIMARY KEY (code_hash)
);

CREATE TABLE devices (
    id            TEXT   NOT NULL,
    subscriber_id TEXT   NOT NULL REFERENCES subscribers (id),
    public_jwk    TEXT   NOT NULL,
    label         TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    CONSTRAINT devices_pkey PRIMARY KEY (id)
);

-- devices_of: a subscriber's devices, oldest first.
CREATE INDEX devices_subscriber ON devices (subscriber_id, created_at);
