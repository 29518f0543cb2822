//! The operator's keys: RSA-2048 signing keys (id_tokens, RS256) and an RSA-2048
//! encryption key (`ENCR_MSISDN` login hints), stored sealed with a key-encryption key
//! (AES-256-GCM, the kid bound as associated data) that comes from configuration
//! (`keys.kek_file`) and is never stored with them.
//!
//! # Lifecycle
//!
//! A signing key is `next` (published in the JWKS, not signing), then `active` (signs), then
//! `retiring` (published until every token it signed has expired), then deleted. The key
//! worker ([`spawn_key_worker`]) runs [`KeyRing::maintain`] on every node: `publish_ahead`
//! before the active key is due (`rotate_every` after it started) it publishes a `next` key,
//! promotes it when due, deletes retired keys and reloads the ring from the store. Every step is
//! a conditional store write, so nodes sharing a database rotate once. The encryption key
//! is rotated only on request (`mobileconnect admin keys rotate --use enc`): SPs hold
//! `ENCR_MSISDN` values minted for it, so a replaced one keeps decrypting (unpublished) for
//! `enc_retire_after_secs`. See docs/decisions.md.
//!
//! Signing uses a parsed `aws_lc_rs` key held in memory: parsing the DER on every signature
//! (what a generic JWT crate does) costs measurable time on the hot path. The view of the
//! keys is swapped whole on a change; readers clone an `Arc`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, KeyPair as _, RSA_PKCS1_SHA256, UnparsedPublicKey};
use aws_lc_rs::{digest, rand};
use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_core::msisdn::Msisdn;
use mc_store::{KeyRecord, KeyState, KeyStore, StoreError};
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

use crate::config::GatewayConfig;
use crate::state::{AppState, now};

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
}

struct EncryptionKey {
    kid: String,
    private: PrivateDecryptingKey,
}

/// One consistent view of the stored keys, swapped whole when the store changes.
struct Loaded {
    /// The `active` signing key.
    signing: SigningKey,
    /// Every published signing key (`next`, `active`, `retiring`): kid → PKCS#1 public DER.
    verifying: Vec<(String, Vec<u8>)>,
    /// The `active` encryption key (what `ENCR_MSISDN` values are minted for).
    encryption: EncryptionKey,
    /// The `active` encryption key first, then the `retiring` ones (still decrypting the
    /// values minted before a rotation).
    decrypting: Vec<PrivateDecryptingKey>,
    jwks: Value,
    /// The JWKS document, serialized once per change (served as is).
    jwks_body: Bytes,
    /// What the keys are, without private parts.
    infos: Vec<KeyInfo>,
}

/// A stored key as operators see it (`mobileconnect admin keys list`): no private part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
    pub state: &'static str,
    /// Whether the JWKS carries it.
    pub published: bool,
    pub created_at: i64,
    /// `next`: when it is planned to start signing; otherwise when it started.
    pub activates_at: Option<i64>,
    /// `retiring`: when it stopped being used.
    pub deactivated_at: Option<i64>,
    /// `retiring`: when it leaves the JWKS and is deleted.
    pub remove_at: Option<i64>,
}

impl KeyInfo {
    fn of(r: &KeyRecord) -> KeyInfo {
        KeyInfo {
            kid: r.kid.clone(),
            alg: r.alg.clone(),
            key_use: r.key_use.clone(),
            state: r.state.as_str(),
            published: published(r),
            created_at: r.created_at,
            activates_at: r.activates_at,
            deactivated_at: r.deactivated_at,
            remove_at: r.remove_at,
        }
    }
}

/// Signing keys are published in every state (`next` ahead of use, `retiring` until the
/// tokens they signed have expired); only the `active` encryption key is (encryptors must
/// not pick an old one).
fn published(r: &KeyRecord) -> bool {
    match r.key_use.as_str() {
        SIG => true,
        _ => r.state == KeyState::Active,
    }
}

/// The schedule of the key lifecycle, derived from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Seconds a signing key signs before the next one takes over; 0: no scheduled rotation.
    pub rotate_every: i64,
    /// Seconds a new signing key is published before it signs.
    pub publish_ahead: i64,
    /// Seconds a signing key stays published after it stopped signing: the longest token
    /// lifetime, plus the nodes' refresh interval (a node signs with the old key until it
    /// refreshes), plus clock skew.
    pub retire_after: i64,
    /// Seconds a replaced encryption key still decrypts `ENCR_MSISDN` values.
    pub enc_retire_after: i64,
}

impl KeyPolicy {
    pub fn from_config(c: &GatewayConfig) -> KeyPolicy {
        let k = &c.keys;
        let longest = i64::from(c.tokens.id_token_secs.max(c.tokens.access_token_secs));
        KeyPolicy {
            rotate_every: k.rotate_every_secs as i64,
            publish_ahead: k.publish_ahead_secs as i64,
            retire_after: longest + i64::from(k.refresh_secs) + i64::from(k.clock_skew_secs),
            enc_retire_after: k.enc_retire_after_secs as i64,
        }
    }
}

/// What one [`KeyRing::maintain`] round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// A new `next` signing key this node stored.
    pub created_next: Option<String>,
    /// `(old, new)`: the rotation this node made.
    pub promoted: Option<(String, String)>,
    /// Retired keys deleted.
    pub removed: Vec<String>,
}

/// What `rotate` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Rotation {
    /// `kid` signs (or encrypts) from now on; `retired` stays published until `remove_at`.
    Rotated {
        #[serde(rename = "use")]
        key_use: String,
        kid: String,
        retired: String,
        remove_at: i64,
    },
    /// `kid` is published and starts signing at `activates_at` (publish-ahead); the
    /// gateway's key worker promotes it then.
    Scheduled { kid: String, activates_at: i64 },
}

/// The operator's keys, loaded from the store and refreshed from it while running, so a
/// rotation made by another node (or by `mobileconnect admin keys rotate`) is picked up.
/// Cheap on the hot path: readers clone an `Arc` of the current view.
pub struct KeyRing {
    current: RwLock<Arc<Loaded>>,
    /// Unseals the stored keys; seals other secrets at rest (notification bodies).
    kek: Kek,
}

const SIG: &str = "sig";
const ENC: &str = "enc";

impl KeyRing {
    /// Loads the `active` `sig` and `enc` keys, generating and storing any that is missing.
    /// Two nodes starting at once may both generate; the store keeps one `active` key per
    /// use and the loser loads the winner's.
    pub async fn load_or_create(
        store: &dyn KeyStore,
        kek: &Kek,
        now: i64,
    ) -> Result<Self, KeyError> {
        let mut records = store.list_keys().await?;
        for key_use in [SIG, ENC] {
            let has_active = |rs: &[KeyRecord]| {
                rs.iter()
                    .any(|r| r.key_use == key_use && r.state == KeyState::Active)
            };
            if !has_active(&records) {
                let rec = new_key(kek, key_use, KeyState::Active, now, Some(now)).await?;
                match store.insert_key(&rec).await {
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                records = store.list_keys().await?;
                if !has_active(&records) {
                    return Err(KeyError::Crypto("no active key after creating one"));
                }
            }
        }
        Ok(KeyRing {
            current: RwLock::new(Arc::new(load(&records, kek)?)),
            kek: kek.clone(),
        })
    }

    fn view(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reloads the keys from the store; the view is rebuilt only when they changed.
    /// Returns whether they did.
    pub async fn refresh(&self, store: &dyn KeyStore) -> Result<bool, KeyError> {
        let records = store.list_keys().await?;
        let infos: Vec<KeyInfo> = records.iter().map(KeyInfo::of).collect();
        if infos == self.view().infos {
            return Ok(false);
        }
        let loaded = load(&records, &self.kek)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
        Ok(true)
    }

    /// One round of the scheduled lifecycle at `now`, safe to run on every node at once
    /// (each step is a conditional store write only one node wins): deletes retired keys
    /// whose time is up, promotes the `next` signing key when its time has come and it has
    /// been published for `publish_ahead`, publishes a `next` key `publish_ahead` before
    /// the active one is due for rotation (`rotate_every` after it started), and refreshes
    /// this ring.
    pub async fn maintain(
        &self,
        store: &dyn KeyStore,
        policy: &KeyPolicy,
        now: i64,
    ) -> Result<Maintenance, KeyError> {
        let mut done = Maintenance {
            removed: store.remove_retired_keys(now).await?,
            ..Maintenance::default()
        };
        if policy.rotate_every > 0 {
            let records = store.list_keys().await?;
            let (active, next) = sig_pair(&records);
            if let (Some(active), Some(next)) = (active, next)
                && next.activates_at.is_some_and(|at| at <= now)
                && next.created_at.saturating_add(policy.publish_ahead) <= now
                && store
                    .promote_key(
                        &active.kid,
                        &next.kid,
                        now,
                        now.saturating_add(policy.retire_after),
                    )
                    .await?
            {
                tracing::info!(old = %active.kid, new = %next.kid, "signing key rotated");
                done.promoted = Some((active.kid.clone(), next.kid.clone()));
            }
            let records = store.list_keys().await?;
            if let (Some(active), None) = sig_pair(&records)
                && let due = active
                    .activates_at
                    .unwrap_or(active.created_at)
                    .saturating_add(policy.rotate_every)
                && now >= due.saturating_sub(policy.publish_ahead)
            {
                let at = due.max(now.saturating_add(policy.publish_ahead));
                let rec = new_key(&self.kek, SIG, KeyState::Next, now, Some(at)).await?;
                match store.insert_key(&rec).await {
                    Ok(()) => {
                        tracing::info!(kid = %rec.kid, activates_at = at, "next signing key published");
                        done.created_next = Some(rec.kid);
                    }
                    // Another node was first.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for kid in &done.removed {
            tracing::info!(%kid, "retired key removed");
        }
        self.refresh(store).await?;
        Ok(done)
    }

    /// Rotates now. Signing key: the `next` key (created if there is none) signs from now
    /// if it has been published for `publish_ahead`, otherwise it is scheduled to start as
    /// soon as it has been; `immediate` skips publish-ahead (emergencies: RPs that cached
    /// the JWKS fetch it again when they meet the unknown kid). Encryption key
    /// (`key_use = "enc"`): always immediate; the old one keeps decrypting for
    /// `enc_retire_after`.
    pub async fn rotate(
        &self,
        store: &dyn KeyStore,
        policy: &KeyPolicy,
        key_use: &str,
        immediate: bool,
        now: i64,
    ) -> Result<Rotation, KeyError> {
        if key_use != SIG && key_use != ENC {
            return Err(KeyError::Crypto("key use must be sig or enc"));
        }
        let immediate = immediate || key_use == ENC;
        let retire_after = if key_use == SIG {
            policy.retire_after
        } else {
            policy.enc_retire_after
        };
        // A few rounds: another node may rotate (or insert a next key) in between.
        for _ in 0..3 {
            let records = store.list_keys().await?;
            let of_use = |s: KeyState| {
                records
                    .iter()
                    .find(|r| r.key_use == key_use && r.state == s)
            };
            let Some(active) = of_use(KeyState::Active) else {
                return Err(KeyError::Crypto("no active key"));
            };
            let next = match of_use(KeyState::Next) {
                Some(n) => n.clone(),
                None => {
                    let at = now.saturating_add(if immediate { 0 } else { policy.publish_ahead });
                    let rec = new_key(&self.kek, key_use, KeyState::Next, now, Some(at)).await?;
                    match store.insert_key(&rec).await {
                        Ok(()) => rec,
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let ready_at = next.created_at.saturating_add(policy.publish_ahead);
            if !immediate && ready_at > now {
                if !store.schedule_key(&next.kid, ready_at).await? {
                    continue;
                }
                self.refresh(store).await?;
                return Ok(Rotation::Scheduled {
                    kid: next.kid,
                    activates_at: ready_at,
                });
            }
            let remove_at = now.saturating_add(retire_after);
            if store
                .promote_key(&active.kid, &next.kid, now, remove_at)
                .await?
            {
                tracing::warn!(use = key_use, old = %active.kid, new = %next.kid, immediate, "key rotated by request");
                self.refresh(store).await?;
                return Ok(Rotation::Rotated {
                    key_use: key_use.to_owned(),
                    kid: next.kid,
                    retired: active.kid.clone(),
                    remove_at,
                });
            }
        }
        Err(KeyError::Crypto(
            "the keys kept changing during the rotation; try again",
        ))
    }

    /// The stored keys as of the last refresh, oldest first, without private parts.
    pub fn infos(&self) -> Vec<KeyInfo> {
        self.view().infos.clone()
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
    pub fn jwks(&self) -> Value {
        self.view().jwks.clone()
    }

    /// The JWKS document as served (serialized once per change; cloning is a reference
    /// count).
    pub fn jwks_body(&self) -> Bytes {
        self.view().jwks_body.clone()
    }

    /// The `kid` of the signing key in use.
    pub fn signing_kid(&self) -> String {
        self.view().signing.kid.clone()
    }

    /// The `kid` of the MSISDN encryption key.
    pub fn encryption_kid(&self) -> String {
        self.view().encryption.kid.clone()
    }

    /// A compact RS256 JWS of `claims` with our `kid` (RFC 7515). About 0.7 ms of CPU for
    /// RSA-2048: callers run it on the async worker itself. Handing it to the blocking pool
    /// only adds two thread hand-offs to a CPU-bound server (the pool's threads share the same
    /// cores): measured 4–7 % fewer logins per second that way (docs/benchmarks.md).
    pub fn sign_jwt(&self, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        let view = self.view();
        let signing = &view.signing;
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": signing.kid});
        let header = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&header).map_err(|_| KeyError::Crypto("header"))?);
        let payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(claims).map_err(|_| KeyError::Crypto("claims"))?);
        let signing_input = format!("{header}.{payload}");
        let mut sig = vec![0u8; signing.pair.public_modulus_len()];
        signing
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

    /// Verifies an RS256 JWS made with one of our published signing keys (the one its `kid`
    /// names, or any when it names none) and returns its claims (used for
    /// `login_hint_token`s minted by the operator's own Discovery).
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
        let kid = header.get("kid").and_then(Value::as_str);
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let input = format!("{h}.{p}");
        let view = self.view();
        let verified = view
            .verifying
            .iter()
            .filter(|(k, _)| kid.is_none_or(|kid| kid == k))
            .any(|(_, der)| {
                UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(input.as_bytes(), &sig)
                    .is_ok()
            });
        if !verified {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    }

    /// Encrypts an MSISDN to our encryption key (RSA-OAEP-SHA256), hex-encoded: the
    /// `subscriber_id` Discovery hands out and SPs send back as `ENCR_MSISDN:`.
    pub fn encrypt_msisdn(&self, msisdn: &Msisdn) -> Result<String, KeyError> {
        let view = self.view();
        let public = OaepPublicEncryptingKey::new(view.encryption.private.public_key())
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
        Ok(hex::encode(ct))
    }

    /// Decrypts an `ENCR_MSISDN` hint: each candidate decoding of the right length is tried
    /// with RSA-OAEP (SHA-1 and SHA-256) and PKCS#1 v1.5 (digest §4.3, §14 q3), with the
    /// active encryption key and then the retiring ones. The plaintext may be the digits or
    /// `MSISDN:` + digits.
    pub fn decrypt_msisdn(&self, candidates: &[Vec<u8>]) -> Option<Msisdn> {
        let view = self.view();
        for key in &view.decrypting {
            let size = key.key_size_bytes();
            for ct in candidates.iter().filter(|c| c.len() == size) {
                if let Some(m) = try_decrypt(key, ct) {
                    return Some(m);
                }
            }
        }
        None
    }
}

fn try_decrypt(key: &PrivateDecryptingKey, ct: &[u8]) -> Option<Msisdn> {
    let mut buf = vec![0u8; key.key_size_bytes()];
    let parse = |plain: &[u8]| {
        let s = std::str::from_utf8(plain).ok()?;
        let s = s.strip_prefix("MSISDN:").unwrap_or(s);
        Msisdn::parse(s.trim())
    };
    if let Ok(oaep) = OaepPrivateDecryptingKey::new(key.clone()) {
        for alg in [&OAEP_SHA256_MGF1SHA256, &OAEP_SHA1_MGF1SHA1] {
            if let Ok(plain) = oaep.decrypt(alg, ct, &mut buf, None) {
                return parse(plain);
            }
        }
    }
    let pkcs1 = Pkcs1PrivateDecryptingKey::new(key.clone()).ok()?;
    let plain = pkcs1.decrypt(ct, &mut buf).ok()?;
    parse(plain)
}

/// The `active` and `next` signing keys.
fn sig_pair(records: &[KeyRecord]) -> (Option<&KeyRecord>, Option<&KeyRecord>) {
    let of = |s: KeyState| records.iter().find(|r| r.key_use == SIG && r.state == s);
    (of(KeyState::Active), of(KeyState::Next))
}

/// A fresh RSA-2048 key, sealed. Key generation takes up to a second of CPU: off the async
/// workers.
async fn new_key(
    kek: &Kek,
    key_use: &str,
    state: KeyState,
    now: i64,
    activates_at: Option<i64>,
) -> Result<KeyRecord, KeyError> {
    let der = tokio::task::spawn_blocking(generate_pkcs8)
        .await
        .map_err(|_| KeyError::Crypto("keygen task"))??;
    let kid = thumbprint_of_pkcs8(&der)?;
    Ok(KeyRecord {
        private_sealed: kek.seal(&kid, &der)?,
        kid,
        key_use: key_use.into(),
        alg: if key_use == SIG { "RS256" } else { "RSA-OAEP" }.into(),
        created_at: now,
        state,
        activates_at,
        deactivated_at: None,
        remove_at: None,
    })
}

/// Builds the view of `records`: needs an `active` key of each use.
fn load(records: &[KeyRecord], kek: &Kek) -> Result<Loaded, KeyError> {
    let mut signing = None;
    let mut encryption = None;
    let mut verifying = Vec::new();
    let mut decrypting = Vec::new();
    let mut retiring_enc = Vec::new();
    let mut jwks = Vec::new();
    // Newest first in the JWKS: the key that signs next is listed before older ones.
    let mut ordered: Vec<&KeyRecord> = records.iter().collect();
    ordered.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.kid.clone())));
    for r in ordered {
        let der = kek.open(&r.kid, &r.private_sealed)?;
        let pair =
            KeyPair::from_pkcs8(&der).map_err(|_| KeyError::Crypto("stored key rejected"))?;
        match (r.key_use.as_str(), r.state) {
            (SIG, state) => {
                jwks.push(rsa_jwk(&pair, &r.kid, Some("RS256"), SIG));
                verifying.push((r.kid.clone(), pair.public_key().as_ref().to_vec()));
                if state == KeyState::Active {
                    signing = Some(SigningKey {
                        kid: r.kid.clone(),
                        pair,
                    });
                }
            }
            (ENC, KeyState::Active) => {
                // The encryption key carries no `alg`: SPs may encrypt with OAEP or PKCS#1
                // v1.5 and we accept both (digest §4.3); some RP libraries also refuse
                // unknown `alg` values.
                jwks.push(rsa_jwk(&pair, &r.kid, None, ENC));
                let private = PrivateDecryptingKey::from_pkcs8(&der)
                    .map_err(|_| KeyError::Crypto("encryption key rejected"))?;
                decrypting.insert(0, private.clone());
                encryption = Some(EncryptionKey {
                    kid: r.kid.clone(),
                    private,
                });
            }
            (ENC, KeyState::Retiring) => {
                retiring_enc.push(
                    PrivateDecryptingKey::from_pkcs8(&der)
                        .map_err(|_| KeyError::Crypto("encryption key rejected"))?,
                );
            }
            // A `next` encryption key exists only inside a rotation.
            _ => {}
        }
    }
    decrypting.extend(retiring_enc);
    let jwks = json!({ "keys": jwks });
    Ok(Loaded {
        signing: signing.ok_or(KeyError::Crypto("no active signing key"))?,
        verifying,
        encryption: encryption.ok_or(KeyError::Crypto("no active encryption key"))?,
        decrypting,
        jwks_body: Bytes::from(jwks.to_string()),
        jwks,
        infos: records.iter().map(KeyInfo::of).collect(),
    })
}

/// Starts the key worker: every `keys.refresh_secs` it runs [`KeyRing::maintain`] (rotation
/// on schedule, removal of retired keys, refresh from the store). Holds the state weakly,
/// like the notification worker.
pub fn spawn_key_worker(state: AppState) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&state.0);
    let every = std::time::Duration::from_secs(u64::from(state.config.keys.refresh_secs.max(1)));
    let policy = KeyPolicy::from_config(&state.config);
    drop(state);
    tokio::spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { break };
            if let Err(e) = inner.keys.maintain(&*inner.store, &policy, now()).await {
                tracing::error!(error = %e, "key maintenance failed; retrying at the next round");
            }
            drop(inner);
            tokio::time::sleep(every).await;
        }
        tracing::debug!("key worker stopped");
    })
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

/// `[gateway.keys]`: the signing-key lifecycle. The key-encryption key itself comes from
/// the binary's `[keys] kek_file` (never from the store).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Seconds a signing key signs before the next one takes over (default 90 days); 0
    /// turns scheduled rotation off (`mobileconnect admin keys rotate` still works).
    pub rotate_every_secs: u64,
    /// Seconds a new signing key is in the JWKS before it signs (default 7 days): longer
    /// than RPs cache the JWKS.
    pub publish_ahead_secs: u64,
    /// How often each node runs the lifecycle and reloads the keys from the store.
    pub refresh_secs: u32,
    /// Allowance for clocks that disagree, added to how long a retired key stays published.
    pub clock_skew_secs: u32,
    /// Seconds a replaced encryption key still decrypts `ENCR_MSISDN` values (default 90
    /// days): SPs hold such values from Discovery.
    pub enc_retire_after_secs: u64,
}

/// What `Cache-Control` lets an RP keep the JWKS for (`routes::metadata`).
pub const JWKS_MAX_AGE_SECS: u64 = 300;

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            rotate_every_secs: 90 * 86_400,
            publish_ahead_secs: 7 * 86_400,
            refresh_secs: 60,
            clock_skew_secs: 300,
            enc_retire_after_secs: 90 * 86_400,
        }
    }
}

impl KeysConfig {
    /// The rules serde cannot express; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.refresh_secs) {
            return Err("keys.refresh_secs: must be 1..=3600".into());
        }
        // A node learns of a new key within refresh_secs, an RP within the JWKS max-age.
        let least = u64::from(self.refresh_secs) + JWKS_MAX_AGE_SECS;
        if self.publish_ahead_secs < least {
            return Err(format!(
                "keys.publish_ahead_secs: must be at least refresh_secs + {JWKS_MAX_AGE_SECS} (the JWKS cache time), i.e. {least}"
            ));
        }
        if self.rotate_every_secs != 0 && self.rotate_every_secs < self.publish_ahead_secs {
            return Err(
                "keys.rotate_every_secs: must be 0 (off) or at least publish_ahead_secs".into(),
            );
        }
        if self.clock_skew_secs > 3600 {
            return Err("keys.clock_skew_secs: must be at most 3600".into());
        }
        Ok(())
    }
}
