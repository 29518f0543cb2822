//! Keys and secrets of Discovery.
//!
//! * [`OperatorKey`]: an operator's RSA public key (from its JWK) that `subscriber_id`s are
//!   encrypted to: RSA-OAEP with SHA-256, hex-encoded — exactly what the gateway's
//!   `KeyRing::encrypt_msisdn` produces and `KeyRing::decrypt_msisdn` (and the
//!   `ENCR_MSISDN:` login hint parser of `mc-core`) accept.
//! * [`Secrets`]: derived from one 32-byte master key (the deployment's key-encryption key):
//!   an AES-256-GCM key sealing the per-operator client secrets at rest (they must be handed
//!   out, so they cannot be hashed), and an HMAC-SHA256 key signing operator-selection
//!   sessions (stateless, so any node can serve the page).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_lc_rs::{constant_time, hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_core::msisdn::Msisdn;
use serde::{Deserialize, Serialize};

/// Lowercase hex SHA-256 (how discovery client secrets are stored).
pub use mc_core::hash::sha256_hex;

/// Constant-time comparison of two strings.
pub fn same(a: &str, b: &str) -> bool {
    constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// 256 random bits, base64url (client ids and secrets).
pub fn random_token() -> Result<String, CryptoError> {
    let mut b = [0u8; 32];
    rand::fill(&mut b).map_err(|_| CryptoError("rng"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// A cryptographic operation failed; the text is for logs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("crypto: {0}")]
pub struct CryptoError(pub &'static str);

/// An operator's MSISDN encryption key.
pub struct OperatorKey {
    key: OaepPublicEncryptingKey,
    kid: Option<String>,
}

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorKey")
            .field("kid", &self.kid)
            .finish()
    }
}

#[derive(Deserialize)]
struct RsaJwk {
    kty: String,
    n: String,
    e: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    key_use: Option<String>,
}

impl OperatorKey {
    /// Reads an RSA public JWK (`kty` `RSA`, `n`, `e`; `use` absent or `enc`), at least
    /// 2048 bits. A JWKS document is accepted too: its first `enc` RSA key is taken.
    pub fn from_jwk(text: &str) -> Result<OperatorKey, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let jwk = match value.get("keys").and_then(|k| k.as_array()) {
            Some(keys) => keys
                .iter()
                .find(|k| {
                    k.get("kty").and_then(|v| v.as_str()) == Some("RSA")
                        && k.get("use").and_then(|v| v.as_str()) == Some("enc")
                })
                .cloned()
                .ok_or("the JWKS has no RSA key with \"use\": \"enc\"")?,
            None => value,
        };
        let jwk: RsaJwk =
            serde_json::from_value(jwk).map_err(|e| format!("not an RSA public JWK: {e}"))?;
        if jwk.kty != "RSA" {
            return Err(format!("kty {:?}: only RSA keys encrypt MSISDNs", jwk.kty));
        }
        if jwk.key_use.as_deref().is_some_and(|u| u != "enc") {
            return Err("the key's \"use\" is not \"enc\"".into());
        }
        let n = URL_SAFE_NO_PAD
            .decode(jwk.n.trim_end_matches('='))
            .map_err(|_| "n is not base64url")?;
        let e = URL_SAFE_NO_PAD
            .decode(jwk.e.trim_end_matches('='))
            .map_err(|_| "e is not base64url")?;
        let der = spki_der(&n, &e);
        let public = PublicEncryptingKey::from_der(&der).map_err(|_| "the RSA key was rejected")?;
        if public.key_size_bits() < 2048 {
            return Err(format!(
                "the RSA key has {} bits, at least 2048 are needed",
                public.key_size_bits()
            ));
        }
        let key = OaepPublicEncryptingKey::new(public).map_err(|_| "the RSA key was rejected")?;
        Ok(OperatorKey { key, kid: jwk.kid })
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `subscriber_id` of `msisdn` for this operator: RSA-OAEP-SHA256 of the digits,
    /// hex (digest §2.4; the gateway decrypts it from an `ENCR_MSISDN:` hint).
    pub fn encrypt_msisdn(&self, msisdn: &Msisdn) -> Result<String, CryptoError> {
        let mut out = vec![0u8; self.key.ciphertext_size()];
        let ct = self
            .key
            .encrypt(
                &OAEP_SHA256_MGF1SHA256,
                msisdn.as_str().as_bytes(),
                &mut out,
                None,
            )
            .map_err(|_| CryptoError("encrypt"))?;
        Ok(hex::encode(ct))
    }
}

/// DER `SubjectPublicKeyInfo` of an RSA key (RFC 8017 A.1.1 inside RFC 5280 4.1).
fn spki_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let rsa_public_key = der(0x30, &[der_uint(n), der_uint(e)].concat());
    // rsaEncryption 1.2.840.113549.1.1.1 with NULL parameters.
    let algorithm = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(&rsa_public_key);
    der(0x30, &[algorithm.to_vec(), der(0x03, &bits)].concat())
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match bytes.iter().position(|&b| b != 0) {
        Some(i) => &bytes[i..],
        None => &[0],
    };
    let mut v = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        v.push(0);
    }
    v.extend_from_slice(trimmed);
    der(0x02, &v)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The keys derived from the master key.
pub struct Secrets {
    seal: LessSafeKey,
    session: hmac::Key,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Derives the sealing and session keys from `master` (HMAC-SHA256 of a label each,
    /// so the master key itself is never used directly and the two never coincide).
    pub fn from_master(master: &[u8; 32]) -> Result<Secrets, CryptoError> {
        let base = hmac::Key::new(hmac::HMAC_SHA256, master);
        let derive = |label: &str| hmac::sign(&base, label.as_bytes());
        let seal_bytes = derive("mc-discovery credential seal v1");
        let session_bytes = derive("mc-discovery selection session v1");
        let unbound = UnboundKey::new(&AES_256_GCM, seal_bytes.as_ref())
            .map_err(|_| CryptoError("seal key"))?;
        Ok(Secrets {
            seal: LessSafeKey::new(unbound),
            session: hmac::Key::new(hmac::HMAC_SHA256, session_bytes.as_ref()),
        })
    }

    /// `nonce || ciphertext || tag`, with `label` bound as associated data (a sealed secret
    /// cannot be moved to another application's or operator's row).
    pub fn seal(&self, label: &str, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| CryptoError("rng"))?;
        let mut buf = plaintext.as_bytes().to_vec();
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(label.as_bytes()),
                &mut buf,
            )
            .map_err(|_| CryptoError("seal"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens what [`Secrets::seal`] sealed under the same label.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<String, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError("sealed value too short"));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError("nonce"))?;
        let mut buf = rest.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(label.as_bytes()), &mut buf)
            .map_err(|_| CryptoError("cannot open a sealed secret (another master key?)"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| CryptoError("sealed secret is not text"))
    }

    /// A compact HS256 JWT of `claims` (the operator-selection `session_id`, as in the
    /// GSMA sandbox, digest §2.6).
    pub fn sign_session(&self, claims: &SelectionSession) -> Result<String, CryptoError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(claims).map_err(|_| CryptoError("session claims"))?);
        let input = format!("{header}.{payload}");
        let tag = hmac::sign(&self.session, input.as_bytes());
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
    }

    /// The claims of a session this deployment signed, if the signature holds and it has
    /// not expired at `now` (Unix seconds).
    pub fn verify_session(&self, token: &str, now: i64) -> Option<SelectionSession> {
        if token.len() > 4096 {
            return None;
        }
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(s).ok()?;
        hmac::verify(&self.session, format!("{h}.{p}").as_bytes(), &tag).ok()?;
        let claims: SelectionSession =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
        (claims.exp > now).then_some(claims)
    }
}

/// What an operator-selection page needs to know, carried in its signed `session_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionSession {
    /// The application's discovery client id.
    pub app: String,
    /// The verified `Redirect_URL`.
    pub redirect_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub exp: i64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{KeyPair, KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};
    use aws_lc_rs::signature::KeyPair as _;

    fn jwk_of(pair: &KeyPair) -> String {
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        format!(r#"{{"kty":"RSA","use":"enc","kid":"k1","n":"{n}","e":"{e}"}}"#)
    }

    #[test]
    fn subscriber_id_decrypts_with_the_operator_private_key() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let key = OperatorKey::from_jwk(&jwk_of(&pair)).unwrap();
        assert_eq!(key.kid(), Some("k1"));
        let msisdn = Msisdn::parse("447700900301").unwrap();
        let sub = key.encrypt_msisdn(&msisdn).unwrap();
        assert_eq!(sub.len(), 512, "RSA-2048 ciphertext, hex");
        let ct: Vec<u8> = (0..sub.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&sub[i..i + 2], 16).unwrap())
            .collect();
        let der = aws_lc_rs::encoding::AsDer::as_der(&pair).unwrap();
        let private = PrivateDecryptingKey::from_pkcs8(der.as_ref()).unwrap();
        let oaep = OaepPrivateDecryptingKey::new(private).unwrap();
        let mut buf = vec![0u8; 256];
        let plain = oaep
            .decrypt(&OAEP_SHA256_MGF1SHA256, &ct, &mut buf, None)
            .unwrap();
        assert_eq!(plain, b"447700900301");
    }

    #[test]
    fn a_jwks_document_gives_its_enc_key() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let jwks = format!(
            r#"{{"keys":[{{"kty":"RSA","use":"sig","n":"AQAB","e":"AQAB"}},{}]}}"#,
            jwk_of(&pair)
        );
        assert_eq!(OperatorKey::from_jwk(&jwks).unwrap().kid(), Some("k1"));
    }

    #[test]
    fn bad_keys_are_refused() {
        for bad in [
            "",
            "{}",
            r#"{"kty":"EC","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"RSA","n":"!!","e":"AQAB"}"#,
            r#"{"keys":[]}"#,
        ] {
            assert!(OperatorKey::from_jwk(bad).is_err(), "{bad}");
        }
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let sig = jwk_of(&pair).replace("\"enc\"", "\"sig\"");
        assert!(OperatorKey::from_jwk(&sig).is_err());
    }

    #[test]
    fn sealing_binds_the_label() {
        let s = Secrets::from_master(&[7u8; 32]).unwrap();
        let sealed = s.seal("app/op", "s3cret").unwrap();
        assert_eq!(s.open("app/op", &sealed).unwrap(), "s3cret");
        assert!(s.open("app/other", &sealed).is_err());
        let other = Secrets::from_master(&[8u8; 32]).unwrap();
        assert!(other.open("app/op", &sealed).is_err());
    }

    #[test]
    fn sessions_verify_expire_and_resist_tampering() {
        let s = Secrets::from_master(&[7u8; 32]).unwrap();
        let claims = SelectionSession {
            app: "shop".into(),
            redirect_url: "https://shop.example/cb".into(),
            correlation_id: Some("c1".into()),
            exp: 1_000,
        };
        let t = s.sign_session(&claims).unwrap();
        assert_eq!(s.verify_session(&t, 999), Some(claims.clone()));
        assert_eq!(s.verify_session(&t, 1_000), None, "expired");
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        let forged = SelectionSession {
            redirect_url: "https://evil.example/".into(),
            ..claims
        };
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(s.verify_session(&parts.join("."), 0), None);
        assert_eq!(s.verify_session("a.b", 0), None);
        let other = Secrets::from_master(&[9u8; 32]).unwrap();
        assert_eq!(other.verify_session(&t, 0), None);
    }
}
