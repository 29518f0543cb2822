//! `mc-client`: the service provider's side of GSMA Mobile Connect.
//!
//! The GSMA SDKs that service providers used (Java, PHP, .NET, iOS) are unsupported; this
//! crate does their job and fixes their known bugs (digest §12): `ttl` read as an absolute
//! epoch-milliseconds timestamp, `max_age` spelled correctly, one `claims` parameter,
//! `hashed_login_hint` checked for real, and ±60 s of clock skew instead of none.
//!
//! # Design
//!
//! One cheap, cloneable [`MobileConnect`] holds the HTTP client, the clock and the provider
//! metadata cache. From it you get:
//!
//! * a [`discovery::DiscoveryClient`] (digest §2): which operator serves a number, with that
//!   operator's endpoints and your credentials at it; answers are cached until their `ttl`
//!   (clamped to [5 min, 180 days]) and served stale when Discovery is down;
//! * an [`Operator`] (from discovery, or from an issuer URL alone): provider metadata,
//!   version selection (digest §1.2), authorization URLs for `mc_authn`, `mc_authz` and the
//!   identity products with state, nonce and PKCE ([`authorize`]), the token exchange
//!   ([`token`]), id_token validation with every check of digest §6.3 ([`id_token`]),
//!   userinfo/premiuminfo ([`userinfo`]) and the server-initiated flow ([`si`]).
//!
//! Everything the SP must keep between the redirect out and the redirect back is in one
//! serialisable [`authorize::PendingLogin`]; every failure is a variant of [`Error`].
//!
//! # A login
//!
//! ```no_run
//! use mc_client::{ClientCredentials, MobileConnect};
//! use mc_client::authorize::{AuthorizationRequest, LoginHint};
//! use mc_core::msisdn::Msisdn;
//!
//! # async fn run() -> Result<(), mc_client::Error> {
//! let mc = MobileConnect::new(Default::default());
//! let operator = mc
//!     .operator_from_issuer(
//!         "http://127.0.0.1:8080",
//!         ClientCredentials::secret_basic("onlineshopper", "the-secret"),
//!     )
//!     .await?;
//! let msisdn = Msisdn::parse("+447700900301").expect("a test number");
//! let start = operator.authorize(
//!     AuthorizationRequest::authn("http://127.0.0.1:8080/demo-sp/callback")
//!         .login_hint(LoginHint::Msisdn(msisdn)),
//! )?;
//! // Redirect the browser to `start.url`; keep `start.pending` in the session.
//! # let callback_url = String::new();
//! // ...and when the browser comes back to the redirect URI:
//! let login = operator.complete(&start.pending, &callback_url).await?;
//! println!("PCR {} at LoA {:?}", login.id_token.pcr(), login.id_token.acr);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod authorize;
pub mod discovery;
mod error;
pub mod id_token;
pub mod jose;
mod operator;
pub mod redirect;
pub mod si;
pub mod token;
pub mod userinfo;
pub mod version;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use error::{DiscoveryError, Error, IdTokenError, NotificationError};
pub use operator::{ClientCredentials, Endpoints, Operator, ProviderMetadata, TokenAuth};

/// The `SDK-Version` header sent to Discovery (digest §2.2).
pub const SDK_VERSION: &str = concat!("mc-client-rust/", env!("CARGO_PKG_VERSION"));

/// Where "now" comes from, in seconds since the Unix epoch. Tests inject their own.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        }))
    }

    /// A clock read from a function (e.g. a test's adjustable offset).
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(now={})", self.now())
    }
}

/// A secret string whose `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// SDK settings. `Default` is what production wants.
#[derive(Debug, Clone)]
pub struct Options {
    /// The HTTP client. Give your own to set proxies or roots; it must not follow
    /// redirects (Discovery's operator selection is a 302). `None`: a default client.
    pub http: Option<reqwest::Client>,
    /// Per-request timeout of the default client.
    pub timeout: Duration,
    pub clock: Clock,
    /// Allowed clock skew on `exp`, `iat`, `auth_time` (digest §6.3: ±60 s).
    pub clock_skew_secs: i64,
    /// How long provider metadata is reused (the PHP SDK's 900 s).
    pub metadata_ttl_secs: i64,
    /// How long a JWKS is reused before a refetch (900 s).
    pub jwks_ttl_secs: i64,
    /// An unknown `kid` refetches the JWKS, at most this often.
    pub jwks_min_refresh_secs: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            http: None,
            timeout: Duration::from_secs(15),
            clock: Clock::system(),
            clock_skew_secs: 60,
            metadata_ttl_secs: 900,
            jwks_ttl_secs: 900,
            jwks_min_refresh_secs: 10,
        }
    }
}

pub(crate) struct Ctx {
    pub(crate) http: reqwest::Client,
    pub(crate) options: Options,
    /// Provider metadata by URL: (document, fetched at).
    pub(crate) metadata: Mutex<HashMap<String, (ProviderMetadata, i64)>>,
}

impl Ctx {
    pub(crate) fn now(&self) -> i64 {
        self.options.clock.now()
    }
}

/// The SDK's shared context: HTTP client, clock, metadata cache. Clone it freely.
#[derive(Clone)]
pub struct MobileConnect {
    pub(crate) ctx: Arc<Ctx>,
}

impl MobileConnect {
    pub fn new(options: Options) -> MobileConnect {
        let http = options.http.clone().unwrap_or_else(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(options.timeout)
                .user_agent(SDK_VERSION)
                .build()
                // Building a rustls client with no custom roots does not fail in practice;
                // if it ever does, the default client still works (it follows redirects,
                // which only matters for Discovery's 302 and is handled as a 200 then).
                .unwrap_or_default()
        });
        MobileConnect {
            ctx: Arc::new(Ctx {
                http,
                options,
                metadata: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The current time of the SDK's clock.
    pub fn now(&self) -> i64 {
        self.ctx.now()
    }

    /// A Discovery client for the SP's discovery credentials.
    pub fn discovery(&self, config: discovery::DiscoveryConfig) -> discovery::DiscoveryClient {
        discovery::DiscoveryClient::new(self.ctx.clone(), config)
    }
}

impl std::fmt::Debug for MobileConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MobileConnect")
            .field("options", &self.ctx.options)
            .finish_non_exhaustive()
    }
}
