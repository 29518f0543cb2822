//! The operator-selection page (digest §2.6): the user types their number or picks their
//! operator, and the browser goes back to the application's verified `Redirect_URL` with
//! `mcc_mnc=<MCC>_<MNC>` and, when a number was typed, `subscriber_id=<encrypted MSISDN>`.
//!
//! The page's state travels in the signed `session_id` (application, `Redirect_URL`,
//! expiry), so any node serves it. Only operators where the application has credentials
//! are offered. Bad input re-renders the page with a plain-language error; a broken or
//! expired link gets an error page and never a redirect (its `Redirect_URL` cannot be
//! trusted). "Cancel" returns to the application with `error=access_denied`.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mc_core::msisdn::Msisdn;
use serde::Deserialize;

use crate::api::{credentials_at, now_ms, subscriber_id};
use crate::crypto::SelectionSession;
use crate::state::{DiscoveryState, Operator};

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    session_id: String,
}

#[derive(Deserialize)]
pub struct Choice {
    #[serde(default)]
    session_id: String,
    #[serde(default)]
    msisdn: Option<String>,
    #[serde(default)]
    mcc_mnc: Option<String>,
    #[serde(default)]
    cancel: Option<String>,
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn now() -> i64 {
    (now_ms() / 1000) as i64
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>\
body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#222}}\
h1{{font-size:1.4rem}}.error{{background:#fde8e8;border:1px solid #e0a0a0;padding:.6rem;border-radius:.3rem}}\
input[type=tel]{{font-size:1.1rem;padding:.4rem;width:100%;box-sizing:border-box}}\
button{{font-size:1rem;padding:.5rem 1rem;margin:.3rem 0;cursor:pointer}}\
ul{{list-style:none;padding:0}}li button{{width:100%;text-align:left}}.muted{{color:#666;font-size:.9rem}}\
</style></head><body>{body}</body></html>",
        title = escape(title)
    );
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(html),
    )
        .into_response()
}

fn broken_link() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Link expired",
        "<h1>This link has expired or is not valid</h1>\
<p>Go back to the service you came from and start the login again.</p>",
    )
}

/// The operators offered to the application (those where it has credentials).
async fn offered(s: &DiscoveryState, app_id: &str) -> Option<Vec<Arc<Operator>>> {
    let creds = match s.store().list_operator_credentials(app_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "store failure listing credentials");
            return None;
        }
    };
    let snap = s.snapshot();
    let mut ops: Vec<Arc<Operator>> = creds
        .iter()
        .filter_map(|c| snap.operator(&c.operator_id).cloned())
        .collect();
    ops.sort_by(|a, b| {
        (&a.record.country, &a.record.name).cmp(&(&b.record.country, &b.record.name))
    });
    Some(ops)
}

/// The session and the application, or the error page.
async fn session_of(
    s: &DiscoveryState,
    token: &str,
) -> Result<(SelectionSession, mc_store::DiscoveryAppRecord), Response> {
    let session = s
        .secrets()
        .verify_session(token, now())
        .ok_or_else(broken_link)?;
    match s.store().get_discovery_app(&session.app).await {
        Ok(Some(app)) if app.enabled && app.redirect_uris.contains(&session.redirect_url) => {
            Ok((session, app))
        }
        Ok(_) => Err(broken_link()),
        Err(e) => {
            tracing::error!(error = %e, "store failure reading an application");
            Err(unavailable())
        }
    }
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again later",
        "<h1>Something went wrong on our side</h1><p>Please try again in a moment.</p>",
    )
}

fn selection_page(
    status: StatusCode,
    token: &str,
    app_name: &str,
    operators: &[Arc<Operator>],
    error: Option<&str>,
    typed: &str,
) -> Response {
    let mut body = format!(
        "<h1>Log in to {} with Mobile Connect</h1>",
        escape(app_name)
    );
    if let Some(e) = error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
            escape(e)
        ));
    }
    let token = escape(token);
    body.push_str(&format!(
        "<form method=\"post\" action=\"operator-selection\">\
<input type=\"hidden\" name=\"session_id\" value=\"{token}\">\
<label for=\"msisdn\">Your mobile number, in international format</label>\
<input type=\"tel\" id=\"msisdn\" name=\"msisdn\" autocomplete=\"tel\" placeholder=\"+44 7700 900301\" value=\"{}\" required>\
<button type=\"submit\" id=\"next\">Next</button></form>",
        escape(typed)
    ));
    if !operators.is_empty() {
        body.push_str(
            "<p>Or choose your mobile operator:</p>\
<form method=\"post\" action=\"operator-selection\">",
        );
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"session_id\" value=\"{token}\"><ul>"
        ));
        for op in operators {
            body.push_str(&format!(
                "<li><button type=\"submit\" name=\"mcc_mnc\" value=\"{code}\" id=\"op-{code}\">{name} <span class=\"muted\">{country}</span></button></li>",
                code = escape(&op.mcc_mnc()),
                name = escape(&op.record.name),
                country = escape(&op.record.country),
            ));
        }
        body.push_str("</ul></form>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"operator-selection\">\
<input type=\"hidden\" name=\"session_id\" value=\"{token}\">\
<button type=\"submit\" name=\"cancel\" value=\"1\" id=\"cancel\">Cancel</button></form>"
    ));
    page(status, "Choose your mobile operator", &body)
}

/// `GET …/v2/discovery/users/operator-selection?session_id=…`.
pub async fn show(State(s): State<DiscoveryState>, Query(q): Query<PageQuery>) -> Response {
    let (_, app) = match session_of(&s, &q.session_id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(ops) = offered(&s, &app.client_id).await else {
        return unavailable();
    };
    selection_page(StatusCode::OK, &q.session_id, &app.name, &ops, None, "")
}

/// Appends query parameters to the verified `Redirect_URL`.
fn back_to(redirect_url: &str, params: &[(&str, &str)]) -> Response {
    let mut url = redirect_url.to_owned();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
        sep = '&';
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// `POST …/operator-selection`: a typed number, a picked operator, or cancel.
pub async fn choose(State(s): State<DiscoveryState>, Form(c): Form<Choice>) -> Response {
    let (session, app) = match session_of(&s, &c.session_id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if c.cancel.is_some() {
        return back_to(
            &session.redirect_url,
            &[
                ("error", "access_denied"),
                ("description", "The user cancelled operator selection"),
            ],
        );
    }
    let Some(ops) = offered(&s, &app.client_id).await else {
        return unavailable();
    };
    let again = |status, error: &str, typed: &str| {
        selection_page(status, &c.session_id, &app.name, &ops, Some(error), typed)
    };
    if let Some(code) = c.mcc_mnc.as_deref().filter(|v| !v.is_empty()) {
        return match ops.iter().find(|o| o.mcc_mnc() == code) {
            Some(op) => back_to(&session.redirect_url, &[("mcc_mnc", &op.mcc_mnc())]),
            None => again(
                StatusCode::BAD_REQUEST,
                "Please choose one of the operators listed.",
                "",
            ),
        };
    }
    let typed = c.msisdn.as_deref().unwrap_or("").trim();
    if typed.len() > 64 {
        return again(StatusCode::BAD_REQUEST, "That number is too long.", "");
    }
    let Some(msisdn) = Msisdn::parse_typed(typed) else {
        return again(
            StatusCode::BAD_REQUEST,
            "Please enter your mobile number in international format, starting with + and the country code (for example +44 7700 900301).",
            typed,
        );
    };
    let snap = s.snapshot();
    let Some((op, _)) = snap.by_msisdn(&msisdn) else {
        return again(
            StatusCode::NOT_FOUND,
            "We could not find the mobile operator of this number. Check the number, or choose your operator below.",
            typed,
        );
    };
    if !ops.iter().any(|o| o.record.id == op.record.id) {
        return again(
            StatusCode::NOT_FOUND,
            "Mobile Connect is not available for this number with this service. Choose another way to log in.",
            typed,
        );
    }
    // The application's credentials there exist (the operator is offered); opening them
    // checks the seal is intact before the user is sent on.
    if credentials_at(&s, &app, op).await.is_err() {
        return unavailable();
    }
    match subscriber_id(op, &msisdn) {
        Ok(Some(sub)) => back_to(
            &session.redirect_url,
            &[("mcc_mnc", &op.mcc_mnc()), ("subscriber_id", &sub)],
        ),
        Ok(None) => back_to(&session.redirect_url, &[("mcc_mnc", &op.mcc_mnc())]),
        Err(_) => unavailable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
