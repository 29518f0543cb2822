//! The operator's keys: an RSA-2048 signing key (id_tokens, RS256) and an RSA-2048
//! encryption key (`ENCR_MSISDN` login hints), both stored in the store sealed with a
//! key-encryption key (AES-256-GCM), both published in the JWKS.
//!
//! Signing uses a parsed `aws_lc_rs` key held in memory: parsing the DER on every signature
//! (what a generic JWT crate does) costs measurable time on the hot path.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, KeyPair as _, RSA_PKCS1_SHA256, UnparsedPublicKey};
use aws_lc_rs::{digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_core::msisdn::Msisdn;
use mc_store::{KeyRecord, KeyStore, StoreError};
use serde_json::{Value, json};

/// Errors loading or creating keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key-encryption key must be 32 bytes")]
    BadKek,
    #[error("a stored key cannot be unsealed with this key-encryption key (wrong KEK?)")]
    Unseal,
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// AES-256-GCM sealing of private keys at rest.
pub struct Kek(LessSafeKey, [u8; 32]);

impl Clone for Kek {
    fn clone(&self) -> Self {
        // The bytes were accepted once, so they are accepted again.
        Kek::new(&self.1).unwrap_or_else(|_| unreachable!("a valid KEK stays valid"))
    }
}

impl Kek {
    pub fn new(bytes: &[u8]) -> Result<Self, KeyError> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadKek)?;
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KeyError::BadKek)?;
        Ok(Kek(LessSafeKey::new(key), raw))
    }

    /// `nonce || ciphertext || tag`, with the kid as associated data so a sealed blob cannot
    /// be moved to another key's row.
    fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| KeyError::Crypto("rng"))?;
        let mut buf = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buf,
            )
            .map_err(|_| KeyError::Crypto("seal"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Unseal);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unseal)?;
        let mut buf = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| KeyError::Unseal)?;
        Ok(plain.to_vec())
    }
}

/// 32 fresh random bytes for a new key-encryption key.
pub fn new_kek_bytes() -> Result<[u8; 32], KeyError> {
    let mut b = [0u8; 32];
    rand::fill(&mut b).map_err(|_| KeyError::Crypto("rng"))?;
    Ok(b)
}

struct SigningKey {
    kid: String,
    pair: KeyPair,
    /// PKCS#1 `RSAPublicKey` DER, for verifying our own JWTs.
    public_der: Vec<u8>,
}

struct EncryptionKey {
    kid: String,
    private: PrivateDecryptingKey,
}

/// The loaded keys and the JWKS document derived from them.
pub struct KeyRing {
    signing: SigningKey,
    encryption: EncryptionKey,
    jwks: Value,
    /// Seals other secrets at rest (notification bodies carrying tokens).
    kek: Kek,
}

const SIG: &str = "sig";
const ENC: &str = "enc";

impl KeyRing {
    /// Loads the newest `sig` and `enc` keys, generating and storing any that is missing.
    /// Two nodes starting at once may both generate; the store's kid uniqueness plus a reload
    /// makes them converge on whatever was stored (they may keep different keys until
    /// restart; both are published — see docs/decisions.md).
    pub async fn load_or_create(
        store: &dyn KeyStore,
        kek: &Kek,
        now: i64,
    ) -> Result<Self, KeyError> {
        let mut records = store.list_keys().await?;
        for key_use in [SIG, ENC] {
            if !records.iter().any(|r| r.key_use == key_use) {
                // RSA key generation takes up to a second of CPU: keep it off the async workers.
                let record = tokio::task::spawn_blocking(generate_pkcs8)
                    .await
                    .map_err(|_| KeyError::Crypto("keygen task"))??;
                let kid = thumbprint_of_pkcs8(&record)?;
                let rec = KeyRecord {
                    kid: kid.clone(),
                    key_use: key_use.into(),
                    alg: if key_use == SIG {
                        "RS256".into()
                    } else {
                        "RSA-OAEP".into()
                    },
                    private_sealed: kek.seal(&kid, &record)?,
                    created_at: now,
                };
                match store.insert_key(&rec).await {
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                records = store.list_keys().await?;
            }
        }
        Self::from_records(&records, kek)
    }

    fn from_records(records: &[KeyRecord], kek: &Kek) -> Result<Self, KeyError> {
        let newest = |u: &str| {
            records
                .iter()
                .filter(|r| r.key_use == u)
                .max_by_key(|r| (r.created_at, r.kid.clone()))
        };
        let sig = newest(SIG).ok_or(KeyError::Crypto("no signing key"))?;
        let enc = newest(ENC).ok_or(KeyError::Crypto("no encryption key"))?;
        let sig_der = kek.open(&sig.kid, &sig.private_sealed)?;
        let pair =
            KeyPair::from_pkcs8(&sig_der).map_err(|_| KeyError::Crypto("signing key rejected"))?;
        let public_der = pair.public_key().as_ref().to_vec();
        let enc_der = kek.open(&enc.kid, &enc.private_sealed)?;
        let enc_pair = KeyPair::from_pkcs8(&enc_der)
            .map_err(|_| KeyError::Crypto("encryption key rejected"))?;
        let private = PrivateDecryptingKey::from_pkcs8(&enc_der)
            .map_err(|_| KeyError::Crypto("encryption key rejected"))?;
        // Every stored signing key is published (old ones verify tokens still in circulation);
        // only the newest signs.
        let mut keys = Vec::new();
        for r in records.iter().filter(|r| r.key_use == SIG) {
            let der = kek.open(&r.kid, &r.private_sealed)?;
            let p =
                KeyPair::from_pkcs8(&der).map_err(|_| KeyError::Crypto("signing key rejected"))?;
            keys.push(rsa_jwk(&p, &r.kid, Some("RS256"), SIG));
        }
        // The encryption key carries no `alg`: SPs may encrypt with OAEP or PKCS#1 v1.5 and we
        // accept both (digest §4.3); some RP libraries also refuse unknown `alg` values.
        keys.push(rsa_jwk(&enc_pair, &enc.kid, None, ENC));
        Ok(KeyRing {
            signing: SigningKey {
                kid: sig.kid.clone(),
                pair,
                public_der,
            },
            encryption: EncryptionKey {
                kid: enc.kid.clone(),
                private,
            },
            jwks: json!({ "keys": keys }),
            kek: kek.clone(),
        })
    }

    /// Seals `plaintext` at rest with the key-encryption key; `label` (e.g. an outbox item
    /// id) is bound as associated data.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.kek.seal(label, plaintext)
    }

    /// Opens what [`KeyRing::seal`] sealed under the same label.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.kek.open(label, sealed)
    }

    /// The JWKS document.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The `kid` of the signing key in use.
    pub fn signing_kid(&self) -> &str {
        &self.signing.kid
    }

    /// The `kid` of the MSISDN encryption key.
    pub fn encryption_kid(&self) -> &str {
        &self.encryption.kid
    }

    /// A compact RS256 JWS of `claims` with our `kid` (RFC 7515). CPU-heavy: call it from a
    /// blocking task.
    pub fn sign_jwt(&self, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.signing.kid});
        let header = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&header).map_err(|_| KeyError::Crypto("header"))?);
        let payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(claims).map_err(|_| KeyError::Crypto("claims"))?);
        let signing_input = format!("{header}.{payload}");
        let mut sig = vec![0u8; self.signing.pair.public_modulus_len()];
        self.signing
            .pair
            .sign(
                &RSA_PKCS1_SHA256,
                &rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| KeyError::Crypto("sign"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Verifies an RS256 JWS made with our current signing key and returns its claims
    /// (used for `login_hint_token`s minted by the operator's own Discovery).
    pub fn verify_own_jwt(&self, jwt: &str) -> Option<Value> {
        let mut parts = jwt.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header.get("alg")? != "RS256" {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let key = UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &self.signing.public_der,
        );
        key.verify(format!("{h}.{p}").as_bytes(), &sig).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    }

    /// Encrypts an MSISDN to our encryption key (RSA-OAEP-SHA256), hex-encoded: the
    /// `subscriber_id` Discovery hands out and SPs send back as `ENCR_MSISDN:`.
    pub fn encrypt_msisdn(&self, msisdn: &Msisdn) -> Result<String, KeyError> {
        let public = OaepPublicEncryptingKey::new(self.encryption.private.public_key())
            .map_err(|_| KeyError::Crypto("oaep key"))?;
        let mut out = vec![0u8; public.ciphertext_size()];
        let ct = public
            .encrypt(
                &OAEP_SHA256_MGF1SHA256,
                msisdn.as_str().as_bytes(),
                &mut out,
                None,
            )
            .map_err(|_| KeyError::Crypto("encrypt"))?;
        Ok(ct.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Decrypts an `ENCR_MSISDN` hint: each candidate decoding of the right length is tried
    /// with RSA-OAEP (SHA-1 and SHA-256) and PKCS#1 v1.5 (digest §4.3, §14 q3). The plaintext
    /// may be the digits or `MSISDN:` + digits.
    pub fn decrypt_msisdn(&self, candidates: &[Vec<u8>]) -> Option<Msisdn> {
        let size = self.encryption.private.key_size_bytes();
        for ct in candidates.iter().filter(|c| c.len() == size) {
            if let Some(m) = self.try_decrypt(ct) {
                return Some(m);
            }
        }
        None
    }

    fn try_decrypt(&self, ct: &[u8]) -> Option<Msisdn> {
        let mut buf = vec![0u8; self.encryption.private.key_size_bytes()];
        let parse = |plain: &[u8]| {
            let s = std::str::from_utf8(plain).ok()?;
            let s = s.strip_prefix("MSISDN:").unwrap_or(s);
            Msisdn::parse(s.trim())
        };
        if let Ok(oaep) = OaepPrivateDecryptingKey::new(self.encryption.private.clone()) {
            for alg in [&OAEP_SHA256_MGF1SHA256, &OAEP_SHA1_MGF1SHA1] {
                if let Ok(plain) = oaep.decrypt(alg, ct, &mut buf, None) {
                    return parse(plain);
                }
            }
        }
        let pkcs1 = Pkcs1PrivateDecryptingKey::new(self.encryption.private.clone()).ok()?;
        let plain = pkcs1.decrypt(ct, &mut buf).ok()?;
        parse(plain)
    }
}

fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto("keygen"))?;
    let der = pair.as_der().map_err(|_| KeyError::Crypto("pkcs8"))?;
    Ok(der.as_ref().to_vec())
}

fn rsa_jwk(pair: &KeyPair, kid: &str, alg: Option<&str>, key_use: &str) -> Value {
    let public = pair.public_key();
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let mut jwk = json!({"kty": "RSA", "use": key_use, "kid": kid, "n": n, "e": e});
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
    jwk
}

/// RFC 7638 JWK thumbprint: a kid derived from the key itself, stable across restarts.
fn thumbprint_of_pkcs8(der: &[u8]) -> Result<String, KeyError> {
    let pair = KeyPair::from_pkcs8(der).map_err(|_| KeyError::Crypto("key rejected"))?;
    let public = pair.public_key();
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    Ok(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes())))
}
