-- Signing-key lifecycle (next -> active -> retiring -> deleted) and retention purges.

-- Where a key is in its life. Keys stored before this migration were all published; the
-- newest of each use was the one in use (see below).
ALTER TABLE keys ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('next', 'active', 'retiring'));
-- next: when it is planned to start signing; active/retiring: when it started.
ALTER TABLE keys ADD COLUMN activates_at INTEGER;
-- retiring: when it stopped being used, and when it leaves the JWKS (and is deleted).
ALTER TABLE keys ADD COLUMN deactivated_at INTEGER;
ALTER TABLE keys ADD COLUMN remove_at INTEGER;

UPDATE keys SET activates_at = created_at;

-- Older keys of a use (two nodes that started at once could each store one): retiring,
-- published (signing) or decrypting (encryption) for one more week, then removed.
UPDATE keys SET state = 'retiring',
    deactivated_at = CAST(strftime('%s', 'now') AS INTEGER),
    remove_at = CAST(strftime('%s', 'now') AS INTEGER) + 604800
WHERE EXISTS (
    SELECT 1 FROM keys AS newer
    WHERE newer.key_use = keys.key_use
      AND (newer.created_at > keys.created_at
           OR (newer.created_at = keys.created_at AND newer.kid > keys.kid)));

-- One key in use and one waiting per use: two nodes rotating at once cannot both win.
CREATE UNIQUE INDEX keys_one_active_per_use ON keys (key_use) WHERE state = 'active';
CREATE UNIQUE INDEX keys_one_next_per_use ON keys (key_use) WHERE state = 'next';

-- Retention purges, oldest first, in bounded batches.
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
-- A session named by an outbox item is kept until the item is done.
CREATE INDEX outbox_session ON outbox (session_id);
