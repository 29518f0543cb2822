//! The little JOSE this SDK needs: compact JWS parsing, JWK sets, signature checks
//! (RS256, PS256, ES256 — never `none` or symmetric algorithms), signing of request objects
//! and client assertions, and random values. Built on `aws-lc-rs`, which `mc-core` already
//! uses, so no second crypto stack enters the tree.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256,
    RsaKeyPair, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, IdTokenError};

/// Signature algorithms accepted on id_tokens and userinfo JWTs, and usable for request
/// objects and client assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    RS256,
    PS256,
    ES256,
}

impl Algorithm {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "RS256" => Some(Algorithm::RS256),
            "PS256" => Some(Algorithm::PS256),
            "ES256" => Some(Algorithm::ES256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            Algorithm::ES256 => "ES256",
        }
    }

    fn kty(self) -> &'static str {
        match self {
            Algorithm::RS256 | Algorithm::PS256 => "RSA",
            Algorithm::ES256 => "EC",
        }
    }
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` random bytes, base64url: state, nonce, PKCE verifiers, notification tokens, `jti`.
pub(crate) fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // The system RNG failing is not recoverable and not expected; fall back to an error
    // value that still differs per call would be worse than refusing, so report loudly.
    if SystemRandom::new().fill(&mut buf).is_err() {
        panic!("the system random number generator failed");
    }
    b64url(&buf)
}

/// A compact JWS split into its parts, header and claims parsed (not yet verified).
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jws {
    /// Parses `header.payload.signature`; the header and payload must be JSON objects.
    pub fn parse(compact: &str) -> Result<Jws, IdTokenError> {
        let mut parts = compact.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdTokenError::Malformed("not three dot-separated parts"));
        };
        let decode = |part: &str, what: &'static str| {
            URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|_| IdTokenError::Malformed(what))
        };
        let object = |bytes: Vec<u8>, what: &'static str| match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(IdTokenError::Malformed(what)),
        };
        Ok(Jws {
            header: object(
                decode(h, "header is not base64url")?,
                "header is not a JSON object",
            )?,
            claims: object(
                decode(p, "payload is not base64url")?,
                "payload is not a JSON object",
            )?,
            signing_input: format!("{h}.{p}"),
            signature: decode(s, "signature is not base64url")?,
        })
    }

    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Checks the signature against the matching key of `keys` (digest §6.2: match `kid`
    /// and, when the JWK names one, `alg`; without a `kid`, the only signing key of the
    /// right type). Encryption keys (`use: "enc"`) are never used.
    pub fn verify(&self, keys: &JwkSet) -> Result<Algorithm, IdTokenError> {
        let raw_alg = self.alg().unwrap_or("none");
        let alg = Algorithm::parse(raw_alg)
            .ok_or_else(|| IdTokenError::UnsupportedAlgorithm(raw_alg.to_owned()))?;
        let kid = self.kid().map(str::to_owned);
        let key = keys
            .signing_key(kid.as_deref(), alg)
            .ok_or_else(|| IdTokenError::NoMatchingKey(kid.clone()))?;
        if key.get("kty").and_then(Value::as_str) != Some(alg.kty())
            || key
                .get("alg")
                .and_then(Value::as_str)
                .is_some_and(|a| a != alg.as_str())
        {
            return Err(IdTokenError::KeyMismatch(kid));
        }
        let mismatch = || IdTokenError::KeyMismatch(kid.clone());
        let field = |name: &str| {
            key.get(name)
                .and_then(Value::as_str)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
        };
        let msg = self.signing_input.as_bytes();
        let ok = match alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                let (n, e) = (
                    field("n").ok_or_else(mismatch)?,
                    field("e").ok_or_else(mismatch)?,
                );
                let params = if alg == Algorithm::RS256 {
                    &RSA_PKCS1_2048_8192_SHA256
                } else {
                    &RSA_PSS_2048_8192_SHA256
                };
                signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(params, msg, &self.signature)
                    .is_ok()
            }
            Algorithm::ES256 => {
                if key.get("crv").and_then(Value::as_str) != Some("P-256") {
                    return Err(mismatch());
                }
                let (x, y) = (
                    field("x").ok_or_else(mismatch)?,
                    field("y").ok_or_else(mismatch)?,
                );
                if x.len() != 32 || y.len() != 32 {
                    return Err(mismatch());
                }
                let mut point = Vec::with_capacity(65);
                point.push(4u8);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                    .verify(msg, &self.signature)
                    .is_ok()
            }
        };
        if ok {
            Ok(alg)
        } else {
            Err(IdTokenError::InvalidSignature)
        }
    }
}

/// A JSON Web Key Set (RFC 7517 §5), kept as JSON: only the members used are read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Map<String, Value>>,
}

impl JwkSet {
    fn signing_keys(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.keys.iter().filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
    }

    /// The key a token signed with `alg` under `kid` must verify against.
    pub fn signing_key(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Map<String, Value>> {
        match kid {
            Some(kid) => self
                .signing_keys()
                .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)),
            None => {
                let mut fitting = self.signing_keys().filter(|k| {
                    k.get("kty").and_then(Value::as_str) == Some(alg.kty())
                        && k.get("alg")
                            .and_then(Value::as_str)
                            .is_none_or(|a| a == alg.as_str())
                });
                let first = fitting.next();
                // Ambiguity is refused rather than guessed.
                if fitting.next().is_some() {
                    None
                } else {
                    first
                }
            }
        }
    }

    /// True when a signing key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.signing_keys()
            .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// The SP's private key for signed request objects (server-initiated, digest §9.1) and
/// `private_key_jwt` client authentication. Register [`SigningKey::public_jwk`] with the
/// operator (inline `jwks` or at your `jwks_uri`).
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    pair: Pair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new RSA-2048 key (RS256 or PS256).
    pub fn generate_rsa(kid: &str, alg: Algorithm) -> Result<SigningKey, Error> {
        if alg == Algorithm::ES256 {
            return Err(Error::InvalidRequest("ES256 needs an EC key".into()));
        }
        let pair = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| Error::InvalidRequest("RSA key generation failed".into()))?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg,
            pair: Pair::Rsa(pair),
        })
    }

    /// A new P-256 key (ES256).
    pub fn generate_ec(kid: &str) -> Result<SigningKey, Error> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| Error::InvalidRequest("EC key generation failed".into()))?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            pair: Pair::Ec(pair),
        })
    }

    /// A key from PKCS#8 DER: RSA for RS256/PS256, P-256 for ES256.
    pub fn from_pkcs8_der(der: &[u8], alg: Algorithm, kid: &str) -> Result<SigningKey, Error> {
        let bad = |_| Error::InvalidRequest(format!("not a PKCS#8 key for {}", alg.as_str()));
        let pair = match alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(bad)?)
            }
            Algorithm::ES256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?,
            ),
        };
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg,
            pair,
        })
    }

    /// A key from a PEM `-----BEGIN PRIVATE KEY-----` (PKCS#8) block.
    pub fn from_pkcs8_pem(pem: &str, alg: Algorithm, kid: &str) -> Result<SigningKey, Error> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END PRIVATE KEY-----")
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| Error::InvalidRequest("not a PEM PRIVATE KEY block".into()))?;
        Self::from_pkcs8_der(&der, alg, kid)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public half as a JWK (`kid`, `alg`, `use: "sig"`).
    pub fn public_jwk(&self) -> Value {
        match &self.pair {
            Pair::Rsa(p) => {
                let public = p.public_key();
                json!({
                    "kty": "RSA", "use": "sig", "alg": self.alg.as_str(), "kid": self.kid,
                    "n": b64url(public.modulus().big_endian_without_leading_zero()),
                    "e": b64url(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(p) => {
                let point = p.public_key().as_ref();
                let (x, y) = point.get(1..33).zip(point.get(33..65)).unwrap_or_default();
                json!({
                    "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": self.kid,
                    "x": b64url(x), "y": b64url(y),
                })
            }
        }
    }

    /// `{"keys": [public_jwk]}`.
    pub fn public_jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk()] })
    }

    /// A compact JWS of `claims` with header `{"alg", "typ": "JWT", "kid"}`.
    pub fn sign(&self, claims: &Value) -> Result<String, Error> {
        let header = json!({"alg": self.alg.as_str(), "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let failed = |_| Error::InvalidRequest("signing failed".into());
        let sig = match &self.pair {
            Pair::Rsa(p) => {
                let padding = if self.alg == Algorithm::RS256 {
                    &RSA_PKCS1_SHA256
                } else {
                    &RSA_PSS_SHA256
                };
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(padding, &rng, input.as_bytes(), &mut sig)
                    .map_err(failed)?;
                sig
            }
            Pair::Ec(p) => p
                .sign(&rng, input.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{input}.{}", b64url(&sig)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(keys: &[&SigningKey]) -> JwkSet {
        serde_json::from_value(
            json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()}),
        )
        .unwrap()
    }

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for key in [
            SigningKey::generate_rsa("r", Algorithm::RS256).unwrap(),
            SigningKey::generate_rsa("p", Algorithm::PS256).unwrap(),
            SigningKey::generate_ec("e").unwrap(),
        ] {
            let jws = Jws::parse(&key.sign(&json!({"a": 1})).unwrap()).unwrap();
            assert_eq!(jws.verify(&set(&[&key])), Ok(key.algorithm()));
        }
    }

    #[test]
    fn tampering_unknown_kid_none_and_enc_keys_fail() {
        let key = SigningKey::generate_rsa("k1", Algorithm::RS256).unwrap();
        let token = key.sign(&json!({"sub": "a"})).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = b64url(br#"{"sub":"b"}"#);
        let tampered = Jws::parse(&parts.join(".")).unwrap();
        assert_eq!(
            tampered.verify(&set(&[&key])),
            Err(IdTokenError::InvalidSignature)
        );

        let other = SigningKey::generate_rsa("k2", Algorithm::RS256).unwrap();
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(
            jws.verify(&set(&[&other])),
            Err(IdTokenError::NoMatchingKey(Some("k1".into())))
        );

        let mut enc = set(&[&key]);
        enc.keys[0].insert("use".into(), json!("enc"));
        assert!(matches!(
            jws.verify(&enc),
            Err(IdTokenError::NoMatchingKey(_))
        ));

        let none = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(b"{}"));
        assert_eq!(
            Jws::parse(&none).unwrap().verify(&set(&[&key])),
            Err(IdTokenError::UnsupportedAlgorithm("none".into()))
        );
        let hs = format!(
            "{}.{}.c2ln",
            b64url(br#"{"alg":"HS256","kid":"k1"}"#),
            b64url(b"{}")
        );
        assert_eq!(
            Jws::parse(&hs).unwrap().verify(&set(&[&key])),
            Err(IdTokenError::UnsupportedAlgorithm("HS256".into()))
        );
    }

    #[test]
    fn a_key_of_the_wrong_type_is_a_mismatch() {
        let ec = SigningKey::generate_ec("same").unwrap();
        let rsa = SigningKey::generate_rsa("same", Algorithm::RS256).unwrap();
        let jws = Jws::parse(&rsa.sign(&json!({})).unwrap()).unwrap();
        assert_eq!(
            jws.verify(&set(&[&ec])),
            Err(IdTokenError::KeyMismatch(Some("same".into())))
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.", "e30.!!.", "W10.e30."] {
            assert!(Jws::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pem_keys_load() {
        let key = SigningKey::generate_ec("x").unwrap();
        let Pair::Ec(p) = &key.pair else {
            unreachable!()
        };
        let der = p.to_pkcs8v1().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der.as_ref())
        );
        let loaded = SigningKey::from_pkcs8_pem(&pem, Algorithm::ES256, "x").unwrap();
        assert_eq!(loaded.public_jwk(), key.public_jwk());
        assert!(SigningKey::from_pkcs8_pem("junk", Algorithm::ES256, "x").is_err());
    }
}
