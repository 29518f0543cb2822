//! The Discovery API's errors and their one mapping to the wire (digest §2.7, decision in
//! docs/decisions.md): a JSON body `{"error", "description", "correlation_id"}` — the
//! GSMA SDKs read `description`; `error_description` carries the same text for generic
//! OAuth clients.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// A missing, malformed or conflicting parameter.
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing or wrong discovery credentials.
    #[error("the discovery client credentials are missing or wrong")]
    InvalidClient,
    /// No (enabled) operator serves what the request identified.
    #[error("Operator Not Found")]
    OperatorNotFound,
    /// The operator exists but the application is not enabled there.
    #[error("Operator Not Found: the application is not enabled at the serving operator")]
    NotEnabledAtOperator,
    /// Our fault; the detail was logged.
    #[error("the discovery service failed, try again later")]
    Server,
}

impl DiscoveryError {
    pub fn code(&self) -> &'static str {
        match self {
            DiscoveryError::InvalidRequest(_) => "invalid_request",
            DiscoveryError::InvalidClient => "invalid_client",
            DiscoveryError::OperatorNotFound | DiscoveryError::NotEnabledAtOperator => {
                "Not_Found_Entity"
            }
            DiscoveryError::Server => "server_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            DiscoveryError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            DiscoveryError::InvalidClient => StatusCode::UNAUTHORIZED,
            DiscoveryError::OperatorNotFound | DiscoveryError::NotEnabledAtOperator => {
                StatusCode::NOT_FOUND
            }
            DiscoveryError::Server => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response, echoing `correlation_id` when the request carried a valid one.
    pub fn reply(&self, correlation_id: Option<&str>) -> Response {
        let description = self.to_string();
        let mut body = json!({
            "error": self.code(),
            "description": description,
            "error_description": description,
        });
        if let Some(c) = correlation_id {
            body["correlation_id"] = json!(c);
        }
        let mut resp = (self.status(), Json(body)).into_response();
        if matches!(self, DiscoveryError::InvalidClient) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"discovery\""),
            );
        }
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        resp
    }
}

impl IntoResponse for DiscoveryError {
    fn into_response(self) -> Response {
        self.reply(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every variant maps to a documented code and status.
    #[test]
    fn every_variant_has_its_wire_form() {
        for (e, code, status) in [
            (
                DiscoveryError::InvalidRequest("x".into()),
                "invalid_request",
                400,
            ),
            (DiscoveryError::InvalidClient, "invalid_client", 401),
            (DiscoveryError::OperatorNotFound, "Not_Found_Entity", 404),
            (
                DiscoveryError::NotEnabledAtOperator,
                "Not_Found_Entity",
                404,
            ),
            (DiscoveryError::Server, "server_error", 500),
        ] {
            assert_eq!(e.code(), code);
            assert_eq!(e.status().as_u16(), status);
            let r = e.reply(Some("c-1"));
            assert_eq!(r.status().as_u16(), status);
            assert_eq!(
                r.headers().contains_key(header::WWW_AUTHENTICATE),
                status == 401
            );
        }
        assert_eq!(
            DiscoveryError::OperatorNotFound.to_string(),
            "Operator Not Found"
        );
    }
}
