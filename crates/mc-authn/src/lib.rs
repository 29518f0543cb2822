//! The Authenticator Router and the authenticators that reach the subscriber's phone.
//!
//! Design: an [`Authenticator`] is a trait implementation with named hooks — whether it can
//! serve a subscriber at a level ([`Authenticator::eligibility`]) and how to start a
//! challenge ([`Authenticator::start`]). The [`router::AuthnRouter`] holds an ordered chain
//! of authenticators per level of assurance and picks the first eligible one, logging why
//! each candidate was taken or skipped. Channels answer through one entry point,
//! [`answer::answer_challenge`], which checks the PIN for LoA3 and records the outcome in the
//! store take-once; the gateway only ever reads the outcome from the store, so a phone
//! answering on one node completes a login waiting on another.
//!
//! The first authenticator is [`push::AppPush`]: challenges fetched by the subscriber's
//! device (the sandbox's virtual phone uses the same [`push::PushChannel`] API a real
//! operator app would).
#![forbid(unsafe_code)]

pub mod answer;
pub mod authenticator;
pub mod chain;
pub mod device_key;
pub mod header_enrichment;
pub mod hub;
pub mod mssp;
pub mod passkey;
pub mod pin;
pub mod push;
pub mod router;
pub mod sim_applet;
pub mod sms;
mod util;

pub use authenticator::{Authenticator, Challenge, Eligibility};
pub use hub::Hub;
pub use router::AuthnRouter;
