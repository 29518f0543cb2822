//! Consent in the login flow (docs/decisions.md "Consent"): identity attributes are
//! released only with the subscriber's consent, given on the phone or in the browser.
//!
//! * **Phone.** The app-push challenge lists the attributes the SP asks for and that the
//!   subscriber has not yet agreed to share with it; approving records the consent with the
//!   approval (`mc_authn::push::PushChannel::answer_sharing`).
//! * **Browser.** A login approved on a device that cannot show the question (any
//!   authenticator but app push) stops, after the approval and before the code is issued, at
//!   the consent page `/authorize/consent/{session}` in the browser that started it.
//! * **Refusal.** Optional attributes (the OIDC scopes, `claims`) refused: the login goes on
//!   and the token is granted without them. Identity products refused: `access_denied`.
//! * **Grant.** The token's scope is the requested scope without the attribute scopes not
//!   consented ([`granted_scope`], called when tokens are issued); the first token issued to
//!   an SP for a subscriber notes the contact (`first_seen`), which the self-service page
//!   lists.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use mc_authn::Authenticator as _;
use mc_core::McError;
use mc_core::consent as rules;
use mc_core::params::RawParams;
use mc_store::{AuthSession, ConsentChannel, SessionStatus};

use crate::error::{error_page, redirect, store_failure};
use crate::login::{self, WaitState};
use crate::routes::is_form;
use crate::state::{AppState, now, random_token, sha256_hex};

/// The consent page's anti-forgery cookie (double submit: the form carries the same value).
const CSRF_COOKIE: &str = "mc_consent";

pub fn router() -> Router<AppState> {
    Router::new().route("/authorize/consent/{session}", get(page).post(submit))
}

/// The consent URL of a login (relative to the host).
pub fn consent_path(s: &AppState, session_id: &str) -> String {
    format!("{}/authorize/consent/{session_id}", s.base_path)
}

/// Whether the approval came from a device that showed the consent question (app push).
fn approved_on_consenting_device(session: &AuthSession) -> bool {
    let push = mc_authn::push::AppPush;
    session
        .amr
        .iter()
        .any(|a| push.amr_values().contains(&a.as_str()))
}

/// The consent items the subscriber has given `client_id` (empty without a record).
pub async fn given_items(
    s: &AppState,
    subscriber_id: &str,
    client_id: &str,
) -> Result<Vec<String>, McError> {
    Ok(s.store
        .consent_for(subscriber_id, client_id)
        .await
        .map_err(store_failure)?
        .map(|c| c.scopes)
        .unwrap_or_default())
}

/// The items an approved front-channel login must still ask in the browser: those it
/// requests, not yet given, when its device could not ask them. Empty (and no store read)
/// for an authentication-only request or an app-push approval.
pub async fn browser_consent_needed(
    s: &AppState,
    session: &AuthSession,
) -> Result<Vec<String>, McError> {
    let requested = rules::requested_items(&session.scope, session.claims.as_deref());
    if requested.is_empty() || approved_on_consenting_device(session) {
        return Ok(vec![]);
    }
    let subscriber_id = session
        .subscriber_id
        .as_deref()
        .ok_or(McError::ServerError)?;
    let given = given_items(s, subscriber_id, &session.client_id).await?;
    Ok(rules::missing_items(&requested, &given))
}

/// The scope a token is issued with: `scope` without the attribute scopes the subscriber
/// has not consented to release to `client_id`. Notes the first contact of the client with
/// the subscriber (the self-service page's "first seen").
pub async fn granted_scope(
    s: &AppState,
    subscriber_id: &str,
    client_id: &str,
    scope: &str,
    t: i64,
) -> Result<String, McError> {
    let given = match s
        .store
        .consent_for(subscriber_id, client_id)
        .await
        .map_err(store_failure)?
    {
        Some(record) => record.scopes,
        None => {
            s.store
                .record_consent(subscriber_id, client_id, &[], ConsentChannel::Browser, t)
                .await
                .map_err(store_failure)?
                .scopes
        }
    };
    Ok(rules::granted_scope(scope, &given))
}

// ---------------------------------------------------------------------------------------
// cookies

/// Whether cookies get `Secure`: always for an https issuer; for http only on a loopback
/// host (browsers accept `Secure` cookies from `http://localhost`, and a plain-http sandbox
/// on another host would otherwise lose them).
pub fn secure_cookies(s: &AppState) -> bool {
    let issuer = s.config.issuer.as_str();
    if issuer.starts_with("https://") {
        return true;
    }
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]")
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, `Secure` per [`secure_cookies`].
/// `max_age` 0 deletes the cookie.
pub fn set_cookie(s: &AppState, name: &str, value: &str, path: &str, max_age: u32) -> String {
    let secure = if secure_cookies(s) { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Constant-time equality of two anti-forgery tokens (both non-empty).
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// A page response that sets a cookie and is never cached.
pub fn page_with_cookie(html: String, cookie: &str) -> Response {
    let mut resp = Html(html).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(cookie) {
        h.append(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

// ---------------------------------------------------------------------------------------
// the consent page

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    action: &'a str,
    client_name: &'a str,
    labels: Vec<String>,
    required: bool,
    csrf: &'a str,
    message: Option<&'a str>,
}

/// The approved session waiting for consent and what it must ask, or where to go instead.
async fn pending_consent(
    s: &AppState,
    session_id: &str,
) -> Result<(AuthSession, Vec<String>), Response> {
    if session_id.len() > 64 {
        return Err(error_page(&McError::AuthenticationTimeout));
    }
    let session = match s.store.get_session(session_id).await {
        Ok(Some(sess)) => sess,
        Ok(None) => return Err(error_page(&McError::AuthenticationTimeout)),
        Err(e) => return Err(error_page(&store_failure(e))),
    };
    if session.status != SessionStatus::Approved {
        // Not (or no longer) at this step: the waiting URL knows where to go.
        return Err(redirect(&s.wait_path(&session.id)));
    }
    match browser_consent_needed(s, &session).await {
        Ok(missing) if missing.is_empty() => Err(redirect(&s.wait_path(&session.id))),
        Ok(missing) => Ok((session, missing)),
        Err(e) => Err(error_page(&e)),
    }
}

fn render_page(
    s: &AppState,
    session: &AuthSession,
    missing: &[String],
    message: Option<&str>,
) -> Response {
    let csrf = random_token();
    let action = consent_path(s, &session.id);
    let page = ConsentPage {
        action: &action,
        client_name: &session.client_name,
        labels: missing.iter().map(|i| rules::label(i)).collect(),
        required: rules::refusal_denies(missing),
        csrf: &csrf,
        message,
    };
    match page.render() {
        Ok(html) => page_with_cookie(html, &set_cookie(s, CSRF_COOKIE, &csrf, &action, 600)),
        Err(e) => {
            tracing::error!(error = %e, "consent page failed to render");
            error_page(&McError::ServerError)
        }
    }
}

async fn page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    crate::telemetry::note_session(&id);
    match pending_consent(&s, &id).await {
        Ok((session, missing)) => render_page(&s, &session, &missing, None),
        Err(resp) => resp,
    }
}

/// The subscriber's answer: `decision=share` or `decision=decline`, with the form's `csrf`
/// matching the cookie set with the page.
async fn submit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    crate::telemetry::note_session(&id);
    let (session, missing) = match pending_consent(&s, &id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let form = if is_form(&headers) {
        RawParams::from_urlencoded(&body).ok()
    } else {
        None
    };
    let field = |name: &str| form.as_ref().and_then(|p| p.get(name)).unwrap_or_default();
    let forged = !cookie(&headers, CSRF_COOKIE).is_some_and(|c| same_token(c, field("csrf")));
    if forged {
        tracing::warn!(session = %session.id, "consent form without a matching anti-forgery token");
        return render_page(
            &s,
            &session,
            &missing,
            Some("Your answer could not be verified. Please answer again."),
        );
    }
    let Some(subscriber_id) = session.subscriber_id.as_deref() else {
        return error_page(&McError::ServerError);
    };
    let t = now();
    match field("decision") {
        "share" => {
            if let Err(e) = s
                .store
                .record_consent(
                    subscriber_id,
                    &session.client_id,
                    &missing,
                    ConsentChannel::Browser,
                    t,
                )
                .await
            {
                return error_page(&store_failure(e));
            }
            tracing::info!(session = %session.id, items = missing.len(), "consent given in the browser");
            finish(&s, &session).await
        }
        "decline" if rules::refusal_denies(&missing) => {
            // The product was the point of the request: the login is refused. The session
            // is closed with a code no one knows, so the waiting URL cannot issue one later.
            if let Err(e) = s
                .store
                .issue_code(&session.id, &sha256_hex(&random_token()), t)
                .await
            {
                return error_page(&store_failure(e));
            }
            tracing::info!(session = %session.id, "required consent refused in the browser");
            redirect(&login::refusal_location(&session, McError::UserDenied))
        }
        "decline" => {
            tracing::info!(session = %session.id, "optional consent refused in the browser");
            finish(&s, &session).await
        }
        _ => render_page(
            &s,
            &session,
            &missing,
            Some("Please choose one of the buttons."),
        ),
    }
}

/// Issues the code and sends the browser back to the service provider.
async fn finish(s: &AppState, session: &AuthSession) -> Response {
    match login::deliver_code(s, session).await {
        WaitState::Redirect(to) => redirect(&to),
        WaitState::Gone(e) => error_page(&e),
        WaitState::Pending(_) => redirect(&s.wait_path(&session.id)),
    }
}
