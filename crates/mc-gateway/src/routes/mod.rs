//! One module per resource, each owning its routes.

pub mod admin;
pub mod authorize;
pub mod metadata;
pub mod token;
pub mod userinfo;

use axum::http::HeaderMap;

/// The first value of a header as text.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// True for `application/x-www-form-urlencoded` bodies (parameters may follow).
pub fn is_form(h: &HeaderMap) -> bool {
    header(h, "content-type").is_some_and(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}
