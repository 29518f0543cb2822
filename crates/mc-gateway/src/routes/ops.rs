//! Operating endpoints: `/healthz` (liveness), `/readyz` (readiness: the store answers) and
//! `/metrics` (Prometheus text format, when `telemetry.metrics` is on).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;
use crate::telemetry;

/// A store that has not answered by then is not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router(state: &AppState) -> Router<AppState> {
    let r = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if state.config.telemetry.metrics {
        telemetry::install();
        r.route("/metrics", get(metrics))
    } else {
        r
    }
}

/// 200 while the store answers a cheap indexed query, else 503: a load balancer takes the
/// node out of rotation while its database is unreachable.
async fn readyz(State(s): State<AppState>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, s.store.get_client("")).await {
        Ok(Ok(_)) => "ready".into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: store failure");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
        Err(_) => {
            tracing::warn!("not ready: store timed out");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let Some(handle) = telemetry::handle() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    telemetry::sample_store_gauges(&s).await;
    let mut resp = handle.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    resp
}
