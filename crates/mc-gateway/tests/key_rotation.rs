//! Signing-key rotation with publish-before-use, seen by a relying party: an RP holding the
//! JWKS it fetched before a rotation keeps validating the tokens signed before it, and the
//! first token signed after it carries a kid that JWKS already held. Two gateway nodes on
//! one store rotate once. Time is injected (`maintain(…, now)`), never waited for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use std::sync::Arc;

use common::*;
use flows::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use mc_gateway::keys::{Kek, KeyPolicy, KeyRing, Rotation};
use mc_gateway::state::{AppState, now};
use mc_store::{DynStore, KeyState};
use mc_store_sqlite::SqliteStore;
use serde_json::Value;

const MSISDN: &str = "447700900301";

async fn fetch_jwks(g: &Gateway) -> JwkSet {
    let r = g
        .http()
        .get(format!("{}/jwks", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

/// Validates `id_token` as an RP holding `jwks` would: the key its `kid` names, RS256,
/// audience and issuer.
fn validate(jwks: &JwkSet, g: &Gateway, client_id: &str, id_token: &str) -> Result<Value, String> {
    let kid = decode_header(id_token).unwrap().kid.expect("a kid");
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} not in the RP's JWKS"))?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[client_id]);
    v.set_issuer(&[g.base.as_str()]);
    decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn id_token(g: &Gateway, sp: &Sp) -> String {
    let code = code_for(g, sp, MSISDN, |_| {}).await;
    redeem(g, sp, &code).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn state_of(g: &Gateway, kid: &str) -> Option<&'static str> {
    g.state
        .keys
        .infos()
        .into_iter()
        .find(|k| k.kid == kid)
        .map(|k| k.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_tokens_valid_and_signs_with_a_prepublished_key() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let store = g.store().clone();
    let policy = KeyPolicy::from_config(&g.state.config);
    assert!(policy.publish_ahead > 0 && policy.rotate_every > policy.publish_ahead);

    // Before any rotation is near: one signing key, which signs.
    let k1 = g.state.keys.signing_kid();
    let before = id_token(&g, &sp).await;
    assert_eq!(
        decode_header(&before).unwrap().kid.as_deref(),
        Some(k1.as_str())
    );
    let jwks_early = fetch_jwks(&g).await;

    // `publish_ahead` before the rotation is due: a next key is published, not signing.
    let infos = g.state.keys.infos();
    let active = infos.iter().find(|k| k.kid == k1).unwrap();
    let due = active.activates_at.unwrap() + policy.rotate_every;
    let t_publish = due - policy.publish_ahead;
    let done = g
        .state
        .keys
        .maintain(&*store, &policy, t_publish - 1)
        .await
        .unwrap();
    assert_eq!(done.created_next, None, "no next key before publish-ahead");
    let done = g
        .state
        .keys
        .maintain(&*store, &policy, t_publish)
        .await
        .unwrap();
    let k2 = done.created_next.expect("a next key is published");
    assert_eq!(state_of(&g, &k2), Some("next"));
    assert_eq!(
        g.state.keys.signing_kid(),
        k1,
        "the next key does not sign yet"
    );
    // The RP fetches the JWKS after the next key was published (and caches it).
    let rp_jwks = fetch_jwks(&g).await;
    assert!(kids(&rp_jwks).contains(&k1) && kids(&rp_jwks).contains(&k2));
    let still_k1 = id_token(&g, &sp).await;
    assert_eq!(
        decode_header(&still_k1).unwrap().kid.as_deref(),
        Some(k1.as_str())
    );

    // Not yet due: nothing happens.
    let done = g
        .state
        .keys
        .maintain(&*store, &policy, due - 1)
        .await
        .unwrap();
    assert_eq!(done.promoted, None);

    // Due: the next key signs, the old one retires (still published).
    let done = g.state.keys.maintain(&*store, &policy, due).await.unwrap();
    assert_eq!(done.promoted, Some((k1.clone(), k2.clone())));
    assert_eq!(g.state.keys.signing_kid(), k2);
    assert_eq!(state_of(&g, &k1), Some("retiring"));
    let after = id_token(&g, &sp).await;
    let after_kid = decode_header(&after).unwrap().kid.unwrap();
    assert_eq!(after_kid, k2);

    // The RP with the JWKS fetched before the rotation validates everything: the tokens
    // signed before it and the one signed after it (its kid was published in advance).
    for t in [&before, &still_k1, &after] {
        validate(&rp_jwks, &g, &sp.client_id, t).unwrap();
    }
    // An RP that cached the JWKS before the next key was published would not know k2: what
    // publish-ahead (longer than the JWKS cache time) prevents.
    assert!(validate(&jwks_early, &g, &sp.client_id, &after).is_err());

    // An RP fetching now still validates the tokens of the old key.
    let jwks_now = fetch_jwks(&g).await;
    assert!(
        kids(&jwks_now).contains(&k1),
        "the retiring key stays published"
    );
    validate(&jwks_now, &g, &sp.client_id, &before).unwrap();
    validate(&jwks_now, &g, &sp.client_id, &after).unwrap();

    // Until every token it signed has expired (+ refresh + skew): then it is gone.
    let remove_at = due + policy.retire_after;
    let done = g
        .state
        .keys
        .maintain(&*store, &policy, remove_at - 1)
        .await
        .unwrap();
    assert!(done.removed.is_empty());
    let done = g
        .state
        .keys
        .maintain(&*store, &policy, remove_at)
        .await
        .unwrap();
    assert_eq!(done.removed, vec![k1.clone()]);
    let jwks_late = fetch_jwks(&g).await;
    assert!(!kids(&jwks_late).contains(&k1));
    assert!(kids(&jwks_late).contains(&k2));
    assert!(store.list_keys().await.unwrap().iter().all(|k| k.kid != k1));
    // The encryption key was not touched.
    assert_eq!(
        jwks_late
            .keys
            .iter()
            .filter(|k| k.common.public_key_use
                == Some(jsonwebtoken::jwk::PublicKeyUse::Encryption))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_manual_rotation_waits_for_publish_ahead_and_immediate_does_not() {
    let g = Gateway::start().await;
    let store = g.store().clone();
    let policy = KeyPolicy::from_config(&g.state.config);
    let k1 = g.state.keys.signing_kid();
    let t = now();

    // No next key yet: one is published and scheduled `publish_ahead` from now.
    let r = g
        .state
        .keys
        .rotate(&*store, &policy, "sig", false, t)
        .await
        .unwrap();
    let Rotation::Scheduled {
        kid: k2,
        activates_at,
    } = r
    else {
        panic!("expected a scheduled rotation, got {r:?}");
    };
    assert_eq!(activates_at, t + policy.publish_ahead);
    assert_eq!(g.state.keys.signing_kid(), k1);
    assert!(kids(&fetch_jwks(&g).await).contains(&k2));
    // The key worker's round promotes it when its time comes.
    let done = g
        .state
        .keys
        .maintain(&*store, &policy, activates_at)
        .await
        .unwrap();
    assert_eq!(done.promoted, Some((k1.clone(), k2.clone())));

    // Emergency: a new key signs at once; the old one stays published while retiring.
    let r = g
        .state
        .keys
        .rotate(&*store, &policy, "sig", true, activates_at + 10)
        .await
        .unwrap();
    let Rotation::Rotated {
        kid: k3, retired, ..
    } = r
    else {
        panic!("expected a rotation, got {r:?}");
    };
    assert_eq!(retired, k2);
    assert_eq!(g.state.keys.signing_kid(), k3);
    let jwks = fetch_jwks(&g).await;
    assert!(kids(&jwks).contains(&k2) && kids(&jwks).contains(&k3));

    // The encryption key: a new one encrypts; ENCR_MSISDN values minted for the old one
    // still decrypt (the old key is no longer published).
    let msisdn = mc_core::msisdn::Msisdn::parse(MSISDN).unwrap();
    let old_enc = g.state.keys.encryption_kid();
    let minted_before = g.state.keys.encrypt_msisdn(&msisdn).unwrap();
    let r = g
        .state
        .keys
        .rotate(&*store, &policy, "enc", false, activates_at + 20)
        .await
        .unwrap();
    assert!(matches!(r, Rotation::Rotated { .. }), "{r:?}");
    assert_ne!(g.state.keys.encryption_kid(), old_enc);
    let hex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    assert_eq!(
        g.state.keys.decrypt_msisdn(&[hex(&minted_before)]),
        Some(msisdn.clone())
    );
    let minted_after = g.state.keys.encrypt_msisdn(&msisdn).unwrap();
    assert_eq!(
        g.state.keys.decrypt_msisdn(&[hex(&minted_after)]),
        Some(msisdn)
    );
    let jwks = fetch_jwks(&g).await;
    assert!(!kids(&jwks).contains(&old_enc));
    assert!(kids(&jwks).contains(&g.state.keys.encryption_kid()));
}

/// Two gateway nodes (two `AppState`s with their own key rings) on one store: racing
/// rounds publish one next key and rotate once, and a node learns of a rotation another
/// made when it refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_store_rotate_once() {
    let dir = temp_dir("two-nodes-keys");
    let store: DynStore = Arc::new(SqliteStore::open(&dir.join("mc.db")).await.unwrap());
    let kek = Kek::new(&KEK).unwrap();
    let t0 = now();
    let cfg = config("http://127.0.0.1:9");
    let (ra, rb) = tokio::join!(
        KeyRing::load_or_create(&*store, &kek, t0),
        KeyRing::load_or_create(&*store, &kek, t0)
    );
    let a = AppState::new(store.clone(), cfg.clone(), ra.unwrap());
    let b = AppState::new(store.clone(), cfg.clone(), rb.unwrap());
    let k1 = a.keys.signing_kid();
    assert_eq!(b.keys.signing_kid(), k1, "both nodes start on the same key");
    let policy = KeyPolicy::from_config(&cfg);
    let active_since = a
        .keys
        .infos()
        .into_iter()
        .find(|k| k.kid == k1)
        .unwrap()
        .activates_at
        .unwrap();
    let due = active_since + policy.rotate_every;

    let publish = due - policy.publish_ahead;
    let (x, y) = tokio::join!(
        a.keys.maintain(&*store, &policy, publish),
        b.keys.maintain(&*store, &policy, publish)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let created: Vec<String> = [x.created_next, y.created_next]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(created.len(), 1, "one next key for both nodes");
    let k2 = created[0].clone();

    let (x, y) = tokio::join!(
        a.keys.maintain(&*store, &policy, due),
        b.keys.maintain(&*store, &policy, due)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let promoted: Vec<(String, String)> = [x.promoted, y.promoted].into_iter().flatten().collect();
    assert_eq!(
        promoted,
        vec![(k1.clone(), k2.clone())],
        "exactly one rotation"
    );
    // Whichever node lost refreshed too.
    b.keys.refresh(&*store).await.unwrap();
    assert_eq!(a.keys.signing_kid(), k2);
    assert_eq!(b.keys.signing_kid(), k2);
    let stored = store.list_keys().await.unwrap();
    let sig = |s: KeyState| {
        stored
            .iter()
            .filter(|k| k.key_use == "sig" && k.state == s)
            .count()
    };
    assert_eq!((sig(KeyState::Active), sig(KeyState::Retiring)), (1, 1));
    assert_eq!(a.keys.jwks(), b.keys.jwks());

    // Node B rotates (an operator on B, in an emergency); A signs with the old key until
    // its next refresh, then with the new one.
    let r = b
        .keys
        .rotate(&*store, &policy, "sig", true, due + 5)
        .await
        .unwrap();
    let Rotation::Rotated { kid: k3, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(a.keys.signing_kid(), k2);
    // What A signs before it refreshes still verifies against B's published keys.
    let by_a = a.keys.sign_jwt(&serde_json::json!({"iss": "a"})).unwrap();
    assert_eq!(
        decode_header(&by_a).unwrap().kid.as_deref(),
        Some(k2.as_str())
    );
    assert!(b.keys.verify_own_jwt(&by_a).is_some());
    assert!(a.keys.refresh(&*store).await.unwrap(), "A sees the change");
    assert_eq!(a.keys.signing_kid(), k3);
    assert!(
        !a.keys.refresh(&*store).await.unwrap(),
        "nothing changed since"
    );
    assert_eq!(a.keys.jwks(), b.keys.jwks());
}

/// Keys at rest: the store holds only `nonce || AES-256-GCM(private key)` under the KEK with
/// the kid bound in. The rows carry no trace of the key's modulus (a plaintext PKCS#8 or
/// PEM would), a node with another KEK cannot load them, and a blob moved to another
/// kid's row does not open.
#[tokio::test]
async fn keys_are_sealed_at_rest_under_the_kek() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let dir = temp_dir("sealed-keys");
    let store: DynStore = Arc::new(SqliteStore::open(&dir.join("mc.db")).await.unwrap());
    let kek = Kek::new(&KEK).unwrap();
    let ring = KeyRing::load_or_create(&*store, &kek, now()).await.unwrap();
    let jwks = ring.jwks();
    let rows = store.list_keys().await.unwrap();
    assert_eq!(rows.len(), 2, "one sig and one enc key");
    for row in &rows {
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == row.kid.as_str())
            .unwrap_or_else(|| panic!("kid {} is published", row.kid));
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert!(n.len() >= 256, "RSA-2048 or larger");
        // The modulus' first 16 bytes: a plaintext DER key would hold them.
        let sealed = &row.private_sealed;
        assert!(
            !sealed.windows(16).any(|w| w == &n[..16]),
            "the modulus appears in the stored row"
        );
        assert!(
            !String::from_utf8_lossy(sealed).contains("PRIVATE KEY"),
            "the stored row is a PEM"
        );
    }

    let other = Kek::new(&[8u8; 32]).unwrap();
    assert!(
        KeyRing::load_or_create(&*store, &other, now())
            .await
            .is_err(),
        "another KEK must not open the keys"
    );

    // The kid is bound in: the sig key's blob under the enc key's kid does not open.
    let dir2 = temp_dir("sealed-keys-swapped");
    let store2: DynStore = Arc::new(SqliteStore::open(&dir2.join("mc.db")).await.unwrap());
    let (a, b) = (&rows[0], &rows[1]);
    let mut moved_a = a.clone();
    moved_a.private_sealed = b.private_sealed.clone();
    let mut moved_b = b.clone();
    moved_b.private_sealed = a.private_sealed.clone();
    store2.insert_key(&moved_a).await.unwrap();
    store2.insert_key(&moved_b).await.unwrap();
    assert!(
        KeyRing::load_or_create(&*store2, &kek, now())
            .await
            .is_err(),
        "a sealed key moved to another kid's row must not open"
    );
}
