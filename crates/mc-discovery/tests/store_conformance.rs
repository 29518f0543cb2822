//! The `DiscoveryStore` conformance cases on both backends (the shared suite runs them too,
//! inside `run_all`; here they run on their own, so a discovery regression is named as one).
//! PostgreSQL needs `MC_TEST_POSTGRES_URL` and is skipped without it (failed under CI=true).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../mc-store-postgres/tests/support/mod.rs"]
mod pg_support;

use mc_store_postgres::PgStore;
use mc_store_sqlite::SqliteStore;

#[tokio::test]
async fn discovery_store_conformance_on_sqlite_in_memory() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    mc_store::conformance::discovery::run(&store).await;
}

#[tokio::test]
async fn discovery_store_conformance_on_a_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("mc-discovery-cf-{}", std::process::id()));
    let store = SqliteStore::open(&dir.join("store.db")).await.unwrap();
    mc_store::conformance::discovery::run(&store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_store_conformance_on_postgres() {
    let Some(schema) = pg_support::TestSchema::create("discovery_store_conformance").await else {
        return;
    };
    let store = PgStore::connect(&schema.url).await.unwrap();
    mc_store::conformance::discovery::run(&store).await;
    store.close().await;
    schema.drop().await;
}
