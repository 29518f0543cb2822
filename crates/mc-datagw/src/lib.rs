//! The Data Gateway: where subscriber attributes come from, which claims each scope
//! releases, and the KYC match and account-takeover answers computed from them.
//!
//! # Design
//!
//! * **Vocabulary** ([`attributes`]): one list of attribute names with the rule each value
//!   follows; provisioning validates against it strictly, back-end answers leniently.
//! * **Sources** ([`source`]): an [`source::AttributeSource`] trait with two kinds — the
//!   gateway's store (implemented in `mc-gateway`, which owns the store) and operator
//!   back-ends over HTTP ([`http`]: timeout, [`breaker`], [`cache`]). [`source::DataGateway`]
//!   asks them concurrently and merges per attribute by the configured precedence; a
//!   failing source only removes its own attributes.
//! * **Claims** ([`claims`]): the claim set of every scope (OIDC `profile`, `email`,
//!   `address`, `phone` for `mc_v1.1`; the identity products for `mc_v2.0`+ under both
//!   their v2 and `mc_di_v3.0` names), the `claims` request parameter, and the two answer
//!   shapes (`/userinfo`, `/premiuminfo`).
//! * **Release** ([`release`]): the single function that decides which claims may leave,
//!   taking consent into account.
//! * **KYC match** ([`kyc`]) and **ATP** ([`atp`]): pure functions over attributes.
//!
//! No HTTP server, no SQL: the gateway calls in with what it read.
//!
//! ```
//! use mc_core::scope::Scope;
//! use mc_datagw::claims::ClaimsRequest;
//! use mc_datagw::release::{Consent, ReleaseInput, releasable};
//! let granted = Scope::from_values(["openid", "mc_identity_phonenumber"]);
//! let released = releasable(ReleaseInput {
//!     granted: &granted,
//!     registered: &granted,
//!     requested: &ClaimsRequest::default(),
//!     consent: &Consent::NotTracked,
//! });
//! assert!(released.contains_key("phone_number"));
//! ```
#![forbid(unsafe_code)]

pub mod atp;
pub mod attributes;
pub mod breaker;
pub mod cache;
pub mod claims;
pub mod clock;
pub mod config;
pub mod http;
pub mod kyc;
pub mod release;
pub mod source;

pub use attributes::Attributes;
pub use config::DatagwConfig;
pub use source::{AttributeSource, DataGateway, Subject};
