//! [`RetentionStore`] on PostgreSQL. Each purge deletes at most `limit` rows found through
//! an index, oldest first (`migrations/0004_key_lifecycle_retention.sql`); the rows are
//! taken with `FOR UPDATE SKIP LOCKED`, so nodes purging at once share the work instead of
//! waiting on each other, and a row some request holds is left for the next round.

use async_trait::async_trait;
use mc_store::{RetentionStore, StoreResult};
use sqlx::Connection;

use crate::{PgStore, backend, retrying};

pub(crate) mod sql {
    /// Through `sessions_expiry`; the `NOT EXISTS` checks through `access_tokens_session`
    /// and `outbox_session`.
    pub const PURGEABLE_SESSIONS: &str = "SELECT id FROM sessions \
        WHERE expires_at <= $1 AND NOT (status = 'pending' AND backchannel) \
          AND NOT EXISTS (SELECT 1 FROM access_tokens WHERE access_tokens.session_id = sessions.id) \
          AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.session_id = sessions.id) \
        ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED";
    pub const DELETE_BACKCHANNEL: &str = "DELETE FROM backchannel WHERE auth_req_id = ANY($1)";
    pub const DELETE_SESSIONS: &str = "DELETE FROM sessions WHERE id = ANY($1)";
    /// Through `access_tokens_expiry`.
    pub const PURGE_ACCESS_TOKENS: &str = "DELETE FROM access_tokens WHERE token_hash = ANY(ARRAY(\
        SELECT token_hash FROM access_tokens WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 \
        FOR UPDATE SKIP LOCKED))";
    /// Through `refresh_tokens_expiry`.
    pub const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE token_hash = ANY(ARRAY(\
        SELECT token_hash FROM refresh_tokens WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 \
        FOR UPDATE SKIP LOCKED))";
    /// Through `client_assertion_jtis_expiry`.
    pub const PURGE_JTIS: &str = "DELETE FROM client_assertion_jtis WHERE (client_id, jti) IN (\
        SELECT client_id, jti FROM client_assertion_jtis WHERE expires_at <= $1 \
        ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";
    /// Through `outbox_due`.
    pub const PURGE_OUTBOX: &str = "DELETE FROM outbox WHERE id = ANY(ARRAY(\
        SELECT id FROM outbox WHERE next_attempt_at <= $1 \
          AND (lease_until IS NULL OR lease_until <= $2) ORDER BY next_attempt_at, id LIMIT $3 \
        FOR UPDATE SKIP LOCKED))";
}

impl PgStore {
    async fn purge_batch(
        &self,
        what: &'static str,
        statement: &'static str,
        before: i64,
        limit: u32,
    ) -> StoreResult<u64> {
        retrying(what, move || async move {
            let done = sqlx::query(statement)
                .bind(before)
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected())
        })
        .await
    }
}

#[async_trait]
impl RetentionStore for PgStore {
    async fn purge_sessions(&self, before: i64, limit: u32) -> StoreResult<u64> {
        retrying("purge_sessions", move || async move {
            let mut conn = self.pool.acquire().await.map_err(backend)?;
            let mut tx = conn.begin().await.map_err(backend)?;
            let ids: Vec<String> = sqlx::query_scalar(sql::PURGEABLE_SESSIONS)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
            if ids.is_empty() {
                tx.rollback().await.map_err(backend)?;
                return Ok(0);
            }
            sqlx::query(sql::DELETE_BACKCHANNEL)
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let done = sqlx::query(sql::DELETE_SESSIONS)
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn purge_access_tokens(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.purge_batch(
            "purge_access_tokens",
            sql::PURGE_ACCESS_TOKENS,
            before,
            limit,
        )
        .await
    }

    async fn purge_refresh_tokens(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.purge_batch(
            "purge_refresh_tokens",
            sql::PURGE_REFRESH_TOKENS,
            before,
            limit,
        )
        .await
    }

    async fn purge_assertion_jtis(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.purge_batch("purge_assertion_jtis", sql::PURGE_JTIS, before, limit)
            .await
    }

    async fn purge_outbox(&self, before: i64, now: i64, limit: u32) -> StoreResult<u64> {
        retrying("purge_outbox", move || async move {
            let done = sqlx::query(sql::PURGE_OUTBOX)
                .bind(before)
                .bind(now)
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected())
        })
        .await
    }
}
