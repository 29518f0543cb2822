//! The Mobile Connect profile as types: no I/O, no async.
//!
//! Everything a service provider can send is parsed here, once, into validated types
//! (`Msisdn`, `LoginHint`, `AcrValues`, `Scope`, `McVersion`, [`authorize::AuthorizeRequest`]);
//! every rejection is one variant of [`McError`], mapped to the wire in one place
//! ([`McError::code`], [`McError::description`], [`McError::http_status`]). HTTP handlers
//! translate between the wire and these types; they never decide protocol questions.
//!
//! The authorization checks are small named functions (see [`authorize::checks`]); their
//! order is one table ([`authorize::pipeline`]).
//!
//! ```
//! use mc_core::{login_hint::LoginHint, msisdn::Msisdn};
//! let hint = LoginHint::parse("MSISDN:+447700900301").unwrap();
//! assert_eq!(hint, LoginHint::Msisdn(Msisdn::parse("447700900301").unwrap()));
//! ```
#![forbid(unsafe_code)]

pub mod acr;
pub mod authorize;
pub mod backchannel;
pub mod client;
pub mod consent;
pub mod error;
pub mod grants;
pub mod hash;
pub mod id_token;
pub mod limits;
pub mod login_hint;
pub mod metadata;
pub mod msisdn;
pub mod params;
pub mod pkce;
pub mod scope;
pub mod sector;
pub mod token_manager;
pub mod token_request;
pub mod version;

pub use error::{ErrorCode, McError};
