-- Consent (seed 000: nothing shared without consent). One row per (subscriber, client):
-- created by the subscriber's first approved login at that client (first_seen), holding the
-- consent items given so far (attribute scopes and `claim:<name>` entries, a JSON array).
-- Revoking empties the list, sets revoked_at and revokes the client's tokens for the
-- subscriber in the same transaction.
CREATE TABLE consents (
    subscriber_id TEXT    NOT NULL REFERENCES subscribers (id),
    client_id     TEXT    NOT NULL REFERENCES clients (client_id),
    scopes        TEXT    NOT NULL DEFAULT '[]',  -- JSON array, sorted
    first_seen    INTEGER NOT NULL,
    given_at      INTEGER,
    channel       TEXT    CHECK (channel IN ('phone', 'browser')),
    revoked_at    INTEGER,
    PRIMARY KEY (subscriber_id, client_id)
) STRICT, WITHOUT ROWID;

-- revoke_consent: the tokens of one client for one subscriber.
CREATE INDEX access_tokens_subscriber_client ON access_tokens (subscriber_id, client_id)
    WHERE subscriber_id IS NOT NULL;

-- revoke_consent: the refresh tokens (0003_token_manager) of one client for one subscriber.
CREATE INDEX refresh_tokens_subscriber_client ON refresh_tokens (subscriber_id, client_id)
    WHERE subscriber_id IS NOT NULL;
