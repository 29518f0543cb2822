//! `/authorize` (GET and POST), the waiting page and the no-hint number page.
//! Handlers translate; the rules are in `mc_core::authorize` and `crate::login`.

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use mc_core::McError;
use mc_core::authorize::checks::{check_client_id, check_redirect_uri};
use mc_core::authorize::pipeline::front_channel;
use mc_core::msisdn::Msisdn;
use mc_core::params::RawParams;
use serde_json::json;

use super::{header, is_form};
use crate::error::{error_page, redirect, store_failure};
use crate::login::{self, Next, WaitState};
use crate::pages::{NumberPage, WaitPage};
use crate::state::AppState;
use crate::telemetry::note_session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/authorize/wait/{session}", get(wait))
        .route("/authorize/wait/{session}/status", get(wait_status))
        .route(
            "/authorize/number/{session}",
            get(number_page).post(number_submit),
        )
}

/// The TCP peer, when the server records it (header enrichment trusts only known peers).
type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

async fn authorize_get(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    authorize(
        &s,
        RawParams::from_urlencoded(q.unwrap_or_default().as_bytes()),
        (peer.map(|p| p.0.0), &headers),
    )
    .await
}

/// POST keeps an MSISDN hint out of URLs and logs (digest §4.1).
async fn authorize_post(
    State(s): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return error_page(&McError::MalformedRequest);
    }
    authorize(
        &s,
        RawParams::from_urlencoded(&body),
        (peer.map(|p| p.0.0), &headers),
    )
    .await
}

async fn authorize(
    s: &AppState,
    params: Result<RawParams, McError>,
    (peer, headers): (Option<std::net::SocketAddr>, &HeaderMap),
) -> Response {
    let p = match params {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let client_id = match check_client_id(&p) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    let client = match s.store.get_client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page(&McError::UnknownClient),
        Err(e) => return error_page(&store_failure(e)),
    };
    let policy = crate::policy_of(&client);
    let redirect_uri = match check_redirect_uri(&p, &policy) {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let req = match front_channel(&p, &policy, redirect_uri, &s.profile) {
        Ok(r) => r,
        Err(refusal) => return redirect(&refusal.location()),
    };
    let echo_on_error = (
        req.redirect_uri.clone(),
        req.state.clone(),
        req.correlation_id.clone(),
    );
    // A headless client is held here as it would be at the waiting URL: one round trip
    // fewer, and the code in this very answer when the phone answers within the hold; the
    // code is reserved with the session, so handing it out costs no write.
    let headless = !wants_html(headers);
    let mut headless_hold = None;
    // Header enrichment first: a browser on the operator's network needs no phone.
    let started = match crate::enrichment::seamless_login(s, &req, &policy, peer, headers).await {
        Ok(Some(next)) => Ok(next),
        Ok(None) => {
            headless_hold = headless.then(|| login::HeadlessHold::new(s));
            login::start_login(s, req, &policy, headless_hold.as_mut()).await
        }
        Err(e) => Err(e),
    };
    match started {
        Ok(Next::Wait(id)) if headless => match headless_hold.as_mut() {
            Some(held) => held_created_redirect(s, &id, held).await,
            None => held_redirect(s, &id).await,
        },
        Ok(Next::Wait(id)) => redirect(&s.wait_path(&id)),
        Ok(Next::AskNumber(id)) => redirect(&s.number_path(&id)),
        Err(e) => {
            let (uri, state, corr) = echo_on_error;
            let echo = mc_core::authorize::redirect::Echo {
                state: Some(&state),
                correlation_id: corr.as_deref(),
            };
            redirect(&uri.with_error(&e, &echo))
        }
    }
}

/// Whether the client asked for a page: a browser. Anything else is a server-side
/// ("headless", digest §4.7) client.
fn wants_html(headers: &HeaderMap) -> bool {
    header(headers, "accept").is_some_and(|a| a.contains("text/html"))
}

/// A headless client's answer: held up to `login.headless_hold_secs` while the phone has not
/// answered, then `302` to the SP's redirect URI (code or error), or to the waiting URL when
/// the hold ended first. No cookies, no JavaScript needed.
async fn held_redirect(s: &AppState, id: &str) -> Response {
    let ended = login::hold_while_pending(s, id, headless_hold_time(s)).await;
    finish_hold(s, id, ended, None).await
}

/// How long a headless client is held (`login.headless_hold_secs`).
fn headless_hold_time(s: &AppState) -> Duration {
    Duration::from_secs(u64::from(s.config.login.headless_hold_secs))
}

/// Where a headless client goes once its hold ended. `code`: the one reserved with the
/// session by this request.
async fn finish_hold(
    s: &AppState,
    id: &str,
    ended: login::Held,
    code: Option<&login::HeadlessHold>,
) -> Response {
    match login::wait_state_after(s, id, ended, code).await {
        WaitState::Redirect(to) => redirect(&to),
        WaitState::Gone(e) => error_page(&e),
        WaitState::Pending(_) => redirect(&s.wait_path(id)),
    }
}

/// [`held_redirect`] for the session this request has just created ([`login::hold_created`]).
async fn held_created_redirect(s: &AppState, id: &str, held: &mut login::HeadlessHold) -> Response {
    let ended = login::hold_created(s, held, headless_hold_time(s)).await;
    finish_hold(s, id, ended, Some(held)).await
}

/// Browsers get the waiting page; headless clients are held ([`held_redirect`]).
async fn wait(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    note_session(&id);
    if !wants_html(&headers) {
        return held_redirect(&s, &id).await;
    }
    match login::wait_state(&s, &id).await {
        WaitState::Redirect(to) => redirect(&to),
        WaitState::Gone(e) => error_page(&e),
        WaitState::Pending(session) => {
            let masked = match &session.subscriber_id {
                Some(sub_id) => match s.store.get_subscriber(sub_id).await {
                    Ok(Some(sub)) => Msisdn::parse(&sub.msisdn)
                        .map(|m| m.masked())
                        .unwrap_or_default(),
                    _ => String::new(),
                },
                None => String::new(),
            };
            let page = WaitPage {
                wait_path: &s.wait_path(&session.id),
                client_name: &session.client_name,
                context: session.context.as_deref(),
                binding_message: session.binding_message.as_deref(),
                masked_msisdn: &masked,
                loa: session.acr.as_deref().unwrap_or("2"),
                passkeys: s.router.by_name(mc_authn::passkey::CAPABILITY).is_some(),
                sms_otp: crate::routes::sms::expects_code(&s, &session.id).await,
            };
            render(page.render())
        }
    }
}

/// Long poll for the waiting page: answers `{"done": true}` as soon as the session leaves
/// `Pending` (or after 20 s with `false`).
async fn wait_status(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    note_session(&id);
    let done = login::hold_while_pending(&s, &id, Duration::from_secs(20))
        .await
        .done;
    // An SMS with a code may have been started since the page was drawn (a fallback of the
    // chain): the page then redraws itself with the code form.
    let sms_otp = !done && crate::routes::sms::expects_code(&s, &id).await;
    axum::Json(json!({ "done": done, "sms_otp": sms_otp })).into_response()
}

async fn number_page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    note_session(&id);
    match login::wait_state(&s, &id).await {
        WaitState::Redirect(to) if to == s.number_path(&id) => {}
        WaitState::Redirect(to) => return redirect(&to),
        WaitState::Gone(e) => return error_page(&e),
        WaitState::Pending(_) => return redirect(&s.wait_path(&id)),
    }
    number_form(&s, &id, None).await
}

async fn number_form(s: &AppState, id: &str, message: Option<&str>) -> Response {
    let client_name = match s.store.get_session(id).await {
        Ok(Some(sess)) => sess.client_name,
        _ => return error_page(&McError::AuthenticationTimeout),
    };
    render(
        NumberPage {
            number_path: &s.number_path(id),
            client_name: &client_name,
            message,
        }
        .render(),
    )
}

async fn number_submit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note_session(&id);
    let typed = if is_form(&headers) {
        RawParams::from_urlencoded(&body).ok()
    } else {
        None
    };
    let typed = typed
        .as_ref()
        .and_then(|p| p.get("msisdn"))
        .unwrap_or_default()
        .to_owned();
    match login::submit_number(&s, &id, &typed).await {
        Ok(Next::Wait(id)) => redirect(&s.wait_path(&id)),
        Ok(Next::AskNumber(id)) => redirect(&s.number_path(&id)),
        Err(Some(refusal)) => redirect(&refusal.location),
        Err(None) => {
            number_form(
                &s,
                &id,
                Some("Please enter the number in international format, e.g. +44 7700 900301."),
            )
            .await
        }
    }
}

fn render(r: Result<String, askama::Error>) -> Response {
    match r {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page failed to render");
            error_page(&McError::ServerError)
        }
    }
}
