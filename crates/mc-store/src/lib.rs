//! Persistence interfaces of the gateway: small per-concern traits joined in one [`Store`].
//!
//! Each method's doc states its contract; the contracts that make the protocol safe are
//! *atomic* ones (one live transaction per subscriber, take-once codes, one resolution per
//! request), so they are enforced by the backend in one statement or transaction, never by
//! read-then-write in the caller. Backends (`mc-store-sqlite`, later `mc-store-postgres`)
//! convert their driver errors into [`StoreError`] and must pass [`conformance`].
//!
//! Times are Unix seconds (`i64`) passed in by the caller, so tests control the clock and
//! every backend stores the same thing.
#![forbid(unsafe_code)]

mod attributes;
mod client_cache;
pub mod conformance;
mod consent;
mod devices;
mod discovery;
mod keys;
mod mssp;
mod passkeys;
mod pool;
mod quota;
mod records;
mod retention;
mod sms;
mod token_manager;
mod user_codes;

use std::sync::Arc;

use async_trait::async_trait;
pub use attributes::{AttributeStore, AttributesRecord};
pub use client_cache::{CLIENT_CACHE_TTL, ClientCache};
pub use consent::{ConsentChannel, ConsentRecord, ConsentStore, merge_items};
pub use devices::{DeviceRecord, DeviceStore, NewDevice};
pub use discovery::{
    DiscoveryAppRecord, DiscoveryGeneration, DiscoveryStore, IpRangeRecord, NumberEntry,
    NumberKind, OperatorCredentialRecord, OperatorRecord,
};
pub use keys::{KeyRecord, KeyState, KeyStore};
pub use mssp::{MsspRequestRecord, MsspStore};
pub use passkeys::{CeremonyKind, CeremonyRecord, PasskeyRecord, PasskeyStore};
pub use pool::{PoolStats, PoolUsage};
pub use quota::QuotaStore;
pub use records::*;
pub use retention::{PurgeKind, RetentionStore};
pub use sms::{
    LinkAnswer, LinkLookup, OtpCheck, SmsChallengeRecord, SmsChallengeState, SmsMode,
    SmsOutboxItem, SmsStore, VelocityKey,
};
pub use token_manager::{RefreshTokenRecord, Rotation, TokenManagerStore};
pub use user_codes::{UserCodeRecord, UserCodeStore};

/// Storage failures. `Busy` and `Conflict` are answers, not faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The subscriber already has a live transaction.
    #[error("subscriber busy")]
    Busy,
    /// Driver or I/O failure; the text is for logs only.
    #[error("storage backend: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Service providers (the Registry).
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Inserts a new client; `Conflict` if the id exists.
    async fn insert_client(&self, c: &ClientRecord) -> StoreResult<()>;
    /// The record, possibly from the backend's [`ClientCache`]: a change made through this
    /// store is seen at once, one made by another process within [`CLIENT_CACHE_TTL`].
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;
    /// Replaces every field but `client_id` and `created_at`; `NotFound` if absent.
    async fn update_client(&self, c: &ClientRecord) -> StoreResult<()>;
}

/// Subscribers (the Provisioning side).
#[async_trait]
pub trait SubscriberStore: Send + Sync {
    /// Inserts a subscriber; `Conflict` if another non-retired subscriber holds the MSISDN.
    async fn insert_subscriber(&self, s: &SubscriberRecord) -> StoreResult<()>;
    async fn get_subscriber(&self, id: &str) -> StoreResult<Option<SubscriberRecord>>;
    /// The non-retired subscriber holding this number, if any.
    async fn find_subscriber_by_msisdn(
        &self,
        msisdn: &str,
    ) -> StoreResult<Option<SubscriberRecord>>;
    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRecord>>;
    /// Sets status and capabilities; `NotFound` if absent.
    async fn update_subscriber(
        &self,
        id: &str,
        status: SubscriberStatus,
        capabilities: &[String],
    ) -> StoreResult<()>;
    /// Sets (or clears) the PIN hash and clears the failure counter and lock.
    async fn set_pin(&self, id: &str, pin_hash: Option<&str>) -> StoreResult<()>;
    /// Atomically counts one wrong PIN; locks when the count reaches `max_failures`.
    /// Returns the state after the increment.
    async fn record_pin_failure(&self, id: &str, max_failures: u32) -> StoreResult<PinState>;
    /// Clears the failure counter after a correct PIN (the lock is only cleared by `set_pin`).
    async fn clear_pin_failures(&self, id: &str) -> StoreResult<()>;
}

/// Pseudonymous customer references, one per subscriber and sector (digest §7).
#[async_trait]
pub trait PcrStore: Send + Sync {
    /// The PCR of `subscriber_id` in `sector`, creating it from `fresh` on first use. Two
    /// concurrent first uses return the same PCR.
    async fn pcr_for(&self, subscriber_id: &str, sector: &str, fresh: &str) -> StoreResult<String>;
    /// The subscriber `subscriber_id` (`None`: there is none) and its PCR in `sector`, which
    /// [`Self::pcr_for`] creates from `fresh` on first use: one read where the token endpoint
    /// would make two.
    async fn subscriber_and_pcr(
        &self,
        subscriber_id: &str,
        sector: &str,
        fresh: &str,
    ) -> StoreResult<Option<(SubscriberRecord, String)>>;
    /// The subscriber a PCR names within one sector.
    async fn subscriber_for_pcr(&self, sector: &str, pcr: &str) -> StoreResult<Option<String>>;
}

/// Front-channel login sessions and their authorization codes.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Inserts a session. When it names a subscriber and is `Pending`, first expires that
    /// subscriber's stale pending sessions (`expires_at <= now`) and then fails with `Busy`
    /// if a live one remains — atomically: two concurrent creations cannot both succeed.
    async fn create_session(&self, s: &AuthSession, now: i64) -> StoreResult<()> {
        self.create_session_reserving(s, None, now).await
    }
    /// [`Self::create_session`], storing `code` with the session when given: see
    /// [`ReservedCode`].
    async fn create_session_reserving(
        &self,
        s: &AuthSession,
        code: Option<&ReservedCode>,
        now: i64,
    ) -> StoreResult<()>;
    async fn get_session(&self, id: &str) -> StoreResult<Option<AuthSession>>;
    /// `AwaitingNumber` → `Pending` for `subscriber_id`, recording the level the router chose
    /// in `acr`, with the same `Busy` rule as `create_session`. `NotFound` if the session is
    /// not awaiting a number.
    async fn assign_subscriber(
        &self,
        id: &str,
        subscriber_id: &str,
        acr: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Live (`Pending`, unexpired) sessions of a subscriber, oldest first.
    async fn pending_for_subscriber(
        &self,
        subscriber_id: &str,
        now: i64,
    ) -> StoreResult<Vec<AuthSession>>;
    /// Records the phone's answer: `Pending` (unexpired) → `Approved` or `Denied`;
    /// [`Answered::NotPending`] when the session was not pending any more (answered,
    /// expired): the first answer wins. When the session is a back-channel request whose
    /// mode notifies (ping, push, SI), an outbox item for it is enqueued in the same
    /// transaction ([`Answered::BackChannel`]), so only then has the notifier work to do.
    async fn answer_session(
        &self,
        id: &str,
        outcome: &Resolution,
        now: i64,
    ) -> StoreResult<Answered>;
    /// [`Self::answer_session`] for callers that only need to know whether it was pending.
    async fn resolve_session(&self, id: &str, outcome: &Resolution, now: i64) -> StoreResult<bool> {
        Ok(self.answer_session(id, outcome, now).await? != Answered::NotPending)
    }
    /// `Approved` → `CodeIssued` with the code's hash, once (a [`ReservedCode`] is replaced).
    /// False if already issued.
    async fn issue_code(
        &self,
        id: &str,
        code_hash: &str,
        code_expires_at: i64,
    ) -> StoreResult<bool>;
    /// Redeems a code: `CodeIssued` (or `Approved`, for its [`ReservedCode`]) → `Consumed`
    /// atomically, while the code is unexpired. A second redemption of the same code returns
    /// `Replayed` (the caller revokes what the first one issued).
    async fn redeem_code(&self, code_hash: &str, now: i64) -> StoreResult<Redemption>;
    /// The session a code names while [`Self::redeem_code`] would take it (`CodeIssued`, or
    /// `Approved` with its [`ReservedCode`]; unexpired). A read: nothing is consumed.
    async fn find_redeemable(&self, code_hash: &str, now: i64) -> StoreResult<Option<AuthSession>>;
    /// Redeems the code of session `id` (read with [`Self::find_redeemable`]) and stores the
    /// tokens issued for it, in one transaction: `Consumed` and the tokens, or — when the
    /// code is not redeemable any more (redeemed meanwhile, expired) — `false` and nothing
    /// stored. One commit where a redemption and a token insert would make two.
    async fn redeem_code_issuing(
        &self,
        id: &str,
        now: i64,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<bool>;
}

/// Back-channel requests (CIBA, Mobile Connect SI): the session plus its delivery details.
#[async_trait]
pub trait BackchannelStore: Send + Sync {
    /// Inserts a `Pending` session naming a subscriber and its back-channel row, with the
    /// same `Busy` rule as `create_session` (one live transaction per subscriber, whatever
    /// the channel), atomically.
    async fn create_backchannel(
        &self,
        s: &AuthSession,
        b: &BackchannelRecord,
        now: i64,
    ) -> StoreResult<()>;
    async fn get_backchannel(
        &self,
        auth_req_id: &str,
    ) -> StoreResult<Option<(AuthSession, BackchannelRecord)>>;
    /// A poll by `client_id` at the token endpoint. A push-mode request is `PushMode`
    /// (nothing recorded). Sooner than `last_poll_at + interval`:
    /// `SlowDown`, and the interval grows by 5 s (persisted). Otherwise the poll time is
    /// recorded and the answer derives from the stored state only; an approved request is
    /// consumed in the same statement (take-once: of concurrent polls one gets `Approved`).
    /// A request of another client is `Unknown`.
    async fn poll_backchannel(
        &self,
        auth_req_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<PollOutcome>;
    /// `Approved → Consumed` for delivery by notification (push, SI). `None` when it is not
    /// approved (or was consumed already).
    async fn consume_backchannel(&self, auth_req_id: &str) -> StoreResult<Option<AuthSession>>;
    /// Ends pending back-channel requests whose time is up (`expires_at <= now`): each becomes
    /// `Denied` with [`STALE_SESSION_ERROR`] and, when its client is notified, gets an outbox
    /// item, atomically per request. Returns their ids, at most `limit`.
    async fn expire_backchannel(&self, now: i64, limit: u32) -> StoreResult<Vec<String>>;
    /// Number of pending, unexpired back-channel requests (a metric).
    async fn pending_backchannel_count(&self, now: i64) -> StoreResult<u64>;
    /// Remembers a client assertion's `jti` until `expires_at`; false when it was seen
    /// before (a replay, RFC 7523 §3).
    async fn remember_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;
}

/// Durable notification work: enqueued with the state change that causes it, leased by one
/// worker at a time, retried until done.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Up to `limit` items due at `now` (`next_attempt_at <= now`) that no one holds a live
    /// lease on; each is leased until `now + lease_secs`, so across nodes exactly one worker
    /// works on an item at a time.
    async fn lease_outbox(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>>;
    /// Stores the body built on the first attempt, for identical retries.
    async fn set_outbox_payload(&self, id: i64, payload: &[u8]) -> StoreResult<()>;
    /// Done: the item is removed.
    async fn complete_outbox(&self, id: i64) -> StoreResult<()>;
    /// Failed: one more attempt counted, lease released, next attempt at `next_attempt_at`.
    async fn retry_outbox(&self, id: i64, next_attempt_at: i64) -> StoreResult<()>;
    async fn outbox_depth(&self) -> StoreResult<OutboxDepth>;
}

/// Access tokens, stored by hash.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_access_token(&self, t: &AccessTokenRecord) -> StoreResult<()>;
    /// The token if it exists, is unrevoked and unexpired at `now`.
    async fn find_access_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<AccessTokenRecord>>;
    /// Revokes every token issued from one session (code replay, RFC 6749 §4.1.2).
    async fn revoke_tokens_of_session(&self, session_id: &str) -> StoreResult<u64>;
}

/// Everything the gateway persists.
pub trait Store:
    ClientStore
    + SubscriberStore
    + PcrStore
    + SessionStore
    + BackchannelStore
    + OutboxStore
    + TokenStore
    + KeyStore
    + PoolStats
    + RetentionStore
    + AttributeStore
    + ConsentStore
    + DeviceStore
    + DiscoveryStore
    + TokenManagerStore
    + QuotaStore
    + UserCodeStore
    + SmsStore
    + MsspStore
    + PasskeyStore
{
}
impl<
    T: ClientStore
        + SubscriberStore
        + PcrStore
        + SessionStore
        + BackchannelStore
        + OutboxStore
        + TokenStore
        + KeyStore
        + PoolStats
        + RetentionStore
        + AttributeStore
        + ConsentStore
        + DeviceStore
        + DiscoveryStore
        + TokenManagerStore
        + QuotaStore
        + UserCodeStore
        + SmsStore
        + MsspStore
        + PasskeyStore,
> Store for T
{
}

/// The shared handle the gateway holds.
pub type DynStore = Arc<dyn Store>;
