//! The shared store conformance suite on a real PostgreSQL, plus what only a shared server
//! shows: two stores ("two gateway nodes") on one database see each other's writes and
//! never lease the same outbox item.
//!
//! Needs `MC_TEST_POSTGRES_URL` (e.g. `postgres://user:pass@127.0.0.1:5432/db`); each test
//! works in a schema of its own. Without it the tests print "skipped: MC_TEST_POSTGRES_URL
//! not set" and pass, except under `CI=true`, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use mc_store::{
    AuthSession, BackchannelKind, BackchannelRecord, BackchannelStore, ClientRecord, ClientStatus,
    ClientStore, DeliveryMode, OutboxStore, Resolution, SessionStatus, SessionStore, StoreError,
    SubscriberRecord, SubscriberStatus, SubscriberStore,
};
use mc_store_postgres::{PgStore, PgStoreOptions};
use support::TestSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(schema) = TestSchema::create("conformance").await else {
        return;
    };
    let store = PgStore::connect(&schema.url).await.unwrap();
    mc_store::conformance::run_all(&store).await;
    store.close().await;

    // Connecting again finds the migrations applied and the data there.
    let again = PgStore::connect(&schema.url).await.unwrap();
    assert!(again.get_client("cf-client-1").await.unwrap().is_some());
    again.close().await;
    schema.drop().await;
}

/// The suite again on a pool of one connection: every operation must release its
/// connection (no operation may need two at once), or this deadlocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_one_connection() {
    let Some(schema) = TestSchema::create("conformance_on_one_connection").await else {
        return;
    };
    let store = PgStore::connect_with(
        &schema.url,
        PgStoreOptions {
            max_connections: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    mc_store::conformance::run_all(&store).await;
    store.close().await;
    schema.drop().await;
}

/// The suite again with every transaction `SERIALIZABLE` (a server configured so, or
/// CockroachDB's default): the races end in serialization failures there instead of
/// waits and re-checks, and the store's retries must keep every contract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_under_serializable_isolation() {
    let Some(schema) = TestSchema::create("conformance_under_serializable_isolation").await else {
        return;
    };
    let url = format!(
        "{}&options[default_transaction_isolation]=serializable",
        schema.url
    );
    let store = PgStore::connect(&url).await.unwrap();
    mc_store::conformance::run_all(&store).await;
    store.close().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database() {
    let Some(schema) = TestSchema::create("two_nodes_share_one_database").await else {
        return;
    };
    let a = PgStore::connect(&schema.url).await.unwrap();
    let b = PgStore::connect(&schema.url).await.unwrap();

    // Registry and provisioning written on one node are read on the other.
    a.insert_client(&client("shared")).await.unwrap();
    assert_eq!(
        b.get_client("shared").await.unwrap(),
        Some(client("shared"))
    );
    assert!(matches!(
        b.insert_client(&client("shared")).await,
        Err(StoreError::Conflict(_))
    ));
    b.insert_subscriber(&subscriber("sub-1", "+447700900001"))
        .await
        .unwrap();
    assert!(
        a.find_subscriber_by_msisdn("+447700900001")
            .await
            .unwrap()
            .is_some()
    );

    // A login started on node A is answered on node B and redeemed on node A; the one
    // live transaction per subscriber holds across nodes.
    let login = session("login-1", "shared", "sub-1", 1_000, 1_300);
    a.create_session(&login, 1_000).await.unwrap();
    let rival = session("login-2", "shared", "sub-1", 1_001, 1_301);
    assert!(matches!(
        b.create_session(&rival, 1_001).await,
        Err(StoreError::Busy)
    ));
    let pending = b.pending_for_subscriber("sub-1", 1_002).await.unwrap();
    assert_eq!(
        pending.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["login-1"]
    );
    let approve = Resolution::Approved {
        acr: "2".into(),
        amr: vec!["app".into()],
        auth_time: 1_005,
    };
    assert!(b.resolve_session("login-1", &approve, 1_005).await.unwrap());
    assert!(!a.resolve_session("login-1", &approve, 1_006).await.unwrap());
    assert!(a.issue_code("login-1", "code-hash-1", 1_060).await.unwrap());
    assert!(matches!(
        b.redeem_code("code-hash-1", 1_010).await.unwrap(),
        mc_store::Redemption::Fresh(_)
    ));
    assert!(matches!(
        a.redeem_code("code-hash-1", 1_011).await.unwrap(),
        mc_store::Redemption::Replayed { .. }
    ));

    // Notification work enqueued on both nodes, leased by both at once: every item goes
    // to exactly one of them.
    const ITEMS: usize = 60;
    for i in 0..ITEMS {
        let (creator, answerer) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let id = format!("bc-{i:03}");
        let (s, bc) = ping_request(&id, "shared", "sub-1", 2_000, 2_300);
        creator.create_backchannel(&s, &bc, 2_000).await.unwrap();
        let deny = Resolution::Denied {
            error: "user_denied".into(),
        };
        assert!(answerer.resolve_session(&id, &deny, 2_001).await.unwrap());
    }
    assert_eq!(a.outbox_depth().await.unwrap().items, ITEMS as u64);

    let worker = |store: PgStore| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let items = store.lease_outbox(2_010, 60, 3).await.unwrap();
                if items.is_empty() {
                    return got;
                }
                got.extend(items.into_iter().map(|item| item.id));
                tokio::task::yield_now().await;
            }
        })
    };
    let workers: Vec<_> = [&a, &b, &a, &b]
        .into_iter()
        .map(|store| worker(store.clone()))
        .collect();
    let mut leased = Vec::new();
    let mut per_worker = Vec::new();
    for w in workers {
        let got = w.await.unwrap();
        per_worker.push(got.len());
        leased.extend(got);
    }
    let distinct: BTreeSet<i64> = leased.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        leased.len(),
        "an outbox item was leased twice"
    );
    assert_eq!(
        leased.len(),
        ITEMS,
        "every item is leased once: {per_worker:?}"
    );
    // Leased: neither node gets them again before the lease ends; both see the depth.
    assert!(a.lease_outbox(2_020, 60, 100).await.unwrap().is_empty());
    assert!(b.lease_outbox(2_020, 60, 100).await.unwrap().is_empty());
    for (i, id) in leased.iter().enumerate() {
        let store = if i % 2 == 0 { &a } else { &b };
        store.complete_outbox(*id).await.unwrap();
    }
    assert_eq!(a.outbox_depth().await.unwrap().items, 0);
    assert_eq!(b.outbox_depth().await.unwrap().items, 0);

    a.close().await;
    b.close().await;
    schema.drop().await;
}

/// No server needed: a connection failure is a `Backend` error that does not repeat the
/// password of the URL.
#[tokio::test]
async fn a_refused_connection_is_a_backend_error_without_the_password() {
    let err = PgStore::connect("postgres://mc:s3cr3t-pw@127.0.0.1:1/mc")
        .await
        .unwrap_err();
    match err {
        StoreError::Backend(text) => assert!(!text.contains("s3cr3t-pw"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        PgStore::connect("not a url").await,
        Err(StoreError::Backend(_))
    ));
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

fn subscriber(id: &str, msisdn: &str) -> SubscriberRecord {
    SubscriberRecord {
        id: id.into(),
        msisdn: msisdn.into(),
        status: SubscriberStatus::Active,
        pin_hash: None,
        pin_failures: 0,
        pin_locked: false,
        capabilities: vec!["app_push".into()],
        created_at: 5,
    }
}

fn session(
    id: &str,
    client_id: &str,
    subscriber_id: &str,
    created_at: i64,
    expires_at: i64,
) -> AuthSession {
    AuthSession {
        id: id.into(),
        client_id: client_id.into(),
        subscriber_id: Some(subscriber_id.into()),
        redirect_uri: "https://sp.example/cb".into(),
        state: "state".into(),
        nonce: "nonce".into(),
        scope: "openid".into(),
        version: "mc_di_r2_v2.3".into(),
        acr_values: "2".into(),
        max_age: None,
        claims: None,
        client_name: "name".into(),
        context: None,
        binding_message: None,
        correlation_id: None,
        code_challenge: None,
        status: SessionStatus::Pending,
        acr: None,
        amr: Vec::new(),
        auth_time: None,
        error: None,
        created_at,
        expires_at,
    }
}

fn ping_request(
    id: &str,
    client_id: &str,
    subscriber_id: &str,
    created_at: i64,
    expires_at: i64,
) -> (AuthSession, BackchannelRecord) {
    let mut s = session(id, client_id, subscriber_id, created_at, expires_at);
    s.redirect_uri = String::new();
    s.state = String::new();
    let b = BackchannelRecord {
        auth_req_id: id.into(),
        kind: BackchannelKind::Ciba,
        mode: DeliveryMode::Ping,
        notification_endpoint: Some("https://sp.example/notify".into()),
        notification_token: Some(format!("token-{id}")),
        interval: 5,
        last_poll_at: None,
    };
    (s, b)
}

/// A pooled connection the server dropped while it sat idle (a restart, a fail-over,
/// `pg_terminate_backend`) is found dead by the ping before use and replaced: the caller
/// never sees it. Without the ping (a connection trusted as recently used) the first call
/// on it fails, which is why idle connections are pinged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_while_idle_is_replaced_before_use() {
    let Some(schema) = TestSchema::create("a_connection_dropped_while_idle").await else {
        return;
    };
    let store_named = |app: &'static str, ping_after_idle| {
        let url = format!("{}&application_name={app}", schema.url);
        async move {
            let options = PgStoreOptions {
                max_connections: 1,
                ping_after_idle,
                ..Default::default()
            };
            PgStore::connect_with(&url, options).await.unwrap()
        }
    };
    // Terminates the named store's connections and waits until they are gone.
    let drop_connections = |app: &'static str| {
        let base = schema.url.clone();
        async move {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
            let ended: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
            )
            .bind(app)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            assert_eq!(ended, [true], "the pool's one connection");
            admin.close().await.unwrap();
        }
    };

    let pinged = store_named("mc_test_pinged", std::time::Duration::ZERO).await;
    assert!(
        pinged
            .find_subscriber_by_msisdn("+447700900009")
            .await
            .unwrap()
            .is_none()
    );
    drop_connections("mc_test_pinged").await;
    assert!(
        pinged
            .find_subscriber_by_msisdn("+447700900009")
            .await
            .unwrap()
            .is_none(),
        "a dead idle connection is replaced before use"
    );
    pinged.close().await;

    let trusted = store_named("mc_test_trusted", std::time::Duration::from_secs(3600)).await;
    assert!(
        trusted
            .find_subscriber_by_msisdn("+447700900009")
            .await
            .unwrap()
            .is_none()
    );
    drop_connections("mc_test_trusted").await;
    assert!(
        trusted
            .find_subscriber_by_msisdn("+447700900009")
            .await
            .is_err(),
        "trusted without a ping, the dead connection fails the call"
    );
    assert!(
        trusted
            .find_subscriber_by_msisdn("+447700900009")
            .await
            .unwrap()
            .is_none(),
        "and is not used again"
    );
    trusted.close().await;
    schema.drop().await;
}
