//! The front-channel login: from a validated request to a pending transaction on the phone,
//! and from the phone's answer to the redirect back to the service provider.
//!
//! Every step reads and writes the store only, so a login started on one node can be
//! answered and finished on another.

use std::time::Duration;

use mc_authn::answer::denial;
use mc_authn::authenticator::Challenge;
use mc_authn::hub::{Event, Watch};
use mc_authn::router::require_active_subscriber;
use mc_core::McError;
use mc_core::acr::AcrValues;
use mc_core::authorize::redirect::Echo;
use mc_core::authorize::{AuthorizeRequest, HintInput, VerifiedRedirectUri};
use mc_core::client::ClientPolicy;
use mc_core::login_hint::LoginHint;
use mc_core::msisdn::Msisdn;
use mc_store::{AuthSession, ReservedCode, SessionStatus, StoreError, SubscriberRecord};
use serde_json::Value;

use crate::error::store_failure;
use crate::state::{AppState, now, random_token, sha256_hex};

/// Where the browser goes next.
#[derive(Debug)]
pub enum Next {
    /// The phone was asked; wait on this session.
    Wait(String),
    /// No hint: ask for the number on this session's page.
    AskNumber(String),
}

/// A refusal that can be redirected (the session's redirect URI was verified).
#[derive(Debug)]
pub struct Refusal {
    pub error: McError,
    pub location: String,
}

/// A headless client's hold at `/authorize`, prepared before its session exists:
///
/// * a code made together with the session: the store keeps its hash ([`ReservedCode`]),
///   so when the phone approves, the hold hands it out with no write of its own (a hold
///   that ends first drops it; the waiting URL then issues a fresh code, which replaces it);
/// * the session's id and a watch for its answer, taken before the session is created, so
///   the hold starts by waiting (nothing can have answered a session nobody saw) and an
///   answer recorded on this node arrives with its wake-up: on one node, the hold reads the
///   session not at all ([`hold_while_pending`] on another node's answer).
pub struct HeadlessHold {
    code: String,
    reserved: ReservedCode,
    session_id: String,
    answered: Watch,
    /// The session as [`start_login`] created it (pending), once it has.
    created: Option<AuthSession>,
}

impl HeadlessHold {
    pub fn new(s: &AppState) -> HeadlessHold {
        let code = random_token();
        let session_id = random_token();
        HeadlessHold {
            reserved: ReservedCode {
                hash: sha256_hex(&code),
                lifetime_secs: i64::from(s.config.tokens.code_secs),
            },
            code,
            answered: s.hub.watch(Event::SessionResolved(session_id.clone())),
            session_id,
            created: None,
        }
    }
}

/// Starts a login for a validated request. `held`: the code the caller will hand out when
/// it holds the request until the phone's answer (reserved when the phone is asked).
pub async fn start_login(
    s: &AppState,
    req: AuthorizeRequest,
    client: &ClientPolicy,
    mut held: Option<&mut HeadlessHold>,
) -> Result<Next, McError> {
    let t = now();
    let subscriber = match &req.hint {
        None => None,
        Some(hint) => Some(require_active_subscriber(
            resolve_hint(s, hint, client, t).await?,
        )?),
    };
    let mut session = AuthSession {
        id: held
            .as_ref()
            .map_or_else(random_token, |h| h.session_id.clone()),
        client_id: req.client_id.clone(),
        subscriber_id: None,
        redirect_uri: req.redirect_uri.as_str().to_owned(),
        state: req.state.clone(),
        nonce: req.nonce.clone(),
        scope: req.scope.to_string(),
        version: req.version.as_str().to_owned(),
        acr_values: req.acr.to_wire(),
        max_age: req.max_age.map(|m| m as i64),
        claims: req.claims.as_ref().map(Value::to_string),
        client_name: req.text.client_name.clone(),
        context: req.text.context.clone(),
        binding_message: req.text.binding_message.clone(),
        correlation_id: req.correlation_id.clone(),
        code_challenge: req.code_challenge.as_ref().map(|c| c.as_str().to_owned()),
        status: SessionStatus::AwaitingNumber,
        acr: None,
        amr: vec![],
        auth_time: None,
        error: None,
        created_at: t,
        expires_at: t + i64::from(s.config.login.timeout_secs),
    };
    crate::telemetry::note_session(&session.id);
    match subscriber {
        None => {
            s.store
                .create_session(&session, t)
                .await
                .map_err(store_failure)?;
            Ok(Next::AskNumber(session.id))
        }
        Some(sub) => {
            let choice = choose(s, &sub, &req.acr, &client.authenticator_chains)?;
            session.subscriber_id = Some(sub.id.clone());
            session.status = SessionStatus::Pending;
            session.acr = Some(choice.loa.as_str().to_owned());
            s.store
                .create_session_reserving(&session, held.as_ref().map(|h| &h.reserved), t)
                .await
                .map_err(busy_or_failure)?;
            challenge(s, &session, &sub, choice).await?;
            let id = session.id.clone();
            if let Some(h) = held.as_mut() {
                h.created = Some(session);
            }
            Ok(Next::Wait(id))
        }
    }
}

/// The number typed on the no-hint page. Errors that concern the number itself (format)
/// are returned as `Err(None)` so the page can ask again; everything else is redirected.
pub async fn submit_number(
    s: &AppState,
    session_id: &str,
    typed: &str,
) -> Result<Next, Option<Refusal>> {
    let t = now();
    let session = load(s, session_id).await.map_err(|_| None)?;
    if session.status != SessionStatus::AwaitingNumber || session.expires_at <= t {
        return Err(Some(refusal(&session, McError::AuthenticationTimeout)));
    }
    let msisdn = Msisdn::parse_typed(typed).ok_or(None)?;
    let fail = |e: McError| Some(refusal(&session, e));
    let found = s
        .store
        .find_subscriber_by_msisdn(msisdn.as_str())
        .await
        .map_err(|e| fail(store_failure(e)))?;
    let sub = require_active_subscriber(found).map_err(fail)?;
    let acr =
        AcrValues::parse(&session.acr_values).ok_or_else(|| fail(McError::InvalidAcrValues))?;
    let sp_chains = match s.store.get_client(&session.client_id).await {
        Ok(Some(c)) => c.metadata.authenticator_chains,
        Ok(None) => Default::default(),
        Err(e) => return Err(fail(store_failure(e))),
    };
    let choice = choose(s, &sub, &acr, &sp_chains).map_err(fail)?;
    s.store
        .assign_subscriber(session_id, &sub.id, choice.loa.as_str(), t)
        .await
        .map_err(|e| fail(busy_or_failure(e)))?;
    let mut session = session.clone();
    session.subscriber_id = Some(sub.id.clone());
    session.acr = Some(choice.loa.as_str().to_owned());
    challenge(s, &session, &sub, choice).await.map_err(fail)?;
    Ok(Next::Wait(session.id))
}

/// The router's plan for this subscriber, with the SP's own chains when it registered any.
pub(crate) fn choose(
    s: &AppState,
    sub: &SubscriberRecord,
    acr: &AcrValues,
    sp_chains: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<mc_authn::router::Choice, McError> {
    if sp_chains.is_empty() {
        return s.router.choose(sub, acr);
    }
    let sp = mc_authn::chain::chain_config(sp_chains.iter().map(|(l, n)| (l.as_str(), n.clone())))
        .unwrap_or_default();
    s.router.choose_for(sub, acr, Some(&sp))
}

/// Announces the challenge through the plan's first authenticator that starts (one that
/// fails to start hands over to the next at once); when none starts, the login ends. The
/// rest of the plan is walked in the background: each next authenticator is started as
/// well when the session is still unanswered after `authenticators.next_start_delay_secs`.
pub(crate) async fn challenge(
    s: &AppState,
    session: &AuthSession,
    sub: &SubscriberRecord,
    choice: mc_authn::router::Choice,
) -> Result<(), McError> {
    let c = Challenge {
        session_id: session.id.clone(),
        subscriber_id: sub.id.clone(),
        loa: choice.loa,
        client_name: session.client_name.clone(),
        context: session.context.clone(),
        binding_message: session.binding_message.clone(),
        expires_at: session.expires_at,
    };
    tracing::info!(session = %session.id, subscriber = %Msisdn::parse(&sub.msisdn).map(|m| m.masked()).unwrap_or_default(),
                   authenticator = choice.authenticator.name(), loa = choice.loa.as_str(), steps = choice.plan.steps.len(), "challenge started");
    let started = match mc_authn::chain::start_next(&choice.plan, 0, &c).await {
        Ok(i) => i,
        Err(e) => {
            let denied = mc_store::Resolution::Denied {
                error: denial::START_FAILED.into(),
            };
            let answered = s
                .store
                .answer_session(&session.id, &denied, now())
                .await
                .map_err(store_failure)?;
            // A back-channel request's error notification goes out now, not at the tick.
            s.hub.publish_answer(&session.id, answered, &denied);
            return Err(e);
        }
    };
    s.hub.publish(Event::Challenged(sub.id.clone()));
    if started + 1 < choice.plan.steps.len() {
        walk_rest_of_plan(s.clone(), choice.plan, started, c);
    }
    Ok(())
}

/// The fallbacks: after each delay without an answer, the next authenticator is started
/// too (the earlier ones stay open; the first answer wins, take-once in the store).
fn walk_rest_of_plan(s: AppState, plan: mc_authn::chain::Plan, started: usize, c: Challenge) {
    let options = mc_authn::chain::ChainOptions {
        next_start_delay: Duration::from_secs(u64::from(
            s.config.authenticators.next_start_delay_secs,
        )),
    };
    tokio::spawn(async move {
        let answered = |delay: Duration| {
            let s = s.clone();
            let id = c.session_id.clone();
            async move {
                tokio::time::sleep(delay).await;
                !still_pending(&s, &id).await
            }
        };
        let begun = mc_authn::chain::continue_plan(&plan, started, &c, options, answered).await;
        if !begun.is_empty() {
            s.hub.publish(Event::Challenged(c.subscriber_id.clone()));
        }
    });
}

/// Whether the session still waits for an answer (a store failure counts as answered:
/// starting more channels for a session we cannot read would only add noise).
async fn still_pending(s: &AppState, session_id: &str) -> bool {
    matches!(
        s.store.get_session(session_id).await,
        Ok(Some(sess)) if awaits_answer(&sess, now())
    )
}

/// A session the phone may still answer: pending and not expired at `t`.
fn awaits_answer(session: &AuthSession, t: i64) -> bool {
    session.status == SessionStatus::Pending && session.expires_at > t
}

fn busy_or_failure(e: StoreError) -> McError {
    match e {
        StoreError::Busy => McError::UserBusy,
        other => store_failure(other),
    }
}

/// Turns a hint into the subscriber it names (if any).
/// The subscriber a hint names, if any. One rule for the front and the back channel.
pub(crate) enum HintRef<'a> {
    Hint(&'a LoginHint),
    HintToken(&'a str),
    /// A previously issued id_token of ours (CIBA `id_token_hint`): its `sub` is the PCR.
    IdToken(&'a str),
}

/// Resolves a hint within the client's sector (PCRs are per sector).
pub(crate) async fn resolve_hint_ref(
    s: &AppState,
    hint: HintRef<'_>,
    client_id: &str,
    sector: &str,
    t: i64,
) -> Result<Option<SubscriberRecord>, McError> {
    let by_pcr = |pcr: String| async move {
        match s
            .store
            .subscriber_for_pcr(sector, &pcr)
            .await
            .map_err(store_failure)?
        {
            Some(id) => s.store.get_subscriber(&id).await.map_err(store_failure),
            None => Ok(None),
        }
    };
    let msisdn = match hint {
        HintRef::Hint(LoginHint::Msisdn(m)) => m.clone(),
        HintRef::Hint(LoginHint::EncryptedMsisdn(c)) => {
            s.keys.decrypt_msisdn(c).ok_or(McError::InvalidLoginHint)?
        }
        HintRef::Hint(LoginHint::Pcr(pcr)) => return by_pcr(pcr.clone()).await,
        HintRef::HintToken(jwt) => msisdn_from_hint_token(s, jwt, t)?,
        HintRef::IdToken(jwt) => {
            // Expired id_tokens are acceptable hints (OIDC Core §3.1.2.1); ours and for this client.
            let claims = s
                .keys
                .verify_own_jwt(jwt)
                .ok_or(McError::InvalidLoginHint)?;
            let for_client = claims["aud"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(client_id)));
            let sub = claims["sub"]
                .as_str()
                .filter(|_| for_client && claims["iss"] == s.config.issuer.as_str());
            return by_pcr(sub.ok_or(McError::InvalidLoginHint)?.to_owned()).await;
        }
    };
    s.store
        .find_subscriber_by_msisdn(msisdn.as_str())
        .await
        .map_err(store_failure)
}

async fn resolve_hint(
    s: &AppState,
    hint: &HintInput,
    client: &ClientPolicy,
    t: i64,
) -> Result<Option<SubscriberRecord>, McError> {
    let r = match hint {
        HintInput::LoginHint(h) => HintRef::Hint(h),
        HintInput::LoginHintToken(jwt) => HintRef::HintToken(jwt),
    };
    resolve_hint_ref(s, r, &client.client_id, &client.sector, t).await
}

/// A `login_hint_token` minted by this operator's Discovery (MODRNA §6): signed with our
/// key, `aud` is our issuer, issued in the last 10 minutes, carrying `MSISDN`.
fn msisdn_from_hint_token(s: &AppState, jwt: &str, t: i64) -> Result<Msisdn, McError> {
    let claims = s
        .keys
        .verify_own_jwt(jwt)
        .ok_or(McError::InvalidLoginHint)?;
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == &s.config.issuer,
        Value::Array(a) => a
            .iter()
            .any(|v| v == &Value::String(s.config.issuer.clone())),
        _ => false,
    };
    let iat = claims["iat"].as_i64().ok_or(McError::InvalidLoginHint)?;
    // `exp` is optional, but when present it must be a number in the future.
    let exp_ok = match &claims["exp"] {
        Value::Null => true,
        v => v.as_i64().is_some_and(|exp| exp > t),
    };
    let fresh = iat <= t + 60 && iat > t - 600 && exp_ok;
    if !aud_ok || !fresh {
        return Err(McError::InvalidLoginHint);
    }
    claims["MSISDN"]
        .as_str()
        .or(claims["msisdn"].as_str())
        .and_then(Msisdn::parse)
        .ok_or(McError::InvalidLoginHint)
}

/// What the waiting browser should see.
pub enum WaitState {
    /// Still with the phone.
    Pending(Box<AuthSession>),
    /// Go here (the SP's redirect URI with a code or an error, or the number page).
    Redirect(String),
    /// Nothing to redirect to (unknown session, or the code was already delivered).
    Gone(McError),
}

/// Reads the session and, when the phone has answered, turns the answer into a redirect.
/// Codes are minted here, once: a second request for the same finished session is `Gone`.
pub async fn wait_state(s: &AppState, session_id: &str) -> WaitState {
    let Ok(session) = load(s, session_id).await else {
        return WaitState::Gone(McError::AuthenticationTimeout);
    };
    wait_state_of(s, session, None).await
}

/// [`wait_state`] after a hold: the session the hold read last, or (when it read none) a
/// fresh read. A session read a moment earlier decides the same way a new read would: the
/// code is minted take-once in the store (`issue_code` only moves an `Approved` session),
/// and expiry is judged against the clock now. `code`: the one reserved with the session by
/// the request that holds it, handed out instead of minting one.
pub async fn wait_state_after(
    s: &AppState,
    session_id: &str,
    held: Held,
    code: Option<&HeadlessHold>,
) -> WaitState {
    match held.last_read {
        Some(session) => wait_state_of(s, session, code).await,
        None => wait_state(s, session_id).await,
    }
}

/// [`wait_state`] for a session already read from the store.
async fn wait_state_of(
    s: &AppState,
    session: AuthSession,
    code: Option<&HeadlessHold>,
) -> WaitState {
    let t = now();
    match session.status {
        SessionStatus::AwaitingNumber if session.expires_at > t => {
            WaitState::Redirect(s.number_path(&session.id))
        }
        SessionStatus::Pending if session.expires_at > t => WaitState::Pending(Box::new(session)),
        SessionStatus::AwaitingNumber | SessionStatus::Pending => {
            // The phone was asked and did not answer in time. Counted each time the waiting
            // URL reports it (a browser follows the redirect once).
            if session.status == SessionStatus::Pending {
                crate::telemetry::count_login_timeouts(1);
            }
            WaitState::Redirect(refusal(&session, McError::AuthenticationTimeout).location)
        }
        SessionStatus::Denied => {
            let e = denial::to_error(session.error.as_deref().unwrap_or_default());
            WaitState::Redirect(refusal(&session, e).location)
        }
        // Attributes the phone could not ask about are asked in the browser first.
        SessionStatus::Approved => {
            match crate::consent::browser_consent_needed(s, &session).await {
                Ok(missing) if !missing.is_empty() => {
                    WaitState::Redirect(crate::consent::consent_path(s, &session.id))
                }
                Ok(_) => match code {
                    Some(held) => redirect_with_code(&session, &held.code),
                    None => deliver_code(s, &session).await,
                },
                Err(e) => WaitState::Gone(e),
            }
        }
        SessionStatus::CodeIssued | SessionStatus::Consumed => {
            WaitState::Gone(McError::InvalidGrant("This login has already completed"))
        }
    }
}

/// Mints the code of an approved session (once) and redirects to the SP with it.
pub(crate) async fn deliver_code(s: &AppState, session: &AuthSession) -> WaitState {
    let code = random_token();
    let expires = now() + i64::from(s.config.tokens.code_secs);
    match s
        .store
        .issue_code(&session.id, &sha256_hex(&code), expires)
        .await
    {
        Ok(true) => redirect_with_code(session, &code),
        Ok(false) => WaitState::Gone(McError::InvalidGrant("This login has already completed")),
        Err(e) => WaitState::Gone(store_failure(e)),
    }
}

/// The SP's redirect URI with `code` (and the session's `state` and `correlation_id`).
fn redirect_with_code(session: &AuthSession, code: &str) -> WaitState {
    let echo = Echo {
        state: Some(&session.state),
        correlation_id: session.correlation_id.as_deref(),
    };
    WaitState::Redirect(
        VerifiedRedirectUri::from_stored(session.redirect_uri.clone()).with_code(code, &echo),
    )
}

/// How a hold on a waiting session ended.
#[derive(Debug)]
pub struct Held {
    /// The session left `Pending` (answered or expired) or cannot be found; false when the
    /// hold passed with the session still pending.
    pub done: bool,
    /// The session as the hold last read it, for the answer that follows (no second read).
    /// `None` when it read none: an id over the length limit, an unknown id, or a store
    /// failure (the caller then reads again, as it would have without the hold).
    last_read: Option<AuthSession>,
}

/// Waits until the session leaves `Pending` or `hold` passes; re-reads the store on every
/// wake-up that brings no answer and at least every 250 ms (another node may have recorded
/// the answer).
pub async fn hold_while_pending(s: &AppState, session_id: &str, hold: Duration) -> Held {
    if !is_plausible_session_id(session_id) {
        return Held {
            done: true,
            last_read: None,
        };
    }
    // Watched before the first read: an answer recorded between the read and the wait
    // still wakes us at once (not at the next re-check). Only this session's answer does.
    let answered = s.hub.watch(Event::SessionResolved(session_id.to_owned()));
    hold_watching(s, session_id, hold, &answered, None).await
}

/// A headless client's hold on the session its request has just created
/// ([`HeadlessHold`]): no read before the first wait.
pub async fn hold_created(s: &AppState, held: &mut HeadlessHold, hold: Duration) -> Held {
    let created = held.created.take();
    hold_watching(s, &held.session_id, hold, &held.answered, created).await
}

/// [`hold_while_pending`] with the watch taken. `known`: the session as it is known to be
/// now (pending, just created), so the first look needs no read.
async fn hold_watching(
    s: &AppState,
    session_id: &str,
    hold: Duration,
    answered: &Watch,
    mut known: Option<AuthSession>,
) -> Held {
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        let session = match known.take() {
            Some(sess) => sess,
            None => match s.store.get_session(session_id).await {
                Ok(Some(sess)) if awaits_answer(&sess, now()) => sess,
                Ok(Some(sess)) => {
                    return Held {
                        done: true,
                        last_read: Some(sess),
                    };
                }
                Ok(None) | Err(_) => {
                    return Held {
                        done: true,
                        last_read: None,
                    };
                }
            },
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Held {
                done: false,
                last_read: Some(session),
            };
        }
        if answered.wait(left.min(Duration::from_millis(250))).await
            && let Some(resolution) = answered.take_resolution()
        {
            // Recorded take-once while `session` was pending: this is what the store holds.
            return Held {
                done: true,
                last_read: Some(resolution.applied_to(session)),
            };
        }
    }
}

/// Session ids are 43 characters (`random_token`); a longer one names no session and is
/// refused without a store read.
fn is_plausible_session_id(session_id: &str) -> bool {
    session_id.len() <= 64
}

async fn load(s: &AppState, session_id: &str) -> Result<AuthSession, McError> {
    if !is_plausible_session_id(session_id) {
        return Err(McError::AuthenticationTimeout);
    }
    s.store
        .get_session(session_id)
        .await
        .map_err(store_failure)?
        .ok_or(McError::AuthenticationTimeout)
}

fn refusal(session: &AuthSession, error: McError) -> Refusal {
    let echo = Echo {
        state: Some(&session.state),
        correlation_id: session.correlation_id.as_deref(),
    };
    let location =
        VerifiedRedirectUri::from_stored(session.redirect_uri.clone()).with_error(&error, &echo);
    Refusal { error, location }
}

/// The error redirect for a refusal of a stored session.
pub fn refusal_location(session: &AuthSession, error: McError) -> String {
    refusal(session, error).location
}
