//! `/userinfo` (GET and POST, Bearer; digest §8.1): the OIDC claims of the token's scopes
//! (`mc_v1.1`: `profile`, `email`, `address`, `phone`) and of the identity products, in the
//! OIDC shape, as JSON or as a signed JWT. A request carrying `User-ID-Type` is an
//! account-takeover-protection query (CAMARA `MC_ATP.yaml` posts it here) and is answered
//! by [`super::atp`]. The decisions live in [`crate::datagw`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mc_datagw::claims::Shape;

use super::{header, token_from};
use crate::datagw;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/userinfo", get(userinfo_get).post(userinfo_post))
}

async fn userinfo_get(State(s): State<AppState>, headers: HeaderMap) -> Response {
    answer(&s, &headers, &[]).await
}

async fn userinfo_post(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&s, &headers, &body).await
}

async fn answer(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Response {
    if header(headers, "user-id-type").is_some() {
        return super::atp::answer(s, headers, None, body).await;
    }
    match datagw::info(s, token_from(headers, body), Shape::UserInfo).await {
        Ok(a) => a.into_response(),
        Err(e) => e.into_response(),
    }
}
