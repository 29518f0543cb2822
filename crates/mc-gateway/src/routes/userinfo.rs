//! `/userinfo` (GET and POST, Bearer): `sub`, and the phone number only when a granted scope
//! releases it. The full Data Gateway comes later.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mc_core::McError;
use mc_core::msisdn::Msisdn;
use mc_core::params::RawParams;
use mc_core::scope::Scope;
use serde_json::json;

use super::{bearer, is_form};
use crate::error::{ApiError, store_failure};
use crate::state::{AppState, now, sha256_hex};

pub fn router() -> Router<AppState> {
    Router::new().route("/userinfo", get(userinfo_get).post(userinfo_post))
}

async fn userinfo_get(State(s): State<AppState>, headers: HeaderMap) -> Response {
    respond(userinfo(&s, bearer(&headers)).await)
}

/// RFC 6750 §2.2 also allows the token in a form body.
async fn userinfo_post(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let from_body = if is_form(&headers) {
        RawParams::from_urlencoded(&body).ok()
    } else {
        None
    };
    let token = bearer(&headers).or_else(|| {
        from_body
            .as_ref()
            .and_then(|p| p.get("access_token"))
            .map(str::to_owned)
    });
    respond(userinfo(&s, token).await)
}

fn respond(r: Result<serde_json::Value, McError>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn userinfo(s: &AppState, token: Option<String>) -> Result<serde_json::Value, McError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(McError::MissingAccessToken)?;
    if token.len() > 256 {
        return Err(McError::InvalidAccessToken);
    }
    let record = s
        .store
        .find_access_token(&sha256_hex(&token), now())
        .await
        .map_err(store_failure)?
        .ok_or(McError::InvalidAccessToken)?;
    let sub = record.sub.clone().ok_or(McError::InvalidAccessToken)?;
    let mut body = json!({ "sub": sub });
    let scope = Scope::parse(&record.scope).unwrap_or_default();
    // The number is read only when a granted scope releases it.
    let phone = if scope.releases_phone_number() {
        phone_of(s, record.subscriber_id.as_deref()).await?
    } else {
        None
    };
    if let Some(m) = phone {
        body["phone_number"] = json!(m.e164());
        body["phone_number_verified"] = json!(true);
    }
    Ok(body)
}

async fn phone_of(s: &AppState, subscriber_id: Option<&str>) -> Result<Option<Msisdn>, McError> {
    let Some(id) = subscriber_id else {
        return Ok(None);
    };
    let subscriber = s.store.get_subscriber(id).await.map_err(store_failure)?;
    Ok(subscriber.and_then(|sub| Msisdn::parse(&sub.msisdn)))
}
