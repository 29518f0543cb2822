//! [`SmsStore`] on PostgreSQL (`migrations/0008_sms.sql`).
//!
//! The code check and the link answer are single `UPDATE … RETURNING` statements (the row
//! lock orders concurrent submits, on any node); the outbox is leased with
//! `FOR UPDATE SKIP LOCKED`; a challenge and its SMS are one transaction; the velocity
//! counters are locked in key order (no deadlock between two takers) before they are
//! checked and counted. Everything runs through the crate's serialization-failure retry.

use async_trait::async_trait;
use mc_store::{
    LinkAnswer, LinkLookup, OtpCheck, SmsChallengeRecord, SmsChallengeState, SmsMode,
    SmsOutboxItem, SmsStore, StoreError, StoreResult, VelocityKey,
};
use sqlx::postgres::PgRow;

use crate::{Attempt, PgStore, backend, col, corrupt, count, on_unique, retrying};

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
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    pub const QUEUE_SMS: &str = "INSERT INTO sms_outbox \
        (session_id, msisdn, text, next_attempt_at, expires_at, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6)";
    pub const GET_CHALLENGE: &str = concat!(
        "SELECT ",
        challenge_columns!(),
        " FROM sms_challenges WHERE session_id = $1"
    );
    pub const OTP_MATCH: &str = "UPDATE sms_challenges SET state = 'confirmed' \
        WHERE session_id = $1 AND otp_hash = $2 AND expires_at > $3 \
        AND state IN ('waiting', 'confirmed') RETURNING state";
    pub const OTP_MISS: &str = "UPDATE sms_challenges SET attempts = attempts + 1, \
        state = CASE WHEN attempts + 1 >= $1 THEN 'locked' ELSE state END \
        WHERE session_id = $2 AND otp_hash IS NOT NULL AND expires_at > $3 AND state = 'waiting' \
        RETURNING attempts, state";
    pub const FIND_LINK: &str = concat!(
        "SELECT ",
        challenge_columns!(),
        " FROM sms_challenges WHERE link_hash = $1"
    );
    pub const ANSWER_LINK: &str = concat!(
        "UPDATE sms_challenges SET state = $1 \
         WHERE link_hash = $2 AND state = 'waiting' AND expires_at > $3 RETURNING ",
        challenge_columns!()
    );
    pub const LEASE_SMS: &str = "UPDATE sms_outbox SET lease_until = $1 WHERE id = ANY(ARRAY(\
            SELECT id FROM sms_outbox \
            WHERE next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $3) \
            ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)) \
        RETURNING id, session_id, msisdn, text, attempts, expires_at, created_at";
    pub const COMPLETE_SMS: &str = "DELETE FROM sms_outbox WHERE id = $1";
    pub const RETRY_SMS: &str = "UPDATE sms_outbox \
        SET attempts = attempts + 1, lease_until = NULL, next_attempt_at = $1 WHERE id = $2";
    pub const OUTBOX_LEN: &str = "SELECT count(*) AS n FROM sms_outbox";
    pub const VELOCITY_ENSURE: &str = "INSERT INTO sms_velocity (key, window_start, count) \
        VALUES ($1, $2, 0) ON CONFLICT (key, window_start) DO NOTHING";
    pub const VELOCITY_LOCK: &str =
        "SELECT count FROM sms_velocity WHERE key = $1 AND window_start = $2 FOR UPDATE";
    pub const VELOCITY_TAKE: &str =
        "UPDATE sms_velocity SET count = count + 1 WHERE key = $1 AND window_start = $2";
    pub const PURGE_VELOCITY: &str = "DELETE FROM sms_velocity WHERE window_start < $1";
    pub const PURGE_CHALLENGES: &str = "DELETE FROM sms_challenges WHERE expires_at < $1";
    pub const LOCK: &str = "INSERT INTO sms_locks (subscriber_id, locked_at) VALUES ($1, $2) \
        ON CONFLICT (subscriber_id) DO NOTHING";
    pub const LOCKED: &str = "SELECT 1 AS one FROM sms_locks WHERE subscriber_id = $1";
    pub const UNLOCK: &str = "DELETE FROM sms_locks WHERE subscriber_id = $1";
}

fn u32_col(row: &PgRow, name: &str) -> StoreResult<u32> {
    let n: i64 = col(row, name)?;
    u32::try_from(n).map_err(|_| corrupt(name, n))
}

fn challenge_from_row(row: &PgRow) -> StoreResult<SmsChallengeRecord> {
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

fn outbox_from_row(row: &PgRow) -> StoreResult<SmsOutboxItem> {
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

impl PgStore {
    async fn create_sms_challenge_once(
        &self,
        c: &SmsChallengeRecord,
        msisdn: &str,
        text: &str,
    ) -> Attempt<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
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
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn check_sms_otp_once(
        &self,
        session_id: &str,
        otp_hash: &str,
        max_attempts: u32,
        now: i64,
    ) -> Attempt<OtpCheck> {
        let matched = sqlx::query(sql::OTP_MATCH)
            .bind(session_id)
            .bind(otp_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        if matched.is_some() {
            return Ok(OtpCheck::Matched);
        }
        let missed = sqlx::query(sql::OTP_MISS)
            .bind(i64::from(max_attempts))
            .bind(session_id)
            .bind(now)
            .fetch_optional(&self.pool)
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

    async fn answer_sms_link_once(
        &self,
        link_hash: &str,
        answer: SmsChallengeState,
        now: i64,
    ) -> Attempt<LinkAnswer> {
        let row = sqlx::query(sql::ANSWER_LINK)
            .bind(answer.as_str())
            .bind(link_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        if let Some(row) = row {
            return Ok(LinkAnswer::Fresh(challenge_from_row(&row)?));
        }
        let row = sqlx::query(sql::FIND_LINK)
            .bind(link_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(match row {
            Some(row) => LinkAnswer::Settled(challenge_from_row(&row)?),
            None => LinkAnswer::Unknown,
        })
    }

    async fn take_sms_velocity_once(
        &self,
        keys: &[VelocityKey],
        window_start: i64,
    ) -> Attempt<Option<usize>> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|a, b| keys[*a].key.cmp(&keys[*b].key));
        let mut counts = vec![0i64; keys.len()];
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for &i in &order {
            sqlx::query(sql::VELOCITY_ENSURE)
                .bind(&keys[i].key)
                .bind(window_start)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let row = sqlx::query(sql::VELOCITY_LOCK)
                .bind(&keys[i].key)
                .bind(window_start)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            counts[i] = col(&row, "count")?;
        }
        if let Some(full) = (0..keys.len()).find(|&i| counts[i] >= i64::from(keys[i].limit)) {
            tx.rollback().await.map_err(backend)?;
            return Ok(Some(full));
        }
        for &i in &order {
            sqlx::query(sql::VELOCITY_TAKE)
                .bind(&keys[i].key)
                .bind(window_start)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(None)
    }

    async fn lease_sms_once(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> Attempt<Vec<SmsOutboxItem>> {
        let rows = sqlx::query(sql::LEASE_SMS)
            .bind(now.saturating_add(lease_secs))
            .bind(now)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut items = rows
            .iter()
            .map(outbox_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn exec_count(&self, statement: &'static str, a: &str) -> Attempt<u64> {
        let done = sqlx::query(statement)
            .bind(a)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn exec_count_i64(&self, statement: &'static str, a: i64) -> Attempt<u64> {
        let done = sqlx::query(statement)
            .bind(a)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SmsStore for PgStore {
    async fn create_sms_challenge(
        &self,
        c: &SmsChallengeRecord,
        msisdn: &str,
        text: &str,
    ) -> StoreResult<()> {
        retrying("create_sms_challenge", move || {
            self.create_sms_challenge_once(c, msisdn, text)
        })
        .await
    }

    async fn get_sms_challenge(&self, session_id: &str) -> StoreResult<Option<SmsChallengeRecord>> {
        let row = sqlx::query(sql::GET_CHALLENGE)
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend(e).error)?;
        row.as_ref().map(challenge_from_row).transpose()
    }

    async fn check_sms_otp(
        &self,
        session_id: &str,
        otp_hash: &str,
        max_attempts: u32,
        now: i64,
    ) -> StoreResult<OtpCheck> {
        retrying("check_sms_otp", move || {
            self.check_sms_otp_once(session_id, otp_hash, max_attempts, now)
        })
        .await
    }

    async fn find_sms_link(&self, link_hash: &str) -> StoreResult<LinkLookup> {
        let row = sqlx::query(sql::FIND_LINK)
            .bind(link_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend(e).error)?;
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
        retrying("answer_sms_link", move || {
            self.answer_sms_link_once(link_hash, answer, now)
        })
        .await
    }

    async fn lease_sms(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<SmsOutboxItem>> {
        retrying("lease_sms", move || {
            self.lease_sms_once(now, lease_secs, limit)
        })
        .await
    }

    async fn complete_sms(&self, id: i64) -> StoreResult<()> {
        retrying("complete_sms", move || {
            self.exec_count_i64(sql::COMPLETE_SMS, id)
        })
        .await?;
        Ok(())
    }

    async fn retry_sms(&self, id: i64, next_attempt_at: i64) -> StoreResult<()> {
        let done = retrying("retry_sms", move || async move {
            let done = sqlx::query(sql::RETRY_SMS)
                .bind(next_attempt_at)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected())
        })
        .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn sms_outbox_len(&self) -> StoreResult<u64> {
        let row = sqlx::query(sql::OUTBOX_LEN)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| backend(e).error)?;
        count(&row, "n")
    }

    async fn take_sms_velocity(
        &self,
        keys: &[VelocityKey],
        window_start: i64,
    ) -> StoreResult<Option<usize>> {
        retrying("take_sms_velocity", move || {
            self.take_sms_velocity_once(keys, window_start)
        })
        .await
    }

    async fn purge_sms_velocity(&self, before: i64) -> StoreResult<u64> {
        retrying("purge_sms_velocity", move || {
            self.exec_count_i64(sql::PURGE_VELOCITY, before)
        })
        .await
    }

    async fn purge_sms_challenges(&self, before: i64) -> StoreResult<u64> {
        retrying("purge_sms_challenges", move || {
            self.exec_count_i64(sql::PURGE_CHALLENGES, before)
        })
        .await
    }

    async fn lock_sms(&self, subscriber_id: &str, now: i64) -> StoreResult<()> {
        retrying("lock_sms", move || async move {
            sqlx::query(sql::LOCK)
                .bind(subscriber_id)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn sms_locked(&self, subscriber_id: &str) -> StoreResult<bool> {
        let row = sqlx::query(sql::LOCKED)
            .bind(subscriber_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend(e).error)?;
        Ok(row.is_some())
    }

    async fn unlock_sms(&self, subscriber_id: &str) -> StoreResult<bool> {
        let n = retrying("unlock_sms", move || {
            self.exec_count(sql::UNLOCK, subscriber_id)
        })
        .await?;
        Ok(n > 0)
    }
}
