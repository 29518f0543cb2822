//! Smartphone-app push: the subscriber's device fetches its open challenges and answers
//! them. The sandbox's virtual phone is such a device and uses this same API.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_core::msisdn::Msisdn;
use mc_store::{DynStore, SubscriberRecord};
use serde::Serialize;

use crate::answer::{
    Answer, AnswerContext, AnswerOutcome, PinPolicy, answer_challenge, requested_loa,
};
use crate::authenticator::{Authenticator, Challenge, Eligibility};
use crate::hub::{Event, Hub};
use crate::router::pin_eligibility;

/// The capability a subscriber needs for this authenticator.
pub const CAPABILITY: &str = "app_push";

/// The app-push authenticator. Starting a challenge only announces it: the device long-polls
/// the store-backed challenge list, so there is nothing to deliver and nothing to lose.
pub struct AppPush;

#[async_trait]
impl Authenticator for AppPush {
    fn name(&self) -> &'static str {
        CAPABILITY
    }

    fn amr(&self, loa: Loa) -> &'static str {
        match loa {
            Loa::Two => "PUSH_OK",
            Loa::Three => "PUSH_PIN",
        }
    }

    fn amr_values(&self) -> &'static [&'static str] {
        &["PUSH_OK", "PUSH_PIN"]
    }

    fn max_loa(&self) -> Loa {
        Loa::Three
    }

    fn eligibility(&self, s: &SubscriberRecord, loa: Loa) -> Eligibility {
        if !s.capabilities.iter().any(|c| c == CAPABILITY) {
            return Eligibility::Skip("no registered app");
        }
        pin_eligibility(s, loa)
    }

    async fn start(&self, _challenge: &Challenge) -> Result<(), McError> {
        Ok(())
    }
}

/// A challenge as the device sees it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceChallenge {
    pub id: String,
    pub client_name: String,
    pub context: Option<String>,
    pub binding_message: Option<String>,
    /// `"2"` (tap OK) or `"3"` (enter PIN).
    pub loa: String,
    pub expires_at: i64,
}

/// The device-facing API of the app-push authenticator.
#[derive(Clone)]
pub struct PushChannel {
    store: DynStore,
    hub: Hub,
    pin_policy: PinPolicy,
}

impl PushChannel {
    pub fn new(store: DynStore, hub: Hub, pin_policy: PinPolicy) -> Self {
        PushChannel {
            store,
            hub,
            pin_policy,
        }
    }

    async fn subscriber(&self, msisdn: &Msisdn) -> Result<Option<SubscriberRecord>, McError> {
        self.store
            .find_subscriber_by_msisdn(msisdn.as_str())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failure reading a subscriber");
                McError::ServerError
            })
    }

    /// Open challenges of this number, oldest first.
    pub async fn pending(
        &self,
        msisdn: &Msisdn,
        now: i64,
    ) -> Result<Vec<DeviceChallenge>, McError> {
        let Some(sub) = self.subscriber(msisdn).await? else {
            return Ok(vec![]);
        };
        let sessions = self
            .store
            .pending_for_subscriber(&sub.id, now)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failure listing challenges");
                McError::ServerError
            })?;
        Ok(sessions
            .into_iter()
            .map(|s| DeviceChallenge {
                loa: requested_loa(&s).as_str().to_owned(),
                id: s.id,
                client_name: s.client_name,
                context: s.context,
                binding_message: s.binding_message,
                expires_at: s.expires_at,
            })
            .collect())
    }

    /// Like [`PushChannel::pending`], but waits up to `timeout` for a first challenge (long
    /// poll). Re-reads the store on every wake-up and at least every `recheck`.
    pub async fn wait_pending(
        &self,
        msisdn: &Msisdn,
        timeout: Duration,
        recheck: Duration,
        now: impl Fn() -> i64,
    ) -> Result<Vec<DeviceChallenge>, McError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.pending(msisdn, now()).await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !found.is_empty() || left.is_zero() {
                return Ok(found);
            }
            self.hub
                .wait_for(left.min(recheck), |e| matches!(e, Event::Challenged(_)))
                .await;
        }
    }

    /// The device's answer to one challenge.
    pub async fn answer(
        &self,
        msisdn: &Msisdn,
        challenge_id: &str,
        answer: Answer,
        now: i64,
    ) -> Result<AnswerOutcome, McError> {
        let Some(sub) = self.subscriber(msisdn).await? else {
            return Ok(AnswerOutcome::NotPending);
        };
        let ctx = AnswerContext {
            store: &*self.store,
            hub: &self.hub,
            policy: self.pin_policy,
        };
        answer_challenge(&ctx, &AppPush, challenge_id, &sub.id, answer, now).await
    }
}

/// The shared app-push authenticator.
pub fn app_push() -> Arc<dyn Authenticator> {
    Arc::new(AppPush)
}
