-- A code reserved when the session is created (mc_store::ReservedCode): code_hash is set at
-- the insert, and approval sets code_expires_at = auth_time + code_lifetime_secs. NULL for
-- every other session (their codes are issued after approval, with their expiry).
ALTER TABLE sessions ADD COLUMN code_lifetime_secs INTEGER;
