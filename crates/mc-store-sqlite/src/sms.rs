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
use rusqlite::{Row, params};

use crate::conn::{exec, immediate, query_all, query_one, query_opt};
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

fn u32_col(row: &Row<'_>, name: &str) -> StoreResult<u32> {
    let n: i64 = col(row, name)?;
    u32::try_from(n).map_err(|_| corrupt(name, n))
}

fn challenge_from_row(row: &Row<'_>) -> StoreResult<SmsChallengeRecord> {
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

fn outbox_from_row(row: &Row<'_>) -> StoreResult<SmsOutboxItem> {
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
        self.write(|conn| {
            let tx = immediate(conn)?;
            exec(
                &tx,
                sql::INSERT_CHALLENGE,
                params![
                    c.session_id,
                    c.subscriber_id,
                    c.mode.as_str(),
                    c.otp_hash,
                    c.link_hash,
                    i64::from(c.attempts),
                    c.state.as_str(),
                    c.created_at,
                    c.expires_at,
                ],
            )
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("sms challenge")))?;
            exec(
                &tx,
                sql::QUEUE_SMS,
                params![
                    c.session_id,
                    msisdn,
                    text,
                    c.created_at,
                    c.expires_at,
                    c.created_at
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_sms_challenge(&self, session_id: &str) -> StoreResult<Option<SmsChallengeRecord>> {
        self.read(|conn| query_opt(conn, sql::GET_CHALLENGE, [session_id], challenge_from_row))
            .await
    }

    async fn check_sms_otp(
        &self,
        session_id: &str,
        otp_hash: &str,
        max_attempts: u32,
        now: i64,
    ) -> StoreResult<OtpCheck> {
        self.write(|conn| {
            let matched = query_opt(
                conn,
                sql::OTP_MATCH,
                params![session_id, otp_hash, now],
                |_| Ok(()),
            )?;
            if matched.is_some() {
                return Ok(OtpCheck::Matched);
            }
            let missed = query_opt(
                conn,
                sql::OTP_MISS,
                params![i64::from(max_attempts), session_id, now],
                |row| Ok((u32_col(row, "attempts")?, col::<String>(row, "state")?)),
            )?;
            let Some((attempts, state)) = missed else {
                return Ok(OtpCheck::NotPending);
            };
            Ok(if state == SmsChallengeState::Locked.as_str() {
                OtpCheck::Locked
            } else {
                OtpCheck::Wrong {
                    remaining: max_attempts.saturating_sub(attempts),
                }
            })
        })
        .await
    }

    async fn find_sms_link(&self, link_hash: &str) -> StoreResult<LinkLookup> {
        let found = self
            .read(|conn| query_opt(conn, sql::FIND_LINK, [link_hash], challenge_from_row))
            .await?;
        Ok(match found {
            Some(challenge) => LinkLookup::Found(challenge),
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
        self.write(|conn| {
            let fresh = query_opt(
                conn,
                sql::ANSWER_LINK,
                params![answer.as_str(), link_hash, now],
                challenge_from_row,
            )?;
            if let Some(challenge) = fresh {
                return Ok(LinkAnswer::Fresh(challenge));
            }
            // Read on the writer: the answer of a click that just committed must be seen.
            Ok(
                match query_opt(conn, sql::FIND_LINK, [link_hash], challenge_from_row)? {
                    Some(challenge) => LinkAnswer::Settled(challenge),
                    None => LinkAnswer::Unknown,
                },
            )
        })
        .await
    }

    async fn lease_sms(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<SmsOutboxItem>> {
        // One statement on the single writer: no two callers lease the same row.
        let mut items = self
            .write(|conn| {
                query_all(
                    conn,
                    sql::LEASE_SMS,
                    params![now.saturating_add(lease_secs), now, now, i64::from(limit)],
                    outbox_from_row,
                )
            })
            .await?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn complete_sms(&self, id: i64) -> StoreResult<()> {
        self.write(|conn| {
            exec(conn, sql::COMPLETE_SMS, [id]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn retry_sms(&self, id: i64, next_attempt_at: i64) -> StoreResult<()> {
        self.write(|conn| {
            if exec(conn, sql::RETRY_SMS, [next_attempt_at, id]).map_err(backend)? == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn sms_outbox_len(&self) -> StoreResult<u64> {
        let n: i64 = self
            .write(|conn| query_one(conn, sql::OUTBOX_LEN, [], |row| col(row, "n")))
            .await?;
        u64::try_from(n).map_err(|_| corrupt("count", n))
    }

    async fn take_sms_velocity(
        &self,
        keys: &[VelocityKey],
        window_start: i64,
    ) -> StoreResult<Option<usize>> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            for (i, k) in keys.iter().enumerate() {
                let count: i64 = query_opt(
                    &tx,
                    sql::VELOCITY_COUNT,
                    params![k.key, window_start],
                    |row| col(row, "count"),
                )?
                .unwrap_or(0);
                if count >= i64::from(k.limit) {
                    tx.rollback().map_err(backend)?;
                    return Ok(Some(i));
                }
            }
            for k in keys {
                exec(&tx, sql::VELOCITY_TAKE, params![k.key, window_start]).map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(None)
        })
        .await
    }

    async fn purge_sms_velocity(&self, before: i64) -> StoreResult<u64> {
        self.write(|conn| exec(conn, sql::PURGE_VELOCITY, [before]).map_err(backend))
            .await
    }

    async fn purge_sms_challenges(&self, before: i64) -> StoreResult<u64> {
        self.write(|conn| exec(conn, sql::PURGE_CHALLENGES, [before]).map_err(backend))
            .await
    }

    async fn lock_sms(&self, subscriber_id: &str, now: i64) -> StoreResult<()> {
        self.write(|conn| {
            exec(conn, sql::LOCK, params![subscriber_id, now]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn sms_locked(&self, subscriber_id: &str) -> StoreResult<bool> {
        self.write(|conn| Ok(query_opt(conn, sql::LOCKED, [subscriber_id], |_| Ok(()))?.is_some()))
            .await
    }

    async fn unlock_sms(&self, subscriber_id: &str) -> StoreResult<bool> {
        self.write(|conn| Ok(exec(conn, sql::UNLOCK, [subscriber_id]).map_err(backend)? > 0))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every SMS statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn sms_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            crate::test_support::assert_no_scan(&store, statement).await;
        }
    }
}
