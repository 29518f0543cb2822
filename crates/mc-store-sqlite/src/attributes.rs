//! [`AttributeStore`] on SQLite: one row per subscriber, the document as JSON text.

use async_trait::async_trait;
use mc_store::{AttributeStore, AttributesRecord, StoreError, StoreResult};
use sqlx::Row;

use crate::{SqliteStore, backend};

const GET: &str =
    "SELECT attributes, updated_at FROM subscriber_attributes WHERE subscriber_id = ?";
const PUT: &str = "INSERT INTO subscriber_attributes (subscriber_id, attributes, updated_at)
     VALUES (?, ?, ?)
     ON CONFLICT (subscriber_id) DO UPDATE SET attributes = excluded.attributes,
                                               updated_at = excluded.updated_at";
const DELETE: &str = "DELETE FROM subscriber_attributes WHERE subscriber_id = ?";

#[async_trait]
impl AttributeStore for SqliteStore {
    async fn get_attributes(&self, subscriber_id: &str) -> StoreResult<Option<AttributesRecord>> {
        let Some(row) = sqlx::query(GET)
            .bind(subscriber_id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let text: String = row.try_get("attributes").map_err(backend)?;
        let attributes = serde_json::from_str(&text)
            .map_err(|e| StoreError::Backend(format!("stored attributes are invalid: {e}")))?;
        Ok(Some(AttributesRecord {
            subscriber_id: subscriber_id.to_owned(),
            attributes,
            updated_at: row.try_get("updated_at").map_err(backend)?,
        }))
    }

    async fn put_attributes(&self, r: &AttributesRecord) -> StoreResult<()> {
        let text = serde_json::to_string(&r.attributes)
            .map_err(|e| StoreError::Backend(format!("encoding attributes: {e}")))?;
        // The foreign key turns an unknown subscriber into `NotFound` (see `backend`).
        sqlx::query(PUT)
            .bind(&r.subscriber_id)
            .bind(text)
            .bind(r.updated_at)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_attributes(&self, subscriber_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(DELETE)
            .bind(subscriber_id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}
