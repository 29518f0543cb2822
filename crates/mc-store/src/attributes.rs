//! Subscriber attributes: what the Data Gateway's local source releases (identity claims,
//! the values a KYC match compares) and the provisioning data account-takeover protection
//! answers from (SIM change, lost/stolen, account state).
//!
//! The store keeps one JSON object per subscriber and does not interpret it: the vocabulary
//! and its validation belong to `mc-datagw`, so adding an attribute needs no migration.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::StoreResult;

/// The attribute document of one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributesRecord {
    pub subscriber_id: String,
    /// Attribute name → value, as validated by the caller.
    pub attributes: Map<String, Value>,
    pub updated_at: i64,
}

/// Per-subscriber attribute documents.
#[async_trait]
pub trait AttributeStore: Send + Sync {
    /// The subscriber's attributes, `None` when none were provisioned.
    async fn get_attributes(&self, subscriber_id: &str) -> StoreResult<Option<AttributesRecord>>;
    /// Replaces the subscriber's whole document (inserting it on first use); `NotFound` when
    /// no subscriber has that id. Merging a partial update is the caller's read-modify-write.
    async fn put_attributes(&self, r: &AttributesRecord) -> StoreResult<()>;
    /// Removes the document; true when there was one.
    async fn delete_attributes(&self, subscriber_id: &str) -> StoreResult<bool>;
}
