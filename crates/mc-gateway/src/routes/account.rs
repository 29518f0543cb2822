//! The subscriber's self-service page, `/account`: after a Mobile Connect login to the
//! gateway itself (approved on the phone), it lists the service providers that know the
//! subscriber (each holds a PCR in its sector) with what they may receive, and withdraws
//! consent per service provider — which also revokes that provider's tokens.
//!
//! The login is an ordinary front-channel login of a built-in client
//! ([`SELF_SERVICE_CLIENT_ID`], created on first use) whose redirect URI is
//! `/account/callback`: the same challenge, waiting page and take-once code as any SP's.
//! The callback redeems the code itself (no token is issued) and sets the account cookie:
//! the subscriber id, expiry and an anti-forgery token, sealed with the key-encryption key
//! (so any gateway node can open it, no one can forge or read it). Cookies are HttpOnly,
//! SameSite=Strict and Secure (see [`crate::consent::secure_cookies`]); every form carries
//! the cookie's anti-forgery token; the login's `state` is bound to a cookie of its own.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_authn::router::require_active_subscriber;
use mc_core::McError;
use mc_core::acr::AcrValues;
use mc_core::msisdn::Msisdn;
use mc_core::params::RawParams;
use mc_store::{
    AuthSession, ClientMetadata, ClientRecord, ClientStatus, Redemption, SessionStatus, StoreError,
};
use serde::{Deserialize, Serialize};

use super::is_form;
use crate::consent::{cookie, same_token, set_cookie};
use crate::error::{error_page, redirect, store_failure};
use crate::state::{AppState, now, random_token, sha256_hex};

/// The built-in client the subscriber logs in with.
pub const SELF_SERVICE_CLIENT_ID: &str = "mc-self-service";

/// What the phone shows for the self-service login.
const SELF_SERVICE_NAME: &str = "My Mobile Connect account";

const SESSION_COOKIE: &str = "mc_account";
const STATE_COOKIE: &str = "mc_account_login";
/// Seal label of the session cookie (associated data: a sealed value of another purpose
/// does not open as a session).
const SEAL_LABEL: &str = "mc-account-session";
/// How long the page stays logged in.
const SESSION_SECS: u32 = 15 * 60;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(home))
        .route("/account/login", post(login))
        .route("/account/callback", get(callback))
        .route("/account/revoke", post(revoke))
        .route("/account/logout", post(logout))
}

fn account_path(s: &AppState) -> String {
    format!("{}/account", s.base_path)
}

/// The logged-in subscriber, as sealed in the session cookie.
#[derive(Debug, Serialize, Deserialize)]
struct AccountSession {
    subscriber_id: String,
    exp: i64,
    csrf: String,
}

fn seal_session(s: &AppState, session: &AccountSession) -> Option<String> {
    let json = serde_json::to_vec(session).ok()?;
    let sealed = s.keys.seal(SEAL_LABEL, &json).ok()?;
    Some(URL_SAFE_NO_PAD.encode(sealed))
}

/// The account session of the request, if its cookie opens and has not expired.
fn current(s: &AppState, headers: &HeaderMap) -> Option<AccountSession> {
    let raw = cookie(headers, SESSION_COOKIE)?;
    if raw.len() > 4096 {
        return None;
    }
    let sealed = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let json = s.keys.open(SEAL_LABEL, &sealed).ok()?;
    let session: AccountSession = serde_json::from_slice(&json).ok()?;
    (session.exp > now()).then_some(session)
}

/// The logged-in subscriber's id and the session's anti-forgery token, for the pages that
/// live under `/account` (the passkey enrolment, `super::passkey`).
pub(crate) fn logged_in(s: &AppState, headers: &HeaderMap) -> Option<(String, String)> {
    current(s, headers).map(|a| (a.subscriber_id, a.csrf))
}

fn form(headers: &HeaderMap, body: &[u8]) -> Option<RawParams> {
    if is_form(headers) {
        RawParams::from_urlencoded(body).ok()
    } else {
        None
    }
}

fn html(r: Result<String, askama::Error>, status: StatusCode, cookies: &[String]) -> Response {
    match r {
        Ok(page) => {
            let mut resp = (status, Html(page)).into_response();
            let h = resp.headers_mut();
            for c in cookies {
                if let Ok(v) = HeaderValue::from_str(c) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "account page failed to render");
            error_page(&McError::ServerError)
        }
    }
}

/// A 403 page for a refused action.
fn refused(description: &str) -> Response {
    html(
        crate::pages::ErrorPage {
            error: "access_denied",
            description,
        }
        .render(),
        StatusCode::FORBIDDEN,
        &[],
    )
}

/// A `303 See Other` (after a form post) that also sets cookies.
fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut resp = redirect(location);
    *resp.status_mut() = StatusCode::SEE_OTHER;
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------
// pages

#[derive(Template)]
#[template(path = "account_login.html")]
struct LoginPage<'a> {
    action: &'a str,
    message: Option<&'a str>,
}

/// One service provider on the account page.
struct ProviderRow {
    client_id: String,
    name: String,
    sector: String,
    first_seen: String,
    /// What it may receive, in words; empty: authentication only.
    shared: Vec<String>,
    /// "Given on …, on your phone" / "Withdrawn on …".
    consent_note: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    base: &'a str,
    masked_msisdn: &'a str,
    providers: Vec<ProviderRow>,
    csrf: &'a str,
    message: Option<&'a str>,
}

fn login_page(s: &AppState, message: Option<&str>, status: StatusCode) -> Response {
    let action = format!("{}/login", account_path(s));
    html(
        LoginPage {
            action: &action,
            message,
        }
        .render(),
        status,
        &[],
    )
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
fn date(t: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        Err(_) => String::from("?"),
    }
}

async fn home(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let Some(session) = current(&s, &headers) else {
        return login_page(&s, None, StatusCode::OK);
    };
    let message = q.as_deref().and_then(|q| {
        RawParams::from_urlencoded(q.as_bytes()).ok().and_then(|p| {
            p.get("withdrawn")
                .map(|_| "Consent withdrawn; that service's access was revoked.")
        })
    });
    match account_page(&s, &session, message).await {
        Ok(resp) => resp,
        Err(e) => error_page(&e),
    }
}

async fn account_page(
    s: &AppState,
    session: &AccountSession,
    message: Option<&str>,
) -> Result<Response, McError> {
    let subscriber = s
        .store
        .get_subscriber(&session.subscriber_id)
        .await
        .map_err(store_failure)?
        .ok_or(McError::UnknownUser)?;
    let masked = Msisdn::parse(&subscriber.msisdn)
        .map(|m| m.masked())
        .unwrap_or_default();
    let records = s
        .store
        .list_consents(&subscriber.id)
        .await
        .map_err(store_failure)?;
    let mut providers = Vec::with_capacity(records.len());
    for r in records {
        let client = s
            .store
            .get_client(&r.client_id)
            .await
            .map_err(store_failure)?;
        let (name, sector) = match client {
            Some(c) => (c.name, c.sector),
            None => (r.client_id.clone(), String::new()),
        };
        let consent_note = match (r.revoked_at, r.given_at) {
            (Some(at), _) => format!("You withdrew your consent on {}.", date(at)),
            (None, Some(at)) => format!(
                "Consent given on {}, {}.",
                date(at),
                match r.channel {
                    Some(mc_store::ConsentChannel::Phone) => "on your phone",
                    _ => "in the browser",
                }
            ),
            (None, None) => "It only checks that it is you: no details shared.".to_owned(),
        };
        providers.push(ProviderRow {
            shared: r
                .scopes
                .iter()
                .map(|i| mc_core::consent::label(i))
                .collect(),
            client_id: r.client_id,
            name,
            sector,
            first_seen: date(r.first_seen),
            consent_note,
        });
    }
    Ok(html(
        AccountPage {
            base: &account_path(s),
            masked_msisdn: &masked,
            providers,
            csrf: &session.csrf,
            message,
        }
        .render(),
        StatusCode::OK,
        &[],
    ))
}

// ---------------------------------------------------------------------------------------
// login

/// The built-in client, registered on first use (two first uses at once: one insert wins,
/// the other finds it).
async fn self_service_client(s: &AppState) -> Result<ClientRecord, McError> {
    if let Some(c) = s
        .store
        .get_client(SELF_SERVICE_CLIENT_ID)
        .await
        .map_err(store_failure)?
    {
        return Ok(c);
    }
    let record = ClientRecord {
        client_id: SELF_SERVICE_CLIENT_ID.to_owned(),
        // A secret no one knows: the client never authenticates at the token endpoint.
        secret_hash: crate::client_auth::hash_client_secret(&random_token()),
        name: SELF_SERVICE_NAME.to_owned(),
        short_name: SELF_SERVICE_NAME.to_owned(),
        redirect_uris: vec![format!("{}/account/callback", s.config.issuer)],
        allowed_scopes: vec!["openid".to_owned(), "mc_authn".to_owned()],
        grant_types: vec![],
        sector: url::Url::parse(&s.config.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".to_owned()),
        status: ClientStatus::Active,
        created_at: now(),
        metadata: ClientMetadata::default(),
    };
    match s.store.insert_client(&record).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(record),
        Err(e) => Err(store_failure(e)),
    }
}

/// Starts the phone login for the typed number and sends the browser to the waiting page.
async fn login(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let typed = form(&headers, &body)
        .as_ref()
        .and_then(|p| p.get("msisdn").map(str::to_owned))
        .unwrap_or_default();
    let Some(msisdn) = Msisdn::parse_typed(&typed) else {
        return login_page(
            &s,
            Some("Please enter the number in international format, e.g. +44 7700 900301."),
            StatusCode::BAD_REQUEST,
        );
    };
    match start(&s, &msisdn).await {
        Ok((session_id, state)) => see_other(
            &s.wait_path(&session_id),
            &[set_cookie(
                &s,
                STATE_COOKIE,
                &state,
                &account_path(&s),
                s.config.login.timeout_secs + 60,
            )],
        ),
        Err(McError::UserBusy) => login_page(
            &s,
            Some("Your phone is busy with another request. Answer or cancel it, then try again."),
            StatusCode::CONFLICT,
        ),
        Err(McError::ServerError) => error_page(&McError::ServerError),
        Err(_) => login_page(
            &s,
            Some("This number cannot log in with Mobile Connect."),
            StatusCode::FORBIDDEN,
        ),
    }
}

async fn start(s: &AppState, msisdn: &Msisdn) -> Result<(String, String), McError> {
    let client = self_service_client(s).await?;
    let found = s
        .store
        .find_subscriber_by_msisdn(msisdn.as_str())
        .await
        .map_err(store_failure)?;
    let sub = require_active_subscriber(found)?;
    let acr = AcrValues::parse("2").ok_or(McError::ServerError)?;
    let choice = s.router.choose(&sub, &acr)?;
    let t = now();
    let state = random_token();
    let session = AuthSession {
        id: random_token(),
        client_id: client.client_id.clone(),
        subscriber_id: Some(sub.id.clone()),
        redirect_uri: client.redirect_uris.first().cloned().unwrap_or_default(),
        state: state.clone(),
        nonce: random_token(),
        scope: "openid mc_authn".to_owned(),
        version: "mc_v1.1".to_owned(),
        acr_values: acr.to_wire(),
        max_age: None,
        claims: None,
        client_name: SELF_SERVICE_NAME.to_owned(),
        context: Some("Open your Mobile Connect account page".to_owned()),
        binding_message: None,
        correlation_id: None,
        code_challenge: None,
        status: SessionStatus::Pending,
        acr: Some(choice.loa.as_str().to_owned()),
        amr: vec![],
        auth_time: None,
        error: None,
        created_at: t,
        expires_at: t + i64::from(s.config.login.timeout_secs),
    };
    s.store
        .create_session(&session, t)
        .await
        .map_err(|e| match e {
            StoreError::Busy => McError::UserBusy,
            other => store_failure(other),
        })?;
    crate::login::challenge(s, &session, &sub, choice).await?;
    Ok((session.id, state))
}

/// The end of the login: the code (or error) comes back here with the `state` bound to
/// the browser's cookie.
async fn callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let params = RawParams::from_urlencoded(q.unwrap_or_default().as_bytes()).ok();
    let get = |name: &str| {
        params
            .as_ref()
            .and_then(|p| p.get(name))
            .unwrap_or_default()
            .to_owned()
    };
    let clear_state = set_cookie(&s, STATE_COOKIE, "", &account_path(&s), 0);
    let state = get("state");
    if !cookie(&headers, STATE_COOKIE).is_some_and(|c| same_token(c, &state)) {
        return login_page(
            &s,
            Some("This login was not started in this browser. Please start again."),
            StatusCode::BAD_REQUEST,
        );
    }
    if !get("error").is_empty() {
        return html(
            LoginPage {
                action: &format!("{}/login", account_path(&s)),
                message: Some("The login was not approved on the phone."),
            }
            .render(),
            StatusCode::FORBIDDEN,
            &[clear_state],
        );
    }
    let code = get("code");
    if code.is_empty() || code.len() > 128 {
        return login_page(&s, Some("Please start again."), StatusCode::BAD_REQUEST);
    }
    let session = match s.store.redeem_code(&sha256_hex(&code), now()).await {
        Ok(Redemption::Fresh(session)) => session,
        Ok(_) => return login_page(&s, Some("Please start again."), StatusCode::BAD_REQUEST),
        Err(e) => return error_page(&store_failure(e)),
    };
    let subscriber_id = match session.subscriber_id.as_deref() {
        Some(id) if session.client_id == SELF_SERVICE_CLIENT_ID && session.state == state => id,
        _ => return login_page(&s, Some("Please start again."), StatusCode::BAD_REQUEST),
    };
    let account = AccountSession {
        subscriber_id: subscriber_id.to_owned(),
        exp: now() + i64::from(SESSION_SECS),
        csrf: random_token(),
    };
    let Some(sealed) = seal_session(&s, &account) else {
        return error_page(&McError::ServerError);
    };
    tracing::info!(session = %session.id, "self-service login");
    see_other(
        &account_path(&s),
        &[
            clear_state,
            set_cookie(&s, SESSION_COOKIE, &sealed, &account_path(&s), SESSION_SECS),
        ],
    )
}

// ---------------------------------------------------------------------------------------
// actions

/// The logged-in session of a form post whose `csrf` matches it, with the form.
fn authorized_post(
    s: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(AccountSession, RawParams), Box<Response>> {
    let Some(session) = current(s, headers) else {
        return Err(Box::new(login_page(
            s,
            Some("Your session has ended. Please log in again."),
            StatusCode::UNAUTHORIZED,
        )));
    };
    let Some(params) = form(headers, body) else {
        return Err(Box::new(error_page(&McError::MalformedRequest)));
    };
    if !same_token(&session.csrf, params.get("csrf").unwrap_or_default()) {
        tracing::warn!("account form without a matching anti-forgery token");
        return Err(Box::new(refused(
            "The form could not be verified. Reload the page and try again.",
        )));
    }
    Ok((session, params))
}

/// Withdraws consent from one service provider and revokes its tokens.
async fn revoke(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (session, params) = match authorized_post(&s, &headers, &body) {
        Ok(found) => found,
        Err(resp) => return *resp,
    };
    let client_id = params.get("client_id").unwrap_or_default();
    if client_id.is_empty() || client_id.len() > 256 {
        return error_page(&McError::MalformedRequest);
    }
    match s
        .store
        .revoke_consent(&session.subscriber_id, client_id, now())
        .await
    {
        Ok(tokens) => {
            tracing::info!(client = %client_id, tokens, "consent withdrawn by the subscriber");
            see_other(&format!("{}?withdrawn=1", account_path(&s)), &[])
        }
        Err(StoreError::NotFound) => refused("This service does not know you."),
        Err(e) => error_page(&store_failure(e)),
    }
}

async fn logout(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = authorized_post(&s, &headers, &body) {
        return *resp;
    }
    see_other(
        &account_path(&s),
        &[set_cookie(&s, SESSION_COOKIE, "", &account_path(&s), 0)],
    )
}
