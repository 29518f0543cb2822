//! The shared store conformance suite, on a file database and on an in-memory one, plus
//! the file-specific behaviour (persistence, WAL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mc_store::{
    ClientRecord, ClientStatus, ClientStore, SubscriberRecord, SubscriberStatus, SubscriberStore,
};
use mc_store_sqlite::SqliteStore;
use support::TempDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_file() {
    let dir = TempDir::new("conformance");
    // A directory that does not exist yet: open creates it.
    let store = SqliteStore::open(&dir.0.join("nested/gateway.db"))
        .await
        .unwrap();
    mc_store::conformance::run_all(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    mc_store::conformance::run_all(&store).await;
}

#[tokio::test]
async fn in_memory_stores_are_separate() {
    let a = SqliteStore::open_in_memory().await.unwrap();
    let b = SqliteStore::open_in_memory().await.unwrap();
    a.insert_client(&client("only-in-a")).await.unwrap();
    assert!(a.get_client("only-in-a").await.unwrap().is_some());
    assert!(b.get_client("only-in-a").await.unwrap().is_none());
}

#[tokio::test]
async fn reopening_a_file_keeps_the_data() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("gateway.db");
    let c = client("kept");
    let s = SubscriberRecord {
        id: "sub-kept".into(),
        msisdn: "+447700900123".into(),
        status: SubscriberStatus::Active,
        pin_hash: None,
        pin_failures: 0,
        pin_locked: false,
        capabilities: vec!["sms".into()],
        created_at: 5,
    };
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.insert_client(&c).await.unwrap();
        store.insert_subscriber(&s).await.unwrap();
        store.record_pin_failure(&s.id, 5).await.unwrap();
        store.close().await;
    }
    {
        // Reopening runs the (already applied) migrations again: a no-op.
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.get_client("kept").await.unwrap(), Some(c));
        let got = store
            .find_subscriber_by_msisdn(&s.msisdn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.pin_failures, 1);
        store.close().await;
    }

    // The file is in WAL mode with foreign keys enforced by the store's connections.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().map_err(|(_, e)| e).unwrap();
}

#[tokio::test]
async fn a_second_store_on_the_same_file_sees_the_first_ones_writes() {
    let dir = TempDir::new("two");
    let path = dir.0.join("gateway.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let second = SqliteStore::open(&path).await.unwrap();
    first.insert_client(&client("shared")).await.unwrap();
    assert!(second.get_client("shared").await.unwrap().is_some());
    assert!(matches!(
        second.insert_client(&client("shared")).await,
        Err(mc_store::StoreError::Conflict(_))
    ));
    first.close().await;
    second.close().await;
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        secret_hash: "hash".into(),
        name: "Name".into(),
        short_name: "name".into(),
        redirect_uris: vec!["https://sp.example/cb".into()],
        allowed_scopes: vec!["openid".into()],
        grant_types: vec!["authorization_code".into()],
        sector: "sp.example".into(),
        status: ClientStatus::Active,
        created_at: 1,
        metadata: Default::default(),
    }
}

/// Many tasks reading at once on several threads share at most `READ_CONNECTIONS`
/// readers, all idle again afterwards; the writer is idle too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_stay_within_the_read_connections() {
    use mc_store::PoolStats;

    let dir = TempDir::new("readers");
    let store = SqliteStore::open(&dir.0.join("gateway.db")).await.unwrap();
    store.insert_client(&client("read-often")).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                // Listed, not fetched by id: `get_client` is served from the client cache.
                for _ in 0..50 {
                    assert_eq!(store.list_clients().await.unwrap().len(), 1);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let pools = store.pool_usage();
    let read = pools.iter().find(|p| p.pool == "read").unwrap();
    assert!(read.size >= 1, "{read:?}");
    assert!(read.size <= mc_store_sqlite::READ_CONNECTIONS, "{read:?}");
    assert_eq!(read.idle, read.size, "{read:?}");
    let write = pools.iter().find(|p| p.pool == "write").unwrap();
    assert_eq!((write.size, write.idle, write.max), (1, 1, 1));
    store.close().await;
    // Closed: nothing open, and calls fail instead of reopening.
    let read = store
        .pool_usage()
        .into_iter()
        .find(|p| p.pool == "read")
        .unwrap();
    assert_eq!((read.size, read.idle), (0, 0));
    assert!(store.list_clients().await.is_err());
}
