//! Client public keys (a registered `jwks` document or one fetched from `jwks_uri`) and the
//! verification of JWSs clients sign: `private_key_jwt` assertions (RFC 7523), signed
//! back-channel authentication requests (CIBA Core §7.1.1) and Mobile Connect SI request
//! objects.
//!
//! Only the asymmetric algorithms of [`CLIENT_JWS_ALGS`] are accepted (`none` and HMAC never
//! are). Claims are returned unchecked: each caller validates `iss`, `aud`, `exp`, `jti`…
//! by its own rules.
//!
//! A `jwks_uri` document is fetched with a short timeout and a size cap, cached per URI
//! ([`FetchPolicy::ttl`]), and refetched early when a signature names a key the cached
//! document lacks (key rotation), at most once per [`FetchPolicy::refetch_interval`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mc_core::McError;
use mc_core::grants::CLIENT_JWS_ALGS;
use mc_store::ClientRecord;
use serde_json::{Map, Value};

/// Largest compact JWS accepted (request objects and assertions are a few KB).
pub const MAX_JWS_BYTES: usize = 64 * 1024;
/// Largest JWKS document accepted from a `jwks_uri`.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most distinct `jwks_uri`s cached at once (one per client in practice).
const MAX_CACHED_URIS: usize = 4096;

/// Why a client JWS was refused. Map it at the call site: `InvalidClient` for client
/// assertions; for back-channel requests see [`JwsError::backchannel_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("JWS larger than {MAX_JWS_BYTES} bytes")]
    TooLarge,
    #[error("not a compact JWS: {0}")]
    Malformed(&'static str),
    #[error("signing algorithm {0:?} not accepted (only RS256, PS256, ES256)")]
    UnsupportedAlg(String),
    #[error("signing algorithm {found:?} differs from the registered {expected:?}")]
    AlgMismatch { expected: String, found: String },
    #[error("the client has no registered keys")]
    NoKeys,
    #[error("the client's jwks_uri could not be fetched")]
    KeysUnavailable,
    #[error("no suitable key of the client matches the JWS header")]
    UnknownKey,
    #[error("several keys of the client match and the JWS names no kid")]
    AmbiguousKey,
    #[error("signature invalid")]
    BadSignature,
}

impl JwsError {
    /// The error of a back-channel endpoint: an unusable document is `invalid_request`; a
    /// signature or key problem is `unauthorized_client` ("Token validation failed").
    pub fn backchannel_error(&self) -> McError {
        match self {
            JwsError::TooLarge => McError::BackchannelInvalid("request too large".into()),
            JwsError::Malformed(why) => {
                McError::BackchannelInvalid(format!("request is not a valid JWS: {why}"))
            }
            _ => McError::BackchannelUnauthorized("Token validation failed"),
        }
    }
}

/// How `jwks_uri` documents are fetched and cached.
#[derive(Debug, Clone, Copy)]
pub struct FetchPolicy {
    /// Whole-request timeout of one fetch.
    pub timeout: Duration,
    /// How long a fetched document is used without refetching.
    pub ttl: Duration,
    /// Least time between two fetches of one URI (unknown `kid`, failed fetch).
    pub refetch_interval: Duration,
    /// How long an expired document may still be used when refetching it fails.
    pub max_stale: Duration,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            timeout: Duration::from_secs(3),
            ttl: Duration::from_secs(300),
            refetch_interval: Duration::from_secs(10),
            max_stale: Duration::from_secs(3600),
        }
    }
}

#[derive(Default)]
struct Cached {
    keys: Option<Arc<Vec<Value>>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

type Slot = Arc<tokio::sync::Mutex<Cached>>;

/// Fetches, caches and uses client keys. One per gateway (`AppState::client_keys`).
pub struct ClientKeys {
    http: Option<reqwest::Client>,
    policy: FetchPolicy,
    slots: Mutex<HashMap<String, Slot>>,
}

impl Default for ClientKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientKeys {
    pub fn new() -> Self {
        Self::with_policy(FetchPolicy::default())
    }

    pub fn with_policy(policy: FetchPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| tracing::error!(error = %e, "HTTP client for jwks_uri unavailable"))
            .ok();
        ClientKeys {
            http,
            policy,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies a compact JWS signed by `client` and returns its claims, unchecked.
    ///
    /// The header's `alg` must be one of [`CLIENT_JWS_ALGS`] and equal `expected_alg` when
    /// given (the client's registered signing algorithm). The key is the one named by `kid`,
    /// or, without a `kid`, the only key of the client suited to `alg`.
    pub async fn verify_client_jws(
        &self,
        client: &ClientRecord,
        jws: &str,
        expected_alg: Option<&str>,
    ) -> Result<Map<String, Value>, JwsError> {
        let header = parse_header(jws)?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(JwsError::Malformed("alg missing"))?;
        let alg = client_alg(alg_name)?;
        if let Some(expected) = expected_alg
            && expected != alg_name
        {
            return Err(JwsError::AlgMismatch {
                expected: expected.to_owned(),
                found: alg_name.to_owned(),
            });
        }
        if header.contains_key("crit") {
            // RFC 7515 §4.1.11: we understand no extension.
            return Err(JwsError::Malformed("crit header not supported"));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(JwsError::Malformed("kid must be a string")),
        };
        let jwk = self.key_for(client, alg, kid).await?;
        verify_with(jws, &jwk, alg)
    }

    /// The key of `client` that verifies `alg` and `kid`.
    async fn key_for(
        &self,
        client: &ClientRecord,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Jwk, JwsError> {
        let m = &client.metadata;
        if let Some(jwks) = &m.jwks {
            let keys = jwks
                .get("keys")
                .and_then(Value::as_array)
                .ok_or(JwsError::NoKeys)?;
            return select_key(keys, alg, kid);
        }
        match &m.jwks_uri {
            Some(uri) => self.key_from_uri(uri, alg, kid).await,
            None => Err(JwsError::NoKeys),
        }
    }

    fn slot(&self, uri: &str) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = slots.get(uri) {
            return s.clone();
        }
        if slots.len() >= MAX_CACHED_URIS {
            // Drop the entries nobody is using right now; they are refetched on demand.
            slots.retain(|_, s| Arc::strong_count(s) > 1);
        }
        slots.entry(uri.to_owned()).or_default().clone()
    }

    async fn key_from_uri(
        &self,
        uri: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Jwk, JwsError> {
        let slot = self.slot(uri);
        // Held across the fetch: concurrent requests for one URI wait for one fetch.
        let mut c = slot.lock().await;
        let p = &self.policy;
        let age = c.fetched_at.map(|t| t.elapsed());
        let fresh = c.keys.is_some() && age.is_some_and(|a| a < p.ttl);
        let may_fetch = c
            .attempted_at
            .is_none_or(|t| t.elapsed() >= p.refetch_interval);
        let usable = |c: &Cached| {
            let stale_ok = c
                .fetched_at
                .is_some_and(|t| t.elapsed() < p.ttl + p.max_stale);
            c.keys.clone().filter(|_| stale_ok)
        };
        if fresh || !may_fetch {
            let found = usable(&c).map(|keys| select_key(&keys, alg, kid));
            match found {
                Some(Ok(k)) => return Ok(k),
                Some(Err(e)) if !may_fetch => return Err(e),
                None if !may_fetch => return Err(JwsError::KeysUnavailable),
                // Fresh but the key is not there: rotated, refetch now.
                _ => {}
            }
        }
        c.attempted_at = Some(Instant::now());
        match self.fetch(uri).await {
            Ok(keys) => {
                c.keys = Some(Arc::new(keys));
                c.fetched_at = Some(Instant::now());
            }
            Err(why) => {
                // The host only: a registered URL may carry credentials in its userinfo
                // or query.
                let host = url::Url::parse(uri)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                tracing::warn!(jwks_host = %host, why, "client jwks_uri fetch failed");
            }
        }
        match usable(&c) {
            Some(keys) => select_key(&keys, alg, kid),
            None => Err(JwsError::KeysUnavailable),
        }
    }

    /// GET `uri`: status 200, at most [`MAX_JWKS_BYTES`], a `{"keys": [...]}` document.
    async fn fetch(&self, uri: &str) -> Result<Vec<Value>, &'static str> {
        let http = self.http.as_ref().ok_or("no HTTP client")?;
        let mut resp = http
            .get(uri)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| "request failed")?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err("status not 200");
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err("document too large");
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| "body read failed")? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("document too large");
            }
            body.extend_from_slice(&chunk);
        }
        let doc: Value = serde_json::from_slice(&body).map_err(|_| "not JSON")?;
        match doc.get("keys") {
            Some(Value::Array(keys)) => Ok(keys.clone()),
            _ => Err("not a JWKS document"),
        }
    }
}

/// The claims of a compact JWS, NOT verified: only to find out who claims to have signed
/// it (e.g. the `iss` of a client assertion) before verifying with that client's keys.
pub fn unverified_claims(jws: &str) -> Result<Map<String, Value>, JwsError> {
    let (_, payload, _) = split(jws)?;
    decode_json_object(payload, "payload")
}

fn split(jws: &str) -> Result<(&str, &str, &str), JwsError> {
    if jws.len() > MAX_JWS_BYTES {
        return Err(JwsError::TooLarge);
    }
    let mut parts = jws.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !s.is_empty() => Ok((h, p, s)),
        // An unsecured JWT (`alg: none`, RFC 7519 §6) has an empty signature: it is a JWS
        // that fails validation, not a malformed request.
        (Some(h), Some(_), Some(""), None) if !h.is_empty() => Err(JwsError::BadSignature),
        _ => Err(JwsError::Malformed("three non-empty parts expected")),
    }
}

fn decode_json_object(part: &str, what: &'static str) -> Result<Map<String, Value>, JwsError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwsError::Malformed(what))?;
    serde_json::from_slice(&bytes).map_err(|_| JwsError::Malformed(what))
}

fn parse_header(jws: &str) -> Result<Map<String, Value>, JwsError> {
    let (header, _, _) = split(jws)?;
    decode_json_object(header, "header")
}

/// The algorithms clients may sign with; everything else (`none`, `HS256`…) is refused.
fn client_alg(name: &str) -> Result<Algorithm, JwsError> {
    if !CLIENT_JWS_ALGS.contains(&name) {
        return Err(JwsError::UnsupportedAlg(name.to_owned()));
    }
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "PS256" => Ok(Algorithm::PS256),
        "ES256" => Ok(Algorithm::ES256),
        other => Err(JwsError::UnsupportedAlg(other.to_owned())),
    }
}

/// Whether `jwk` may verify `alg`: right key type (RSA, or EC on P-256), not an
/// encryption key, and its own `alg`, when it names one, is `alg`.
fn suits(jwk: &Jwk, alg: Algorithm) -> bool {
    let c = &jwk.common;
    if matches!(
        c.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return false;
    }
    if let Some(ops) = &c.key_operations
        && !ops.iter().any(|o| matches!(o, KeyOperations::Verify))
    {
        return false;
    }
    let key_alg = match alg {
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::PS256 => KeyAlgorithm::PS256,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        _ => return false,
    };
    if c.key_algorithm.is_some_and(|a| a != key_alg) {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        _ => false,
    }
}

/// The key named by `kid`, or without one the only key suited to `alg`. Entries that are
/// not JWKs this library understands are skipped.
fn select_key(keys: &[Value], alg: Algorithm, kid: Option<&str>) -> Result<Jwk, JwsError> {
    let mut suited = keys
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|k| suits(k, alg));
    match kid {
        Some(kid) => suited
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .ok_or(JwsError::UnknownKey),
        None => match (suited.next(), suited.next()) {
            (Some(k), None) => Ok(k),
            (None, _) => Err(JwsError::UnknownKey),
            (Some(_), Some(_)) => Err(JwsError::AmbiguousKey),
        },
    }
}

/// Signature check only: no claim is validated here (callers do).
fn verify_with(jws: &str, jwk: &Jwk, alg: Algorithm) -> Result<Map<String, Value>, JwsError> {
    let key = DecodingKey::from_jwk(jwk).map_err(|_| JwsError::UnknownKey)?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(jws, &key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature
            | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_)
            | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat
            | jsonwebtoken::errors::ErrorKind::Provider(_) => Err(JwsError::BadSignature),
            _ => Err(JwsError::Malformed("undecodable")),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn size_and_shape_are_bounded() {
        let big = "a".repeat(MAX_JWS_BYTES + 1);
        assert_eq!(parse_header(&big), Err(JwsError::TooLarge));
        assert!(matches!(parse_header("a.b"), Err(JwsError::Malformed(_))));
        assert!(matches!(
            parse_header("a.b.c.d"),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(
            parse_header("!!.b.c"),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn only_asymmetric_client_algs() {
        for bad in ["none", "HS256", "RS512", "EdDSA", ""] {
            assert!(matches!(client_alg(bad), Err(JwsError::UnsupportedAlg(_))));
        }
        for good in CLIENT_JWS_ALGS {
            assert!(client_alg(good).is_ok());
        }
    }

    #[test]
    fn key_selection() {
        let rsa = json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"});
        let rsa2 = json!({"kty": "RSA", "kid": "r2", "n": "AQAB", "e": "AQAB", "use": "enc"});
        let ec = json!({"kty": "EC", "kid": "e", "crv": "P-256", "x": "AA", "y": "AA"});
        let ec384 = json!({"kty": "EC", "kid": "e3", "crv": "P-384", "x": "AA", "y": "AA"});
        let junk = json!({"kty": "weird"});
        let keys = vec![rsa, rsa2, ec, ec384, junk];
        assert!(select_key(&keys, Algorithm::RS256, Some("r")).is_ok());
        assert!(select_key(&keys, Algorithm::RS256, None).is_ok());
        assert_eq!(
            select_key(&keys, Algorithm::RS256, Some("r2")),
            Err(JwsError::UnknownKey)
        );
        assert_eq!(
            select_key(&keys, Algorithm::ES256, Some("e3")),
            Err(JwsError::UnknownKey)
        );
        assert_eq!(
            select_key(&keys, Algorithm::ES256, Some("r")),
            Err(JwsError::UnknownKey)
        );
        let two = vec![
            keys[0].clone(),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ];
        assert_eq!(
            select_key(&two, Algorithm::PS256, None),
            Err(JwsError::AmbiguousKey)
        );
    }

    #[test]
    fn unverified_claims_reads_the_payload() {
        let jws = format!(
            "{}.{}.sig",
            b64(&json!({"alg": "RS256"})),
            b64(&json!({"iss": "x"}))
        );
        assert_eq!(unverified_claims(&jws).unwrap()["iss"], "x");
    }
}
