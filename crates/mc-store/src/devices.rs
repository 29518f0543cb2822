//! Smartphone-app devices: the public keys that sign a subscriber's app-push answers, and
//! the one-time enrolment codes that authorise registering one.
//!
//! An operator's provisioning (or the sandbox, for its virtual phones) hands the subscriber
//! an enrolment code; the app registers its freshly generated key pair's public half with it.
//! The code is taken once, in the same transaction that stores the device, so one code
//! registers at most one device even when two registrations race. Codes are stored by hash
//! only. A device is never deleted, only revoked, so an audit can still name the key that
//! signed an old approval.

use async_trait::async_trait;

use crate::StoreResult;

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Random, chosen by the gateway; the `kid` of the device's signatures.
    pub id: String,
    pub subscriber_id: String,
    /// The device's public key as a JWK (JSON text): P-256, for ES256 signatures.
    pub public_jwk: String,
    /// What the subscriber calls it ("Pixel 8"), for lists; not trusted for anything.
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A device to register with an enrolment code (its subscriber comes from the code).
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: String,
    pub public_jwk: String,
    pub label: String,
}

/// Devices and enrolment codes.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores an enrolment code (by hash) for `subscriber_id`, usable once before
    /// `expires_at`. `Conflict` if the hash exists; `NotFound` if the subscriber does not.
    async fn create_enrolment_code(
        &self,
        code_hash: &str,
        subscriber_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()>;
    /// Takes the enrolment code `code_hash` (unused and `expires_at > now`) and registers
    /// `device` for the code's subscriber, in one transaction. `None` when the code is
    /// unknown, used or expired: of two concurrent registrations with one code exactly one
    /// gets a device. `Conflict` if the device id exists (the code stays unused then).
    async fn register_device(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now: i64,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// A device by id, revoked or not.
    async fn get_device(&self, id: &str) -> StoreResult<Option<DeviceRecord>>;
    /// The unrevoked devices of a subscriber, oldest first.
    async fn devices_of(&self, subscriber_id: &str) -> StoreResult<Vec<DeviceRecord>>;
    /// Revokes a device at `now`; false if it does not exist or was revoked already.
    async fn revoke_device(&self, id: &str, now: i64) -> StoreResult<bool>;
}
