//! [`KeyStore`] on SQLite: the key lifecycle (`migrations/0004_key_lifecycle_retention.sql`).
//!
//! At most one `active` and one `next` key per use: two partial unique indexes. A promotion
//! is one `BEGIN IMMEDIATE` transaction of two conditional updates (active → retiring, then
//! next → active), rolled back unless both changed their row.

use async_trait::async_trait;
use mc_store::{KeyRecord, KeyState, KeyStore, StoreError, StoreResult};
use rusqlite::{Row, params};

use crate::conn::{exec, immediate, query_all};
use crate::{SqliteStore, backend, col, corrupt, on_unique};

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
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    pub const LIST_KEYS: &str = concat!(
        "SELECT ",
        key_columns!(),
        " FROM keys ORDER BY created_at, kid"
    );
    /// Only when `to` is the `next` key of the same use.
    pub const RETIRE_ACTIVE: &str = "UPDATE keys SET state = 'retiring', deactivated_at = ?, \
        remove_at = ? WHERE kid = ? AND state = 'active' AND key_use = \
        (SELECT key_use FROM keys WHERE kid = ? AND state = 'next')";
    pub const ACTIVATE_NEXT: &str =
        "UPDATE keys SET state = 'active', activates_at = ? WHERE kid = ? AND state = 'next'";
    pub const SCHEDULE_KEY: &str =
        "UPDATE keys SET activates_at = ? WHERE kid = ? AND state = 'next'";
    /// A scan of the (few) keys on purpose, like the list.
    pub const REMOVE_RETIRED: &str =
        "DELETE FROM keys WHERE state = 'retiring' AND remove_at <= ? RETURNING kid";

    /// The statements that look keys up by kid.
    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[RETIRE_ACTIVE, ACTIVATE_NEXT, SCHEDULE_KEY];
}

fn key_from_row(row: &Row<'_>) -> StoreResult<KeyRecord> {
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
impl KeyStore for SqliteStore {
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.read(|conn| query_all(conn, sql::LIST_KEYS, [], key_from_row))
            .await
    }

    async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
        self.write(|conn| {
            exec(
                conn,
                sql::INSERT_KEY,
                params![
                    k.kid,
                    k.key_use,
                    k.alg,
                    k.private_sealed,
                    k.created_at,
                    k.state.as_str(),
                    k.activates_at,
                    k.deactivated_at,
                    k.remove_at,
                ],
            )
            .map_err(|e| {
                on_unique(e, |m| {
                    if m.contains("keys.kid") {
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
        self.write(|conn| {
            let tx = immediate(conn)?;
            let retired = exec(&tx, sql::RETIRE_ACTIVE, params![now, remove_at, from, to])
                .map_err(backend)?;
            if retired != 1 {
                return Ok(false);
            }
            let activated = exec(&tx, sql::ACTIVATE_NEXT, params![now, to]).map_err(backend)?;
            if activated != 1 {
                tx.rollback().map_err(backend)?;
                return Ok(false);
            }
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn schedule_key(&self, kid: &str, activates_at: i64) -> StoreResult<bool> {
        self.write(|conn| {
            Ok(exec(conn, sql::SCHEDULE_KEY, params![activates_at, kid]).map_err(backend)? == 1)
        })
        .await
    }

    async fn remove_retired_keys(&self, now: i64) -> StoreResult<Vec<String>> {
        let mut kids = self
            .write(|conn| query_all(conn, sql::REMOVE_RETIRED, [now], |row| col(row, "kid")))
            .await?;
        kids.sort();
        Ok(kids)
    }
}
