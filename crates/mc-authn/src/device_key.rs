//! Device keys of the app-push authenticator: what the operator's app signs, and how the
//! gateway checks it.
//!
//! Every message a registered app sends is a compact JWS (RFC 7515) with `alg` `ES256`
//! (P-256, the curve both Android Keystore / iOS Secure Enclave and WebCrypto offer), so
//! the app's private key never leaves it and a captured message cannot be altered:
//! - registration: signed by the new key itself, which travels in the `jwk` header (proof of
//!   possession; the key is checked by verifying with it);
//! - fetching challenges: a short-lived proof (`kid` = device id, `iat`);
//! - answering: `{challenge, decision, uv, pin?, share?, iat, nonce}`.
//!
//! `iat` must be within [`MAX_SKEW_SECS`] of the gateway's clock (a stale message is
//! refused); answers also carry a `nonce` the caller remembers until the window closes
//! (a replay is refused). Signatures are checked by `jsonwebtoken` (aws-lc-rs underneath).

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// How far `iat` may be from now, either way (phones' clocks drift a little).
pub const MAX_SKEW_SECS: i64 = 120;

/// The longest message accepted (a JWS with a JWK header is well under 1 KiB).
pub const MAX_JWS_BYTES: usize = 4096;

/// Why a device message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceKeyError {
    #[error("not a compact ES256 JWS with the expected claims")]
    Malformed,
    #[error("the key is not a P-256 public key")]
    UnsupportedKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("iat is outside the accepted window")]
    Stale,
}

/// A verified registration: the new device's key (normalised JWK text) and what it asked.
#[derive(Debug, Clone)]
pub struct Registration {
    pub public_jwk: String,
    pub enrolment_code: String,
    pub label: String,
}

#[derive(Deserialize)]
struct RegistrationClaims {
    enrolment_code: String,
    #[serde(default)]
    label: String,
    iat: i64,
}

/// A signed answer to one challenge.
#[derive(Debug, Clone, Deserialize)]
pub struct SignedAnswer {
    /// The challenge (= login session) id, as the device received it.
    pub challenge: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// How the app verified its user before signing: `pin` (the PIN is in `pin`, checked by
    /// the gateway) or `biometric` (asserted by the app); absent for a plain OK.
    #[serde(default)]
    pub uv: Option<String>,
    #[serde(default)]
    pub pin: Option<String>,
    /// Whether the attributes the challenge asked for are shared (default: yes).
    #[serde(default)]
    pub share: Option<bool>,
    pub iat: i64,
    pub nonce: String,
}

/// A proof for fetching challenges.
#[derive(Debug, Clone, Deserialize)]
pub struct FetchProof {
    pub iat: i64,
}

/// A device's request to be revoked (an app signing out or uninstalled): names the device
/// itself, so no other signed message (a fetch proof) can stand in for it.
#[derive(Debug, Clone, Deserialize)]
pub struct Deregistration {
    pub deregister: String,
    pub iat: i64,
}

fn header(jws: &str) -> Result<jsonwebtoken::Header, DeviceKeyError> {
    if jws.len() > MAX_JWS_BYTES {
        return Err(DeviceKeyError::Malformed);
    }
    let h = jsonwebtoken::decode_header(jws).map_err(|_| DeviceKeyError::Malformed)?;
    if h.alg != Algorithm::ES256 {
        return Err(DeviceKeyError::Malformed);
    }
    Ok(h)
}

/// The `kid` (device id) a message names, before anything is verified.
pub fn kid(jws: &str) -> Result<String, DeviceKeyError> {
    header(jws)?.kid.ok_or(DeviceKeyError::Malformed)
}

/// A P-256 JWK as `{"crv","kty","x","y"}` text (the form stored), and its decoding key.
fn p256(jwk: &Jwk) -> Result<(String, DecodingKey), DeviceKeyError> {
    let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm else {
        return Err(DeviceKeyError::UnsupportedKey);
    };
    if ec.curve != EllipticCurve::P256 {
        return Err(DeviceKeyError::UnsupportedKey);
    }
    let key = DecodingKey::from_ec_components(&ec.x, &ec.y)
        .map_err(|_| DeviceKeyError::UnsupportedKey)?;
    // An uncompressed point: 0x04 || x || y, 32 bytes each.
    if key.try_get_as_bytes().map(<[u8]>::len) != Ok(65) {
        return Err(DeviceKeyError::UnsupportedKey);
    }
    let text = serde_json::json!({"crv": "P-256", "kty": "EC", "x": ec.x, "y": ec.y}).to_string();
    Ok((text, key))
}

fn verify<T: DeserializeOwned>(
    jws: &str,
    key: &DecodingKey,
    iat: impl Fn(&T) -> i64,
    now: i64,
) -> Result<T, DeviceKeyError> {
    let mut v = Validation::new(Algorithm::ES256);
    // Freshness is `iat`'s job here (device messages carry no `exp`); audiences do not apply.
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_aud = false;
    let data = jsonwebtoken::decode::<T>(jws, key, &v).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => DeviceKeyError::BadSignature,
        jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey => DeviceKeyError::UnsupportedKey,
        _ => DeviceKeyError::Malformed,
    })?;
    if (iat(&data.claims) - now).abs() > MAX_SKEW_SECS {
        return Err(DeviceKeyError::Stale);
    }
    Ok(data.claims)
}

/// Checks a registration: signed by the key in its own `jwk` header, fresh.
pub fn verify_registration(jws: &str, now: i64) -> Result<Registration, DeviceKeyError> {
    let jwk = header(jws)?.jwk.ok_or(DeviceKeyError::Malformed)?;
    let (public_jwk, key) = p256(&jwk)?;
    let c: RegistrationClaims = verify(jws, &key, |c: &RegistrationClaims| c.iat, now)?;
    Ok(Registration {
        public_jwk,
        enrolment_code: c.enrolment_code,
        label: c.label.chars().take(64).collect(),
    })
}

/// Checks a message of a registered device against its stored key.
pub fn verify_device<T: DeserializeOwned>(
    jws: &str,
    public_jwk: &str,
    iat: impl Fn(&T) -> i64,
    now: i64,
) -> Result<T, DeviceKeyError> {
    header(jws)?;
    let jwk: Jwk = serde_json::from_str(public_jwk).map_err(|_| DeviceKeyError::UnsupportedKey)?;
    let (_, key) = p256(&jwk)?;
    verify(jws, &key, iat, now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn oversized_and_non_es256_messages_are_malformed() {
        assert_eq!(
            kid(&"a".repeat(MAX_JWS_BYTES + 1)),
            Err(DeviceKeyError::Malformed)
        );
        // {"alg":"none","kid":"d"}.{}.
        assert_eq!(
            kid("eyJhbGciOiJub25lIiwia2lkIjoiZCJ9.e30."),
            Err(DeviceKeyError::Malformed)
        );
        assert_eq!(kid("not a jws"), Err(DeviceKeyError::Malformed));
    }

    #[test]
    fn a_stored_key_that_is_not_p256_is_refused() {
        let rsa = r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#;
        let r = verify_device::<FetchProof>(
            "eyJhbGciOiJFUzI1NiIsImtpZCI6ImQifQ.e30.AAAA",
            rsa,
            |p| p.iat,
            0,
        );
        assert_eq!(r.unwrap_err(), DeviceKeyError::UnsupportedKey);
    }
}
