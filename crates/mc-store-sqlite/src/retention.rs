//! [`RetentionStore`] on SQLite. Each purge is one short write of at most `limit` rows
//! found through an index, oldest first (`migrations/0004_key_lifecycle_retention.sql`), so
//! the single writer is never held long; the caller loops.

use async_trait::async_trait;
use mc_store::{RetentionStore, StoreResult};

use crate::{SqliteStore, backend};

pub(crate) mod sql {
    /// Through `sessions_expiry`; the `NOT EXISTS` checks through `access_tokens_session`
    /// and `outbox_session`.
    pub const PURGEABLE_SESSIONS: &str = "SELECT id FROM sessions \
        WHERE expires_at <= ? AND NOT (status = 'pending' AND backchannel = 1) \
          AND NOT EXISTS (SELECT 1 FROM access_tokens WHERE access_tokens.session_id = sessions.id) \
          AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.session_id = sessions.id) \
        ORDER BY expires_at LIMIT ?";
    pub const DELETE_BACKCHANNEL: &str = "DELETE FROM backchannel WHERE auth_req_id = ?";
    pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = ?";
    /// Through `access_tokens_expiry`.
    pub const PURGE_ACCESS_TOKENS: &str = "DELETE FROM access_tokens WHERE token_hash IN \
        (SELECT token_hash FROM access_tokens WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)";
    /// Through `refresh_tokens_expiry`.
    pub const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE token_hash IN \
        (SELECT token_hash FROM refresh_tokens WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)";
    /// Through `client_assertion_jtis_expiry`.
    pub const PURGE_JTIS: &str = "DELETE FROM client_assertion_jtis WHERE (client_id, jti) IN \
        (SELECT client_id, jti FROM client_assertion_jtis WHERE expires_at <= ? \
         ORDER BY expires_at LIMIT ?)";
    /// Through `outbox_due`.
    pub const PURGE_OUTBOX: &str = "DELETE FROM outbox WHERE id IN \
        (SELECT id FROM outbox WHERE next_attempt_at <= ? \
           AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt_at LIMIT ?)";

    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[
        PURGEABLE_SESSIONS,
        DELETE_BACKCHANNEL,
        DELETE_SESSION,
        PURGE_ACCESS_TOKENS,
        PURGE_REFRESH_TOKENS,
        PURGE_JTIS,
        PURGE_OUTBOX,
    ];
}

impl SqliteStore {
    async fn purge_batch(
        &self,
        statement: &'static str,
        before: i64,
        limit: u32,
    ) -> StoreResult<u64> {
        let done = sqlx::query(statement)
            .bind(before)
            .bind(i64::from(limit))
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn purge_sessions(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let ids: Vec<String> = sqlx::query_scalar(sql::PURGEABLE_SESSIONS)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let mut deleted = 0;
        for id in &ids {
            sqlx::query(sql::DELETE_BACKCHANNEL)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            deleted += sqlx::query(sql::DELETE_SESSION)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn purge_access_tokens(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.purge_batch(sql::PURGE_ACCESS_TOKENS, before, limit)
            .await
    }

    async fn purge_refresh_tokens(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.purge_batch(sql::PURGE_REFRESH_TOKENS, before, limit)
            .await
    }

    async fn purge_assertion_jtis(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.purge_batch(sql::PURGE_JTIS, before, limit).await
    }

    async fn purge_outbox(&self, before: i64, now: i64, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(sql::PURGE_OUTBOX)
            .bind(before)
            .bind(now)
            .bind(i64::from(limit))
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sqlx::Row;

    use super::*;

    async fn plan(store: &SqliteStore, statement: &str) -> Vec<String> {
        let params = statement.matches('?').count();
        let explain = format!("EXPLAIN QUERY PLAN {statement}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
        for _ in 0..params {
            query = query.bind(None::<String>);
        }
        let rows = query.fetch_all(&store.read).await.unwrap();
        rows.iter().map(|r| r.get::<String, _>("detail")).collect()
    }

    /// Every purge and key statement searches a key or an index (never a table scan).
    #[tokio::test]
    async fn purge_and_key_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS.iter().chain(crate::keys::sql::LOOKUPS) {
            let plan = plan(&store, statement).await;
            assert!(!plan.is_empty(), "{statement}");
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN")),
                "table scan in `{statement}`: {plan:?}"
            );
        }
    }

    /// The range purges walk their expiry index, in order (no sort).
    #[tokio::test]
    async fn purges_walk_their_own_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for (statement, index) in [
            (sql::PURGEABLE_SESSIONS, "sessions_expiry"),
            (sql::PURGE_ACCESS_TOKENS, "access_tokens_expiry"),
            (sql::PURGE_REFRESH_TOKENS, "refresh_tokens_expiry"),
            (sql::PURGE_JTIS, "client_assertion_jtis_expiry"),
            (sql::PURGE_OUTBOX, "outbox_due"),
        ] {
            let plan = plan(&store, statement).await;
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "`{statement}` does not use {index}: {plan:?}"
            );
            assert!(
                plan.iter().all(|step| !step.contains("TEMP B-TREE")),
                "`{statement}` sorts: {plan:?}"
            );
        }
    }

    /// Refresh tokens (written by the Token Manager) go by expiry, whatever their state.
    #[tokio::test]
    async fn refresh_tokens_are_purged_by_expiry() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO clients (client_id, secret_hash, name, short_name, redirect_uris, \
                 allowed_scopes, grant_types, sector, status, created_at) \
             VALUES ('c', 'h', 'C', 'c', '[]', '[]', '[]', 'c.example', 'active', 1); \
             INSERT INTO refresh_tokens (token_hash, family_id, client_id, scope, issued_at, \
                 expires_at, state) VALUES \
               ('r1', 'f', 'c', 'openid', 1, 100, 'rotated'), \
               ('r2', 'f', 'c', 'openid', 1, 200, 'revoked'), \
               ('r3', 'f', 'c', 'openid', 1, 201, 'active');",
        )
        .execute(&store.write)
        .await
        .unwrap();
        assert_eq!(store.purge_refresh_tokens(200, 1).await.unwrap(), 1);
        assert_eq!(store.purge_refresh_tokens(200, 10).await.unwrap(), 1);
        assert_eq!(store.purge_refresh_tokens(200, 10).await.unwrap(), 0);
        let left: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
            .fetch_all(&store.read)
            .await
            .unwrap();
        assert_eq!(left, vec!["r3".to_string()]);
    }
}
