//! `/atp` (GET and POST; also reached through `/userinfo` with a `User-ID-Type` header):
//! account-takeover protection for a client-credentials token with scope `mc_atp`
//! (digest §8.4). `User-ID-Type` (`msisdn`, `encr_msisdn`, `pcr`) and `User-ID` name the
//! subscriber; `maxAge` (hours) in the query or form body sets the SIM-change window.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mc_core::params::RawParams;

use super::{header, is_form, token_from};
use crate::datagw::{self, AtpRequest, TokenLookup};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/atp", get(atp_get).post(atp_post))
}

async fn atp_get(
    State(s): State<AppState>,
    looked_up: Option<Extension<TokenLookup>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    answer(&s, &headers, q.as_deref(), &[], looked_up.map(|l| l.0)).await
}

async fn atp_post(
    State(s): State<AppState>,
    looked_up: Option<Extension<TokenLookup>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    answer(&s, &headers, q.as_deref(), &body, looked_up.map(|l| l.0)).await
}

/// Answers an ATP query: headers name the subscriber, the query string or a form body may
/// carry `maxAge` and `correlation_id`. `looked_up`: the throttle's lookup of the request's
/// token (`datagw::TokenLookup`).
pub async fn answer(
    s: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    looked_up: Option<TokenLookup>,
) -> Response {
    let from_query = query.and_then(|q| RawParams::from_urlencoded(q.as_bytes()).ok());
    let from_body = is_form(headers)
        .then(|| RawParams::from_urlencoded(body).ok())
        .flatten();
    let param = |names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| {
            from_query
                .as_ref()
                .and_then(|p| p.get(n))
                .or_else(|| from_body.as_ref().and_then(|p| p.get(n)))
                .map(str::to_owned)
        })
    };
    let req = AtpRequest {
        user_id_type: header(headers, "user-id-type").map(str::to_owned),
        user_id: header(headers, "user-id").map(str::to_owned),
        max_age: param(&["maxAge", "max_age"]),
        correlation_id: header(headers, "correlation-id")
            .map(str::to_owned)
            .or_else(|| param(&["correlation_id"])),
    };
    match datagw::atp(s, token_from(headers, body), looked_up, req).await {
        Ok(v) => {
            let mut resp = axum::Json(v).into_response();
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}
