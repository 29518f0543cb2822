//! Typed errors: one enum per stage (discovery, id_token, SI notification) joined in
//! [`Error`]. The id_token variants mirror the GSMA SDKs' `TokenValidationResult`
//! (digest §6.3) so an SP can map them one to one.

use mc_core::acr::Loa;

/// Everything an SDK call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network or TLS failed, or a server did not answer in time.
    #[error("{endpoint}: transport failure: {detail}")]
    Transport {
        endpoint: &'static str,
        detail: String,
    },
    /// A server answered with an OAuth / Mobile Connect error (`error`, and
    /// `error_description` or `description`).
    #[error("{endpoint} refused the request (HTTP {status}): {error}: {description}")]
    Protocol {
        endpoint: &'static str,
        status: u16,
        error: String,
        description: String,
    },
    /// A server answered something that is not what the protocol says.
    #[error("{endpoint}: unexpected answer: {detail}")]
    InvalidResponse {
        endpoint: &'static str,
        detail: String,
    },
    /// The operator's provider metadata is missing, unreadable or inconsistent.
    #[error("provider metadata: {0}")]
    Metadata(String),
    /// The operator does not offer what was asked (no premiuminfo, no SI endpoint, an
    /// unsupported login hint method, …).
    #[error("not supported by this operator: {0}")]
    Unsupported(String),
    /// The request the SP asked the SDK to build is incomplete or contradictory.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No Mobile Connect version fits the scope and the operator's `mc_version` list
    /// (digest §1.2, the SDKs' `InvalidScopeException`).
    #[error("no Mobile Connect version fits scope {scope:?} (operator supports {supported:?})")]
    NoVersion {
        scope: String,
        supported: Vec<String>,
    },
    /// The redirect's `state` is not the one this login sent (digest §4.5: `invalid_state`,
    /// "state values do not match, possible cross-site request forgery").
    #[error("state values do not match, possible cross-site request forgery")]
    StateMismatch,
    /// An echoed `correlation_id` differs from the one sent.
    #[error("correlation_id {received:?} does not echo {sent:?}")]
    CorrelationIdMismatch { sent: String, received: String },
    /// The operator answered the authorization request with an error redirect.
    #[error("authorization failed: {error}: {description}")]
    Authorization { error: String, description: String },
    /// A redirect carried neither `code` nor `error`.
    #[error("the redirect carries no code")]
    MissingCode,
    /// A server-initiated request was denied by the user or the operator.
    #[error("server-initiated request denied: {error}: {description}")]
    Denied { error: String, description: String },
    /// A server-initiated request expired before the user answered.
    #[error("server-initiated request expired")]
    Expired,
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error(transparent)]
    Notification(#[from] NotificationError),
}

/// Discovery failures (digest §2.7).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Discovery could not be reached (or answered 5xx) and nothing was cached for this
    /// subscriber or network.
    #[error("discovery is unavailable and nothing is cached: {0}")]
    Unavailable(String),
    /// Discovery does not know the operator or number (`Not_Found_Entity`, 404).
    #[error("operator not found: {0}")]
    NotFound(String),
    /// The SP's discovery credentials were refused (401 `invalid_client`).
    #[error("discovery refused the SP's credentials: {0}")]
    Unauthorized(String),
    /// Any other documented error (`invalid_request`, …).
    #[error("discovery refused the request (HTTP {status}): {error}: {description}")]
    Rejected {
        status: u16,
        error: String,
        description: String,
    },
    /// The answer is not a discovery response.
    #[error("discovery answered something unreadable: {0}")]
    InvalidResponse(String),
    /// The echoed `correlation_id` differs from the one sent (the Java SDK throws too).
    #[error("discovery echoed correlation_id {received:?} for {sent:?}")]
    CorrelationIdMismatch { sent: String, received: String },
    /// The operator-selection page redirected back with an error (`err_msg`, `error`).
    #[error("operator selection failed: {0}")]
    Selection(String),
}

/// id_token validation failures (digest §6.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// The token response carries no id_token.
    #[error("the token response has no id_token")]
    Missing,
    /// Not a compact JWS with a JSON header and payload.
    #[error("the id_token is not a well-formed JWS: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`, symmetric, or not one of RS256 / PS256 / ES256.
    #[error("id_token algorithm {0:?} is not accepted")]
    UnsupportedAlgorithm(String),
    /// No key of the operator's JWKS matches the header's `kid` (even after a refresh).
    #[error("no signing key matches kid {0:?}")]
    NoMatchingKey(Option<String>),
    /// The key exists but cannot verify this algorithm (wrong `kty`, `alg` or bad numbers).
    #[error("the signing key {0:?} does not fit the token's algorithm")]
    KeyMismatch(Option<String>),
    /// The signature does not verify.
    #[error("the id_token signature is invalid")]
    InvalidSignature,
    /// The JWKS could not be fetched or read.
    #[error("JWKS: {0}")]
    Jwks(String),
    /// `iss` is not the operator's issuer, byte for byte.
    #[error("iss {found:?} is not the issuer {expected:?}")]
    InvalidIssuer { expected: String, found: String },
    /// `aud` does not contain the client_id.
    #[error("aud does not contain the client_id")]
    InvalidAudience,
    /// `azp` is present and is not the client_id.
    #[error("azp is not the client_id")]
    InvalidAuthorizedParty,
    /// `exp` is in the past (beyond the allowed clock skew).
    #[error("the id_token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    /// `iat` lies in the future (beyond the allowed clock skew).
    #[error("the id_token is issued in the future ({iat}, now {now})")]
    IssuedInFuture { iat: i64, now: i64 },
    /// A claim the profile makes mandatory is absent or of the wrong type.
    #[error("claim {0} is missing or malformed")]
    MissingClaim(&'static str),
    /// `nonce` is not the one sent ("possible replay attack").
    #[error("nonce does not match, possible replay attack")]
    InvalidNonce,
    /// The achieved `acr` is below the lowest level the SP accepted.
    #[error("acr {got:?} is below the requested level {required}")]
    AcrTooLow { required: Loa, got: String },
    /// `at_hash` does not match the access token.
    #[error("at_hash does not match the access token")]
    InvalidAtHash,
    /// `hashed_login_hint` is not the hash of the number the SP logged in.
    #[error("hashed_login_hint does not match the subscriber the login was for")]
    InvalidHashedLoginHint,
    /// `auth_time + max_age` is in the past.
    #[error("the authentication is older than max_age")]
    MaxAgePassed,
}

/// Why a server-initiated notification was refused; [`NotificationError::http_status`]
/// is what the SP's endpoint should answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotificationError {
    /// No `Authorization: Bearer` header.
    #[error("the notification carries no bearer token")]
    MissingBearer,
    /// The bearer is not the `client_notification_token` of that request.
    #[error("the notification's bearer token is wrong")]
    WrongBearer,
    /// The body is not a JSON notification with an `auth_req_id`.
    #[error("the notification body is malformed: {0}")]
    Malformed(&'static str),
    /// No pending request has this `auth_req_id`.
    #[error("no pending request {0:?}")]
    UnknownRequest(String),
}

impl NotificationError {
    /// 401 for bearer problems, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            NotificationError::MissingBearer | NotificationError::WrongBearer => 401,
            _ => 400,
        }
    }
}

pub(crate) fn transport(endpoint: &'static str, e: reqwest::Error) -> Error {
    Error::Transport {
        endpoint,
        // Without the URL: it may carry an MSISDN in a query.
        detail: e.without_url().to_string(),
    }
}
