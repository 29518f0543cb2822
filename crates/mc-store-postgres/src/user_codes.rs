//! [`UserCodeStore`] on PostgreSQL: one row per subscriber with a code; each operation one
//! statement, retried on a transient conflict like the others.

use async_trait::async_trait;
use mc_store::{PinState, StoreError, StoreResult, UserCodeRecord, UserCodeStore};
use sqlx::Row;

use crate::{PgStore, backend, retrying};

const SET: &str = "INSERT INTO subscriber_user_codes (subscriber_id, code_hash, failures, locked)
     VALUES ($1, $2, 0, FALSE)
     ON CONFLICT (subscriber_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, failures = 0,
                                               locked = FALSE";
/// Removes the code; the row count of the subscriber tells an unknown one apart.
const REMOVE: &str = "WITH gone AS (DELETE FROM subscriber_user_codes WHERE subscriber_id = $1) \
     SELECT 1 FROM subscribers WHERE id = $1";
const GET: &str =
    "SELECT code_hash, failures, locked FROM subscriber_user_codes WHERE subscriber_id = $1";
const RECORD_FAILURE: &str = "UPDATE subscriber_user_codes SET failures = failures + 1, \
     locked = (locked OR failures + 1 >= $1) \
     WHERE subscriber_id = $2 RETURNING failures, locked";
const CLEAR_FAILURES: &str =
    "UPDATE subscriber_user_codes SET failures = 0 WHERE subscriber_id = $1";

fn column<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r sqlx::postgres::PgRow,
    name: &str,
) -> StoreResult<T> {
    row.try_get(name)
        .map_err(|e| StoreError::Backend(e.to_string()))
}

#[async_trait]
impl UserCodeStore for PgStore {
    async fn set_user_code(&self, subscriber_id: &str, code_hash: Option<&str>) -> StoreResult<()> {
        retrying("set_user_code", move || async move {
            match code_hash {
                // The foreign key turns an unknown subscriber into `NotFound` (see `backend`).
                Some(hash) => {
                    sqlx::query(SET)
                        .bind(subscriber_id)
                        .bind(hash)
                        .execute(&self.pool)
                        .await
                        .map_err(backend)?;
                }
                None => {
                    sqlx::query(REMOVE)
                        .bind(subscriber_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(backend)?
                        .ok_or(crate::Fail::from(StoreError::NotFound))?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn get_user_code(&self, subscriber_id: &str) -> StoreResult<Option<UserCodeRecord>> {
        let row = retrying("get_user_code", || async {
            sqlx::query(GET)
                .bind(subscriber_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)
        })
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(UserCodeRecord {
            subscriber_id: subscriber_id.to_owned(),
            code_hash: column(&row, "code_hash")?,
            failures: u32::try_from(column::<i64>(&row, "failures")?).unwrap_or(u32::MAX),
            locked: column(&row, "locked")?,
        }))
    }

    async fn record_user_code_failure(
        &self,
        subscriber_id: &str,
        max_failures: u32,
    ) -> StoreResult<PinState> {
        let row = retrying("record_user_code_failure", || async {
            sqlx::query(RECORD_FAILURE)
                .bind(i64::from(max_failures))
                .bind(subscriber_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?
                .ok_or(StoreError::NotFound.into())
        })
        .await?;
        Ok(PinState {
            failures: u32::try_from(column::<i64>(&row, "failures")?).unwrap_or(u32::MAX),
            locked: column(&row, "locked")?,
        })
    }

    async fn clear_user_code_failures(&self, subscriber_id: &str) -> StoreResult<()> {
        retrying("clear_user_code_failures", || async {
            sqlx::query(CLEAR_FAILURES)
                .bind(subscriber_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(())
        })
        .await
    }
}
