//! [`KeyStore`] on PostgreSQL: the key lifecycle (`migrations/0004_key_lifecycle_retention.sql`).
//!
//! At most one `active` and one `next` key per use: two partial unique indexes, so of two
//! nodes inserting a `next` key at once one gets `Conflict`. A promotion is one transaction
//! of two conditional updates (active → retiring, then next → active), rolled back unless
//! both changed their row: a node that raced another waits for its row lock, re-checks the
//! state under `READ COMMITTED`, changes nothing and reports false.

use async_trait::async_trait;
use mc_store::{KeyRecord, KeyState, KeyStore, StoreError, StoreResult};
use sqlx::Connection;
use sqlx::postgres::PgRow;

use crate::{PgStore, backend, col, corrupt, on_unique, retrying};

pub(crate) mod sql {
    macro_rules! key_columns {
        () => {
            "kid, key_use, alg, private_sealed, created_at, state, activates_at, \
             deactivated_at, remove_at"
        };
    }

    pub const INSERT_KEY: &str = concat!(
        "INSERT INTO keys (",
        key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    pub const LIST_KEYS: &str = concat!(
        "SELECT ",
        key_columns!(),
        " FROM keys ORDER BY created_at, kid"
    );
    /// Only when `to` is the `next` key of the same use.
    pub const RETIRE_ACTIVE: &str = "UPDATE keys SET state = 'retiring', deactivated_at = $1, \
        remove_at = $2 WHERE kid = $3 AND state = 'active' AND key_use = \
        (SELECT key_use FROM keys WHERE kid = $4 AND state = 'next')";
    pub const ACTIVATE_NEXT: &str =
        "UPDATE keys SET state = 'active', activates_at = $1 WHERE kid = $2 AND state = 'next'";
    pub const SCHEDULE_KEY: &str =
        "UPDATE keys SET activates_at = $1 WHERE kid = $2 AND state = 'next'";
    /// A scan of the (few) keys on purpose, like the list.
    pub const REMOVE_RETIRED: &str =
        "DELETE FROM keys WHERE state = 'retiring' AND remove_at <= $1 RETURNING kid";
}

fn key_from_row(row: &PgRow) -> StoreResult<KeyRecord> {
    let state: String = col(row, "state")?;
    Ok(KeyRecord {
        kid: col(row, "kid")?,
        key_use: col(row, "key_use")?,
        alg: col(row, "alg")?,
        private_sealed: col(row, "private_sealed")?,
        created_at: col(row, "created_at")?,
        state: KeyState::parse(&state).ok_or_else(|| corrupt("key state", &state))?,
        activates_at: col(row, "activates_at")?,
        deactivated_at: col(row, "deactivated_at")?,
        remove_at: col(row, "remove_at")?,
    })
}

#[async_trait]
impl KeyStore for PgStore {
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        let rows = sqlx::query(sql::LIST_KEYS)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
        retrying("insert_key", move || async move {
            sqlx::query(sql::INSERT_KEY)
                .bind(&k.kid)
                .bind(&k.key_use)
                .bind(&k.alg)
                .bind(&k.private_sealed)
                .bind(k.created_at)
                .bind(k.state.as_str())
                .bind(k.activates_at)
                .bind(k.deactivated_at)
                .bind(k.remove_at)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    on_unique(e, |m| {
                        if m.contains("keys_pkey") {
                            StoreError::Conflict("kid")
                        } else {
                            StoreError::Conflict("a key of this use is already in this state")
                        }
                    })
                })?;
            Ok(())
        })
        .await
    }

    async fn promote_key(
        &self,
        from: &str,
        to: &str,
        now: i64,
        remove_at: i64,
    ) -> StoreResult<bool> {
        retrying("promote_key", move || async move {
            let mut conn = self.pool.acquire().await.map_err(backend)?;
            let mut tx = conn.begin().await.map_err(backend)?;
            let retired = sqlx::query(sql::RETIRE_ACTIVE)
                .bind(now)
                .bind(remove_at)
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if retired.rows_affected() != 1 {
                tx.rollback().await.map_err(backend)?;
                return Ok(false);
            }
            let activated = sqlx::query(sql::ACTIVATE_NEXT)
                .bind(now)
                .bind(to)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if activated.rows_affected() != 1 {
                tx.rollback().await.map_err(backend)?;
                return Ok(false);
            }
            tx.commit().await.map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn schedule_key(&self, kid: &str, activates_at: i64) -> StoreResult<bool> {
        retrying("schedule_key", move || async move {
            let done = sqlx::query(sql::SCHEDULE_KEY)
                .bind(activates_at)
                .bind(kid)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn remove_retired_keys(&self, now: i64) -> StoreResult<Vec<String>> {
        retrying("remove_retired_keys", move || async move {
            let mut kids: Vec<String> = sqlx::query_scalar(sql::REMOVE_RETIRED)
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            kids.sort();
            Ok(kids)
        })
        .await
    }
}
