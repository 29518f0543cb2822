//! Builds the authenticators the configuration turns on, and the operator's chains.
//!
//! Every channel gets what it needs here (the store, the event hub, the PIN policy, its own
//! settings), so the rest of the gateway only sees `dyn Authenticator` and the router.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mc_authn::answer::PinPolicy;
use mc_authn::chain::{ChainConfig, chain_config};
use mc_authn::mssp::{DisplayPolicy, MsspClient, MsspConfig};
use mc_authn::sim_applet::{OutboxOptions, SimApplet};
use mc_authn::{Authenticator, Hub};
use mc_store::DynStore;

use crate::config::{AuthenticatorsConfig, SimAppletConfig};

/// Authenticators this build knows, by configuration name.
pub const KNOWN: &[&str] = &[
    mc_authn::push::CAPABILITY,
    mc_authn::sim_applet::CAPABILITY,
    mc_authn::passkey::CAPABILITY,
    mc_authn::header_enrichment::NAME,
    "sms_otp",
    "sms_url",
    "sms_otp_url",
];

/// What an authenticator is built from.
pub struct Parts<'a> {
    pub config: &'a AuthenticatorsConfig,
    pub store: &'a DynStore,
    pub hub: &'a Hub,
    pub pin_policy: PinPolicy,
    /// The issuer URL: the passkey relying party's id and origin derive from it.
    pub issuer: &'a str,
}

/// One authenticator by name; `None` for a name this build does not know or whose
/// channel could not be set up (logged).
fn build_one(name: &str, p: &Parts<'_>) -> Option<Arc<dyn Authenticator>> {
    match name {
        mc_authn::push::CAPABILITY => Some(mc_authn::push::app_push()),
        // Applied at `/authorize` (crate::enrichment); in the router for its name and `amr`.
        mc_authn::header_enrichment::NAME => {
            Some(Arc::new(mc_authn::header_enrichment::HeaderEnrichment))
        }
        mc_authn::sim_applet::CAPABILITY => {
            let settings = p.config.sim_applet.as_ref()?;
            match MsspClient::new(mssp_config(settings)) {
                Ok(client) => {
                    let applet = SimApplet::with_options(
                        client,
                        p.store.clone(),
                        p.hub.clone(),
                        p.pin_policy,
                        OutboxOptions::with_lease(settings.outbox_lease_secs),
                    );
                    // Takes over the MSSP requests of a node that stopped (a crash).
                    if applet.spawn_worker().is_none() {
                        tracing::warn!(
                            "sim_applet: no runtime; MSSP requests are not taken over after a crash"
                        );
                    }
                    Some(applet)
                }
                Err(e) => {
                    tracing::error!(error = %e, "sim_applet: the MSSP client could not be built; left out");
                    None
                }
            }
        }
        mc_authn::passkey::CAPABILITY => {
            match mc_authn::passkey::Passkeys::new(
                p.issuer,
                p.store.clone(),
                p.hub.clone(),
                p.pin_policy,
            ) {
                Ok(rp) => Some(rp),
                Err(e) => {
                    tracing::error!(error = %e, "passkey: left out");
                    None
                }
            }
        }
        _ => None,
    }
}

/// Every enabled authenticator, in `enabled` order.
pub fn build(p: &Parts<'_>) -> Vec<Arc<dyn Authenticator>> {
    // One SMPP link and outbox worker for every SMS mode that is on.
    let sms = crate::routes::sms::service(p.config, p.store);
    p.config
        .enabled
        .iter()
        .filter_map(|n| {
            sms.as_ref()
                .and_then(|s| s.authenticator(n))
                .or_else(|| build_one(n, p))
        })
        .collect()
}

/// The operator's chains as the router takes them (validated at start).
pub fn chains(config: &AuthenticatorsConfig) -> ChainConfig {
    chain_config(
        config
            .chains
            .iter()
            .map(|(loa, names)| (loa.as_str(), names.clone())),
    )
    .unwrap_or_default()
}

/// Each chain is for a known level ("2" or "3") and names only enabled authenticators,
/// each once.
pub fn validate_chains(
    chains: &BTreeMap<String, Vec<String>>,
    enabled: &[String],
) -> Result<(), String> {
    chain_config(chains.iter().map(|(l, n)| (l.as_str(), n.clone())))?;
    for (loa, names) in chains {
        if names.is_empty() {
            return Err(format!("level {loa}: an empty chain"));
        }
        for (i, n) in names.iter().enumerate() {
            if !enabled.contains(n) {
                return Err(format!(
                    "level {loa}: {n:?} is not one of {}",
                    enabled.join(", ")
                ));
            }
            if names[..i].contains(n) {
                return Err(format!("level {loa}: {n:?} appears twice"));
            }
        }
    }
    Ok(())
}

fn mssp_config(c: &SimAppletConfig) -> MsspConfig {
    let mut m = MsspConfig::new(&c.mssp_url, &c.ap_id, &c.ap_password);
    if let Some(id) = &c.mssp_id {
        m.mssp_id = id.clone();
    }
    if let Some(p) = &c.profile_loa2 {
        m.profile_loa2 = p.clone();
    }
    if let Some(p) = &c.profile_loa3 {
        m.profile_loa3 = p.clone();
    }
    m.transaction_timeout = Duration::from_secs(u64::from(c.transaction_timeout_secs));
    m.poll_interval = Duration::from_millis(u64::from(c.poll_interval_millis));
    m.display_policy = if c.display_text == "reject" {
        DisplayPolicy::Reject
    } else {
        DisplayPolicy::Truncate
    };
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn chains_name_enabled_authenticators_once_at_known_levels() {
        let enabled = names(&["app_push", "sim_applet"]);
        let ok: BTreeMap<_, _> = [("2".to_string(), names(&["sim_applet", "app_push"]))].into();
        assert!(validate_chains(&ok, &enabled).is_ok());
        let unknown_level: BTreeMap<_, _> = [("4".to_string(), names(&["app_push"]))].into();
        assert!(validate_chains(&unknown_level, &enabled).is_err());
        let not_enabled: BTreeMap<_, _> = [("3".to_string(), names(&["passkey"]))].into();
        assert!(
            validate_chains(&not_enabled, &enabled)
                .unwrap_err()
                .contains("passkey")
        );
        let twice: BTreeMap<_, _> = [("2".to_string(), names(&["app_push", "app_push"]))].into();
        assert!(
            validate_chains(&twice, &enabled)
                .unwrap_err()
                .contains("twice")
        );
        let empty: BTreeMap<_, _> = [("2".to_string(), vec![])].into();
        assert!(validate_chains(&empty, &enabled).is_err());
    }
}
