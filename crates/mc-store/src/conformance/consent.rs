//! Conformance of [`crate::ConsentStore`]: records are created on first contact and keep
//! `first_seen`, items accumulate (sorted, no duplicates, none lost to a race), and a
//! revocation empties the items and revokes exactly the pair's tokens.

use super::{RACERS, client, expect_err, fixture, is_not_found, join_all, ok, strings, token};
use crate::{ConsentChannel, ConsentRecord, RefreshTokenRecord, Store};

/// Runs every consent contract.
pub async fn run(store: &dyn Store) {
    consent_records(store).await;
    consent_revocation(store).await;
    concurrent_consent(store).await;
}

/// Creation on first contact, accumulation, listing, unknown parties.
pub async fn consent_records(store: &dyn Store) {
    let (c1, c2) = ("cf-consent-c1", "cf-consent-c2");
    fixture(
        store,
        c1,
        &[
            ("cf-consent-sub", "+440000006601"),
            ("cf-consent-other", "+440000006602"),
        ],
    )
    .await;
    ok(store.insert_client(&client(c2)).await, "second client");
    let sub = "cf-consent-sub";

    assert_eq!(
        ok(store.consent_for(sub, c1).await, "consent before contact"),
        None
    );
    let noted = ok(
        store
            .record_consent(sub, c1, &[], ConsentChannel::Phone, 100)
            .await,
        "note first contact",
    );
    let mut want = ConsentRecord {
        subscriber_id: sub.to_string(),
        client_id: c1.to_string(),
        scopes: vec![],
        first_seen: 100,
        given_at: None,
        channel: None,
        revoked_at: None,
    };
    assert_eq!(
        noted, want,
        "conformance: first contact without items records only first_seen"
    );

    let given = ok(
        store
            .record_consent(
                sub,
                c1,
                &strings(&["mc_identity_phonenumber", "email", "email"]),
                ConsentChannel::Phone,
                200,
            )
            .await,
        "give consent",
    );
    want.scopes = strings(&["email", "mc_identity_phonenumber"]);
    want.given_at = Some(200);
    want.channel = Some(ConsentChannel::Phone);
    assert_eq!(given, want, "conformance: items sorted and deduplicated");

    let more = ok(
        store
            .record_consent(
                sub,
                c1,
                &strings(&["address", "email"]),
                ConsentChannel::Browser,
                300,
            )
            .await,
        "give more consent",
    );
    want.scopes = strings(&["address", "email", "mc_identity_phonenumber"]);
    want.given_at = Some(300);
    want.channel = Some(ConsentChannel::Browser);
    assert_eq!(more, want, "conformance: consent accumulates");
    assert!(more.covers("address") && more.covers_all(["email", "mc_identity_phonenumber"]));
    assert!(!more.covers("profile"));

    let again = ok(
        store
            .record_consent(sub, c1, &[], ConsentChannel::Phone, 400)
            .await,
        "authentication-only login after consent",
    );
    assert_eq!(
        again, want,
        "conformance: a contact without items leaves the record as it is"
    );
    assert_eq!(
        ok(store.consent_for(sub, c1).await, "consent_for"),
        Some(want.clone())
    );

    ok(
        store
            .record_consent(sub, c2, &strings(&["profile"]), ConsentChannel::Browser, 50)
            .await,
        "consent at the second client",
    );
    ok(
        store
            .record_consent(
                "cf-consent-other",
                c1,
                &strings(&["phone"]),
                ConsentChannel::Phone,
                60,
            )
            .await,
        "another subscriber's consent",
    );
    let listed = ok(store.list_consents(sub).await, "list consents");
    let clients: Vec<&str> = listed.iter().map(|r| r.client_id.as_str()).collect();
    assert_eq!(
        clients,
        vec![c2, c1],
        "conformance: a subscriber's records, oldest first_seen first, no one else's"
    );
    assert_eq!(listed[1], want);
    assert_eq!(
        ok(store.list_consents("cf-consent-nobody").await, "list none"),
        vec![]
    );

    expect_err(
        store
            .record_consent("cf-consent-nobody", c1, &[], ConsentChannel::Phone, 1)
            .await,
        "consent of an unknown subscriber",
        is_not_found,
    );
    expect_err(
        store
            .record_consent(
                sub,
                "cf-consent-noclient",
                &strings(&["email"]),
                ConsentChannel::Phone,
                1,
            )
            .await,
        "consent for an unknown client",
        is_not_found,
    );
}

/// Revocation empties the items and revokes the pair's tokens, no other token.
pub async fn consent_revocation(store: &dyn Store) {
    let (c1, c2) = ("cf-revoke-c1", "cf-revoke-c2");
    let (sub, other) = ("cf-revoke-sub", "cf-revoke-other");
    fixture(
        store,
        c1,
        &[(sub, "+440000006611"), (other, "+440000006612")],
    )
    .await;
    ok(store.insert_client(&client(c2)).await, "second client");
    for (s, c) in [(sub, c1), (sub, c2), (other, c1)] {
        ok(
            store
                .record_consent(s, c, &strings(&["email"]), ConsentChannel::Phone, 1000)
                .await,
            "consent to revoke",
        );
    }
    let grant_token = |hash: &str, s: &str, c: &str| {
        let mut t = token(hash, None, c, 9000);
        t.subscriber_id = Some(s.to_string());
        t.sub = Some(format!("pcr-{s}"));
        t
    };
    let mine = [
        grant_token("cf-revoke-t1", sub, c1),
        grant_token("cf-revoke-t2", sub, c1),
    ];
    let others = [
        grant_token("cf-revoke-t3", sub, c2),
        grant_token("cf-revoke-t4", other, c1),
        token("cf-revoke-t5", None, c1, 9000),
    ];
    for t in mine.iter().chain(others.iter()) {
        ok(store.insert_access_token(t).await, "insert token");
    }

    // A refresh grant of the pair (and its access token), and one of another client.
    let refresh = |hash: &str, c: &str| RefreshTokenRecord {
        token_hash: hash.to_string(),
        family_id: format!("family-{hash}"),
        client_id: c.to_string(),
        session_id: None,
        subscriber_id: Some(sub.to_string()),
        sub: Some(format!("pcr-{sub}")),
        scope: "openid offline_access".to_string(),
        issued_at: 1000,
        expires_at: 9000,
    };
    let (mine_refresh, other_refresh) = (refresh("cf-revoke-r1", c1), refresh("cf-revoke-r2", c2));
    ok(
        store
            .insert_token_pair(&grant_token("cf-revoke-t6", sub, c1), &mine_refresh)
            .await,
        "insert refresh pair",
    );
    ok(
        store
            .insert_token_pair(&grant_token("cf-revoke-t7", sub, c2), &other_refresh)
            .await,
        "insert other refresh pair",
    );

    let revoked = ok(store.revoke_consent(sub, c1, 2000).await, "revoke consent");
    assert_eq!(
        revoked, 4,
        "conformance: revoke_consent counts the pair's access and refresh tokens it revoked"
    );
    assert_eq!(
        ok(
            store.find_refresh_token("cf-revoke-r1", 2001).await,
            "find refresh"
        ),
        None,
        "conformance: the pair's refresh tokens are revoked with the consent"
    );
    assert_eq!(
        ok(store.find_access_token("cf-revoke-t6", 2001).await, "find"),
        None
    );
    assert_eq!(
        ok(
            store.find_refresh_token("cf-revoke-r2", 2001).await,
            "find other refresh"
        ),
        Some(other_refresh),
        "conformance: another client's refresh tokens stay"
    );
    for t in &mine {
        assert_eq!(
            ok(store.find_access_token(&t.token_hash, 2001).await, "find"),
            None,
            "conformance: the pair's tokens are revoked with the consent"
        );
    }
    for t in &others {
        assert_eq!(
            ok(store.find_access_token(&t.token_hash, 2001).await, "find"),
            Some(t.clone()),
            "conformance: revocation is scoped to one subscriber and one client"
        );
    }
    let after = ok(store.consent_for(sub, c1).await, "consent after revocation");
    let after = match after {
        Some(r) => r,
        None => panic!("conformance: a revoked record stays (the client still knows the PCR)"),
    };
    assert!(
        after.scopes.is_empty(),
        "conformance: revocation empties the items"
    );
    assert_eq!(after.revoked_at, Some(2000));
    assert_eq!(after.first_seen, 1000);
    assert!(
        ok(store.consent_for(sub, c2).await, "untouched consent")
            .is_some_and(|r| r.covers("email") && r.revoked_at.is_none())
    );
    assert_eq!(
        ok(store.revoke_consent(sub, c1, 2100).await, "revoke again"),
        0,
        "conformance: a second revocation finds no token left"
    );

    let regiven = ok(
        store
            .record_consent(sub, c1, &strings(&["phone"]), ConsentChannel::Browser, 3000)
            .await,
        "consent after revocation",
    );
    assert_eq!(regiven.scopes, strings(&["phone"]));
    assert_eq!(
        regiven.revoked_at, None,
        "conformance: a new consent clears revoked_at"
    );

    expect_err(
        store.revoke_consent(sub, "cf-revoke-none", 1).await,
        "revoke without a record",
        is_not_found,
    );
}

/// Concurrent consents for one pair: every item is kept.
pub async fn concurrent_consent(store: &dyn Store) {
    let c = "cf-consent-race-c";
    let sub = "cf-consent-race-sub";
    fixture(store, c, &[(sub, "+440000006621")]).await;
    let items: Vec<Vec<String>> = (0..RACERS).map(|i| vec![format!("item-{i:02}")]).collect();
    let results = join_all(
        items
            .iter()
            .map(|it| store.record_consent(sub, c, it, ConsentChannel::Phone, 5000))
            .collect(),
    )
    .await;
    for r in results {
        ok(r, "concurrent consent");
    }
    let stored = match ok(store.consent_for(sub, c).await, "consent after race") {
        Some(r) => r,
        None => panic!("conformance: concurrent consents left no record"),
    };
    let want: Vec<String> = items.into_iter().flatten().collect();
    assert_eq!(
        stored.scopes, want,
        "conformance: concurrent consents for one pair lose no item"
    );
    assert_eq!(stored.first_seen, 5000);
}
