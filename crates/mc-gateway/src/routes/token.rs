//! `POST /token`: client authentication enforced here, then dispatch by `grant_type`:
//! `authorization_code`, CIBA, `client_credentials` and `refresh_token`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mc_core::McError;
use mc_core::grants;
use mc_core::params::RawParams;
use mc_core::scope::Scope;
use mc_core::token_request::{
    check_client_credentials_grant, check_code_grant, check_refresh_grant,
};

use super::is_form;
use crate::client_auth::authenticate_client;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::{client_credentials, exchange_code, refresh};

pub fn router() -> Router<AppState> {
    Router::new().route("/token", post(token))
}

async fn token(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = match client_credentials_in_query(query.as_deref(), &body) {
        Some(q) => handle(&s, &headers, q.as_bytes(), true).await,
        None => handle(&s, &headers, &body, false).await,
    };
    match result {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// ATP back ends documented by operators send `POST /token?grant_type=client_credentials&
/// scope=mc_atp` with Basic credentials and no body (digest §8.4). That one shape is taken
/// from the query string; no other grant is, and nothing secret may be in a URL.
fn client_credentials_in_query(query: Option<&str>, body: &[u8]) -> Option<String> {
    let query = query.filter(|q| !q.is_empty())?;
    if !body.is_empty() {
        return None;
    }
    let p = RawParams::from_urlencoded(query.as_bytes()).ok()?;
    (p.get("grant_type") == Some(grants::CLIENT_CREDENTIALS)).then(|| query.to_owned())
}

async fn handle(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    from_query: bool,
) -> Result<Response, ApiError> {
    if !from_query && !is_form(headers) {
        return Err(McError::InvalidTokenRequest(
            "Content-Type must be application/x-www-form-urlencoded",
        )
        .into());
    }
    let p = RawParams::from_urlencoded(body)
        .map_err(|_| McError::InvalidTokenRequest("Malformed request"))?;
    let correlation_id = p.get("correlation_id").map(str::to_owned);
    let with_corr = |error: McError| ApiError {
        error,
        correlation_id: correlation_id.clone(),
    };
    if from_query
        && ["client_secret", "client_assertion"]
            .iter()
            .any(|k| p.contains(k))
    {
        return Err(with_corr(McError::InvalidTokenRequest(
            "Credentials must not be sent in the URL",
        )));
    }
    // Client authentication first: without valid credentials nothing else is answered.
    let (client, record) = authenticate_client(
        s,
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        &p,
    )
    .await
    .map_err(with_corr)?;
    let grant_type = p.get("grant_type").ok_or_else(|| {
        with_corr(McError::InvalidTokenRequest(
            "MANDATORY parameter grant_type is missing",
        ))
    })?;
    let known = [
        grants::AUTHORIZATION_CODE,
        grants::CIBA,
        grants::CLIENT_CREDENTIALS,
        grants::REFRESH_TOKEN,
    ];
    if !known.contains(&grant_type) {
        return Err(with_corr(McError::UnsupportedGrantType));
    }
    if !record.grant_types.iter().any(|g| g == grant_type) {
        return Err(with_corr(McError::UnauthorizedGrantType));
    }
    let response = match grant_type {
        grants::AUTHORIZATION_CODE => {
            let grant = check_code_grant(&p).map_err(with_corr)?;
            exchange_code(s, &client, &record, grant)
                .await
                .map_err(with_corr)?
        }
        grants::CIBA => {
            let auth_req_id = p.get("auth_req_id").ok_or_else(|| {
                with_corr(McError::InvalidTokenRequest(
                    "MANDATORY parameter auth_req_id is missing",
                ))
            })?;
            crate::backchannel::redeem(s, &client, &record, auth_req_id)
                .await
                .map_err(with_corr)?
        }
        grants::CLIENT_CREDENTIALS => {
            let allowed = Scope::from_values(record.allowed_scopes.iter().map(String::as_str));
            let scope = check_client_credentials_grant(&p, &allowed).map_err(with_corr)?;
            client_credentials(s, &client, &scope, correlation_id.clone())
                .await
                .map_err(with_corr)?
        }
        _ => {
            let grant = check_refresh_grant(&p).map_err(with_corr)?;
            refresh(s, &client, &record, grant, correlation_id.clone())
                .await
                .map_err(with_corr)?
        }
    };
    let mut resp = axum::Json(response).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
