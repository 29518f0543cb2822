//! The Mobile Connect **Discovery** service (digest §2): tells a service provider which
//! operator serves a subscriber and hands it that operator's endpoints, the provider's
//! credentials there, and the subscriber's number encrypted to the operator
//! (`subscriber_id`, usable as `login_hint=ENCR_MSISDN:…`).
//!
//! # Design
//!
//! * **Data** lives in the store ([`mc_store::DiscoveryStore`]: operators, applications
//!   with their discovery credentials, per-operator credentials sealed at rest, number
//!   ranges, ported numbers, mobile-data IP ranges). **Lookups** never touch it: they read
//!   an immutable in-memory [`state::Snapshot`] — the number index is two sorted integer
//!   arrays (10 bytes per entry, 10 million ported numbers in about 100 MB), see
//!   [`numbers`] — swapped whole when the store's change counter moves
//!   ([`DiscoveryState::spawn_refresher`]), so several nodes and the CLI can share one
//!   database.
//! * **The API** ([`api`]) follows the wire contract the GSMA SDKs were built on: `GET`
//!   and `POST {base}/v2/discovery` (query, form or JSON), HTTP Basic with the SP's
//!   discovery credentials, `Redirect_URL` mandatory and registered, identification by
//!   `MSISDN` (POST only), `Selected-MCC`/`MNC`, `Identified-MCC`/`MNC` or `X-Source-IP`;
//!   answers 200 (endpoints, credentials, `ttl` in epoch milliseconds, `subscriber_id`),
//!   202 `operatorSelection` (or 302 to it for `Accept: text/html`), or an error
//!   `{"error", "description", "correlation_id"}` ([`error`]).
//! * **Operator selection** ([`selection`]): an HTML page where the user types a number or
//!   picks an operator, then goes back to `Redirect_URL?mcc_mnc=…&subscriber_id=…`; its
//!   state is a signed session token, so any node serves it.
//! * **Administration** ([`admin`], [`registry`], [`import`]): REST under
//!   `{base}/admin/v1` (bearer token; its OpenAPI 3.1 document, [`openapi`], at
//!   `{base}/admin/v1/openapi.json`) and the `mobileconnect discovery` CLI; CSV imports
//!   stream millions of entries in batches.
//!
//! # Example
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn mc_store::DiscoveryStore>) -> Result<(), String> {
//! use mc_discovery::{DiscoveryConfig, DiscoveryState};
//! let config = DiscoveryConfig::new("https://discovery.example");
//! let state = DiscoveryState::load(store, config, &[0u8; 32]).await?;
//! state.spawn_refresher();
//! let app: axum::Router = mc_discovery::router(state);
//! # let _ = app; Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod crypto;
pub mod error;
pub mod import;
pub mod ip;
pub mod numbers;
pub mod openapi;
pub mod registry;
pub mod selection;
pub mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

pub use error::DiscoveryError;
pub use state::{DiscoveryConfig, DiscoveryState};

/// The routes without state, under the base URL's path (for merging next to other
/// routers, as the sandbox does).
pub fn routes(state: &DiscoveryState) -> Router<DiscoveryState> {
    let discovery = get(api::discovery)
        .post(api::discovery)
        .layer(DefaultBodyLimit::max(16 * 1024));
    let mut r = Router::new()
        .route("/v2/discovery", discovery.clone())
        .route("/v2/discovery/", discovery)
        .route(
            "/v2/discovery/users/operator-selection",
            get(selection::show)
                .post(selection::choose)
                .layer(DefaultBodyLimit::max(8 * 1024)),
        );
    if state.config().admin_token_sha256.is_some() {
        r = r.merge(admin::router(state)).merge(openapi::router());
    }
    let base = state.config().base_path();
    if base.is_empty() {
        r
    } else {
        Router::new().nest(&base, r)
    }
}

/// The Discovery service as an axum `Router`.
pub fn router(state: DiscoveryState) -> Router {
    routes(&state).with_state(state)
}
