//! [`DeviceStore`] on SQLite (`migrations/0010_devices.sql`).
//!
//! `register_device` is one `BEGIN IMMEDIATE` transaction on the single writer: the
//! conditional `UPDATE … RETURNING` takes the enrolment code, and the device is inserted in
//! the same commit (a failed insert rolls the code back to unused). Registration and
//! revocation also set the subscriber's `app_push` capability in their transaction
//! ([`DeviceRecord::capabilities_for`]): the single writer orders them.

use async_trait::async_trait;
use mc_store::{DeviceRecord, DeviceStore, NewDevice, StoreError, StoreResult};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use crate::{SqliteStore, backend, col, list_col, on_unique, to_json};

pub(crate) mod sql {
    macro_rules! device_columns {
        () => {
            "id, subscriber_id, public_jwk, label, created_at, revoked_at"
        };
    }

    pub const INSERT_ENROLMENT: &str = "INSERT INTO device_enrolments \
        (code_hash, subscriber_id, created_at, expires_at) VALUES (?, ?, ?, ?)";
    /// Take-once: only an unused, unexpired code matches.
    pub const TAKE_ENROLMENT: &str = "UPDATE device_enrolments SET used_at = ? \
        WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING subscriber_id";
    pub const INSERT_DEVICE: &str = concat!(
        "INSERT INTO devices (",
        device_columns!(),
        ") VALUES (?, ?, ?, ?, ?, NULL)"
    );
    pub const GET_DEVICE: &str =
        concat!("SELECT ", device_columns!(), " FROM devices WHERE id = ?");
    pub const DEVICES_OF: &str = concat!(
        "SELECT ",
        device_columns!(),
        " FROM devices WHERE subscriber_id = ? AND revoked_at IS NULL ORDER BY created_at, id"
    );
    pub const REVOKE_DEVICE: &str = "UPDATE devices SET revoked_at = ? \
        WHERE id = ? AND revoked_at IS NULL RETURNING subscriber_id";
    pub const HAS_DEVICE: &str =
        "SELECT 1 FROM devices WHERE subscriber_id = ? AND revoked_at IS NULL LIMIT 1";
    pub const CAPABILITIES: &str = "SELECT capabilities FROM subscribers WHERE id = ?";
    pub const SET_CAPABILITIES: &str = "UPDATE subscribers SET capabilities = ? WHERE id = ?";

    /// The lookups (for the query-plan test).
    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[
        TAKE_ENROLMENT,
        GET_DEVICE,
        DEVICES_OF,
        REVOKE_DEVICE,
        HAS_DEVICE,
        CAPABILITIES,
        SET_CAPABILITIES,
    ];
}

fn device_from_row(row: &SqliteRow) -> StoreResult<DeviceRecord> {
    Ok(DeviceRecord {
        id: col(row, "id")?,
        subscriber_id: col(row, "subscriber_id")?,
        public_jwk: col(row, "public_jwk")?,
        label: col(row, "label")?,
        created_at: col(row, "created_at")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

/// Inside a device transaction: gives or takes the subscriber's `app_push` capability
/// according to whether an unrevoked device remains.
async fn follow_devices(conn: &mut SqliteConnection, subscriber_id: &str) -> StoreResult<()> {
    let has_device = sqlx::query(sql::HAS_DEVICE)
        .bind(subscriber_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .is_some();
    let Some(row) = sqlx::query(sql::CAPABILITIES)
        .bind(subscriber_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
    else {
        return Ok(());
    };
    if let Some(caps) = DeviceRecord::capabilities_for(&list_col(&row, "capabilities")?, has_device)
    {
        sqlx::query(sql::SET_CAPABILITIES)
            .bind(to_json(&caps)?)
            .bind(subscriber_id)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn create_enrolment_code(
        &self,
        code_hash: &str,
        subscriber_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(sql::INSERT_ENROLMENT)
            .bind(code_hash)
            .bind(subscriber_id)
            .bind(now)
            .bind(expires_at)
            .execute(&self.write)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("enrolment code")))?;
        Ok(())
    }

    async fn register_device(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> StoreResult<Option<DeviceRecord>> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let Some(row) = sqlx::query(sql::TAKE_ENROLMENT)
            .bind(now)
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let subscriber_id: String = col(&row, "subscriber_id")?;
        let record = DeviceRecord {
            id: device.id.clone(),
            subscriber_id,
            public_jwk: device.public_jwk.clone(),
            label: device.label.clone(),
            created_at: now,
            revoked_at: None,
        };
        sqlx::query(sql::INSERT_DEVICE)
            .bind(&record.id)
            .bind(&record.subscriber_id)
            .bind(&record.public_jwk)
            .bind(&record.label)
            .bind(record.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("device id")))?;
        follow_devices(&mut tx, &record.subscriber_id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(record))
    }

    async fn get_device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        let row = sqlx::query(sql::GET_DEVICE)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn devices_of(&self, subscriber_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        let rows = sqlx::query(sql::DEVICES_OF)
            .bind(subscriber_id)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(device_from_row).collect()
    }

    async fn revoke_device(&self, id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let Some(row) = sqlx::query(sql::REVOKE_DEVICE)
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        else {
            return Ok(false);
        };
        let subscriber_id: String = col(&row, "subscriber_id")?;
        follow_devices(&mut tx, &subscriber_id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// Every device statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn device_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            let params = statement.matches('?').count();
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
            for _ in 0..params {
                query = query.bind(None::<String>);
            }
            let rows = query.fetch_all(&store.read).await.unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>("detail")).collect();
            assert!(
                plan.iter().all(|d| !d.starts_with("SCAN")),
                "{statement} scans: {plan:?}"
            );
        }
    }
}
