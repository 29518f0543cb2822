//! Retention purges and the key lifecycle on a fresh SQLite store, where every count of the
//! conformance checks is exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mc_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_exactly_what_is_past_its_age() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    mc_store::conformance::retention::run_exact(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_rotates_once() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    mc_store::conformance::keys::run(&store).await;
}
