//! [`UserCodeStore`] on SQLite: one row per subscriber with a code.

use async_trait::async_trait;
use mc_store::{PinState, StoreError, StoreResult, UserCodeRecord, UserCodeStore};
use rusqlite::params;

use crate::conn::{exec, query_opt};
use crate::{SqliteStore, backend, col};

const SET: &str = "INSERT INTO subscriber_user_codes (subscriber_id, code_hash, failures, locked)
     VALUES (?, ?, 0, 0)
     ON CONFLICT (subscriber_id) DO UPDATE SET code_hash = excluded.code_hash, failures = 0,
                                               locked = 0";
const REMOVE: &str = "DELETE FROM subscriber_user_codes WHERE subscriber_id = ?";
const SUBSCRIBER_EXISTS: &str = "SELECT 1 FROM subscribers WHERE id = ?";
const GET: &str =
    "SELECT code_hash, failures, locked FROM subscriber_user_codes WHERE subscriber_id = ?";
const RECORD_FAILURE: &str = "UPDATE subscriber_user_codes SET failures = failures + 1, \
     locked = CASE WHEN failures + 1 >= ? THEN 1 ELSE locked END \
     WHERE subscriber_id = ? RETURNING failures, locked";
const CLEAR_FAILURES: &str =
    "UPDATE subscriber_user_codes SET failures = 0 WHERE subscriber_id = ?";

#[async_trait]
impl UserCodeStore for SqliteStore {
    async fn set_user_code(&self, subscriber_id: &str, code_hash: Option<&str>) -> StoreResult<()> {
        self.write(|conn| {
            match code_hash {
                // The foreign key turns an unknown subscriber into `NotFound` (see `backend`).
                Some(hash) => {
                    exec(conn, SET, [subscriber_id, hash]).map_err(backend)?;
                }
                None => {
                    let known = query_opt(conn, SUBSCRIBER_EXISTS, [subscriber_id], |_| Ok(()))?;
                    if known.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    exec(conn, REMOVE, [subscriber_id]).map_err(backend)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn get_user_code(&self, subscriber_id: &str) -> StoreResult<Option<UserCodeRecord>> {
        self.read(|conn| {
            query_opt(conn, GET, [subscriber_id], |row| {
                let failures: i64 = col(row, "failures")?;
                Ok(UserCodeRecord {
                    subscriber_id: subscriber_id.to_owned(),
                    code_hash: col(row, "code_hash")?,
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                    locked: col::<i64>(row, "locked")? != 0,
                })
            })
        })
        .await
    }

    async fn record_user_code_failure(
        &self,
        subscriber_id: &str,
        max_failures: u32,
    ) -> StoreResult<PinState> {
        self.write(|conn| {
            query_opt(
                conn,
                RECORD_FAILURE,
                params![i64::from(max_failures), subscriber_id],
                |row| {
                    let failures: i64 = col(row, "failures")?;
                    Ok(PinState {
                        failures: u32::try_from(failures).unwrap_or(u32::MAX),
                        locked: col::<i64>(row, "locked")? != 0,
                    })
                },
            )?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn clear_user_code_failures(&self, subscriber_id: &str) -> StoreResult<()> {
        self.write(|conn| {
            exec(conn, CLEAR_FAILURES, [subscriber_id]).map_err(backend)?;
            Ok(())
        })
        .await
    }
}
