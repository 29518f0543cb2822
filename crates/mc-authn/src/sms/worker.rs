//! The SMS outbox worker: leases queued SMS from the store and submits them over SMPP.
//!
//! A row is deleted only after the SMSC accepted every part (`submit_sm_resp` OK), so a
//! process killed after the login was accepted but before the SMS left sends it after the
//! restart (or another node does, once the lease ran out), and a row is never leased by
//! two workers at once: each accepted login gets its SMS exactly once. The one window left
//! is a kill after the SMSC accepted the SMS but before the row was deleted: SMPP 3.4 has no
//! idempotency key, so that SMS is sent again (at least once, never zero).
//!
//! Final refusals (bad number, text too long, a permanent SMSC error) drop the row; a
//! lost link, throttling beyond the client's own retries and SMSC faults are retried with
//! growing waits until the challenge expires.

use std::sync::Arc;
use std::time::Duration;

use mc_core::msisdn::Msisdn;
use mc_store::{DynStore, SmsOutboxItem};
use tokio::sync::Notify;

use super::smpp::{LinkState, SmppClient, SmsError};
use crate::util::now;

/// Worker timings.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// How long a leased row is ours before another worker may take it.
    pub lease_secs: i64,
    /// Rows leased per round.
    pub batch: u32,
    /// Longest sleep without a wake-up (picks up rows of other nodes and of a restart).
    pub idle_poll: Duration,
    /// How long ended challenges (their links answer "unknown" after) and old velocity
    /// windows are kept; purged about hourly by the worker (every node purges; the
    /// deletes are idempotent).
    pub keep_secs: i64,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            lease_secs: 60,
            batch: 20,
            idle_poll: Duration::from_secs(2),
            keep_secs: 86_400,
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retried: usize,
    pub dropped: usize,
}

/// Sends the SMS of the durable outbox.
#[derive(Clone)]
pub struct SmsWorker {
    store: DynStore,
    client: SmppClient,
    wake: Arc<Notify>,
    options: WorkerOptions,
}

impl SmsWorker {
    pub fn new(
        store: DynStore,
        client: SmppClient,
        wake: Arc<Notify>,
        options: WorkerOptions,
    ) -> Self {
        SmsWorker {
            store,
            client,
            wake,
            options,
        }
    }

    /// Runs rounds until the task is dropped: at once when woken, else every `idle_poll`.
    /// While the SMPP link is not bound it leases nothing: the SMS stay free for a node
    /// whose link is up (or for this one once it is), instead of burning their attempts.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut link = self.client.watch_state();
            let mut last_purge: Option<tokio::time::Instant> = None;
            loop {
                if last_purge.is_none_or(|t| t.elapsed() >= Duration::from_secs(3_600)) {
                    last_purge = Some(tokio::time::Instant::now());
                    self.purge().await;
                }
                let state = link.borrow_and_update().clone();
                if state != LinkState::Bound {
                    let waited = tokio::time::timeout(self.options.idle_poll, link.changed()).await;
                    if state == LinkState::Closed || matches!(waited, Ok(Err(_))) {
                        tracing::info!("SMS outbox worker: the SMPP client is shut down; stopping");
                        return;
                    }
                    continue;
                }
                let round = self.round().await;
                if round == Round::default() {
                    let _ =
                        tokio::time::timeout(self.options.idle_poll, self.wake.notified()).await;
                }
            }
        })
    }

    /// Leases one batch and sends it.
    pub async fn round(&self) -> Round {
        let t = now();
        let items = match self
            .store
            .lease_sms(t, self.options.lease_secs, self.options.batch)
            .await
        {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "SMS outbox: lease failed");
                return Round::default();
            }
        };
        let mut round = Round::default();
        for item in items {
            match self.send(&item).await {
                Done::Sent => round.sent += 1,
                Done::Retry => round.retried += 1,
                Done::Dropped => round.dropped += 1,
            }
        }
        round
    }

    async fn send(&self, item: &SmsOutboxItem) -> Done {
        let masked = Msisdn::parse(&item.msisdn)
            .map(|m| m.masked())
            .unwrap_or_else(|| "<invalid>".to_owned());
        let t = now();
        if item.expires_at <= t {
            tracing::warn!(session = %item.session_id, msisdn = %masked, "SMS outbox: challenge expired before sending; dropped");
            self.complete(item).await;
            metrics::counter!("mc_sms_outbox_total", "outcome" => "expired").increment(1);
            return Done::Dropped;
        }
        match self.client.submit(&item.msisdn, &item.text).await {
            Ok(sent) => {
                tracing::info!(session = %item.session_id, msisdn = %masked, parts = sent.message_ids.len(), encoding = sent.encoding, "SMS sent");
                self.complete(item).await;
                metrics::counter!("mc_sms_outbox_total", "outcome" => "sent").increment(1);
                Done::Sent
            }
            Err(
                e @ (SmsError::BadDestination
                | SmsError::TooLong { .. }
                | SmsError::Encoding(_)
                | SmsError::Rejected(_)),
            ) => {
                tracing::error!(session = %item.session_id, msisdn = %masked, error = %e, "SMS refused for good; dropped");
                self.complete(item).await;
                metrics::counter!("mc_sms_outbox_total", "outcome" => "refused").increment(1);
                Done::Dropped
            }
            Err(e) => {
                let wait = 2i64.saturating_pow(item.attempts.min(6)).min(60);
                tracing::warn!(session = %item.session_id, msisdn = %masked, error = %e, attempt = item.attempts + 1, "SMS not sent; retrying");
                if let Err(e) = self.store.retry_sms(item.id, t + wait).await {
                    tracing::error!(error = %e, "SMS outbox: retry failed (the lease will run out)");
                }
                metrics::counter!("mc_sms_outbox_total", "outcome" => "retry").increment(1);
                Done::Retry
            }
        }
    }

    /// Forgets challenges and velocity windows older than `keep_secs`.
    pub async fn purge(&self) {
        let before = now() - self.options.keep_secs;
        match (
            self.store.purge_sms_challenges(before).await,
            self.store.purge_sms_velocity(before).await,
        ) {
            (Ok(challenges), Ok(windows)) => {
                tracing::debug!(challenges, windows, "SMS state purged");
            }
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "SMS purge failed"),
        }
    }

    async fn complete(&self, item: &SmsOutboxItem) {
        if let Err(e) = self.store.complete_sms(item.id).await {
            tracing::error!(error = %e, "SMS outbox: completion failed (the row may be sent again)");
        }
    }
}

enum Done {
    Sent,
    Retry,
    Dropped,
}
