//! Smartphone-app devices: the public keys that sign a subscriber's app-push answers, and
//! the one-time enrolment codes that authorise registering one.
//!
//! An operator's provisioning (or the sandbox, for its virtual phones) hands the subscriber
//! an enrolment code; the app registers its freshly generated key pair's public half with it.
//! The code is taken once, in the same transaction that stores the device, so one code
//! registers at most one device even when two registrations race. Codes are stored by hash
//! only. A device is never deleted, only revoked, so an audit can still name the key that
//! signed an old approval.
//!
//! The subscriber's [`DeviceRecord::CAPABILITY`] follows the devices: registering one adds it
//! and revoking the last unrevoked one removes it, in the same transaction as the device
//! change (the router reads capabilities only, so a subscriber without an app must not
//! keep being asked on it; docs/decisions.md "App push: the capability follows the devices").

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

impl DeviceRecord {
    /// The capability a registered, unrevoked device gives its subscriber (the app-push
    /// authenticator's name).
    pub const CAPABILITY: &'static str = "app_push";

    /// `capabilities` with [`Self::CAPABILITY`] present (`has_device`) or absent, or `None`
    /// when they already are so. Backends call it inside the device transaction, so every
    /// backend keeps the list the same way (order kept, appended at the end).
    pub fn capabilities_for(capabilities: &[String], has_device: bool) -> Option<Vec<String>> {
        let has = capabilities.iter().any(|c| c == Self::CAPABILITY);
        if has == has_device {
            return None;
        }
        let mut out: Vec<String> = capabilities
            .iter()
            .filter(|c| *c != Self::CAPABILITY)
            .cloned()
            .collect();
        if has_device {
            out.push(Self::CAPABILITY.to_owned());
        }
        Some(out)
    }
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
    /// gets a device. `Conflict` if the device id exists (the code stays unused then). The
    /// subscriber gains [`DeviceRecord::CAPABILITY`] in the same transaction.
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
    /// Revokes a device at `now`; false if it does not exist or was revoked already. When
    /// it was the subscriber's last unrevoked device, [`DeviceRecord::CAPABILITY`] is removed in
    /// the same transaction (a concurrent registration for the same subscriber is ordered
    /// before or after it, never lost).
    async fn revoke_device(&self, id: &str, now: i64) -> StoreResult<bool>;
}
