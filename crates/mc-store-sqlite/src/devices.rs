//! [`DeviceStore`] on SQLite (`migrations/0010_devices.sql`).
//!
//! `register_device` is one `BEGIN IMMEDIATE` transaction on the single writer: the
//! conditional `UPDATE … RETURNING` takes the enrolment code, and the device is inserted in
//! the same commit (a failed insert rolls the code back to unused). Registration and
//! revocation also set the subscriber's `app_push` capability in their transaction
//! ([`DeviceRecord::capabilities_for`]): the single writer orders them.

use async_trait::async_trait;
use mc_store::{DeviceRecord, DeviceStore, NewDevice, StoreError, StoreResult};
use rusqlite::{Connection, Row, params};

use crate::conn::{exec, immediate, query_all, query_opt};
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

fn device_from_row(row: &Row<'_>) -> StoreResult<DeviceRecord> {
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
fn follow_devices(conn: &Connection, subscriber_id: &str) -> StoreResult<()> {
    let has_device = query_opt(conn, sql::HAS_DEVICE, [subscriber_id], |_| Ok(()))?.is_some();
    let Some(capabilities) = query_opt(conn, sql::CAPABILITIES, [subscriber_id], |row| {
        list_col(row, "capabilities")
    })?
    else {
        return Ok(());
    };
    if let Some(caps) = DeviceRecord::capabilities_for(&capabilities, has_device) {
        exec(
            conn,
            sql::SET_CAPABILITIES,
            params![to_json(&caps)?, subscriber_id],
        )
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
        self.write(|conn| {
            exec(
                conn,
                sql::INSERT_ENROLMENT,
                params![code_hash, subscriber_id, now, expires_at],
            )
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("enrolment code")))?;
            Ok(())
        })
        .await
    }

    async fn register_device(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> StoreResult<Option<DeviceRecord>> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            let Some(subscriber_id) = query_opt(
                &tx,
                sql::TAKE_ENROLMENT,
                params![now, code_hash, now],
                |row| col::<String>(row, "subscriber_id"),
            )?
            else {
                return Ok(None);
            };
            let record = DeviceRecord {
                id: device.id.clone(),
                subscriber_id,
                public_jwk: device.public_jwk.clone(),
                label: device.label.clone(),
                created_at: now,
                revoked_at: None,
            };
            exec(
                &tx,
                sql::INSERT_DEVICE,
                params![
                    record.id,
                    record.subscriber_id,
                    record.public_jwk,
                    record.label,
                    record.created_at
                ],
            )
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("device id")))?;
            follow_devices(&tx, &record.subscriber_id)?;
            tx.commit().map_err(backend)?;
            Ok(Some(record))
        })
        .await
    }

    async fn get_device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        self.read(|conn| query_opt(conn, sql::GET_DEVICE, [id], device_from_row))
            .await
    }

    async fn devices_of(&self, subscriber_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        self.read(|conn| query_all(conn, sql::DEVICES_OF, [subscriber_id], device_from_row))
            .await
    }

    async fn revoke_device(&self, id: &str, now: i64) -> StoreResult<bool> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            let Some(subscriber_id) =
                query_opt(&tx, sql::REVOKE_DEVICE, params![now, id], |row| {
                    col::<String>(row, "subscriber_id")
                })?
            else {
                return Ok(false);
            };
            follow_devices(&tx, &subscriber_id)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every device statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn device_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            crate::test_support::assert_no_scan(&store, statement).await;
        }
    }
}
