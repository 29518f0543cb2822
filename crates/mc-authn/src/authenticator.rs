//! The authenticator trait: one implementation per way of reaching the phone.

use async_trait::async_trait;
use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_store::SubscriberRecord;

/// What the phone is asked to confirm.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub session_id: String,
    pub subscriber_id: String,
    pub loa: Loa,
    pub client_name: String,
    pub context: Option<String>,
    pub binding_message: Option<String>,
    pub expires_at: i64,
}

/// Whether an authenticator can serve a subscriber at a level, and if not, why (logged by
/// the router so its choice is explainable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eligibility {
    Usable,
    Skip(&'static str),
}

/// One way of reaching the subscriber.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Configuration name, e.g. `app_push`.
    fn name(&self) -> &'static str;
    /// The `amr` value reported when this authenticator succeeds at `loa`.
    fn amr(&self, loa: Loa) -> &'static str;
    /// Every `amr` value it can produce (for `mc_amr_values_supported`).
    fn amr_values(&self) -> &'static [&'static str];
    /// The highest level it can reach.
    fn max_loa(&self) -> Loa;
    /// Whether it can serve this subscriber at this level right now.
    fn eligibility(&self, subscriber: &SubscriberRecord, loa: Loa) -> Eligibility;
    /// Delivers the challenge to the phone (SMS, SIM push, app notification …). The answer
    /// comes back later through [`crate::answer::answer_challenge`].
    async fn start(&self, challenge: &Challenge) -> Result<(), McError>;
}
