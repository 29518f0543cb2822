//! [`AttributeStore`] on SQLite: one row per subscriber, the document as JSON text.

use async_trait::async_trait;
use mc_store::{AttributeStore, AttributesRecord, StoreError, StoreResult};
use rusqlite::params;

use crate::conn::{exec, query_opt};
use crate::{SqliteStore, backend, col};

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
        self.read(|conn| {
            query_opt(conn, GET, [subscriber_id], |row| {
                let text: String = col(row, "attributes")?;
                let attributes = serde_json::from_str(&text).map_err(|e| {
                    StoreError::Backend(format!("stored attributes are invalid: {e}"))
                })?;
                Ok(AttributesRecord {
                    subscriber_id: subscriber_id.to_owned(),
                    attributes,
                    updated_at: col(row, "updated_at")?,
                })
            })
        })
        .await
    }

    async fn put_attributes(&self, r: &AttributesRecord) -> StoreResult<()> {
        let text = serde_json::to_string(&r.attributes)
            .map_err(|e| StoreError::Backend(format!("encoding attributes: {e}")))?;
        // The foreign key turns an unknown subscriber into `NotFound` (see `backend`).
        self.write(|conn| {
            exec(conn, PUT, params![r.subscriber_id, text, r.updated_at]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_attributes(&self, subscriber_id: &str) -> StoreResult<bool> {
        self.write(|conn| Ok(exec(conn, DELETE, [subscriber_id]).map_err(backend)? > 0))
            .await
    }
}
