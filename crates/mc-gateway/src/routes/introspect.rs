//! `POST /introspect` (RFC 7662): a client asks about a token it holds. Client
//! authentication as at the token endpoint; a token of another client, and any token that
//! is unknown, expired or revoked, is `{"active": false}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mc_core::McError;
use mc_core::params::RawParams;
use mc_core::token_manager::{Introspection, MAX_TOKEN_BYTES, check_token_query};
use mc_core::token_request::ClientAuthenticated;
use mc_store::ClientRecord;

use super::is_form;
use crate::client_auth::authenticate_client;
use crate::error::{ApiError, store_failure};
use crate::state::{AppState, now, sha256_hex};

pub fn router() -> Router<AppState> {
    Router::new().route("/introspect", post(introspect))
}

/// The form of a Token Manager request and the client that sent it (authenticated first:
/// without valid credentials nothing else is looked at).
pub(super) async fn authenticated_form(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(RawParams, ClientAuthenticated, ClientRecord), ApiError> {
    if !is_form(headers) {
        return Err(McError::InvalidTokenRequest(
            "Content-Type must be application/x-www-form-urlencoded",
        )
        .into());
    }
    let p = RawParams::from_urlencoded(body)
        .map_err(|_| McError::InvalidTokenRequest("Malformed request"))?;
    let (client, record) = authenticate_client(
        s,
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        &p,
    )
    .await?;
    Ok((p, client, record))
}

/// A JSON answer that no cache keeps (RFC 7662 §2.2 carries token details).
pub(super) fn no_store(value: impl serde::Serialize) -> Response {
    let mut resp = axum::Json(value).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

#[utoipa::path(
    post,
    path = "/introspect",
    tag = "token-manager",
    description = "Token introspection (RFC 7662)",
    security(("client" = [])),
    request_body(content = super::openapi::TokenQueryDoc, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's state; `active: false` for unknown, expired, revoked or another client's tokens", body = super::openapi::IntrospectionDoc),
        (status = 400, description = "Malformed request", body = super::openapi::ErrorDoc),
        (status = 401, description = "Client authentication failed", body = super::openapi::ErrorDoc)
    )
)]
async fn introspect(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&s, &headers, &body).await {
        Ok(answer) => no_store(answer),
        Err(e) => e.into_response(),
    }
}

async fn handle(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Introspection, ApiError> {
    let (p, client, _record) = authenticated_form(s, headers, body).await?;
    let query = check_token_query(&p)?;
    if query.token.len() > MAX_TOKEN_BYTES {
        return Ok(Introspection::inactive());
    }
    let hash = sha256_hex(&query.token);
    let t = now();
    for refresh in if query.refresh_first() {
        [true, false]
    } else {
        [false, true]
    } {
        let found = if refresh {
            refresh_answer(s, &hash, t).await?
        } else {
            access_answer(s, &hash, t).await?
        };
        if let Some(answer) = found {
            // Another client's token: nothing about it, not even that it exists.
            if answer.client_id.as_deref() != Some(client.client_id()) {
                return Ok(Introspection::inactive());
            }
            return Ok(answer);
        }
    }
    Ok(Introspection::inactive())
}

async fn access_answer(s: &AppState, hash: &str, t: i64) -> Result<Option<Introspection>, McError> {
    let Some(token) = s
        .store
        .find_access_token(hash, t)
        .await
        .map_err(store_failure)?
    else {
        return Ok(None);
    };
    let mut answer = Introspection {
        active: true,
        scope: Some(token.scope),
        client_id: Some(token.client_id.clone()),
        token_type: Some("Bearer"),
        exp: Some(token.expires_at),
        iat: (token.issued_at > 0).then_some(token.issued_at),
        sub: token.sub,
        aud: Some(token.client_id),
        iss: Some(s.config.issuer.clone()),
        ..Introspection::default()
    };
    with_login(s, &mut answer, token.session_id.as_deref()).await?;
    Ok(Some(answer))
}

async fn refresh_answer(
    s: &AppState,
    hash: &str,
    t: i64,
) -> Result<Option<Introspection>, McError> {
    let Some(token) = s
        .store
        .find_refresh_token(hash, t)
        .await
        .map_err(store_failure)?
    else {
        return Ok(None);
    };
    let mut answer = Introspection {
        active: true,
        scope: Some(token.scope),
        client_id: Some(token.client_id.clone()),
        token_type: Some("refresh_token"),
        exp: Some(token.expires_at),
        iat: Some(token.issued_at),
        sub: token.sub,
        aud: Some(token.client_id),
        iss: Some(s.config.issuer.clone()),
        ..Introspection::default()
    };
    with_login(s, &mut answer, token.session_id.as_deref()).await?;
    Ok(Some(answer))
}

/// `acr`, `amr` and `auth_time` of the login a token comes from, while its session is kept.
async fn with_login(
    s: &AppState,
    answer: &mut Introspection,
    session_id: Option<&str>,
) -> Result<(), McError> {
    let Some(id) = session_id else {
        return Ok(());
    };
    if let Some(session) = s.store.get_session(id).await.map_err(store_failure)? {
        answer.acr = session.acr;
        answer.amr = (!session.amr.is_empty()).then_some(session.amr);
        answer.auth_time = session.auth_time;
    }
    Ok(())
}
