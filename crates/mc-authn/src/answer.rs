//! The one way a channel reports the phone's answer: PIN check for LoA3, then the outcome
//! recorded in the store take-once (the first answer wins).

use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_store::{Answered, AuthSession, Resolution, SessionStatus, Store};

use crate::authenticator::Authenticator;
use crate::hub::Hub;
use crate::pin::verify_pin_blocking;

/// What the phone said.
#[derive(Debug, Clone)]
pub enum Answer {
    Approve {
        pin: Option<String>,
    },
    /// Approved on a channel that checked the subscriber's PIN itself (the SIM applet
    /// verifies the SIM PIN on the card); no stored PIN is consulted.
    ApproveVerified,
    Deny,
}

/// What happened with the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome {
    Approved,
    Denied,
    /// Wrong PIN; the challenge stays open.
    WrongPin {
        remaining: u32,
    },
    /// Too many wrong PINs: LoA3 is locked until the PIN is reset; the login is refused.
    Locked,
    /// Already answered, expired, or not this subscriber's.
    NotPending,
}

/// Stable error kinds stored with a denied session, mapped back to `McError` by the gateway.
pub mod denial {
    pub const USER_DENIED: &str = "user_denied";
    pub const PIN_LOCKED: &str = "pin_locked";
    /// Too many wrong SMS codes (`crate::sms::channel`).
    pub const OTP_LOCKED: &str = "otp_locked";
    pub const START_FAILED: &str = "start_failed";

    /// The Mobile Connect error a stored denial stands for.
    pub fn to_error(kind: &str) -> mc_core::McError {
        match kind {
            PIN_LOCKED => mc_core::McError::PinLocked,
            OTP_LOCKED => mc_core::McError::OtpLocked,
            mc_store::STALE_SESSION_ERROR => mc_core::McError::AuthenticationTimeout,
            START_FAILED => mc_core::McError::LoaUnavailable,
            _ => mc_core::McError::UserDenied,
        }
    }
}

/// Wrong-PIN policy.
#[derive(Debug, Clone, Copy)]
pub struct PinPolicy {
    pub max_failures: u32,
}

/// The level being asked for a pending session (stored in `acr` when the router chose it).
pub fn requested_loa(s: &AuthSession) -> Loa {
    s.acr.as_deref().and_then(Loa::parse).unwrap_or(Loa::Two)
}

/// What every channel needs to record answers.
pub struct AnswerContext<'a> {
    pub store: &'a dyn Store,
    pub hub: &'a Hub,
    pub policy: PinPolicy,
}

/// Records a phone's answer to a pending session of `subscriber_id`.
pub async fn answer_challenge(
    ctx: &AnswerContext<'_>,
    authenticator: &dyn Authenticator,
    session_id: &str,
    subscriber_id: &str,
    answer: Answer,
    now: i64,
) -> Result<AnswerOutcome, McError> {
    answer_challenge_consenting(
        ctx,
        authenticator,
        session_id,
        subscriber_id,
        answer,
        None,
        now,
    )
    .await
}

/// [`answer_challenge`] for a device that showed the requested attributes: on approval (PIN
/// checked), `consent` — the consent items the subscriber agreed to share — is recorded for
/// the session's client *before* the approval, so whoever sees the approved session sees
/// the consent too.
pub async fn answer_challenge_consenting(
    ctx: &AnswerContext<'_>,
    authenticator: &dyn Authenticator,
    session_id: &str,
    subscriber_id: &str,
    answer: Answer,
    consent: Option<&[String]>,
    now: i64,
) -> Result<AnswerOutcome, McError> {
    let session = ctx
        .store
        .get_session(session_id)
        .await
        .map_err(answer_store_failure)?;
    answer_read_challenge(
        ctx,
        authenticator,
        session,
        subscriber_id,
        answer,
        consent,
        now,
    )
    .await
}

/// [`answer_challenge_consenting`] for a session its caller has just read by id (`None`:
/// there is none), so that a channel that looked at the challenge first does not read it
/// twice. A read from a moment earlier is enough: it only screens out sessions that are
/// plainly not answerable; whether the session is still pending and unexpired is decided
/// again, take-once, by `resolve_session`.
pub async fn answer_read_challenge(
    ctx: &AnswerContext<'_>,
    authenticator: &dyn Authenticator,
    session: Option<AuthSession>,
    subscriber_id: &str,
    answer: Answer,
    consent: Option<&[String]>,
    now: i64,
) -> Result<AnswerOutcome, McError> {
    let AnswerContext { store, hub, policy } = *ctx;
    let backend = answer_store_failure;
    let Some(session) = session else {
        return Ok(AnswerOutcome::NotPending);
    };
    let session_id = session.id.as_str();
    let live = session.status == SessionStatus::Pending && session.expires_at > now;
    if !live || session.subscriber_id.as_deref() != Some(subscriber_id) {
        return Ok(AnswerOutcome::NotPending);
    }
    let loa = requested_loa(&session);
    let resolution = match answer {
        Answer::Deny => Resolution::Denied {
            error: denial::USER_DENIED.into(),
        },
        Answer::ApproveVerified => Resolution::Approved {
            acr: loa.as_str().into(),
            amr: vec![authenticator.amr(loa).into()],
            auth_time: now,
        },
        Answer::Approve { pin } => {
            if loa == Loa::Three {
                match check_pin(store, subscriber_id, pin, policy).await? {
                    PinCheck::Ok => {}
                    PinCheck::Wrong { remaining } => {
                        return Ok(AnswerOutcome::WrongPin { remaining });
                    }
                    PinCheck::Locked => {
                        let denied = Resolution::Denied {
                            error: denial::PIN_LOCKED.into(),
                        };
                        let answered = store
                            .answer_session(session_id, &denied, now)
                            .await
                            .map_err(backend)?;
                        if answered != Answered::NotPending {
                            finished(authenticator, session_id, "locked");
                        }
                        hub.publish_answer(session_id, answered, &denied);
                        return Ok(AnswerOutcome::Locked);
                    }
                }
            }
            Resolution::Approved {
                acr: loa.as_str().into(),
                amr: vec![authenticator.amr(loa).into()],
                auth_time: now,
            }
        }
    };
    let approved = matches!(resolution, Resolution::Approved { .. });
    if approved && let Some(items) = consent.filter(|i| !i.is_empty()) {
        store
            .record_consent(
                subscriber_id,
                &session.client_id,
                items,
                mc_store::ConsentChannel::Phone,
                now,
            )
            .await
            .map_err(backend)?;
    }
    let answered = store
        .answer_session(session_id, &resolution, now)
        .await
        .map_err(backend)?;
    if answered == Answered::NotPending {
        return Ok(AnswerOutcome::NotPending);
    }
    finished(
        authenticator,
        session_id,
        if approved { "approved" } else { "denied" },
    );
    hub.publish_answer(session_id, answered, &resolution);
    Ok(if approved {
        AnswerOutcome::Approved
    } else {
        AnswerOutcome::Denied
    })
}

fn answer_store_failure(e: mc_store::StoreError) -> McError {
    tracing::error!(error = %e, "store failure while answering a challenge");
    McError::ServerError
}

/// A login ended by the phone's answer: logged and counted (`logins_total`) here, where the
/// answer is recorded take-once, so each login counts exactly once — whichever channel,
/// flow (front or back channel) and gateway node received it. (Timeouts are counted by the
/// gateway, which observes them.) Without an installed recorder the counter is a no-op.
fn finished(authenticator: &dyn Authenticator, session_id: &str, outcome: &'static str) {
    tracing::info!(
        session = %session_id,
        authenticator = authenticator.name(),
        outcome,
        "challenge answered"
    );
    metrics::counter!("logins_total", "authenticator" => authenticator.name(), "outcome" => outcome)
        .increment(1);
}

enum PinCheck {
    Ok,
    Wrong { remaining: u32 },
    Locked,
}

/// LoA3: the PIN must match; each miss counts atomically and locks at the limit.
async fn check_pin(
    store: &dyn Store,
    subscriber_id: &str,
    pin: Option<String>,
    policy: PinPolicy,
) -> Result<PinCheck, McError> {
    let backend = |e: mc_store::StoreError| {
        tracing::error!(error = %e, "store failure while checking a PIN");
        McError::ServerError
    };
    let sub = store
        .get_subscriber(subscriber_id)
        .await
        .map_err(backend)?
        .ok_or(McError::UnknownUser)?;
    if sub.pin_locked {
        return Ok(PinCheck::Locked);
    }
    let Some(hash) = sub.pin_hash else {
        return Ok(PinCheck::Locked);
    };
    let matches = match pin {
        Some(pin) if crate::pin::is_valid_pin(&pin) => verify_pin_blocking(pin, hash).await,
        _ => false,
    };
    if matches {
        store
            .clear_pin_failures(subscriber_id)
            .await
            .map_err(backend)?;
        return Ok(PinCheck::Ok);
    }
    let state = store
        .record_pin_failure(subscriber_id, policy.max_failures)
        .await
        .map_err(backend)?;
    tracing::warn!(subscriber = %subscriber_id, failures = state.failures, locked = state.locked, "wrong PIN");
    Ok(if state.locked {
        PinCheck::Locked
    } else {
        PinCheck::Wrong {
            remaining: policy.max_failures.saturating_sub(state.failures),
        }
    })
}
