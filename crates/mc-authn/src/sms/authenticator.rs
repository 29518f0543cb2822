//! The SMS authenticator (digest §10.1): a code typed in the browser (`sms_otp`, amr
//! `OTP_OK`), a one-time link opened on the phone (`sms_url`, amr `SMS_URL_OK`), or both in
//! one SMS (`sms_otp_url`, amr after whichever answered). LoA2 only: an SMS proves
//! possession of the number, nothing more (digest: RUGW's SMS+URL refuses LoA3).
//!
//! [`Sms::start`] checks the subscriber's SMS lock and the velocity limits, then writes the
//! challenge (code and link hashed) and the SMS in one store transaction — the durable
//! outbox — and wakes the [`super::worker`]. Once `start` returned, the SMS is sent exactly
//! once even if this process dies before sending it: another worker (after a restart, or
//! on another node) leases the row.

use std::sync::Arc;

use async_trait::async_trait;
use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_core::msisdn::Msisdn;
use mc_store::{DynStore, SmsChallengeRecord, SmsChallengeState, SmsMode, SubscriberRecord};
use tokio::sync::Notify;

use super::secret;
use super::text::compose;
use super::velocity::{Limit, VelocityLimits};
use crate::authenticator::{Authenticator, Challenge, Eligibility};
use crate::util::now;

/// The amr of a code typed in the browser.
pub const AMR_OTP: &str = "OTP_OK";
/// The amr of a confirmed link.
pub const AMR_URL: &str = "SMS_URL_OK";

/// Operator settings of the SMS authenticator.
#[derive(Debug, Clone)]
pub struct SmsSettings {
    /// Digits of a code.
    pub otp_digits: u32,
    /// Wrong codes before the challenge locks (and SMS codes of the subscriber with it).
    pub max_attempts: u32,
    /// Absolute URL the link token is appended to (`…/sms/link`).
    pub link_base: String,
    /// Longest description of the request in the SMS, in characters.
    pub max_detail_chars: usize,
    pub velocity: VelocityLimits,
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            otp_digits: 6,
            max_attempts: 3,
            link_base: String::new(),
            max_detail_chars: 60,
            velocity: VelocityLimits::default(),
        }
    }
}

/// One SMS authenticator (one per mode configured).
pub struct Sms {
    mode: SmsMode,
    store: DynStore,
    settings: SmsSettings,
    wake: Arc<Notify>,
}

impl Sms {
    /// `wake` is shared with the [`super::worker::SmsWorker`] that sends the SMS.
    pub fn new(
        mode: SmsMode,
        store: DynStore,
        settings: SmsSettings,
        wake: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Sms {
            mode,
            store,
            settings,
            wake,
        })
    }

    pub fn mode(&self) -> SmsMode {
        self.mode
    }
}

/// The configuration name of the authenticator for a mode.
pub fn name_of(mode: SmsMode) -> &'static str {
    match mode {
        SmsMode::Otp => "sms_otp",
        SmsMode::Url => "sms_url",
        SmsMode::OtpUrl => "sms_otp_url",
    }
}

fn backend(e: mc_store::StoreError) -> McError {
    tracing::error!(error = %e, "store failure in the SMS authenticator");
    McError::ServerError
}

#[async_trait]
impl Authenticator for Sms {
    fn name(&self) -> &'static str {
        name_of(self.mode)
    }

    fn amr(&self, _loa: Loa) -> &'static str {
        match self.mode {
            SmsMode::Url => AMR_URL,
            // OTP+URL answers through `AnsweredBy` with the channel that answered.
            SmsMode::Otp | SmsMode::OtpUrl => AMR_OTP,
        }
    }

    fn amr_values(&self) -> &'static [&'static str] {
        match self.mode {
            SmsMode::Otp => &[AMR_OTP],
            SmsMode::Url => &[AMR_URL],
            SmsMode::OtpUrl => &[AMR_OTP, AMR_URL],
        }
    }

    fn max_loa(&self) -> Loa {
        Loa::Two
    }

    fn eligibility(&self, _s: &SubscriberRecord, loa: Loa) -> Eligibility {
        if loa == Loa::Two {
            Eligibility::Usable
        } else {
            Eligibility::Skip("SMS reaches LoA2 only")
        }
    }

    async fn start(&self, c: &Challenge) -> Result<(), McError> {
        let now = now();
        let session = self
            .store
            .get_session(&c.session_id)
            .await
            .map_err(backend)?
            .ok_or(McError::ServerError)?;
        let subscriber = self
            .store
            .get_subscriber(&c.subscriber_id)
            .await
            .map_err(backend)?
            .ok_or(McError::UnknownUser)?;
        let masked = Msisdn::parse(&subscriber.msisdn)
            .map(|m| m.masked())
            .unwrap_or_else(|| "<invalid>".to_owned());
        if self.mode.has_otp()
            && self
                .store
                .sms_locked(&subscriber.id)
                .await
                .map_err(backend)?
        {
            tracing::warn!(subscriber = %subscriber.id, "SMS codes locked for this subscriber; not sending");
            return Err(McError::LoaUnavailable);
        }
        let v = &self.settings.velocity;
        let keys = v.keys(&subscriber.msisdn, &session.client_id);
        let plain: Vec<_> = keys.iter().map(|(_, k)| k.clone()).collect();
        if let Some(i) = self
            .store
            .take_sms_velocity(&plain, v.window_start(now))
            .await
            .map_err(backend)?
        {
            let which = keys.get(i).map(|(l, _)| *l).unwrap_or(Limit::Msisdn);
            tracing::warn!(msisdn = %masked, client = %session.client_id, limit = which.as_str(), "SMS velocity limit reached; not sending");
            metrics::counter!("mc_sms_velocity_refused_total", "limit" => which.as_str())
                .increment(1);
            return Err(McError::LoaUnavailable);
        }
        let rng = || {
            tracing::error!("system RNG failed");
            McError::ServerError
        };
        let code = match self.mode.has_otp() {
            true => Some(secret::new_code(self.settings.otp_digits).ok_or_else(rng)?),
            false => None,
        };
        let token = match self.mode.has_url() {
            true => Some(secret::new_link_token().ok_or_else(rng)?),
            false => None,
        };
        let link = token
            .as_ref()
            .map(|t| format!("{}/{t}", self.settings.link_base.trim_end_matches('/')));
        let text = compose(
            c,
            self.mode,
            code.as_deref(),
            link.as_deref(),
            self.settings.max_detail_chars,
        );
        let record = SmsChallengeRecord {
            session_id: c.session_id.clone(),
            subscriber_id: subscriber.id.clone(),
            mode: self.mode,
            otp_hash: code.as_deref().map(|k| secret::code_hash(&c.session_id, k)),
            link_hash: token.as_deref().map(secret::link_hash),
            attempts: 0,
            state: SmsChallengeState::Waiting,
            created_at: now,
            expires_at: c.expires_at,
        };
        match self
            .store
            .create_sms_challenge(&record, &subscriber.msisdn, &text)
            .await
        {
            Ok(()) => {}
            // A chain that starts SMS twice for one login (two SMS modes configured): the
            // first SMS stands.
            Err(mc_store::StoreError::Conflict(_)) => return Err(McError::LoaUnavailable),
            Err(e) => return Err(backend(e)),
        }
        tracing::info!(session = %c.session_id, msisdn = %masked, mode = self.mode.as_str(), "SMS queued");
        self.wake.notify_one();
        Ok(())
    }
}

/// Reports an answer with the `amr` of the channel that carried it (OTP+URL has two).
pub struct AnsweredBy {
    pub name: &'static str,
    pub amr: &'static str,
}

#[async_trait]
impl Authenticator for AnsweredBy {
    fn name(&self) -> &'static str {
        self.name
    }
    fn amr(&self, _loa: Loa) -> &'static str {
        self.amr
    }
    fn amr_values(&self) -> &'static [&'static str] {
        &[]
    }
    fn max_loa(&self) -> Loa {
        Loa::Two
    }
    fn eligibility(&self, _s: &SubscriberRecord, _loa: Loa) -> Eligibility {
        Eligibility::Skip("answers only")
    }
    async fn start(&self, _c: &Challenge) -> Result<(), McError> {
        Err(McError::LoaUnavailable)
    }
}
