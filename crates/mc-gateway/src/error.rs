//! How errors leave the gateway: JSON for APIs, a page for the browser, a redirect once the
//! redirect URI is verified. Internal detail is logged, never sent.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mc_core::McError;
use serde_json::json;

use crate::pages::ErrorPage;

/// A JSON OAuth error (`{"error", "error_description", "correlation_id"}`).
pub struct ApiError {
    pub error: McError,
    pub correlation_id: Option<String>,
}

impl From<McError> for ApiError {
    fn from(error: McError) -> Self {
        ApiError {
            error,
            correlation_id: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut body = json!({"error": self.error.code().as_str(), "error_description": self.error.description()});
        if let Some(c) = self.correlation_id {
            body["correlation_id"] = json!(c);
        }
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self.error {
            McError::InvalidClient => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"token\""),
                );
            }
            McError::MissingAccessToken => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer error=\"invalid_request\", error_description=\"No Access Token\"",
                    ),
                );
            }
            McError::InvalidAccessToken => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            McError::Throttled => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

/// An error shown to the browser because no verified redirect URI exists.
pub fn error_page(error: &McError) -> Response {
    let page = ErrorPage {
        error: error.code().as_str(),
        description: &error.description(),
    };
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            (status, error.description().into_owned()).into_response()
        }
    }
}

/// A `302 Found` to `location`.
pub fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, v),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => error_page(&McError::ServerError),
    }
}

/// Logs a store failure and turns it into `server_error`.
pub fn store_failure(e: mc_store::StoreError) -> McError {
    tracing::error!(error = %e, "store failure");
    McError::ServerError
}
