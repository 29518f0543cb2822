//! [`SmsStore`] on SQLite (`migrations/0008_sms.sql`).
//!
//! The code check and the link answer are single `UPDATE … RETURNING` statements, so two
//! concurrent submits cannot both pass a check the first one changed; the challenge and its
//! outbox row, and the velocity check-then-count, are `BEGIN IMMEDIATE` transactions on the
//! single writer.

use async_trait::async_trait;
use mc_store::{
    LinkAnswer, LinkLookup, OtpCheck, SmsChallengeRecord, SmsChallengeState, SmsMode,
    SmsOutboxItem, SmsStore, StoreError, StoreResult, VelocityKey,
};
use sqlx::sqlite::SqliteRow;

use crate::{SqliteStore, backend, col, corrupt, on_unique};

pub(crate) mod sql {
    macro_rules! challenge_columns {
        () => {
            "session_id, subscriber_id, mode, otp_hash, link_hash, attempts, state, created_at, \
             expires_at"
        };
    }

    pub const INSERT_CHALLENGE: &str = concat!(
        "INSERT INTO sms_challenges (",
        challenge_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    pub const QUEUE_SMS: &str = "INSERT INTO sms_outbox \
        (session_id, msisdn, text, next_attempt_at, expires_at, created_at) \
        VALUES (?, ?, ?, ?, ?, ?)";
    pub const GET_CHALLENGE: &str = concat!(
        "SELECT ",
        challenge_columns!(),
        " FROM sms_challenges WHERE session_id = ?"
    );
    /// The right code: waiting → confirmed (and confirmed stays confirmed for the same code).
    pub const OTP_MATCH: &str = "UPDATE sms_challenges SET state = 'confirmed' \
        WHERE session_id = ? AND otp_hash = ? AND expires_at > ? \
        AND state IN ('waiting', 'confirmed') RETURNING state";
    /// A wrong code: counted, locking at the limit.
    pub const OTP_MISS: &str = "UPDATE sms_challenges SET attempts = attempts + 1, \
        state = CASE WHEN attempts + 1 >= ? THEN 'locked' ELSE state END \
        WHERE session_id = ? AND otp_hash IS NOT NULL AND expires_at > ? AND state = 'waiting' \
        RETURNING attempts, state";
    pub const FIND_LINK: &str = concat!(
        "SELECT ",
        challenge_columns!(),
        " FROM sms_challenges WHERE link_hash = ?"
    );
    pub const ANSWER_LINK: &str = concat!(
        "UPDATE sms_challenges SET state = ? \
         WHERE link_hash = ? AND state = 'waiting' AND expires_at > ? RETURNING ",
        challenge_columns!()
    );
    pub const LEASE_SMS: &str = "UPDATE sms_outbox SET lease_until = ? WHERE id IN (\
            SELECT id FROM sms_outbox \
            WHERE next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
            ORDER BY next_attempt_at, id LIMIT ?) \
        RETURNING id, session_id, msisdn, text, attempts, expires_at, created_at";
    pub const COMPLETE_SMS: &str = "DELETE FROM sms_outbox WHERE id = ?";
    pub const RETRY_SMS: &str = "UPDATE sms_outbox \
        SET attempts = attempts + 1, lease_until = NULL, next_attempt_at = ? WHERE id = ?";
    pub const OUTBOX_LEN: &str = "SELECT count(*) AS n FROM sms_outbox";
    pub const VELOCITY_COUNT: &str =
        "SELECT count FROM sms_velocity WHERE key = ? AND window_start = ?";
    pub const VELOCITY_TAKE: &str = "INSERT INTO sms_velocity (key, window_start, count) \
        VALUES (?, ?, 1) ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1";
    pub const PURGE_VELOCITY: &str = "DELETE FROM sms_velocity WHERE window_start < ?";
    pub const PURGE_CHALLENGES: &str = "DELETE FROM sms_challenges WHERE expires_at < ?";
    pub const LOCK: &str = "INSERT INTO sms_locks (subscriber_id, locked_at) VALUES (?, ?) \
        ON CONFLICT (subscriber_id) DO NOTHING";
    pub const LOCKED: &str = "SELECT 1 AS one FROM sms_locks WHERE subscriber_id = ?";
    pub const UNLOCK: &str = "DELETE FROM sms_locks WHERE subscriber_id = ?";

    /// The lookups (for the query-plan test).
    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[
        GET_CHALLENGE,
        OTP_MATCH,
        OTP_MISS,
        FIND_LINK,
        ANSWER_LINK,
        LEASE_SMS,
        COMPLETE_SMS,
        RETRY_SMS,
        VELOCITY_COUNT,
        PURGE_VELOCITY,
        PURGE_CHALLENGES,
        LOCKED,
        UNLOCK,
    ];
}

fn u32_col(row: &SqliteRow, name: &str) -> StoreResult<u32> {
    let n: i64 = col(row, name)?;
    u32::try_from(n).map_err(|_| corrupt(name, n))
}

fn challenge_from_row(row: &SqliteRow) -> StoreResult<SmsChallengeRecord> {
    let mode: String = col(row, "mode")?;
    let state: String = col(row, "state")?;
    Ok(SmsChallengeRecord {
        session_id: col(row, "session_id")?,
        subscriber_id: col(row, "subscriber_id")?,
        mode: SmsMode::parse(&mode).ok_or_else(|| corrupt("sms mode", &mode))?,
        otp_hash: col(row, "otp_hash")?,
        link_hash: col(row, "link_hash")?,
        attempts: u32_col(row, "attempts")?,
        state: SmsChallengeState::parse(&state).ok_or_else(|| corrupt("sms state", &state))?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

fn outbox_from_row(row: &SqliteRow) -> StoreResult<SmsOutboxItem> {
    Ok(SmsOutboxItem {
        id: col(row, "id")?,
        session_id: col(row, "session_id")?,
        msisdn: col(row, "msisdn")?,
        text: col(row, "text")?,
        attempts: u32_col(row, "attempts")?,
        expires_at: col(row, "expires_at")?,
        created_at: col(row, "created_at")?,
    })
}

#[async_trait]
impl SmsStore for SqliteStore {
    async fn create_sms_challenge(
        &self,
        c: &SmsChallengeRecord,
        msisdn: &str,
        text: &str,
    ) -> StoreResult<()> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        sqlx::query(sql::INSERT_CHALLENGE)
            .bind(&c.session_id)
            .bind(&c.subscriber_id)
            .bind(c.mode.as_str())
            .bind(&c.otp_hash)
            .bind(&c.link_hash)
            .bind(i64::from(c.attempts))
            .bind(c.state.as_str())
            .bind(c.created_at)
            .bind(c.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("sms challenge")))?;
        sqlx::query(sql::QUEUE_SMS)
            .bind(&c.session_id)
            .bind(msisdn)
            .bind(text)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.created_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn get_sms_challenge(&self, session_id: &str) -> StoreResult<Option<SmsChallengeRecord>> {
        let row = sqlx::query(sql::GET_CHALLENGE)
            .bind(session_id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(challenge_from_row).transpose()
    }

    async fn check_sms_otp(
        &self,
        session_id: &str,
        otp_hash: &str,
        max_attempts: u32,
        now: i64,
    ) -> StoreResult<OtpCheck> {
        let matched = sqlx::query(sql::OTP_MATCH)
            .bind(session_id)
            .bind(otp_hash)
            .bind(now)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        if matched.is_some() {
            return Ok(OtpCheck::Matched);
        }
        let missed = sqlx::query(sql::OTP_MISS)
            .bind(i64::from(max_attempts))
            .bind(session_id)
            .bind(now)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        let Some(row) = missed else {
            return Ok(OtpCheck::NotPending);
        };
        let attempts = u32_col(&row, "attempts")?;
        let state: String = col(&row, "state")?;
        Ok(if state == SmsChallengeState::Locked.as_str() {
            OtpCheck::Locked
        } else {
            OtpCheck::Wrong {
                remaining: max_attempts.saturating_sub(attempts),
            }
        })
    }

    async fn find_sms_link(&self, link_hash: &str) -> StoreResult<LinkLookup> {
        let row = sqlx::query(sql::FIND_LINK)
            .bind(link_hash)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        Ok(match row {
            Some(row) => LinkLookup::Found(challenge_from_row(&row)?),
            None => LinkLookup::Unknown,
        })
    }

    async fn answer_sms_link(
        &self,
        link_hash: &str,
        answer: SmsChallengeState,
        now: i64,
    ) -> StoreResult<LinkAnswer> {
        if !matches!(
            answer,
            SmsChallengeState::Confirmed | SmsChallengeState::Rejected
        ) {
            return Err(StoreError::Backend(
                "a link answers confirm or reject".into(),
            ));
        }
        let row = sqlx::query(sql::ANSWER_LINK)
            .bind(answer.as_str())
            .bind(link_hash)
            .bind(now)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        if let Some(row) = row {
            return Ok(LinkAnswer::Fresh(challenge_from_row(&row)?));
        }
        // Read on the writer: the answer of a click that just committed must be seen.
        let row = sqlx::query(sql::FIND_LINK)
            .bind(link_hash)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        Ok(match row {
            Some(row) => LinkAnswer::Settled(challenge_from_row(&row)?),
            None => LinkAnswer::Unknown,
        })
    }

    async fn lease_sms(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<SmsOutboxItem>> {
        // One statement on the single writer: no two callers lease the same row.
        let rows = sqlx::query(sql::LEASE_SMS)
            .bind(now.saturating_add(lease_secs))
            .bind(now)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.write)
            .await
            .map_err(backend)?;
        let mut items = rows
            .iter()
            .map(outbox_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn complete_sms(&self, id: i64) -> StoreResult<()> {
        sqlx::query(sql::COMPLETE_SMS)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn retry_sms(&self, id: i64, next_attempt_at: i64) -> StoreResult<()> {
        let done = sqlx::query(sql::RETRY_SMS)
            .bind(next_attempt_at)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn sms_outbox_len(&self) -> StoreResult<u64> {
        let row = sqlx::query(sql::OUTBOX_LEN)
            .fetch_one(&self.write)
            .await
            .map_err(backend)?;
        let n: i64 = col(&row, "n")?;
        u64::try_from(n).map_err(|_| corrupt("count", n))
    }

    async fn take_sms_velocity(
        &self,
        keys: &[VelocityKey],
        window_start: i64,
    ) -> StoreResult<Option<usize>> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        for (i, k) in keys.iter().enumerate() {
            let row = sqlx::query(sql::VELOCITY_COUNT)
                .bind(&k.key)
                .bind(window_start)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            let count: i64 = match row {
                Some(row) => col(&row, "count")?,
                None => 0,
            };
            if count >= i64::from(k.limit) {
                tx.rollback().await.map_err(backend)?;
                return Ok(Some(i));
            }
        }
        for k in keys {
            sqlx::query(sql::VELOCITY_TAKE)
                .bind(&k.key)
                .bind(window_start)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(None)
    }

    async fn purge_sms_velocity(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::PURGE_VELOCITY)
            .bind(before)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn purge_sms_challenges(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::PURGE_CHALLENGES)
            .bind(before)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn lock_sms(&self, subscriber_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(sql::LOCK)
            .bind(subscriber_id)
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn sms_locked(&self, subscriber_id: &str) -> StoreResult<bool> {
        let row = sqlx::query(sql::LOCKED)
            .bind(subscriber_id)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        Ok(row.is_some())
    }

    async fn unlock_sms(&self, subscriber_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::UNLOCK)
            .bind(subscriber_id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// Every SMS statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn sms_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            let params = statement.matches('?').count();
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
            for _ in 0..params {
                query = query.bind(None::<String>);
            }
            let rows = query.fetch_all(&store.read).await.unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>("detail")).collect();
            assert!(
                plan.iter().all(|d| !d.starts_with("SCAN")),
                "{statement}: {plan:?}"
            );
        }
    }
}
