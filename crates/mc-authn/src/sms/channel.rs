//! The answers to an SMS challenge: a code typed in the browser, a link opened on the
//! phone. Both end in [`crate::answer::answer_challenge`] (take-once in the store), with
//! the amr of the channel that answered.
//!
//! Opening a link (`GET`) changes nothing — link previews and scanners fetch URLs — the
//! answer is the confirm/reject form's `POST`. A double click finds the first answer and
//! shows it again; an expired, used or unknown link gets its own clear answer.

use mc_core::error::McError;
use mc_store::{
    Answered, DynStore, LinkAnswer, LinkLookup, OtpCheck, Resolution, SmsChallengeRecord,
    SmsChallengeState,
};

use super::authenticator::{AMR_OTP, AMR_URL, AnsweredBy};
use super::secret;
use crate::answer::{Answer, AnswerContext, AnswerOutcome, PinPolicy, answer_challenge};
use crate::hub::Hub;
use crate::util::now;

/// The stored denial of a login whose code was mistyped too often (digest §9.4:
/// "the client has run out of attempts to authorize by sms code").
pub const OTP_LOCKED: &str = crate::answer::denial::OTP_LOCKED;

/// Longest typed code looked at; longer input is a wrong code.
const MAX_CODE_LEN: usize = 16;

/// What a typed code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    Approved,
    Wrong {
        remaining: u32,
    },
    /// Too many wrong codes: the login is refused and SMS codes locked for the subscriber.
    Locked,
    /// No code expected for this login (unknown, expired, answered).
    NotPending,
}

/// What a link shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkView {
    /// Waiting: the confirm/reject form for this request.
    Open {
        client_name: String,
        context: Option<String>,
        binding_message: Option<String>,
    },
    Confirmed,
    Rejected,
    /// Time is up (or the login ended another way).
    Expired,
    /// Too many wrong codes were typed for this login.
    Locked,
    Unknown,
}

/// The SMS answer API (the gateway's `/sms/...` routes).
#[derive(Clone)]
pub struct SmsChannel {
    store: DynStore,
    hub: Hub,
    max_attempts: u32,
}

fn backend(e: mc_store::StoreError) -> McError {
    tracing::error!(error = %e, "store failure answering an SMS challenge");
    McError::ServerError
}

impl SmsChannel {
    pub fn new(store: DynStore, hub: Hub, max_attempts: u32) -> Self {
        SmsChannel {
            store,
            hub,
            max_attempts: max_attempts.max(1),
        }
    }

    fn ctx(&self) -> AnswerContext<'_> {
        AnswerContext {
            store: &*self.store,
            hub: &self.hub,
            // SMS is LoA2: no PIN is consulted.
            policy: PinPolicy { max_failures: 1 },
        }
    }

    /// Whether a login has an SMS code to type (the waiting page shows the form then).
    pub async fn expects_code(&self, session_id: &str) -> Result<bool, McError> {
        let c = self
            .store
            .get_sms_challenge(session_id)
            .await
            .map_err(backend)?;
        Ok(c.is_some_and(|c| {
            c.otp_hash.is_some() && c.state == SmsChallengeState::Waiting && c.expires_at > now()
        }))
    }

    /// A code typed in the browser that started login `session_id`.
    pub async fn submit_code(&self, session_id: &str, typed: &str) -> Result<CodeOutcome, McError> {
        let t = now();
        let typed: String = typed.trim().chars().take(MAX_CODE_LEN + 1).collect();
        // An over-long or non-numeric entry is a wrong code like any other (it counts).
        let hash = secret::code_hash(session_id, &typed);
        let check = self
            .store
            .check_sms_otp(session_id, &hash, self.max_attempts, t)
            .await
            .map_err(backend)?;
        let Some(challenge) = self
            .store
            .get_sms_challenge(session_id)
            .await
            .map_err(backend)?
        else {
            return Ok(CodeOutcome::NotPending);
        };
        match check {
            OtpCheck::Matched => {
                let via = AnsweredBy {
                    name: "sms_otp",
                    amr: AMR_OTP,
                };
                let outcome = answer_challenge(
                    &self.ctx(),
                    &via,
                    session_id,
                    &challenge.subscriber_id,
                    Answer::Approve { pin: None },
                    t,
                )
                .await?;
                Ok(match outcome {
                    AnswerOutcome::Approved => CodeOutcome::Approved,
                    _ => CodeOutcome::NotPending,
                })
            }
            OtpCheck::Wrong { remaining } => {
                tracing::warn!(session = %session_id, remaining, "wrong SMS code");
                Ok(CodeOutcome::Wrong { remaining })
            }
            OtpCheck::Locked => {
                self.lock(&challenge, t).await?;
                Ok(CodeOutcome::Locked)
            }
            OtpCheck::NotPending => Ok(CodeOutcome::NotPending),
        }
    }

    /// Too many wrong codes: SMS codes are locked for the subscriber until provisioning
    /// lifts it, and the login is refused.
    async fn lock(&self, c: &SmsChallengeRecord, t: i64) -> Result<(), McError> {
        tracing::warn!(session = %c.session_id, subscriber = %c.subscriber_id, "too many wrong SMS codes; locked");
        metrics::counter!("mc_sms_otp_locked_total").increment(1);
        self.store
            .lock_sms(&c.subscriber_id, t)
            .await
            .map_err(backend)?;
        let denied = Resolution::Denied {
            error: OTP_LOCKED.into(),
        };
        let answered = self
            .store
            .answer_session(&c.session_id, &denied, t)
            .await
            .map_err(backend)?;
        if answered != Answered::NotPending {
            metrics::counter!("logins_total", "authenticator" => "sms_otp", "outcome" => "locked")
                .increment(1);
        }
        self.hub.publish_answer(&c.session_id, answered, &denied);
        Ok(())
    }

    /// What a link shows when opened.
    pub async fn open_link(&self, token: &str) -> Result<LinkView, McError> {
        if !secret::is_link_token(token) {
            return Ok(LinkView::Unknown);
        }
        let found = self
            .store
            .find_sms_link(&secret::link_hash(token))
            .await
            .map_err(backend)?;
        let LinkLookup::Found(c) = found else {
            return Ok(LinkView::Unknown);
        };
        self.view(&c, now()).await
    }

    /// The confirm (`true`) or reject button of a link's page.
    pub async fn answer_link(&self, token: &str, confirm: bool) -> Result<LinkView, McError> {
        if !secret::is_link_token(token) {
            return Ok(LinkView::Unknown);
        }
        let t = now();
        let wanted = if confirm {
            SmsChallengeState::Confirmed
        } else {
            SmsChallengeState::Rejected
        };
        let answered = self
            .store
            .answer_sms_link(&secret::link_hash(token), wanted, t)
            .await
            .map_err(backend)?;
        let c = match answered {
            LinkAnswer::Unknown => return Ok(LinkView::Unknown),
            LinkAnswer::Fresh(c) => c,
            // A double click (or a retry after a failure below): the answer stands; it is
            // recorded on the login again, which is take-once there.
            LinkAnswer::Settled(c) if c.state == wanted => c,
            LinkAnswer::Settled(c) => return self.view(&c, t).await,
        };
        let via = AnsweredBy {
            name: "sms_url",
            amr: AMR_URL,
        };
        let answer = if confirm {
            Answer::Approve { pin: None }
        } else {
            Answer::Deny
        };
        let outcome = answer_challenge(
            &self.ctx(),
            &via,
            &c.session_id,
            &c.subscriber_id,
            answer,
            t,
        )
        .await?;
        if outcome == AnswerOutcome::NotPending {
            // The login ended before (another channel, its own expiry): say what stands.
            return self.session_view(&c.session_id).await;
        }
        Ok(if confirm {
            LinkView::Confirmed
        } else {
            LinkView::Rejected
        })
    }

    async fn view(&self, c: &SmsChallengeRecord, t: i64) -> Result<LinkView, McError> {
        Ok(match c.state {
            SmsChallengeState::Waiting if c.expires_at > t => {
                let Some(s) = self
                    .store
                    .get_session(&c.session_id)
                    .await
                    .map_err(backend)?
                else {
                    return Ok(LinkView::Expired);
                };
                if s.status != mc_store::SessionStatus::Pending || s.expires_at <= t {
                    return self.session_view(&c.session_id).await;
                }
                LinkView::Open {
                    client_name: s.client_name,
                    context: s.context,
                    binding_message: s.binding_message,
                }
            }
            SmsChallengeState::Waiting => LinkView::Expired,
            SmsChallengeState::Confirmed => LinkView::Confirmed,
            SmsChallengeState::Rejected => LinkView::Rejected,
            SmsChallengeState::Locked => LinkView::Locked,
        })
    }

    /// A login that ended without this link: approved elsewhere shows as confirmed, the
    /// rest as expired (nothing for the phone to do).
    async fn session_view(&self, session_id: &str) -> Result<LinkView, McError> {
        let s = self.store.get_session(session_id).await.map_err(backend)?;
        Ok(match s.map(|s| s.status) {
            Some(
                mc_store::SessionStatus::Approved
                | mc_store::SessionStatus::CodeIssued
                | mc_store::SessionStatus::Consumed,
            ) => LinkView::Confirmed,
            _ => LinkView::Expired,
        })
    }

    /// Provisioning: lifts a subscriber's SMS code lock; true if there was one.
    pub async fn unlock(&self, subscriber_id: &str) -> Result<bool, McError> {
        self.store.unlock_sms(subscriber_id).await.map_err(backend)
    }
}
