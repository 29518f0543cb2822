//! The shop's HTML pages (askama templates `shop_*.html`) and its session cookie.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::accounts::{Account, Payment};

/// The session cookie's name.
pub const COOKIE: &str = "shop_session";

/// The session id the browser sent, when it is one of ours in shape.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| {
            *k == COOKIE
                && (20..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(|(_, v)| v.to_owned())
}

/// Adds the session cookie (HttpOnly, Lax: the operator's redirect back is a top-level
/// navigation, which Lax lets through).
pub fn with_cookie(mut resp: Response, sid: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={sid}; Path=/shop; HttpOnly; SameSite=Lax"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(h) => (status, [(header::CACHE_CONTROL, "no-store")], Html(h)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "shop template");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A 303 to `to`.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[derive(Template)]
#[template(path = "shop_home.html")]
struct Home<'a> {
    notice: Option<&'a str>,
    account: Option<&'a Account>,
    item: &'a str,
    amount: &'a str,
}

pub fn home(notice: Option<&str>, account: Option<&Account>) -> Response {
    render(
        StatusCode::OK,
        &Home {
            notice,
            account,
            item: super::flows::ITEM,
            amount: super::flows::AMOUNT,
        },
    )
}

#[derive(Template)]
#[template(path = "shop_account.html")]
struct AccountPage<'a> {
    notice: Option<&'a str>,
    a: &'a Account,
    acr: &'a str,
    amr: String,
    how: &'a str,
    payments: &'a [Payment],
}

pub fn account(notice: Option<&str>, a: &Account) -> Response {
    let last = a.last_login.as_ref();
    render(
        StatusCode::OK,
        &AccountPage {
            notice,
            a,
            acr: last.map_or("", |l| l.acr.as_str()),
            amr: last.map(|l| l.amr.join(" ")).unwrap_or_default(),
            how: last.map_or("", |l| l.how.as_str()),
            payments: &a.payments,
        },
    )
}

#[derive(Template)]
#[template(path = "shop_message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
}

/// A plain page for what went wrong (or was cancelled), with a way back.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(status, &Message { title, text })
}
