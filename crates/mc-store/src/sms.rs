//! The SMS authenticator's state: one challenge per login (OTP and/or one-time link, both
//! stored hashed), the durable SMS outbox the SMPP worker drains, velocity counters (SMS
//! pumping) and the per-subscriber SMS lock.
//!
//! Every state change that matters for safety is one atomic statement or transaction in
//! the backend: a challenge and its outbox row are written together (an accepted login
//! always has its SMS queued, and nothing is queued for a login that was not accepted);
//! a wrong OTP is counted and locks in one statement; a link is answered get-and-set, so a
//! double click finds the answer of the first click.

use async_trait::async_trait;

use crate::StoreResult;

/// What the SMS carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsMode {
    /// A code typed in the browser.
    Otp,
    /// A one-time link opened on the phone.
    Url,
    /// Both; whichever is used first answers.
    OtpUrl,
}

impl SmsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsMode::Otp => "otp",
            SmsMode::Url => "url",
            SmsMode::OtpUrl => "otp_url",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "otp" => SmsMode::Otp,
            "url" => SmsMode::Url,
            "otp_url" => SmsMode::OtpUrl,
            _ => return None,
        })
    }

    pub fn has_otp(self) -> bool {
        matches!(self, SmsMode::Otp | SmsMode::OtpUrl)
    }

    pub fn has_url(self) -> bool {
        matches!(self, SmsMode::Url | SmsMode::OtpUrl)
    }
}

/// Where an SMS challenge is (digest §10.2: `WaitingConfirm → Confirmed | Rejected |
/// Expired`, plus `Locked` after too many wrong codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsChallengeState {
    Waiting,
    Confirmed,
    Rejected,
    Locked,
}

impl SmsChallengeState {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsChallengeState::Waiting => "waiting",
            SmsChallengeState::Confirmed => "confirmed",
            SmsChallengeState::Rejected => "rejected",
            SmsChallengeState::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "waiting" => SmsChallengeState::Waiting,
            "confirmed" => SmsChallengeState::Confirmed,
            "rejected" => SmsChallengeState::Rejected,
            "locked" => SmsChallengeState::Locked,
            _ => return None,
        })
    }
}

/// One SMS challenge; its id is the login session's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsChallengeRecord {
    pub session_id: String,
    pub subscriber_id: String,
    pub mode: SmsMode,
    /// Hash of the code (never the code).
    pub otp_hash: Option<String>,
    /// Hash of the link token (never the token); unique.
    pub link_hash: Option<String>,
    /// Wrong codes so far.
    pub attempts: u32,
    pub state: SmsChallengeState,
    pub created_at: i64,
    /// Answers are taken until then.
    pub expires_at: i64,
}

/// An SMS to send: queued with its challenge, leased by one worker at a time, deleted once
/// the SMSC took it. `text` holds the code or link in clear only until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsOutboxItem {
    pub id: i64,
    pub session_id: String,
    /// Destination, E.164 with `+`.
    pub msisdn: String,
    pub text: String,
    /// Send attempts before this one.
    pub attempts: u32,
    /// Not worth sending after this (the challenge is over): dropped unsent.
    pub expires_at: i64,
    pub created_at: i64,
}

/// What a typed code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpCheck {
    /// Right code: the challenge is `Confirmed` (again `Matched` for the same code later,
    /// so a retried submit reaches the same answer).
    Matched,
    /// Wrong code, counted; `remaining` tries left.
    Wrong { remaining: u32 },
    /// Wrong code and that was the last try: the challenge is `Locked`.
    Locked,
    /// No waiting challenge with a code for that session (unknown, answered, expired,
    /// locked before).
    NotPending,
}

/// What opening or answering a link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkLookup {
    /// The link's challenge, in its state now.
    Found(SmsChallengeRecord),
    /// No such link.
    Unknown,
}

/// What answering a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAnswer {
    /// This call moved the challenge from `Waiting` to the answer.
    Fresh(SmsChallengeRecord),
    /// The challenge was already answered, locked, or expired: its record as it stands
    /// (a double click of the same answer finds that answer).
    Settled(SmsChallengeRecord),
    Unknown,
}

/// One velocity counter to take from: `key` names it (e.g. `msisdn:+4477…`), at most
/// `limit` per window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VelocityKey {
    pub key: String,
    pub limit: u32,
}

/// SMS authenticator persistence.
#[async_trait]
pub trait SmsStore: Send + Sync {
    /// Stores a challenge and queues its SMS (`next_attempt_at = created_at`) in one
    /// transaction. `Conflict` if the session already has a challenge.
    async fn create_sms_challenge(
        &self,
        c: &SmsChallengeRecord,
        msisdn: &str,
        text: &str,
    ) -> StoreResult<()>;
    async fn get_sms_challenge(&self, session_id: &str) -> StoreResult<Option<SmsChallengeRecord>>;
    /// Checks a typed code against a `Waiting` unexpired challenge with a code, atomically
    /// (see [`OtpCheck`]); a wrong code locks the challenge on reaching `max_attempts`.
    async fn check_sms_otp(
        &self,
        session_id: &str,
        otp_hash: &str,
        max_attempts: u32,
        now: i64,
    ) -> StoreResult<OtpCheck>;
    /// The challenge a link names, whatever its state.
    async fn find_sms_link(&self, link_hash: &str) -> StoreResult<LinkLookup>;
    /// Answers a link: `Waiting` (unexpired) → `answer` (`Confirmed` or `Rejected`) in one
    /// statement; otherwise the record as it stands.
    async fn answer_sms_link(
        &self,
        link_hash: &str,
        answer: SmsChallengeState,
        now: i64,
    ) -> StoreResult<LinkAnswer>;
    /// Up to `limit` SMS due at `now` that no one holds a live lease on, each leased until
    /// `now + lease_secs`: across nodes one worker at a time sends a given SMS.
    async fn lease_sms(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<SmsOutboxItem>>;
    /// Sent (or given up): the row, and the clear text with it, is deleted. Idempotent.
    async fn complete_sms(&self, id: i64) -> StoreResult<()>;
    /// Not sent this time: one more attempt counted, lease released, next try then.
    async fn retry_sms(&self, id: i64, next_attempt_at: i64) -> StoreResult<()>;
    /// SMS waiting to be sent (a metric and a test hook).
    async fn sms_outbox_len(&self) -> StoreResult<u64>;
    /// Counts one SMS against every key for the window starting at `window_start` if each
    /// is below its limit, atomically: `None` when counted, else `Some(index)` of the
    /// first key at its limit (then nothing is counted).
    async fn take_sms_velocity(
        &self,
        keys: &[VelocityKey],
        window_start: i64,
    ) -> StoreResult<Option<usize>>;
    /// Forgets velocity windows that started before `before`.
    async fn purge_sms_velocity(&self, before: i64) -> StoreResult<u64>;
    /// Forgets challenges that expired before `before` (their links then read as unknown).
    async fn purge_sms_challenges(&self, before: i64) -> StoreResult<u64>;
    /// Locks SMS codes for a subscriber (too many wrong codes); idempotent.
    async fn lock_sms(&self, subscriber_id: &str, now: i64) -> StoreResult<()>;
    async fn sms_locked(&self, subscriber_id: &str) -> StoreResult<bool>;
    /// Lifts the lock (provisioning); true if there was one.
    async fn unlock_sms(&self, subscriber_id: &str) -> StoreResult<bool>;
}
