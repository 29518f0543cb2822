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

/// The WAL's checkpoint sequence number (bytes 12..16 of its header, big-endian): SQLite
/// increments it each time the log is started over, and writes it with the first frame of
/// the new log.
fn wal_restarts(wal: &Path) -> u32 {
    let mut header = [0u8; 16];
    match std::fs::File::open(wal).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut header)
    }) {
        Ok(()) => u32::from_be_bytes([header[12], header[13], header[14], header[15]]),
        Err(_) => 0,
    }
}

/// Under a steady stream of writes and reads SQLite never starts the WAL over by itself (a
/// passive checkpoint is always behind, a reader always on the log); the checkpoint thread
/// does, once the log holds `RESTART_FRAMES`. Here writes go on, with two readers reading
/// without pause, until the log has been started over twice — which must happen well before
/// 40 × `RESTART_FRAMES` pages were appended. (Counted by the restarts themselves, not by
/// the file's size: how far the log grows between two checkpoint rounds depends on how fast
/// the machine writes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_steady_writes_and_reads() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = TempDir::new("wal-bound");
    let db = dir.0.join("mc.db");
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let wal = dir.0.join("mc.db-wal");
    let page = 4096 + 24; // a WAL frame: the page and its header
    let limit = mc_store_sqlite::RESTART_FRAMES as u64 * page;

    let writing = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, writing) = (db.clone(), writing.clone());
            std::thread::spawn(move || {
                let conn = Connection::open(&db).unwrap();
                let mut reads = 0u64;
                while writing.load(Ordering::Relaxed) {
                    let _: i64 = conn
                        .query_row("SELECT count(*) FROM quota_days", [], |r| r.get(0))
                        .unwrap();
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    // Each write is a new row (a new page now and then) plus its index entry, each commit
    // at least one frame.
    let first = wal_restarts(&wal);
    let mut appended = 0u64;
    let mut largest = 0u64;
    let mut day = 0;
    while wal_restarts(&wal).wrapping_sub(first) < 2 && appended < 40 * limit {
        let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        store.take_daily_call("wal-client", day, 100).await.unwrap();
        day += 1;
        let after = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        appended += page.max(after.saturating_sub(before));
        largest = largest.max(after);
    }
    writing.store(false, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    let restarts = wal_restarts(&wal).wrapping_sub(first);
    assert!(
        restarts >= 2,
        "the WAL started over {restarts} times in {day} writes ({appended} bytes appended, \
         the file at most {largest} bytes, restart at {limit})"
    );
    store.close().await;
}
