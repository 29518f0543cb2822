//! Retention (privacy principle 4 of seed 000: nothing kept longer than its purpose): a
//! scheduled purge of finished logins, spent codes, expired tokens, remembered assertion ids
//! and abandoned notifications. What is kept and for how long is in `docs/privacy.md`.
//!
//! Every node runs the purge ([`spawn_retention_worker`]); each store call deletes at most
//! `retention.batch_size` rows through an index, so the SQLite writer is held for one short
//! statement at a time and logins interleave with a long purge. PostgreSQL nodes purging at
//! once skip each other's rows. Counts go to `mc_retention_purged_total{kind}`.

use std::sync::Arc;
use std::time::Duration;

use mc_store::{PurgeKind, Store, StoreResult};
use serde::{Deserialize, Serialize};

use crate::state::{AppState, now};

/// `mc_retention_purged_total{kind}`: rows deleted by the retention purge.
pub const PURGED: &str = "mc_retention_purged_total";

/// Store calls per kind and round at most: a backlog larger than this many batches is
/// worked off over the following rounds.
pub const MAX_BATCHES_PER_ROUND: u32 = 1_000;

/// `[gateway.retention]`: how long finished data is kept, counted from when it ended (a
/// session's or token's expiry). The defaults are in `docs/privacy.md`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Run the purge at all.
    pub enabled: bool,
    /// Seconds between two purge rounds.
    pub interval_secs: u32,
    /// Rows deleted per store call.
    pub batch_size: u32,
    /// Login sessions (both channels, their codes and back-channel rows), after they expired.
    pub sessions_secs: u64,
    /// Access tokens, after they expired.
    pub access_tokens_secs: u64,
    /// Refresh tokens (any state), after they expired: how long the reuse of a rotated one
    /// is still detected after its expiry.
    pub refresh_tokens_secs: u64,
    /// Remembered client-assertion `jti`s, after the assertion expired.
    pub assertion_jtis_secs: u64,
    /// Notifications not worked on (normally removed when delivered or given up).
    pub outbox_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            enabled: true,
            interval_secs: 600,
            batch_size: 500,
            sessions_secs: 86_400,
            access_tokens_secs: 86_400,
            refresh_tokens_secs: 86_400,
            assertion_jtis_secs: 0,
            outbox_secs: 7 * 86_400,
        }
    }
}

impl RetentionConfig {
    /// The rules serde cannot express; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(10..=86_400).contains(&self.interval_secs) {
            return Err("retention.interval_secs: must be 10..=86400".into());
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return Err("retention.batch_size: must be 1..=10000".into());
        }
        // Ten years: beyond that an age is a mistake (and overflows nothing).
        const MAX_AGE: u64 = 10 * 365 * 86_400;
        for (name, age) in [
            ("sessions_secs", self.sessions_secs),
            ("access_tokens_secs", self.access_tokens_secs),
            ("refresh_tokens_secs", self.refresh_tokens_secs),
            ("assertion_jtis_secs", self.assertion_jtis_secs),
            ("outbox_secs", self.outbox_secs),
        ] {
            if age > MAX_AGE {
                return Err(format!("retention.{name}: must be at most {MAX_AGE}"));
            }
        }
        Ok(())
    }

    /// The age of one kind of data.
    pub fn age_of(&self, kind: PurgeKind) -> u64 {
        match kind {
            PurgeKind::Sessions => self.sessions_secs,
            PurgeKind::AccessTokens => self.access_tokens_secs,
            PurgeKind::RefreshTokens => self.refresh_tokens_secs,
            PurgeKind::AssertionJtis => self.assertion_jtis_secs,
            PurgeKind::Outbox => self.outbox_secs,
        }
    }
}

/// What one round deleted, per kind (in [`PurgeKind::ALL`] order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged(pub Vec<(PurgeKind, u64)>);

impl Purged {
    pub fn of(&self, kind: PurgeKind) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

/// One purge round at `now`: every kind in turn (tokens and notifications before the
/// sessions they name), each in batches until a batch comes back short. A failing kind is
/// logged and the others still run.
pub async fn purge(store: &dyn Store, config: &RetentionConfig, now: i64) -> Purged {
    let mut out = Vec::new();
    for kind in PurgeKind::ALL {
        let before = now.saturating_sub(config.age_of(kind) as i64);
        let mut total = 0u64;
        for _ in 0..MAX_BATCHES_PER_ROUND {
            match purge_batch(store, kind, before, now, config.batch_size).await {
                Ok(n) => {
                    total += n;
                    if n > 0 {
                        metrics::counter!(PURGED, "kind" => kind.as_str()).increment(n);
                    }
                    if n < u64::from(config.batch_size) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(kind = kind.as_str(), error = %e, "retention purge failed");
                    break;
                }
            }
            // Let waiting requests at the store between two batches.
            tokio::task::yield_now().await;
        }
        if total > 0 {
            tracing::info!(kind = kind.as_str(), purged = total, "retention purge");
        }
        out.push((kind, total));
    }
    Purged(out)
}

async fn purge_batch(
    store: &dyn Store,
    kind: PurgeKind,
    before: i64,
    now: i64,
    limit: u32,
) -> StoreResult<u64> {
    match kind {
        PurgeKind::Sessions => store.purge_sessions(before, limit).await,
        PurgeKind::AccessTokens => store.purge_access_tokens(before, limit).await,
        PurgeKind::RefreshTokens => store.purge_refresh_tokens(before, limit).await,
        PurgeKind::AssertionJtis => store.purge_assertion_jtis(before, limit).await,
        PurgeKind::Outbox => store.purge_outbox(before, now, limit).await,
    }
}

/// Starts the purge: a first round soon after start, then every `retention.interval_secs`.
/// Holds the state weakly, like the other workers; does nothing when `retention.enabled`
/// is off.
pub fn spawn_retention_worker(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let config = state.config.retention.clone();
    if !config.enabled {
        return None;
    }
    metrics::describe_counter!(PURGED, "Rows deleted by the retention purge, by kind");
    let weak = Arc::downgrade(&state.0);
    drop(state);
    let every = Duration::from_secs(u64::from(config.interval_secs));
    Some(tokio::spawn(async move {
        // Not at the very start: a node that just started has other things to do first.
        tokio::time::sleep(Duration::from_secs(5).min(every)).await;
        loop {
            let Some(inner) = weak.upgrade() else { break };
            purge(&*inner.store, &config, now()).await;
            drop(inner);
            tokio::time::sleep(every).await;
        }
        tracing::debug!("retention worker stopped");
    }))
}
