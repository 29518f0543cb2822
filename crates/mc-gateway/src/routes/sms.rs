//! The SMS authenticator's gateway side: its configuration, the SMS service (SMPP client
//! and outbox worker) built when an SMS mode is on, and its pages —
//!
//! * `GET|POST /authorize/wait/{session}/otp`: the code form of a waiting login (the
//!   browser that started it types the code); a right code leads back to the waiting page,
//!   which finishes the login.
//! * `GET|POST /sms/link/{token}`: the one-time link opened on the phone. `GET` only shows
//!   the request with confirm/reject buttons (link previews fetch URLs); the `POST`
//!   answers. A double click shows the first answer again; a used, expired or unknown
//!   link gets a page that says so.
//! * `POST /admin/subscribers/{id}/sms-unlock`: provisioning lifts the SMS code lock.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mc_authn::Authenticator;
use mc_authn::sms::{
    CodeOutcome, LinkView, SmppClient, SmppConfig, Sms, SmsChannel, SmsSettings, SmsWorker,
    VelocityLimits, WorkerOptions,
};
use mc_core::McError;
use mc_store::{DynStore, SessionStatus, SmsMode};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::state::{AppState, sha256_hex};

/// `[authenticators.sms]`: the SMSC link and the SMS authenticator's rules
/// (`docs/authenticators.md`).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// `host:port` of the operator's SMSC (SMPP 3.4, bind_transceiver).
    pub smsc_address: String,
    pub system_id: String,
    /// The bind password (never logged).
    pub password: String,
    /// The sender shown on the phone.
    #[serde(default = "default_source")]
    pub source_addr: String,
    /// Absolute URL of this gateway's `/sms/link` (required for `sms_url`, `sms_otp_url`).
    #[serde(default)]
    pub link_base: String,
    #[serde(default = "default_digits")]
    pub otp_digits: u32,
    /// Wrong codes before the login is refused and SMS codes locked for the subscriber.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Longest description of the request in the SMS, in characters.
    #[serde(default = "default_detail")]
    pub max_detail_chars: usize,
    /// Velocity window and limits per number, per service provider and per destination
    /// prefix (0: no limit).
    #[serde(default = "default_window")]
    pub velocity_window_secs: i64,
    #[serde(default = "default_per_msisdn")]
    pub per_msisdn: u32,
    #[serde(default = "default_per_client")]
    pub per_client: u32,
    #[serde(default = "default_per_prefix")]
    pub per_prefix: u32,
    #[serde(default = "default_prefix_digits")]
    pub prefix_digits: usize,
    /// Longest SMS in parts (153 GSM-7 or 67 UCS-2 characters each).
    #[serde(default = "default_parts")]
    pub max_parts: usize,
    /// Seconds an outbox worker holds an SMS it is sending. After a crash the SMS waits
    /// this long before another worker sends it; it must exceed the longest submit (SMPP
    /// retries included), or a slow submit could be sent twice.
    #[serde(default = "default_lease")]
    pub outbox_lease_secs: i64,
}

fn default_source() -> String {
    "MobileConn".into()
}
fn default_digits() -> u32 {
    6
}
fn default_attempts() -> u32 {
    3
}
fn default_detail() -> usize {
    60
}
fn default_window() -> i64 {
    VelocityLimits::default().window_secs
}
fn default_per_msisdn() -> u32 {
    VelocityLimits::default().per_msisdn
}
fn default_per_client() -> u32 {
    VelocityLimits::default().per_client
}
fn default_per_prefix() -> u32 {
    VelocityLimits::default().per_prefix
}
fn default_prefix_digits() -> usize {
    VelocityLimits::default().prefix_digits
}
fn default_parts() -> usize {
    3
}
fn default_lease() -> i64 {
    60
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("smsc_address", &self.smsc_address)
            .field("system_id", &self.system_id)
            .field("password", &"<redacted>")
            .field("link_base", &self.link_base)
            .finish_non_exhaustive()
    }
}

/// The configuration names of the SMS authenticators.
pub const NAMES: &[&str] = &["sms_otp", "sms_url", "sms_otp_url"];

fn mode_of(name: &str) -> Option<SmsMode> {
    match name {
        "sms_otp" => Some(SmsMode::Otp),
        "sms_url" => Some(SmsMode::Url),
        "sms_otp_url" => Some(SmsMode::OtpUrl),
        _ => None,
    }
}

impl SmsConfig {
    /// Checks the settings for the enabled authenticators; errors name the field.
    pub fn validate(&self, enabled: &[String]) -> Result<(), String> {
        let f = |field: &str, why: &str| Err(format!("authenticators.sms.{field}: {why}"));
        if self.smsc_address.parse::<std::net::SocketAddr>().is_err()
            && !self.smsc_address.contains(':')
        {
            return f("smsc_address", "host:port of the SMSC");
        }
        if self.system_id.is_empty() || self.system_id.len() > 15 {
            return f("system_id", "1 to 15 characters (SMPP 3.4)");
        }
        if self.password.len() > 8 {
            return f("password", "at most 8 characters (SMPP 3.4)");
        }
        if !(4..=9).contains(&self.otp_digits) {
            return f("otp_digits", "4 to 9");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return f("max_attempts", "1 to 10");
        }
        if !(10..=300).contains(&self.max_detail_chars) {
            return f("max_detail_chars", "10 to 300");
        }
        if self.velocity_window_secs < 60 {
            return f("velocity_window_secs", "at least 60");
        }
        if !(1..=15).contains(&self.prefix_digits) {
            return f("prefix_digits", "1 to 15");
        }
        if !(1..=10).contains(&self.max_parts) {
            return f("max_parts", "1 to 10");
        }
        if !(2..=3_600).contains(&self.outbox_lease_secs) {
            return f("outbox_lease_secs", "2 to 3600");
        }
        let links = enabled
            .iter()
            .any(|n| mode_of(n).is_some_and(SmsMode::has_url));
        if links {
            match url::Url::parse(&self.link_base) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return f(
                        "link_base",
                        "an absolute http(s) URL, required for sms_url and sms_otp_url",
                    );
                }
            }
        }
        Ok(())
    }

    fn settings(&self) -> SmsSettings {
        SmsSettings {
            otp_digits: self.otp_digits,
            max_attempts: self.max_attempts,
            link_base: self.link_base.clone(),
            max_detail_chars: self.max_detail_chars,
            velocity: VelocityLimits {
                window_secs: self.velocity_window_secs,
                per_msisdn: self.per_msisdn,
                per_client: self.per_client,
                per_prefix: self.per_prefix,
                prefix_digits: self.prefix_digits,
            },
        }
    }

    fn smpp(&self) -> SmppConfig {
        let mut c = SmppConfig::new(&self.smsc_address, &self.system_id, &self.password);
        c.source_addr = self.source_addr.clone();
        c.max_parts = self.max_parts;
        // Outbox rows are retried by the worker; the client gives up sooner on a dead link.
        c.reconnect_max = Duration::from_secs(10);
        c
    }
}

/// The SMS service: the SMPP link and the outbox worker, shared by the SMS modes.
#[derive(Clone)]
pub struct SmsService {
    store: DynStore,
    settings: SmsSettings,
    wake: Arc<Notify>,
}

impl SmsService {
    /// Starts the SMPP client and the outbox worker (needs a Tokio runtime).
    pub fn start(config: &SmsConfig, store: &DynStore) -> SmsService {
        let wake = Arc::new(Notify::new());
        let client = SmppClient::start(config.smpp());
        SmsWorker::new(
            store.clone(),
            client,
            wake.clone(),
            WorkerOptions::default(),
        )
        .spawn();
        SmsService {
            store: store.clone(),
            settings: config.settings(),
            wake,
        }
    }

    /// The SMS authenticator of a configuration name, `None` for other names.
    pub fn authenticator(&self, name: &str) -> Option<Arc<dyn Authenticator>> {
        let mode = mode_of(name)?;
        Some(Sms::new(
            mode,
            self.store.clone(),
            self.settings.clone(),
            self.wake.clone(),
        ))
    }
}

/// Starts the SMS service when an SMS mode is enabled and configured.
pub fn service(
    config: &crate::config::AuthenticatorsConfig,
    store: &DynStore,
) -> Option<SmsService> {
    let on = config.enabled.iter().any(|n| mode_of(n).is_some());
    match (&config.sms, on) {
        (Some(c), true) => Some(SmsService::start(c, store)),
        _ => None,
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/authorize/wait/{session}/otp",
            get(otp_form).post(otp_submit),
        )
        .route("/sms/link/{token}", get(link_open).post(link_answer))
        .route("/admin/subscribers/{id}/sms-unlock", post(unlock))
}

/// Whether the waiting page of `session_id` should show the SMS code form.
pub async fn expects_code(s: &AppState, session_id: &str) -> bool {
    s.config.authenticators.sms.is_some()
        && channel(s).expects_code(session_id).await.unwrap_or(false)
}

fn channel(s: &AppState) -> SmsChannel {
    let attempts = s
        .config
        .authenticators
        .sms
        .as_ref()
        .map_or(3, |c| c.max_attempts);
    SmsChannel::new(s.store.clone(), s.hub.clone(), attempts)
}

#[derive(Template)]
#[template(path = "sms_otp.html")]
struct OtpPage<'a> {
    otp_path: &'a str,
    wait_path: &'a str,
    client_name: &'a str,
    message: Option<&'a str>,
}

struct Ask {
    client_name: String,
    context: Option<String>,
    binding_message: Option<String>,
}

#[derive(Template)]
#[template(path = "sms_link.html")]
struct LinkPage<'a> {
    title: &'a str,
    link_path: &'a str,
    ask: Option<Ask>,
    state: &'a str,
    message: &'a str,
}

fn render(r: Result<String, askama::Error>, status: StatusCode) -> Response {
    match r {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "SMS page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page failed").into_response()
        }
    }
}

fn failure(e: McError) -> Response {
    let page = crate::pages::ErrorPage {
        error: e.code().as_str(),
        description: &e.description(),
    };
    let status = if e == McError::ServerError {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    render(page.render(), status)
}

fn otp_path(s: &AppState, session: &str) -> String {
    format!("{}/otp", s.wait_path(session))
}

/// The code form, while the login waits for a code.
async fn otp_form(State(s): State<AppState>, Path(session): Path<String>) -> Response {
    otp_page(&s, &session, None, StatusCode::OK).await
}

async fn otp_page(
    s: &AppState,
    session: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let ch = channel(s);
    match ch.expects_code(session).await {
        Ok(true) => {}
        Ok(false) => return Redirect::to(&s.wait_path(session)).into_response(),
        Err(e) => return failure(e),
    }
    let client_name = match s.store.get_session(session).await {
        Ok(Some(x)) if x.status == SessionStatus::Pending => x.client_name,
        Ok(_) => return Redirect::to(&s.wait_path(session)).into_response(),
        Err(e) => return failure(crate::error::store_failure(e)),
    };
    let page = OtpPage {
        otp_path: &otp_path(s, session),
        wait_path: &s.wait_path(session),
        client_name: &client_name,
        message,
    };
    render(page.render(), status)
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

/// A typed code: right → back to the waiting page (which finishes the login); wrong →
/// the form again with the tries left; locked or no longer expected → the waiting page,
/// which shows or redirects the outcome.
async fn otp_submit(
    State(s): State<AppState>,
    Path(session): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<CodeForm>(&body) else {
        return otp_page(
            &s,
            &session,
            Some("Type the code from the SMS."),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    match channel(&s).submit_code(&session, &form.code).await {
        Ok(CodeOutcome::Approved | CodeOutcome::Locked | CodeOutcome::NotPending) => {
            Redirect::to(&s.wait_path(&session)).into_response()
        }
        Ok(CodeOutcome::Wrong { remaining }) => {
            let msg = format!(
                "That code is not right. {remaining} {} left.",
                if remaining == 1 { "try" } else { "tries" }
            );
            otp_page(&s, &session, Some(&msg), StatusCode::BAD_REQUEST).await
        }
        Err(e) => failure(e),
    }
}

fn link_path(s: &AppState, token: &str) -> String {
    format!("{}/sms/link/{token}", s.base_path)
}

fn link_page(s: &AppState, token: &str, view: LinkView) -> Response {
    let (title, state, message, status) = match &view {
        LinkView::Open { .. } => ("Confirm your login", "open", "", StatusCode::OK),
        LinkView::Confirmed => (
            "Login confirmed",
            "confirmed",
            "You confirmed this login. You can close this page.",
            StatusCode::OK,
        ),
        LinkView::Rejected => (
            "Login rejected",
            "rejected",
            "You rejected this login. Nobody was logged in.",
            StatusCode::OK,
        ),
        LinkView::Expired => (
            "Link expired",
            "expired",
            "This link has expired or its login has ended. Start again from the website if you still want to log in.",
            StatusCode::GONE,
        ),
        LinkView::Locked => (
            "Login blocked",
            "locked",
            "Too many wrong codes were typed for this login, so it was refused.",
            StatusCode::GONE,
        ),
        LinkView::Unknown => (
            "Unknown link",
            "unknown",
            "This link is not valid. Check that you opened the whole link from the SMS.",
            StatusCode::NOT_FOUND,
        ),
    };
    let ask = match view {
        LinkView::Open {
            client_name,
            context,
            binding_message,
        } => Some(Ask {
            client_name,
            context,
            binding_message,
        }),
        _ => None,
    };
    let page = LinkPage {
        title,
        link_path: &link_path(s, token),
        ask,
        state,
        message,
    };
    render(page.render(), status)
}

async fn link_open(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    match channel(&s).open_link(&token).await {
        Ok(view) => link_page(&s, &token, view),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
struct AnswerForm {
    #[serde(default)]
    answer: String,
}

async fn link_answer(
    State(s): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let confirm = match serde_urlencoded::from_bytes::<AnswerForm>(&body) {
        Ok(f) if f.answer == "confirm" => true,
        Ok(f) if f.answer == "reject" => false,
        // Not an answer: show the link as it stands.
        _ => return link_open(State(s), Path(token)).await,
    };
    match channel(&s).answer_link(&token, confirm).await {
        Ok(view) => link_page(&s, &token, view),
        Err(e) => failure(e),
    }
}

/// Provisioning: lifts the SMS code lock of a subscriber (admin bearer token).
async fn unlock(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let expected = s.config.admin.token_sha256.as_deref().unwrap_or_default();
    let presented = super::bearer(&headers)
        .map(|t| sha256_hex(&t))
        .unwrap_or_default();
    if expected.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            expected.as_bytes(),
        )
        .is_err()
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "unauthorized"})),
        )
            .into_response();
    }
    match channel(&s).unlock(&id).await {
        Ok(was) => {
            axum::Json(serde_json::json!({"subscriber_id": id, "unlocked": was})).into_response()
        }
        Err(e) => failure(e),
    }
}
