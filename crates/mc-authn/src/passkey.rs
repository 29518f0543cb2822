//! The passkey authenticator (FIDO2 / WebAuthn, LoA3 with user verification) and its two
//! ceremonies, run by the relying party of the `webauthn-rs` crate.
//!
//! Unlike the other authenticators, the passkey is used in the *browser that started the
//! login*, not on the phone. [`Passkeys::start`] therefore delivers nothing: it stores an
//! *offer* for the session, which the gateway's waiting page looks for; the page then asks
//! for assertion options ([`Passkeys::start_login`]), runs `navigator.credentials.get()`,
//! and posts the assertion back ([`Passkeys::finish_login`]), which verifies it and approves
//! the session through [`crate::answer::answer_challenge`] (take-once, like every channel).
//!
//! Enrolment ([`Passkeys::start_registration`], [`Passkeys::finish_registration`]) is for a
//! subscriber logged in on the self-service page (a phone login); the first passkey gives
//! the subscriber the [`CAPABILITY`] the router's eligibility check looks for.
//!
//! Every node may run any step: the ceremony state (challenge, allowed credentials) lives in
//! the store between the requests and is taken once, so a replayed response finds nothing.
//! User verification is required in both ceremonies (the PIN or biometric of the
//! authenticator), which is what makes a passkey an LoA3 method on its own.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_core::msisdn::Msisdn;
use mc_store::{
    CeremonyKind, CeremonyRecord, DynStore, PasskeyRecord, SessionStatus, StoreError,
    SubscriberRecord,
};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::answer::{Answer, AnswerContext, AnswerOutcome, PinPolicy, answer_challenge};
use crate::authenticator::{Authenticator, Challenge, Eligibility};
use crate::hub::Hub;

/// The capability of a subscriber with at least one passkey (configuration name too).
pub const CAPABILITY: &str = "passkey";

/// The `amr` of a passkey login: FIDO with user verification (see docs/decisions.md).
pub const AMR: &str = "FIDO_UV";

/// How long a registration ceremony (and at most an assertion) may take.
pub const CEREMONY_SECS: i64 = 300;

/// Upper bound of a credential response we parse (a few KB in practice).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a ceremony step was refused. Each maps to one clear 4xx answer at the gateway,
/// except [`PasskeyError::Server`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasskeyError {
    /// The body is not a WebAuthn credential response (bad JSON, missing fields, too big).
    #[error("the credential response is malformed")]
    Malformed,
    /// Unknown, expired, or already used ceremony (a replay finds nothing), or one of
    /// another subscriber or login.
    #[error("no such ceremony: unknown, expired or already used")]
    NoCeremony,
    /// The response did not verify: wrong challenge, origin or signature, or no user
    /// verification.
    #[error("the credential did not verify")]
    Rejected,
    /// The assertion names a credential that is not one of this subscriber's passkeys.
    #[error("unknown credential")]
    UnknownCredential,
    /// The signature counter did not grow: a possibly cloned authenticator.
    #[error("the authenticator's counter went backwards")]
    PossibleClone,
    /// The credential id is registered already.
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    /// The login is not waiting for a passkey (not offered, answered, or expired).
    #[error("this login is not waiting for a passkey")]
    NotOffered,
    /// The subscriber has no passkey.
    #[error("no passkey is registered")]
    NoPasskey,
    /// Store or relying-party failure; logged where it happened.
    #[error("server error")]
    Server,
}

fn store_failure(e: StoreError) -> PasskeyError {
    tracing::error!(error = %e, "store failure in a passkey ceremony");
    PasskeyError::Server
}

/// The relying party: the WebAuthn configuration with the store it keeps state in. It is
/// also the `passkey` [`Authenticator`].
pub struct Passkeys {
    webauthn: Webauthn,
    store: DynStore,
    hub: Hub,
    policy: PinPolicy,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys").finish_non_exhaustive()
    }
}

/// The relying party id and origin of an issuer: its host and scheme://host:port. WebAuthn
/// refuses IP addresses as RP ids, so an issuer on `127.0.0.1` cannot offer passkeys (use
/// `localhost` or a domain name).
pub fn relying_party(issuer: &str) -> Result<(String, Url), String> {
    let url = Url::parse(issuer).map_err(|e| format!("issuer {issuer:?}: {e}"))?;
    let Some(domain) = url.domain() else {
        return Err(format!(
            "passkeys need an issuer on a domain name (WebAuthn refuses IP addresses), not {issuer:?}"
        ));
    };
    let domain = domain.to_owned();
    let origin = Url::parse(&url.origin().ascii_serialization())
        .map_err(|e| format!("issuer {issuer:?}: {e}"))?;
    Ok((domain, origin))
}

impl Passkeys {
    /// The relying party for `issuer` (see [`relying_party`]).
    pub fn new(
        issuer: &str,
        store: DynStore,
        hub: Hub,
        policy: PinPolicy,
    ) -> Result<Arc<Self>, String> {
        let (rp_id, origin) = relying_party(issuer)?;
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| b.rp_name("Mobile Connect").build())
            .map_err(|e| format!("passkeys: relying party {rp_id}: {e}"))?;
        Ok(Arc::new(Passkeys {
            webauthn,
            store,
            hub,
            policy,
        }))
    }

    // -----------------------------------------------------------------------------------
    // enrolment

    /// Starts enrolling a passkey for `subscriber`: the options for
    /// `navigator.credentials.create()` and the ceremony id to send back with the result.
    pub async fn start_registration(
        &self,
        subscriber: &SubscriberRecord,
        now: i64,
    ) -> Result<(String, CreationChallengeResponse), PasskeyError> {
        let existing = self.passkeys(&subscriber.id).await?;
        let exclude = existing
            .iter()
            .map(|(_, p)| p.cred_id().clone())
            .collect::<Vec<_>>();
        // The name the authenticator shows in its account list: the masked number, so a
        // synced passkey store does not hold the full MSISDN.
        let name = Msisdn::parse(&subscriber.msisdn)
            .map(|m| m.masked())
            .unwrap_or_else(|| "Mobile Connect".to_owned());
        let (options, state) = self
            .webauthn
            .start_passkey_registration(
                user_handle(&subscriber.id),
                &name,
                &format!("Mobile Connect {name}"),
                Some(exclude),
            )
            .map_err(|e| {
                tracing::error!(error = %e, "passkey registration options");
                PasskeyError::Server
            })?;
        let id = self
            .put(
                CeremonyKind::Registration,
                &subscriber.id,
                None,
                to_json(&state)?,
                now + CEREMONY_SECS,
                now,
            )
            .await?;
        Ok((id, options))
    }

    /// Finishes an enrolment with the browser's `credential` (JSON): verifies it against
    /// the ceremony (taken once), stores the passkey and gives the subscriber the
    /// [`CAPABILITY`].
    pub async fn finish_registration(
        &self,
        subscriber_id: &str,
        ceremony_id: &str,
        credential: &serde_json::Value,
        now: i64,
    ) -> Result<PasskeyRecord, PasskeyError> {
        let credential: RegisterPublicKeyCredential = parse(credential)?;
        let ceremony = self
            .take(ceremony_id, CeremonyKind::Registration, now)
            .await?;
        if ceremony.subscriber_id != subscriber_id {
            return Err(PasskeyError::NoCeremony);
        }
        let state: PasskeyRegistration = from_json(&ceremony.state)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| rejected("registration", &e))?;
        let record = PasskeyRecord {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            subscriber_id: subscriber_id.to_owned(),
            passkey: to_json(&passkey)?,
            counter: 0,
            created_at: now,
            last_used_at: None,
        };
        match self.store.insert_passkey(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(PasskeyError::AlreadyRegistered),
            Err(StoreError::NotFound) => return Err(PasskeyError::NoCeremony),
            Err(e) => return Err(store_failure(e)),
        }
        self.set_capability(subscriber_id, true).await?;
        tracing::info!(subscriber = %subscriber_id, "passkey registered");
        Ok(record)
    }

    /// The subscriber's passkeys (for the enrolment page).
    pub async fn list(&self, subscriber_id: &str) -> Result<Vec<PasskeyRecord>, PasskeyError> {
        self.store
            .passkeys_of(subscriber_id)
            .await
            .map_err(store_failure)
    }

    /// Removes one of the subscriber's passkeys; the last one takes the capability along.
    pub async fn remove(
        &self,
        subscriber_id: &str,
        credential_id: &str,
    ) -> Result<bool, PasskeyError> {
        let removed = self
            .store
            .delete_passkey(subscriber_id, credential_id)
            .await
            .map_err(store_failure)?;
        if removed && self.list(subscriber_id).await?.is_empty() {
            self.set_capability(subscriber_id, false).await?;
        }
        Ok(removed)
    }

    /// Adds or removes [`CAPABILITY`]. A read-modify-write of the capability list: a
    /// provisioning change racing with an enrolment may lose one of the two (the start of
    /// a login checks the passkeys themselves, so a stale flag only costs a skipped step).
    async fn set_capability(&self, subscriber_id: &str, on: bool) -> Result<(), PasskeyError> {
        let Some(sub) = self
            .store
            .get_subscriber(subscriber_id)
            .await
            .map_err(store_failure)?
        else {
            return Err(PasskeyError::NoCeremony);
        };
        let has = sub.capabilities.iter().any(|c| c == CAPABILITY);
        if has == on {
            return Ok(());
        }
        let mut caps: Vec<String> = sub
            .capabilities
            .into_iter()
            .filter(|c| c != CAPABILITY)
            .collect();
        if on {
            caps.push(CAPABILITY.to_owned());
        }
        self.store
            .update_subscriber(subscriber_id, sub.status, &caps)
            .await
            .map_err(store_failure)
    }

    // -----------------------------------------------------------------------------------
    // login

    fn offer_id(session_id: &str) -> String {
        format!("offer.{session_id}")
    }

    /// Whether the login `session_id` waits for a passkey (the authenticator was started
    /// for it and it is still pending).
    pub async fn offered(&self, session_id: &str, now: i64) -> Result<bool, PasskeyError> {
        Ok(self.live_offer(session_id, now).await?.is_some())
    }

    async fn live_offer(
        &self,
        session_id: &str,
        now: i64,
    ) -> Result<Option<CeremonyRecord>, PasskeyError> {
        if session_id.len() > 64 {
            return Ok(None);
        }
        let Some(offer) = self
            .store
            .get_ceremony(&Self::offer_id(session_id), now)
            .await
            .map_err(store_failure)?
        else {
            return Ok(None);
        };
        let session = self
            .store
            .get_session(session_id)
            .await
            .map_err(store_failure)?;
        let pending = session.is_some_and(|s| {
            s.status == SessionStatus::Pending
                && s.expires_at > now
                && s.subscriber_id.as_deref() == Some(offer.subscriber_id.as_str())
        });
        Ok(pending.then_some(offer))
    }

    /// The options for `navigator.credentials.get()` for a login waiting for a passkey,
    /// and the ceremony id to send back with the assertion.
    pub async fn start_login(
        &self,
        session_id: &str,
        now: i64,
    ) -> Result<(String, RequestChallengeResponse), PasskeyError> {
        let offer = self
            .live_offer(session_id, now)
            .await?
            .ok_or(PasskeyError::NotOffered)?;
        let passkeys: Vec<Passkey> = self
            .passkeys(&offer.subscriber_id)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if passkeys.is_empty() {
            return Err(PasskeyError::NoPasskey);
        }
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| {
                tracing::error!(error = %e, "passkey authentication options");
                PasskeyError::Server
            })?;
        let id = self
            .put(
                CeremonyKind::Authentication,
                &offer.subscriber_id,
                Some(session_id),
                to_json(&state)?,
                offer.expires_at.min(now + CEREMONY_SECS),
                now,
            )
            .await?;
        Ok((id, options))
    }

    /// Verifies the browser's assertion (JSON) for the login `session_id` and approves the
    /// login with it. The ceremony is taken once: a replayed assertion is `NoCeremony`.
    pub async fn finish_login(
        &self,
        session_id: &str,
        ceremony_id: &str,
        assertion: &serde_json::Value,
        now: i64,
    ) -> Result<AnswerOutcome, PasskeyError> {
        let assertion: PublicKeyCredential = parse(assertion)?;
        let ceremony = self
            .take(ceremony_id, CeremonyKind::Authentication, now)
            .await?;
        if ceremony.session_id.as_deref() != Some(session_id) {
            return Err(PasskeyError::NoCeremony);
        }
        let state: PasskeyAuthentication = from_json(&ceremony.state)?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&assertion, &state)
            .map_err(|e| rejected("authentication", &e))?;
        if !result.user_verified() {
            // The policy requires it and webauthn-rs checks it; kept as the LoA3 invariant.
            return Err(PasskeyError::Rejected);
        }
        let credential_id = URL_SAFE_NO_PAD.encode(result.cred_id());
        let Some((_, mut passkey)) = self
            .passkeys(&ceremony.subscriber_id)
            .await?
            .into_iter()
            .find(|(record, _)| record.credential_id == credential_id)
        else {
            return Err(PasskeyError::UnknownCredential);
        };
        passkey.update_credential(&result);
        let recorded = self
            .store
            .record_passkey_use(&credential_id, &to_json(&passkey)?, result.counter(), now)
            .await
            .map_err(store_failure)?;
        if !recorded {
            tracing::warn!(subscriber = %ceremony.subscriber_id, "passkey counter did not grow: refused");
            return Err(PasskeyError::PossibleClone);
        }
        let ctx = AnswerContext {
            store: self.store.as_ref(),
            hub: &self.hub,
            policy: self.policy,
        };
        answer_challenge(
            &ctx,
            self,
            session_id,
            &ceremony.subscriber_id,
            Answer::ApproveVerified,
            now,
        )
        .await
        .map_err(|e| {
            tracing::error!(error = ?e, "recording a passkey answer");
            PasskeyError::Server
        })
    }

    // -----------------------------------------------------------------------------------
    // helpers

    /// The subscriber's passkeys, decoded.
    async fn passkeys(
        &self,
        subscriber_id: &str,
    ) -> Result<Vec<(PasskeyRecord, Passkey)>, PasskeyError> {
        let records = self.list(subscriber_id).await?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let p: Passkey = from_json(&r.passkey)?;
            out.push((r, p));
        }
        Ok(out)
    }

    async fn put(
        &self,
        kind: CeremonyKind,
        subscriber_id: &str,
        session_id: Option<&str>,
        state: String,
        expires_at: i64,
        now: i64,
    ) -> Result<String, PasskeyError> {
        let id = random_id()?;
        let record = CeremonyRecord {
            id: id.clone(),
            kind,
            subscriber_id: subscriber_id.to_owned(),
            session_id: session_id.map(str::to_owned),
            state,
            expires_at,
        };
        self.store
            .put_ceremony(&record, now)
            .await
            .map_err(store_failure)?;
        Ok(id)
    }

    async fn take(
        &self,
        id: &str,
        kind: CeremonyKind,
        now: i64,
    ) -> Result<CeremonyRecord, PasskeyError> {
        // Offers are read, never taken through this path (their ids have a fixed form).
        if id.is_empty() || id.len() > 128 || id.starts_with("offer.") {
            return Err(PasskeyError::NoCeremony);
        }
        match self
            .store
            .take_ceremony(id, now)
            .await
            .map_err(store_failure)?
        {
            Some(c) if c.kind == kind => Ok(c),
            _ => Err(PasskeyError::NoCeremony),
        }
    }
}

#[async_trait]
impl Authenticator for Passkeys {
    fn name(&self) -> &'static str {
        CAPABILITY
    }

    fn amr(&self, _loa: Loa) -> &'static str {
        AMR
    }

    fn amr_values(&self) -> &'static [&'static str] {
        &[AMR]
    }

    fn max_loa(&self) -> Loa {
        Loa::Three
    }

    /// User verification on the authenticator stands in for the PIN: no PIN enrolled with
    /// us is needed at LoA3.
    fn eligibility(&self, s: &SubscriberRecord, _loa: Loa) -> Eligibility {
        if s.capabilities.iter().any(|c| c == CAPABILITY) {
            Eligibility::Usable
        } else {
            Eligibility::Skip("no passkey")
        }
    }

    /// Offers the passkey to the login's waiting page. A subscriber without passkeys (the
    /// capability is stale) is a start failure, so the chain moves on at once.
    async fn start(&self, challenge: &Challenge) -> Result<(), McError> {
        let has = self
            .store
            .passkeys_of(&challenge.subscriber_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store failure reading passkeys");
                McError::ServerError
            })?;
        if has.is_empty() {
            return Err(McError::LoaUnavailable);
        }
        let offer = CeremonyRecord {
            id: Self::offer_id(&challenge.session_id),
            kind: CeremonyKind::Offer,
            subscriber_id: challenge.subscriber_id.clone(),
            session_id: Some(challenge.session_id.clone()),
            state: String::from("{}"),
            expires_at: challenge.expires_at,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match self.store.put_ceremony(&offer, now).await {
            // Started twice for one login: the offer stands.
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "store failure offering a passkey");
                Err(McError::ServerError)
            }
        }
    }
}

/// A stable, opaque WebAuthn user handle for a subscriber (no MSISDN in it): the first
/// 16 bytes of SHA-256 over the subscriber id.
fn user_handle(subscriber_id: &str) -> Uuid {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("mc-passkey-user:{subscriber_id}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

fn random_id() -> Result<String, PasskeyError> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| {
        tracing::error!("system RNG failed");
        PasskeyError::Server
    })?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

fn parse<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, PasskeyError> {
    serde_json::from_value(v.clone()).map_err(|e| {
        tracing::debug!(error = %e, "malformed WebAuthn response");
        PasskeyError::Malformed
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(v).map_err(|e| {
        tracing::error!(error = %e, "encoding passkey state");
        PasskeyError::Server
    })
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(s).map_err(|e| {
        tracing::error!(error = %e, "stored passkey state does not decode");
        PasskeyError::Server
    })
}

/// A verification failure: logged (the reason is for operators), answered `Rejected`.
fn rejected(ceremony: &'static str, e: &WebauthnError) -> PasskeyError {
    tracing::warn!(ceremony, error = %e, "WebAuthn response refused");
    PasskeyError::Rejected
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn relying_party_is_the_issuer_host_and_origin() {
        let (id, origin) = relying_party("http://localhost:8080/mc").unwrap();
        assert_eq!(id, "localhost");
        assert_eq!(origin.as_str(), "http://localhost:8080/");
        let (id, _) = relying_party("https://id.operator.example").unwrap();
        assert_eq!(id, "id.operator.example");
    }

    #[test]
    fn ip_address_issuers_cannot_offer_passkeys() {
        let e = relying_party("http://127.0.0.1:8080").unwrap_err();
        assert!(e.contains("IP"), "{e}");
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("s1"), user_handle("s1"));
        assert_ne!(user_handle("s1"), user_handle("s2"));
    }
}
