//! The Token Manager's grants: `authorization_code` (RFC 6749 §4.1.3, digest §5–§6), the
//! tokens of an approved back-channel request, and `client_credentials` (RFC 6749 §4.4,
//! digest §8.4). Access tokens are opaque and stored by SHA-256 hash only.

use mc_core::McError;
use mc_core::grants;
use mc_core::id_token::{IdTokenClaims, at_hash, displayed_data, hashed_login_hint};
use mc_core::msisdn::Msisdn;
use mc_core::pkce::{CodeChallenge, PkceVerified, verify_code_verifier};
use mc_core::scope::Scope;
use mc_core::token_request::{ClientAuthenticated, CodeGrant, RefreshGrant, refreshed_scope};
use mc_store::{
    AccessTokenRecord, AuthSession, ClientRecord, Redemption, RefreshTokenRecord, Rotation,
};
use serde::Serialize;

use crate::error::store_failure;
use crate::state::{AppState, now, random_token, sha256_hex};

/// The token response (digest §5.2).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u32,
    /// Absent for `client_credentials` (no subscriber, RFC 6749 §4.4.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

const BAD_CODE: McError =
    McError::InvalidGrant("Authorization code doesn't exist or is invalid for the client");

/// Redeems a code. A replayed code revokes every token issued from it (RFC 6749 §4.1.2).
///
/// The common case costs one commit: the session is read, checked and its tokens built
/// first, then the code is redeemed together with the tokens' insert
/// (`redeem_code_issuing`). A code that is not redeemable at the read (a replay, unknown,
/// expired), or stopped being so in between (a concurrent redemption won), takes the
/// general path: `redeem_code` tells a replay from an unknown code.
pub async fn exchange_code(
    s: &AppState,
    client: &ClientAuthenticated,
    record: &ClientRecord,
    grant: CodeGrant,
) -> Result<TokenResponse, McError> {
    let t = now();
    let code_hash = sha256_hex(&grant.code);
    let readable = s
        .store
        .find_redeemable(&code_hash, t)
        .await
        .map_err(store_failure)?;
    if let Some(session) = readable {
        crate::telemetry::note_session(&session.id);
        if let Err(refused) = check_code_binding(&session, client, &grant) {
            // A code presented wrongly is spent all the same.
            redeem(s, &code_hash, t).await?;
            return Err(refused);
        }
        let tokens = prepare_tokens(s, record, &session, t, None).await?;
        let redeemed = s
            .store
            .redeem_code_issuing(&session.id, t, &tokens.access, tokens.refresh.as_ref())
            .await
            .map_err(store_failure)?;
        if redeemed {
            return tokens.signed(s, &session);
        }
    }
    let session = redeem(s, &code_hash, t).await?;
    check_code_binding(&session, client, &grant)?;
    issue_tokens(s, record, &session, t, None).await
}

/// `redeem_code`: the session, now consumed; a replay revokes what the code's first
/// redemption issued.
async fn redeem(s: &AppState, code_hash: &str, t: i64) -> Result<AuthSession, McError> {
    match s
        .store
        .redeem_code(code_hash, t)
        .await
        .map_err(store_failure)?
    {
        Redemption::Fresh(session) => {
            crate::telemetry::note_session(&session.id);
            Ok(*session)
        }
        Redemption::Replayed { session_id } => {
            crate::telemetry::note_session(&session_id);
            let revoked = s
                .store
                .revoke_tokens_of_session(&session_id)
                .await
                .map_err(store_failure)?
                + s.store
                    .revoke_refresh_of_session(&session_id)
                    .await
                    .map_err(store_failure)?;
            tracing::warn!(session = %session_id, revoked, "authorization code replayed; tokens revoked");
            Err(BAD_CODE)
        }
        Redemption::Unknown => Err(BAD_CODE),
    }
}

/// The code was issued to this client, for this redirect URI, and PKCE holds.
fn check_code_binding(
    session: &AuthSession,
    client: &ClientAuthenticated,
    grant: &CodeGrant,
) -> Result<(), McError> {
    if session.client_id != client.client_id() {
        return Err(BAD_CODE);
    }
    if session.redirect_uri != grant.redirect_uri {
        return Err(McError::InvalidGrant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let _pkce: Option<PkceVerified> = match &session.code_challenge {
        Some(c) => Some(verify_code_verifier(
            &CodeChallenge::from_stored(c.clone()),
            grant.code_verifier.as_deref(),
        )?),
        // A verifier without a challenge is a PKCE downgrade attempt (RFC 9700 §2.1.1).
        None if grant.code_verifier.is_some() => {
            return Err(McError::InvalidGrant(
                "code_verifier sent but no code_challenge was",
            ));
        }
        None => None,
    };
    Ok(())
}

/// Issues the access token and id_token for an approved session (front- or back-channel).
/// `auth_req_id` is set for tokens delivered by notification (CIBA push, Mobile Connect SI):
/// CIBA Core §10.3.1 puts it into the id_token.
pub async fn issue_tokens(
    s: &AppState,
    record: &ClientRecord,
    session: &AuthSession,
    t: i64,
    auth_req_id: Option<&str>,
) -> Result<TokenResponse, McError> {
    let tokens = prepare_tokens(s, record, session, t, auth_req_id).await?;
    match &tokens.refresh {
        Some(refresh) => s.store.insert_token_pair(&tokens.access, refresh).await,
        None => s.store.insert_access_token(&tokens.access).await,
    }
    .map_err(store_failure)?;
    tokens.signed(s, session)
}

/// A session's tokens, built but neither stored nor signed.
struct PreparedTokens {
    access_token: String,
    access: AccessTokenRecord,
    refresh_token: Option<String>,
    refresh: Option<RefreshTokenRecord>,
    claims: IdTokenClaims,
}

impl PreparedTokens {
    /// The token response, with the id_token signed (once the tokens are stored).
    fn signed(self, s: &AppState, session: &AuthSession) -> Result<TokenResponse, McError> {
        // Signed on this worker: see `KeyRing::sign_jwt`.
        let id_token = s.keys.sign_jwt(&self.claims).map_err(|e| {
            tracing::error!(error = %e, "id_token signing failed");
            McError::ServerError
        })?;
        Ok(TokenResponse {
            access_token: self.access_token,
            token_type: "Bearer",
            expires_in: s.config.tokens.access_token_secs,
            id_token: Some(id_token),
            refresh_token: self.refresh_token,
            scope: self.access.scope,
            correlation_id: session.correlation_id.clone(),
        })
    }
}

/// Reads what a session's tokens name (the subscriber, its PCR for the client's sector,
/// the consented scope) and builds them.
async fn prepare_tokens(
    s: &AppState,
    record: &ClientRecord,
    session: &AuthSession,
    t: i64,
    auth_req_id: Option<&str>,
) -> Result<PreparedTokens, McError> {
    let subscriber_id = session
        .subscriber_id
        .as_deref()
        .ok_or(McError::ServerError)?;
    let (subscriber, pcr) = s
        .store
        .subscriber_and_pcr(subscriber_id, &record.sector, &new_pcr())
        .await
        .map_err(store_failure)?
        .ok_or(BAD_CODE)?;
    let msisdn = Msisdn::parse(&subscriber.msisdn).ok_or(McError::ServerError)?;
    // Attribute scopes only as far as the subscriber consented (docs/decisions.md "Consent").
    let granted =
        crate::consent::granted_scope(s, &subscriber.id, &record.client_id, &session.scope, t)
            .await?;
    let access_token = random_token();
    let lifetimes = &s.config.tokens;
    let scope = Scope::parse(&granted).unwrap_or_default();
    let access = AccessTokenRecord {
        token_hash: sha256_hex(&access_token),
        session_id: Some(session.id.clone()),
        client_id: record.client_id.clone(),
        subscriber_id: Some(subscriber.id.clone()),
        sub: Some(pcr.clone()),
        scope: granted.clone(),
        expires_at: t + i64::from(lifetimes.access_token_secs),
        issued_at: t,
        family_id: None,
        claims: session.claims.clone(),
    };
    // A refresh token only for `offline_access` granted to a client with the grant
    // (docs/decisions.md, "Refresh tokens").
    let (refresh_token, refresh) = if scope.contains("offline_access")
        && record
            .grant_types
            .iter()
            .any(|g| g == grants::REFRESH_TOKEN)
    {
        let refresh_token = random_token();
        let refresh = RefreshTokenRecord {
            token_hash: sha256_hex(&refresh_token),
            family_id: random_token(),
            client_id: record.client_id.clone(),
            session_id: Some(session.id.clone()),
            subscriber_id: Some(subscriber.id.clone()),
            sub: Some(pcr.clone()),
            scope: granted.clone(),
            issued_at: t,
            expires_at: t + i64::from(lifetimes.refresh_token_secs),
        };
        (Some(refresh_token), Some(refresh))
    } else {
        (None, None)
    };
    let claims = IdTokenClaims {
        iss: s.config.issuer.clone(),
        sub: pcr,
        aud: vec![record.client_id.clone()],
        azp: record.client_id.clone(),
        exp: t + i64::from(lifetimes.id_token_secs),
        iat: t,
        auth_time: session.auth_time.unwrap_or(t),
        nonce: session.nonce.clone(),
        acr: session.acr.clone().unwrap_or_else(|| "2".into()),
        amr: session.amr.clone(),
        at_hash: at_hash(&access_token),
        hashed_login_hint: hashed_login_hint(&msisdn),
        displayed_data: scope.is_authz().then(|| {
            displayed_data(
                &session.client_name,
                session.context.as_deref(),
                session.binding_message.as_deref(),
            )
        }),
        correlation_id: session.correlation_id.clone(),
        auth_req_id: auth_req_id.map(str::to_owned),
        jti: random_token(),
    };
    Ok(PreparedTokens {
        access_token,
        access,
        refresh_token,
        refresh,
        claims,
    })
}

/// `client_credentials`: an access token for the client itself — no subscriber, no
/// session, no id_token, no refresh token (RFC 6749 §4.4.3). `scope` was checked against
/// the registration (`check_client_credentials_grant`).
pub async fn client_credentials(
    s: &AppState,
    client: &ClientAuthenticated,
    scope: &Scope,
    correlation_id: Option<String>,
) -> Result<TokenResponse, McError> {
    let t = now();
    let access_token = random_token();
    let lifetime = s.config.tokens.client_credentials_secs;
    s.store
        .insert_access_token(&AccessTokenRecord {
            token_hash: sha256_hex(&access_token),
            session_id: None,
            client_id: client.client_id().to_owned(),
            subscriber_id: None,
            sub: None,
            scope: scope.to_string(),
            expires_at: t + i64::from(lifetime),
            issued_at: t,
            family_id: None,
            claims: None,
        })
        .await
        .map_err(store_failure)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime,
        id_token: None,
        refresh_token: None,
        scope: scope.to_string(),
        correlation_id,
    })
}

/// The `claims` parameter of the login a refresh token came from (its session is kept while
/// the family's tokens refer to it; gone, nothing was asked).
async fn claims_of_session(
    s: &AppState,
    session_id: Option<&str>,
) -> Result<Option<String>, McError> {
    let Some(id) = session_id else {
        return Ok(None);
    };
    Ok(s.store
        .get_session(id)
        .await
        .map_err(store_failure)?
        .and_then(|session| session.claims))
}

const BAD_REFRESH: McError = McError::InvalidGrant("Refresh token is invalid");

/// `refresh_token` (RFC 6749 §6): the presented token is rotated — a new refresh token and
/// a new access token in the same family — atomically in the store. A token that is not
/// active any more (rotated, revoked, expired) revokes its family: a rotated one presented
/// again means two parties hold it (RFC 9700 §4.14.2). No id_token is issued on refresh
/// (the subscriber did not authenticate again).
pub async fn refresh(
    s: &AppState,
    client: &ClientAuthenticated,
    record: &ClientRecord,
    grant: RefreshGrant,
    correlation_id: Option<String>,
) -> Result<TokenResponse, McError> {
    let t = now();
    let old_hash = sha256_hex(&grant.refresh_token);
    let current = s
        .store
        .find_refresh_token(&old_hash, t)
        .await
        .map_err(store_failure)?;
    let Some(current) = current.filter(|r| r.client_id == client.client_id()) else {
        let revoked = s
            .store
            .revoke_refresh_family(&old_hash, client.client_id())
            .await
            .map_err(store_failure)?;
        if revoked {
            tracing::warn!(client = %record.client_id, "inactive refresh token presented; its family is revoked");
        }
        return Err(BAD_REFRESH);
    };
    let original = Scope::parse(&current.scope).unwrap_or_default();
    let scope = refreshed_scope(&original, grant.scope.as_ref())?;
    let lifetimes = &s.config.tokens;
    let refresh_token = random_token();
    let access_token = random_token();
    let next = RefreshTokenRecord {
        token_hash: sha256_hex(&refresh_token),
        issued_at: t,
        expires_at: t + i64::from(lifetimes.refresh_token_secs),
        ..current.clone()
    };
    let next_access = AccessTokenRecord {
        token_hash: sha256_hex(&access_token),
        session_id: current.session_id.clone(),
        client_id: current.client_id.clone(),
        subscriber_id: current.subscriber_id.clone(),
        sub: current.sub.clone(),
        scope: scope.to_string(),
        expires_at: t + i64::from(lifetimes.access_token_secs),
        issued_at: t,
        family_id: Some(current.family_id.clone()),
        claims: claims_of_session(s, current.session_id.as_deref()).await?,
    };
    match s
        .store
        .rotate_refresh_token(&old_hash, client.client_id(), &next, &next_access, t)
        .await
        .map_err(store_failure)?
    {
        Rotation::Rotated => Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: lifetimes.access_token_secs,
            id_token: None,
            refresh_token: Some(refresh_token),
            scope: scope.to_string(),
            correlation_id,
        }),
        Rotation::Reused { family_id } => {
            tracing::warn!(client = %record.client_id, family = %family_id, "refresh token reused; family revoked");
            Err(BAD_REFRESH)
        }
        Rotation::Invalid => Err(BAD_REFRESH),
    }
}

/// A PCR: a random 128-bit identifier formatted as an upper-case GUID, like the reference
/// OP's (digest §7). Never derived from the MSISDN.
fn new_pcr() -> String {
    let mut b = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return random_token();
    }
    let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
