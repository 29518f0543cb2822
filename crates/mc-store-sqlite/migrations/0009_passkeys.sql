-- Passkeys (FIDO2 / WebAuthn credentials) of subscribers. `passkey` is the relying party's
-- serialized credential (JSON, opaque to the store); `counter` is kept beside it so a use is
-- recorded with one conditional UPDATE (the counter must grow, WebAuthn §6.1.1).
CREATE TABLE passkeys (
    credential_id TEXT    NOT NULL PRIMARY KEY,  -- base64url, unique across subscribers
    subscriber_id TEXT    NOT NULL REFERENCES subscribers (id),
    passkey       TEXT    NOT NULL,
    counter       INTEGER NOT NULL DEFAULT 0 CHECK (counter >= 0),
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
) STRICT, WITHOUT ROWID;

-- passkeys_of, delete_passkey.
CREATE INDEX passkeys_subscriber ON passkeys (subscriber_id, created_at);

-- Pending WebAuthn ceremonies (registration, authentication, and the "offer" a login's
-- waiting page looks for). Short-lived: taken once, expired ones removed on every insert.
CREATE TABLE passkey_ceremonies (
    id            TEXT    NOT NULL PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('registration', 'authentication', 'offer')),
    subscriber_id TEXT    NOT NULL REFERENCES subscribers (id),
    session_id    TEXT,
    state         TEXT    NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- put_ceremony's purge of expired ceremonies.
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_at);
