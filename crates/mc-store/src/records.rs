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
    /// Registration metadata beyond the basics (back-channel, keys); one JSON document.
    pub metadata: ClientMetadata,
}

/// Optional client registration metadata (OIDC Dynamic Registration / CIBA Core §4 /
/// Mobile Connect SI names). Stored as one JSON document, so adding a field needs no
/// migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientMetadata {
    /// `client_secret_basic` (default, also accepts `client_secret_post`) or `private_key_jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Where the client's public keys are published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The client's public keys inline (a JWKS JSON document), instead of `jwks_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// CIBA: `poll`, `ping` or `push`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_token_delivery_mode: Option<String>,
    /// CIBA: where ping and push notifications go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_client_notification_endpoint: Option<String>,
    /// CIBA: when set, authentication requests must be signed with this algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_authentication_request_signing_alg: Option<String>,
    /// CIBA: whether the client sends a `user_code`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub backchannel_user_code_parameter: bool,
    /// Mobile Connect SI: the registered `notification_uri` values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notification_uris: Vec<String>,
    /// Mobile Connect SI: the request-object signing algorithm (`RS256` recommended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<String>,
    /// OIDC Dynamic Registration: when set (`RS256`), `/userinfo` and `/premiuminfo`
    /// answer with a signed JWT instead of JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<String>,
    /// Grants the client asks for beyond the derived ones (`client_credentials`;
    /// `refresh_token` comes with the `offline_access` scope).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<String>,
    /// Access Gateway quota: calls per second to the SP-facing endpoints (per gateway
    /// node). `None`: the configured default; `0`: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_per_second: Option<u32>,
    /// Access Gateway quota: calls per UTC day to the SP-facing endpoints (across nodes).
    /// `None`: the configured default; `0`: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_per_day: Option<u64>,
    /// The SP's own authenticator chains per level (`{"2": ["sim_applet", "app_push"]}`):
    /// a subset of the operator's, in the SP's order. Empty: the operator's chains.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub authenticator_chains: std::collections::BTreeMap<String, Vec<String>>,
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

impl Resolution {
    /// A pending session as recording this answer leaves it
    /// ([`crate::SessionStore::answer_session`]; the conformance suite holds every backend
    /// to it): what a waiter handed the answer needs instead of reading the session back.
    pub fn applied_to(self, mut session: AuthSession) -> AuthSession {
        match self {
            Resolution::Approved {
                acr,
                amr,
                auth_time,
            } => {
                session.status = SessionStatus::Approved;
                session.acr = Some(acr);
                session.amr = amr;
                session.auth_time = Some(auth_time);
            }
            Resolution::Denied { error } => {
                session.status = SessionStatus::Denied;
                session.error = Some(error);
            }
        }
        session
    }
}

/// What recording the phone's answer did ([`crate::SessionStore::answer_session`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// The session was not pending any more (answered, expired): nothing changed.
    NotPending,
    /// A front-channel login: nothing was queued.
    FrontChannel,
    /// A back-channel request: its notification, when its mode has one, is in the outbox.
    BackChannel,
}

impl Answered {
    /// A pending session was answered; `backchannel`: it is a back-channel request.
    pub fn resolved(backchannel: bool) -> Answered {
        if backchannel {
            Answered::BackChannel
        } else {
            Answered::FrontChannel
        }
    }
}

/// A code made together with its session ([`crate::SessionStore::create_session_reserving`])
/// by the request that will hand it out: a headless client's held `/authorize`, which then
/// delivers the code with no write of its own. Redeemable once the session is approved, for
/// `lifetime_secs` from the approval; [`crate::SessionStore::issue_code`] replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedCode {
    /// SHA-256 of the code, lowercase hex (as [`crate::SessionStore::issue_code`] takes it).
    pub hash: String,
    pub lifetime_secs: i64,
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

/// How a back-channel client learns the result (CIBA Core §5; a Mobile Connect SI
/// notification is `Push`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    Poll,
    Ping,
    Push,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Poll => "poll",
            DeliveryMode::Ping => "ping",
            DeliveryMode::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "poll" => Some(DeliveryMode::Poll),
            "ping" => Some(DeliveryMode::Ping),
            "push" => Some(DeliveryMode::Push),
            _ => None,
        }
    }

    /// Whether the client is called back (and an outbox item is due when the phone answers).
    pub fn notifies(self) -> bool {
        !matches!(self, DeliveryMode::Poll)
    }
}

/// Which protocol started a back-channel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackchannelKind {
    /// OpenID CIBA Core 1.0.
    Ciba,
    /// Mobile Connect Server-Initiated.
    Si,
}

impl BackchannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackchannelKind::Ciba => "ciba",
            BackchannelKind::Si => "si",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ciba" => Some(BackchannelKind::Ciba),
            "si" => Some(BackchannelKind::Si),
            _ => None,
        }
    }
}

/// The back-channel side of a session whose id is the `auth_req_id`. The session itself
/// (an `AuthSession` with empty `redirect_uri` and `state`) carries the request and its
/// state machine: `Pending → Approved | Denied` (expired = pending past `expires_at`, or
/// denied with [`STALE_SESSION_ERROR`]) `→ Consumed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelRecord {
    pub auth_req_id: String,
    pub kind: BackchannelKind,
    pub mode: DeliveryMode,
    /// Where notifications go (ping/push: the registered endpoint; SI: `notification_uri`).
    pub notification_endpoint: Option<String>,
    /// The bearer token we present to the client (`client_notification_token`).
    pub notification_token: Option<String>,
    /// Minimum seconds between two polls; grows by 5 on every `slow_down` (CIBA §7.3).
    pub interval: i64,
    pub last_poll_at: Option<i64>,
}

/// What a poll at the token endpoint found (CIBA Core §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// No such request for this client.
    Unknown,
    /// Polled sooner than the interval allows; the interval has grown by 5 s.
    SlowDown,
    Pending,
    Expired,
    Denied {
        error: String,
    },
    /// The phone approved; the request is now consumed (take-once).
    Approved(Box<AuthSession>),
    /// Its tokens were already handed out.
    Consumed,
    /// A push-mode request: its tokens are delivered by notification only (CIBA Core
    /// §10.3), so a poll takes nothing and records nothing.
    PushMode,
}

/// A notification to deliver (at least once, until it succeeds or the work gives up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    /// The session (back-channel request) the notification is about.
    pub session_id: String,
    /// Delivery attempts before this one.
    pub attempts: u32,
    /// The body built on the first attempt (sealed by the caller), so every retry sends
    /// exactly the same thing.
    pub payload: Option<Vec<u8>>,
    pub created_at: i64,
}

/// How much notification work is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxDepth {
    pub items: u64,
    /// `created_at` of the oldest waiting item.
    pub oldest: Option<i64>,
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
    /// When it was issued (introspection's `iat`; 0 for tokens stored before 0003).
    pub issued_at: i64,
    /// The refresh-token family it was issued in, if any: revoked with the family.
    pub family_id: Option<String>,
    /// The login's `claims` request parameter (OIDC Core §5.5, JSON), kept with the token
    /// so the userinfo endpoints need no session read.
    pub claims: Option<String>,
}
