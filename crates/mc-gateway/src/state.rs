//! The one cloneable state every handler receives.

use std::sync::Arc;

use mc_authn::answer::PinPolicy;
use mc_authn::push::PushChannel;
use mc_authn::{AuthnRouter, Hub};
use mc_core::authorize::ProfileOptions;
use mc_core::metadata::{MetadataInput, provider_metadata};
use mc_store::DynStore;

use crate::client_keys::ClientKeys;
use crate::config::GatewayConfig;
use crate::keys::KeyRing;

/// Shared, immutable after start.
pub struct Inner {
    pub store: DynStore,
    pub config: GatewayConfig,
    pub keys: KeyRing,
    /// Clients' public keys (`jwks`, `jwks_uri`), for the JWSs they sign.
    pub client_keys: ClientKeys,
    pub router: AuthnRouter,
    pub hub: Hub,
    pub profile: ProfileOptions,
    pub pin_policy: PinPolicy,
    /// Serialized once: metadata does not change while running (the JWKS does, with the
    /// key lifecycle: `keys.jwks_body()`).
    pub metadata_json: String,
    /// The issuer's path, under which every route is served.
    pub base_path: String,
    /// Per-SP quotas: this process's per-second buckets (`crate::throttle`).
    pub throttle: crate::throttle::Throttle,
    /// Attribute sources for userinfo, premiuminfo, KYC match and ATP.
    pub datagw: mc_datagw::DataGateway,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Wires the gateway from its parts. `config` must have passed `validate()`.
    pub fn new(store: DynStore, config: GatewayConfig, keys: KeyRing) -> Self {
        let hub = Hub::default();
        let pin_policy = PinPolicy {
            max_failures: config.login.pin_max_failures,
        };
        let authenticators = crate::authenticators::build(&crate::authenticators::Parts {
            config: &config.authenticators,
            store: &store,
            hub: &hub,
            pin_policy,
            issuer: &config.issuer,
        });
        let router = AuthnRouter::with_chains(
            authenticators,
            crate::authenticators::chains(&config.authenticators),
        );
        let amr = router.amr_values();
        let ciba_modes: Vec<&str> = if config.backchannel.ciba {
            config
                .backchannel
                .delivery_modes
                .iter()
                .map(String::as_str)
                .collect()
        } else {
            vec![]
        };
        let mut metadata = provider_metadata(&MetadataInput {
            issuer: &config.issuer,
            base_url: config.base_url(),
            amr_values: &amr,
            loa3_available: router.loa3_available(),
            ciba_modes: &ciba_modes,
            si: config.backchannel.si,
        });
        crate::datagw::publish(&mut metadata);
        let profile = ProfileOptions {
            max_context_bytes: config.login.max_context_bytes,
            max_binding_message_bytes: config.login.max_binding_message_bytes,
            allow_no_hint: config.login.allow_no_hint,
        };
        AppState(Arc::new(Inner {
            metadata_json: metadata.to_string(),
            base_path: config.base_path(),
            throttle: crate::throttle::Throttle::default(),
            datagw: crate::datagw::build(
                &config.datagw,
                store.clone(),
                Arc::new(mc_datagw::clock::SystemClock::new()),
            ),
            store,
            config,
            keys,
            client_keys: ClientKeys::new(),
            router,
            hub,
            profile,
            pin_policy,
        }))
    }

    /// The waiting URL of a login (relative to the host).
    pub fn wait_path(&self, session_id: &str) -> String {
        format!("{}/authorize/wait/{session_id}", self.base_path)
    }

    /// The "enter your number" URL of a login (relative to the host).
    pub fn number_path(&self, session_id: &str) -> String {
        format!("{}/authorize/number/{session_id}", self.base_path)
    }

    /// The device-facing API of the app-push authenticator (used by the sandbox's virtual
    /// phones and, later, by the operator app's API).
    pub fn push_channel(&self) -> PushChannel {
        PushChannel::new(self.store.clone(), self.hub.clone(), self.pin_policy)
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// 256 random bits, base64url: codes, tokens, session ids, PCRs.
pub fn random_token() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 32];
    // The system RNG failing is not recoverable; an all-zero token would be worse than a panic,
    // so fall back to aborting the request through an empty token that no lookup matches.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        tracing::error!("system RNG failed");
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Lowercase hex SHA-256: how codes, tokens and client secrets are stored.
pub use mc_core::hash::sha256_hex;
