//! The server-initiated login engine, shared by OpenID CIBA and Mobile Connect SI: one
//! request type, one state machine in the store (`Pending → Approved | Denied | expired →
//! Consumed`), the same authenticator router as the front channel, so every authenticator
//! works server-initiated. Poll answers derive from stored state only; notifications go
//! through the durable outbox (`crate::notify`).

use mc_authn::answer::denial;
use mc_authn::router::require_active_subscriber;
use mc_core::McError;
use mc_core::backchannel::{BackchannelHint, BackchannelRequest};
use mc_core::token_request::ClientAuthenticated;
use mc_store::{
    AuthSession, BackchannelKind, BackchannelRecord, ClientRecord, DeliveryMode, PollOutcome,
    SessionStatus, StoreError,
};
use serde::Serialize;

use crate::error::store_failure;
use crate::login::{HintRef, challenge, resolve_hint_ref};
use crate::state::{AppState, now, random_token};
use crate::tokens::{TokenResponse, issue_tokens};

/// The synchronous answer (CIBA Core §7.3; digest §9.3).
#[derive(Debug, Serialize)]
pub struct Started {
    pub auth_req_id: String,
    pub expires_in: i64,
    /// Poll and ping clients: the minimum seconds between polls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// The delivery mode of a request: CIBA uses the client's registration; SI notifies when
/// the request object named a `notification_uri`, else it is the polling variant.
pub fn delivery_mode(
    kind: BackchannelKind,
    client: &ClientRecord,
    req: &BackchannelRequest,
) -> Result<DeliveryMode, McError> {
    match kind {
        BackchannelKind::Si => Ok(if req.notification_uri.is_some() {
            DeliveryMode::Push
        } else {
            DeliveryMode::Poll
        }),
        BackchannelKind::Ciba => client
            .metadata
            .backchannel_token_delivery_mode
            .as_deref()
            .and_then(DeliveryMode::parse)
            .ok_or(McError::BackchannelUnauthorized(
                "The client is not registered for CIBA",
            )),
    }
}

/// Errors of a request's start, in the protocol's vocabulary: CIBA has `unknown_user_id`;
/// SI answers an unknown or busy subscriber as the profile does.
fn for_kind(kind: BackchannelKind, e: McError) -> McError {
    match (kind, e) {
        (BackchannelKind::Ciba, McError::UnknownUser) => McError::UnknownUserId,
        (BackchannelKind::Si, McError::UserBusy) => McError::SiBusy,
        (_, e) => e,
    }
}

/// Starts a back-channel request: resolve the subscriber, pick the authenticator, store the
/// request (one live transaction per subscriber), reach the phone.
pub async fn start(
    s: &AppState,
    client: &ClientRecord,
    req: BackchannelRequest,
    kind: BackchannelKind,
) -> Result<Started, McError> {
    start_inner(s, client, req, kind)
        .await
        .map_err(|e| for_kind(kind, e))
}

/// The `user_code` must be the subscriber's own (CIBA Core §7.1: "verifiable by the OP"),
/// set through provisioning; wrong codes count towards a lock that only a new code lifts,
/// so the back channel cannot be used to guess it. Without a code of their own, or once it
/// is locked, every code is `invalid_user_code`.
async fn check_user_code(s: &AppState, subscriber_id: &str, code: &str) -> Result<(), McError> {
    let stored = s
        .store
        .get_user_code(subscriber_id)
        .await
        .map_err(store_failure)?;
    let Some(stored) = stored.filter(|c| !c.locked) else {
        return Err(McError::InvalidUserCode);
    };
    if mc_authn::pin::verify_pin_blocking(code.to_owned(), stored.code_hash).await {
        s.store
            .clear_user_code_failures(subscriber_id)
            .await
            .map_err(store_failure)?;
        return Ok(());
    }
    let state = s
        .store
        .record_user_code_failure(subscriber_id, s.config.login.pin_max_failures)
        .await
        .map_err(store_failure)?;
    tracing::warn!(subscriber = %subscriber_id, failures = state.failures, locked = state.locked, "wrong CIBA user_code");
    Err(McError::InvalidUserCode)
}

async fn start_inner(
    s: &AppState,
    client: &ClientRecord,
    req: BackchannelRequest,
    kind: BackchannelKind,
) -> Result<Started, McError> {
    let t = now();
    let mode = delivery_mode(kind, client, &req)?;
    if kind == BackchannelKind::Ciba
        && !s
            .config
            .backchannel
            .delivery_modes
            .iter()
            .any(|m| m == mode.as_str())
    {
        return Err(McError::BackchannelUnauthorized(
            "The client's delivery mode is not offered",
        ));
    }
    let hint = match &req.hint {
        BackchannelHint::LoginHint(h) => HintRef::Hint(h),
        BackchannelHint::LoginHintToken(jwt) => HintRef::HintToken(jwt),
        BackchannelHint::IdTokenHint(jwt) => HintRef::IdToken(jwt),
    };
    let subscriber = require_active_subscriber(
        resolve_hint_ref(s, hint, &client.client_id, &client.sector, t).await?,
    )?;
    if let Some(code) = &req.user_code {
        check_user_code(s, &subscriber.id, code).await?;
    }
    let choice = crate::login::choose(
        s,
        &subscriber,
        &req.acr,
        &client.metadata.authenticator_chains,
    )?;
    let cfg = &s.config.backchannel;
    let expires_in = i64::from(
        req.requested_expiry
            .unwrap_or(cfg.default_expiry_secs)
            .min(cfg.max_expiry_secs),
    );
    let session = AuthSession {
        id: random_token(),
        client_id: client.client_id.clone(),
        subscriber_id: Some(subscriber.id.clone()),
        redirect_uri: String::new(),
        state: String::new(),
        nonce: req.nonce.clone().unwrap_or_else(random_token),
        scope: req.scope.to_string(),
        version: req
            .version
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| "ciba".to_owned()),
        acr_values: req.acr.to_wire(),
        max_age: None,
        claims: req.claims.as_ref().map(ToString::to_string),
        client_name: client.short_name.clone(),
        context: req.context.clone(),
        binding_message: req.binding_message.clone(),
        correlation_id: req.correlation_id.clone(),
        code_challenge: None,
        status: SessionStatus::Pending,
        acr: Some(choice.loa.as_str().to_owned()),
        amr: vec![],
        auth_time: None,
        error: None,
        created_at: t,
        expires_at: t + expires_in,
    };
    let interval = i64::from(cfg.poll_interval_secs);
    let record = BackchannelRecord {
        auth_req_id: session.id.clone(),
        kind,
        mode,
        notification_endpoint: match kind {
            BackchannelKind::Si => req.notification_uri.clone(),
            BackchannelKind::Ciba => client
                .metadata
                .backchannel_client_notification_endpoint
                .clone()
                .filter(|_| mode.notifies()),
        },
        notification_token: req.client_notification_token.clone(),
        interval,
        last_poll_at: None,
    };
    s.store
        .create_backchannel(&session, &record, t)
        .await
        .map_err(|e| match e {
            StoreError::Busy => McError::UserBusy,
            other => store_failure(other),
        })?;
    crate::telemetry::note_auth_req_id(&session.id);
    tracing::info!(auth_req_id = %session.id, kind = kind.as_str(), mode = mode.as_str(), "back-channel request stored");
    challenge(s, &session, &subscriber, choice).await?;
    Ok(Started {
        auth_req_id: session.id,
        expires_in,
        interval: (mode != DeliveryMode::Push).then_some(interval),
        correlation_id: req.correlation_id,
    })
}

/// The CIBA grant at the token endpoint (CIBA Core §10.1, §11): the answer derives from the
/// stored state only; tokens are handed out once.
pub async fn redeem(
    s: &AppState,
    client: &ClientAuthenticated,
    record: &ClientRecord,
    auth_req_id: &str,
) -> Result<TokenResponse, McError> {
    if auth_req_id.len() > 128 {
        return Err(McError::InvalidGrant("auth_req_id is invalid"));
    }
    crate::telemetry::note_auth_req_id(auth_req_id);
    match s
        .store
        .poll_backchannel(auth_req_id, client.client_id(), now())
        .await
        .map_err(store_failure)?
    {
        PollOutcome::Unknown => Err(McError::InvalidGrant("auth_req_id is invalid")),
        PollOutcome::SlowDown => Err(McError::SlowDown),
        PollOutcome::Pending => Err(McError::AuthorizationPending),
        PollOutcome::Expired => Err(McError::ExpiredToken),
        PollOutcome::Denied { error } => Err(match denial::to_error(&error) {
            McError::AuthenticationTimeout => McError::ExpiredToken,
            other => other,
        }),
        PollOutcome::Approved(session) => issue_tokens(s, record, &session, now(), None).await,
        PollOutcome::Consumed => Err(McError::InvalidGrant("auth_req_id was already used")),
        // Push requests deliver their tokens by notification only (CIBA Core §10.3).
        PollOutcome::PushMode => Err(McError::UnauthorizedGrantType),
    }
}
