//! [`UserCodeStore`] on SQLite: one row per subscriber with a code.

use async_trait::async_trait;
use mc_store::{PinState, StoreError, StoreResult, UserCodeRecord, UserCodeStore};
use sqlx::Row;

use crate::{SqliteStore, backend};

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
        match code_hash {
            // The foreign key turns an unknown subscriber into `NotFound` (see `backend`).
            Some(hash) => {
                sqlx::query(SET)
                    .bind(subscriber_id)
                    .bind(hash)
                    .execute(&self.write)
                    .await
                    .map_err(backend)?;
            }
            None => {
                let known = sqlx::query(SUBSCRIBER_EXISTS)
                    .bind(subscriber_id)
                    .fetch_optional(&self.write)
                    .await
                    .map_err(backend)?;
                if known.is_none() {
                    return Err(StoreError::NotFound);
                }
                sqlx::query(REMOVE)
                    .bind(subscriber_id)
                    .execute(&self.write)
                    .await
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    async fn get_user_code(&self, subscriber_id: &str) -> StoreResult<Option<UserCodeRecord>> {
        let Some(row) = sqlx::query(GET)
            .bind(subscriber_id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let failures: i64 = row.try_get("failures").map_err(backend)?;
        Ok(Some(UserCodeRecord {
            subscriber_id: subscriber_id.to_owned(),
            code_hash: row.try_get("code_hash").map_err(backend)?,
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            locked: row.try_get::<i64, _>("locked").map_err(backend)? != 0,
        }))
    }

    async fn record_user_code_failure(
        &self,
        subscriber_id: &str,
        max_failures: u32,
    ) -> StoreResult<PinState> {
        let row = sqlx::query(RECORD_FAILURE)
            .bind(i64::from(max_failures))
            .bind(subscriber_id)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        let failures: i64 = row.try_get("failures").map_err(backend)?;
        Ok(PinState {
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            locked: row.try_get::<i64, _>("locked").map_err(backend)? != 0,
        })
    }

    async fn clear_user_code_failures(&self, subscriber_id: &str) -> StoreResult<()> {
        sqlx::query(CLEAR_FAILURES)
            .bind(subscriber_id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
