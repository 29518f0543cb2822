//! Passkeys (FIDO2 / WebAuthn credentials) of subscribers, and the short-lived state of the
//! WebAuthn ceremonies that create and use them.
//!
//! The store keeps both opaque: a credential's `passkey` and a ceremony's `state` are JSON
//! written and read by the WebAuthn relying party (`mc-authn`'s passkey authenticator). What
//! the store guarantees is what makes the ceremonies safe across gateway nodes:
//!
//! * a credential id is registered once, to one subscriber (WebAuthn §7.1 step 22: a
//!   credential id already known must be refused);
//! * a ceremony is taken **once**: of two requests finishing the same ceremony (a replayed
//!   assertion, a double submit) exactly one gets its state, so a challenge is never
//!   accepted twice, whichever node each request reaches;
//! * a use is recorded only while the signature counter moves forward (WebAuthn §6.1.1: a
//!   counter that does not grow hints at a cloned authenticator), atomically, so two
//!   assertions carrying the same counter cannot both be recorded.

use async_trait::async_trait;

use crate::StoreResult;

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The credential id, base64url without padding (as WebAuthn puts it on the wire).
    pub credential_id: String,
    pub subscriber_id: String,
    /// The relying party's serialized credential (public key, counter, backup flags).
    pub passkey: String,
    /// The authenticator's signature counter at the last recorded use (0: it keeps none).
    pub counter: u32,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Which ceremony a pending state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Enrolment of a new passkey by a logged-in subscriber.
    Registration,
    /// An assertion for a login session.
    Authentication,
    /// The passkey authenticator was started for a login session: its waiting page may ask
    /// the browser for an assertion. Holds no WebAuthn state.
    Offer,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Registration => "registration",
            CeremonyKind::Authentication => "authentication",
            CeremonyKind::Offer => "offer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "registration" => Some(CeremonyKind::Registration),
            "authentication" => Some(CeremonyKind::Authentication),
            "offer" => Some(CeremonyKind::Offer),
            _ => None,
        }
    }
}

/// The pending state of one ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// Random, unguessable (it is the handle the browser echoes back).
    pub id: String,
    pub kind: CeremonyKind,
    pub subscriber_id: String,
    /// The login session an authentication (or offer) belongs to.
    pub session_id: Option<String>,
    /// The relying party's serialized ceremony state (challenge, allowed credentials).
    pub state: String,
    pub expires_at: i64,
}

/// Passkeys and ceremony state.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Registers a passkey. `Conflict("credential id")` when the credential id is registered
    /// already (to anyone); `NotFound` when the subscriber does not exist.
    async fn insert_passkey(&self, p: &PasskeyRecord) -> StoreResult<()>;
    /// The passkeys of a subscriber, oldest first.
    async fn passkeys_of(&self, subscriber_id: &str) -> StoreResult<Vec<PasskeyRecord>>;
    /// One passkey by credential id.
    async fn get_passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>>;
    /// Records a successful use: the updated `passkey`, `counter` and `last_used_at = now`,
    /// only if `counter` is greater than the stored counter, or both are 0 (an authenticator
    /// without a counter). Returns false (nothing changed) otherwise or when the credential
    /// is unknown. Atomic: of two uses with the same non-zero counter one is recorded.
    async fn record_passkey_use(
        &self,
        credential_id: &str,
        passkey: &str,
        counter: u32,
        now: i64,
    ) -> StoreResult<bool>;
    /// Removes one passkey of `subscriber_id`; false when it has no such passkey.
    async fn delete_passkey(&self, subscriber_id: &str, credential_id: &str) -> StoreResult<bool>;
    /// Stores a ceremony's state, first removing every ceremony expired at `now` (so the
    /// table holds live ceremonies only, without a sweeper). `Conflict("ceremony id")` when
    /// the id exists; `NotFound` when the subscriber does not exist.
    async fn put_ceremony(&self, c: &CeremonyRecord, now: i64) -> StoreResult<()>;
    /// A live (`expires_at > now`) ceremony, left in place.
    async fn get_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<CeremonyRecord>>;
    /// Removes a ceremony and returns it if it was live: take-once, of concurrent takes of
    /// one id at most one gets it.
    async fn take_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<CeremonyRecord>>;
}
