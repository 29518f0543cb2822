//! The Token Manager's first grant: `authorization_code` (RFC 6749 §4.1.3, digest §5–§6).

use mc_core::McError;
use mc_core::id_token::{IdTokenClaims, at_hash, displayed_data, hashed_login_hint};
use mc_core::msisdn::Msisdn;
use mc_core::pkce::{CodeChallenge, PkceVerified, verify_code_verifier};
use mc_core::scope::Scope;
use mc_core::token_request::{ClientAuthenticated, CodeGrant};
use mc_store::{AccessTokenRecord, AuthSession, ClientRecord, Redemption};
use serde::Serialize;

use crate::error::store_failure;
use crate::state::{AppState, now, random_token, sha256_hex};

/// The token response (digest §5.2).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u32,
    pub id_token: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

const BAD_CODE: McError =
    McError::InvalidGrant("Authorization code doesn't exist or is invalid for the client");

/// Redeems a code. A replayed code revokes every token issued from it (RFC 6749 §4.1.2).
pub async fn exchange_code(
    s: &AppState,
    client: &ClientAuthenticated,
    record: &ClientRecord,
    grant: CodeGrant,
) -> Result<TokenResponse, McError> {
    let t = now();
    let session = match s
        .store
        .redeem_code(&sha256_hex(&grant.code), t)
        .await
        .map_err(store_failure)?
    {
        Redemption::Fresh(session) => {
            crate::telemetry::note_session(&session.id);
            session
        }
        Redemption::Replayed { session_id } => {
            crate::telemetry::note_session(&session_id);
            let revoked = s
                .store
                .revoke_tokens_of_session(&session_id)
                .await
                .map_err(store_failure)?;
            tracing::warn!(session = %session_id, revoked, "authorization code replayed; tokens revoked");
            return Err(BAD_CODE);
        }
        Redemption::Unknown => return Err(BAD_CODE),
    };
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
    issue_tokens(s, record, &session, t, None).await
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
    let subscriber_id = session.subscriber_id.clone().ok_or(McError::ServerError)?;
    let subscriber = s
        .store
        .get_subscriber(&subscriber_id)
        .await
        .map_err(store_failure)?
        .ok_or(BAD_CODE)?;
    let msisdn = Msisdn::parse(&subscriber.msisdn).ok_or(McError::ServerError)?;
    let pcr = s
        .store
        .pcr_for(&subscriber.id, &record.sector, &new_pcr())
        .await
        .map_err(store_failure)?;
    let access_token = random_token();
    let lifetimes = &s.config.tokens;
    s.store
        .insert_access_token(&AccessTokenRecord {
            token_hash: sha256_hex(&access_token),
            session_id: Some(session.id.clone()),
            client_id: record.client_id.clone(),
            subscriber_id: Some(subscriber.id.clone()),
            sub: Some(pcr.clone()),
            scope: session.scope.clone(),
            expires_at: t + i64::from(lifetimes.access_token_secs),
        })
        .await
        .map_err(store_failure)?;
    let scope = Scope::parse(&session.scope).unwrap_or_default();
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
    let signer = s.clone();
    // RSA signing is the CPU floor of a login: keep it off the async workers.
    let id_token = tokio::task::spawn_blocking(move || signer.keys.sign_jwt(&claims))
        .await
        .map_err(|_| McError::ServerError)?
        .map_err(|e| {
            tracing::error!(error = %e, "id_token signing failed");
            McError::ServerError
        })?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetimes.access_token_secs,
        id_token,
        scope: session.scope.clone(),
        correlation_id: session.correlation_id.clone(),
    })
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
