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
use rusqlite::{Connection, Row, params};

use crate::conn::{exec, immediate, query_opt};
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

fn refresh_from_row(row: &Row<'_>) -> StoreResult<RefreshTokenRecord> {
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

/// Inserts a pair on the caller's transaction, the access token in the refresh token's
/// family.
pub(crate) fn insert_pair(
    tx: &Connection,
    access: &AccessTokenRecord,
    refresh: &RefreshTokenRecord,
) -> StoreResult<()> {
    exec(
        tx,
        INSERT_TOKEN,
        params![
            access.token_hash,
            access.session_id,
            access.client_id,
            access.subscriber_id,
            access.sub,
            access.scope,
            access.expires_at,
            access.issued_at,
            refresh.family_id,
            access.claims,
        ],
    )
    .map_err(|e| on_unique(e, |_| StoreError::Conflict("token hash")))?;
    exec(
        tx,
        sql::INSERT_REFRESH,
        params![
            refresh.token_hash,
            refresh.family_id,
            refresh.client_id,
            refresh.session_id,
            refresh.subscriber_id,
            refresh.sub,
            refresh.scope,
            refresh.issued_at,
            refresh.expires_at,
        ],
    )
    .map_err(|e| on_unique(e, |_| StoreError::Conflict("refresh token hash")))?;
    Ok(())
}

/// The family's id and state of a refresh token presented by `client_id`.
fn refresh_state(
    tx: &Connection,
    token_hash: &str,
    client_id: &str,
) -> StoreResult<Option<(String, String)>> {
    query_opt(tx, sql::REFRESH_STATE, [token_hash, client_id], |row| {
        Ok((col(row, "family_id")?, col(row, "state")?))
    })
}

fn revoke_family(tx: &Connection, family_id: &str) -> StoreResult<()> {
    for statement in [sql::REVOKE_REFRESH_FAMILY, sql::REVOKE_ACCESS_FAMILY] {
        exec(tx, statement, [family_id]).map_err(backend)?;
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
        self.write(|conn| {
            let tx = immediate(conn)?;
            insert_pair(&tx, access, refresh)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn find_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        self.read(|conn| {
            query_opt(
                conn,
                sql::FIND_REFRESH,
                params![token_hash, now],
                refresh_from_row,
            )
        })
        .await
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        client_id: &str,
        next: &RefreshTokenRecord,
        next_access: &AccessTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            let rotated = exec(&tx, sql::ROTATE_REFRESH, params![old_hash, client_id, now])
                .map_err(backend)?;
            if rotated == 1 {
                insert_pair(&tx, next_access, next)?;
                tx.commit().map_err(backend)?;
                return Ok(Rotation::Rotated);
            }
            let Some((family_id, state)) = refresh_state(&tx, old_hash, client_id)? else {
                return Ok(Rotation::Invalid);
            };
            if state != "rotated" {
                return Ok(Rotation::Invalid);
            }
            revoke_family(&tx, &family_id)?;
            tx.commit().map_err(backend)?;
            Ok(Rotation::Reused { family_id })
        })
        .await
    }

    async fn revoke_access_token(&self, token_hash: &str, client_id: &str) -> StoreResult<bool> {
        self.write(|conn| {
            Ok(exec(conn, sql::REVOKE_ACCESS, [token_hash, client_id]).map_err(backend)? > 0)
        })
        .await
    }

    async fn revoke_refresh_family(&self, token_hash: &str, client_id: &str) -> StoreResult<bool> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            let Some((family_id, _)) = refresh_state(&tx, token_hash, client_id)? else {
                return Ok(false);
            };
            revoke_family(&tx, &family_id)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn revoke_refresh_of_session(&self, session_id: &str) -> StoreResult<u64> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            exec(&tx, sql::REVOKE_ACCESS_OF_SESSION_FAMILIES, [session_id]).map_err(backend)?;
            let done = exec(&tx, sql::REVOKE_REFRESH_OF_SESSION, [session_id]).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(done)
        })
        .await
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
        let calls: Option<i64> = self
            .write(|conn| {
                query_opt(
                    conn,
                    sql::TAKE_DAILY_CALL,
                    params![client_id, day, limit],
                    |row| col(row, "calls"),
                )
            })
            .await?;
        Ok(calls.map(|c| c.max(0) as u64))
    }

    async fn return_daily_call(&self, client_id: &str, day: i64) -> StoreResult<()> {
        self.write(|conn| {
            exec(conn, sql::RETURN_DAILY_CALL, params![client_id, day]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn daily_calls(&self, client_id: &str, day: i64) -> StoreResult<u64> {
        let calls: Option<i64> = self
            .read(|conn| {
                query_opt(conn, sql::DAILY_CALLS, params![client_id, day], |row| {
                    col(row, "calls")
                })
            })
            .await?;
        Ok(calls.unwrap_or(0).max(0) as u64)
    }

    async fn purge_daily_calls(&self, before_day: i64) -> StoreResult<u64> {
        self.write(|conn| exec(conn, sql::PURGE_DAILY_CALLS, [before_day]).map_err(backend))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every token-manager and quota statement that looks rows up searches a key or an
    /// index.
    #[tokio::test]
    async fn token_manager_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            crate::test_support::assert_no_scan(&store, statement).await;
        }
    }
}
