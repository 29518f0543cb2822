//! What the profile needs to know about a registered service provider.

use crate::scope::Scope;

/// Registration status of a service provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStatus {
    Active,
    Disabled,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "active",
            ClientStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(ClientStatus::Active),
            "disabled" => Some(ClientStatus::Disabled),
            _ => None,
        }
    }
}

/// The registration data the authorization checks read (the store's client record minus
/// its secret).
#[derive(Debug, Clone)]
pub struct ClientPolicy {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Scope,
    /// The "Application Short Name" that `client_name` must equal for `mc_authz`.
    pub short_name: String,
    /// The pairwise sector the PCR is computed in.
    pub sector: String,
    pub status: ClientStatus,
    pub grant_types: Vec<String>,
    /// The SP's own authenticator chains per level; empty: the operator's.
    pub authenticator_chains: std::collections::BTreeMap<String, Vec<String>>,
}

impl ClientPolicy {
    pub fn may_use_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}
