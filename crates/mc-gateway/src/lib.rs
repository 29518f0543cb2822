//! The Identity Gateway's HTTP surface: the OIDC AuthServer (`/authorize`, `/token`,
//! metadata, JWKS), the Access Gateway's `/userinfo`, and the Registry/Provisioning API.
//!
//! Handlers are thin: they extract, call `mc_core` for the protocol rules and the modules
//! here for the login and token steps, and map the result. All state lives in the store
//! (`mc_store::Store`), so any number of gateway processes can serve the same logins.
//!
//! ```no_run
//! # async fn run(store: mc_store::DynStore, config: mc_gateway::config::GatewayConfig, kek: mc_gateway::keys::Kek) {
//! let keys = mc_gateway::keys::KeyRing::load_or_create(&*store, &kek, 0).await.unwrap();
//! let state = mc_gateway::state::AppState::new(store, config, keys);
//! let app = mc_gateway::app(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod authenticators;
pub mod backchannel;
pub mod client_auth;
pub mod client_keys;
pub mod config;
pub mod consent;
pub mod datagw;
pub mod enrichment;
pub mod error;
pub mod keys;
pub mod login;
pub mod notify;
pub mod pages;
pub mod registry;
pub mod retention;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use mc_core::client::ClientPolicy;
use mc_core::scope::Scope;
use mc_store::ClientRecord;

use state::AppState;

/// The profile's view of a client record.
pub fn policy_of(c: &ClientRecord) -> ClientPolicy {
    ClientPolicy {
        client_id: c.client_id.clone(),
        redirect_uris: c.redirect_uris.clone(),
        allowed_scopes: Scope::from_values(c.allowed_scopes.iter().map(String::as_str)),
        short_name: c.short_name.clone(),
        sector: c.sector.clone(),
        status: c.status,
        grant_types: c.grant_types.clone(),
        authenticator_chains: c.metadata.authenticator_chains.clone(),
    }
}

/// The gateway's routes (without state), for embedding next to other routers (the sandbox
/// adds its virtual phones).
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut r = Router::new()
        .merge(routes::metadata::router())
        .merge(routes::authorize::router())
        .merge(consent::router())
        .merge(routes::account::router())
        .merge(routes::passkey::router())
        .merge(routes::token::router())
        .merge(routes::introspect::router())
        .merge(routes::revoke::router())
        .merge(routes::userinfo::router())
        .merge(routes::premiuminfo::router())
        .merge(routes::atp::router())
        .merge(routes::sms::router())
        .merge(routes::device::router())
        .merge(routes::backchannel::router(state))
        .merge(routes::ops::router(state));
    // Per-SP quotas on the SP-facing endpoints (the layer picks them by path).
    r = r.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        throttle::layer,
    ));
    if state.config.admin.token_sha256.is_some() {
        r = r.merge(routes::admin::router(state));
        r = r.merge(routes::device::admin_router().route_layer(
            axum::middleware::from_fn_with_state(state.clone(), routes::admin::require_admin),
        ));
        r = r.merge(routes::openapi::router());
    }
    // An issuer with a path (`https://host/mc`) serves everything under that path.
    if state.base_path.is_empty() {
        r
    } else {
        Router::new().nest(&state.base_path, r)
    }
}

/// Cross-cutting layers: the body limit, and outermost the [envelope](telemetry::envelope):
/// the request id, a request span that names the route template only (query strings may
/// carry MSISDNs, so they are not logged) and the request id, metrics, the panic net, the
/// timeout, the security headers. See [`telemetry`].
pub fn with_layers(r: Router) -> Router {
    r.layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(telemetry::envelope))
}

/// The complete gateway application.
pub fn app(state: AppState) -> Router {
    with_layers(routes(&state).with_state(state))
}
