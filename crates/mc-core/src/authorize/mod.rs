//! The authorization request: raw parameters in, a validated [`AuthorizeRequest`] out.
//!
//! [`checks`] holds one function per rule of the Mobile Connect profile; [`pipeline`] runs
//! them in order. Before the client and its redirect URI are verified, errors are shown on a
//! page; afterwards they are redirected through [`redirect::VerifiedRedirectUri`], the only
//! type that can build a redirect.

pub mod checks;
pub mod pipeline;
pub mod redirect;

use serde::{Deserialize, Serialize};

use crate::acr::AcrValues;
use crate::login_hint::LoginHint;
use crate::pkce::CodeChallenge;
use crate::scope::Scope;
use crate::version::McVersion;
pub use redirect::VerifiedRedirectUri;

/// Who the request is for, as the SP said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HintInput {
    LoginHint(LoginHint),
    /// A `login_hint_token` JWT, verified by the gateway against the trusted discovery keys.
    LoginHintToken(String),
}

/// `prompt` values that change what we do (digest §4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `prompt=none`: no interaction allowed. A Mobile Connect login always needs the phone,
    /// so this ends in `login_required`.
    pub none: bool,
    /// `prompt=no_seam`: skip seamless (header-enrichment) authentication.
    pub no_seam: bool,
    /// `prompt=login`: always re-authenticate (we always do).
    pub login: bool,
}

/// `display` (digest §4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Display {
    #[default]
    Page,
    Popup,
    Touch,
    Wap,
}

/// The transaction text of `mc_authz` shown on the phone (digest §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionText {
    pub client_name: String,
    pub context: Option<String>,
    pub binding_message: Option<String>,
}

/// Options of the profile that an operator configures.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// Upper bound of `context` in UTF-8 bytes.
    pub max_context_bytes: usize,
    /// Upper bound of `binding_message` in UTF-8 bytes.
    pub max_binding_message_bytes: usize,
    /// Whether a request with no login hint may ask the user for the number on a page.
    pub allow_no_hint: bool,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            max_context_bytes: 256,
            max_binding_message_bytes: 128,
            allow_no_hint: true,
        }
    }
}

/// A request that passed every check. Downstream code reads only these typed values.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: VerifiedRedirectUri,
    pub state: String,
    pub nonce: String,
    pub scope: Scope,
    pub version: McVersion,
    pub acr: AcrValues,
    pub hint: Option<HintInput>,
    pub max_age: Option<u64>,
    pub prompt: Prompt,
    pub display: Display,
    pub claims: Option<serde_json::Value>,
    pub text: TransactionText,
    pub correlation_id: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
}
