//! One module per resource, each owning its routes.

pub mod account;
pub mod admin;
pub mod atp;
pub mod authorize;
pub mod backchannel;
pub mod device;
pub mod introspect;
pub mod metadata;
pub mod openapi;
pub mod ops;
pub mod passkey;
pub mod premiuminfo;
pub mod revoke;
pub mod sms;
pub mod token;
pub mod userinfo;

use axum::http::HeaderMap;

/// The first value of a header as text.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The token of an `Authorization: Bearer` header; the scheme is case-insensitive
/// (RFC 9110 §11.1).
pub fn bearer(h: &HeaderMap) -> Option<String> {
    let v = h.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// True for `application/x-www-form-urlencoded` bodies (parameters may follow).
pub fn is_form(h: &HeaderMap) -> bool {
    header(h, "content-type").is_some_and(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// The access token of a protected-resource request: `Authorization: Bearer`, or
/// `access_token` in a form body (RFC 6750 §2.2).
pub fn token_from(h: &HeaderMap, body: &[u8]) -> Option<String> {
    bearer(h).or_else(|| {
        if !is_form(h) || body.is_empty() {
            return None;
        }
        mc_core::params::RawParams::from_urlencoded(body)
            .ok()
            .and_then(|p| p.get("access_token").map(str::to_owned))
    })
}
