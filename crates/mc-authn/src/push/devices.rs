//! The operator app's side of [`PushChannel`]: enrolment codes, device registration, and
//! requests signed with the device key (see [`crate::device_key`]).
//!
//! A registered device is what gives a subscriber the `app_push` capability. Its answers
//! are bound to it: the challenge id, the decision and the user-verification flag are
//! signed, fresh (`iat`), and used once (`nonce`, remembered until the freshness window
//! closes); on top of that the challenge's resolution is take-once in the store.

use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_store::{AuthSession, DeviceRecord, NewDevice, StoreError, SubscriberRecord};

use super::PushChannel;
use crate::answer::{Answer, AnswerOutcome, requested_loa};
use crate::device_key::{
    self, Deregistration, DeviceKeyError, FetchProof, MAX_SKEW_SECS, SignedAnswer,
};

/// How long an enrolment code stays usable by default.
pub const ENROLMENT_TTL_SECS: i64 = 15 * 60;

/// Why a device request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Key(#[from] DeviceKeyError),
    #[error("unknown or revoked device")]
    UnknownDevice,
    #[error("the enrolment code is unknown, used or expired")]
    InvalidEnrolmentCode,
    #[error("this signed answer was seen before")]
    Replayed,
    #[error("the signed answer names another challenge")]
    WrongChallenge,
    #[error("decision must be approve or deny")]
    BadDecision,
    #[error("LoA3 needs the user verified on the device (uv pin or biometric)")]
    UserVerificationRequired,
    #[error("server error")]
    Server,
}

impl From<McError> for DeviceError {
    fn from(_: McError) -> Self {
        DeviceError::Server
    }
}

/// An LoA3 challenge: the device must verify its user (PIN or biometric) to approve it.
fn needs_user_verification(challenge: Option<&AuthSession>) -> bool {
    challenge.is_some_and(|s| requested_loa(s) == Loa::Three)
}

fn store_failure(e: StoreError) -> DeviceError {
    tracing::error!(error = %e, "store failure in the device API");
    DeviceError::Server
}

/// 128 random bits as hex (enrolment codes, device ids).
fn random_hex() -> Result<String, DeviceError> {
    crate::util::random_hex::<16>().ok_or(DeviceError::Server)
}

/// Enrolment codes are stored by SHA-256 only.
fn code_hash(code: &str) -> String {
    mc_core::hash::sha256_hex(code)
}

impl PushChannel {
    /// Issues a one-time enrolment code for `subscriber_id` (provisioning, or the sandbox for
    /// its virtual phones). The code is returned once and stored by hash.
    pub async fn enrol(
        &self,
        subscriber_id: &str,
        ttl_secs: i64,
        now: i64,
    ) -> Result<String, DeviceError> {
        let code = random_hex()?;
        self.store
            .create_enrolment_code(&code_hash(&code), subscriber_id, now + ttl_secs, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => DeviceError::UnknownDevice,
                other => store_failure(other),
            })?;
        Ok(code)
    }

    /// Registers a device from its self-signed registration (see
    /// [`device_key::verify_registration`]); the subscriber gains the `app_push` capability
    /// in the store's transaction (a registered app *is* the capability).
    pub async fn register(&self, jws: &str, now: i64) -> Result<DeviceRecord, DeviceError> {
        let reg = device_key::verify_registration(jws, now)?;
        let device = NewDevice {
            id: random_hex()?,
            public_jwk: reg.public_jwk,
            label: reg.label,
        };
        let record = self
            .store
            .register_device(&code_hash(&reg.enrolment_code), &device, now)
            .await
            .map_err(store_failure)?
            .ok_or(DeviceError::InvalidEnrolmentCode)?;
        tracing::info!(device = %record.id, "app device registered");
        Ok(record)
    }

    /// The subscriber's registered, unrevoked devices, oldest first.
    pub async fn devices(&self, subscriber_id: &str) -> Result<Vec<DeviceRecord>, DeviceError> {
        self.store
            .devices_of(subscriber_id)
            .await
            .map_err(store_failure)
    }

    /// Revokes one of the subscriber's devices (a lost phone, an uninstalled app): it can
    /// no longer fetch or answer, and when it was the last one the subscriber loses the
    /// `app_push` capability in the same store transaction, so the router stops choosing
    /// the app. False when `device_id` is not an unrevoked device of this subscriber.
    pub async fn revoke(
        &self,
        subscriber_id: &str,
        device_id: &str,
        now: i64,
    ) -> Result<bool, DeviceError> {
        let mine = self
            .store
            .get_device(device_id)
            .await
            .map_err(store_failure)?
            .is_some_and(|d| d.subscriber_id == subscriber_id && d.revoked_at.is_none());
        if !mine {
            return Ok(false);
        }
        let revoked = self
            .store
            .revoke_device(device_id, now)
            .await
            .map_err(store_failure)?;
        if revoked {
            tracing::info!(device = %device_id, "app device revoked");
        }
        Ok(revoked)
    }

    /// A device revokes itself ([`Deregistration`], signed by its key and naming
    /// its own id), as [`PushChannel::revoke`] does for provisioning: when it was the
    /// subscriber's last, the app stops being chosen.
    pub async fn deregister(&self, jws: &str, now: i64) -> Result<(), DeviceError> {
        let (device, sub) = self.signer(jws).await?;
        let signed: Deregistration =
            device_key::verify_device(jws, &device.public_jwk, |d: &Deregistration| d.iat, now)?;
        if signed.deregister != device.id {
            return Err(DeviceError::Key(DeviceKeyError::Malformed));
        }
        // Revoked by a concurrent request in the meantime: the outcome is the same.
        self.revoke(&sub.id, &device.id, now).await?;
        Ok(())
    }

    /// The registered, unrevoked device that signed `jws`, with its subscriber.
    async fn signer(&self, jws: &str) -> Result<(DeviceRecord, SubscriberRecord), DeviceError> {
        let kid = device_key::kid(jws)?;
        if kid.len() > 64 {
            return Err(DeviceError::UnknownDevice);
        }
        let device = self
            .store
            .get_device(&kid)
            .await
            .map_err(store_failure)?
            .filter(|d| d.revoked_at.is_none())
            .ok_or(DeviceError::UnknownDevice)?;
        let sub = self
            .store
            .get_subscriber(&device.subscriber_id)
            .await
            .map_err(store_failure)?
            .ok_or(DeviceError::UnknownDevice)?;
        Ok((device, sub))
    }

    /// Authenticates a challenge fetch: a fresh proof signed by a registered device.
    pub async fn authenticate(
        &self,
        proof: &str,
        now: i64,
    ) -> Result<(DeviceRecord, SubscriberRecord), DeviceError> {
        let (device, sub) = self.signer(proof).await?;
        device_key::verify_device::<FetchProof>(proof, &device.public_jwk, |p| p.iat, now)?;
        Ok((device, sub))
    }

    /// A device's signed answer to challenge `challenge_id`.
    ///
    /// LoA3: the answer must say how the app verified its user: `uv: "pin"` sends the PIN
    /// inside the signed answer and the gateway checks it (one PIN, one failure counter for
    /// every channel); `uv: "biometric"` is the app's assertion, trusted because only the
    /// registered key can sign it (the FIDO user-verification model). Without either, a
    /// LoA3 approval is refused and the challenge stays open.
    pub async fn answer_signed(
        &self,
        challenge_id: &str,
        jws: &str,
        now: i64,
    ) -> Result<AnswerOutcome, DeviceError> {
        let (device, sub) = self.signer(jws).await?;
        let signed: SignedAnswer =
            device_key::verify_device(jws, &device.public_jwk, |a: &SignedAnswer| a.iat, now)?;
        if signed.challenge != challenge_id {
            return Err(DeviceError::WrongChallenge);
        }
        if signed.nonce.is_empty() || signed.nonce.len() > 128 {
            return Err(DeviceError::Key(DeviceKeyError::Malformed));
        }
        // Remembered past the end of the freshness window, so a replay is either stale or
        // known. Device nonces share the assertion-id table under their own namespace.
        let fresh = self
            .store
            .remember_jti(
                &format!("device:{}", device.id),
                &signed.nonce,
                signed.iat + 2 * MAX_SKEW_SECS,
                now,
            )
            .await
            .map_err(store_failure)?;
        if !fresh {
            return Err(DeviceError::Replayed);
        }
        let unverified = signed.uv.is_none();
        let answer = match (signed.decision.as_str(), signed.uv.as_deref()) {
            ("deny", _) => Answer::Deny,
            ("approve", Some("biometric")) => Answer::ApproveVerified,
            ("approve", Some("pin")) => Answer::Approve { pin: signed.pin },
            ("approve", None) => Answer::Approve { pin: None },
            ("approve", Some(_)) => return Err(DeviceError::Key(DeviceKeyError::Malformed)),
            _ => return Err(DeviceError::BadDecision),
        };
        // Read once: it decides whether an unverified approval may stand, and is answered.
        let session = self.challenge(challenge_id).await?;
        if unverified
            && matches!(answer, Answer::Approve { .. })
            && needs_user_verification(session.as_ref())
        {
            return Err(DeviceError::UserVerificationRequired);
        }
        let share = signed.share.unwrap_or(true);
        let outcome = self.answer_read(&sub, session, answer, share, now).await?;
        tracing::info!(device = %device.id, session = %challenge_id, ?outcome, "signed device answer");
        Ok(outcome)
    }
}
