//! The Discovery service's data (digest §2): operators, the service providers' discovery
//! registrations and their per-operator credentials, number ranges and ported numbers,
//! and mobile-data IP ranges.
//!
//! The store persists; `mc-discovery` keeps the lookup structures in memory, loads them
//! with [`DiscoveryStore::numbers_after`] (keyset pages, so ten million rows never sit in
//! one answer) and reloads when [`DiscoveryStore::discovery_generation`] changes: every
//! write bumps that counter in the same transaction, so another process (the CLI, a second
//! node) sees the change.
//!
//! Numbers are digits as integers: a prefix or an MSISDN never starts with `0` (E.164), so
//! the integer names exactly one digit string.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::StoreResult;

/// One mobile operator known to Discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    /// `serving_operator` on the wire: lowercase letters, digits, `_`, `-`.
    pub id: String,
    /// 3 digits.
    pub mcc: String,
    /// 2 or 3 digits.
    pub mnc: String,
    pub name: String,
    pub country: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Link relation (digest §2.5: `authorization`, `token`, `userinfo`, …) → href.
    pub links: BTreeMap<String, String>,
    /// The operator's RSA public key (a JWK, JSON text) that `subscriber_id`s are
    /// encrypted to; `None` when no key is known yet.
    pub encryption_jwk: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A service provider's registration at Discovery (its *discovery* credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryAppRecord {
    pub client_id: String,
    /// Lowercase hex SHA-256 of the secret.
    pub secret_hash: String,
    pub name: String,
    /// `applicationShortName` / `client_name` unless a credential names its own.
    pub short_name: String,
    /// Exact `Redirect_URL` values the application may use.
    pub redirect_uris: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
}

/// What an application uses at one operator (`response.client_id` / `client_secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCredentialRecord {
    pub app_id: String,
    pub operator_id: String,
    pub client_id: String,
    /// The secret sealed by the caller (Discovery must hand it out, so it cannot be hashed).
    pub client_secret_sealed: Vec<u8>,
    /// Overrides the application's short name at this operator.
    pub client_name: Option<String>,
    pub updated_at: i64,
}

/// A number-range prefix or a ported number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// A prefix of the numbering plan: every number starting with it.
    Range,
    /// One whole MSISDN served by another operator than its range says.
    Ported,
}

impl NumberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Range => "range",
            NumberKind::Ported => "ported",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "range" => Some(NumberKind::Range),
            "ported" => Some(NumberKind::Ported),
            _ => None,
        }
    }
}

/// One row of the number tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberEntry {
    pub kind: NumberKind,
    /// The digits as an integer (no leading zero, at most 15 digits).
    pub number: u64,
    pub operator_id: String,
}

/// A mobile-data IP range of an operator (for `X-Source-IP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRangeRecord {
    /// Canonical CIDR text (`10.64.0.0/10`, `2001:db8::/32`), validated by the caller.
    pub cidr: String,
    pub operator_id: String,
}

/// Change counters, so that a reader can tell what to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiscoveryGeneration {
    /// Increased by every discovery write.
    pub all: i64,
    /// Increased by the writes that change the number tables (including deleting an
    /// operator, which removes its numbers).
    pub numbers: i64,
}

/// Discovery's persistence. Every write bumps the generation in the same transaction.
#[async_trait]
pub trait DiscoveryStore: Send + Sync {
    /// `Conflict` if the id or the MCC/MNC pair is taken.
    async fn insert_operator(&self, o: &OperatorRecord) -> StoreResult<()>;
    /// Replaces every field but `id` and `created_at`; `NotFound` if absent, `Conflict` if
    /// the new MCC/MNC belongs to another operator.
    async fn update_operator(&self, o: &OperatorRecord) -> StoreResult<()>;
    async fn get_operator(&self, id: &str) -> StoreResult<Option<OperatorRecord>>;
    async fn list_operators(&self) -> StoreResult<Vec<OperatorRecord>>;
    /// Removes an operator with its credentials, numbers and IP ranges; `NotFound` if absent.
    async fn delete_operator(&self, id: &str) -> StoreResult<()>;

    /// `Conflict` if the client id exists.
    async fn insert_discovery_app(&self, a: &DiscoveryAppRecord) -> StoreResult<()>;
    async fn get_discovery_app(&self, client_id: &str) -> StoreResult<Option<DiscoveryAppRecord>>;
    async fn list_discovery_apps(&self) -> StoreResult<Vec<DiscoveryAppRecord>>;
    /// Replaces every field but `client_id` and `created_at`; `NotFound` if absent.
    async fn update_discovery_app(&self, a: &DiscoveryAppRecord) -> StoreResult<()>;
    /// Removes an application with its credentials; `NotFound` if absent.
    async fn delete_discovery_app(&self, client_id: &str) -> StoreResult<()>;

    /// Inserts or replaces the application's credentials at one operator; `NotFound` when
    /// the application or the operator does not exist.
    async fn put_operator_credential(&self, c: &OperatorCredentialRecord) -> StoreResult<()>;
    async fn get_operator_credential(
        &self,
        app_id: &str,
        operator_id: &str,
    ) -> StoreResult<Option<OperatorCredentialRecord>>;
    async fn list_operator_credentials(
        &self,
        app_id: &str,
    ) -> StoreResult<Vec<OperatorCredentialRecord>>;
    /// True when there was one.
    async fn delete_operator_credential(
        &self,
        app_id: &str,
        operator_id: &str,
    ) -> StoreResult<bool>;

    /// Inserts or replaces `entries` (a batch: all or nothing), tagging them with
    /// `import_id`; `NotFound` when one names an unknown operator.
    async fn upsert_numbers(&self, entries: &[NumberEntry], import_id: i64) -> StoreResult<()>;
    /// True when there was one.
    async fn delete_number(&self, kind: NumberKind, number: u64) -> StoreResult<bool>;
    /// Up to `limit` entries of `kind` with `number > after` (all when `None`), ascending.
    async fn numbers_after(
        &self,
        kind: NumberKind,
        after: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<NumberEntry>>;
    /// Ends a replacing import: removes every entry of `kind` not tagged `import_id`.
    /// Returns how many.
    async fn purge_numbers_except(&self, kind: NumberKind, import_id: i64) -> StoreResult<u64>;
    async fn count_numbers(&self, kind: NumberKind) -> StoreResult<u64>;

    /// Inserts or replaces a range; `NotFound` for an unknown operator.
    async fn put_ip_range(&self, r: &IpRangeRecord) -> StoreResult<()>;
    /// True when there was one.
    async fn delete_ip_range(&self, cidr: &str) -> StoreResult<bool>;
    async fn list_ip_ranges(&self) -> StoreResult<Vec<IpRangeRecord>>;

    /// The change counters.
    async fn discovery_generation(&self) -> StoreResult<DiscoveryGeneration>;
}
