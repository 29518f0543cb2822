//! [`AttributeStore`] on PostgreSQL: one row per subscriber, the document as JSON text.
//! Each operation is one statement, retried on a transient conflict like the others.

use async_trait::async_trait;
use mc_store::{AttributeStore, AttributesRecord, StoreError, StoreResult};
use sqlx::Row;

use crate::{PgStore, backend, retrying};

const GET: &str =
    "SELECT attributes, updated_at FROM subscriber_attributes WHERE subscriber_id = $1";
const PUT: &str = "INSERT INTO subscriber_attributes (subscriber_id, attributes, updated_at)
     VALUES ($1, $2, $3)
     ON CONFLICT (subscriber_id) DO UPDATE SET attributes = EXCLUDED.attributes,
                                               updated_at = EXCLUDED.updated_at";
const DELETE: &str = "DELETE FROM subscriber_attributes WHERE subscriber_id = $1";

#[async_trait]
impl AttributeStore for PgStore {
    async fn get_attributes(&self, subscriber_id: &str) -> StoreResult<Option<AttributesRecord>> {
        let row = retrying("get_attributes", || async {
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
        let text: String = row
            .try_get("attributes")
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let attributes = serde_json::from_str(&text)
            .map_err(|e| StoreError::Backend(format!("stored attributes are invalid: {e}")))?;
        Ok(Some(AttributesRecord {
            subscriber_id: subscriber_id.to_owned(),
            attributes,
            updated_at: row
                .try_get("updated_at")
                .map_err(|e| StoreError::Backend(e.to_string()))?,
        }))
    }

    async fn put_attributes(&self, r: &AttributesRecord) -> StoreResult<()> {
        let text = &serde_json::to_string(&r.attributes)
            .map_err(|e| StoreError::Backend(format!("encoding attributes: {e}")))?;
        // The foreign key turns an unknown subscriber into `NotFound` (see `backend`).
        retrying("put_attributes", move || async move {
            sqlx::query(PUT)
                .bind(&r.subscriber_id)
                .bind(text)
                .bind(r.updated_at)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_attributes(&self, subscriber_id: &str) -> StoreResult<bool> {
        retrying("delete_attributes", || async {
            let done = sqlx::query(DELETE)
                .bind(subscriber_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }
}
