//! The gateway's typed configuration. Routes and metadata are derived from it.

use serde::{Deserialize, Serialize};

/// Everything the Identity Gateway needs to know about itself.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The issuer URL, exactly as it appears in `iss` and metadata (digest §6.1: compared
    /// byte for byte by the SDKs).
    pub issuer: String,
    #[serde(default)]
    pub tokens: TokenLifetimes,
    #[serde(default)]
    pub login: LoginConfig,
    #[serde(default)]
    pub authenticators: AuthenticatorsConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub backchannel: BackchannelConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Default per-SP quotas of the Access Gateway; see `crate::throttle`.
    #[serde(default)]
    pub throttle: crate::throttle::ThrottleConfig,
    /// The signing-key lifecycle (rotation, publish-ahead); see `crate::keys`.
    #[serde(default)]
    pub keys: crate::keys::KeysConfig,
    /// How long finished data is kept; see `crate::retention`.
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
    /// The Data Gateway: attribute sources, their precedence, ATP defaults.
    #[serde(default)]
    pub datagw: mc_datagw::DatagwConfig,
}

/// Operating the gateway: what it exposes about itself.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Serve `/metrics` (Prometheus text format). Off: the route is not served and no
    /// metric is recorded by this gateway.
    pub metrics: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { metrics: true }
    }
}

/// Server-initiated login: OpenID CIBA and Mobile Connect SI.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackchannelConfig {
    /// Serve `/bc-authorize` (CIBA).
    pub ciba: bool,
    /// Serve `/si-authorize` (Mobile Connect SI).
    pub si: bool,
    /// CIBA delivery modes offered (`poll`, `ping`, `push`).
    pub delivery_modes: Vec<String>,
    /// Minimum seconds between two polls (`interval`).
    pub poll_interval_secs: u32,
    /// Lifetime of a request when the client asks none (`expires_in`).
    pub default_expiry_secs: u32,
    /// Upper bound of `requested_expiry`.
    pub max_expiry_secs: u32,
    /// First retry of a failed notification after this many seconds; doubles each time.
    pub notify_retry_base_secs: u32,
    /// Give up on a notification after this many seconds.
    pub notify_give_up_secs: u32,
    /// How often the background worker looks for work (expired requests, notifications).
    pub worker_tick_millis: u32,
}

impl Default for BackchannelConfig {
    fn default() -> Self {
        BackchannelConfig {
            ciba: true,
            si: true,
            delivery_modes: vec!["poll".into(), "ping".into(), "push".into()],
            poll_interval_secs: 5,
            default_expiry_secs: 120,
            max_expiry_secs: 300,
            notify_retry_base_secs: 1,
            notify_give_up_secs: 600,
            worker_tick_millis: 250,
        }
    }
}

/// Lifetimes in seconds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenLifetimes {
    /// Authorization codes (RFC 6749 §4.1.2 recommends at most 10 minutes).
    pub code_secs: u32,
    pub access_token_secs: u32,
    pub id_token_secs: u32,
    /// Access tokens of the `client_credentials` grant (ATP back ends).
    pub client_credentials_secs: u32,
    /// Refresh tokens (`offline_access`): each rotation issues a new one with this lifetime.
    pub refresh_token_secs: u32,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        TokenLifetimes {
            code_secs: 60,
            access_token_secs: 3600,
            id_token_secs: 300,
            client_credentials_secs: 3600,
            refresh_token_secs: 30 * 86_400,
        }
    }
}

/// The login transaction.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// How long the phone has to answer.
    pub timeout_secs: u32,
    /// Wrong PINs before LoA3 locks.
    pub pin_max_failures: u32,
    /// Upper bound of `context` in bytes.
    pub max_context_bytes: usize,
    /// Upper bound of `binding_message` in bytes.
    pub max_binding_message_bytes: usize,
    /// Ask for the number on a page when the SP sent no login hint.
    pub allow_no_hint: bool,
    /// How long a headless request (`/authorize` without `Accept: text/html`, or the waiting
    /// URL) is held while the phone has not answered before it is sent to the waiting URL.
    pub headless_hold_secs: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            timeout_secs: 120,
            pin_max_failures: 3,
            max_context_bytes: 256,
            max_binding_message_bytes: 128,
            allow_no_hint: true,
            headless_hold_secs: 5,
        }
    }
}

/// Which authenticators are on, how they are chained per level of assurance, and each
/// channel's settings (`docs/authenticators.md`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthenticatorsConfig {
    /// The authenticators that are on; also the chain order where `chains` says nothing.
    pub enabled: Vec<String>,
    /// The operator's chain per level: `{ "2" = ["sim_applet", "app_push"], "3" = [...] }`.
    /// Only names from `enabled`; a level without an entry uses the `enabled` order.
    pub chains: std::collections::BTreeMap<String, Vec<String>>,
    /// Seconds a started authenticator has to be answered before the next one of the
    /// chain is started as well (one that fails to start hands over at once).
    pub next_start_delay_secs: u32,
    /// The SIM applet channel through the operator's MSSP (required when `sim_applet`
    /// is enabled).
    pub sim_applet: Option<SimAppletConfig>,
    /// The SMS authenticators' SMSC link and rules (required when `sms_otp`, `sms_url` or
    /// `sms_otp_url` is enabled).
    pub sms: Option<crate::routes::sms::SmsConfig>,
    /// Header enrichment (seamless LoA2 at `/authorize`; required when `header_enrichment`
    /// is enabled, which turns it on).
    pub header_enrichment: Option<crate::enrichment::HeaderEnrichmentConfig>,
}

impl Default for AuthenticatorsConfig {
    fn default() -> Self {
        AuthenticatorsConfig {
            enabled: vec!["app_push".into()],
            chains: Default::default(),
            next_start_delay_secs: 20,
            sim_applet: None,
            sms: None,
            header_enrichment: None,
        }
    }
}

/// The MSSP (ETSI TS 102 204) the SIM applet authenticator talks to.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimAppletConfig {
    /// The MSSP's MSS_Signature / MSS_StatusQuery REST URL.
    pub mssp_url: String,
    pub ap_id: String,
    /// The application provider's password at the MSSP (never logged).
    pub ap_password: String,
    /// `MSSP_Info.MSSP_ID.URI`.
    #[serde(default)]
    pub mssp_id: Option<String>,
    /// The MSSP's `SignatureProfile` URIs for LoA2 ("OK") and LoA3 (SIM PIN).
    #[serde(default)]
    pub profile_loa2: Option<String>,
    #[serde(default)]
    pub profile_loa3: Option<String>,
    /// Seconds the SIM has to answer.
    #[serde(default = "default_sim_timeout")]
    pub transaction_timeout_secs: u32,
    /// Milliseconds between status queries.
    #[serde(default = "default_sim_poll")]
    pub poll_interval_millis: u32,
    /// What to do with a text longer than the SIM shows: `truncate` or `reject`.
    #[serde(default = "default_display_policy")]
    pub display_text: String,
    /// The poller's lease on a durable MSSP request: after a crash the request is taken
    /// over (polled, or sent again with the same `AP_TransID`) by a node once it ran out.
    #[serde(default = "default_sim_lease")]
    pub outbox_lease_secs: u32,
}

fn default_sim_timeout() -> u32 {
    80
}
fn default_sim_poll() -> u32 {
    1000
}
fn default_sim_lease() -> u32 {
    30
}
fn default_display_policy() -> String {
    "truncate".into()
}

impl std::fmt::Debug for SimAppletConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimAppletConfig")
            .field("mssp_url", &self.mssp_url)
            .field("ap_id", &self.ap_id)
            .field("ap_password", &"<redacted>")
            .field("transaction_timeout_secs", &self.transaction_timeout_secs)
            .field("poll_interval_millis", &self.poll_interval_millis)
            .field("display_text", &self.display_text)
            .field("outbox_lease_secs", &self.outbox_lease_secs)
            .finish_non_exhaustive()
    }
}

impl AuthenticatorsConfig {
    /// Checks the names, the chains and each enabled channel's settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.enabled.is_empty() {
            return Err("authenticators.enabled: at least one authenticator must be on".into());
        }
        for a in &self.enabled {
            if !crate::authenticators::KNOWN.contains(&a.as_str()) {
                return Err(format!(
                    "authenticators.enabled: unknown authenticator {a:?} (known: {})",
                    crate::authenticators::KNOWN.join(", ")
                ));
            }
        }
        crate::authenticators::validate_chains(&self.chains, &self.enabled)
            .map_err(|e| format!("authenticators.chains: {e}"))?;
        if self.next_start_delay_secs > 600 {
            return Err("authenticators.next_start_delay_secs: must be at most 600".into());
        }
        let on = |name: &str| self.enabled.iter().any(|a| a == name);
        match (&self.sim_applet, on(mc_authn::sim_applet::CAPABILITY)) {
            (None, true) => {
                return Err(
                    "authenticators.sim_applet: required when sim_applet is enabled".into(),
                );
            }
            (Some(c), _) => c.validate()?,
            (None, false) => {}
        }
        let sms_on = self
            .enabled
            .iter()
            .any(|a| crate::routes::sms::NAMES.contains(&a.as_str()));
        match (&self.sms, sms_on) {
            (None, true) => {
                return Err(
                    "authenticators.sms: required when an SMS authenticator is enabled".into(),
                );
            }
            (Some(c), _) => c.validate(&self.enabled)?,
            (None, false) => {}
        }
        let seamless = on(mc_authn::header_enrichment::NAME);
        match (&self.header_enrichment, seamless) {
            (None, true) => {
                return Err("authenticators.header_enrichment: required when \
                     header_enrichment is enabled"
                    .into());
            }
            (Some(he), _) => he
                .validate()
                .map_err(|e| format!("authenticators.header_enrichment.{e}"))?,
            (None, false) => {}
        }
        Ok(())
    }
}

impl SimAppletConfig {
    fn validate(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.mssp_url)
            .map_err(|e| format!("authenticators.sim_applet.mssp_url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("authenticators.sim_applet.mssp_url: must be http(s)".into());
        }
        if self.ap_id.is_empty() {
            return Err("authenticators.sim_applet.ap_id: must not be empty".into());
        }
        if !(10..=600).contains(&self.transaction_timeout_secs) {
            return Err(
                "authenticators.sim_applet.transaction_timeout_secs: must be 10..=600".into(),
            );
        }
        if !(100..=30_000).contains(&self.poll_interval_millis) {
            return Err(
                "authenticators.sim_applet.poll_interval_millis: must be 100..=30000".into(),
            );
        }
        if !matches!(self.display_text.as_str(), "truncate" | "reject") {
            return Err("authenticators.sim_applet.display_text: truncate or reject".into());
        }
        if !(2..=600).contains(&self.outbox_lease_secs) {
            return Err("authenticators.sim_applet.outbox_lease_secs: must be 2..=600".into());
        }
        Ok(())
    }
}

/// The Registry/Provisioning REST API. Off unless a token hash is configured.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Lowercase hex SHA-256 of the bearer token that may call `/admin/v1/…`.
    pub token_sha256: Option<String>,
}

impl GatewayConfig {
    /// Checks that serde cannot express; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.issuer).map_err(|e| format!("issuer: not a URL ({e})"))?;
        if !matches!(url.scheme(), "https" | "http")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err("issuer: must be an http(s) URL without query or fragment".into());
        }
        if self.tokens.code_secs == 0 || self.tokens.code_secs > 600 {
            return Err("tokens.code_secs: must be 1..=600".into());
        }
        if self.tokens.access_token_secs == 0
            || self.tokens.id_token_secs == 0
            || self.tokens.client_credentials_secs == 0
            || self.tokens.refresh_token_secs == 0
        {
            return Err("tokens: lifetimes must be positive".into());
        }
        if self.tokens.refresh_token_secs < self.tokens.access_token_secs {
            return Err("tokens.refresh_token_secs: must be at least access_token_secs".into());
        }
        if !(10..=600).contains(&self.login.timeout_secs) {
            return Err("login.timeout_secs: must be 10..=600".into());
        }
        if self.login.pin_max_failures == 0 {
            return Err("login.pin_max_failures: must be at least 1".into());
        }
        if self.login.headless_hold_secs > 30 {
            return Err("login.headless_hold_secs: must be at most 30".into());
        }
        self.authenticators.validate()?;
        let b = &self.backchannel;
        if let Some(bad) = b
            .delivery_modes
            .iter()
            .find(|m| !matches!(m.as_str(), "poll" | "ping" | "push"))
        {
            return Err(format!(
                "backchannel.delivery_modes: unknown mode {bad:?} (poll, ping, push)"
            ));
        }
        if b.poll_interval_secs == 0 || b.poll_interval_secs > 60 {
            return Err("backchannel.poll_interval_secs: must be 1..=60".into());
        }
        if b.default_expiry_secs < 10 || b.default_expiry_secs > b.max_expiry_secs {
            return Err(
                "backchannel.default_expiry_secs: must be at least 10 and at most max_expiry_secs"
                    .into(),
            );
        }
        if b.max_expiry_secs > 3600 {
            return Err("backchannel.max_expiry_secs: must be at most 3600".into());
        }
        if b.notify_retry_base_secs == 0
            || b.worker_tick_millis < 10
            || b.worker_tick_millis > 10_000
        {
            return Err("backchannel: notify_retry_base_secs must be positive and worker_tick_millis 10..=10000".into());
        }
        self.datagw.validate()?;
        self.keys.validate()?;
        self.retention.validate()?;
        if self
            .admin
            .token_sha256
            .as_deref()
            .is_some_and(|h| !mc_core::hash::is_sha256_hex(h))
        {
            return Err("admin.token_sha256: must be 64 lowercase hex digits".into());
        }
        Ok(())
    }

    /// The path of the issuer URL without a trailing slash (`""` at the root): every route is
    /// served under it, so metadata, pages and redirects agree behind a path-prefixed proxy.
    pub fn base_path(&self) -> String {
        url::Url::parse(&self.issuer)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    /// The issuer without a trailing slash, the base of every endpoint URL.
    pub fn base_url(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }
}
