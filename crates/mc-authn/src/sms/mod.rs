//! SMS: the SMS authenticator (OTP, one-time link, both), the durable SMS outbox worker,
//! and the SMPP 3.4 link that carries the SMS to the operator's SMSC.
//!
//! [`authenticator::Sms`] writes a challenge with its SMS to the store's outbox;
//! [`worker::SmsWorker`] leases the outbox and submits over [`smpp::SmppClient`], which
//! owns one transceiver session (bind, enquire_link, reconnect with backoff) and pipelines
//! `submit_sm` requests over it; [`receipt`] reads the delivery receipts the SMSC sends
//! back. Text encoding (GSM 03.38 default alphabet when every character fits, UCS-2
//! otherwise) and concatenation are `rusmpp`'s. [`channel::SmsChannel`] takes the answers:
//! a code typed in the browser, a link confirmed or rejected on the phone.

pub mod authenticator;
pub mod channel;
pub mod receipt;
pub mod secret;
pub mod smpp;
pub mod text;
pub mod velocity;
pub mod worker;

pub use authenticator::{Sms, SmsSettings};
pub use channel::{CodeOutcome, LinkView, SmsChannel};
pub use receipt::{DeliveryReceipt, ReceiptState};
pub use smpp::{LinkState, SmppClient, SmppConfig, SmsError, Submitted};
pub use velocity::VelocityLimits;
pub use worker::{SmsWorker, WorkerOptions};
