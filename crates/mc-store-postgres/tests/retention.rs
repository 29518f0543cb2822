//! Retention purges and the key lifecycle on a fresh PostgreSQL schema (exact counts), and
//! two stores ("two gateway nodes") on one database racing a promotion rotate once.
//!
//! Needs `MC_TEST_POSTGRES_URL`; skipped without it (failing under `CI=true`), like the
//! conformance tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mc_store::{KeyRecord, KeyState, KeyStore};
use mc_store_postgres::PgStore;
use support::TestSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_exactly_what_is_past_its_age() {
    let Some(schema) = TestSchema::create("retention_exact").await else {
        return;
    };
    let store = PgStore::connect(&schema.url).await.unwrap();
    mc_store::conformance::retention::run_exact(&store).await;
    store.close().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_rotates_once() {
    let Some(schema) = TestSchema::create("key_lifecycle").await else {
        return;
    };
    let store = PgStore::connect(&schema.url).await.unwrap();
    mc_store::conformance::keys::run(&store).await;
    store.close().await;
    schema.drop().await;
}

fn key(kid: &str, state: KeyState) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        key_use: "sig".into(),
        alg: "RS256".into(),
        private_sealed: vec![1, 2, 3],
        created_at: 10,
        state,
        activates_at: Some(10),
        deactivated_at: None,
        remove_at: None,
    }
}

/// Two nodes (two pools) promote the same pair and insert a `next` key at once: one wins
/// each race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_rotate_once() {
    let Some(schema) = TestSchema::create("two_nodes_rotate").await else {
        return;
    };
    let a = PgStore::connect(&schema.url).await.unwrap();
    let b = PgStore::connect(&schema.url).await.unwrap();
    a.insert_key(&key("k-active", KeyState::Active))
        .await
        .unwrap();
    a.insert_key(&key("k-next", KeyState::Next)).await.unwrap();
    for round in 0..5 {
        let (x, y) = tokio::join!(
            a.promote_key("k-active", "k-next", 100 + round, 1000),
            b.promote_key("k-active", "k-next", 100 + round, 1000)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        if round == 0 {
            assert!(x ^ y, "exactly one node rotates: {x} {y}");
        } else {
            assert!(!x && !y, "a rotation happens once");
        }
    }
    let (ka, kb) = (
        key("k-new-a", KeyState::Next),
        key("k-new-b", KeyState::Next),
    );
    let (x, y) = tokio::join!(a.insert_key(&ka), b.insert_key(&kb));
    assert!(x.is_ok() ^ y.is_ok(), "exactly one next key: {x:?} {y:?}");
    let keys = b.list_keys().await.unwrap();
    let states: Vec<(String, KeyState)> = keys.into_iter().map(|k| (k.kid, k.state)).collect();
    assert!(states.contains(&("k-active".into(), KeyState::Retiring)));
    assert!(states.contains(&("k-next".into(), KeyState::Active)));
    assert_eq!(states.len(), 3);
    a.close().await;
    b.close().await;
    schema.drop().await;
}
