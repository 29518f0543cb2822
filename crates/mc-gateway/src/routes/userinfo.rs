//! `/userinfo` (GET and POST, Bearer; digest §8.1): the OIDC claims of the token's scopes
//! (`mc_v1.1`: `profile`, `email`, `address`, `phone`) and of the identity products, in the
//! OIDC shape, as JSON or as a signed JWT. A request carrying `User-ID-Type` is an
//! account-takeover-protection query (CAMARA `MC_ATP.yaml` posts it here) and is answered
//! by [`super::atp`]. The decisions live in [`crate::datagw`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mc_datagw::claims::Shape;

use super::{header, token_from};
use crate::datagw::{self, TokenLookup};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/userinfo", get(userinfo_get).post(userinfo_post))
}

async fn userinfo_get(
    State(s): State<AppState>,
    looked_up: Option<Extension<TokenLookup>>,
    headers: HeaderMap,
) -> Response {
    answer(&s, &headers, &[], looked_up.map(|l| l.0)).await
}

async fn userinfo_post(
    State(s): State<AppState>,
    looked_up: Option<Extension<TokenLookup>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&s, &headers, &body, looked_up.map(|l| l.0)).await
}

/// `looked_up`: the throttle's lookup of the request's token (`datagw::TokenLookup`).
async fn answer(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    looked_up: Option<TokenLookup>,
) -> Response {
    if header(headers, "user-id-type").is_some() {
        return super::atp::answer(s, headers, None, body, looked_up).await;
    }
    match datagw::info(s, token_from(headers, body), looked_up, Shape::UserInfo).await {
        Ok(a) => a.into_response(),
        Err(e) => e.into_response(),
    }
}
