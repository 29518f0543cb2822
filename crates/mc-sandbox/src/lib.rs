//! The developer's sandbox: demo data (an operator, a service provider, test subscribers)
//! and the virtual phones.
//!
//! A virtual phone is a web page per MSISDN (`/phone/<msisdn>`) acting as the subscriber's
//! operator app: it lists open challenges and answers them through
//! [`mc_authn::push::PushChannel`], the same device API a real app channel uses — the
//! gateway has no sandbox shortcut. The demo data is written to `<data>/sandbox.json` so
//! scripts and tests can read it instead of scraping the console.
#![forbid(unsafe_code)]

pub mod discovery;
pub mod mssp;
pub mod operators;
pub mod phone;
pub mod seed;
pub mod shop;
pub mod sms_inbox;
pub mod smsc;

pub use seed::{SandboxInfo, seed};
