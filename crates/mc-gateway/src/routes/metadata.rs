//! `/.well-known/openid-configuration` (precomputed at start) and `/jwks` (serialized once
//! per key change).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/jwks", get(jwks))
}

fn json_cached(body: impl Into<axum::body::Body>) -> Response {
    let body: axum::body::Body = body.into();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn metadata(State(s): State<AppState>) -> Response {
    json_cached(s.metadata_json.clone())
}

/// The current key set: follows rotations (`KeyRing::refresh`); RPs may cache it for
/// `max-age`, which publish-ahead outlasts (`keys.publish_ahead_secs`).
async fn jwks(State(s): State<AppState>) -> Response {
    json_cached(s.keys.jwks_body())
}
