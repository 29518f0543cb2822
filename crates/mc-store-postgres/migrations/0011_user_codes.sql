-- CIBA user codes (CIBA Core §7.1): one per subscriber, hashed, with a failure count that
-- locks the code until provisioning sets a new one.
CREATE TABLE subscriber_user_codes (
    subscriber_id TEXT    NOT NULL PRIMARY KEY REFERENCES subscribers (id) ON DELETE CASCADE,
    code_hash     TEXT    NOT NULL,
    failures      BIGINT NOT NULL DEFAULT 0,
    locked        BOOLEAN NOT NULL DEFAULT FALSE
);
