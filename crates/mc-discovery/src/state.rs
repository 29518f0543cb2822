//! The service's state: configuration, keys, the store, and the in-memory snapshot that
//! answers lookups.
//!
//! The snapshot (operators, their parsed keys, the number index, the IP index) is
//! immutable and shared behind an `Arc`; a reload builds a new one off to the side and
//! swaps it in, so lookups never wait for a reload. [`DiscoveryState::spawn_refresher`]
//! polls the store's generation counters (writes from another process or node) and
//! reloads what changed; the admin API reloads right after its own writes. The number
//! index (the big part) is rebuilt only when the numbers generation moved.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mc_core::msisdn::Msisdn;
use mc_store::{DiscoveryGeneration, DiscoveryStore, NumberKind, OperatorRecord, StoreError};
use serde::{Deserialize, Serialize};

use crate::crypto::{OperatorKey, Secrets};
use crate::ip::{Cidr, IpIndex};
use crate::numbers::{NumberIndex, NumberIndexBuilder};

/// Entries per page when loading the number tables.
const LOAD_PAGE: u32 = 50_000;

/// Configuration of the Discovery service.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// The public URL of the service root, e.g. `https://discovery.example` or
    /// `http://127.0.0.1:8080/discovery`; its path prefixes every route, and the
    /// operator-selection links are built from it.
    pub base_url: String,
    /// How long an SP may cache an answer: `ttl` = now + this (digest §2.8; SDKs clamp to
    /// [5 min, 180 days]).
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// How long an operator-selection link stays valid.
    #[serde(default = "default_selection_ttl")]
    pub selection_ttl_secs: i64,
    /// SHA-256 (hex) of the bearer token of `/admin/v1`; no admin API without it.
    #[serde(default)]
    pub admin_token_sha256: Option<String>,
    /// How often the store's generation is checked for changes made elsewhere.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
}

fn default_ttl() -> u64 {
    24 * 3600
}
fn default_selection_ttl() -> i64 {
    600
}
fn default_refresh() -> u64 {
    5
}

impl DiscoveryConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        DiscoveryConfig {
            base_url: base_url.into(),
            ttl_secs: default_ttl(),
            selection_ttl_secs: default_selection_ttl(),
            admin_token_sha256: None,
            refresh_secs: default_refresh(),
        }
    }

    /// Checks the URL and the numbers.
    pub fn validate(&self) -> Result<(), String> {
        let u = url::Url::parse(&self.base_url)
            .map_err(|e| format!("discovery base_url {:?}: {e}", self.base_url))?;
        if !matches!(u.scheme(), "http" | "https") || u.query().is_some() {
            return Err(format!(
                "discovery base_url {:?}: an http(s) URL without a query",
                self.base_url
            ));
        }
        if !(300..=180 * 24 * 3600).contains(&self.ttl_secs) {
            return Err("discovery ttl_secs: between 300 and 15552000 (180 days)".into());
        }
        if !(60..=3600).contains(&self.selection_ttl_secs) {
            return Err("discovery selection_ttl_secs: between 60 and 3600".into());
        }
        if self
            .admin_token_sha256
            .as_deref()
            .is_some_and(|h| !mc_core::hash::is_sha256_hex(h))
        {
            return Err(
                "discovery.admin_token_sha256: 64 lowercase hex digits (the SHA-256 of the token)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The path part of the base URL (`""` or `/discovery`).
    pub fn base_path(&self) -> String {
        url::Url::parse(&self.base_url)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }
}

/// An operator as lookups see it.
#[derive(Debug)]
pub struct Operator {
    pub record: OperatorRecord,
    /// `None` when the operator has no (usable) encryption key: answers then carry no
    /// `subscriber_id`.
    pub key: Option<OperatorKey>,
}

impl Operator {
    /// `MCC_MNC` as in the selection redirect (digest §2.6).
    pub fn mcc_mnc(&self) -> String {
        format!("{}_{}", self.record.mcc, self.record.mnc)
    }
}

/// The immutable lookup state.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub generation: DiscoveryGeneration,
    operators: Vec<Arc<Operator>>,
    by_id: HashMap<String, usize>,
    by_code: HashMap<(String, String), usize>,
    numbers: Arc<NumberIndex>,
    /// Number-index operator → `operators` index (`None`: deleted since the index was built).
    number_ops: Vec<Option<usize>>,
    ip: IpIndex,
}

impl Snapshot {
    fn enabled(&self, i: usize) -> Option<&Arc<Operator>> {
        self.operators.get(i).filter(|o| o.record.enabled)
    }

    pub fn operators(&self) -> &[Arc<Operator>] {
        &self.operators
    }

    pub fn operator(&self, id: &str) -> Option<&Arc<Operator>> {
        self.by_id.get(id).and_then(|&i| self.enabled(i))
    }

    /// An enabled operator by MCC and MNC.
    pub fn by_mcc_mnc(&self, mcc: &str, mnc: &str) -> Option<&Arc<Operator>> {
        self.by_code
            .get(&(mcc.to_owned(), mnc.to_owned()))
            .and_then(|&i| self.enabled(i))
    }

    /// The enabled operator serving `msisdn`: its ported entry, else its longest range.
    pub fn by_msisdn(&self, msisdn: &Msisdn) -> Option<(&Arc<Operator>, NumberKind)> {
        let n: u64 = msisdn.as_str().parse().ok()?;
        self.by_number(n)
    }

    /// [`Snapshot::by_msisdn`] on the digits as an integer.
    pub fn by_number(&self, n: u64) -> Option<(&Arc<Operator>, NumberKind)> {
        let m = self.numbers.lookup(n)?;
        let i = (*self.number_ops.get(usize::from(m.operator))?)?;
        Some((self.enabled(i)?, m.kind))
    }

    /// The enabled operator whose mobile-data range holds `ip`.
    pub fn by_ip(&self, ip: std::net::IpAddr) -> Option<&Arc<Operator>> {
        self.ip.lookup(ip).and_then(|i| self.enabled(i))
    }

    pub fn numbers(&self) -> &NumberIndex {
        &self.numbers
    }

    pub fn ip_ranges(&self) -> usize {
        self.ip.len()
    }
}

struct Inner {
    store: Arc<dyn DiscoveryStore>,
    config: DiscoveryConfig,
    secrets: Secrets,
    snapshot: RwLock<Arc<Snapshot>>,
    reloading: tokio::sync::Mutex<()>,
}

/// Cheap to clone; the axum state of [`crate::router`].
#[derive(Clone)]
pub struct DiscoveryState(Arc<Inner>);

impl DiscoveryState {
    /// A state with an empty snapshot: call [`DiscoveryState::reload`] before serving.
    /// `master` is the deployment's 32-byte key-encryption key.
    pub fn new(
        store: Arc<dyn DiscoveryStore>,
        config: DiscoveryConfig,
        master: &[u8; 32],
    ) -> Result<Self, String> {
        config.validate()?;
        let secrets = Secrets::from_master(master).map_err(|e| e.to_string())?;
        Ok(DiscoveryState(Arc::new(Inner {
            store,
            config,
            secrets,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            reloading: tokio::sync::Mutex::new(()),
        })))
    }

    /// [`DiscoveryState::new`] followed by the first load.
    pub async fn load(
        store: Arc<dyn DiscoveryStore>,
        config: DiscoveryConfig,
        master: &[u8; 32],
    ) -> Result<Self, String> {
        let s = Self::new(store, config, master)?;
        s.reload()
            .await
            .map_err(|e| format!("loading discovery data: {e}"))?;
        Ok(s)
    }

    pub fn store(&self) -> &dyn DiscoveryStore {
        &*self.0.store
    }

    pub fn config(&self) -> &DiscoveryConfig {
        &self.0.config
    }

    pub fn secrets(&self) -> &Secrets {
        &self.0.secrets
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.0.snapshot.read() {
            Ok(g) => g.clone(),
            // A panic while swapping cannot leave a half-written Arc behind.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, s: Snapshot) {
        let s = Arc::new(s);
        match self.0.snapshot.write() {
            Ok(mut g) => *g = s,
            Err(poisoned) => *poisoned.into_inner() = s,
        }
    }

    /// Reloads what changed in the store since the current snapshot (everything on the
    /// first call). Concurrent calls queue; a call that finds nothing changed returns at
    /// once.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _one = self.0.reloading.lock().await;
        let current = self.snapshot();
        let store = &*self.0.store;
        // Read before the data: a write racing the load bumps it again, and the next
        // refresh picks that up.
        let generation = store.discovery_generation().await?;
        let first = current.operators.is_empty() && current.generation == Default::default();
        if !first && generation == current.generation {
            return Ok(());
        }
        let numbers = if first || generation.numbers != current.generation.numbers {
            let started = std::time::Instant::now();
            let ix = load_numbers(store).await?;
            tracing::info!(
                ported = ix.ported_len(),
                ranges = ix.ranges_len(),
                millis = started.elapsed().as_millis() as u64,
                "discovery numbers loaded"
            );
            Arc::new(ix)
        } else {
            current.numbers.clone()
        };
        let mut operators = Vec::new();
        let mut by_id = HashMap::new();
        let mut by_code = HashMap::new();
        for record in store.list_operators().await? {
            let key = match record.encryption_jwk.as_deref() {
                Some(jwk) => match OperatorKey::from_jwk(jwk) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        tracing::warn!(operator = %record.id, error = %e, "unusable encryption key");
                        None
                    }
                },
                None => None,
            };
            by_id.insert(record.id.clone(), operators.len());
            by_code.insert((record.mcc.clone(), record.mnc.clone()), operators.len());
            operators.push(Arc::new(Operator { record, key }));
        }
        let number_ops = numbers
            .operator_ids()
            .iter()
            .map(|id| by_id.get(id).copied())
            .collect();
        let mut blocks = Vec::new();
        for r in store.list_ip_ranges().await? {
            match (Cidr::parse(&r.cidr), by_id.get(&r.operator_id)) {
                (Some(c), Some(&i)) => blocks.push((c, i)),
                _ => tracing::warn!(cidr = %r.cidr, "stored IP range skipped"),
            }
        }
        self.swap(Snapshot {
            generation,
            operators,
            by_id,
            by_code,
            numbers,
            number_ops,
            ip: IpIndex::new(blocks),
        });
        Ok(())
    }

    /// Checks the store every `refresh_secs` and reloads on change, until the task is
    /// aborted.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let s = self.clone();
        let every = Duration::from_secs(self.0.config.refresh_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = s.reload().await {
                    tracing::warn!(error = %e, "discovery refresh failed; serving the last data");
                }
            }
        })
    }
}

/// Reads both number tables page by page into a new index.
pub async fn load_numbers(store: &dyn DiscoveryStore) -> Result<NumberIndex, StoreError> {
    let ported = store.count_numbers(NumberKind::Ported).await?;
    let ranges = store.count_numbers(NumberKind::Range).await?;
    // Rows written between the count and the read only cost a reallocation.
    let mut b = NumberIndexBuilder::with_capacity(ported as usize, ranges as usize);
    for kind in [NumberKind::Range, NumberKind::Ported] {
        let mut after = None;
        loop {
            let page = store.numbers_after(kind, after, LOAD_PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.number);
            for e in &page {
                if !b.push(kind, e.number, &e.operator_id) {
                    tracing::warn!(number = e.number % 100, "stored number skipped");
                }
            }
            if page.len() < LOAD_PAGE as usize {
                break;
            }
        }
    }
    Ok(b.build())
}
