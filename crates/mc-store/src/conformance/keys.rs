//! Conformance of [`crate::KeyStore`]: keys round-trip, one `active` and one `next` key
//! per use, a promotion happens once (two nodes racing rotate once), retired keys go.
//! Uses kids `cf-key-*` and expects no other `active` or `next` key in the store (the
//! schema allows only the uses `sig` and `enc`, so the suite cannot pick a use of its own):
//! run it on a store no gateway has started on.

use super::{expect_err, is_conflict, join_all, ok};
use crate::{KeyRecord, KeyState, Store};

/// Runs every key contract.
pub async fn run(store: &dyn Store) {
    roundtrip_and_uniqueness(store).await;
    rotation(store).await;
    concurrent_promotion(store).await;
}

fn key(kid: &str, key_use: &str, state: KeyState, created_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.to_string(),
        key_use: key_use.to_string(),
        alg: if key_use == "sig" {
            "RS256"
        } else {
            "RSA-OAEP"
        }
        .to_string(),
        private_sealed: vec![0, 1, 2, 255, 254, 0, 128, created_at as u8],
        created_at,
        state,
        activates_at: (state != KeyState::Next).then_some(created_at),
        deactivated_at: None,
        remove_at: None,
    }
}

async fn mine(store: &dyn Store) -> Vec<KeyRecord> {
    let mut listed: Vec<KeyRecord> = ok(store.list_keys().await, "list keys")
        .into_iter()
        .filter(|k| k.kid.starts_with("cf-key-"))
        .collect();
    listed.sort_by(|a, b| a.kid.cmp(&b.kid));
    listed
}

async fn find(store: &dyn Store, kid: &str) -> Option<KeyRecord> {
    mine(store).await.into_iter().find(|k| k.kid == kid)
}

/// Keys are inserted once per kid and listed unchanged; a second `active` or `next` key of
/// one use is a conflict.
pub async fn roundtrip_and_uniqueness(store: &dyn Store) {
    let k1 = key("cf-key-1", "sig", KeyState::Active, 1_700_000_000);
    let mut k2 = key("cf-key-2", "enc", KeyState::Active, 1_700_000_001);
    k2.private_sealed = vec![9; 300];
    let k3 = key("cf-key-3", "sig", KeyState::Next, 1_700_000_002);
    let mut k4 = key("cf-key-4", "sig", KeyState::Retiring, 1_699_000_000);
    k4.deactivated_at = Some(1_700_000_000);
    k4.remove_at = Some(1_700_090_000);
    for k in [&k1, &k2, &k3, &k4] {
        ok(store.insert_key(k).await, "insert key");
    }
    let dup = KeyRecord {
        alg: "ES256".to_string(),
        state: KeyState::Retiring,
        ..k1.clone()
    };
    expect_err(
        store.insert_key(&dup).await,
        "insert duplicate kid",
        is_conflict,
    );
    expect_err(
        store
            .insert_key(&key("cf-key-5", "sig", KeyState::Active, 1_700_000_003))
            .await,
        "insert a second active signing key",
        is_conflict,
    );
    expect_err(
        store
            .insert_key(&key("cf-key-6", "sig", KeyState::Next, 1_700_000_003))
            .await,
        "insert a second next signing key",
        is_conflict,
    );
    // Several retiring keys of one use are fine.
    let k7 = key("cf-key-7", "sig", KeyState::Retiring, 1_698_000_000);
    ok(store.insert_key(&k7).await, "insert a second retiring key");
    assert_eq!(
        mine(store).await,
        vec![k1, k2, k3, k4, k7],
        "conformance: list_keys returns the stored keys unchanged"
    );
}

/// `schedule_key` moves a `next` key's start; `promote_key` swaps active and next once;
/// `remove_retired_keys` deletes the retiring keys whose time has come, only those.
pub async fn rotation(store: &dyn Store) {
    // After `roundtrip_and_uniqueness`: cf-key-1 active, cf-key-3 next, cf-key-4 and
    // cf-key-7 retiring (cf-key-7 without a removal time).
    assert!(
        ok(
            store.schedule_key("cf-key-3", 1_700_500_000).await,
            "schedule next"
        ),
        "conformance: scheduling the next key must succeed"
    );
    assert_eq!(
        find(store, "cf-key-3").await.and_then(|k| k.activates_at),
        Some(1_700_500_000)
    );
    assert!(
        !ok(
            store.schedule_key("cf-key-1", 5).await,
            "schedule an active key"
        ),
        "conformance: only a next key can be scheduled"
    );
    assert!(
        !ok(
            store
                .promote_key("cf-key-3", "cf-key-1", 1_700_600_000, 1_700_700_000)
                .await,
            "promote the wrong way round"
        ),
        "conformance: a promotion needs an active `from` and a next `to`"
    );
    assert!(
        !ok(
            store
                .promote_key("cf-key-1", "cf-key-2", 1_700_600_000, 1_700_700_000)
                .await,
            "promote across uses"
        ),
        "conformance: a promotion stays within one use"
    );
    assert!(
        ok(
            store
                .promote_key("cf-key-1", "cf-key-3", 1_700_600_000, 1_700_700_000)
                .await,
            "promote"
        ),
        "conformance: promoting the next key must succeed"
    );
    let Some(old) = find(store, "cf-key-1").await else {
        panic!("conformance: the retired key must stay listed");
    };
    assert_eq!(old.state, KeyState::Retiring);
    assert_eq!(old.deactivated_at, Some(1_700_600_000));
    assert_eq!(old.remove_at, Some(1_700_700_000));
    let Some(new) = find(store, "cf-key-3").await else {
        panic!("conformance: the promoted key must be listed");
    };
    assert_eq!(new.state, KeyState::Active);
    assert_eq!(new.activates_at, Some(1_700_600_000));
    assert!(
        !ok(
            store
                .promote_key("cf-key-1", "cf-key-3", 1_700_600_001, 1_700_700_000)
                .await,
            "promote again"
        ),
        "conformance: a promotion happens once"
    );
    // The next slot is free again.
    ok(
        store
            .insert_key(&key("cf-key-8", "sig", KeyState::Next, 1_700_600_000))
            .await,
        "insert the new next key",
    );

    let mut removed = ok(
        store.remove_retired_keys(1_700_089_999).await,
        "remove before time",
    );
    removed.retain(|k| k.starts_with("cf-key-"));
    assert!(
        removed.is_empty(),
        "conformance: removed too early: {removed:?}"
    );
    let mut removed = ok(store.remove_retired_keys(1_700_090_000).await, "remove");
    removed.retain(|k| k.starts_with("cf-key-"));
    assert_eq!(removed, vec!["cf-key-4".to_string()]);
    let mut removed = ok(store.remove_retired_keys(1_700_700_000).await, "remove");
    removed.retain(|k| k.starts_with("cf-key-"));
    assert_eq!(removed, vec!["cf-key-1".to_string()]);
    let kids: Vec<String> = mine(store).await.into_iter().map(|k| k.kid).collect();
    assert_eq!(
        kids,
        vec!["cf-key-2", "cf-key-3", "cf-key-7", "cf-key-8"],
        "conformance: only retiring keys past their removal time are deleted"
    );
}

/// Nodes racing to promote the same pair: exactly one wins.
pub async fn concurrent_promotion(store: &dyn Store) {
    // After `rotation`: cf-key-3 active, cf-key-8 next.
    let results = join_all(
        (0..super::RACERS)
            .map(|i| {
                store.promote_key(
                    "cf-key-3",
                    "cf-key-8",
                    1_700_800_000 + i as i64,
                    1_700_900_000,
                )
            })
            .collect(),
    )
    .await;
    let won = results
        .into_iter()
        .map(|r| ok(r, "racing promotion"))
        .filter(|w| *w)
        .count();
    assert_eq!(
        won, 1,
        "conformance: racing promotions must rotate exactly once"
    );
    let active: Vec<KeyRecord> = mine(store)
        .await
        .into_iter()
        .filter(|k| k.key_use == "sig" && k.state == KeyState::Active)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].kid, "cf-key-8");
}
