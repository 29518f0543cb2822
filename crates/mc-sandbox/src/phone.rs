//! Virtual phones: `/phone/<msisdn>` (the page) and its device API, which goes through
//! [`mc_authn::push::PushChannel`] exactly like an operator app would.
//!
//! The page is an app with a device key: it takes an enrolment code from
//! `POST /phone/<msisdn>/enrolment` (the sandbox's stand-in for the operator's provisioning,
//! open to anyone: these are test numbers), registers a WebCrypto P-256 key and then uses
//! the signed device API (`<issuer path>/device/v1/...`) of the gateway that serves the
//! number: the page is rendered with that operator's state (the first operator's at the
//! root, another's through [`crate::operators::phone_dispatch`]), so its enrolment code and
//! its device API belong to the same gateway. The unsigned `/phone/<msisdn>/challenges` API
//! stays for scripts, SDK examples and tests, and for pages that are not a secure context
//! (no WebCrypto).

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use mc_authn::answer::{Answer, AnswerOutcome};
use mc_core::msisdn::Msisdn;
use mc_gateway::state::{AppState, now};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/phone/{msisdn}", get(page))
        .route("/phone/{msisdn}/challenges", get(challenges))
        .route("/phone/{msisdn}/challenges/{id}", post(answer))
        .route("/phone/{msisdn}/enrolment", post(enrolment))
        .route("/demo-sp/callback", get(demo_callback))
        .route("/demo-sp/jwks.json", get(demo_jwks))
}

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage<'a> {
    msisdn: &'a str,
    e164: &'a str,
    /// The serving gateway's device API (`/operators/bluewave/device/v1`; `/device/v1` for
    /// an issuer without a path).
    device_api: &'a str,
}

fn bad_number() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not_found", "error_description": "no such test number"})),
    )
        .into_response()
}

async fn page(State(s): State<AppState>, Path(raw): Path<String>) -> Response {
    let Some(m) = Msisdn::parse(&raw) else {
        return bad_number();
    };
    match (PhonePage {
        msisdn: m.as_str(),
        e164: &m.e164(),
        device_api: &format!("{}/device/v1", s.base_path),
    })
    .render()
    {
        Ok(h) => Html(h).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A one-time enrolment code for the test number's virtual phone.
async fn enrolment(State(s): State<AppState>, Path(raw): Path<String>) -> Response {
    match Msisdn::parse(&raw) {
        Some(m) => mc_gateway::routes::device::enrolment_for(&s, &m).await,
        None => bad_number(),
    }
}

#[derive(Deserialize)]
struct WaitQuery {
    /// Long-poll seconds (0..=25).
    wait: Option<u64>,
}

/// The open challenges of this phone; with `?wait=N` the request is held until one exists.
async fn challenges(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Response {
    let Some(m) = Msisdn::parse(&raw) else {
        return bad_number();
    };
    let channel = s.push_channel();
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(25));
    match channel
        .wait_pending(&m, wait, Duration::from_millis(500), now)
        .await
    {
        Ok(list) => axum::Json(json!({ "challenges": list })).into_response(),
        Err(e) => mc_gateway::error::ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    /// `approve` or `deny`.
    decision: String,
    pin: Option<String>,
    /// With `approve`: whether the attributes the challenge asked for are shared (default
    /// true: the approval screen showed them). `false` approves the login without them.
    share: Option<bool>,
}

async fn answer(
    State(s): State<AppState>,
    Path((raw, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(m) = Msisdn::parse(&raw) else {
        return bad_number();
    };
    let Ok(b) = serde_json::from_slice::<AnswerBody>(&body) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_request", "error_description": "body must be {\"decision\": \"approve\"|\"deny\", \"pin\"?: \"…\"}"}))).into_response();
    };
    let answer = match b.decision.as_str() {
        "approve" => Answer::Approve { pin: b.pin },
        "deny" => Answer::Deny,
        _ => return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_request", "error_description": "decision must be approve or deny"}))).into_response(),
    };
    match s
        .push_channel()
        .answer_sharing(&m, &id, answer, b.share.unwrap_or(true), now())
        .await
    {
        Ok(outcome) => {
            let (status, body) = match outcome {
                AnswerOutcome::Approved => (StatusCode::OK, json!({"result": "approved"})),
                AnswerOutcome::Denied => (StatusCode::OK, json!({"result": "denied"})),
                AnswerOutcome::WrongPin { remaining } => (
                    StatusCode::OK,
                    json!({"result": "wrong_pin", "remaining_attempts": remaining}),
                ),
                AnswerOutcome::Locked => (StatusCode::OK, json!({"result": "locked"})),
                AnswerOutcome::NotPending => {
                    (StatusCode::CONFLICT, json!({"result": "not_pending"}))
                }
            };
            (status, axum::Json(body)).into_response()
        }
        Err(e) => mc_gateway::error::ApiError::from(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "callback.html")]
struct CallbackPage {
    pairs: Vec<(String, String)>,
}

/// The demo SP's (empty) key set: it authenticates with its secret, but CIBA requires
/// pairwise clients to register a `jwks_uri`.
async fn demo_jwks() -> Response {
    axum::Json(json!({ "keys": [] })).into_response()
}

/// Where the demo service provider's logins land: shows what came back.
async fn demo_callback(Query(q): Query<Vec<(String, String)>>) -> Response {
    let pairs: Vec<(String, String)> = q
        .into_iter()
        .take(10)
        .map(|(k, v)| (k.chars().take(64).collect(), v.chars().take(512).collect()))
        .collect();
    match (CallbackPage { pairs }).render() {
        Ok(h) => Html(h).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
