//! The Authenticator Router: per-level chains, first eligible authenticator wins, every
//! decision logged with its reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_core::acr::{AcrValues, Loa};
use mc_core::error::McError;
use mc_store::{SubscriberRecord, SubscriberStatus};

use crate::authenticator::{Authenticator, Eligibility};
use crate::chain::{ChainConfig, Plan};

/// The router's pick: the level, the first authenticator and the whole plan (the first
/// and its fallbacks, [`crate::chain`]).
#[derive(Clone)]
pub struct Choice {
    pub plan: Plan,
    pub authenticator: Arc<dyn Authenticator>,
    pub loa: Loa,
}

/// Ordered authenticator chains per level of assurance.
pub struct AuthnRouter {
    chains: BTreeMap<Loa, Vec<Arc<dyn Authenticator>>>,
    /// Every configured authenticator, in configuration order.
    all: Vec<Arc<dyn Authenticator>>,
    /// The operator's chain order per level ([`crate::chain`]).
    chain: ChainConfig,
}

/// Only an active subscriber can be asked. Unknown, suspended (stolen phone) and retired
/// (recycled number) subscribers get the same answer, so the error does not reveal which
/// (docs/decisions.md, "enumeration").
pub fn require_active_subscriber(s: Option<SubscriberRecord>) -> Result<SubscriberRecord, McError> {
    match s {
        Some(s) if s.status == SubscriberStatus::Active => Ok(s),
        _ => Err(McError::UnknownUser),
    }
}

impl AuthnRouter {
    /// Builds the chains: for each level, the authenticators in the given order that can
    /// reach it.
    pub fn new(authenticators: Vec<Arc<dyn Authenticator>>) -> Self {
        Self::with_chains(authenticators, ChainConfig::default())
    }

    /// As [`AuthnRouter::new`], with the operator's chain order per level.
    pub fn with_chains(authenticators: Vec<Arc<dyn Authenticator>>, chain: ChainConfig) -> Self {
        let mut chains: BTreeMap<Loa, Vec<Arc<dyn Authenticator>>> = BTreeMap::new();
        for loa in [Loa::Two, Loa::Three] {
            chains.insert(
                loa,
                authenticators
                    .iter()
                    .filter(|a| a.max_loa() >= loa)
                    .cloned()
                    .collect(),
            );
        }
        AuthnRouter {
            chains,
            all: authenticators,
            chain,
        }
    }

    /// Every authenticator usable for this subscriber at `loa`, in chain order (the first
    /// is the one [`AuthnRouter::choose`] picks; the rest are the fallbacks).
    pub fn plan_at(&self, subscriber: &SubscriberRecord, loa: Loa) -> Option<Plan> {
        let steps: Vec<_> = crate::chain::ordered(&self.all, loa, &self.chain, None)
            .into_iter()
            .filter(|a| a.eligibility(subscriber, loa) == Eligibility::Usable)
            .cloned()
            .collect();
        (!steps.is_empty()).then_some(Plan { loa, steps })
    }

    /// Picks the authenticator for a subscriber: the first eligible one in the target level's
    /// chain, else in the fallback level's chain (acr policy in docs/decisions.md).
    pub fn choose(
        &self,
        subscriber: &SubscriberRecord,
        acr: &AcrValues,
    ) -> Result<Choice, McError> {
        self.choose_for(subscriber, acr, None)
    }

    /// As [`AuthnRouter::choose`], with the service provider's own chains (a subset of the
    /// operator's, in its own order).
    pub fn choose_for(
        &self,
        subscriber: &SubscriberRecord,
        acr: &AcrValues,
        sp_chains: Option<&ChainConfig>,
    ) -> Result<Choice, McError> {
        let plan = crate::chain::plan(&self.all, subscriber, acr, &self.chain, sp_chains)?;
        let first = plan.steps.first().cloned().ok_or(McError::LoaUnavailable)?;
        Ok(Choice {
            authenticator: first,
            loa: plan.loa,
            plan,
        })
    }

    /// Every `amr` any configured authenticator can produce.
    pub fn amr_values(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self
            .chains
            .values()
            .flatten()
            .flat_map(|a| a.amr_values().iter().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether any authenticator reaches LoA3.
    pub fn loa3_available(&self) -> bool {
        self.chains.get(&Loa::Three).is_some_and(|c| !c.is_empty())
    }

    /// The authenticator with this configuration name.
    pub fn by_name(&self, name: &str) -> Option<Arc<dyn Authenticator>> {
        self.chains
            .values()
            .flatten()
            .find(|a| a.name() == name)
            .cloned()
    }
}

/// The skip reason for a locked PIN, which turns "no authenticator" into `PinLocked`.
pub const PIN_LOCKED: &str = "PIN locked after too many wrong attempts";

/// The common LoA3 rule for PIN-based authenticators.
pub fn pin_eligibility(s: &SubscriberRecord, loa: Loa) -> Eligibility {
    match loa {
        Loa::Two => Eligibility::Usable,
        Loa::Three if s.pin_hash.is_none() => Eligibility::Skip("no PIN enrolled"),
        Loa::Three if s.pin_locked => Eligibility::Skip(PIN_LOCKED),
        Loa::Three => Eligibility::Usable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::AppPush;

    fn sub(pin: bool, locked: bool, caps: &[&str]) -> SubscriberRecord {
        SubscriberRecord {
            id: "s1".into(),
            msisdn: "447700900301".into(),
            status: SubscriberStatus::Active,
            pin_hash: pin.then(|| "$argon2id$x".into()),
            pin_failures: 0,
            pin_locked: locked,
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            created_at: 0,
        }
    }

    fn router() -> AuthnRouter {
        AuthnRouter::new(vec![Arc::new(AppPush)])
    }

    #[test]
    fn loa2_with_app() {
        let c = router()
            .choose(
                &sub(false, false, &["app_push"]),
                &AcrValues::parse("2").unwrap(),
            )
            .ok()
            .unwrap();
        assert_eq!((c.authenticator.name(), c.loa), ("app_push", Loa::Two));
    }

    #[test]
    fn three_two_without_pin_falls_back_to_two() {
        let c = router()
            .choose(
                &sub(false, false, &["app_push"]),
                &AcrValues::parse("3 2").unwrap(),
            )
            .ok()
            .unwrap();
        assert_eq!(c.loa, Loa::Two);
    }

    #[test]
    fn three_without_pin_is_unavailable_and_locked_pin_is_pin_locked() {
        let r = router();
        assert_eq!(
            r.choose(
                &sub(false, false, &["app_push"]),
                &AcrValues::parse("3").unwrap()
            )
            .err(),
            Some(McError::LoaUnavailable)
        );
        assert_eq!(
            r.choose(
                &sub(true, true, &["app_push"]),
                &AcrValues::parse("3").unwrap()
            )
            .err(),
            Some(McError::PinLocked)
        );
        assert_eq!(
            r.choose(
                &sub(true, false, &["app_push"]),
                &AcrValues::parse("3").unwrap()
            )
            .ok()
            .map(|c| c.loa),
            Some(Loa::Three)
        );
    }

    #[test]
    fn subscriber_without_capability_is_unreachable() {
        assert_eq!(
            router()
                .choose(&sub(false, false, &[]), &AcrValues::parse("2").unwrap())
                .err(),
            Some(McError::LoaUnavailable)
        );
    }

    #[test]
    fn inactive_subscribers_look_unknown() {
        let mut s = sub(false, false, &[]);
        assert!(require_active_subscriber(Some(s.clone())).is_ok());
        s.status = SubscriberStatus::Suspended;
        assert_eq!(
            require_active_subscriber(Some(s)).err(),
            Some(McError::UnknownUser)
        );
        assert_eq!(
            require_active_subscriber(None).err(),
            Some(McError::UnknownUser)
        );
    }
}
