//! Conformance of [`crate::TokenManagerStore`] and [`crate::QuotaStore`]: refresh tokens
//! rotate once (of concurrent presentations exactly one wins, the next revokes the family),
//! a reused token revokes every refresh and access token of its family and nothing else,
//! revocation is per client, and the daily quota counts atomically up to its limit.

use super::{RACERS, client, fixture, join_all, ok, token};
use crate::{AccessTokenRecord, RefreshTokenRecord, Rotation, Store};

/// Runs every token-manager and quota contract.
pub async fn run(store: &dyn Store) {
    refresh_rotation(store).await;
    refresh_reuse_revokes_family(store).await;
    token_revocation(store).await;
    concurrent_rotation(store).await;
    daily_quota(store).await;
    concurrent_daily_quota(store).await;
}

fn refresh(hash: &str, family: &str, client_id: &str, expires_at: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.to_string(),
        family_id: family.to_string(),
        client_id: client_id.to_string(),
        session_id: Some(format!("{family}-session")),
        subscriber_id: None,
        sub: Some("pcr-of-family".to_string()),
        scope: "openid offline_access".to_string(),
        issued_at: expires_at - 1000,
        expires_at,
    }
}

fn access(hash: &str, client_id: &str, expires_at: i64) -> AccessTokenRecord {
    token(hash, None, client_id, expires_at)
}

/// Insert a pair, find it, rotate it, find the successor; expiry and other clients.
pub async fn refresh_rotation(store: &dyn Store) {
    let (c, other) = ("cf-refresh-client", "cf-refresh-other");
    fixture(store, c, &[]).await;
    ok(store.insert_client(&client(other)).await, "second client");
    let r1 = refresh("cf-rt-r1", "cf-rt-fam", c, 50_000);
    let mut a1 = access("cf-rt-a1", c, 48_000);
    a1.claims = Some(r#"{"userinfo":{"email":null}}"#.to_string());
    ok(store.insert_token_pair(&a1, &r1).await, "insert pair");
    let mut a1_in_family = a1.clone();
    a1_in_family.family_id = Some("cf-rt-fam".to_string());
    assert_eq!(
        ok(
            store.find_access_token(&a1.token_hash, 43_000).await,
            "find a1"
        ),
        Some(a1_in_family),
        "conformance: the access token of a pair joins the refresh token's family"
    );
    assert_eq!(
        ok(
            store.find_refresh_token(&r1.token_hash, 49_999).await,
            "find r1"
        ),
        Some(r1.clone())
    );
    assert_eq!(
        ok(
            store.find_refresh_token(&r1.token_hash, 50_000).await,
            "find r1 at expiry"
        ),
        None,
        "conformance: a refresh token is expired when expires_at <= now"
    );
    assert!(
        store
            .insert_token_pair(&access("cf-rt-a1b", c, 44_000), &r1)
            .await
            .is_err(),
        "conformance: a duplicate refresh token hash must be rejected"
    );
    assert_eq!(
        ok(
            store.find_access_token("cf-rt-a1b", 43_000).await,
            "half pair"
        ),
        None,
        "conformance: a failed pair insert inserts nothing"
    );

    let r2 = refresh("cf-rt-r2", "cf-rt-fam", c, 60_000);
    let mut a2 = access("cf-rt-a2", c, 54_000);
    a2.claims = Some(r#"{"userinfo":{"phone_number":null}}"#.to_string());
    assert_eq!(
        ok(
            store
                .rotate_refresh_token(&r1.token_hash, other, &r2, &a2, 45_000)
                .await,
            "rotate as another client"
        ),
        Rotation::Invalid,
        "conformance: another client's refresh token is Invalid"
    );
    assert_eq!(
        ok(
            store
                .rotate_refresh_token(&r1.token_hash, c, &r2, &a2, 50_000)
                .await,
            "rotate expired"
        ),
        Rotation::Invalid,
        "conformance: an expired refresh token is Invalid"
    );
    assert_eq!(
        ok(
            store.find_access_token(&a2.token_hash, 45_000).await,
            "no a2 yet"
        ),
        None,
        "conformance: an Invalid rotation inserts nothing"
    );
    assert_eq!(
        ok(
            store
                .rotate_refresh_token(&r1.token_hash, c, &r2, &a2, 45_000)
                .await,
            "rotate"
        ),
        Rotation::Rotated
    );
    assert_eq!(
        ok(
            store.find_refresh_token(&r1.token_hash, 45_000).await,
            "r1 after rotation"
        ),
        None,
        "conformance: a rotated refresh token is not active"
    );
    assert_eq!(
        ok(store.find_refresh_token(&r2.token_hash, 45_000).await, "r2"),
        Some(r2.clone())
    );
    let found = ok(store.find_access_token(&a2.token_hash, 45_000).await, "a2");
    assert_eq!(
        found.as_ref().and_then(|t| t.claims.clone()),
        a2.claims,
        "conformance: a rotation stores the access token's claims"
    );
    assert_eq!(
        found.and_then(|t| t.family_id),
        Some("cf-rt-fam".to_string()),
        "conformance: a rotation's access token joins the family"
    );
    assert!(
        ok(
            store.find_access_token(&a1.token_hash, 45_000).await,
            "a1 kept"
        )
        .is_some(),
        "conformance: rotation does not revoke the earlier access token"
    );
    assert_eq!(
        ok(
            store
                .rotate_refresh_token("cf-rt-unknown", c, &r2, &a2, 45_000)
                .await,
            "rotate unknown"
        ),
        Rotation::Invalid
    );
}

/// Presenting a rotated token revokes the family — every refresh and access token in
/// it — and nothing of other families.
pub async fn refresh_reuse_revokes_family(store: &dyn Store) {
    let c = "cf-reuse-client";
    fixture(store, c, &[]).await;
    let r1 = refresh("cf-reuse-r1", "cf-reuse-fam", c, 70_000);
    let a1 = access("cf-reuse-a1", c, 66_000);
    ok(store.insert_token_pair(&a1, &r1).await, "pair");
    let bystander_r = refresh("cf-reuse-b", "cf-reuse-other-fam", c, 70_000);
    let bystander_a = access("cf-reuse-ba", c, 66_000);
    ok(
        store.insert_token_pair(&bystander_a, &bystander_r).await,
        "bystander pair",
    );
    let r2 = refresh("cf-reuse-r2", "cf-reuse-fam", c, 70_000);
    let a2 = access("cf-reuse-a2", c, 66_000);
    assert_eq!(
        ok(
            store
                .rotate_refresh_token(&r1.token_hash, c, &r2, &a2, 61_000)
                .await,
            "rotate"
        ),
        Rotation::Rotated
    );
    let r3 = refresh("cf-reuse-r3", "cf-reuse-fam", c, 70_000);
    let a3 = access("cf-reuse-a3", c, 66_000);
    assert_eq!(
        ok(
            store
                .rotate_refresh_token(&r1.token_hash, c, &r3, &a3, 62_000)
                .await,
            "reuse"
        ),
        Rotation::Reused {
            family_id: "cf-reuse-fam".to_string()
        },
        "conformance: presenting a rotated refresh token is reuse"
    );
    for (hash, what) in [
        (&a1.token_hash, "a1"),
        (&a2.token_hash, "a2"),
        (&a3.token_hash, "a3"),
    ] {
        assert_eq!(
            ok(store.find_access_token(hash, 62_000).await, what),
            None,
            "conformance: reuse revokes the family's access token {what} (a3 never issued)"
        );
    }
    assert_eq!(
        ok(store.find_refresh_token(&r2.token_hash, 62_000).await, "r2"),
        None,
        "conformance: reuse revokes the family's live refresh token"
    );
    assert_eq!(
        ok(
            store
                .rotate_refresh_token(&r2.token_hash, c, &r3, &a3, 62_000)
                .await,
            "present revoked"
        ),
        Rotation::Invalid,
        "conformance: a revoked refresh token is Invalid"
    );
    assert!(
        ok(
            store
                .find_refresh_token(&bystander_r.token_hash, 62_000)
                .await,
            "bystander"
        )
        .is_some()
            && ok(
                store
                    .find_access_token(&bystander_a.token_hash, 62_000)
                    .await,
                "ba"
            )
            .is_some(),
        "conformance: reuse leaves other families alone"
    );
}

/// `revoke_access_token` and `revoke_refresh_family` act on the client's own tokens only.
pub async fn token_revocation(store: &dyn Store) {
    let (c, other) = ("cf-revoke-client", "cf-revoke-other");
    fixture(store, c, &[]).await;
    ok(store.insert_client(&client(other)).await, "second client");
    let lone = access("cf-revoke-lone", c, 90_000);
    ok(store.insert_access_token(&lone).await, "lone token");
    assert!(
        !ok(
            store.revoke_access_token(&lone.token_hash, other).await,
            "other client"
        ),
        "conformance: a client cannot revoke another client's access token"
    );
    assert!(
        ok(
            store.find_access_token(&lone.token_hash, 80_000).await,
            "kept"
        )
        .is_some()
    );
    assert!(ok(
        store.revoke_access_token(&lone.token_hash, c).await,
        "revoke"
    ));
    assert!(
        !ok(
            store.revoke_access_token(&lone.token_hash, c).await,
            "again"
        ),
        "conformance: revoking twice answers false the second time"
    );
    assert_eq!(
        ok(
            store.find_access_token(&lone.token_hash, 80_000).await,
            "gone"
        ),
        None
    );
    assert!(!ok(
        store.revoke_access_token("cf-revoke-none", c).await,
        "unknown"
    ));

    let r = refresh("cf-revoke-r", "cf-revoke-fam", c, 95_000);
    let a = access("cf-revoke-a", c, 90_000);
    ok(store.insert_token_pair(&a, &r).await, "pair");
    assert!(
        !ok(
            store.revoke_refresh_family(&r.token_hash, other).await,
            "other client"
        ),
        "conformance: a client cannot revoke another client's refresh token"
    );
    assert!(
        ok(
            store.find_refresh_token(&r.token_hash, 80_000).await,
            "kept"
        )
        .is_some()
    );
    assert!(ok(
        store.revoke_refresh_family(&r.token_hash, c).await,
        "revoke family"
    ));
    assert_eq!(
        ok(
            store.find_refresh_token(&r.token_hash, 80_000).await,
            "r gone"
        ),
        None
    );
    assert_eq!(
        ok(
            store.find_access_token(&a.token_hash, 80_000).await,
            "a gone"
        ),
        None,
        "conformance: revoking a refresh token revokes its family's access tokens"
    );
    assert!(!ok(
        store.revoke_refresh_family("cf-revoke-none", c).await,
        "unknown"
    ));

    // A replayed code: everything its login issued, through rotations too.
    let r1 = refresh("cf-revoke-s1", "cf-revoke-sfam", c, 95_000);
    let a1 = access("cf-revoke-sa1", c, 90_000);
    ok(store.insert_token_pair(&a1, &r1).await, "session pair");
    let r2 = refresh("cf-revoke-s2", "cf-revoke-sfam", c, 95_000);
    let a2 = access("cf-revoke-sa2", c, 90_000);
    assert_eq!(
        ok(
            store
                .rotate_refresh_token(&r1.token_hash, c, &r2, &a2, 81_000)
                .await,
            "rotate"
        ),
        Rotation::Rotated
    );
    let elsewhere = refresh("cf-revoke-e", "cf-revoke-efam", c, 95_000);
    let elsewhere_a = access("cf-revoke-ea", c, 90_000);
    ok(
        store.insert_token_pair(&elsewhere_a, &elsewhere).await,
        "other login",
    );
    assert!(
        ok(
            store
                .revoke_refresh_of_session("cf-revoke-sfam-session")
                .await,
            "by session"
        ) >= 1
    );
    assert_eq!(
        ok(store.find_refresh_token(&r2.token_hash, 82_000).await, "r2"),
        None
    );
    for hash in [&a1.token_hash, &a2.token_hash] {
        assert_eq!(
            ok(
                store.find_access_token(hash, 82_000).await,
                "session access"
            ),
            None,
            "conformance: revoking a login's refresh tokens revokes their families' access tokens"
        );
    }
    assert!(
        ok(
            store
                .find_refresh_token(&elsewhere.token_hash, 82_000)
                .await,
            "kept"
        )
        .is_some()
            && ok(
                store
                    .find_access_token(&elsewhere_a.token_hash, 82_000)
                    .await,
                "kept"
            )
            .is_some(),
        "conformance: other logins' tokens stay"
    );
    assert_eq!(
        ok(
            store.revoke_refresh_of_session("cf-revoke-none").await,
            "none"
        ),
        0
    );
}

/// Of concurrent presentations of one active refresh token exactly one rotates it; the
/// next one is reuse (later ones find the family revoked: `Invalid`), and the family ends
/// revoked.
pub async fn concurrent_rotation(store: &dyn Store) {
    let c = "cf-rotrace-client";
    fixture(store, c, &[]).await;
    let r = refresh("cf-rotrace-r", "cf-rotrace-fam", c, 120_000);
    ok(
        store
            .insert_token_pair(&access("cf-rotrace-a", c, 115_000), &r)
            .await,
        "pair",
    );
    let nexts: Vec<(RefreshTokenRecord, AccessTokenRecord)> = (0..RACERS)
        .map(|i| {
            (
                refresh(&format!("cf-rotrace-r{i}"), "cf-rotrace-fam", c, 120_000),
                access(&format!("cf-rotrace-a{i}"), c, 115_000),
            )
        })
        .collect();
    let outcomes = join_all(
        nexts
            .iter()
            .map(|(nr, na)| store.rotate_refresh_token(&r.token_hash, c, nr, na, 110_000))
            .collect(),
    )
    .await;
    let outcomes: Vec<Rotation> = outcomes
        .into_iter()
        .map(|o| ok(o, "concurrent rotation"))
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == Rotation::Rotated).count(),
        1,
        "conformance: exactly one concurrent rotation wins: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Rotation::Reused { .. })),
        "conformance: the first loser of a rotation race is reuse: {outcomes:?}"
    );
    for (nr, na) in &nexts {
        assert_eq!(
            ok(
                store.find_refresh_token(&nr.token_hash, 110_000).await,
                "successor"
            ),
            None,
            "conformance: after a reuse no successor stays active"
        );
        assert_eq!(
            ok(
                store.find_access_token(&na.token_hash, 110_000).await,
                "successor access"
            ),
            None
        );
    }
}

/// Counting up to the limit, refusing beyond it without counting, giving back, per day
/// and per client, purging old days.
pub async fn daily_quota(store: &dyn Store) {
    let (c, other) = ("cf-quota-client", "cf-quota-other");
    let day = 20_000;
    assert_eq!(ok(store.daily_calls(c, day).await, "nothing yet"), 0);
    for n in 1..=3 {
        assert_eq!(
            ok(store.take_daily_call(c, day, 3).await, "take"),
            Some(n),
            "conformance: take_daily_call answers the count after it"
        );
    }
    assert_eq!(
        ok(store.take_daily_call(c, day, 3).await, "over"),
        None,
        "conformance: a used-up quota refuses"
    );
    assert_eq!(
        ok(store.daily_calls(c, day).await, "count"),
        3,
        "conformance: a refused call is not counted"
    );
    assert_eq!(
        ok(store.take_daily_call(c, day, 5).await, "raised limit"),
        Some(4),
        "conformance: a raised limit applies at once"
    );
    ok(store.return_daily_call(c, day).await, "give back");
    assert_eq!(ok(store.daily_calls(c, day).await, "after give back"), 3);
    assert_eq!(
        ok(store.take_daily_call(c, day + 1, 3).await, "next day"),
        Some(1)
    );
    assert_eq!(
        ok(store.take_daily_call(other, day, 3).await, "other client"),
        Some(1)
    );
    assert_eq!(
        ok(store.take_daily_call(c, day, 0).await, "zero limit"),
        None
    );
    ok(
        store.return_daily_call("cf-quota-none", day).await,
        "give back unknown",
    );
    assert_eq!(
        ok(
            store.daily_calls("cf-quota-none", day).await,
            "never below zero"
        ),
        0
    );
    assert!(ok(store.purge_daily_calls(day + 1).await, "purge") >= 2);
    assert_eq!(ok(store.daily_calls(c, day).await, "purged"), 0);
    assert_eq!(ok(store.daily_calls(c, day + 1).await, "kept"), 1);
}

/// Concurrent callers never count beyond the limit, and exactly `limit` of them succeed.
pub async fn concurrent_daily_quota(store: &dyn Store) {
    let c = "cf-quotarace-client";
    let day = 30_000;
    let limit = (RACERS / 2) as u64;
    let outcomes = join_all(
        (0..RACERS)
            .map(|_| store.take_daily_call(c, day, limit))
            .collect(),
    )
    .await;
    let taken = outcomes
        .into_iter()
        .map(|o| ok(o, "concurrent take"))
        .filter(Option::is_some)
        .count();
    assert_eq!(
        taken as u64, limit,
        "conformance: exactly `limit` concurrent calls are counted"
    );
    assert_eq!(ok(store.daily_calls(c, day).await, "count"), limit);
}
