//! The SIM applet authenticator's durable MSSP requests (ETSI TS 102 204 `MSS_Signature`):
//! one row per login, written *before* the request goes to the MSSP, so an accepted login
//! is never forgotten by a crash.
//!
//! A row is held by one poller at a time through a lease (`lease_owner`, `lease_until`):
//! the node that starts the request holds it and renews it while it polls; after a crash
//! the lease runs out and a worker on any node leases the row and carries on — it polls
//! when the MSSP's transaction id is known (`mssp_trans_id`), and otherwise sends the
//! request again with the same `AP_TransID`, so the MSSP can tell a retransmission from a
//! new request. Writes of a holder are fenced by its owner token: a poller that lost its
//! lease (stalled past `lease_until`) cannot overwrite the new holder's state. The row,
//! with the SIM text in it, is deleted once the transaction is over.

use async_trait::async_trait;

use crate::{OutboxDepth, StoreResult};

/// One MSSP request of a login; its id is the login session's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsspRequestRecord {
    pub session_id: String,
    pub subscriber_id: String,
    /// Destination, E.164 with `+`.
    pub msisdn: String,
    /// The text on the SIM (already fitted to its limit).
    pub text: String,
    /// LoA3: the SIM PIN is asked.
    pub pin_required: bool,
    /// Our `AP_TransID`: the same on every (re)send of this request.
    pub ap_trans_id: String,
    /// The MSSP's `MSSP_TransID`, `None` until the MSSP accepted the request.
    pub mssp_trans_id: Option<String>,
    /// Times the request was taken over by a worker after its holder's lease ran out.
    pub attempts: u32,
    /// Who holds the lease (a token per lease, not per node).
    pub lease_owner: String,
    pub lease_until: i64,
    /// The transaction is over by then (MSSP `TimeOut`): not leased after it, purged.
    pub expires_at: i64,
    pub created_at: i64,
}

/// Durable MSSP requests.
#[async_trait]
pub trait MsspStore: Send + Sync {
    /// Records an accepted request, leased to `r.lease_owner` until `r.lease_until`.
    /// `Conflict` if the session already has one.
    async fn create_mssp_request(&self, r: &MsspRequestRecord) -> StoreResult<()>;
    async fn get_mssp_request(&self, session_id: &str) -> StoreResult<Option<MsspRequestRecord>>;
    /// The MSSP accepted the request: stores its transaction id and renews the lease, if
    /// `owner` still holds it. False when the lease was lost or the row is gone (then the
    /// caller stops: someone else carries the request).
    async fn set_mssp_trans_id(
        &self,
        session_id: &str,
        owner: &str,
        mssp_trans_id: &str,
        lease_until: i64,
    ) -> StoreResult<bool>;
    /// Extends `owner`'s lease; false when it does not hold it any more.
    async fn renew_mssp_lease(
        &self,
        session_id: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool>;
    /// Up to `limit` unexpired requests (`expires_at > now`) whose lease ran out
    /// (`lease_until <= now`), each leased to `owner` until `now + lease_secs` with one
    /// more attempt counted, atomically: across nodes one worker takes a given request.
    async fn lease_mssp_requests(
        &self,
        now: i64,
        lease_secs: i64,
        owner: &str,
        limit: u32,
    ) -> StoreResult<Vec<MsspRequestRecord>>;
    /// The transaction is over (answered, refused, timed out): the row and its text are
    /// deleted. Idempotent.
    async fn complete_mssp_request(&self, session_id: &str) -> StoreResult<()>;
    /// Forgets requests that expired before `before` (the worker's housekeeping).
    async fn purge_mssp_requests(&self, before: i64) -> StoreResult<u64>;
    /// Requests not over yet, and the oldest's `created_at` (a metric, and a test hook).
    async fn mssp_outbox_depth(&self) -> StoreResult<OutboxDepth>;
}
