//! The SIM applet authenticator: the challenge is shown by the applet on the subscriber's
//! SIM through the operator's MSSP ([`crate::mssp`]); LoA2 is "OK", LoA3 the SIM PIN,
//! checked by the card.
//!
//! [`SimApplet::start`] sends the signature request and returns as soon as the MSSP took
//! it (a refusal — unknown SIM, blocked PIN, MSSP down — is a start failure, so the chain
//! hands over to the next authenticator at once). A task then polls the transaction and
//! records the answer through [`crate::answer::answer_challenge`]: a signature approves,
//! `USER_CANCEL` denies, anything else (timeout, OTA error, busy SIM) leaves the session
//! open for the next authenticator of the chain or its own expiry.

use std::sync::Arc;

use async_trait::async_trait;
use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_core::msisdn::Msisdn;
use mc_store::{DynStore, SubscriberRecord};

use crate::answer::{Answer, AnswerContext, PinPolicy, answer_challenge};
use crate::authenticator::{Authenticator, Challenge, Eligibility};
use crate::hub::Hub;
use crate::mssp::{FaultOutcome, MsspClient, MsspError, Status};

/// The capability of a subscriber whose SIM carries the applet.
pub const CAPABILITY: &str = "sim_applet";

/// The SIM applet authenticator.
pub struct SimApplet {
    client: MsspClient,
    store: DynStore,
    hub: Hub,
    policy: PinPolicy,
}

impl SimApplet {
    pub fn new(client: MsspClient, store: DynStore, hub: Hub, policy: PinPolicy) -> Arc<Self> {
        Arc::new(SimApplet {
            client,
            store,
            hub,
            policy,
        })
    }
}

/// The text on the SIM (digest §10.3): the service provider's name with what is asked —
/// the binding message and the context when given, else a plain login question. The
/// MSSP client fits it to the SIM's byte limit.
pub fn sim_text(c: &Challenge) -> String {
    let asked = match (&c.binding_message, &c.context) {
        (Some(b), Some(ctx)) => format!("{b} {ctx}"),
        (Some(b), None) => b.clone(),
        (None, Some(ctx)) => ctx.clone(),
        (None, None) => "Log in?".to_owned(),
    };
    let how = if c.loa == Loa::Three {
        "Enter your SIM PIN to confirm."
    } else {
        "Press OK to confirm."
    };
    format!("{}: {asked} {how}", c.client_name)
}

#[async_trait]
impl Authenticator for SimApplet {
    fn name(&self) -> &'static str {
        CAPABILITY
    }

    fn amr(&self, loa: Loa) -> &'static str {
        match loa {
            Loa::Two => "SIM_OK",
            Loa::Three => "SIM_PIN",
        }
    }

    fn amr_values(&self) -> &'static [&'static str] {
        &["SIM_OK", "SIM_PIN"]
    }

    fn max_loa(&self) -> Loa {
        Loa::Three
    }

    /// The SIM PIN lives on the card, so LoA3 needs no PIN enrolled with us.
    fn eligibility(&self, s: &SubscriberRecord, _loa: Loa) -> Eligibility {
        if s.capabilities.iter().any(|c| c == CAPABILITY) {
            Eligibility::Usable
        } else {
            Eligibility::Skip("no applet-capable SIM")
        }
    }

    async fn start(&self, challenge: &Challenge) -> Result<(), McError> {
        let sub = self
            .store
            .get_subscriber(&challenge.subscriber_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failure reading a subscriber");
                McError::ServerError
            })?
            .ok_or(McError::UnknownUser)?;
        let masked = Msisdn::parse(&sub.msisdn)
            .map(|m| m.masked())
            .unwrap_or_default();
        let pin = challenge.loa == Loa::Three;
        let tx = self
            .client
            .start(&sub.msisdn, &sim_text(challenge), pin, &challenge.session_id)
            .await
            .map_err(|e| {
                tracing::warn!(msisdn = %masked, error = %e, outcome = ?e.outcome(), "sim_applet: not started");
                start_error(&e)
            })?;
        let client = self.client.clone();
        let store = self.store.clone();
        let hub = self.hub.clone();
        let policy = self.policy;
        let authenticator = Arc::new(Self {
            client: client.clone(),
            store: store.clone(),
            hub: hub.clone(),
            policy,
        });
        let session_id = challenge.session_id.clone();
        let subscriber_id = challenge.subscriber_id.clone();
        tokio::spawn(async move {
            let answer = match client.poll(&tx).await {
                Ok(Status::Signed { .. }) => Answer::ApproveVerified,
                Ok(Status::Outstanding) => return,
                Err(e) if e.outcome() == FaultOutcome::Refused => Answer::Deny,
                Err(e) => {
                    tracing::info!(session = %session_id, error = %e, outcome = ?e.outcome(), "sim_applet: no answer; the session stays open");
                    return;
                }
            };
            let ctx = AnswerContext {
                store: store.as_ref(),
                hub: &hub,
                policy,
            };
            let now = unix_now();
            if let Err(e) = answer_challenge(
                &ctx,
                authenticator.as_ref(),
                &session_id,
                &subscriber_id,
                answer,
                now,
            )
            .await
            {
                tracing::warn!(session = %session_id, error = ?e, "sim_applet: answer not recorded");
            }
        });
        Ok(())
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// How a start failure reads to the router (the chain hands over on any error).
fn start_error(e: &MsspError) -> McError {
    match e.outcome() {
        FaultOutcome::Busy => McError::UserBusy,
        FaultOutcome::TextTooLong => McError::InvalidBindingMessage,
        _ => McError::LoaUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(loa: Loa, b: Option<&str>, ctx: Option<&str>) -> Challenge {
        Challenge {
            session_id: "s".into(),
            subscriber_id: "u".into(),
            loa,
            client_name: "OnlineShopper".into(),
            context: ctx.map(str::to_owned),
            binding_message: b.map(str::to_owned),
            expires_at: 0,
        }
    }

    #[test]
    fn sim_text_names_the_sp_and_what_is_asked() {
        assert_eq!(
            sim_text(&challenge(Loa::Two, None, None)),
            "OnlineShopper: Log in? Press OK to confirm."
        );
        assert_eq!(
            sim_text(&challenge(Loa::Three, Some("AB12"), Some("Pay 10 GBP"))),
            "OnlineShopper: AB12 Pay 10 GBP Enter your SIM PIN to confirm."
        );
    }
}
