//! The operator's JOSE keys and their lifecycle (`next` → `active` → `retiring` → deleted).
//!
//! Several gateway nodes share one store, so every lifecycle step is one conditional write
//! that only one node can win: at most one `active` and one `next` key per use (unique
//! indexes), and a promotion changes both keys only if both are still in the state the
//! caller saw.

use async_trait::async_trait;

use crate::StoreResult;

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyState {
    /// Published (signing keys), not used yet: RPs learn it before it signs.
    Next,
    /// Signs (or is the encryption key handed out).
    Active,
    /// No longer used; still published (signing keys) or still decrypting (encryption keys)
    /// until `remove_at`, when it is deleted.
    Retiring,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retiring" => Some(KeyState::Retiring),
            _ => None,
        }
    }
}

/// A JOSE key; `private_sealed` is the private key encrypted with the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    /// `sig` or `enc`.
    pub key_use: String,
    pub alg: String,
    pub private_sealed: Vec<u8>,
    pub created_at: i64,
    pub state: KeyState,
    /// `next`: when it is planned to start signing; `active`/`retiring`: when it started.
    pub activates_at: Option<i64>,
    /// `retiring`: when it stopped being used.
    pub deactivated_at: Option<i64>,
    /// `retiring`: when it leaves the JWKS and is deleted.
    pub remove_at: Option<i64>,
}

/// Signing and encryption keys (private parts encrypted by the caller).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every stored key, oldest first.
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Inserts a key in the state it names. `Conflict` if the kid exists, or if it would be
    /// a second `active` or a second `next` key of its use (another node was first).
    async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()>;
    /// One rotation, atomically: the `active` key `from` becomes `retiring` (stopped at
    /// `now`, removed at `remove_at`) and the `next` key `to` (same use) becomes `active`
    /// from `now`. False, and nothing changed, when either is not in that state any more
    /// (another node rotated first).
    async fn promote_key(
        &self,
        from: &str,
        to: &str,
        now: i64,
        remove_at: i64,
    ) -> StoreResult<bool>;
    /// Sets when a `next` key is planned to start signing. False if `kid` is not `next`.
    async fn schedule_key(&self, kid: &str, activates_at: i64) -> StoreResult<bool>;
    /// Deletes the `retiring` keys whose `remove_at <= now`; returns their kids.
    async fn remove_retired_keys(&self, now: i64) -> StoreResult<Vec<String>>;
}
