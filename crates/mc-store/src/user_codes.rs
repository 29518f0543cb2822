//! CIBA user codes (CIBA Core §7.1 `user_code`): a secret the subscriber chose, known to the
//! OP, which a service provider must present for an authentication request to reach the
//! phone. Stored hashed (the caller hashes with Argon2id, like PINs); wrong codes are counted
//! and lock the code until provisioning sets a new one, so it cannot be guessed through the
//! back channel.

use async_trait::async_trait;

use crate::{PinState, StoreResult};

/// A subscriber's user code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCodeRecord {
    pub subscriber_id: String,
    /// Argon2id PHC string.
    pub code_hash: String,
    pub failures: u32,
    pub locked: bool,
}

/// Per-subscriber CIBA user codes.
#[async_trait]
pub trait UserCodeStore: Send + Sync {
    /// Sets (`Some`, clearing failures and the lock) or removes (`None`) the code;
    /// `NotFound` when no subscriber has that id.
    async fn set_user_code(&self, subscriber_id: &str, code_hash: Option<&str>) -> StoreResult<()>;
    /// The subscriber's code, `None` when none was set.
    async fn get_user_code(&self, subscriber_id: &str) -> StoreResult<Option<UserCodeRecord>>;
    /// Counts a wrong code, locking at `max_failures`, atomically; `NotFound` without a code.
    async fn record_user_code_failure(
        &self,
        subscriber_id: &str,
        max_failures: u32,
    ) -> StoreResult<PinState>;
    /// A right code resets the count.
    async fn clear_user_code_failures(&self, subscriber_id: &str) -> StoreResult<()>;
}
