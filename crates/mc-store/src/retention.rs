//! Retention: deleting what the gateway no longer needs (privacy principle 4: kept no
//! longer than its purpose). Every purge deletes at most `limit` rows per call, oldest
//! first, through an index, so one call holds the writer briefly; the caller loops.
//!
//! `before` is a cutoff time (Unix seconds): rows whose relevant time is `<= before` go.
//! The caller computes it as `now - age`.

use async_trait::async_trait;

use crate::StoreResult;

/// What a purge deletes (also the `kind` label of the purge metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurgeKind {
    /// Login sessions of both channels (with their codes and back-channel rows).
    Sessions,
    /// Access tokens, revoked or not.
    AccessTokens,
    /// Refresh tokens, whatever their state (active, rotated, revoked).
    RefreshTokens,
    /// Remembered client-assertion `jti`s.
    AssertionJtis,
    /// Notifications nobody has worked on.
    Outbox,
}

impl PurgeKind {
    /// In the order a purge round runs them: tokens and notifications before the sessions
    /// they name.
    pub const ALL: [PurgeKind; 5] = [
        PurgeKind::AccessTokens,
        PurgeKind::RefreshTokens,
        PurgeKind::Outbox,
        PurgeKind::Sessions,
        PurgeKind::AssertionJtis,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PurgeKind::Sessions => "sessions",
            PurgeKind::AccessTokens => "access_tokens",
            PurgeKind::RefreshTokens => "refresh_tokens",
            PurgeKind::AssertionJtis => "assertion_jtis",
            PurgeKind::Outbox => "outbox",
        }
    }
}

/// Bounded deletes of finished data.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes up to `limit` sessions (front- and back-channel) with `expires_at <= before`,
    /// whatever their status (denied, consumed, approved but never collected, a code never
    /// redeemed, a stale `pending` front-channel login), together with their code and their
    /// back-channel row. Kept regardless of age: a `pending` back-channel request (it is
    /// ended by `expire_backchannel`, which notifies its client), and a session that an
    /// access token or an outbox item still names (purged with them first). Deleting a stale
    /// `pending` session frees its subscriber for a new login. Returns the number deleted.
    async fn purge_sessions(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` access tokens with `expires_at <= before` (revoked or not: a
    /// revoked token is also expired by then).
    async fn purge_access_tokens(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` refresh tokens with `expires_at <= before`, whatever their state
    /// (once purged, a rotated token presented again is refused as unknown instead of
    /// revoking its family as a reuse: the retention age is how long reuse stays detectable
    /// after expiry).
    async fn purge_refresh_tokens(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` remembered assertion `jti`s with `expires_at <= before`.
    async fn purge_assertion_jtis(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` outbox items whose next attempt was due at or before `before`
    /// and that nobody holds a live lease on at `now` (the worker gives up on items long
    /// before; this catches work abandoned while no worker ran).
    async fn purge_outbox(&self, before: i64, now: i64, limit: u32) -> StoreResult<u64>;
}
