//! [`RetentionStore`] on SQLite. Each purge is one write of at most `limit` rows found
//! through an index, oldest first (`migrations/0004_key_lifecycle_retention.sql`), so the
//! single writer is never held long; the caller loops. The purges are background work, and
//! a batch of a few thousand rows takes milliseconds: they run on tokio's blocking pool
//! (holding the writer), not on a worker that serves requests.

use async_trait::async_trait;
use mc_store::{RetentionStore, StoreResult};
use rusqlite::params;

use crate::conn::{exec, immediate, query_all};
use crate::{SqliteStore, backend, col};

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
        self.write_blocking(move |conn| {
            exec(conn, statement, params![before, i64::from(limit)]).map_err(backend)
        })
        .await
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn purge_sessions(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.write_blocking(move |conn| {
            let tx = immediate(conn)?;
            let ids = query_all(
                &tx,
                sql::PURGEABLE_SESSIONS,
                params![before, i64::from(limit)],
                |row| col::<String>(row, "id"),
            )?;
            let mut deleted = 0;
            for id in &ids {
                exec(&tx, sql::DELETE_BACKCHANNEL, [id]).map_err(backend)?;
                deleted += exec(&tx, sql::DELETE_SESSION, [id]).map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(deleted)
        })
        .await
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
        self.write_blocking(move |conn| {
            exec(
                conn,
                sql::PURGE_OUTBOX,
                params![before, now, i64::from(limit)],
            )
            .map_err(backend)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_support::{assert_no_scan, batch, plan, strings};

    /// Every purge and key statement searches a key or an index (never a table scan).
    #[tokio::test]
    async fn purge_and_key_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS.iter().chain(crate::keys::sql::LOOKUPS) {
            assert_no_scan(&store, statement).await;
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
        batch(
            &store,
            "INSERT INTO clients (client_id, secret_hash, name, short_name, redirect_uris, \
                 allowed_scopes, grant_types, sector, status, created_at) \
             VALUES ('c', 'h', 'C', 'c', '[]', '[]', '[]', 'c.example', 'active', 1); \
             INSERT INTO refresh_tokens (token_hash, family_id, client_id, scope, issued_at, \
                 expires_at, state) VALUES \
               ('r1', 'f', 'c', 'openid', 1, 100, 'rotated'), \
               ('r2', 'f', 'c', 'openid', 1, 200, 'revoked'), \
               ('r3', 'f', 'c', 'openid', 1, 201, 'active');",
        )
        .await;
        assert_eq!(store.purge_refresh_tokens(200, 1).await.unwrap(), 1);
        assert_eq!(store.purge_refresh_tokens(200, 10).await.unwrap(), 1);
        assert_eq!(store.purge_refresh_tokens(200, 10).await.unwrap(), 0);
        let left = strings(&store, "SELECT token_hash FROM refresh_tokens").await;
        assert_eq!(left, vec!["r3".to_string()]);
    }
}
