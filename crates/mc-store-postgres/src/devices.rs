//! [`DeviceStore`] on PostgreSQL (`migrations/0010_devices.sql`).
//!
//! `register_device` takes the enrolment code with a conditional `UPDATE … RETURNING` (the
//! row lock makes a concurrent taker wait and then find it used) and inserts the device in
//! the same transaction, through the crate's serialization-failure retry.
//!
//! Registration and revocation also set the subscriber's `app_push` capability in their
//! transaction ([`DeviceRecord::capabilities_for`]). Each locks the subscriber's row
//! (`FOR UPDATE`) before it looks at the devices, so a registration and a revocation for
//! one subscriber run one after the other, and the second one's statements (READ
//! COMMITTED: a fresh snapshot each) see the first one's device.

use async_trait::async_trait;
use mc_store::{DeviceRecord, DeviceStore, NewDevice, StoreError, StoreResult};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use crate::{Attempt, PgStore, backend, col, list_col, on_unique, retrying, to_json};

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
    pub const DEVICE_SUBSCRIBER: &str = "SELECT subscriber_id FROM devices WHERE id = $1";
    pub const LOCK_CAPABILITIES: &str =
        "SELECT capabilities FROM subscribers WHERE id = $1 FOR UPDATE";
    pub const HAS_DEVICE: &str =
        "SELECT 1 FROM devices WHERE subscriber_id = $1 AND revoked_at IS NULL LIMIT 1";
    pub const SET_CAPABILITIES: &str = "UPDATE subscribers SET capabilities = $1 WHERE id = $2";
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

/// Locks the subscriber's row (the capability's writers queue here) and returns its
/// capabilities; `None` if there is no such subscriber.
async fn lock_capabilities(
    conn: &mut PgConnection,
    subscriber_id: &str,
) -> Attempt<Option<Vec<String>>> {
    let row = sqlx::query(sql::LOCK_CAPABILITIES)
        .bind(subscriber_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(row.map(|r| list_col(&r, "capabilities")).transpose()?)
}

/// With the subscriber's row locked: gives or takes the `app_push` capability according to
/// whether an unrevoked device remains.
async fn follow_devices(
    conn: &mut PgConnection,
    subscriber_id: &str,
    capabilities: &[String],
) -> Attempt<()> {
    let has_device = sqlx::query(sql::HAS_DEVICE)
        .bind(subscriber_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .is_some();
    if let Some(caps) = DeviceRecord::capabilities_for(capabilities, has_device) {
        sqlx::query(sql::SET_CAPABILITIES)
            .bind(to_json(&caps)?)
            .bind(subscriber_id)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

impl PgStore {
    async fn revoke_device_once(&self, id: &str, now: i64) -> Attempt<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let Some(row) = sqlx::query(sql::DEVICE_SUBSCRIBER)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        else {
            return Ok(false);
        };
        let subscriber_id: String = col(&row, "subscriber_id")?;
        // The subscriber's row before the device: a registration for the same subscriber
        // then commits wholly before this transaction's device check, or waits for it.
        let capabilities = lock_capabilities(&mut tx, &subscriber_id).await?;
        let done = sqlx::query(sql::REVOKE_DEVICE)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(caps) = capabilities {
            follow_devices(&mut tx, &subscriber_id, &caps).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

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
        if let Some(caps) = lock_capabilities(&mut tx, &record.subscriber_id).await? {
            follow_devices(&mut tx, &record.subscriber_id, &caps).await?;
        }
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
        retrying("revoke_device", move || self.revoke_device_once(id, now)).await
    }
}
