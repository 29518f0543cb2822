//! "OnlineShopper", the sandbox's demo shop: a service provider built on `mc-client`,
//! served at `/shop` of the sandbox's host.
//!
//! * "Log in with Mobile Connect": Discovery without a hint → the operator-selection page →
//!   back with `mcc_mnc` + `subscriber_id` → Discovery again for that operator's endpoints
//!   and the shop's credentials there → authorization at that operator with
//!   `login_hint=ENCR_MSISDN:…` → the phone approves → code → tokens, id_token validated →
//!   the account found or created by (issuer, PCR).
//! * Two-factor login: username + password, then Mobile Connect with `login_hint=PCR:…`; the
//!   id_token's PCR must be the account's.
//! * A payment: `mc_authz` with `context` and `binding_message` (both shown on the phone),
//!   verified in the id_token's `displayed_data`.
//! * The account page: PCR, `acr`, `amr` of the last login, and the payments.

pub mod accounts;
mod flows;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use mc_client::discovery::{DiscoveryClient, DiscoveryConfig};
use mc_client::{MobileConnect, Options};

use accounts::ShopData;

/// Where the shop lives on the sandbox's host.
pub const PATH: &str = "/shop";

/// The shop's redirect URI (Discovery's `Redirect_URL` and every operator's `redirect_uri`).
pub fn callback_url(origin: &str) -> String {
    format!("{}{PATH}/callback", origin.trim_end_matches('/'))
}

/// What the shop needs to know.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    /// `scheme://host[:port]` the browser uses.
    pub origin: String,
    /// The Discovery API URL.
    pub discovery_url: String,
    /// The shop's discovery credentials.
    pub discovery_client_id: String,
    pub discovery_client_secret: String,
}

impl ShopConfig {
    /// The shop of a seeded sandbox (`None` when Discovery is not part of it).
    pub fn from_info(info: &crate::SandboxInfo, origin: &str) -> Option<ShopConfig> {
        let sp = info
            .service_providers
            .iter()
            .find(|s| s.client_id == crate::seed::DEMO_CLIENT_ID)?;
        Some(ShopConfig {
            origin: origin.to_owned(),
            discovery_url: info.discovery_url.clone()?,
            discovery_client_id: sp.discovery_client_id.clone()?,
            discovery_client_secret: sp.discovery_client_secret.clone()?,
        })
    }
}

pub(crate) struct Inner {
    pub(crate) mc: MobileConnect,
    pub(crate) discovery: DiscoveryClient,
    pub(crate) callback: String,
    pub(crate) data: ShopData,
}

/// The shop. Cheap to clone.
#[derive(Clone)]
pub struct Shop(pub(crate) Arc<Inner>);

impl Shop {
    pub fn new(config: ShopConfig) -> Shop {
        let mc = MobileConnect::new(Options::default());
        let callback = callback_url(&config.origin);
        let discovery = mc.discovery(DiscoveryConfig::new(
            config.discovery_url,
            config.discovery_client_id,
            config.discovery_client_secret,
            callback.clone(),
        ));
        Shop(Arc::new(Inner {
            mc,
            discovery,
            callback,
            data: ShopData::default(),
        }))
    }

    /// The shop's pages.
    pub fn router(&self) -> Router {
        Router::new()
            .route(PATH, get(flows::home))
            .route("/shop/login", get(flows::login))
            .route("/shop/callback", get(flows::callback))
            .route("/shop/password", post(flows::password_login))
            .route("/shop/account", get(flows::account))
            .route("/shop/account/password", post(flows::set_password))
            .route("/shop/pay", post(flows::pay))
            .route("/shop/logout", post(flows::logout))
            .with_state(self.clone())
    }
}
