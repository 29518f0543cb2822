//! The Token Manager and quota contracts (`mc_store::conformance::token_manager`) on their
//! own, on a file database and in memory (they also run within `run_all`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mc_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_manager_on_a_file() {
    let dir = std::env::temp_dir().join(format!(
        "mc-store-sqlite-tm-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let store = SqliteStore::open(&dir.join("gateway.db")).await.unwrap();
    mc_store::conformance::token_manager::run(&store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn token_manager_in_memory() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    mc_store::conformance::token_manager::run(&store).await;
}
