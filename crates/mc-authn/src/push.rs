//! Smartphone-app push: the subscriber's device fetches its open challenges and answers
//! them. The sandbox's virtual phone is such a device and uses this same API.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mc_core::acr::Loa;
use mc_core::consent;
use mc_core::error::McError;
use mc_core::msisdn::Msisdn;
use mc_store::{AuthSession, DynStore, SubscriberRecord};
use serde::Serialize;

use crate::answer::{
    Answer, AnswerContext, AnswerOutcome, PinPolicy, answer_read_challenge, requested_loa,
};
use crate::authenticator::{Authenticator, Challenge, Eligibility};
use crate::hub::{Event, Hub};
use crate::router::pin_eligibility;

mod devices;
pub use devices::{DeviceError, ENROLMENT_TTL_SECS};

/// The capability a subscriber needs for this authenticator (a registered, unrevoked device
/// gives it: the store keeps it with the devices).
pub const CAPABILITY: &str = mc_store::DeviceRecord::CAPABILITY;

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
    /// The attributes the service provider asks for that the subscriber has not yet agreed
    /// to share with it; absent when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentAsk>,
}

/// The consent question shown with a challenge.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConsentAsk {
    /// Consent items (`mc_core::consent`), as the answer's `share` refers to them.
    pub items: Vec<String>,
    /// What each item releases, in words for the screen (same order).
    pub labels: Vec<String>,
    /// Refusing ends the login (an identity product was asked): the device offers
    /// "approve and share" or "deny", no "approve without sharing".
    pub required: bool,
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
        match self.subscriber(msisdn).await? {
            Some(sub) => self.pending_of(&sub, now).await,
            None => Ok(vec![]),
        }
    }

    /// Open challenges of a subscriber, oldest first.
    pub async fn pending_of(
        &self,
        sub: &SubscriberRecord,
        now: i64,
    ) -> Result<Vec<DeviceChallenge>, McError> {
        let sessions = self
            .store
            .pending_for_subscriber(&sub.id, now)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failure listing challenges");
                McError::ServerError
            })?;
        let mut out = Vec::with_capacity(sessions.len());
        for s in sessions {
            let consent = self.consent_ask(&sub.id, &s).await?;
            out.push(DeviceChallenge {
                loa: requested_loa(&s).as_str().to_owned(),
                id: s.id,
                client_name: s.client_name,
                context: s.context,
                binding_message: s.binding_message,
                expires_at: s.expires_at,
                consent,
            });
        }
        Ok(out)
    }

    /// The consent items of a session's request that the subscriber has not given its
    /// client yet (none for an authentication-only request: no store read then).
    async fn missing_consent(
        &self,
        subscriber_id: &str,
        s: &AuthSession,
    ) -> Result<Vec<String>, McError> {
        let requested = consent::requested_items(&s.scope, s.claims.as_deref());
        if requested.is_empty() {
            return Ok(requested);
        }
        let given = self
            .store
            .consent_for(subscriber_id, &s.client_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failure reading consent");
                McError::ServerError
            })?
            .map(|c| c.scopes)
            .unwrap_or_default();
        Ok(consent::missing_items(&requested, &given))
    }

    async fn consent_ask(
        &self,
        subscriber_id: &str,
        s: &AuthSession,
    ) -> Result<Option<ConsentAsk>, McError> {
        let items = self.missing_consent(subscriber_id, s).await?;
        Ok((!items.is_empty()).then(|| ConsentAsk {
            labels: items.iter().map(|i| consent::label(i)).collect(),
            required: consent::refusal_denies(&items),
            items,
        }))
    }

    /// Like [`PushChannel::pending`], but waits up to `timeout` for a first challenge (long
    /// poll). Re-reads the store on every wake-up and at least every `recheck`; only this
    /// number's challenges wake it.
    pub async fn wait_pending(
        &self,
        msisdn: &Msisdn,
        timeout: Duration,
        recheck: Duration,
        now: impl Fn() -> i64,
    ) -> Result<Vec<DeviceChallenge>, McError> {
        match self.subscriber(msisdn).await? {
            Some(sub) => self.wait_pending_of(&sub, timeout, recheck, now).await,
            None => Ok(vec![]),
        }
    }

    /// [`PushChannel::wait_pending`] for a known subscriber.
    pub async fn wait_pending_of(
        &self,
        sub: &SubscriberRecord,
        timeout: Duration,
        recheck: Duration,
        now: impl Fn() -> i64,
    ) -> Result<Vec<DeviceChallenge>, McError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut watch: Option<crate::hub::Watch> = None;
        loop {
            let found = self.pending_of(sub, now()).await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !found.is_empty() || left.is_zero() {
                return Ok(found);
            }
            match &watch {
                Some(w) => {
                    w.wait(left.min(recheck)).await;
                }
                // First empty read: watch this subscriber's challenges, then read again (a
                // challenge made between the read and the watch is found by that read).
                None => watch = Some(self.hub.watch(Event::Challenged(sub.id.clone()))),
            }
        }
    }

    /// Watches this subscriber's new challenges (for a stream that re-reads on each).
    pub fn watch_challenges(&self, sub: &SubscriberRecord) -> crate::hub::Watch {
        self.hub.watch(Event::Challenged(sub.id.clone()))
    }

    /// The device's answer to one challenge. Approving a challenge that showed a consent
    /// question shares what it asked for (see [`PushChannel::answer_sharing`]).
    pub async fn answer(
        &self,
        msisdn: &Msisdn,
        challenge_id: &str,
        answer: Answer,
        now: i64,
    ) -> Result<AnswerOutcome, McError> {
        self.answer_sharing(msisdn, challenge_id, answer, true, now)
            .await
    }

    /// The device's answer with the subscriber's consent decision. `share`: the requested
    /// attributes are released to the service provider; consent is recorded with the
    /// approval (after the PIN check). Approving with `share = false` grants the login
    /// without the attributes, unless their release was the purpose of the request
    /// ([`ConsentAsk::required`]): then it is a denial.
    pub async fn answer_sharing(
        &self,
        msisdn: &Msisdn,
        challenge_id: &str,
        answer: Answer,
        share: bool,
        now: i64,
    ) -> Result<AnswerOutcome, McError> {
        let Some(sub) = self.subscriber(msisdn).await? else {
            return Ok(AnswerOutcome::NotPending);
        };
        // An unsigned answer cannot vouch for a user check of its own: its approvals go
        // through our PIN check.
        let answer = match answer {
            Answer::ApproveVerified => Answer::Approve { pin: None },
            other => other,
        };
        self.answer_of(&sub, challenge_id, answer, share, now).await
    }

    /// Records `sub`'s answer with its consent decision (see [`PushChannel::answer_sharing`]).
    async fn answer_of(
        &self,
        sub: &SubscriberRecord,
        challenge_id: &str,
        answer: Answer,
        share: bool,
        now: i64,
    ) -> Result<AnswerOutcome, McError> {
        let session = self.challenge(challenge_id).await?;
        self.answer_read(sub, session, answer, share, now).await
    }

    /// The challenge as stored (`None`: no such session).
    async fn challenge(&self, challenge_id: &str) -> Result<Option<AuthSession>, McError> {
        self.store.get_session(challenge_id).await.map_err(|e| {
            tracing::error!(error = %e, "store failure reading a challenge");
            McError::ServerError
        })
    }

    /// [`PushChannel::answer_of`] for a challenge just read: the one read serves both the
    /// consent question and the answer ([`answer_read_challenge`]).
    async fn answer_read(
        &self,
        sub: &SubscriberRecord,
        session: Option<AuthSession>,
        mut answer: Answer,
        share: bool,
        now: i64,
    ) -> Result<AnswerOutcome, McError> {
        let mut items: Option<Vec<String>> = None;
        if matches!(answer, Answer::Approve { .. })
            && let Some(session) = session
                .as_ref()
                .filter(|s| s.subscriber_id.as_deref() == Some(&sub.id))
        {
            if share {
                items = Some(consent::requested_items(
                    &session.scope,
                    session.claims.as_deref(),
                ));
            } else if consent::refusal_denies(&self.missing_consent(&sub.id, session).await?) {
                answer = Answer::Deny;
            }
        }
        let ctx = AnswerContext {
            store: &*self.store,
            hub: &self.hub,
            policy: self.pin_policy,
        };
        answer_read_challenge(
            &ctx,
            &AppPush,
            session,
            &sub.id,
            answer,
            items.as_deref(),
            now,
        )
        .await
    }
}

/// The shared app-push authenticator.
pub fn app_push() -> Arc<dyn Authenticator> {
    Arc::new(AppPush)
}
