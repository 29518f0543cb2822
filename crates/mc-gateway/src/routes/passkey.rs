//! Passkeys in the browser: enrolment on the subscriber's self-service page and the
//! assertion on a login's waiting page. The ceremonies themselves (options, verification,
//! take-once state, approval) are `mc_authn::passkey::Passkeys`; these handlers extract,
//! call it and map its answer.
//!
//! * `GET /account/passkeys` — the enrolment page (after a phone login on `/account`; the
//!   account cookie is scoped to `/account`, hence the paths). The page's script calls
//!   `POST /account/passkeys/register/start` and `…/register/finish` with the session's
//!   anti-forgery token in `X-CSRF-Token`; `POST /account/passkeys/delete` is a form.
//! * `GET /authorize/wait/{session}/passkey.js` — loaded by the waiting page. It asks
//!   `POST /authorize/wait/{session}/passkey/options` (404 while the login is not waiting
//!   for a passkey: another authenticator of the chain is running, and the script asks
//!   again later), runs `navigator.credentials.get()` and posts the assertion to
//!   `POST /authorize/wait/{session}/passkey`; on success the waiting page's own poll
//!   sees the approved session and continues to the service provider.
//!
//! All of it answers 404 when the `passkey` authenticator is not enabled (or the issuer is
//! on an IP address, which WebAuthn refuses). Errors are JSON `{error, error_description}`
//! with a 4xx status; only a store failure is a 500.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use mc_authn::answer::AnswerOutcome;
use mc_authn::passkey::{CAPABILITY, MAX_RESPONSE_BYTES, PasskeyError, Passkeys};
use mc_core::McError;
use mc_core::msisdn::Msisdn;
use serde_json::{Value, json};

use super::is_form;
use crate::consent::same_token;
use crate::error::{error_page, redirect};
use crate::state::{AppState, now};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/passkeys", get(enrol_page))
        .route("/account/passkeys/register/start", post(register_start))
        .route("/account/passkeys/register/finish", post(register_finish))
        .route("/account/passkeys/delete", post(delete))
        .route("/authorize/wait/{session}/passkey.js", get(login_script))
        .route(
            "/authorize/wait/{session}/passkey/options",
            post(login_options),
        )
        .route("/authorize/wait/{session}/passkey", post(login_finish))
}

/// The relying party, when the `passkey` authenticator is on. Built per request: it is
/// configuration only (no keys, no I/O), and the store and hub are shared handles.
fn relying_party(s: &AppState) -> Option<Arc<Passkeys>> {
    s.router.by_name(CAPABILITY)?;
    match Passkeys::new(
        &s.config.issuer,
        s.store.clone(),
        s.hub.clone(),
        s.pin_policy,
    ) {
        Ok(rp) => Some(rp),
        Err(e) => {
            tracing::warn!(error = %e, "passkeys enabled but unavailable");
            None
        }
    }
}

/// A JSON error answer.
fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        (
            status,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response(),
    )
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "invalid_request",
        "passkeys are not available here",
    )
}

/// The one mapping of ceremony errors to HTTP.
fn ceremony_error(e: &PasskeyError) -> Response {
    let (status, code) = match e {
        PasskeyError::Malformed | PasskeyError::NoCeremony => {
            (StatusCode::BAD_REQUEST, "invalid_request")
        }
        PasskeyError::Rejected | PasskeyError::UnknownCredential | PasskeyError::PossibleClone => {
            (StatusCode::FORBIDDEN, "access_denied")
        }
        PasskeyError::AlreadyRegistered => (StatusCode::CONFLICT, "invalid_request"),
        PasskeyError::NotOffered | PasskeyError::NoPasskey => {
            (StatusCode::NOT_FOUND, "invalid_request")
        }
        PasskeyError::Server => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    json_error(status, code, &e.to_string())
}

/// `{"ceremony": "...", "credential": {...}}` of a finish request.
/// (The refusal is boxed: a `Response` is large and this is the error path.)
fn finish_body(headers: &HeaderMap, body: &[u8]) -> Result<(String, Value), Box<Response>> {
    let malformed = || Box::new(ceremony_error(&PasskeyError::Malformed));
    let is_json = super::header(headers, "content-type").is_some_and(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    if !is_json || body.len() > MAX_RESPONSE_BYTES {
        return Err(malformed());
    }
    let mut v: Value = serde_json::from_slice(body).map_err(|_| malformed())?;
    let ceremony = v
        .get("ceremony")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(malformed)?;
    let credential = v
        .get_mut("credential")
        .filter(|c| c.is_object())
        .map(Value::take)
        .ok_or_else(malformed)?;
    Ok((ceremony, credential))
}

fn ok_json(v: Value) -> Response {
    no_store(axum::Json(v).into_response())
}

// ---------------------------------------------------------------------------------------
// enrolment

struct PasskeyRow {
    credential_id: String,
    /// A short form of the id, to tell passkeys apart.
    short_id: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "passkey_enrol.html")]
struct EnrolPage<'a> {
    account: &'a str,
    masked_msisdn: &'a str,
    passkeys: Vec<PasskeyRow>,
    csrf: &'a str,
}

/// `YYYY-MM-DD HH:MM` (UTC) of a Unix time.
fn when(t: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        ),
        Err(_) => String::from("?"),
    }
}

fn account_path(s: &AppState) -> String {
    format!("{}/account", s.base_path)
}

async fn enrol_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(rp) = relying_party(&s) else {
        return error_page(&McError::LoaUnavailable);
    };
    let Some((subscriber_id, csrf)) = super::account::logged_in(&s, &headers) else {
        return redirect(&account_path(&s));
    };
    let subscriber = match s.store.get_subscriber(&subscriber_id).await {
        Ok(Some(sub)) => sub,
        Ok(None) => return redirect(&account_path(&s)),
        Err(e) => return error_page(&crate::error::store_failure(e)),
    };
    let passkeys = match rp.list(&subscriber_id).await {
        Ok(list) => list,
        Err(e) => return ceremony_error(&e),
    };
    let masked = Msisdn::parse(&subscriber.msisdn)
        .map(|m| m.masked())
        .unwrap_or_default();
    let page = EnrolPage {
        account: &account_path(&s),
        masked_msisdn: &masked,
        passkeys: passkeys
            .into_iter()
            .map(|p| PasskeyRow {
                short_id: p.credential_id.chars().take(10).collect(),
                created: when(p.created_at),
                last_used: p.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                credential_id: p.credential_id,
            })
            .collect(),
        csrf: &csrf,
    };
    match page.render() {
        Ok(html) => no_store(Html(html).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "passkey page failed to render");
            error_page(&McError::ServerError)
        }
    }
}

/// The logged-in subscriber of a script request carrying the anti-forgery token.
fn script_caller(s: &AppState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let Some((subscriber_id, csrf)) = super::account::logged_in(s, headers) else {
        return Err(Box::new(json_error(
            StatusCode::UNAUTHORIZED,
            "login_required",
            "log in on the account page first",
        )));
    };
    if !same_token(
        &csrf,
        super::header(headers, "x-csrf-token").unwrap_or_default(),
    ) {
        return Err(Box::new(json_error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "the request could not be verified; reload the page",
        )));
    }
    Ok(subscriber_id)
}

async fn register_start(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(rp) = relying_party(&s) else {
        return not_found();
    };
    let subscriber_id = match script_caller(&s, &headers) {
        Ok(id) => id,
        Err(resp) => return *resp,
    };
    let subscriber = match s.store.get_subscriber(&subscriber_id).await {
        Ok(Some(sub)) => sub,
        Ok(None) => {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "unknown subscriber",
            );
        }
        Err(e) => {
            crate::error::store_failure(e);
            return ceremony_error(&PasskeyError::Server);
        }
    };
    match rp.start_registration(&subscriber, now()).await {
        Ok((ceremony, options)) => ok_json(json!({"ceremony": ceremony, "options": options})),
        Err(e) => ceremony_error(&e),
    }
}

async fn register_finish(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(rp) = relying_party(&s) else {
        return not_found();
    };
    let subscriber_id = match script_caller(&s, &headers) {
        Ok(id) => id,
        Err(resp) => return *resp,
    };
    let (ceremony, credential) = match finish_body(&headers, &body) {
        Ok(parts) => parts,
        Err(resp) => return *resp,
    };
    match rp
        .finish_registration(&subscriber_id, &ceremony, &credential, now())
        .await
    {
        Ok(record) => ok_json(json!({"registered": record.credential_id})),
        Err(e) => ceremony_error(&e),
    }
}

async fn delete(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(rp) = relying_party(&s) else {
        return not_found();
    };
    let Some((subscriber_id, csrf)) = super::account::logged_in(&s, &headers) else {
        return redirect(&account_path(&s));
    };
    let params = is_form(&headers)
        .then(|| mc_core::params::RawParams::from_urlencoded(&body).ok())
        .flatten();
    let Some(params) = params else {
        return error_page(&McError::MalformedRequest);
    };
    if !same_token(&csrf, params.get("csrf").unwrap_or_default()) {
        return error_page(&McError::MalformedRequest);
    }
    let credential_id = params.get("credential_id").unwrap_or_default();
    if credential_id.is_empty() || credential_id.len() > 1024 {
        return error_page(&McError::MalformedRequest);
    }
    match rp.remove(&subscriber_id, credential_id).await {
        Ok(_) => {
            let mut resp = redirect(&format!("{}/passkeys", account_path(&s)));
            *resp.status_mut() = StatusCode::SEE_OTHER;
            resp
        }
        Err(e) => ceremony_error(&e),
    }
}

// ---------------------------------------------------------------------------------------
// login

/// The waiting page's passkey script (static; it finds its login from its own URL).
const LOGIN_SCRIPT: &str = include_str!("../../templates/passkey_login.js");

async fn login_script(State(s): State<AppState>) -> Response {
    if relying_party(&s).is_none() {
        return not_found();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        LOGIN_SCRIPT,
    )
        .into_response()
}

async fn login_options(State(s): State<AppState>, Path(session): Path<String>) -> Response {
    let Some(rp) = relying_party(&s) else {
        return not_found();
    };
    match rp.start_login(&session, now()).await {
        Ok((ceremony, options)) => ok_json(json!({"ceremony": ceremony, "options": options})),
        Err(e) => ceremony_error(&e),
    }
}

async fn login_finish(
    State(s): State<AppState>,
    Path(session): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(rp) = relying_party(&s) else {
        return not_found();
    };
    let (ceremony, assertion) = match finish_body(&headers, &body) {
        Ok(parts) => parts,
        Err(resp) => return *resp,
    };
    match rp
        .finish_login(&session, &ceremony, &assertion, now())
        .await
    {
        Ok(AnswerOutcome::Approved) => ok_json(json!({"done": true})),
        Ok(_) => json_error(
            StatusCode::CONFLICT,
            "invalid_request",
            "this login is no longer waiting (answered elsewhere or expired)",
        ),
        Err(e) => ceremony_error(&e),
    }
}
