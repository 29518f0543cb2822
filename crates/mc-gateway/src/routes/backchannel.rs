//! `POST /bc-authorize` (OpenID CIBA Core §7) and `/si-authorize` (Mobile Connect SI, digest
//! §9.2: GET, form POST and JSON POST). Handlers translate; the checks are in
//! `mc_core::backchannel` and the engine in `crate::backchannel`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mc_core::McError;
use mc_core::backchannel::{
    BackchannelClient, BackchannelOptions, check_ciba_request, check_si_outer,
    check_si_request_object,
};
use mc_core::params::RawParams;
use mc_core::scope::Scope;
use mc_store::{BackchannelKind, ClientRecord, ClientStatus, DeliveryMode};
use serde_json::{Map, Value};

use super::{header as header_str, is_form};
use crate::backchannel::{Started, start};
use crate::client_auth::authenticate_client;
use crate::error::{ApiError, store_failure};
use crate::state::{AppState, now};

pub fn router(s: &AppState) -> Router<AppState> {
    let mut r = Router::new();
    if s.config.backchannel.ciba && !s.config.backchannel.delivery_modes.is_empty() {
        r = r.route("/bc-authorize", post(bc_authorize));
    }
    if s.config.backchannel.si {
        r = r.route(
            "/si-authorize",
            get(si_authorize_get).post(si_authorize_post),
        );
    }
    r
}

fn options(s: &AppState) -> BackchannelOptions {
    BackchannelOptions {
        max_binding_message_bytes: s.config.login.max_binding_message_bytes,
        max_context_bytes: s.config.login.max_context_bytes,
        max_expiry_secs: s.config.backchannel.max_expiry_secs,
    }
}

fn started(r: Started) -> Response {
    let mut resp = axum::Json(r).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The client as `mc_core::backchannel` needs it.
fn view<'a>(record: &'a ClientRecord, allowed: &'a Scope, notifies: bool) -> BackchannelClient<'a> {
    BackchannelClient {
        client_id: &record.client_id,
        allowed_scopes: allowed,
        short_name: &record.short_name,
        notifies,
        user_code_required: record.metadata.backchannel_user_code_parameter,
        notification_uris: &record.metadata.notification_uris,
    }
}

fn allowed_scopes(record: &ClientRecord) -> Scope {
    Scope::from_values(record.allowed_scopes.iter().map(String::as_str))
}

// ------------------------------------------------------------------------------ CIBA

async fn bc_authorize(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match ciba(&s, &headers, &body).await {
        Ok(r) => started(r),
        Err(e) => e.into_response(),
    }
}

async fn ciba(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Started, ApiError> {
    if !is_form(headers) {
        return Err(McError::BackchannelInvalid(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        )
        .into());
    }
    let p = RawParams::from_urlencoded(body)
        .map_err(|_| McError::BackchannelInvalid("Malformed request".into()))?;
    let (_, record) = authenticate_client(s, header_str(headers, "authorization"), &p).await?;
    let mode = record
        .metadata
        .backchannel_token_delivery_mode
        .as_deref()
        .and_then(DeliveryMode::parse)
        .ok_or(McError::BackchannelUnauthorized(
            "The client is not registered for CIBA",
        ))?;
    let params = match (
        p.get("request"),
        &record
            .metadata
            .backchannel_authentication_request_signing_alg,
    ) {
        (Some(jws), alg) => signed_ciba_params(s, &record, jws, alg.as_deref()).await?,
        (None, Some(_)) => {
            return Err(McError::BackchannelInvalid(
                "This client must send a signed authentication request".into(),
            )
            .into());
        }
        (None, None) => p,
    };
    let allowed = allowed_scopes(&record);
    let req = check_ciba_request(
        &params,
        &view(&record, &allowed, mode.notifies()),
        &options(s),
    )?;
    let correlation_id = req.correlation_id.clone();
    start(s, &record, req, BackchannelKind::Ciba)
        .await
        .map_err(|error| ApiError {
            error,
            correlation_id,
        })
}

/// A signed CIBA authentication request (CIBA Core §7.1.1): verified with the client's keys;
/// `iss` is the client, `aud` our issuer (or this endpoint), `exp` future, `iat`/`nbf` past,
/// `jti` present. Its other claims are the request parameters.
async fn signed_ciba_params(
    s: &AppState,
    record: &ClientRecord,
    jws: &str,
    alg: Option<&str>,
) -> Result<RawParams, McError> {
    let claims = s
        .client_keys
        .verify_client_jws(record, jws, alg)
        .await
        .map_err(|_| {
            McError::BackchannelInvalid(
                "The signed authentication request could not be verified".into(),
            )
        })?;
    let t = now();
    let endpoint = format!("{}/bc-authorize", s.config.base_url());
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == &s.config.issuer || a == &endpoint,
        Some(Value::Array(a)) => a.iter().any(|v| {
            v.as_str() == Some(s.config.issuer.as_str()) || v.as_str() == Some(endpoint.as_str())
        }),
        _ => false,
    };
    let num = |k: &str| claims.get(k).and_then(Value::as_i64);
    let valid = claims.get("iss").and_then(Value::as_str) == Some(record.client_id.as_str())
        && aud_ok
        && num("exp").is_some_and(|e| e > t)
        && num("iat").is_some_and(|i| i <= t + 60)
        && num("nbf").is_none_or(|n| n <= t + 60)
        && claims.get("jti").and_then(Value::as_str).is_some();
    if !valid {
        return Err(McError::BackchannelInvalid(
            "The signed authentication request has invalid iss, aud, exp, iat, nbf or jti".into(),
        ));
    }
    params_from_claims(&claims, &["iss", "aud", "exp", "iat", "nbf", "jti"])
}

/// Request-object claims as parameters: strings as they are, numbers and objects as JSON.
fn params_from_claims(claims: &Map<String, Value>, skip: &[&str]) -> Result<RawParams, McError> {
    let pairs = claims
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        });
    RawParams::from_pairs(pairs)
}

// ------------------------------------------------------------------------------ SI

async fn si_authorize_get(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    respond_si(
        &s,
        RawParams::from_urlencoded(q.unwrap_or_default().as_bytes()),
    )
    .await
}

/// Form or JSON body; a form body may come with the parameters in the query string (the
/// GSMA Python examples do this), so both are read.
async fn si_authorize_post(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = header_str(&headers, "content-type")
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"));
    let params = if json {
        json_params(&body)
    } else if is_form(&headers) {
        let query = q.unwrap_or_default();
        let joined = if query.is_empty() || body.is_empty() {
            [query.as_bytes(), &body].concat()
        } else {
            [query.as_bytes(), b"&", &body].concat()
        };
        RawParams::from_urlencoded(&joined)
    } else {
        Err(McError::BackchannelInvalid(
            "Content-Type must be application/x-www-form-urlencoded or application/json".into(),
        ))
    };
    respond_si(&s, params).await
}

fn json_params(body: &[u8]) -> Result<RawParams, McError> {
    let v: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| McError::BackchannelInvalid("Malformed JSON body".into()))?;
    let pairs = v.into_iter().map(|(k, v)| match v {
        Value::String(s) => Ok((k, s)),
        _ => Err(McError::BackchannelInvalid(format!(
            "Mandatory parameter {k} is invalid"
        ))),
    });
    RawParams::from_pairs(pairs.collect::<Result<Vec<_>, _>>()?)
}

async fn respond_si(s: &AppState, params: Result<RawParams, McError>) -> Response {
    let result = match params {
        Ok(p) => si(s, &p).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(r) => started(r),
        Err(e) => e.into_response(),
    }
}

/// Validation order of digest §9.2 (RUGW): outer parameters, unknown client, inactive
/// client, signature, then the request object's claims.
async fn si(s: &AppState, p: &RawParams) -> Result<Started, ApiError> {
    check_si_outer(p)?;
    let client_id = p.get("client_id").unwrap_or_default();
    let record = s
        .store
        .get_client(client_id)
        .await
        .map_err(store_failure)?
        .ok_or(McError::BackchannelUnauthorized(
            "The client is not registered",
        ))?;
    if record.status != ClientStatus::Active {
        return Err(McError::ClientNotAllowed.into());
    }
    let claims = s
        .client_keys
        .verify_client_jws(
            &record,
            p.get("request").unwrap_or_default(),
            record.metadata.request_object_signing_alg.as_deref(),
        )
        .await
        .map_err(|e| e.backchannel_error())?;
    // The signature holds from here on, so errors echo the request object's correlation_id.
    let echoed = claims
        .get("correlation_id")
        .and_then(Value::as_str)
        .filter(|c| c.len() <= 512)
        .map(str::to_owned);
    let allowed = allowed_scopes(&record);
    let req = check_si_request_object(
        &claims,
        p.get("scope").unwrap_or_default(),
        &view(&record, &allowed, false),
        &s.config.issuer,
        now(),
        &options(s),
    )
    .map_err(|error| ApiError {
        error,
        correlation_id: echoed,
    })?;
    let correlation_id = req.correlation_id.clone();
    start(s, &record, req, BackchannelKind::Si)
        .await
        .map_err(|error| ApiError {
            error,
            correlation_id,
        })
}
