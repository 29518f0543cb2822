//! The SIM applet authenticator: the challenge is shown by the applet on the subscriber's
//! SIM through the operator's MSSP ([`crate::mssp`]); LoA2 is "OK", LoA3 the SIM PIN,
//! checked by the card.
//!
//! # Nothing lost: the durable MSSP request
//!
//! [`SimApplet::start`] first records the request in the store ([`mc_store::MsspStore`],
//! leased to this node): once that committed the login is *accepted*. Then it sends the
//! signature request synchronously and returns as soon as the MSSP took it (a refusal —
//! unknown SIM, blocked PIN, MSSP down — deletes the record and is a start failure, so the
//! chain hands over to the next authenticator at once), and stores the MSSP's transaction
//! id. A task then polls the transaction, renewing the lease, and records the answer
//! through [`crate::answer::answer_challenge`]: a signature approves, `USER_CANCEL` denies,
//! any other fault (timeout, OTA error, busy SIM) leaves the session open for the next
//! authenticator of the chain or its own expiry; transport errors are retried until the
//! transaction's end. The record is deleted when the transaction is over.
//!
//! If the process dies, the lease runs out and the take-over worker of any node
//! ([`SimApplet::spawn_worker`]) leases the record: with the MSSP's transaction id known
//! it resumes polling; without it (the crash came between "accepted" and the MSSP's
//! answer) it sends the request again with the same `AP_TransID`. An MSSP that treats a
//! repeated `AP_TransID` as the retransmission it is answers with the original
//! transaction, so the SIM is asked once; one that refuses it makes the SIM step end
//! there (the login stays open for its other channels) — never a second prompt
//! (`docs/decisions.md`, "MSSP requests after a crash").

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_core::msisdn::Msisdn;
use mc_store::{DynStore, MsspRequestRecord, SessionStatus, SubscriberRecord};

use crate::answer::{Answer, AnswerContext, PinPolicy, answer_challenge};
use crate::authenticator::{Authenticator, Challenge, Eligibility};
use crate::hub::Hub;
use crate::mssp::{FaultOutcome, MsspClient, MsspError, Status, Transaction, fit_display_text};
use crate::util::now;

/// The capability of a subscriber whose SIM carries the applet.
pub const CAPABILITY: &str = "sim_applet";

/// How the durable MSSP requests are carried.
#[derive(Debug, Clone, Copy)]
pub struct OutboxOptions {
    /// A poller's hold on its request. After a crash the request waits this long before
    /// another worker takes it over; the holder renews it every third of it.
    pub lease_secs: i64,
    /// How often the take-over worker looks for requests whose holder stopped.
    pub takeover_poll: Duration,
    /// Requests taken over per round.
    pub batch: u32,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions::with_lease(30)
    }
}

impl OutboxOptions {
    /// A lease of `lease_secs` (at least 2), looked for every half lease (at most 5 s).
    pub fn with_lease(lease_secs: u32) -> OutboxOptions {
        let lease_secs = lease_secs.max(2);
        OutboxOptions {
            lease_secs: i64::from(lease_secs),
            takeover_poll: Duration::from_secs(u64::from((lease_secs / 2).clamp(1, 5))),
            batch: 20,
        }
    }

    fn renew_every(&self) -> Duration {
        Duration::from_millis((self.lease_secs.max(1) as u64) * 1000 / 3)
    }
}

/// The SIM applet authenticator.
pub struct SimApplet {
    client: MsspClient,
    store: DynStore,
    hub: Hub,
    policy: PinPolicy,
    options: OutboxOptions,
}

impl SimApplet {
    pub fn new(client: MsspClient, store: DynStore, hub: Hub, policy: PinPolicy) -> Arc<Self> {
        Self::with_options(client, store, hub, policy, OutboxOptions::default())
    }

    pub fn with_options(
        client: MsspClient,
        store: DynStore,
        hub: Hub,
        policy: PinPolicy,
        options: OutboxOptions,
    ) -> Arc<Self> {
        Arc::new(SimApplet {
            client,
            store,
            hub,
            policy,
            options,
        })
    }

    /// Starts the take-over worker: every [`OutboxOptions::takeover_poll`] it leases the
    /// requests whose holder stopped renewing (a crash, on this node or another) and carries
    /// them on. Ends when the authenticator is dropped. `None` outside a Tokio runtime.
    pub fn spawn_worker(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let weak = Arc::downgrade(self);
        let every = self.options.takeover_poll;
        Some(runtime.spawn(async move {
            loop {
                let Some(this) = weak.upgrade() else {
                    return;
                };
                this.take_over_round().await;
                drop(this);
                tokio::time::sleep(every).await;
            }
        }))
    }

    /// One round of the take-over worker: forgets requests whose transaction is over, leases
    /// the lapsed ones and carries each on in a task of its own. Returns how many it took.
    pub async fn take_over_round(self: &Arc<Self>) -> usize {
        let now = now();
        if let Err(e) = self.store.purge_mssp_requests(now).await {
            tracing::warn!(error = %e, "sim_applet: purging ended MSSP requests failed");
        }
        let Some(owner) = lease_token() else {
            return 0;
        };
        let taken = match self
            .store
            .lease_mssp_requests(now, self.options.lease_secs, &owner, self.options.batch)
            .await
        {
            Ok(taken) => taken,
            Err(e) => {
                tracing::error!(error = %e, "sim_applet: leasing MSSP requests failed");
                return 0;
            }
        };
        let n = taken.len();
        for r in taken {
            metrics::counter!("mc_mssp_takeover_total").increment(1);
            let this = self.clone();
            tokio::spawn(async move { this.resume(r).await });
        }
        n
    }

    /// Carries on a request taken over from a holder that stopped.
    async fn resume(self: Arc<Self>, r: MsspRequestRecord) {
        tracing::info!(session = %r.session_id, attempts = r.attempts, sent = r.mssp_trans_id.is_some(), "sim_applet: taking over an MSSP request whose holder stopped");
        if !self.session_live(&r.session_id).await.unwrap_or(true) {
            self.complete(&r.session_id).await;
            return;
        }
        let tx = match &r.mssp_trans_id {
            Some(id) => Transaction {
                ap_trans_id: r.ap_trans_id.clone(),
                mssp_trans_id: id.clone(),
                msisdn: r.msisdn.clone(),
            },
            // Never known to be accepted: the same request again, with the same AP_TransID.
            None => match self.send(&r).await {
                Ok(Some(tx)) => tx,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(session = %r.session_id, msisdn = %mask(&r.msisdn), error = %e, outcome = ?e.outcome(), "sim_applet: the MSSP refused the request sent again; the SIM step is over");
                    self.complete(&r.session_id).await;
                    return;
                }
            },
        };
        self.carry(r, tx).await;
    }

    /// Sends `r` to the MSSP (holding the lease meanwhile) and stores the transaction id.
    /// `Ok(None)`: the lease was lost meanwhile, someone else carries the request.
    async fn send(&self, r: &MsspRequestRecord) -> Result<Option<Transaction>, MsspError> {
        let sent = self
            .holding(
                r,
                self.client
                    .start(&r.msisdn, &r.text, r.pin_required, &r.ap_trans_id),
            )
            .await?;
        let lease_until = now() + self.options.lease_secs;
        match self
            .store
            .set_mssp_trans_id(
                &r.session_id,
                &r.lease_owner,
                &sent.mssp_trans_id,
                lease_until,
            )
            .await
        {
            Ok(true) => Ok(Some(sent)),
            Ok(false) => {
                tracing::info!(session = %r.session_id, "sim_applet: MSSP request taken over by another worker meanwhile");
                Ok(None)
            }
            // Polled anyway: if this node dies too, a worker sends again with the same
            // AP_TransID and the MSSP answers with this transaction.
            Err(e) => {
                tracing::error!(session = %r.session_id, error = %e, "sim_applet: storing the MSSP transaction id failed");
                Ok(Some(sent))
            }
        }
    }

    /// Runs `work` while renewing `r`'s lease, so a slow MSSP exchange is not mistaken for
    /// a dead holder.
    async fn holding<T>(&self, r: &MsspRequestRecord, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep(self.options.renew_every()) => {
                    let until = now() + self.options.lease_secs;
                    if let Err(e) = self.store.renew_mssp_lease(&r.session_id, &r.lease_owner, until).await {
                        tracing::warn!(session = %r.session_id, error = %e, "sim_applet: renewing the MSSP lease failed");
                    }
                }
            }
        }
    }

    /// Polls the transaction until an answer, a final fault, the end of the login or of the
    /// transaction, renewing the lease; records the answer; deletes the request.
    async fn carry(&self, r: MsspRequestRecord, tx: Transaction) {
        let session_id = r.session_id.as_str();
        let mut renewed = tokio::time::Instant::now();
        loop {
            if now() >= r.expires_at {
                tracing::info!(session = %session_id, "sim_applet: no answer from the SIM in time");
                break;
            }
            // The login may have ended meanwhile (another channel, its timeout): stop asking.
            if !self.session_live(session_id).await.unwrap_or(true) {
                break;
            }
            let answer = match self.client.status(&tx).await {
                Ok(Status::Outstanding) => None,
                Ok(Status::Signed { .. }) => Some(Answer::ApproveVerified),
                Err(e) if e.outcome() == FaultOutcome::Refused => Some(Answer::Deny),
                // The MSSP may be briefly unreachable: the transaction lives on there.
                Err(MsspError::Transport(e)) => {
                    tracing::warn!(session = %session_id, error = %e, "sim_applet: status query failed; retrying");
                    None
                }
                Err(e) => {
                    tracing::info!(session = %session_id, error = %e, outcome = ?e.outcome(), "sim_applet: no answer; the session stays open");
                    break;
                }
            };
            if let Some(answer) = answer {
                self.record(&r, answer).await;
                break;
            }
            if renewed.elapsed() >= self.options.renew_every() {
                let until = now() + self.options.lease_secs;
                match self
                    .store
                    .renew_mssp_lease(session_id, &r.lease_owner, until)
                    .await
                {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => {
                        tracing::info!(session = %session_id, "sim_applet: MSSP request taken over by another worker; this poller stops");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(session = %session_id, error = %e, "sim_applet: renewing the MSSP lease failed")
                    }
                }
            }
            tokio::time::sleep(self.client.config().poll_interval).await;
        }
        self.complete(session_id).await;
    }

    async fn record(&self, r: &MsspRequestRecord, answer: Answer) {
        let ctx = AnswerContext {
            store: self.store.as_ref(),
            hub: &self.hub,
            policy: self.policy,
        };
        if let Err(e) =
            answer_challenge(&ctx, self, &r.session_id, &r.subscriber_id, answer, now()).await
        {
            tracing::warn!(session = %r.session_id, error = ?e, "sim_applet: answer not recorded");
        }
    }

    /// Whether the login still waits for an answer; `None` when the store could not say.
    async fn session_live(&self, session_id: &str) -> Option<bool> {
        match self.store.get_session(session_id).await {
            Ok(s) => {
                Some(s.is_some_and(|s| s.status == SessionStatus::Pending && s.expires_at > now()))
            }
            Err(e) => {
                tracing::warn!(session = %session_id, error = %e, "sim_applet: reading the session failed");
                None
            }
        }
    }

    async fn complete(&self, session_id: &str) {
        if let Err(e) = self.store.complete_mssp_request(session_id).await {
            // Left for the purge once the transaction's time is over.
            tracing::warn!(session = %session_id, error = %e, "sim_applet: deleting the MSSP request failed");
        }
    }
}

/// The text on the SIM (digest §10.3): the service provider's name with what is asked —
/// the binding message and the context when given, else a plain login question. The
/// MSSP client fits it to the SIM's byte limit.
pub fn sim_text(c: &Challenge) -> String {
    let asked = match (&c.binding_message, &c.context) {
        (Some(b), Some(ctx)) => format!("{b} {ctx}"),
        (Some(b), None) => b.clone(),
        (None, Some(ctx)) => ctx.clone(),
        (None, None) => "Log in?".to_owned(),
    };
    let how = if c.loa == Loa::Three {
        "Enter your SIM PIN to confirm."
    } else {
        "Press OK to confirm."
    };
    format!("{}: {asked} {how}", c.client_name)
}

#[async_trait]
impl Authenticator for SimApplet {
    fn name(&self) -> &'static str {
        CAPABILITY
    }

    fn amr(&self, loa: Loa) -> &'static str {
        match loa {
            Loa::Two => "SIM_OK",
            Loa::Three => "SIM_PIN",
        }
    }

    fn amr_values(&self) -> &'static [&'static str] {
        &["SIM_OK", "SIM_PIN"]
    }

    fn max_loa(&self) -> Loa {
        Loa::Three
    }

    /// The SIM PIN lives on the card, so LoA3 needs no PIN enrolled with us.
    fn eligibility(&self, s: &SubscriberRecord, _loa: Loa) -> Eligibility {
        if s.capabilities.iter().any(|c| c == CAPABILITY) {
            Eligibility::Usable
        } else {
            Eligibility::Skip("no applet-capable SIM")
        }
    }

    async fn start(&self, challenge: &Challenge) -> Result<(), McError> {
        let sub = self
            .store
            .get_subscriber(&challenge.subscriber_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failure reading a subscriber");
                McError::ServerError
            })?
            .ok_or(McError::UnknownUser)?;
        let masked = mask(&sub.msisdn);
        // Fitted once, stored, and sent the same on every (re)send.
        let Some(text) =
            fit_display_text(&sim_text(challenge), self.client.config().display_policy)
        else {
            let e = MsspError::TextTooLong;
            tracing::warn!(msisdn = %masked, error = %e, "sim_applet: not started");
            return Err(start_error(&e));
        };
        let now = now();
        let timeout = self.client.config().transaction_timeout.as_secs() as i64;
        let expires_at = if challenge.expires_at > now {
            challenge.expires_at.min(now + timeout)
        } else {
            now + timeout
        };
        let record = MsspRequestRecord {
            session_id: challenge.session_id.clone(),
            subscriber_id: challenge.subscriber_id.clone(),
            msisdn: sub.msisdn.clone(),
            text,
            pin_required: challenge.loa == Loa::Three,
            // The session id is unique per login and survives a restart.
            ap_trans_id: challenge.session_id.clone(),
            mssp_trans_id: None,
            attempts: 0,
            lease_owner: lease_token().ok_or(McError::ServerError)?,
            lease_until: now + self.options.lease_secs,
            expires_at,
            created_at: now,
        };
        // Accepted = committed: from here a crash does not lose the request.
        self.store.create_mssp_request(&record).await.map_err(|e| {
            tracing::error!(error = %e, "sim_applet: recording the MSSP request failed");
            McError::ServerError
        })?;
        let tx = match self.send(&record).await {
            Ok(Some(tx)) => tx,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(msisdn = %masked, error = %e, outcome = ?e.outcome(), "sim_applet: not started");
                self.complete(&record.session_id).await;
                return Err(start_error(&e));
            }
        };
        let applet = Self {
            client: self.client.clone(),
            store: self.store.clone(),
            hub: self.hub.clone(),
            policy: self.policy,
            options: self.options,
        };
        tokio::spawn(async move { applet.carry(record, tx).await });
        Ok(())
    }
}

fn mask(msisdn: &str) -> String {
    Msisdn::parse(msisdn)
        .map(|m| m.masked())
        .unwrap_or_else(|| "<invalid>".to_owned())
}

/// A fresh lease owner token (128 random bits as hex); `None` if the system RNG failed.
fn lease_token() -> Option<String> {
    crate::util::random_hex::<16>()
}

/// How a start failure reads to the router (the chain hands over on any error).
fn start_error(e: &MsspError) -> McError {
    match e.outcome() {
        FaultOutcome::Busy => McError::UserBusy,
        FaultOutcome::TextTooLong => McError::InvalidBindingMessage,
        _ => McError::LoaUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(loa: Loa, b: Option<&str>, ctx: Option<&str>) -> Challenge {
        Challenge {
            session_id: "s".into(),
            subscriber_id: "u".into(),
            loa,
            client_name: "OnlineShopper".into(),
            context: ctx.map(str::to_owned),
            binding_message: b.map(str::to_owned),
            expires_at: 0,
        }
    }

    #[test]
    fn sim_text_names_the_sp_and_what_is_asked() {
        assert_eq!(
            sim_text(&challenge(Loa::Two, None, None)),
            "OnlineShopper: Log in? Press OK to confirm."
        );
        assert_eq!(
            sim_text(&challenge(Loa::Three, Some("AB12"), Some("Pay 10 GBP"))),
            "OnlineShopper: AB12 Pay 10 GBP Enter your SIM PIN to confirm."
        );
    }
}
