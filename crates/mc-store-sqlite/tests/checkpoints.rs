//! WAL checkpoints run on the store's own thread (`checkpoint.rs`), not inside commits: the
//! writer has auto-checkpointing off, and what it commits still reaches the database file
//! (not only the WAL) without any further store call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use mc_store::QuotaStore;
use mc_store_sqlite::SqliteStore;
use rusqlite::Connection;
use support::TempDir;

/// The quota rows in the database *file* alone: a copy of it without its WAL holds only
/// what a checkpoint has written back.
fn rows_in_the_file(db: &Path, scratch: &Path) -> i64 {
    let copy = scratch.join("copy.db");
    std::fs::copy(db, &copy).unwrap();
    let n = Connection::open(&copy)
        .unwrap()
        .query_row("SELECT count(*) FROM quota_days", [], |r| r.get(0))
        .unwrap_or(0);
    let _ = std::fs::remove_file(&copy);
    n
}

#[tokio::test]
async fn commits_reach_the_database_file_through_the_checkpoint_thread() {
    let dir = TempDir::new("file");
    let scratch = TempDir::new("scratch");
    let db = dir.0.join("mc.db");
    let store = SqliteStore::open(&db).await.unwrap();

    let auto: i64 = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .unwrap();
    assert_eq!(auto, 1000, "a fresh connection has SQLite's default");
    assert_eq!(rows_in_the_file(&db, &scratch.0), 0);

    for day in 0..3 {
        store.take_daily_call("cp-client", day, 100).await.unwrap();
    }
    // Committed: readable at once through any connection (the WAL)…
    let committed: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM quota_days", [], |r| r.get(0))
        .unwrap();
    assert_eq!(committed, 3);
    // …and in the file itself once the checkpoint thread's next round has run (with
    // SQLite's own auto-checkpoint, not before the WAL reached 1,000 pages).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = rows_in_the_file(&db, &scratch.0);
        if n == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the database file still has {n} of 3 rows: no checkpoint ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await;
}
