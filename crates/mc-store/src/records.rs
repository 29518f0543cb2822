//! The records the store keeps. Plain data; the rules about them live in `mc-core` and in
//! the store contracts.

pub use mc_core::client::ClientStatus;
use serde::{Deserialize, Serialize};

/// A registered service provider. `secret_hash` is never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub secret_hash: String,
    pub name: String,
    pub short_name: String,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub sector: String,
    pub status: ClientStatus,
    pub created_at: i64,
}

/// Subscriber status (digest: suspended is the stolen-phone case; retired is a number that
/// was recycled to someone else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    Active,
    Suspended,
    Retired,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Active => "active",
            SubscriberStatus::Suspended => "suspended",
            SubscriberStatus::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(SubscriberStatus::Active),
            "suspended" => Some(SubscriberStatus::Suspended),
            "retired" => Some(SubscriberStatus::Retired),
            _ => None,
        }
    }
}

/// A mobile subscriber. `id` is stable for the person; the MSISDN may be recycled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberRecord {
    pub id: String,
    pub msisdn: String,
    pub status: SubscriberStatus,
    pub pin_hash: Option<String>,
    pub pin_failures: u32,
    pub pin_locked: bool,
    /// Authenticator capabilities, e.g. `app_push`, `sim_applet`, `sms`.
    pub capabilities: Vec<String>,
    pub created_at: i64,
}

/// The PIN counter after a wrong attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinState {
    pub failures: u32,
    pub locked: bool,
}

/// Where a front-channel login is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// No login hint: the browser is asked for the number.
    AwaitingNumber,
    /// The phone has been asked.
    Pending,
    Approved,
    Denied,
    CodeIssued,
    Consumed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::AwaitingNumber => "awaiting_number",
            SessionStatus::Pending => "pending",
            SessionStatus::Approved => "approved",
            SessionStatus::Denied => "denied",
            SessionStatus::CodeIssued => "code_issued",
            SessionStatus::Consumed => "consumed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "awaiting_number" => SessionStatus::AwaitingNumber,
            "pending" => SessionStatus::Pending,
            "approved" => SessionStatus::Approved,
            "denied" => SessionStatus::Denied,
            "code_issued" => SessionStatus::CodeIssued,
            "consumed" => SessionStatus::Consumed,
            _ => return None,
        })
    }
}

/// The validated request plus its progress. Written once at creation, then only its
/// status/outcome columns change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSession {
    pub id: String,
    pub client_id: String,
    pub subscriber_id: Option<String>,
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    pub scope: String,
    pub version: String,
    /// The requested `acr_values`, wire form.
    pub acr_values: String,
    pub max_age: Option<i64>,
    pub claims: Option<String>,
    pub client_name: String,
    pub context: Option<String>,
    pub binding_message: Option<String>,
    pub correlation_id: Option<String>,
    pub code_challenge: Option<String>,
    pub status: SessionStatus,
    /// Achieved level and methods, set on approval.
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub auth_time: Option<i64>,
    /// The Mobile Connect error kind, set on denial (see `Resolution::Denied`).
    pub error: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The `error` a backend records on a pending session it found expired (when a new
/// transaction for the same subscriber needs the slot).
pub const STALE_SESSION_ERROR: &str = "authentication_timeout";

/// The phone's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Approved {
        acr: String,
        amr: Vec<String>,
        auth_time: i64,
    },
    /// `error` names an `McError` kind stable across versions (e.g. `user_denied`).
    Denied { error: String },
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// First redemption: the session, now `Consumed`.
    Fresh(Box<AuthSession>),
    /// Already redeemed once: the session whose tokens must be revoked.
    Replayed { session_id: String },
    /// No such code, or it expired.
    Unknown,
}

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    pub token_hash: String,
    pub session_id: Option<String>,
    pub client_id: String,
    pub subscriber_id: Option<String>,
    /// The `sub` (PCR) the token was issued for.
    pub sub: Option<String>,
    pub scope: String,
    pub expires_at: i64,
}

/// A JOSE key; `private_sealed` is the private key encrypted with the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    /// `sig` or `enc`.
    pub key_use: String,
    pub alg: String,
    pub private_sealed: Vec<u8>,
    pub created_at: i64,
}
