//! The Token Manager and quota contracts (`mc_store::conformance::token_manager`) on their
//! own (they also run within `run_all`), plus what only a shared server shows: two stores
//! ("two gateway nodes") draw on one daily quota and race on one refresh token.
//!
//! Needs `MC_TEST_POSTGRES_URL`; skipped without it (failing under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mc_store::{
    AccessTokenRecord, ClientRecord, ClientStatus, ClientStore, QuotaStore, RefreshTokenRecord,
    Rotation, TokenManagerStore,
};
use mc_store_postgres::PgStore;
use support::TestSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_manager_contracts() {
    let Some(schema) = TestSchema::create("token_manager_contracts").await else {
        return;
    };
    let store = PgStore::connect(&schema.url).await.unwrap();
    mc_store::conformance::token_manager::run(&store).await;
    store.close().await;
    schema.drop().await;
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        secret_hash: "sha256:x".into(),
        name: id.into(),
        short_name: id.into(),
        redirect_uris: vec!["https://sp.example/cb".into()],
        allowed_scopes: vec!["openid".into(), "offline_access".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        sector: "sp.example".into(),
        status: ClientStatus::Active,
        created_at: 1,
        metadata: Default::default(),
    }
}

fn pair(n: &str, family: &str) -> (AccessTokenRecord, RefreshTokenRecord) {
    (
        AccessTokenRecord {
            token_hash: format!("a-{n}"),
            session_id: None,
            client_id: "two-nodes".into(),
            subscriber_id: None,
            sub: Some("pcr".into()),
            scope: "openid offline_access".into(),
            expires_at: 10_000,
            issued_at: 1_000,
            family_id: None,
            claims: None,
        },
        RefreshTokenRecord {
            token_hash: format!("r-{n}"),
            family_id: family.into(),
            client_id: "two-nodes".into(),
            session_id: None,
            subscriber_id: None,
            sub: Some("pcr".into()),
            scope: "openid offline_access".into(),
            issued_at: 1_000,
            expires_at: 20_000,
        },
    )
}

/// Two nodes (two pools on one database) share one daily quota exactly, and of two nodes
/// presenting one refresh token at once one rotates it and the other sees reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_quota_and_refresh_state() {
    let Some(schema) = TestSchema::create("token_manager_two_nodes").await else {
        return;
    };
    let a = PgStore::connect(&schema.url).await.unwrap();
    let b = PgStore::connect(&schema.url).await.unwrap();
    a.insert_client(&client("two-nodes")).await.unwrap();

    let limit = 25u64;
    let mut calls = Vec::new();
    for i in 0..40 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        calls.push(tokio::spawn(async move {
            node.take_daily_call("two-nodes", 7, limit).await.unwrap()
        }));
    }
    let mut counted = 0;
    for c in calls {
        if c.await.unwrap().is_some() {
            counted += 1;
        }
    }
    assert_eq!(counted, limit, "exactly the quota is counted across nodes");
    assert_eq!(b.daily_calls("two-nodes", 7).await.unwrap(), limit);

    let (a0, r0) = pair("0", "fam");
    a.insert_token_pair(&a0, &r0).await.unwrap();
    let (a1, r1) = pair("1", "fam");
    let (a2, r2) = pair("2", "fam");
    let (x, y) = tokio::join!(
        a.rotate_refresh_token("r-0", "two-nodes", &r1, &a1, 2_000),
        b.rotate_refresh_token("r-0", "two-nodes", &r2, &a2, 2_000)
    );
    let outcomes = [x.unwrap(), y.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|o| **o == Rotation::Rotated).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Rotation::Reused { .. })),
        "{outcomes:?}"
    );
    for node in [&a, &b] {
        assert_eq!(node.find_refresh_token("r-1", 2_000).await.unwrap(), None);
        assert_eq!(node.find_refresh_token("r-2", 2_000).await.unwrap(), None);
    }
    a.close().await;
    b.close().await;
    schema.drop().await;
}
