//! Conformance of [`crate::PasskeyStore`]: a credential id is registered once, a use is
//! recorded only while the counter grows (one of two racing uses), a ceremony is taken once
//! (one of many racing takes) and never after it expired, and expired ceremonies are purged.

use super::{RACERS, expect_err, fixture, is_conflict, is_not_found, join_all, ok};
use crate::{CeremonyKind, CeremonyRecord, PasskeyRecord, Store};

/// Runs every passkey contract.
pub async fn run(store: &dyn Store) {
    passkey_records(store).await;
    passkey_counter(store).await;
    ceremonies(store).await;
    concurrent_ceremony_takes(store).await;
    concurrent_passkey_uses(store).await;
}

fn passkey(id: &str, sub: &str, created_at: i64) -> PasskeyRecord {
    PasskeyRecord {
        credential_id: id.to_owned(),
        subscriber_id: sub.to_owned(),
        passkey: format!("{{\"cred\":\"{id}\"}}"),
        counter: 0,
        created_at,
        last_used_at: None,
    }
}

fn ceremony(id: &str, kind: CeremonyKind, sub: &str, expires_at: i64) -> CeremonyRecord {
    CeremonyRecord {
        id: id.to_owned(),
        kind,
        subscriber_id: sub.to_owned(),
        session_id: (kind != CeremonyKind::Registration).then(|| format!("{id}-session")),
        state: format!("{{\"challenge\":\"{id}\"}}"),
        expires_at,
    }
}

/// Insert, list per subscriber (oldest first), get, unique credential ids, delete.
pub async fn passkey_records(store: &dyn Store) {
    let (a, b) = ("cf-pk-sub-a", "cf-pk-sub-b");
    fixture(
        store,
        "cf-pk-client",
        &[(a, "+440000009901"), (b, "+440000009902")],
    )
    .await;
    assert_eq!(
        ok(store.passkeys_of(a).await, "passkeys before any"),
        vec![],
        "conformance: no passkeys yet"
    );
    let second = passkey("cf-pk-cred-2", a, 200);
    let first = passkey("cf-pk-cred-1", a, 100);
    ok(store.insert_passkey(&second).await, "insert passkey 2");
    ok(store.insert_passkey(&first).await, "insert passkey 1");
    ok(
        store.insert_passkey(&passkey("cf-pk-cred-3", b, 50)).await,
        "insert another subscriber's passkey",
    );
    assert_eq!(
        ok(store.passkeys_of(a).await, "list passkeys"),
        vec![first.clone(), second.clone()],
        "conformance: a subscriber's passkeys, oldest first, and only theirs"
    );
    assert_eq!(
        ok(store.get_passkey("cf-pk-cred-1").await, "get passkey"),
        Some(first.clone())
    );
    assert_eq!(
        ok(store.get_passkey("cf-pk-unknown").await, "get unknown"),
        None
    );
    expect_err(
        store.insert_passkey(&passkey("cf-pk-cred-1", b, 300)).await,
        "conformance: a credential id registered to someone else is a Conflict",
        is_conflict,
    );
    expect_err(
        store
            .insert_passkey(&passkey("cf-pk-cred-x", "cf-pk-nobody", 300))
            .await,
        "conformance: a passkey of an unknown subscriber is NotFound",
        is_not_found,
    );
    assert!(
        !ok(
            store.delete_passkey(b, "cf-pk-cred-1").await,
            "delete other's"
        ),
        "conformance: one subscriber cannot delete another's passkey"
    );
    assert!(ok(store.delete_passkey(a, "cf-pk-cred-1").await, "delete"));
    assert!(
        !ok(
            store.delete_passkey(a, "cf-pk-cred-1").await,
            "delete again"
        ),
        "conformance: a second delete finds nothing"
    );
    assert_eq!(
        ok(store.passkeys_of(a).await, "list after delete"),
        vec![second],
        "conformance: the deleted passkey is gone"
    );
}

/// A use is recorded while the counter grows; counters of 0 (none kept) always pass.
pub async fn passkey_counter(store: &dyn Store) {
    let sub = "cf-pk-ctr-sub";
    fixture(store, "cf-pk-ctr-client", &[(sub, "+440000009911")]).await;
    ok(
        store
            .insert_passkey(&passkey("cf-pk-ctr-zero", sub, 10))
            .await,
        "insert counterless",
    );
    for t in [20, 30] {
        assert!(
            ok(
                store
                    .record_passkey_use("cf-pk-ctr-zero", "{\"v\":0}", 0, t)
                    .await,
                "use counterless"
            ),
            "conformance: an authenticator without a counter (0 and 0) is recorded every time"
        );
    }
    let got = ok(store.get_passkey("cf-pk-ctr-zero").await, "read")
        .unwrap_or_else(|| panic!("conformance: the passkey is gone"));
    assert_eq!(
        (got.counter, got.last_used_at, got.passkey.as_str()),
        (0, Some(30), "{\"v\":0}"),
        "conformance: a recorded use updates passkey and last_used_at"
    );

    ok(
        store.insert_passkey(&passkey("cf-pk-ctr", sub, 10)).await,
        "insert counting",
    );
    assert!(ok(
        store
            .record_passkey_use("cf-pk-ctr", "{\"v\":5}", 5, 40)
            .await,
        "use 5"
    ));
    for (counter, why) in [
        (5, "the same counter again"),
        (3, "a lower counter"),
        (0, "a counter falling back to 0"),
    ] {
        assert!(
            !ok(
                store
                    .record_passkey_use("cf-pk-ctr", "{\"v\":\"bad\"}", counter, 50)
                    .await,
                "use stale"
            ),
            "conformance: {why} is refused (possible clone)"
        );
    }
    let got = ok(store.get_passkey("cf-pk-ctr").await, "read")
        .unwrap_or_else(|| panic!("conformance: the passkey is gone"));
    assert_eq!(
        (got.counter, got.last_used_at, got.passkey.as_str()),
        (5, Some(40), "{\"v\":5}"),
        "conformance: a refused use changes nothing"
    );
    assert!(ok(
        store
            .record_passkey_use("cf-pk-ctr", "{\"v\":6}", 6, 60)
            .await,
        "use 6"
    ));
    assert!(
        !ok(
            store.record_passkey_use("cf-pk-unknown", "{}", 9, 60).await,
            "use unknown"
        ),
        "conformance: an unknown credential records nothing"
    );
}

/// Put, get, take once, expiry, purge on put, unique ids.
pub async fn ceremonies(store: &dyn Store) {
    let sub = "cf-pk-cer-sub";
    fixture(store, "cf-pk-cer-client", &[(sub, "+440000009921")]).await;
    let reg = ceremony("cf-pk-cer-reg", CeremonyKind::Registration, sub, 1_000);
    let auth = ceremony("cf-pk-cer-auth", CeremonyKind::Authentication, sub, 1_000);
    let offer = ceremony("cf-pk-cer-offer", CeremonyKind::Offer, sub, 1_000);
    for c in [&reg, &auth, &offer] {
        ok(store.put_ceremony(c, 500).await, "put ceremony");
    }
    expect_err(
        store.put_ceremony(&reg, 500).await,
        "conformance: a ceremony id is unique (Conflict)",
        is_conflict,
    );
    expect_err(
        store
            .put_ceremony(
                &ceremony(
                    "cf-pk-cer-x",
                    CeremonyKind::Registration,
                    "cf-pk-nobody",
                    1_000,
                ),
                500,
            )
            .await,
        "conformance: a ceremony of an unknown subscriber is NotFound",
        is_not_found,
    );
    for c in [&reg, &auth, &offer] {
        assert_eq!(
            ok(store.get_ceremony(&c.id, 999).await, "get live"),
            Some(c.clone()),
            "conformance: a live ceremony reads back as stored (kind {:?})",
            c.kind
        );
    }
    assert_eq!(
        ok(store.get_ceremony(&offer.id, 999).await, "get twice"),
        Some(offer.clone()),
        "conformance: get leaves the ceremony in place"
    );
    assert_eq!(
        ok(store.get_ceremony(&reg.id, 1_000).await, "get expired"),
        None,
        "conformance: a ceremony is gone at expires_at"
    );
    assert_eq!(
        ok(store.take_ceremony(&auth.id, 999).await, "take"),
        Some(auth.clone())
    );
    assert_eq!(
        ok(store.take_ceremony(&auth.id, 999).await, "take again"),
        None,
        "conformance: a ceremony is taken once"
    );
    assert_eq!(
        ok(store.take_ceremony(&reg.id, 1_000).await, "take expired"),
        None,
        "conformance: an expired ceremony cannot be taken"
    );
    assert_eq!(
        ok(
            store.take_ceremony("cf-pk-cer-unknown", 999).await,
            "take unknown"
        ),
        None
    );
    // A put at 1 000 purges the offer (expired at 1 000): it cannot even be read back with
    // an earlier clock afterwards.
    ok(
        store
            .put_ceremony(
                &ceremony("cf-pk-cer-later", CeremonyKind::Registration, sub, 2_000),
                1_000,
            )
            .await,
        "put later",
    );
    assert_eq!(
        ok(store.get_ceremony(&offer.id, 1).await, "get purged"),
        None,
        "conformance: put_ceremony removes the ceremonies expired at its `now`"
    );
    assert!(
        ok(
            store.get_ceremony("cf-pk-cer-later", 1_500).await,
            "get new"
        )
        .is_some(),
        "conformance: the new ceremony is stored"
    );
}

/// Of many concurrent takes of one ceremony exactly one gets it.
pub async fn concurrent_ceremony_takes(store: &dyn Store) {
    let sub = "cf-pk-race-sub";
    fixture(store, "cf-pk-race-client", &[(sub, "+440000009931")]).await;
    let c = ceremony("cf-pk-race", CeremonyKind::Authentication, sub, 10_000);
    ok(store.put_ceremony(&c, 100).await, "put");
    let takes = (0..RACERS)
        .map(|_| store.take_ceremony("cf-pk-race", 200))
        .collect();
    let won = join_all(takes)
        .await
        .into_iter()
        .map(|r| ok(r, "racing take"))
        .filter(Option::is_some)
        .count();
    assert_eq!(won, 1, "conformance: concurrent takes, exactly one wins");
}

/// Of many concurrent uses carrying the same counter exactly one is recorded.
pub async fn concurrent_passkey_uses(store: &dyn Store) {
    let sub = "cf-pk-use-sub";
    fixture(store, "cf-pk-use-client", &[(sub, "+440000009941")]).await;
    ok(
        store.insert_passkey(&passkey("cf-pk-use", sub, 10)).await,
        "insert",
    );
    let uses = (0..RACERS)
        .map(|_| store.record_passkey_use("cf-pk-use", "{}", 7, 20))
        .collect();
    let recorded = join_all(uses)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(
        recorded, 1,
        "conformance: concurrent uses with one counter, exactly one recorded"
    );
}
