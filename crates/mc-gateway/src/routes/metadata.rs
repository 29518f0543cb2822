//! `/.well-known/openid-configuration` and `/jwks`: precomputed at start.

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

fn json_cached(body: String) -> Response {
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

async fn jwks(State(s): State<AppState>) -> Response {
    json_cached(s.jwks_json.clone())
}
