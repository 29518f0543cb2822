//! `/premiuminfo` (GET and POST, Bearer; digest §8.1–§8.3): the Mobile Connect identity
//! products (`mc_identity_*`, `mc_phonenumber`, `mc_signup`, `mc_nationalid`) in their flat
//! attribute names, and the KYC match answers (`<claim>_match`), as JSON or a signed JWT.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mc_datagw::claims::Shape;

use super::token_from;
use crate::datagw;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/premiuminfo", get(premiuminfo_get).post(premiuminfo_post))
}

async fn premiuminfo_get(State(s): State<AppState>, headers: HeaderMap) -> Response {
    answer(&s, &headers, &[]).await
}

async fn premiuminfo_post(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&s, &headers, &body).await
}

async fn answer(s: &AppState, headers: &HeaderMap, body: &[u8]) -> Response {
    match datagw::info(s, token_from(headers, body), Shape::PremiumInfo).await {
        Ok(a) => a.into_response(),
        Err(e) => e.into_response(),
    }
}
