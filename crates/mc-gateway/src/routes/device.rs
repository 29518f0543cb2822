//! The operator app's API (app-push authenticator): registration with a device key,
//! challenges by long poll or server-sent events, and answers signed with the device key.
//! The rules live in `mc_authn::push` and `mc_authn::device_key`; this module translates.
//!
//! | route | what |
//! |---|---|
//! | `POST /device/v1/register` | body: registration JWS (self-signed, `jwk` header, enrolment code) → `201 {device_id}` |
//! | `GET /device/v1/challenges?wait=N` | `Authorization: Bearer <proof JWS>` → `{challenges}` (held up to N ≤ 25 s until one exists) |
//! | `GET /device/v1/events?proof=<JWS>` | `text/event-stream`: an event `challenges` with the open list, again whenever it changes |
//! | `POST /device/v1/challenges/{id}` | body: signed answer JWS → `{result}` |
//! | `POST /admin/v1/subscribers/{msisdn}/enrolment` | admin: a one-time enrolment code for the subscriber's app |
//! | `GET /admin/v1/subscribers/{msisdn}/devices` | admin: the subscriber's unrevoked devices |
//! | `DELETE /admin/v1/subscribers/{msisdn}/devices/{id}` | admin: revokes one (the last one takes `app_push` along) → 204 |

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use mc_authn::answer::AnswerOutcome;
use mc_authn::device_key::DeviceKeyError;
use mc_authn::push::{DeviceChallenge, DeviceError, ENROLMENT_TTL_SECS, PushChannel};
use mc_core::msisdn::Msisdn;
use mc_store::SubscriberRecord;
use serde::Deserialize;
use serde_json::json;

use crate::state::{AppState, now};

/// How long one event stream lasts; the app reconnects with a fresh proof (a revoked device
/// is cut off within this time).
pub const STREAM_SECS: u64 = 55;

/// How often waiters re-read the store (answers recorded on another node).
const RECHECK: Duration = Duration::from_millis(500);

/// The app's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/device/v1/register", post(register))
        .route("/device/v1/challenges", get(challenges))
        .route("/device/v1/events", get(events))
        .route("/device/v1/challenges/{id}", post(answer))
        .route("/device/v1/deregister", post(deregister))
}

/// Provisioning's device routes (merged with the admin API, behind its token).
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/subscribers/{msisdn}/enrolment",
            post(admin_enrolment),
        )
        .route("/admin/v1/subscribers/{msisdn}/devices", get(admin_devices))
        .route(
            "/admin/v1/subscribers/{msisdn}/devices/{id}",
            delete(admin_revoke),
        )
}

/// A refusal as JSON `{error, error_description}`.
pub fn refusal(e: &DeviceError) -> Response {
    let (status, code) = match e {
        DeviceError::Key(DeviceKeyError::Malformed) => (StatusCode::BAD_REQUEST, "invalid_request"),
        DeviceError::Key(DeviceKeyError::UnsupportedKey) => {
            (StatusCode::BAD_REQUEST, "invalid_key")
        }
        DeviceError::Key(DeviceKeyError::BadSignature) => {
            (StatusCode::UNAUTHORIZED, "invalid_signature")
        }
        DeviceError::Key(DeviceKeyError::Stale) => (StatusCode::UNAUTHORIZED, "stale_message"),
        DeviceError::UnknownDevice => (StatusCode::UNAUTHORIZED, "unknown_device"),
        DeviceError::InvalidEnrolmentCode => (StatusCode::BAD_REQUEST, "invalid_enrolment_code"),
        DeviceError::Replayed => (StatusCode::CONFLICT, "replayed"),
        DeviceError::WrongChallenge => (StatusCode::BAD_REQUEST, "wrong_challenge"),
        DeviceError::BadDecision => (StatusCode::BAD_REQUEST, "invalid_request"),
        DeviceError::UserVerificationRequired => {
            (StatusCode::BAD_REQUEST, "user_verification_required")
        }
        DeviceError::Server => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    let mut resp = (
        status,
        axum::Json(json!({"error": code, "error_description": e.to_string()})),
    )
        .into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// The body as text (a compact JWS), trimmed.
fn jws_body(body: &[u8]) -> Result<&str, DeviceError> {
    std::str::from_utf8(body)
        .map(str::trim)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or(DeviceError::Key(DeviceKeyError::Malformed))
}

async fn register(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let jws = match jws_body(&body) {
        Ok(j) => j,
        Err(e) => return refusal(&e),
    };
    match s.push_channel().register(jws, now()).await {
        Ok(device) => (
            StatusCode::CREATED,
            axum::Json(json!({"device_id": device.id, "created_at": device.created_at})),
        )
            .into_response(),
        Err(e) => refusal(&e),
    }
}

/// The app signs out: its device is revoked (`204`).
async fn deregister(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let jws = match jws_body(&body) {
        Ok(j) => j,
        Err(e) => return refusal(&e),
    };
    match s.push_channel().deregister(jws, now()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refusal(&e),
    }
}

#[derive(Deserialize)]
struct FetchQuery {
    /// Long-poll seconds (0..=25).
    wait: Option<u64>,
    /// The proof, for clients that cannot set headers (`EventSource`).
    proof: Option<String>,
}

async fn device_of(
    s: &AppState,
    headers: &HeaderMap,
    q: &FetchQuery,
) -> Result<(PushChannel, SubscriberRecord), DeviceError> {
    let proof = super::bearer(headers)
        .or_else(|| q.proof.clone())
        .ok_or(DeviceError::Key(DeviceKeyError::Malformed))?;
    let channel = s.push_channel();
    let (_, sub) = channel.authenticate(&proof, now()).await?;
    Ok((channel, sub))
}

async fn challenges(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FetchQuery>,
) -> Response {
    let (channel, sub) = match device_of(&s, &headers, &q).await {
        Ok(x) => x,
        Err(e) => return refusal(&e),
    };
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(25));
    match channel.wait_pending_of(&sub, wait, RECHECK, now).await {
        Ok(list) => axum::Json(json!({ "challenges": list })).into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

/// The state of one event stream.
struct Stream {
    channel: PushChannel,
    sub: SubscriberRecord,
    watch: mc_authn::hub::Watch,
    sent: Option<Vec<String>>,
    deadline: tokio::time::Instant,
}

fn ids(list: &[DeviceChallenge]) -> Vec<String> {
    list.iter().map(|c| c.id.clone()).collect()
}

async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FetchQuery>,
) -> Response {
    let (channel, sub) = match device_of(&s, &headers, &q).await {
        Ok(x) => x,
        Err(e) => return refusal(&e),
    };
    let start = Stream {
        watch: channel.watch_challenges(&sub),
        channel,
        sub,
        sent: None,
        deadline: tokio::time::Instant::now() + Duration::from_secs(STREAM_SECS),
    };
    // One event at once (the list now, maybe empty), then one whenever the list changes:
    // woken by a new challenge of this subscriber, and re-read every RECHECK for answers
    // and expiries (and challenges made on another node).
    let stream = futures_util::stream::unfold(start, |mut st| async move {
        loop {
            if st.sent.is_some() {
                let left = st
                    .deadline
                    .saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return None;
                }
                st.watch.wait(left.min(RECHECK)).await;
            }
            let list = st.channel.pending_of(&st.sub, now()).await.ok()?;
            let now_ids = ids(&list);
            if st.sent.as_ref() != Some(&now_ids) {
                st.sent = Some(now_ids);
                let event = SseEvent::default()
                    .event("challenges")
                    .json_data(json!({ "challenges": list }))
                    .ok()?;
                return Some((Ok::<_, Infallible>(event), st));
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn answer(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let jws = match jws_body(&body) {
        Ok(j) => j,
        Err(e) => return refusal(&e),
    };
    match s.push_channel().answer_signed(&id, jws, now()).await {
        Ok(outcome) => outcome_response(outcome),
        Err(e) => refusal(&e),
    }
}

/// The answer's outcome as the device API reports it (the legacy phone API uses the same
/// shapes).
pub fn outcome_response(outcome: AnswerOutcome) -> Response {
    let (status, body) = match outcome {
        AnswerOutcome::Approved => (StatusCode::OK, json!({"result": "approved"})),
        AnswerOutcome::Denied => (StatusCode::OK, json!({"result": "denied"})),
        AnswerOutcome::WrongPin { remaining } => (
            StatusCode::OK,
            json!({"result": "wrong_pin", "remaining_attempts": remaining}),
        ),
        AnswerOutcome::Locked => (StatusCode::OK, json!({"result": "locked"})),
        AnswerOutcome::NotPending => (StatusCode::CONFLICT, json!({"result": "not_pending"})),
    };
    (status, axum::Json(body)).into_response()
}

/// Issues an enrolment code for a subscriber's number (`{enrolment_code, expires_at}`).
pub async fn enrolment_for(s: &AppState, msisdn: &Msisdn) -> Response {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "not_found", "error_description": "no such subscriber"})),
        )
            .into_response()
    };
    let sub = match s.store.find_subscriber_by_msisdn(msisdn.as_str()).await {
        Ok(Some(sub)) => sub,
        Ok(None) => return not_found(),
        Err(e) => {
            return crate::error::ApiError::from(crate::error::store_failure(e)).into_response();
        }
    };
    let t = now();
    match s.push_channel().enrol(&sub.id, ENROLMENT_TTL_SECS, t).await {
        Ok(code) => (
            StatusCode::CREATED,
            axum::Json(json!({"enrolment_code": code, "expires_at": t + ENROLMENT_TTL_SECS})),
        )
            .into_response(),
        Err(DeviceError::UnknownDevice) => not_found(),
        Err(e) => refusal(&e),
    }
}

fn not_an_msisdn() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_request", "error_description": "not an MSISDN"})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not_found", "error_description": what})),
    )
        .into_response()
}

#[utoipa::path(
    post,
    path = "/admin/v1/subscribers/{msisdn}/enrolment",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    responses(
        (status = 201, description = "A one-time code for the subscriber's app to register a device with (`POST /device/v1/register`); shown once", body = super::openapi::EnrolmentDoc),
        (status = 400, description = "Not an MSISDN", body = super::openapi::ErrorDoc),
        (status = 404, description = "No such subscriber", body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn admin_enrolment(State(s): State<AppState>, Path(raw): Path<String>) -> Response {
    // Typed the way the other Provisioning routes take it (the document's pattern).
    match Msisdn::parse_typed(&raw) {
        Some(m) => enrolment_for(&s, &m).await,
        None => not_an_msisdn(),
    }
}

/// The subscriber of an admin device route's number, or the response that ends it.
async fn admin_subscriber(s: &AppState, raw: &str) -> Result<SubscriberRecord, Response> {
    let m = Msisdn::parse_typed(raw).ok_or_else(not_an_msisdn)?;
    match s.store.find_subscriber_by_msisdn(m.as_str()).await {
        Ok(Some(sub)) => Ok(sub),
        Ok(None) => Err(not_found("no such subscriber")),
        Err(e) => Err(crate::error::ApiError::from(crate::error::store_failure(e)).into_response()),
    }
}

#[utoipa::path(
    get,
    path = "/admin/v1/subscribers/{msisdn}/devices",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    responses(
        (status = 200, description = "The subscriber's registered, unrevoked devices", body = super::openapi::DeviceListDoc),
        (status = 400, description = "Not an MSISDN", body = super::openapi::ErrorDoc),
        (status = 404, description = "No such subscriber", body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn admin_devices(State(s): State<AppState>, Path(raw): Path<String>) -> Response {
    let sub = match admin_subscriber(&s, &raw).await {
        Ok(sub) => sub,
        Err(resp) => return resp,
    };
    match s.push_channel().devices(&sub.id).await {
        Ok(list) => {
            let devices: Vec<_> = list
                .iter()
                .map(|d| json!({"device_id": d.id, "label": d.label, "created_at": d.created_at}))
                .collect();
            axum::Json(json!({ "devices": devices })).into_response()
        }
        Err(e) => refusal(&e),
    }
}

#[utoipa::path(
    delete,
    path = "/admin/v1/subscribers/{msisdn}/devices/{id}",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(
        super::openapi::MsisdnPath,
        ("id" = String, Path, description = "The device's `device_id`")
    ),
    responses(
        (status = 204, description = "Revoked: the device's signatures are refused from now on (a lost or replaced phone)"),
        (status = 400, description = "Not an MSISDN", body = super::openapi::ErrorDoc),
        (status = 404, description = "No such subscriber, or no such device of theirs", body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn admin_revoke(
    State(s): State<AppState>,
    Path((raw, id)): Path<(String, String)>,
) -> Response {
    let sub = match admin_subscriber(&s, &raw).await {
        Ok(sub) => sub,
        Err(resp) => return resp,
    };
    // Device ids are 32 hex digits; anything else names no device (and is not looked up).
    if id.is_empty() || id.len() > 64 {
        return not_found("no such device of this subscriber");
    }
    match s.push_channel().revoke(&sub.id, &id, now()).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found("no such device of this subscriber"),
        Err(e) => refusal(&e),
    }
}
