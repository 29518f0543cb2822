//! [`TokenManagerStore`] and [`QuotaStore`] on PostgreSQL (`migrations/0003_token_manager.sql`).
//!
//! Rotation is one transaction: the conditional `UPDATE … WHERE state = 'active'` decides
//! which presentation rotates a token (a concurrent one waits for the row lock, re-checks,
//! and finds it rotated), and a reuse revokes the family in the same commit. The daily
//! quota is one upsert whose update only applies below the limit (`INSERT … ON CONFLICT DO
//! UPDATE … WHERE`, atomic on the row), so the count never passes it whichever node
//! counts. Writing operations run through the crate's serialization-failure retry.

use async_trait::async_trait;
use mc_store::{
    AccessTokenRecord, QuotaStore, RefreshTokenRecord, Rotation, StoreError, StoreResult,
    TokenManagerStore,
};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};

use crate::{Attempt, PgStore, backend, col, on_unique, retrying, sql::INSERT_TOKEN};

pub(crate) mod sql {
    macro_rules! refresh_columns {
        () => {
            "token_hash, family_id, client_id, session_id, subscriber_id, sub, scope, issued_at, expires_at"
        };
    }

    pub const INSERT_REFRESH: &str = concat!(
        "INSERT INTO refresh_tokens (",
        refresh_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    pub const FIND_REFRESH: &str = concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE token_hash = $1 AND state = 'active' AND expires_at > $2"
    );
    /// The take-once step of a rotation.
    pub const ROTATE_REFRESH: &str = "UPDATE refresh_tokens SET state = 'rotated' \
        WHERE token_hash = $1 AND client_id = $2 AND state = 'active' AND expires_at > $3";
    pub const REFRESH_STATE: &str =
        "SELECT family_id, state FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2";
    pub const REVOKE_REFRESH_FAMILY: &str = "UPDATE refresh_tokens SET state = 'revoked' \
        WHERE family_id = $1 AND state <> 'revoked'";
    pub const REVOKE_ACCESS_FAMILY: &str =
        "UPDATE access_tokens SET revoked = TRUE WHERE family_id = $1 AND NOT revoked";
    pub const REVOKE_ACCESS: &str = "UPDATE access_tokens SET revoked = TRUE \
        WHERE token_hash = $1 AND client_id = $2 AND NOT revoked";

    /// Access tokens first (the refresh rows still name the session's families).
    pub const REVOKE_ACCESS_OF_SESSION_FAMILIES: &str = "UPDATE access_tokens SET revoked = TRUE \
        WHERE family_id IN (SELECT family_id FROM refresh_tokens WHERE session_id = $1) \
        AND NOT revoked";
    pub const REVOKE_REFRESH_OF_SESSION: &str = "UPDATE refresh_tokens SET state = 'revoked' \
        WHERE session_id = $1 AND state <> 'revoked'";

    pub const TAKE_DAILY_CALL: &str = "INSERT INTO quota_days (client_id, day, calls) \
        VALUES ($1, $2, 1) ON CONFLICT (client_id, day) DO UPDATE SET calls = quota_days.calls + 1 \
        WHERE quota_days.calls < $3 RETURNING calls";
    pub const RETURN_DAILY_CALL: &str = "UPDATE quota_days SET calls = calls - 1 \
        WHERE client_id = $1 AND day = $2 AND calls > 0";
    pub const DAILY_CALLS: &str = "SELECT calls FROM quota_days WHERE client_id = $1 AND day = $2";
    pub const PURGE_DAILY_CALLS: &str = "DELETE FROM quota_days WHERE day < $1";
}

fn refresh_from_row(row: &PgRow) -> StoreResult<RefreshTokenRecord> {
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
pub(crate) async fn insert_pair(
    tx: &mut Transaction<'_, Postgres>,
    access: &AccessTokenRecord,
    refresh: &RefreshTokenRecord,
) -> Attempt<()> {
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
        .bind(&access.claims)
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

async fn revoke_family(tx: &mut Transaction<'_, Postgres>, family_id: &str) -> Attempt<()> {
    for statement in [sql::REVOKE_REFRESH_FAMILY, sql::REVOKE_ACCESS_FAMILY] {
        sqlx::query(statement)
            .bind(family_id)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

impl PgStore {
    async fn rotate_once(
        &self,
        old_hash: &str,
        client_id: &str,
        next: &RefreshTokenRecord,
        next_access: &AccessTokenRecord,
        now: i64,
    ) -> Attempt<Rotation> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
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
        // Not active. A concurrent rotation that took it committed before our UPDATE
        // returned, so this later statement sees its state.
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

    async fn revoke_family_once(&self, token_hash: &str, client_id: &str) -> Attempt<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
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
}

#[async_trait]
impl TokenManagerStore for PgStore {
    async fn insert_token_pair(
        &self,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> StoreResult<()> {
        retrying("insert_token_pair", move || async move {
            let mut tx = self.pool.begin().await.map_err(backend)?;
            insert_pair(&mut tx, access, refresh).await?;
            tx.commit().await.map_err(backend)
        })
        .await
    }

    async fn find_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        let row = sqlx::query(sql::FIND_REFRESH)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
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
        retrying("rotate_refresh_token", move || {
            self.rotate_once(old_hash, client_id, next, next_access, now)
        })
        .await
    }

    async fn revoke_access_token(&self, token_hash: &str, client_id: &str) -> StoreResult<bool> {
        retrying("revoke_access_token", move || async move {
            let done = sqlx::query(sql::REVOKE_ACCESS)
                .bind(token_hash)
                .bind(client_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn revoke_refresh_family(&self, token_hash: &str, client_id: &str) -> StoreResult<bool> {
        retrying("revoke_refresh_family", move || {
            self.revoke_family_once(token_hash, client_id)
        })
        .await
    }
    async fn revoke_refresh_of_session(&self, session_id: &str) -> StoreResult<u64> {
        retrying("revoke_refresh_of_session", move || async move {
            let mut tx = self.pool.begin().await.map_err(backend)?;
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
        })
        .await
    }
}

#[async_trait]
impl QuotaStore for PgStore {
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
        retrying("take_daily_call", move || async move {
            let calls: Option<i64> = sqlx::query_scalar(sql::TAKE_DAILY_CALL)
                .bind(client_id)
                .bind(day)
                .bind(limit)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            Ok(calls.map(|c| c.max(0) as u64))
        })
        .await
    }

    async fn return_daily_call(&self, client_id: &str, day: i64) -> StoreResult<()> {
        retrying("return_daily_call", move || async move {
            sqlx::query(sql::RETURN_DAILY_CALL)
                .bind(client_id)
                .bind(day)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn daily_calls(&self, client_id: &str, day: i64) -> StoreResult<u64> {
        let calls: Option<i64> = sqlx::query_scalar(sql::DAILY_CALLS)
            .bind(client_id)
            .bind(day)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(calls.unwrap_or(0).max(0) as u64)
    }

    async fn purge_daily_calls(&self, before_day: i64) -> StoreResult<u64> {
        retrying("purge_daily_calls", move || async move {
            let done = sqlx::query(sql::PURGE_DAILY_CALLS)
                .bind(before_day)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected())
        })
        .await
    }
}
