//! Header enrichment at `/authorize` (see `mc_authn::header_enrichment` for the trust
//! rules): a browser on the operator's mobile data network, identified by the MSISDN header
//! its network added, is logged in at LoA2 with no interaction — the login is recorded as
//! approved with `amr` `SEAM_OK` before any phone is asked, and the browser goes straight
//! on to the code (or to the consent page when attributes are asked).
//!
//! It is skipped, and the ordinary chain runs, when: it is not enabled; the request says
//! `prompt=no_seam`; the first requested level is above 2; the header is absent, unreadable
//! or comes from a source that may not set it (logged with the number masked); the number
//! is not an active subscriber; or a login hint names someone else.

use std::net::SocketAddr;

use axum::http::HeaderMap;
use mc_authn::header_enrichment::{AMR, Enrichment, Networks, Trust};
use mc_authn::router::require_active_subscriber;
use mc_core::McError;
use mc_core::acr::Loa;
use mc_core::authorize::{AuthorizeRequest, HintInput};
use mc_core::client::ClientPolicy;
use mc_store::{AuthSession, Resolution, SessionStatus, SubscriberRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::store_failure;
use crate::login::{HintRef, Next, resolve_hint_ref};
use crate::state::{AppState, now, random_token};

/// `[gateway.authenticators.header_enrichment]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderEnrichmentConfig {
    /// The header the operator's network puts the MSISDN in.
    #[serde(default = "default_header")]
    pub header: String,
    /// The networks (CIDR) whose requests may carry the header: the operator's enrichment
    /// proxies or the mobile data NAT addresses.
    pub trusted_sources: Vec<String>,
    /// The operator's own reverse proxies in front of the gateway: behind them the client
    /// address is read from `X-Forwarded-For` (rightmost untrusted entry).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

fn default_header() -> String {
    "x-msisdn".into()
}

impl HeaderEnrichmentConfig {
    /// Every network parses and the header name is a valid one.
    pub fn validate(&self) -> Result<(), String> {
        self.trust()?;
        axum::http::HeaderName::from_bytes(self.header.as_bytes())
            .map_err(|_| format!("header: not a header name: {:?}", self.header))?;
        Ok(())
    }

    /// The parsed trust lists.
    pub fn trust(&self) -> Result<Trust, String> {
        Ok(Trust {
            sources: Networks::parse(&self.trusted_sources)
                .map_err(|e| format!("trusted_sources: {e}"))?,
            proxies: Networks::parse(&self.trusted_proxies)
                .map_err(|e| format!("trusted_proxies: {e}"))?,
        })
    }
}

/// What the request's network says about it (logged when the header is not believed).
pub fn judge(cfg: &HeaderEnrichmentConfig, peer: Option<SocketAddr>, h: &HeaderMap) -> Enrichment {
    let Ok(trust) = cfg.trust() else {
        return Enrichment::Absent;
    };
    let value = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let verdict = trust.judge(
        peer.map(|p| p.ip()),
        value("x-forwarded-for"),
        value(&cfg.header),
    );
    match &verdict {
        Enrichment::Untrusted { client, masked } => {
            tracing::warn!(source = %client, msisdn = %masked, header = %cfg.header,
                "MSISDN header from an untrusted source ignored");
        }
        Enrichment::Unreadable => {
            tracing::warn!(header = %cfg.header, "MSISDN header from a trusted source is not a number");
        }
        Enrichment::Absent | Enrichment::Identified(_) => {}
    }
    verdict
}

/// Tries the seamless login for a validated request. `Ok(None)`: not applicable, run the
/// ordinary login.
pub async fn seamless_login(
    s: &AppState,
    req: &AuthorizeRequest,
    client: &ClientPolicy,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<Option<Next>, McError> {
    let Some(cfg) = &s.config.authenticators.header_enrichment else {
        return Ok(None);
    };
    let on = |a: &String| a == mc_authn::header_enrichment::NAME;
    if !s.config.authenticators.enabled.iter().any(on) {
        return Ok(None);
    }
    if req.prompt.no_seam || req.acr.target != Loa::Two {
        return Ok(None);
    }
    let Enrichment::Identified(msisdn) = judge(cfg, peer, headers) else {
        return Ok(None);
    };
    let found = s
        .store
        .find_subscriber_by_msisdn(msisdn.as_str())
        .await
        .map_err(store_failure)?;
    let Ok(sub) = require_active_subscriber(found) else {
        return Ok(None);
    };
    if !hint_names(s, req, client, &sub).await? {
        tracing::info!(msisdn = %msisdn.masked(), "seamless: the login hint names another subscriber");
        return Ok(None);
    }
    let id = approve(s, req, &sub).await?;
    tracing::info!(session = %id, subscriber = %msisdn.masked(), authenticator = mc_authn::header_enrichment::NAME,
        "seamless login by header enrichment");
    metrics::counter!("logins_total", "authenticator" => mc_authn::header_enrichment::NAME, "outcome" => "approved")
        .increment(1);
    Ok(Some(Next::Wait(id)))
}

/// True when the request has no hint or its hint names `sub`.
async fn hint_names(
    s: &AppState,
    req: &AuthorizeRequest,
    client: &ClientPolicy,
    sub: &SubscriberRecord,
) -> Result<bool, McError> {
    let hint = match &req.hint {
        None => return Ok(true),
        Some(HintInput::LoginHint(h)) => HintRef::Hint(h),
        Some(HintInput::LoginHintToken(jwt)) => HintRef::HintToken(jwt),
    };
    // A hint that does not resolve is not ours to judge: the ordinary login reports it.
    let named = resolve_hint_ref(s, hint, &client.client_id, &client.sector, now())
        .await
        .unwrap_or(None);
    Ok(named.is_some_and(|n| n.id == sub.id))
}

/// Records the login and its approval (the one-live-transaction rule applies as for any
/// login); returns the session id.
async fn approve(
    s: &AppState,
    req: &AuthorizeRequest,
    sub: &SubscriberRecord,
) -> Result<String, McError> {
    let t = now();
    let session = AuthSession {
        id: random_token(),
        client_id: req.client_id.clone(),
        subscriber_id: Some(sub.id.clone()),
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
        status: SessionStatus::Pending,
        acr: Some(Loa::Two.as_str().to_owned()),
        amr: vec![],
        auth_time: None,
        error: None,
        created_at: t,
        expires_at: t + i64::from(s.config.login.timeout_secs),
    };
    s.store
        .create_session(&session, t)
        .await
        .map_err(|e| match e {
            mc_store::StoreError::Busy => McError::UserBusy,
            other => store_failure(other),
        })?;
    let approved = Resolution::Approved {
        acr: Loa::Two.as_str().to_owned(),
        amr: vec![AMR.to_owned()],
        auth_time: t,
    };
    s.store
        .resolve_session(&session.id, &approved, t)
        .await
        .map_err(store_failure)?;
    Ok(session.id)
}
