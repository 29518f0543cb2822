//! `/premiuminfo` (GET and POST, Bearer; digest §8.1–§8.3): the Mobile Connect identity
//! products (`mc_identity_*`, `mc_phonenumber`, `mc_signup`, `mc_nationalid`) in their flat
//! attribute names, and the KYC match answers (`<claim>_match`), as JSON or a signed JWT.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mc_datagw::claims::Shape;

use super::token_from;
use crate::datagw::{self, TokenLookup};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/premiuminfo", get(premiuminfo_get).post(premiuminfo_post))
}

async fn premiuminfo_get(
    State(s): State<AppState>,
    looked_up: Option<Extension<TokenLookup>>,
    headers: HeaderMap,
) -> Response {
    answer(&s, &headers, &[], looked_up.map(|l| l.0)).await
}

async fn premiuminfo_post(
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
    let token = token_from(headers, body);
    match datagw::info(s, token, looked_up, Shape::PremiumInfo).await {
        Ok(a) => a.into_response(),
        Err(e) => e.into_response(),
    }
}
