//! [`TokenManagerStore`] and [`QuotaStore`] on SQLite (`migrations/0003_token_manager.sql`).
//!
//! Rotation and family revocation are `BEGIN IMMEDIATE` transactions on the single writer:
//! the conditional `UPDATE … WHERE state = 'active'` decides which presentation rotates a
//! token, and a reuse revokes the family in the same commit. The daily quota is one
//! upsert whose update only applies below the limit, so a count never passes it.

use async_trait::async_trait;
use mc_store::{
    AccessTokenRecord, QuotaStore, RefreshTokenRecord, Rotation, StoreError, StoreResult,
    TokenManagerStore,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, Transaction};

use crate::{SqliteStore, backend, col, on_unique, sql::INSERT_TOKEN};

pub(crate) mod sql {
    macro_rules! refresh_columns {
        () => {
            "token_hash, family_id, client_id, session_id, subscriber_id, sub, scope, issued_at, expires_at"
        };
    }

    pub const INSERT_REFRESH: &str = concat!(
        "INSERT INTO refresh_tokens (",
        refresh_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    pub const FIND_REFRESH: &str = concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE token_hash = ? AND state = 'active' AND expires_at > ?"
    );
    /// The take-once step of a rotation.
    pub const ROTATE_REFRESH: &str = "UPDATE refresh_tokens SET state = 'rotated' \
        WHERE token_hash = ? AND client_id = ? AND state = 'active' AND expires_at > ?";
    pub const REFRESH_STATE: &str =
        "SELECT family_id, state FROM refresh_tokens WHERE token_hash = ? AND client_id = ?";
    pub const REVOKE_REFRESH_FAMILY: &str = "UPDATE refresh_tokens SET state = 'revoked' \
        WHERE family_id = ? AND state <> 'revoked'";
    pub const REVOKE_ACCESS_FAMILY: &str =
        "UPDATE access_tokens SET revoked = 1 WHERE family_id = ? AND revoked = 0";
    pub const REVOKE_ACCESS: &str = "UPDATE access_tokens SET revoked = 1 \
        WHERE token_hash = ? AND client_id = ? AND revoked = 0";

    /// Access tokens first (the refresh rows still name the session's families).
    pub const REVOKE_ACCESS_OF_SESSION_FAMILIES: &str = "UPDATE access_tokens SET revoked = 1 \
        WHERE family_id IN (SELECT family_id FROM refresh_tokens WHERE session_id = ?) \
        AND revoked = 0";
    pub const REVOKE_REFRESH_OF_SESSION: &str = "UPDATE refresh_tokens SET state = 'revoked' \
        WHERE session_id = ? AND state <> 'revoked'";

    pub const TAKE_DAILY_CALL: &str = "INSERT INTO quota_days (client_id, day, calls) \
        VALUES (?, ?, 1) ON CONFLICT (client_id, day) DO UPDATE SET calls = calls + 1 \
        WHERE calls < ? RETURNING calls";
    pub const RETURN_DAILY_CALL: &str = "UPDATE quota_days SET calls = calls - 1 \
        WHERE client_id = ? AND day = ? AND calls > 0";
    pub const DAILY_CALLS: &str = "SELECT calls FROM quota_days WHERE client_id = ? AND day = ?";
    pub const PURGE_DAILY_CALLS: &str = "DELETE FROM quota_days WHERE day < ?";

    /// The statements that look rows up (for the query-plan test).
    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[
        FIND_REFRESH,
        ROTATE_REFRESH,
        REFRESH_STATE,
        REVOKE_REFRESH_FAMILY,
        REVOKE_ACCESS_FAMILY,
        REVOKE_ACCESS,
        REVOKE_ACCESS_OF_SESSION_FAMILIES,
        REVOKE_REFRESH_OF_SESSION,
        RETURN_DAILY_CALL,
        DAILY_CALLS,
        PURGE_DAILY_CALLS,
    ];
}

fn refresh_from_row(row: &SqliteRow) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: col(row, "token_hash")?,
        family_id: col(row, "family_id")?,
        client_id: col(row, "client_id")?,
        session_id: col(row, "session_id")?,
        subscriber_id: col(row, "subscriber_id")?,
        sub: col(row, "sub")?,
        scope: col(row, "scope")?,
        issued_at: col(row, "issued_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

/// Inserts a pair inside `tx`, the access token in the refresh token's family.
async fn insert_pair(
    tx: &mut Transaction<'_, Sqlite>,
    access: &AccessTokenRecord,
    refresh: &RefreshTokenRecord,
) -> StoreResult<()> {
    sqlx::query(INSERT_TOKEN)
        .bind(&access.token_hash)
        .bind(&access.session_id)
        .bind(&access.client_id)
        .bind(&access.subscriber_id)
        .bind(&access.sub)
        .bind(&access.scope)
        .bind(access.expires_at)
        .bind(access.issued_at)
        .bind(&refresh.family_id)
        .execute(&mut **tx)
        .await
        .map_err(|e| on_unique(e, |_| StoreError::Conflict("token hash")))?;
    sqlx::query(sql::INSERT_REFRESH)
        .bind(&refresh.token_hash)
        .bind(&refresh.family_id)
        .bind(&refresh.client_id)
        .bind(&refresh.session_id)
        .bind(&refresh.subscriber_id)
        .bind(&refresh.sub)
        .bind(&refresh.scope)
        .bind(refresh.issued_at)
        .bind(refresh.expires_at)
        .execute(&mut **tx)
        .await
        .map_err(|e| on_unique(e, |_| StoreError::Conflict("refresh token hash")))?;
    Ok(())
}

async fn revoke_family(tx: &mut Transaction<'_, Sqlite>, family_id: &str) -> StoreResult<()> {
    for statement in [sql::REVOKE_REFRESH_FAMILY, sql::REVOKE_ACCESS_FAMILY] {
        sqlx::query(statement)
            .bind(family_id)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl TokenManagerStore for SqliteStore {
    async fn insert_token_pair(
        &self,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> StoreResult<()> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        insert_pair(&mut tx, access, refresh).await?;
        tx.commit().await.map_err(backend)
    }

    async fn find_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        let row = sqlx::query(sql::FIND_REFRESH)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(refresh_from_row).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        client_id: &str,
        next: &RefreshTokenRecord,
        next_access: &AccessTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let rotated = sqlx::query(sql::ROTATE_REFRESH)
            .bind(old_hash)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if rotated == 1 {
            insert_pair(&mut tx, next_access, next).await?;
            tx.commit().await.map_err(backend)?;
            return Ok(Rotation::Rotated);
        }
        let row = sqlx::query(sql::REFRESH_STATE)
            .bind(old_hash)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let family_id: String = col(&row, "family_id")?;
        let state: String = col(&row, "state")?;
        if state != "rotated" {
            return Ok(Rotation::Invalid);
        }
        revoke_family(&mut tx, &family_id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Rotation::Reused { family_id })
    }

    async fn revoke_access_token(&self, token_hash: &str, client_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::REVOKE_ACCESS)
            .bind(token_hash)
            .bind(client_id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_refresh_family(&self, token_hash: &str, client_id: &str) -> StoreResult<bool> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let row = sqlx::query(sql::REFRESH_STATE)
            .bind(token_hash)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let family_id: String = col(&row, "family_id")?;
        revoke_family(&mut tx, &family_id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }
    async fn revoke_refresh_of_session(&self, session_id: &str) -> StoreResult<u64> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        sqlx::query(sql::REVOKE_ACCESS_OF_SESSION_FAMILIES)
            .bind(session_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let done = sqlx::query(sql::REVOKE_REFRESH_OF_SESSION)
            .bind(session_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl QuotaStore for SqliteStore {
    async fn take_daily_call(
        &self,
        client_id: &str,
        day: i64,
        limit: u64,
    ) -> StoreResult<Option<u64>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if limit <= 0 {
            return Ok(None);
        }
        let calls: Option<i64> = sqlx::query_scalar(sql::TAKE_DAILY_CALL)
            .bind(client_id)
            .bind(day)
            .bind(limit)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        Ok(calls.map(|c| c.max(0) as u64))
    }

    async fn return_daily_call(&self, client_id: &str, day: i64) -> StoreResult<()> {
        sqlx::query(sql::RETURN_DAILY_CALL)
            .bind(client_id)
            .bind(day)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn daily_calls(&self, client_id: &str, day: i64) -> StoreResult<u64> {
        let calls: Option<i64> = sqlx::query_scalar(sql::DAILY_CALLS)
            .bind(client_id)
            .bind(day)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        Ok(calls.unwrap_or(0).max(0) as u64)
    }

    async fn purge_daily_calls(&self, before_day: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::PURGE_DAILY_CALLS)
            .bind(before_day)
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

    /// Every token-manager and quota statement that looks rows up searches a key or an
    /// index.
    #[tokio::test]
    async fn token_manager_lookups_use_an_index() {
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
            assert!(!plan.is_empty(), "{statement}");
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN")),
                "table scan in `{statement}`: {plan:?}"
            );
        }
    }
}
