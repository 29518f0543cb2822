//! `POST /token`: client authentication enforced here, then dispatch by `grant_type`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mc_core::McError;
use mc_core::grants;
use mc_core::params::RawParams;
use mc_core::token_request::check_code_grant;

use super::is_form;
use crate::client_auth::authenticate_client;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::exchange_code;

pub fn router() -> Router<AppState> {
    Router::new().route("/token", post(token))
}

async fn token(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&s, &headers, &body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn handle(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    if !is_form(headers) {
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
    let response = match grant_type {
        grants::AUTHORIZATION_CODE | grants::CIBA
            if !record.grant_types.iter().any(|g| g == grant_type) =>
        {
            return Err(with_corr(McError::UnauthorizedGrantType));
        }
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
        _ => return Err(with_corr(McError::UnsupportedGrantType)),
    };
    let mut resp = axum::Json(response).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
