//! Authenticator chains with fallback: the router's [`Plan`] lists every authenticator
//! that can serve the subscriber at the chosen level, in chain order, and [`run_plan`]
//! walks it.
//!
//! The walk (digest §10.2, the reference design's `NextChainStartDelay`): start the first
//! step; a step that fails to start hands over to the next one at once; a step that
//! started gets [`ChainOptions::next_start_delay`] to be answered before the next one is
//! started *as well* (the earlier channel stays open: whichever the subscriber answers
//! first wins, take-once in the store, and its `amr` is the one reported). When every
//! step has failed to start, the login fails with the last start error.
//!
//! A chain is configured per level of assurance for the operator, and a service provider
//! may narrow it (its own order, a subset of the operator's authenticators); the router
//! logs for every candidate why it was taken or skipped.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mc_core::acr::{AcrValues, Loa};
use mc_core::error::McError;
use mc_store::SubscriberRecord;

use crate::authenticator::{Authenticator, Challenge, Eligibility};
use crate::router::PIN_LOCKED;

/// Chain order per level of assurance, by authenticator name; the operator's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainConfig {
    pub by_loa: BTreeMap<Loa, Vec<String>>,
}

/// How the walk is paced.
#[derive(Debug, Clone, Copy)]
pub struct ChainOptions {
    pub next_start_delay: Duration,
}

/// The authenticators to try, in order, at one level.
#[derive(Clone)]
pub struct Plan {
    pub loa: Loa,
    pub steps: Vec<Arc<dyn Authenticator>>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.steps.iter().map(|a| a.name()).collect();
        f.debug_struct("Plan")
            .field("loa", &self.loa)
            .field("steps", &names)
            .finish()
    }
}

/// Orders `available` by the chain for `loa`: the SP's own order when it gave one (only
/// names the operator also allows), else the operator's, else the registration order.
pub fn ordered<'a>(
    available: &'a [Arc<dyn Authenticator>],
    loa: Loa,
    operator: &ChainConfig,
    sp_override: Option<&ChainConfig>,
) -> Vec<&'a Arc<dyn Authenticator>> {
    let sp_override = sp_override.and_then(|sp| sp.by_loa.get(&loa));
    let operator_chain = operator.by_loa.get(&loa);
    let allowed = |name: &str| operator_chain.is_none_or(|c| c.iter().any(|n| n == name));
    let order: Vec<&str> = match (sp_override, operator_chain) {
        (Some(sp), _) => sp
            .iter()
            .map(String::as_str)
            .filter(|n| allowed(n))
            .collect(),
        (None, Some(op)) => op.iter().map(String::as_str).collect(),
        (None, None) => available.iter().map(|a| a.name()).collect(),
    };
    order
        .iter()
        .filter_map(|name| available.iter().find(|a| a.name() == *name))
        .filter(|a| a.max_loa() >= loa)
        .collect()
}

/// The plan for a subscriber: at the first acceptable level (the `acr_values` order,
/// "3 2" falls back to 2) that has at least one usable authenticator, every usable one in
/// chain order. Each candidate's verdict is logged.
pub fn plan(
    available: &[Arc<dyn Authenticator>],
    subscriber: &SubscriberRecord,
    acr: &AcrValues,
    operator: &ChainConfig,
    sp_override: Option<&ChainConfig>,
) -> Result<Plan, McError> {
    let mut pin_locked = false;
    for loa in acr.acceptable() {
        let mut steps = Vec::new();
        for a in ordered(available, loa, operator, sp_override) {
            match a.eligibility(subscriber, loa) {
                Eligibility::Usable => {
                    tracing::info!(authenticator = a.name(), loa = loa.as_str(), subscriber = %subscriber.id, position = steps.len(), "router: taken");
                    steps.push(a.clone());
                }
                Eligibility::Skip(why) => {
                    pin_locked |= why == PIN_LOCKED;
                    tracing::info!(authenticator = a.name(), loa = loa.as_str(), subscriber = %subscriber.id, reason = why, "router: skipped");
                }
            }
        }
        if !steps.is_empty() {
            return Ok(Plan { loa, steps });
        }
    }
    Err(if pin_locked {
        McError::PinLocked
    } else {
        McError::LoaUnavailable
    })
}

/// Starts steps from `from` until one starts; returns its index, or the last error when
/// none did.
pub async fn start_next(plan: &Plan, from: usize, challenge: &Challenge) -> Result<usize, McError> {
    let mut last = McError::LoaUnavailable;
    for (i, a) in plan.steps.iter().enumerate().skip(from) {
        match a.start(challenge).await {
            Ok(()) => {
                tracing::info!(session = %challenge.session_id, authenticator = a.name(), position = i, "chain: started");
                return Ok(i);
            }
            Err(e) => {
                tracing::warn!(session = %challenge.session_id, authenticator = a.name(), position = i, error = ?e, "chain: start failed; next");
                last = e;
            }
        }
    }
    Err(last)
}

/// Walks the rest of a plan after step `started` began: waits for an answer up to the
/// delay (`answered` resolves true when the session is no longer pending, false when the
/// delay passed without one), then starts the next step, until the plan is exhausted or
/// the session answered. Returns the indexes of the steps started here.
pub async fn continue_plan<W, Fut>(
    plan: &Plan,
    started: usize,
    challenge: &Challenge,
    options: ChainOptions,
    answered: W,
) -> Vec<usize>
where
    W: Fn(Duration) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut begun = Vec::new();
    let mut current = started;
    while current + 1 < plan.steps.len() {
        if answered(options.next_start_delay).await {
            break;
        }
        match start_next(plan, current + 1, challenge).await {
            Ok(i) => {
                begun.push(i);
                current = i;
            }
            // Every later step failed to start: the earlier ones stay open.
            Err(_) => break,
        }
    }
    begun
}

/// Parses a chain config from `{"2": ["app_push", "sms_url"], "3": [...]}`-shaped pairs.
pub fn chain_config<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Vec<String>)>,
) -> Result<ChainConfig, String> {
    let mut by_loa = BTreeMap::new();
    for (loa, names) in pairs {
        let loa = Loa::parse(loa).ok_or_else(|| format!("unknown level of assurance {loa:?}"))?;
        by_loa.insert(loa, names);
    }
    Ok(ChainConfig { by_loa })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use mc_store::SubscriberStatus;

    use super::*;

    struct Fake {
        name: &'static str,
        cap: &'static str,
        max: Loa,
        fails: bool,
        started: Arc<Mutex<Vec<&'static str>>>,
    }

    #[async_trait]
    impl Authenticator for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn amr(&self, _: Loa) -> &'static str {
            self.name
        }
        fn amr_values(&self) -> &'static [&'static str] {
            &[]
        }
        fn max_loa(&self) -> Loa {
            self.max
        }
        fn eligibility(&self, s: &SubscriberRecord, _: Loa) -> Eligibility {
            if s.capabilities.iter().any(|c| c == self.cap) {
                Eligibility::Usable
            } else {
                Eligibility::Skip("no capability")
            }
        }
        async fn start(&self, _: &Challenge) -> Result<(), McError> {
            self.started
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.name);
            if self.fails {
                Err(McError::ServerError)
            } else {
                Ok(())
            }
        }
    }

    struct World {
        log: Arc<Mutex<Vec<&'static str>>>,
        all: Vec<Arc<dyn Authenticator>>,
    }

    fn world(spec: &[(&'static str, Loa, bool)]) -> World {
        let log = Arc::new(Mutex::new(Vec::new()));
        let all = spec
            .iter()
            .map(|(name, max, fails)| {
                Arc::new(Fake {
                    name,
                    cap: name,
                    max: *max,
                    fails: *fails,
                    started: log.clone(),
                }) as Arc<dyn Authenticator>
            })
            .collect();
        World { log, all }
    }

    fn sub(caps: &[&str]) -> SubscriberRecord {
        SubscriberRecord {
            id: "s1".into(),
            msisdn: "447700900301".into(),
            status: SubscriberStatus::Active,
            pin_hash: None,
            pin_failures: 0,
            pin_locked: false,
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            created_at: 0,
        }
    }

    fn challenge() -> Challenge {
        Challenge {
            session_id: "sess".into(),
            subscriber_id: "s1".into(),
            loa: Loa::Two,
            client_name: "Shop".into(),
            context: None,
            binding_message: None,
            expires_at: 0,
        }
    }

    fn names(p: &Plan) -> Vec<&'static str> {
        p.steps.iter().map(|a| a.name()).collect()
    }

    fn two() -> AcrValues {
        AcrValues::parse("2").unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn plan_skips_what_the_subscriber_cannot_use_in_chain_order() {
        let w = world(&[
            ("app_push", Loa::Three, false),
            ("sim_applet", Loa::Three, false),
            ("sms_url", Loa::Two, false),
        ]);
        let op = chain_config([(
            "2",
            vec!["sim_applet".into(), "app_push".into(), "sms_url".into()],
        )])
        .unwrap_or_default();
        let p = plan(&w.all, &sub(&["app_push", "sms_url"]), &two(), &op, None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(names(&p), ["app_push", "sms_url"]);
    }

    #[test]
    fn a_service_provider_may_narrow_but_not_widen_the_operator_chain() {
        let w = world(&[
            ("app_push", Loa::Three, false),
            ("sms_url", Loa::Two, false),
        ]);
        let op = chain_config([("2", vec!["app_push".into()])]).unwrap_or_default();
        let sp = chain_config([("2", vec!["sms_url".to_owned(), "app_push".to_owned()])])
            .unwrap_or_default();
        let p = plan(
            &w.all,
            &sub(&["app_push", "sms_url"]),
            &two(),
            &op,
            Some(&sp),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            names(&p),
            ["app_push"],
            "sms_url is not in the operator's chain"
        );
    }

    #[test]
    fn loa3_plans_leave_out_loa2_only_authenticators() {
        let w = world(&[
            ("sms_url", Loa::Two, false),
            ("app_push", Loa::Three, false),
        ]);
        let three = AcrValues::parse("3").unwrap_or_else(|| unreachable!());
        let p = plan(
            &w.all,
            &sub(&["app_push", "sms_url"]),
            &three,
            &ChainConfig::default(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((names(&p), p.loa), (vec!["app_push"], Loa::Three));
        let none = plan(
            &w.all,
            &sub(&["sms_url"]),
            &three,
            &ChainConfig::default(),
            None,
        );
        assert_eq!(none.err(), Some(McError::LoaUnavailable));
    }

    #[tokio::test]
    async fn a_failed_start_hands_over_at_once() {
        let w = world(&[
            ("sim_applet", Loa::Three, true),
            ("app_push", Loa::Three, false),
        ]);
        let p = plan(
            &w.all,
            &sub(&["sim_applet", "app_push"]),
            &two(),
            &ChainConfig::default(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(start_next(&p, 0, &challenge()).await, Ok(1));
        assert_eq!(
            *w.log.lock().unwrap_or_else(|e| e.into_inner()),
            ["sim_applet", "app_push"]
        );
    }

    #[tokio::test]
    async fn every_start_failing_is_the_last_error() {
        let w = world(&[("a", Loa::Three, true), ("b", Loa::Three, true)]);
        let p = plan(
            &w.all,
            &sub(&["a", "b"]),
            &two(),
            &ChainConfig::default(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            start_next(&p, 0, &challenge()).await,
            Err(McError::ServerError)
        );
    }

    #[tokio::test]
    async fn unanswered_steps_start_the_next_and_an_answer_stops_the_walk() {
        let w = world(&[
            ("a", Loa::Three, false),
            ("b", Loa::Three, true),
            ("c", Loa::Three, false),
            ("d", Loa::Three, false),
        ]);
        let p = plan(
            &w.all,
            &sub(&["a", "b", "c", "d"]),
            &two(),
            &ChainConfig::default(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let opts = ChainOptions {
            next_start_delay: Duration::from_secs(30),
        };
        // The first wait passes unanswered, the second sees the answer.
        let waits = Arc::new(Mutex::new(0));
        let answered = |_d: Duration| {
            let waits = waits.clone();
            async move {
                let mut n = waits.lock().unwrap_or_else(|e| e.into_inner());
                *n += 1;
                *n >= 2
            }
        };
        let begun = continue_plan(&p, 0, &challenge(), opts, answered).await;
        assert_eq!(
            begun,
            [2],
            "b failed to start, c started, then the answer came"
        );
        assert_eq!(*w.log.lock().unwrap_or_else(|e| e.into_inner()), ["b", "c"]);
    }

    #[test]
    fn chain_config_refuses_unknown_levels() {
        assert!(chain_config([("4", vec![])]).is_err());
    }
}
