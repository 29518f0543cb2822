//! The Token Manager's store: refresh tokens (stored by hash, rotated on every use, a
//! reused one revoking its whole family) and the revocation of single tokens (RFC 7009).
//!
//! A *family* is every refresh and access token descending from one grant (one login):
//! the first pair is inserted by [`TokenManagerStore::insert_token_pair`], each rotation
//! adds one. Presenting a refresh token that was already rotated is the signature of a
//! stolen token (RFC 9700 §4.14.2): the family is revoked, so neither the thief nor the
//! client keeps access.

use async_trait::async_trait;

use crate::{AccessTokenRecord, StoreResult};

/// An issued refresh token (`token_hash` is the SHA-256 of the token, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    /// The login the family comes from (for `acr`/`amr`); not a foreign key.
    pub session_id: Option<String>,
    pub subscriber_id: Option<String>,
    /// The PCR the tokens are about.
    pub sub: Option<String>,
    /// The scope originally granted; refreshed access tokens may narrow it.
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was active: it is now rotated, and the new pair is stored.
    Rotated,
    /// It had been rotated before: the family (refresh and access tokens) is revoked.
    Reused { family_id: String },
    /// Unknown, of another client, expired or revoked: nothing changed.
    Invalid,
}

/// Refresh tokens and token revocation.
#[async_trait]
pub trait TokenManagerStore: Send + Sync {
    /// Inserts an access token and the refresh token issued with it, in one transaction;
    /// the access token joins the refresh token's family (`family_id` is overwritten).
    async fn insert_token_pair(
        &self,
        access: &AccessTokenRecord,
        refresh: &RefreshTokenRecord,
    ) -> StoreResult<()>;
    /// The refresh token if it is active (not rotated or revoked) and unexpired at `now`.
    async fn find_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<RefreshTokenRecord>>;
    /// Presents `old_hash` for `client_id`, atomically: if it is active and unexpired it
    /// becomes rotated and `next` (with `next_access` in its family) is inserted —
    /// `Rotated`; if it was rotated already the whole family is revoked — `Reused`;
    /// otherwise (unknown, another client's, expired, revoked) `Invalid`. Of concurrent
    /// presentations of one active token exactly one rotates it; the next finds it rotated
    /// and revokes the family (any later one finds it revoked).
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        client_id: &str,
        next: &RefreshTokenRecord,
        next_access: &AccessTokenRecord,
        now: i64,
    ) -> StoreResult<Rotation>;
    /// Revokes one access token of `client_id`. False when there is none such (unknown,
    /// another client's, already revoked).
    async fn revoke_access_token(&self, token_hash: &str, client_id: &str) -> StoreResult<bool>;
    /// Revokes the family of one refresh token of `client_id` (every refresh and access
    /// token in it), whatever the token's state. False when the token is unknown or
    /// another client's.
    async fn revoke_refresh_family(&self, token_hash: &str, client_id: &str) -> StoreResult<bool>;
    /// Revokes every refresh token issued from one login (a replayed authorization code,
    /// RFC 6749 §4.1.2) and the access tokens of their families. Returns how many refresh
    /// tokens it revoked.
    async fn revoke_refresh_of_session(&self, session_id: &str) -> StoreResult<u64>;
}
