//! `POST /revoke` (RFC 7009): a client revokes a token it holds. Client authentication as
//! at the token endpoint (401 without it); then always 200 — an unknown token, one already
//! revoked or another client's changes nothing and is not told apart (§2.2). Revoking a
//! refresh token revokes its family (every refresh and access token of the grant);
//! revoking an access token revokes that token only.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mc_core::token_manager::{MAX_TOKEN_BYTES, check_token_query};
use serde_json::json;

use super::introspect::{authenticated_form, no_store};
use crate::error::{ApiError, store_failure};
use crate::state::{AppState, sha256_hex};

pub fn router() -> Router<AppState> {
    Router::new().route("/revoke", post(revoke))
}

#[utoipa::path(
    post,
    path = "/revoke",
    tag = "token-manager",
    description = "Token revocation (RFC 7009)",
    security(("client" = [])),
    request_body(content = super::openapi::TokenQueryDoc, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (not told apart)"),
        (status = 400, description = "Malformed request", body = super::openapi::ErrorDoc),
        (status = 401, description = "Client authentication failed", body = super::openapi::ErrorDoc)
    )
)]
async fn revoke(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&s, &headers, &body).await {
        // The body is ignored by RFC 7009 clients; the GSMA SDK fixtures show this one.
        Ok(()) => no_store(json!({"result": "Token revoked"})),
        Err(e) => e.into_response(),
    }
}

async fn handle(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let (p, client, _record) = authenticated_form(s, headers, body).await?;
    let query = check_token_query(&p)?;
    if query.token.len() > MAX_TOKEN_BYTES {
        return Ok(());
    }
    let hash = sha256_hex(&query.token);
    let id = client.client_id();
    for refresh in if query.refresh_first() {
        [true, false]
    } else {
        [false, true]
    } {
        let done = if refresh {
            s.store.revoke_refresh_family(&hash, id).await
        } else {
            s.store.revoke_access_token(&hash, id).await
        }
        .map_err(store_failure)
        .map_err(ApiError::from)?;
        if done {
            tracing::info!(client = %id, refresh, "token revoked");
            return Ok(());
        }
    }
    Ok(())
}
