//! [`DeviceStore`] on PostgreSQL (`migrations/0010_devices.sql`).
//!
//! `register_device` takes the enrolment code with a conditional `UPDATE … RETURNING` (the
//! row lock makes a concurrent taker wait and then find it used) and inserts the device in
//! the same transaction, through the crate's serialization-failure retry.

use async_trait::async_trait;
use mc_store::{DeviceRecord, DeviceStore, NewDevice, StoreError, StoreResult};
use sqlx::postgres::PgRow;

use crate::{Attempt, PgStore, backend, col, on_unique, retrying};

pub(crate) mod sql {
    macro_rules! device_columns {
        () => {
            "id, subscriber_id, public_jwk, label, created_at, revoked_at"
        };
    }

    pub const INSERT_ENROLMENT: &str = "INSERT INTO device_enrolments \
        (code_hash, subscriber_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
    /// Take-once: only an unused, unexpired code matches.
    pub const TAKE_ENROLMENT: &str = "UPDATE device_enrolments SET used_at = $1 \
        WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING subscriber_id";
    pub const INSERT_DEVICE: &str = concat!(
        "INSERT INTO devices (",
        device_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, NULL)"
    );
    pub const GET_DEVICE: &str =
        concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1");
    pub const DEVICES_OF: &str = concat!(
        "SELECT ",
        device_columns!(),
        " FROM devices WHERE subscriber_id = $1 AND revoked_at IS NULL ORDER BY created_at, id"
    );
    pub const REVOKE_DEVICE: &str =
        "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
}

fn device_from_row(row: &PgRow) -> StoreResult<DeviceRecord> {
    Ok(DeviceRecord {
        id: col(row, "id")?,
        subscriber_id: col(row, "subscriber_id")?,
        public_jwk: col(row, "public_jwk")?,
        label: col(row, "label")?,
        created_at: col(row, "created_at")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

impl PgStore {
    async fn register_device_once(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> Attempt<Option<DeviceRecord>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let Some(row) = sqlx::query(sql::TAKE_ENROLMENT)
            .bind(now)
            .bind(code_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let record = DeviceRecord {
            id: device.id.clone(),
            subscriber_id: col(&row, "subscriber_id")?,
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
        tx.commit().await.map_err(backend)?;
        Ok(Some(record))
    }
}

#[async_trait]
impl DeviceStore for PgStore {
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
            .execute(&self.pool)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("enrolment code")).error)?;
        Ok(())
    }

    async fn register_device(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> StoreResult<Option<DeviceRecord>> {
        retrying("register_device", move || {
            self.register_device_once(code_hash, device, now)
        })
        .await
    }

    async fn get_device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        let row = sqlx::query(sql::GET_DEVICE)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn devices_of(&self, subscriber_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        let rows = sqlx::query(sql::DEVICES_OF)
            .bind(subscriber_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(device_from_row).collect()
    }

    async fn revoke_device(&self, id: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(sql::REVOKE_DEVICE)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}
