//! The Access Gateway's per-day quota counters: one count per client per UTC day, kept in
//! the store so that every gateway process draws on the same quota.

use async_trait::async_trait;

use crate::StoreResult;

/// Per-client call counters.
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Counts one call of `client_id` on `day` (days since the epoch) if fewer than `limit`
    /// were counted, atomically in one statement: `Some(count after)`, or `None` when the
    /// quota is used up (nothing counted). Concurrent callers never count beyond `limit`.
    async fn take_daily_call(
        &self,
        client_id: &str,
        day: i64,
        limit: u64,
    ) -> StoreResult<Option<u64>>;
    /// Gives one counted call back (a call refused before it was attributed to the
    /// client, e.g. failed client authentication); never below zero.
    async fn return_daily_call(&self, client_id: &str, day: i64) -> StoreResult<()>;
    /// Calls counted for `client_id` on `day`.
    async fn daily_calls(&self, client_id: &str, day: i64) -> StoreResult<u64>;
    /// Forgets the counters of days before `before_day`; returns how many.
    async fn purge_daily_calls(&self, before_day: i64) -> StoreResult<u64>;
}
