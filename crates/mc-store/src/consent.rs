//! Consent: which identity attributes a subscriber agreed to release to which service
//! provider, and which service providers know the subscriber at all (seed 000: nothing is
//! shared without consent).
//!
//! One record per (subscriber, client). It is created by the first approved login of the
//! subscriber at that client (`first_seen`, even for an authentication-only login, so that
//! the subscriber's self-service page lists every service provider that holds a PCR for
//! them), and holds the *consent items* given so far: attribute scope names
//! (`mc_identity_phonenumber`, `email`, …) and, for claims asked individually through the
//! `claims` parameter, `claim:<name>` (see `mc_core::consent`). Consent accumulates: a later
//! login that asks for more adds to the set. Revoking empties the set and revokes every
//! token of that client for that subscriber, in one transaction.

use async_trait::async_trait;

use crate::StoreResult;

/// Where the subscriber gave consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentChannel {
    /// On the authentication device (the app-push challenge lists the attributes).
    Phone,
    /// On the gateway's consent page, in the browser that started the login.
    Browser,
}

impl ConsentChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentChannel::Phone => "phone",
            ConsentChannel::Browser => "browser",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "phone" => Some(ConsentChannel::Phone),
            "browser" => Some(ConsentChannel::Browser),
            _ => None,
        }
    }
}

/// What one service provider may know about one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub subscriber_id: String,
    pub client_id: String,
    /// The consent items given and not revoked, sorted and without duplicates. Empty: the
    /// client authenticates the subscriber but receives no attributes.
    pub scopes: Vec<String>,
    /// When the client first learned the subscriber (its first approved login there).
    pub first_seen: i64,
    /// When consent was last given, and where; `None` if never given.
    pub given_at: Option<i64>,
    pub channel: Option<ConsentChannel>,
    /// When the subscriber last revoked it (cleared by a later consent).
    pub revoked_at: Option<i64>,
}

impl ConsentRecord {
    /// Whether the subscriber consented to releasing `item` (a scope name or `claim:<name>`).
    pub fn covers(&self, item: &str) -> bool {
        self.scopes.iter().any(|s| s == item)
    }

    /// Whether every item of `items` is covered.
    pub fn covers_all<'a>(&self, items: impl IntoIterator<Item = &'a str>) -> bool {
        items.into_iter().all(|i| self.covers(i))
    }
}

/// Consent records (the privacy promise's store).
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Notes that `client_id` knows `subscriber_id` (creating the record with `first_seen =
    /// now` if absent) and adds `scopes` to the consent items. When `scopes` is not empty,
    /// `given_at` becomes `now`, `channel` becomes `channel` and `revoked_at` is cleared;
    /// with empty `scopes` an existing record is left as it is. Concurrent calls for the same
    /// pair never lose an item. `NotFound` if the subscriber or client does not exist.
    /// Returns the record as stored.
    async fn record_consent(
        &self,
        subscriber_id: &str,
        client_id: &str,
        scopes: &[String],
        channel: ConsentChannel,
        now: i64,
    ) -> StoreResult<ConsentRecord>;
    /// The record of one (subscriber, client) pair, if any.
    async fn consent_for(
        &self,
        subscriber_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ConsentRecord>>;
    /// Every record of a subscriber, oldest `first_seen` first.
    async fn list_consents(&self, subscriber_id: &str) -> StoreResult<Vec<ConsentRecord>>;
    /// Withdraws consent: the items are emptied, `revoked_at = now`, and every unrevoked
    /// token (access and refresh) of `client_id` issued for `subscriber_id` is revoked, all
    /// in one transaction. Returns the number of tokens revoked; `NotFound` if there is no
    /// record for the pair.
    async fn revoke_consent(
        &self,
        subscriber_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<u64>;
}

/// Merges `add` into `have` (sorted, deduplicated). Backends use it so that every backend
/// stores the same list.
pub fn merge_items(have: &[String], add: &[String]) -> Vec<String> {
    let mut all: Vec<String> = have.iter().chain(add.iter()).cloned().collect();
    all.sort();
    all.dedup();
    all
}
