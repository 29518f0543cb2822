//! The store conformance suite: every backend runs it (see `mc-store-sqlite/tests`).
//!
//! [`run_all`] exercises every contract stated on the traits in this crate; each contract
//! also has its own `pub async fn`, so a backend can run one while debugging. A failed
//! contract panics with a message naming it, like a failed `assert!` in a test.
//!
//! The suite expects a store it may write to freely (a fresh one is best). Every function
//! uses its own ids and MSISDNs, so the functions can run in any order on one store, and it
//! inserts the clients and subscribers its sessions and tokens name, so a backend may
//! enforce foreign keys. The back-channel checks use times from 100 000 on, each check its
//! own range; the outbox is one queue for all, so the checks that count it exactly first
//! lease whatever other checks left in it far into the future, and the others only look at
//! the items of their own requests. Where a contract says nothing (ordering of lists, the
//! status an expired pending session is moved to, the error for a duplicate session id, the
//! answer to an unknown outbox item) the suite asserts nothing either.

pub mod attributes;
pub mod consent;
pub mod devices;
pub mod discovery;
pub mod keys;
pub mod mssp;
pub mod passkeys;
pub mod pool;
pub mod retention;
pub mod sms;
pub mod token_manager;
pub mod user_codes;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::{
    AccessTokenRecord, Answered, AuthSession, BackchannelKind, BackchannelRecord, ClientMetadata,
    ClientRecord, ClientStatus, DeliveryMode, OutboxDepth, OutboxItem, PinState, PollOutcome,
    Redemption, RefreshTokenRecord, ReservedCode, Resolution, STALE_SESSION_ERROR, SessionStatus,
    Store, StoreError, StoreResult, SubscriberRecord, SubscriberStatus,
};

/// How many callers the concurrency checks race against each other.
pub const RACERS: usize = 16;

/// How many workers the outbox leasing race runs.
pub const LEASERS: usize = 8;

/// Runs every contract check against `store`.
pub async fn run_all(store: &dyn Store) {
    clients(store).await;
    subscribers(store).await;
    msisdn_recycling(store).await;
    pins(store).await;
    pcrs(store).await;
    session_roundtrip(store).await;
    session_busy_rule(store).await;
    assign_subscriber_rule(store).await;
    resolution(store).await;
    codes(store).await;
    reserved_codes(store).await;
    redemption_issuing_tokens(store).await;
    pending_for_subscriber(store).await;
    access_tokens(store).await;
    keys::run(store).await;
    concurrent_session_creation(store).await;
    concurrent_redemption(store).await;
    concurrent_redemption_issuing(store).await;
    concurrent_pcr_creation(store).await;
    client_metadata(store).await;
    backchannel_roundtrip(store).await;
    backchannel_busy_rule(store).await;
    backchannel_poll(store).await;
    backchannel_consume(store).await;
    backchannel_notifications(store).await;
    backchannel_expiry(store).await;
    jti_replay(store).await;
    outbox_leasing(store).await;
    concurrent_backchannel_creation(store).await;
    concurrent_polls(store).await;
    concurrent_outbox_leasing(store).await;
    pool::run(store).await;
    attributes::run(store).await;
    consent::run(store).await;
    devices::run(store).await;
    discovery::run(store).await;
    token_manager::run(store).await;
    user_codes::run(store).await;
    sms::run(store).await;
    mssp::run(store).await;
    passkeys::run(store).await;
    // Deletes rows with times below 1 000: only its own.
    retention::run(store).await;
}

// ---------------------------------------------------------------------------------------
// helpers

/// Unwraps a store answer, panicking with the step that failed (the suite's `assert!`).
#[track_caller]
fn ok<T>(r: StoreResult<T>, step: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("conformance: {step}: unexpected error {e:?}"),
    }
}

#[track_caller]
fn expect_err(r: StoreResult<impl std::fmt::Debug>, step: &str, want: fn(&StoreError) -> bool) {
    match r {
        Err(e) if want(&e) => {}
        other => panic!("conformance: {step}: got {other:?}"),
    }
}

fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(_))
}

fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::Busy)
}

fn is_not_found(e: &StoreError) -> bool {
    matches!(e, StoreError::NotFound)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Polls every future on the current task until all are done (no `'static` bound, so the
/// futures may borrow the store). Backends whose calls yield (a pool, a driver thread, a
/// network round trip) get their calls interleaved and overlapping.
async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.to_string(),
        secret_hash: format!("$argon2id$secret-of-{id}"),
        name: format!("Client {id}"),
        short_name: format!("short-{id}"),
        redirect_uris: strings(&["https://sp.example/cb", "https://sp.example/cb2?x=1"]),
        allowed_scopes: strings(&["openid", "mc_authn", "mc_identity_phonenumber"]),
        grant_types: strings(&["authorization_code"]),
        sector: "sp.example".to_string(),
        status: ClientStatus::Active,
        created_at: 1_700_000_000,
        metadata: ClientMetadata::default(),
    }
}

fn subscriber(id: &str, msisdn: &str) -> SubscriberRecord {
    SubscriberRecord {
        id: id.to_string(),
        msisdn: msisdn.to_string(),
        status: SubscriberStatus::Active,
        pin_hash: Some(format!("$argon2id$pin-of-{id}")),
        pin_failures: 0,
        pin_locked: false,
        capabilities: strings(&["app_push", "sms"]),
        created_at: 1_700_000_100,
    }
}

/// A session of `client_id`, created at `created_at` and live until `expires_at`.
fn session(
    id: &str,
    client_id: &str,
    subscriber_id: Option<&str>,
    status: SessionStatus,
    created_at: i64,
    expires_at: i64,
) -> AuthSession {
    AuthSession {
        id: id.to_string(),
        client_id: client_id.to_string(),
        subscriber_id: subscriber_id.map(str::to_string),
        redirect_uri: "https://sp.example/cb".to_string(),
        state: format!("state-{id}"),
        nonce: format!("nonce-{id}"),
        scope: "openid mc_authn".to_string(),
        version: "mc_di_r2_v2.3".to_string(),
        acr_values: "2".to_string(),
        max_age: None,
        claims: None,
        client_name: "short-sp".to_string(),
        context: None,
        binding_message: None,
        correlation_id: None,
        code_challenge: None,
        status,
        acr: None,
        amr: Vec::new(),
        auth_time: None,
        error: None,
        created_at,
        expires_at,
    }
}

fn approved(acr: &str, amr: &[&str], auth_time: i64) -> Resolution {
    Resolution::Approved {
        acr: acr.to_string(),
        amr: strings(amr),
        auth_time,
    }
}

fn denied(error: &str) -> Resolution {
    Resolution::Denied {
        error: error.to_string(),
    }
}

/// A back-channel request of `client_id` for `subscriber_id` (a pending session without
/// redirect URI or state) and its back-channel row, polled every 5 s.
fn bc_request(
    id: &str,
    client_id: &str,
    subscriber_id: &str,
    mode: DeliveryMode,
    created_at: i64,
    expires_at: i64,
) -> (AuthSession, BackchannelRecord) {
    let mut s = session(
        id,
        client_id,
        Some(subscriber_id),
        SessionStatus::Pending,
        created_at,
        expires_at,
    );
    s.redirect_uri = String::new();
    s.state = String::new();
    s.binding_message = Some(format!("bind-{id}"));
    let b = BackchannelRecord {
        auth_req_id: id.to_string(),
        kind: BackchannelKind::Ciba,
        mode,
        notification_endpoint: mode
            .notifies()
            .then(|| "https://sp.example/ciba/notify".to_string()),
        notification_token: mode.notifies().then(|| format!("notify-token-{id}")),
        interval: 5,
        last_poll_at: None,
    };
    (s, b)
}

/// Creates a back-channel request and denies it at `at`, which enqueues one outbox item
/// (due at `at`) when `mode` notifies.
async fn answered_request(
    store: &dyn Store,
    id: &str,
    client_id: &str,
    subscriber_id: &str,
    mode: DeliveryMode,
    at: i64,
) {
    let (s, b) = bc_request(id, client_id, subscriber_id, mode, at - 5, at + 300);
    ok(
        store.create_backchannel(&s, &b, at - 5).await,
        "create back-channel request to answer",
    );
    assert!(
        ok(
            store.resolve_session(id, &denied("user_denied"), at).await,
            "deny back-channel request"
        ),
        "conformance: denying a live back-channel request must succeed"
    );
}

/// Leases with `lease` until it returns nothing, and returns everything leased. A bounded
/// number of rounds: a backend that hands out leased items again fails instead of looping.
async fn lease_all<F, Fut>(lease: F) -> Vec<OutboxItem>
where
    F: Fn() -> Fut,
    Fut: Future<Output = StoreResult<Vec<OutboxItem>>>,
{
    let mut all = Vec::new();
    for _ in 0..DRAIN_ROUNDS {
        let got = ok(lease().await, "lease outbox");
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
    panic!("conformance: lease_outbox still returns items after {DRAIN_ROUNDS} rounds at one time");
}

/// How many `lease_outbox` calls at one time empty the outbox (in the suite's use).
const DRAIN_ROUNDS: usize = 100;

/// Leases, at `now`, every due item and returns those about the sessions in `ids` (the
/// others stay leased; no other check needs them).
async fn outbox_items_of(store: &dyn Store, ids: &[&str], now: i64) -> Vec<OutboxItem> {
    let mut mine: Vec<OutboxItem> = lease_all(|| store.lease_outbox(now, 60, 1000))
        .await
        .into_iter()
        .filter(|item| ids.contains(&item.session_id.as_str()))
        .collect();
    mine.sort_by_key(|item| item.id);
    mine
}

/// Far in the future of every time the suite uses.
const PARK_AT: i64 = 1 << 40;

/// Leases every item in the outbox until far beyond the suite's times, so that the items
/// earlier checks left behind stay out of an exact count.
async fn park_outbox(store: &dyn Store) {
    lease_all(|| store.lease_outbox(PARK_AT, PARK_AT, 1000)).await;
}

fn ids_of(items: &[OutboxItem]) -> Vec<i64> {
    items.iter().map(|item| item.id).collect()
}

fn token(
    hash: &str,
    session_id: Option<&str>,
    client_id: &str,
    expires_at: i64,
) -> AccessTokenRecord {
    AccessTokenRecord {
        token_hash: hash.to_string(),
        session_id: session_id.map(str::to_string),
        client_id: client_id.to_string(),
        subscriber_id: None,
        sub: None,
        scope: "openid".to_string(),
        expires_at,
        issued_at: expires_at - 3600,
        family_id: None,
        claims: None,
    }
}

/// Inserts a client and subscriber that sessions of one check refer to.
async fn fixture(store: &dyn Store, client_id: &str, subscribers: &[(&str, &str)]) {
    ok(
        store.insert_client(&client(client_id)).await,
        "fixture client",
    );
    for (id, msisdn) in subscribers {
        ok(
            store.insert_subscriber(&subscriber(id, msisdn)).await,
            "fixture subscriber",
        );
    }
}

/// Creates a pending session and approves it; returns it as stored.
async fn approved_session(
    store: &dyn Store,
    id: &str,
    client_id: &str,
    sub: &str,
    now: i64,
) -> AuthSession {
    let s = session(
        id,
        client_id,
        Some(sub),
        SessionStatus::Pending,
        now,
        now + 300,
    );
    ok(
        store.create_session(&s, now).await,
        "create session to approve",
    );
    let answered = ok(
        store
            .resolve_session(id, &approved("2", &["pin", "app"], now + 5), now + 5)
            .await,
        "approve session",
    );
    assert!(
        answered,
        "conformance: approving a live pending session must succeed"
    );
    match ok(store.get_session(id).await, "get approved session") {
        Some(s) => s,
        None => panic!("conformance: approved session {id} vanished"),
    }
}

// ---------------------------------------------------------------------------------------
// ClientStore

/// insert/get/list/update of clients; `Conflict` on a duplicate id; `NotFound` on update of
/// an unknown one.
pub async fn clients(store: &dyn Store) {
    let c1 = client("cf-client-1");
    let mut c2 = client("cf-client-2");
    c2.redirect_uris = Vec::new();
    c2.grant_types = strings(&["authorization_code", "client_credentials"]);

    assert_eq!(
        ok(store.get_client(&c1.client_id).await, "get unknown client"),
        None
    );
    ok(store.insert_client(&c1).await, "insert client");
    ok(store.insert_client(&c2).await, "insert second client");
    assert_eq!(
        ok(store.get_client(&c1.client_id).await, "get client"),
        Some(c1.clone())
    );
    assert_eq!(
        ok(
            store.get_client(&c2.client_id).await,
            "get client with empty list"
        ),
        Some(c2.clone())
    );

    let mut dup = client("cf-client-1");
    dup.name = "Impostor".to_string();
    expect_err(
        store.insert_client(&dup).await,
        "insert duplicate client id",
        is_conflict,
    );
    assert_eq!(
        ok(
            store.get_client(&c1.client_id).await,
            "get client after duplicate"
        ),
        Some(c1.clone()),
        "a rejected duplicate must not change the stored client"
    );

    let mut listed: Vec<ClientRecord> = ok(store.list_clients().await, "list clients")
        .into_iter()
        .filter(|c| c.client_id.starts_with("cf-client-"))
        .collect();
    listed.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    assert_eq!(listed, vec![c1.clone(), c2.clone()], "list_clients");

    // Every field but client_id and created_at is replaced.
    let changed = ClientRecord {
        client_id: c1.client_id.clone(),
        secret_hash: "$argon2id$rotated".to_string(),
        name: "Renamed".to_string(),
        short_name: "renamed".to_string(),
        redirect_uris: strings(&["https://new.example/cb"]),
        allowed_scopes: strings(&["openid"]),
        grant_types: Vec::new(),
        sector: "new.example".to_string(),
        status: ClientStatus::Disabled,
        created_at: c1.created_at + 999,
        metadata: ClientMetadata {
            token_endpoint_auth_method: Some("client_secret_post".to_string()),
            ..ClientMetadata::default()
        },
    };
    ok(store.update_client(&changed).await, "update client");
    let want = ClientRecord {
        created_at: c1.created_at,
        ..changed.clone()
    };
    assert_eq!(
        ok(store.get_client(&c1.client_id).await, "get updated client"),
        Some(want)
    );
    assert_eq!(
        ok(
            store.get_client(&c2.client_id).await,
            "get other client after update"
        ),
        Some(c2),
        "update_client must touch one client only"
    );

    expect_err(
        store.update_client(&client("cf-client-none")).await,
        "update unknown client",
        is_not_found,
    );
    assert_eq!(
        ok(
            store.get_client("cf-client-none").await,
            "get after failed update"
        ),
        None
    );
}

// ---------------------------------------------------------------------------------------
// SubscriberStore

/// insert/get/find/list/update of subscribers; `Conflict` on a duplicate id.
pub async fn subscribers(store: &dyn Store) {
    let s1 = subscriber("cf-sub-1", "+440000000001");
    let mut s2 = subscriber("cf-sub-2", "+440000000002");
    s2.pin_hash = None;
    s2.capabilities = Vec::new();

    assert_eq!(
        ok(store.get_subscriber(&s1.id).await, "get unknown subscriber"),
        None
    );
    ok(store.insert_subscriber(&s1).await, "insert subscriber");
    ok(
        store.insert_subscriber(&s2).await,
        "insert second subscriber",
    );
    assert_eq!(
        ok(store.get_subscriber(&s1.id).await, "get subscriber"),
        Some(s1.clone())
    );
    assert_eq!(
        ok(
            store.get_subscriber(&s2.id).await,
            "get subscriber without PIN"
        ),
        Some(s2.clone())
    );

    let dup = subscriber("cf-sub-1", "+440000000003");
    expect_err(
        store.insert_subscriber(&dup).await,
        "insert duplicate subscriber id",
        is_conflict,
    );
    assert_eq!(
        ok(
            store.find_subscriber_by_msisdn("+440000000003").await,
            "find after failed insert"
        ),
        None
    );

    assert_eq!(
        ok(
            store.find_subscriber_by_msisdn(&s1.msisdn).await,
            "find by msisdn"
        ),
        Some(s1.clone())
    );
    assert_eq!(
        ok(
            store.find_subscriber_by_msisdn("+449999999999").await,
            "find unknown msisdn"
        ),
        None
    );

    let mut listed: Vec<SubscriberRecord> = ok(store.list_subscribers().await, "list subscribers")
        .into_iter()
        .filter(|s| s.id == s1.id || s.id == s2.id)
        .collect();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, vec![s1.clone(), s2.clone()], "list_subscribers");

    let caps = strings(&["sim_applet"]);
    ok(
        store
            .update_subscriber(&s1.id, SubscriberStatus::Suspended, &caps)
            .await,
        "update subscriber",
    );
    let want = SubscriberRecord {
        status: SubscriberStatus::Suspended,
        capabilities: caps.clone(),
        ..s1.clone()
    };
    assert_eq!(
        ok(store.get_subscriber(&s1.id).await, "get updated subscriber"),
        Some(want.clone())
    );
    assert_eq!(
        ok(
            store.find_subscriber_by_msisdn(&s1.msisdn).await,
            "find suspended subscriber"
        ),
        Some(want),
        "a suspended subscriber still holds the number"
    );
    assert_eq!(
        ok(
            store.get_subscriber(&s2.id).await,
            "other subscriber after update"
        ),
        Some(s2)
    );

    expect_err(
        store
            .update_subscriber("cf-sub-none", SubscriberStatus::Active, &caps)
            .await,
        "update unknown subscriber",
        is_not_found,
    );
}

/// One non-retired holder per MSISDN; a retired number can be given to someone else, and
/// `find_subscriber_by_msisdn` ignores retired holders.
pub async fn msisdn_recycling(store: &dyn Store) {
    let msisdn = "+440000000100";
    let old = subscriber("cf-recycle-old", msisdn);
    let new = subscriber("cf-recycle-new", msisdn);
    ok(store.insert_subscriber(&old).await, "insert first holder");

    expect_err(
        store.insert_subscriber(&new).await,
        "second active holder",
        is_conflict,
    );
    let suspended = SubscriberRecord {
        status: SubscriberStatus::Suspended,
        ..new.clone()
    };
    expect_err(
        store.insert_subscriber(&suspended).await,
        "second suspended holder",
        is_conflict,
    );
    assert_eq!(
        ok(
            store.get_subscriber(&new.id).await,
            "rejected holder not stored"
        ),
        None
    );

    ok(
        store
            .update_subscriber(&old.id, SubscriberStatus::Retired, &old.capabilities)
            .await,
        "retire first holder",
    );
    assert_eq!(
        ok(
            store.find_subscriber_by_msisdn(msisdn).await,
            "find retired number"
        ),
        None,
        "find_subscriber_by_msisdn must ignore retired subscribers"
    );

    ok(
        store.insert_subscriber(&new).await,
        "insert new holder of a recycled number",
    );
    assert_eq!(
        ok(
            store.find_subscriber_by_msisdn(msisdn).await,
            "find recycled number"
        ),
        Some(new.clone())
    );
    let old_now = ok(
        store.get_subscriber(&old.id).await,
        "get retired subscriber",
    );
    assert_eq!(
        old_now.map(|s| s.status),
        Some(SubscriberStatus::Retired),
        "the retired subscriber is kept (its id is stable)"
    );

    let third = subscriber("cf-recycle-third", msisdn);
    expect_err(
        store.insert_subscriber(&third).await,
        "holder after recycling",
        is_conflict,
    );
}

/// `set_pin` clears failures and lock; `record_pin_failure` counts and locks at the
/// maximum; `clear_pin_failures` resets the count but not the lock.
pub async fn pins(store: &dyn Store) {
    let mut s = subscriber("cf-pin-1", "+440000000200");
    s.pin_hash = None;
    ok(store.insert_subscriber(&s).await, "insert subscriber");

    ok(store.set_pin(&s.id, Some("$argon2id$h1")).await, "set pin");
    let got = ok(store.get_subscriber(&s.id).await, "get after set_pin");
    assert_eq!(
        got.as_ref().and_then(|s| s.pin_hash.clone()),
        Some("$argon2id$h1".to_string())
    );

    let want = [
        PinState {
            failures: 1,
            locked: false,
        },
        PinState {
            failures: 2,
            locked: false,
        },
        PinState {
            failures: 3,
            locked: true,
        },
    ];
    for w in want {
        assert_eq!(
            ok(
                store.record_pin_failure(&s.id, 3).await,
                "record pin failure"
            ),
            w
        );
    }
    let got = ok(store.get_subscriber(&s.id).await, "get locked subscriber");
    assert_eq!(
        got.as_ref().map(|s| (s.pin_failures, s.pin_locked)),
        Some((3, true))
    );

    ok(store.clear_pin_failures(&s.id).await, "clear pin failures");
    let got = ok(store.get_subscriber(&s.id).await, "get after clear");
    assert_eq!(
        got.as_ref().map(|s| (s.pin_failures, s.pin_locked)),
        Some((0, true)),
        "clear_pin_failures resets the counter but keeps the lock"
    );
    assert_eq!(
        ok(
            store.record_pin_failure(&s.id, 3).await,
            "failure while locked"
        ),
        PinState {
            failures: 1,
            locked: true
        },
        "only set_pin unlocks"
    );

    ok(
        store.set_pin(&s.id, Some("$argon2id$h2")).await,
        "reset pin",
    );
    let got = ok(store.get_subscriber(&s.id).await, "get after reset");
    assert_eq!(
        got.as_ref()
            .map(|s| (s.pin_hash.clone(), s.pin_failures, s.pin_locked)),
        Some((Some("$argon2id$h2".to_string()), 0, false)),
        "set_pin clears the counter and the lock"
    );
    assert_eq!(
        ok(
            store.record_pin_failure(&s.id, 1).await,
            "failure with max 1"
        ),
        PinState {
            failures: 1,
            locked: true
        },
    );

    ok(store.set_pin(&s.id, None).await, "clear pin");
    let got = ok(store.get_subscriber(&s.id).await, "get after clearing pin");
    assert_eq!(
        got.as_ref()
            .map(|s| (s.pin_hash.clone(), s.pin_failures, s.pin_locked)),
        Some((None, 0, false))
    );

    assert!(
        store.record_pin_failure("cf-pin-none", 3).await.is_err(),
        "conformance: record_pin_failure of an unknown subscriber must fail"
    );
}

// ---------------------------------------------------------------------------------------
// PcrStore

/// A PCR is created once per (subscriber, sector) and never changes; lookups by PCR are
/// scoped by sector.
pub async fn pcrs(store: &dyn Store) {
    fixture(
        store,
        "cf-pcr-client",
        &[("cf-pcr-1", "+440000000300"), ("cf-pcr-2", "+440000000301")],
    )
    .await;
    let (a, b) = ("sector-a.example", "sector-b.example");

    assert_eq!(
        ok(
            store.subscriber_for_pcr(a, "pcr-1a").await,
            "lookup before creation"
        ),
        None
    );
    assert_eq!(
        ok(
            store.pcr_for("cf-pcr-1", a, "pcr-1a").await,
            "first pcr_for"
        ),
        "pcr-1a"
    );
    assert_eq!(
        ok(
            store.pcr_for("cf-pcr-1", a, "pcr-other").await,
            "second pcr_for"
        ),
        "pcr-1a",
        "pcr_for must return the stored PCR, not the fresh one"
    );
    assert_eq!(
        ok(
            store.pcr_for("cf-pcr-1", b, "pcr-1b").await,
            "pcr_for other sector"
        ),
        "pcr-1b"
    );
    assert_eq!(
        ok(
            store.pcr_for("cf-pcr-2", a, "pcr-2a").await,
            "pcr_for other subscriber"
        ),
        "pcr-2a"
    );
    assert_eq!(
        ok(
            store.pcr_for("cf-pcr-1", a, "pcr-again").await,
            "third pcr_for"
        ),
        "pcr-1a"
    );

    assert_eq!(
        ok(store.subscriber_for_pcr(a, "pcr-1a").await, "lookup a/1a"),
        Some("cf-pcr-1".to_string())
    );
    assert_eq!(
        ok(store.subscriber_for_pcr(b, "pcr-1b").await, "lookup b/1b"),
        Some("cf-pcr-1".to_string())
    );
    assert_eq!(
        ok(store.subscriber_for_pcr(a, "pcr-2a").await, "lookup a/2a"),
        Some("cf-pcr-2".to_string())
    );
    assert_eq!(
        ok(store.subscriber_for_pcr(b, "pcr-1a").await, "lookup b/1a"),
        None,
        "a PCR names a subscriber only within its own sector"
    );
    assert_eq!(
        ok(
            store.subscriber_for_pcr(a, "pcr-other").await,
            "lookup unused fresh"
        ),
        None
    );

    // The subscriber with its PCR: the stored one, else created from `fresh`.
    let with_pcr = |id: &'static str, sector: &'static str, fresh: &'static str| async move {
        ok(
            store.subscriber_and_pcr(id, sector, fresh).await,
            "subscriber_and_pcr",
        )
        .map(|(subscriber, pcr)| (subscriber.id, subscriber.msisdn, pcr))
    };
    assert_eq!(
        with_pcr("cf-pcr-1", a, "pcr-unused").await,
        Some(("cf-pcr-1".into(), "+440000000300".into(), "pcr-1a".into())),
        "conformance: subscriber_and_pcr returns the stored PCR"
    );
    assert_eq!(
        with_pcr("cf-pcr-2", b, "pcr-2b").await,
        Some(("cf-pcr-2".into(), "+440000000301".into(), "pcr-2b".into())),
        "conformance: subscriber_and_pcr creates the PCR on first use"
    );
    assert_eq!(
        ok(store.pcr_for("cf-pcr-2", b, "pcr-later").await, "pcr_for"),
        "pcr-2b",
        "conformance: the PCR subscriber_and_pcr created is the one pcr_for finds"
    );
    assert_eq!(with_pcr("cf-pcr-none", a, "pcr-x").await, None);
    assert_eq!(
        ok(store.subscriber_for_pcr(a, "pcr-x").await, "lookup"),
        None,
        "conformance: no PCR for a subscriber that does not exist"
    );
}

// ---------------------------------------------------------------------------------------
// SessionStore

/// Every field of a session survives the store.
pub async fn session_roundtrip(store: &dyn Store) {
    fixture(store, "cf-rt-client", &[("cf-rt-sub", "+440000000400")]).await;
    let mut s = session(
        "cf-rt-1",
        "cf-rt-client",
        Some("cf-rt-sub"),
        SessionStatus::Pending,
        1000,
        1300,
    );
    s.max_age = Some(3600);
    s.claims = Some(r#"{"userinfo":{"phone_number":null}}"#.to_string());
    s.context = Some("Pay 10 EUR".to_string());
    s.binding_message = Some("AB12".to_string());
    s.correlation_id = Some("corr-1".to_string());
    s.code_challenge = Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_string());
    assert_eq!(
        ok(store.get_session(&s.id).await, "get unknown session"),
        None
    );
    ok(store.create_session(&s, 1000).await, "create session");
    assert_eq!(
        ok(store.get_session(&s.id).await, "get session"),
        Some(s.clone())
    );

    let waiting = session(
        "cf-rt-2",
        "cf-rt-client",
        None,
        SessionStatus::AwaitingNumber,
        1000,
        1300,
    );
    ok(
        store.create_session(&waiting, 1000).await,
        "create awaiting-number session",
    );
    assert_eq!(
        ok(store.get_session(&waiting.id).await, "get awaiting session"),
        Some(waiting.clone())
    );
    assert!(
        store.create_session(&waiting, 1000).await.is_err(),
        "conformance: a duplicate session id must be rejected"
    );
}

/// At most one live pending session per subscriber; stale ones (`expires_at <= now`) do
/// not count.
pub async fn session_busy_rule(store: &dyn Store) {
    fixture(
        store,
        "cf-busy-client",
        &[
            ("cf-busy-sub", "+440000000500"),
            ("cf-busy-other", "+440000000501"),
        ],
    )
    .await;
    let c = "cf-busy-client";
    let first = session(
        "cf-busy-1",
        c,
        Some("cf-busy-sub"),
        SessionStatus::Pending,
        10_000,
        10_100,
    );
    ok(
        store.create_session(&first, 10_000).await,
        "first pending session",
    );

    let second = session(
        "cf-busy-2",
        c,
        Some("cf-busy-sub"),
        SessionStatus::Pending,
        10_050,
        10_150,
    );
    expect_err(
        store.create_session(&second, 10_050).await,
        "second live pending session",
        is_busy,
    );
    expect_err(
        store.create_session(&second, 10_099).await,
        "one second before expiry",
        is_busy,
    );
    assert_eq!(
        ok(
            store.get_session(&second.id).await,
            "busy session not stored"
        ),
        None
    );

    let other = session(
        "cf-busy-3",
        c,
        Some("cf-busy-other"),
        SessionStatus::Pending,
        10_050,
        10_150,
    );
    ok(
        store.create_session(&other, 10_050).await,
        "pending session of another subscriber",
    );

    let anonymous1 = session("cf-busy-4", c, None, SessionStatus::Pending, 10_050, 10_150);
    let anonymous2 = session("cf-busy-5", c, None, SessionStatus::Pending, 10_050, 10_150);
    ok(
        store.create_session(&anonymous1, 10_050).await,
        "pending session without subscriber",
    );
    ok(
        store.create_session(&anonymous2, 10_050).await,
        "second pending session without subscriber",
    );
    let waiting = session(
        "cf-busy-6",
        c,
        None,
        SessionStatus::AwaitingNumber,
        10_050,
        10_150,
    );
    ok(
        store.create_session(&waiting, 10_050).await,
        "awaiting-number session while busy",
    );

    // expires_at == now: the first session is stale.
    let third = session(
        "cf-busy-7",
        c,
        Some("cf-busy-sub"),
        SessionStatus::Pending,
        10_100,
        10_200,
    );
    ok(
        store.create_session(&third, 10_100).await,
        "pending session after the first expired",
    );
    assert_eq!(
        ok(store.get_session(&third.id).await, "get new session"),
        Some(third.clone())
    );
    let old = ok(store.get_session(&first.id).await, "get stale session");
    assert!(
        old.is_some(),
        "conformance: expiring a stale session must not delete it"
    );
    assert!(
        !ok(
            store
                .resolve_session(&first.id, &approved("2", &["pin"], 10_101), 10_101)
                .await,
            "resolve stale"
        ),
        "conformance: a stale session cannot be resolved"
    );

    let fourth = session(
        "cf-busy-8",
        c,
        Some("cf-busy-sub"),
        SessionStatus::Pending,
        10_150,
        10_250,
    );
    expect_err(
        store.create_session(&fourth, 10_150).await,
        "pending while the new one lives",
        is_busy,
    );

    // Answered sessions are not live transactions.
    assert!(ok(
        store
            .resolve_session(
                &third.id,
                &Resolution::Denied {
                    error: "user_denied".into()
                },
                10_150
            )
            .await,
        "deny live session"
    ));
    ok(
        store.create_session(&fourth, 10_150).await,
        "pending session after the previous was answered",
    );
}

/// `assign_subscriber` moves `AwaitingNumber` to `Pending` under the same busy rule.
pub async fn assign_subscriber_rule(store: &dyn Store) {
    let c = "cf-assign-client";
    fixture(
        store,
        c,
        &[
            ("cf-assign-sub", "+440000000600"),
            ("cf-assign-free", "+440000000601"),
        ],
    )
    .await;
    let live = session(
        "cf-assign-live",
        c,
        Some("cf-assign-sub"),
        SessionStatus::Pending,
        2000,
        2100,
    );
    ok(
        store.create_session(&live, 2000).await,
        "live pending session",
    );
    let waiting = session(
        "cf-assign-wait",
        c,
        None,
        SessionStatus::AwaitingNumber,
        2010,
        2300,
    );
    ok(
        store.create_session(&waiting, 2010).await,
        "awaiting-number session",
    );

    expect_err(
        store
            .assign_subscriber(&waiting.id, "cf-assign-sub", "3", 2050)
            .await,
        "assign to busy subscriber",
        is_busy,
    );
    assert_eq!(
        ok(
            store.get_session(&waiting.id).await,
            "session after busy assign"
        ),
        Some(waiting.clone()),
        "a Busy assign must leave the session untouched"
    );

    // expires_at == now: the live session became stale.
    ok(
        store
            .assign_subscriber(&waiting.id, "cf-assign-sub", "3", 2100)
            .await,
        "assign after expiry",
    );
    let got = ok(store.get_session(&waiting.id).await, "get assigned session");
    let want = AuthSession {
        subscriber_id: Some("cf-assign-sub".to_string()),
        status: SessionStatus::Pending,
        acr: Some("3".to_string()),
        ..waiting.clone()
    };
    assert_eq!(got, Some(want.clone()));
    assert_eq!(
        ok(
            store.pending_for_subscriber("cf-assign-sub", 2101).await,
            "pending after assign"
        ),
        vec![want],
        "the assigned session is the subscriber's live one"
    );

    expect_err(
        store
            .assign_subscriber(&waiting.id, "cf-assign-free", "3", 2101)
            .await,
        "assign a session that is not awaiting a number",
        is_not_found,
    );
    expect_err(
        store
            .assign_subscriber("cf-assign-none", "cf-assign-free", "3", 2101)
            .await,
        "assign an unknown session",
        is_not_found,
    );

    // The now-pending session makes the subscriber busy for creations too.
    let next = session(
        "cf-assign-next",
        c,
        Some("cf-assign-sub"),
        SessionStatus::Pending,
        2102,
        2400,
    );
    expect_err(
        store.create_session(&next, 2102).await,
        "create while assigned session lives",
        is_busy,
    );
    let waiting2 = session(
        "cf-assign-wait2",
        c,
        None,
        SessionStatus::AwaitingNumber,
        2102,
        2400,
    );
    ok(
        store.create_session(&waiting2, 2102).await,
        "second awaiting-number session",
    );
    ok(
        store
            .assign_subscriber(&waiting2.id, "cf-assign-free", "3", 2102)
            .await,
        "assign to a free subscriber",
    );
}

/// The first answer wins; expired or non-pending sessions cannot be answered.
pub async fn resolution(store: &dyn Store) {
    let c = "cf-resolve-client";
    fixture(
        store,
        c,
        &[
            ("cf-resolve-sub", "+440000000700"),
            ("cf-resolve-sub2", "+440000000701"),
        ],
    )
    .await;

    let s = session(
        "cf-resolve-1",
        c,
        Some("cf-resolve-sub"),
        SessionStatus::Pending,
        3000,
        3300,
    );
    ok(store.create_session(&s, 3000).await, "create session");
    assert!(ok(
        store
            .resolve_session(&s.id, &approved("3", &["pin", "app"], 3010), 3010)
            .await,
        "first answer"
    ));
    let want = AuthSession {
        status: SessionStatus::Approved,
        acr: Some("3".to_string()),
        amr: strings(&["pin", "app"]),
        auth_time: Some(3010),
        ..s.clone()
    };
    assert_eq!(
        approved("3", &["pin", "app"], 3010).applied_to(s.clone()),
        want,
        "what a waiter handed the answer derives is what the store holds"
    );
    assert_eq!(
        ok(store.get_session(&s.id).await, "get approved"),
        Some(want.clone())
    );
    assert!(
        !ok(
            store
                .resolve_session(
                    &s.id,
                    &Resolution::Denied {
                        error: "user_denied".into()
                    },
                    3011
                )
                .await,
            "second answer"
        ),
        "conformance: the first answer wins"
    );
    assert!(!ok(
        store
            .resolve_session(&s.id, &approved("2", &["sms"], 3012), 3012)
            .await,
        "third answer"
    ));
    assert_eq!(
        ok(store.get_session(&s.id).await, "get after late answers"),
        Some(want)
    );

    let d = session(
        "cf-resolve-2",
        c,
        Some("cf-resolve-sub"),
        SessionStatus::Pending,
        3020,
        3300,
    );
    ok(
        store.create_session(&d, 3020).await,
        "create second session",
    );
    assert!(ok(
        store
            .resolve_session(
                &d.id,
                &Resolution::Denied {
                    error: "user_denied".into()
                },
                3030
            )
            .await,
        "deny"
    ));
    let want = AuthSession {
        status: SessionStatus::Denied,
        error: Some("user_denied".to_string()),
        ..d.clone()
    };
    assert_eq!(denied("user_denied").applied_to(d.clone()), want);
    assert_eq!(
        ok(store.get_session(&d.id).await, "get denied"),
        Some(want.clone())
    );
    assert!(!ok(
        store
            .resolve_session(&d.id, &approved("2", &["pin"], 3031), 3031)
            .await,
        "approve denied"
    ));
    assert_eq!(
        ok(
            store.get_session(&d.id).await,
            "get denied after late approval"
        ),
        Some(want)
    );

    let e = session(
        "cf-resolve-3",
        c,
        Some("cf-resolve-sub2"),
        SessionStatus::Pending,
        3000,
        3100,
    );
    ok(store.create_session(&e, 3000).await, "create short session");
    assert!(
        !ok(
            store
                .resolve_session(&e.id, &approved("2", &["pin"], 3100), 3100)
                .await,
            "answer at expiry"
        ),
        "conformance: a session is expired when expires_at <= now"
    );
    assert_eq!(
        ok(store.get_session(&e.id).await, "get expired")
            .map(|s| s.status == SessionStatus::Approved),
        Some(false)
    );

    let w = session(
        "cf-resolve-4",
        c,
        None,
        SessionStatus::AwaitingNumber,
        3000,
        3300,
    );
    ok(
        store.create_session(&w, 3000).await,
        "create awaiting session",
    );
    assert!(
        !ok(
            store
                .resolve_session(&w.id, &approved("2", &["pin"], 3010), 3010)
                .await,
            "answer awaiting"
        ),
        "conformance: only pending sessions can be answered"
    );
}

/// Codes are issued once and redeemed once; later redemptions are replays.
pub async fn codes(store: &dyn Store) {
    let c = "cf-code-client";
    fixture(
        store,
        c,
        &[
            ("cf-code-sub", "+440000000800"),
            ("cf-code-sub2", "+440000000801"),
        ],
    )
    .await;

    let s = approved_session(store, "cf-code-1", c, "cf-code-sub", 4000).await;
    assert!(ok(
        store.issue_code(&s.id, "cf-code-hash-1", 4060).await,
        "issue code"
    ));
    assert!(
        !ok(
            store.issue_code(&s.id, "cf-code-hash-1b", 4060).await,
            "issue second code"
        ),
        "conformance: a code is issued once"
    );
    assert_eq!(
        ok(store.get_session(&s.id).await, "get after issue").map(|s| s.status),
        Some(SessionStatus::CodeIssued)
    );
    assert_eq!(
        ok(
            store.redeem_code("cf-code-hash-1b", 4010).await,
            "redeem the refused code"
        ),
        Redemption::Unknown
    );

    match ok(store.redeem_code("cf-code-hash-1", 4010).await, "redeem") {
        Redemption::Fresh(got) => {
            let want = AuthSession {
                status: SessionStatus::Consumed,
                ..s.clone()
            };
            assert_eq!(*got, want, "redeem_code returns the session, now consumed");
        }
        other => panic!("conformance: first redemption: got {other:?}"),
    }
    assert_eq!(
        ok(store.get_session(&s.id).await, "get after redeem").map(|s| s.status),
        Some(SessionStatus::Consumed)
    );
    assert_eq!(
        ok(
            store.redeem_code("cf-code-hash-1", 4011).await,
            "redeem again"
        ),
        Redemption::Replayed {
            session_id: s.id.clone()
        }
    );
    assert_eq!(
        ok(
            store.redeem_code("cf-code-hash-1", 9999).await,
            "replay after expiry"
        ),
        Redemption::Replayed {
            session_id: s.id.clone()
        },
        "a replay is a replay even after the code's expiry"
    );
    assert_eq!(
        ok(
            store.redeem_code("cf-code-unknown", 4011).await,
            "redeem unknown"
        ),
        Redemption::Unknown
    );

    // Expired code: code_expires_at <= now.
    let e = approved_session(store, "cf-code-2", c, "cf-code-sub", 5000).await;
    assert!(ok(
        store.issue_code(&e.id, "cf-code-hash-2", 5060).await,
        "issue short code"
    ));
    assert_eq!(
        ok(
            store.redeem_code("cf-code-hash-2", 5060).await,
            "redeem expired"
        ),
        Redemption::Unknown
    );
    assert_eq!(
        ok(store.get_session(&e.id).await, "get after expired redeem").map(|s| s.status),
        Some(SessionStatus::CodeIssued),
        "redeeming an expired code must not consume it"
    );

    // Only approved sessions get codes.
    let p = session(
        "cf-code-3",
        c,
        Some("cf-code-sub2"),
        SessionStatus::Pending,
        6000,
        6300,
    );
    ok(store.create_session(&p, 6000).await, "create pending");
    assert!(!ok(
        store.issue_code(&p.id, "cf-code-hash-3", 6060).await,
        "issue for pending"
    ));
    assert!(ok(
        store
            .resolve_session(
                &p.id,
                &Resolution::Denied {
                    error: "user_denied".into()
                },
                6001
            )
            .await,
        "deny"
    ));
    assert!(!ok(
        store.issue_code(&p.id, "cf-code-hash-3", 6060).await,
        "issue for denied"
    ));
    assert_eq!(
        ok(
            store.redeem_code("cf-code-hash-3", 6002).await,
            "redeem never issued"
        ),
        Redemption::Unknown
    );
}

/// `find_redeemable` reads what `redeem_code` would take without taking it;
/// `redeem_code_issuing` consumes the code and stores the tokens together, or neither.
pub async fn redemption_issuing_tokens(store: &dyn Store) {
    let c = "cf-ri-client";
    fixture(store, c, &[("cf-ri-sub", "+440000000820")]).await;
    let s = approved_session(store, "cf-ri-1", c, "cf-ri-sub", 9000).await;
    assert!(ok(
        store.issue_code(&s.id, "cf-ri-hash-1", 9060).await,
        "issue code"
    ));
    let found = ok(store.find_redeemable("cf-ri-hash-1", 9010).await, "find");
    assert_eq!(
        found.map(|f| (f.id, f.status)),
        Some((s.id.clone(), SessionStatus::CodeIssued)),
        "conformance: find_redeemable returns the session, not consumed"
    );
    for (hash, t, why) in [
        ("cf-ri-hash-1", 9060, "expired"),
        ("cf-ri-unknown", 9010, "unknown"),
    ] {
        assert!(
            ok(store.find_redeemable(hash, t).await, "find").is_none(),
            "conformance: find_redeemable of an {why} code"
        );
    }

    // Expired: nothing consumed, nothing stored.
    let late = token("cf-ri-at-late", Some(&s.id), c, 12_000);
    assert!(
        !ok(
            store.redeem_code_issuing(&s.id, 9060, &late, None).await,
            "redeem expired"
        ),
        "conformance: redeem_code_issuing of an expired code"
    );
    assert!(ok(store.find_access_token("cf-ri-at-late", 9061).await, "find").is_none());
    assert_eq!(
        ok(store.get_session(&s.id).await, "get").map(|s| s.status),
        Some(SessionStatus::CodeIssued)
    );

    let first = token("cf-ri-at-1", Some(&s.id), c, 12_000);
    assert!(ok(
        store.redeem_code_issuing(&s.id, 9010, &first, None).await,
        "redeem issuing"
    ));
    assert_eq!(
        ok(store.get_session(&s.id).await, "get").map(|s| s.status),
        Some(SessionStatus::Consumed)
    );
    assert_eq!(
        ok(store.find_access_token("cf-ri-at-1", 9011).await, "find"),
        Some(first),
        "conformance: the token stored with the redemption"
    );
    assert!(ok(store.find_redeemable("cf-ri-hash-1", 9011).await, "find").is_none());
    assert_eq!(
        ok(store.redeem_code("cf-ri-hash-1", 9011).await, "replay"),
        Redemption::Replayed {
            session_id: s.id.clone()
        },
        "conformance: a code redeemed with its tokens is replayed after"
    );
    let second = token("cf-ri-at-2", Some(&s.id), c, 12_000);
    assert!(
        !ok(
            store.redeem_code_issuing(&s.id, 9012, &second, None).await,
            "redeem issuing again"
        ),
        "conformance: a code is redeemed with tokens once"
    );
    assert!(ok(store.find_access_token("cf-ri-at-2", 9013).await, "find").is_none());

    // With a refresh token: both rows, in one family.
    let r = approved_session(store, "cf-ri-2", c, "cf-ri-sub", 9100).await;
    assert!(ok(
        store.issue_code(&r.id, "cf-ri-hash-2", 9160).await,
        "issue code"
    ));
    let refresh = RefreshTokenRecord {
        token_hash: "cf-ri-rt-2".into(),
        family_id: "cf-ri-family-2".into(),
        client_id: c.into(),
        session_id: Some(r.id.clone()),
        subscriber_id: Some("cf-ri-sub".into()),
        sub: Some("cf-ri-pcr".into()),
        scope: "openid offline_access".into(),
        issued_at: 9110,
        expires_at: 99_000,
    };
    let access = token("cf-ri-at-3", Some(&r.id), c, 12_000);
    assert!(ok(
        store
            .redeem_code_issuing(&r.id, 9110, &access, Some(&refresh))
            .await,
        "redeem issuing a pair"
    ));
    assert_eq!(
        ok(
            store.find_refresh_token("cf-ri-rt-2", 9111).await,
            "find refresh"
        ),
        Some(refresh),
        "conformance: the refresh token stored with the redemption"
    );
    assert_eq!(
        ok(store.find_access_token("cf-ri-at-3", 9111).await, "find").and_then(|t| t.family_id),
        Some("cf-ri-family-2".to_string()),
        "conformance: the access token joins the refresh token's family"
    );

    // A token that cannot be stored (its hash is taken) leaves the code redeemable.
    let q = approved_session(store, "cf-ri-3", c, "cf-ri-sub", 9200).await;
    assert!(ok(
        store.issue_code(&q.id, "cf-ri-hash-3", 9260).await,
        "issue code"
    ));
    let clash = token("cf-ri-at-1", Some(&q.id), c, 12_000);
    assert!(
        store
            .redeem_code_issuing(&q.id, 9210, &clash, None)
            .await
            .is_err(),
        "conformance: a token hash taken twice is an error"
    );
    assert_eq!(
        ok(store.get_session(&q.id).await, "get").map(|s| s.status),
        Some(SessionStatus::CodeIssued),
        "conformance: a failed token insert rolls the redemption back"
    );
}

/// A code reserved at creation: redeemable only once its session is approved, for its
/// lifetime from the approval, once; replaced by `issue_code`; never for a denied session.
pub async fn reserved_codes(store: &dyn Store) {
    let c = "cf-rc-client";
    fixture(store, c, &[("cf-rc-sub", "+440000000810")]).await;
    let reserve = |id: &str, hash: &str, t: i64| {
        let s = session(id, c, Some("cf-rc-sub"), SessionStatus::Pending, t, t + 300);
        let code = ReservedCode {
            hash: hash.into(),
            lifetime_secs: 60,
        };
        async move {
            ok(
                store.create_session_reserving(&s, Some(&code), t).await,
                "create with a reserved code",
            );
            s
        }
    };
    let status =
        |id: &'static str| async move { ok(store.get_session(id).await, "get").map(|s| s.status) };

    let s = reserve("cf-rc-1", "cf-rc-hash-1", 7000).await;
    assert_eq!(
        ok(
            store.redeem_code("cf-rc-hash-1", 7001).await,
            "redeem early"
        ),
        Redemption::Unknown,
        "conformance: a reserved code is not redeemable before the approval"
    );
    assert_eq!(status("cf-rc-1").await, Some(SessionStatus::Pending));
    assert!(ok(
        store
            .resolve_session(&s.id, &approved("2", &["app"], 7005), 7005)
            .await,
        "approve"
    ));
    match ok(store.redeem_code("cf-rc-hash-1", 7064).await, "redeem") {
        Redemption::Fresh(got) => {
            assert_eq!(got.id, s.id);
            assert_eq!(got.status, SessionStatus::Consumed);
            assert_eq!(got.auth_time, Some(7005));
        }
        other => panic!("conformance: redeeming a reserved code: got {other:?}"),
    }
    assert_eq!(
        ok(store.redeem_code("cf-rc-hash-1", 7065).await, "replay"),
        Redemption::Replayed {
            session_id: s.id.clone()
        }
    );

    // The lifetime runs from the approval.
    let e = reserve("cf-rc-2", "cf-rc-hash-2", 8000).await;
    assert!(ok(
        store
            .resolve_session(&e.id, &approved("2", &["app"], 8005), 8005)
            .await,
        "approve"
    ));
    assert_eq!(
        ok(
            store.redeem_code("cf-rc-hash-2", 8065).await,
            "redeem expired"
        ),
        Redemption::Unknown,
        "conformance: a reserved code expires lifetime_secs after the approval"
    );
    assert_eq!(status("cf-rc-2").await, Some(SessionStatus::Approved));

    // An issued code replaces the reserved one.
    assert!(ok(
        store.issue_code(&e.id, "cf-rc-hash-2b", 8100).await,
        "issue over a reserved code"
    ));
    assert_eq!(
        ok(
            store.redeem_code("cf-rc-hash-2", 8066).await,
            "redeem replaced"
        ),
        Redemption::Unknown
    );
    assert!(matches!(
        ok(
            store.redeem_code("cf-rc-hash-2b", 8066).await,
            "redeem issued"
        ),
        Redemption::Fresh(_)
    ));

    // A denied session's reserved code is never redeemable.
    let d = reserve("cf-rc-3", "cf-rc-hash-3", 9000).await;
    assert!(ok(
        store
            .resolve_session(&d.id, &denied("user_denied"), 9001)
            .await,
        "deny"
    ));
    assert_eq!(
        ok(
            store.redeem_code("cf-rc-hash-3", 9002).await,
            "redeem denied"
        ),
        Redemption::Unknown
    );
    assert_eq!(status("cf-rc-3").await, Some(SessionStatus::Denied));
}

/// Live pending sessions of one subscriber only.
pub async fn pending_for_subscriber(store: &dyn Store) {
    let c = "cf-pending-client";
    fixture(
        store,
        c,
        &[
            ("cf-pending-sub", "+440000000900"),
            ("cf-pending-other", "+440000000901"),
        ],
    )
    .await;
    assert_eq!(
        ok(
            store.pending_for_subscriber("cf-pending-sub", 7000).await,
            "none yet"
        ),
        Vec::new()
    );

    let s = session(
        "cf-pending-1",
        c,
        Some("cf-pending-sub"),
        SessionStatus::Pending,
        7000,
        7100,
    );
    let o = session(
        "cf-pending-2",
        c,
        Some("cf-pending-other"),
        SessionStatus::Pending,
        7000,
        7100,
    );
    ok(store.create_session(&s, 7000).await, "create");
    ok(store.create_session(&o, 7000).await, "create other");
    assert_eq!(
        ok(
            store.pending_for_subscriber("cf-pending-sub", 7050).await,
            "live"
        ),
        vec![s.clone()]
    );
    assert_eq!(
        ok(
            store.pending_for_subscriber("cf-pending-sub", 7100).await,
            "at expiry"
        ),
        Vec::new()
    );

    let s2 = session(
        "cf-pending-3",
        c,
        Some("cf-pending-sub"),
        SessionStatus::Pending,
        7100,
        7200,
    );
    ok(store.create_session(&s2, 7100).await, "create after expiry");
    assert_eq!(
        ok(
            store.pending_for_subscriber("cf-pending-sub", 7100).await,
            "after replacement"
        ),
        vec![s2.clone()],
        "only the live session is listed"
    );
    assert!(ok(
        store
            .resolve_session(&s2.id, &approved("2", &["pin"], 7101), 7101)
            .await,
        "approve"
    ));
    assert_eq!(
        ok(
            store.pending_for_subscriber("cf-pending-sub", 7102).await,
            "after answer"
        ),
        Vec::new()
    );
    assert_eq!(
        ok(
            store.pending_for_subscriber("cf-pending-other", 7050).await,
            "other"
        ),
        vec![o]
    );
}

// ---------------------------------------------------------------------------------------
// TokenStore

/// Tokens are found while unrevoked and unexpired; revocation goes by session.
pub async fn access_tokens(store: &dyn Store) {
    let c = "cf-token-client";
    fixture(
        store,
        c,
        &[
            ("cf-token-sub", "+440000001000"),
            ("cf-token-sub2", "+440000001001"),
        ],
    )
    .await;
    let s1 = approved_session(store, "cf-token-s1", c, "cf-token-sub", 8000).await;
    let s2 = approved_session(store, "cf-token-s2", c, "cf-token-sub2", 8000).await;

    let mut t1 = token("cf-token-1", Some(&s1.id), c, 9000);
    t1.subscriber_id = Some("cf-token-sub".to_string());
    t1.sub = Some("pcr-of-sub".to_string());
    t1.scope = "openid mc_identity_phonenumber".to_string();
    t1.claims = Some(r#"{"userinfo":{"email":null}}"#.to_string());
    let t2 = token("cf-token-2", Some(&s1.id), c, 9000);
    let t3 = token("cf-token-3", Some(&s2.id), c, 9000);
    let t4 = token("cf-token-4", None, c, 9000);
    for t in [&t1, &t2, &t3, &t4] {
        ok(store.insert_access_token(t).await, "insert token");
    }
    assert!(
        store.insert_access_token(&t2).await.is_err(),
        "conformance: a duplicate token hash must be rejected"
    );

    assert_eq!(
        ok(store.find_access_token(&t1.token_hash, 8999).await, "find"),
        Some(t1.clone())
    );
    assert_eq!(
        ok(
            store.find_access_token(&t4.token_hash, 8999).await,
            "find without session"
        ),
        Some(t4.clone())
    );
    assert_eq!(
        ok(
            store.find_access_token(&t1.token_hash, 9000).await,
            "find at expiry"
        ),
        None,
        "a token is expired when expires_at <= now"
    );
    assert_eq!(
        ok(
            store.find_access_token("cf-token-none", 8000).await,
            "find unknown"
        ),
        None
    );

    assert_eq!(
        ok(store.revoke_tokens_of_session(&s1.id).await, "revoke"),
        2
    );
    assert_eq!(
        ok(
            store.find_access_token(&t1.token_hash, 8500).await,
            "find revoked"
        ),
        None
    );
    assert_eq!(
        ok(
            store.find_access_token(&t2.token_hash, 8500).await,
            "find revoked"
        ),
        None
    );
    assert_eq!(
        ok(
            store.find_access_token(&t3.token_hash, 8500).await,
            "find other session's"
        ),
        Some(t3),
        "revocation is scoped to one session"
    );
    assert_eq!(
        ok(
            store.find_access_token(&t4.token_hash, 8500).await,
            "find sessionless"
        ),
        Some(t4)
    );
    assert_eq!(
        ok(
            store.revoke_tokens_of_session("cf-token-nosession").await,
            "revoke unknown session"
        ),
        0
    );
}

// ---------------------------------------------------------------------------------------
// concurrency

/// [`RACERS`] concurrent `create_session` for one subscriber: exactly one succeeds, the
/// others are `Busy`.
pub async fn concurrent_session_creation(store: &dyn Store) {
    let c = "cf-race-client";
    fixture(store, c, &[("cf-race-sub", "+440000001100")]).await;
    let sessions: Vec<AuthSession> = (0..RACERS)
        .map(|i| {
            session(
                &format!("cf-race-{i}"),
                c,
                Some("cf-race-sub"),
                SessionStatus::Pending,
                20_000,
                20_300,
            )
        })
        .collect();
    let results = join_all(
        sessions
            .iter()
            .map(|s| store.create_session(s, 20_000))
            .collect(),
    )
    .await;

    let mut winners = Vec::new();
    for (s, r) in sessions.iter().zip(results) {
        match r {
            Ok(()) => winners.push(s.id.clone()),
            Err(StoreError::Busy) => {}
            Err(e) => panic!("conformance: concurrent create_session: unexpected error {e:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "conformance: exactly one concurrent creation wins: {winners:?}"
    );
    let live: Vec<String> = ok(
        store.pending_for_subscriber("cf-race-sub", 20_001).await,
        "pending after race",
    )
    .into_iter()
    .map(|s| s.id)
    .collect();
    assert_eq!(
        live, winners,
        "the winner is the subscriber's one live session"
    );
}

/// [`RACERS`] concurrent redemptions of one code: exactly one `Fresh`, the others
/// `Replayed`.
pub async fn concurrent_redemption(store: &dyn Store) {
    let c = "cf-redeem-client";
    fixture(store, c, &[("cf-redeem-sub", "+440000001200")]).await;
    let s = approved_session(store, "cf-redeem-1", c, "cf-redeem-sub", 30_000).await;
    assert!(ok(
        store.issue_code(&s.id, "cf-redeem-hash", 30_060).await,
        "issue code"
    ));

    let results = join_all(
        (0..RACERS)
            .map(|_| store.redeem_code("cf-redeem-hash", 30_010))
            .collect(),
    )
    .await;
    let mut fresh = 0;
    for r in results {
        match ok(r, "concurrent redeem_code") {
            Redemption::Fresh(got) => {
                fresh += 1;
                assert_eq!(got.id, s.id);
                assert_eq!(got.status, SessionStatus::Consumed);
            }
            Redemption::Replayed { session_id } => assert_eq!(session_id, s.id),
            Redemption::Unknown => panic!("conformance: concurrent redeem_code answered Unknown"),
        }
    }
    assert_eq!(
        fresh, 1,
        "conformance: exactly one concurrent redemption is Fresh"
    );
}

/// [`RACERS`] concurrent `redeem_code_issuing` of one code, each with its own token:
/// exactly one redeems, and only its token is stored.
pub async fn concurrent_redemption_issuing(store: &dyn Store) {
    let c = "cf-redeem-issuing-client";
    fixture(store, c, &[("cf-redeem-issuing-sub", "+440000001201")]).await;
    let s = approved_session(store, "cf-ri-race", c, "cf-redeem-issuing-sub", 31_000).await;
    assert!(ok(
        store.issue_code(&s.id, "cf-ri-race-hash", 31_060).await,
        "issue code"
    ));
    let tokens: Vec<_> = (0..RACERS)
        .map(|i| token(&format!("cf-ri-race-at-{i}"), Some(&s.id), c, 40_000))
        .collect();
    let results = join_all(
        tokens
            .iter()
            .map(|t| store.redeem_code_issuing(&s.id, 31_010, t, None))
            .collect(),
    )
    .await;
    let won: Vec<usize> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| ok(r, "concurrent redeem_code_issuing").then_some(i))
        .collect();
    assert_eq!(
        won.len(),
        1,
        "conformance: exactly one concurrent redemption issues"
    );
    for (i, t) in tokens.iter().enumerate() {
        let stored = ok(store.find_access_token(&t.token_hash, 31_011).await, "find");
        assert_eq!(
            stored.is_some(),
            i == won[0],
            "conformance: only the winner's token is stored"
        );
    }
}

/// [`RACERS`] concurrent first uses of `pcr_for` all get the same PCR.
pub async fn concurrent_pcr_creation(store: &dyn Store) {
    fixture(
        store,
        "cf-pcrrace-client",
        &[("cf-pcrrace-sub", "+440000001300")],
    )
    .await;
    let fresh: Vec<String> = (0..RACERS).map(|i| format!("cf-pcrrace-{i}")).collect();
    let results = join_all(
        fresh
            .iter()
            .map(|f| store.pcr_for("cf-pcrrace-sub", "race.example", f))
            .collect(),
    )
    .await;
    let got: Vec<String> = results
        .into_iter()
        .map(|r| ok(r, "concurrent pcr_for"))
        .collect();
    assert!(
        fresh.contains(&got[0]),
        "conformance: the PCR is one of the fresh values"
    );
    assert!(
        got.iter().all(|p| *p == got[0]),
        "conformance: concurrent pcr_for disagree: {got:?}"
    );
    assert_eq!(
        ok(
            store.subscriber_for_pcr("race.example", &got[0]).await,
            "lookup raced PCR"
        ),
        Some("cf-pcrrace-sub".to_string())
    );
}

// ---------------------------------------------------------------------------------------
// ClientRecord metadata

/// The client metadata document survives insert, get, list and update whole.
pub async fn client_metadata(store: &dyn Store) {
    let mut c = client("cf-meta-1");
    c.grant_types = strings(&["authorization_code", "urn:openid:params:grant-type:ciba"]);
    c.metadata = ClientMetadata {
        token_endpoint_auth_method: Some("private_key_jwt".to_string()),
        jwks_uri: None,
        jwks: Some(serde_json::json!({
            "keys": [{
                "kty": "EC",
                "crv": "P-256",
                "kid": "cf-meta-key",
                "use": "sig",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
            }]
        })),
        backchannel_token_delivery_mode: Some("ping".to_string()),
        backchannel_client_notification_endpoint: Some(
            "https://sp.example/ciba/notify".to_string(),
        ),
        backchannel_authentication_request_signing_alg: Some("ES256".to_string()),
        backchannel_user_code_parameter: true,
        notification_uris: strings(&["https://sp.example/si/1", "https://sp.example/si/2"]),
        request_object_signing_alg: Some("RS256".to_string()),
        userinfo_signed_response_alg: Some("RS256".to_string()),
        grant_types: strings(&["client_credentials"]),
        quota_per_second: Some(20),
        quota_per_day: Some(0),
        authenticator_chains: [("2".to_string(), strings(&["sim_applet", "app_push"]))].into(),
    };
    ok(store.insert_client(&c).await, "insert client with metadata");
    assert_eq!(
        ok(
            store.get_client(&c.client_id).await,
            "get client with metadata"
        ),
        Some(c.clone())
    );
    let listed = ok(store.list_clients().await, "list clients with metadata");
    assert!(
        listed.contains(&c),
        "conformance: list_clients returns the metadata too"
    );

    let changed = ClientRecord {
        metadata: ClientMetadata {
            token_endpoint_auth_method: Some("private_key_jwt".to_string()),
            jwks_uri: Some("https://sp.example/jwks.json".to_string()),
            backchannel_token_delivery_mode: Some("push".to_string()),
            backchannel_client_notification_endpoint: Some(
                "https://sp.example/ciba/push".to_string(),
            ),
            ..ClientMetadata::default()
        },
        ..c.clone()
    };
    ok(
        store.update_client(&changed).await,
        "update client metadata",
    );
    assert_eq!(
        ok(store.get_client(&c.client_id).await, "get updated metadata"),
        Some(changed.clone()),
        "update_client replaces the metadata"
    );
    let cleared = ClientRecord {
        metadata: ClientMetadata::default(),
        ..changed
    };
    ok(store.update_client(&cleared).await, "clear client metadata");
    assert_eq!(
        ok(store.get_client(&c.client_id).await, "get cleared metadata"),
        Some(cleared)
    );
}

// ---------------------------------------------------------------------------------------
// BackchannelStore

/// A back-channel request is stored whole: its session (which the phone finds like any
/// other) and its back-channel row.
pub async fn backchannel_roundtrip(store: &dyn Store) {
    let c = "cf-bcrt-client";
    fixture(
        store,
        c,
        &[
            ("cf-bcrt-sub", "+440000002000"),
            ("cf-bcrt-sub2", "+440000002001"),
        ],
    )
    .await;
    let (mut s, b) = bc_request(
        "cf-bcrt-1",
        c,
        "cf-bcrt-sub",
        DeliveryMode::Ping,
        100_000,
        100_120,
    );
    s.acr_values = "3".to_string();
    s.claims = Some(r#"{"id_token":{"phone_number":null}}"#.to_string());
    s.context = Some("Pay 10 EUR".to_string());
    s.correlation_id = Some("corr-bc-1".to_string());
    assert_eq!(
        ok(store.get_backchannel(&s.id).await, "get unknown request"),
        None
    );
    ok(
        store.create_backchannel(&s, &b, 100_000).await,
        "create back-channel request",
    );
    assert_eq!(
        ok(
            store.get_backchannel(&s.id).await,
            "get back-channel request"
        ),
        Some((s.clone(), b.clone()))
    );
    assert_eq!(
        ok(store.get_session(&s.id).await, "get its session"),
        Some(s.clone()),
        "a back-channel request is a session too"
    );
    assert_eq!(
        ok(
            store.pending_for_subscriber("cf-bcrt-sub", 100_001).await,
            "the phone's pending list"
        ),
        vec![s.clone()],
        "the phone finds a back-channel request like a front-channel one"
    );

    // Mobile Connect SI, pushed, with every optional field the other way round.
    let (s2, mut b2) = bc_request(
        "cf-bcrt-2",
        c,
        "cf-bcrt-sub2",
        DeliveryMode::Push,
        100_000,
        100_300,
    );
    b2.kind = BackchannelKind::Si;
    b2.notification_token = None;
    b2.interval = 0;
    b2.last_poll_at = Some(99_990);
    ok(
        store.create_backchannel(&s2, &b2, 100_000).await,
        "create SI request",
    );
    assert_eq!(
        ok(store.get_backchannel(&s2.id).await, "get SI request"),
        Some((s2.clone(), b2.clone()))
    );
    assert!(
        store.create_backchannel(&s2, &b2, 100_000).await.is_err(),
        "conformance: a duplicate auth_req_id must be rejected"
    );
    assert_eq!(
        ok(store.get_backchannel(&s2.id).await, "get after duplicate"),
        Some((s2, b2))
    );

    let front = session(
        "cf-bcrt-front",
        c,
        None,
        SessionStatus::AwaitingNumber,
        100_000,
        100_300,
    );
    ok(
        store.create_session(&front, 100_000).await,
        "front-channel session",
    );
    assert_eq!(
        ok(
            store.get_backchannel(&front.id).await,
            "get_backchannel of a front-channel session"
        ),
        None
    );
}

/// One live transaction per subscriber whatever the channel: a back-channel request is
/// `Busy` against a live front-channel session and against another request, and the other
/// way round; stale ones do not count.
pub async fn backchannel_busy_rule(store: &dyn Store) {
    let c = "cf-bcbusy-client";
    let sub = "cf-bcbusy-sub";
    fixture(store, c, &[(sub, "+440000002100")]).await;
    let front = session(
        "cf-bcbusy-front",
        c,
        Some(sub),
        SessionStatus::Pending,
        110_000,
        110_100,
    );
    ok(
        store.create_session(&front, 110_000).await,
        "live front-channel session",
    );

    let (bc, b) = bc_request(
        "cf-bcbusy-bc1",
        c,
        sub,
        DeliveryMode::Poll,
        110_050,
        110_200,
    );
    expect_err(
        store.create_backchannel(&bc, &b, 110_050).await,
        "back-channel request while a front-channel session lives",
        is_busy,
    );
    assert_eq!(
        ok(
            store.get_backchannel(&bc.id).await,
            "busy request not stored"
        ),
        None
    );
    assert_eq!(
        ok(
            store.get_session(&bc.id).await,
            "busy request's session not stored"
        ),
        None
    );

    // expires_at == now: the front-channel session is stale.
    ok(
        store.create_backchannel(&bc, &b, 110_100).await,
        "back-channel request after the front-channel session expired",
    );

    let front2 = session(
        "cf-bcbusy-front2",
        c,
        Some(sub),
        SessionStatus::Pending,
        110_150,
        110_300,
    );
    expect_err(
        store.create_session(&front2, 110_150).await,
        "front-channel session while a back-channel request lives",
        is_busy,
    );
    let waiting = session(
        "cf-bcbusy-wait",
        c,
        None,
        SessionStatus::AwaitingNumber,
        110_150,
        110_400,
    );
    ok(
        store.create_session(&waiting, 110_150).await,
        "awaiting-number session",
    );
    expect_err(
        store
            .assign_subscriber(&waiting.id, sub, "2", 110_150)
            .await,
        "assign while a back-channel request lives",
        is_busy,
    );
    let (bc2, b2) = bc_request(
        "cf-bcbusy-bc2",
        c,
        sub,
        DeliveryMode::Poll,
        110_150,
        110_300,
    );
    expect_err(
        store.create_backchannel(&bc2, &b2, 110_150).await,
        "second live back-channel request",
        is_busy,
    );

    // Answered, the request no longer holds the subscriber.
    assert!(ok(
        store
            .resolve_session(&bc.id, &denied("user_denied"), 110_160)
            .await,
        "deny the request"
    ));
    ok(
        store.create_backchannel(&bc2, &b2, 110_160).await,
        "back-channel request after the previous was answered",
    );

    // A request made stale by the subscriber's next transaction reads as expired.
    ok(
        store
            .assign_subscriber(&waiting.id, sub, "2", 110_300)
            .await,
        "assign after the request expired",
    );
    assert_eq!(
        ok(
            store.poll_backchannel(&bc2.id, c, 110_301).await,
            "poll the request made stale"
        ),
        PollOutcome::Expired
    );
}

/// Polls: `Unknown` for another client, `SlowDown` sooner than the interval (which grows
/// by 5 s, without resetting the clock), otherwise the stored state; an approved request
/// is handed out once.
pub async fn backchannel_poll(store: &dyn Store) {
    let c = "cf-poll-client";
    let other = "cf-poll-other";
    fixture(
        store,
        c,
        &[
            ("cf-poll-sub1", "+440000002200"),
            ("cf-poll-sub2", "+440000002201"),
            ("cf-poll-sub3", "+440000002202"),
            ("cf-poll-sub4", "+440000002203"),
        ],
    )
    .await;
    fixture(store, other, &[]).await;

    let (s, b) = bc_request(
        "cf-poll-1",
        c,
        "cf-poll-sub1",
        DeliveryMode::Poll,
        120_000,
        120_300,
    );
    ok(store.create_backchannel(&s, &b, 120_000).await, "create");
    let poll = |id: &'static str, client: &'static str, now: i64| async move {
        ok(store.poll_backchannel(id, client, now).await, "poll")
    };
    let interval_and_last = || async {
        ok(
            store.get_backchannel("cf-poll-1").await,
            "get polled request",
        )
        .map(|(_, b)| (b.interval, b.last_poll_at))
    };

    assert_eq!(poll("cf-poll-none", c, 120_000).await, PollOutcome::Unknown);
    assert_eq!(
        poll("cf-poll-1", other, 120_000).await,
        PollOutcome::Unknown,
        "a request of another client is Unknown"
    );
    assert_eq!(poll("cf-poll-1", c, 120_000).await, PollOutcome::Pending);
    assert_eq!(interval_and_last().await, Some((5, Some(120_000))));

    assert_eq!(
        poll("cf-poll-1", c, 120_004).await,
        PollOutcome::SlowDown,
        "a poll sooner than the interval"
    );
    assert_eq!(
        interval_and_last().await,
        Some((10, Some(120_000))),
        "slow_down grows the interval by 5 s and does not record the poll"
    );
    assert_eq!(
        poll("cf-poll-1", c, 120_009).await,
        PollOutcome::SlowDown,
        "the grown interval counts from the last answered poll"
    );
    assert_eq!(interval_and_last().await, Some((15, Some(120_000))));
    assert_eq!(
        poll("cf-poll-1", c, 120_015).await,
        PollOutcome::Pending,
        "a poll exactly one interval later"
    );
    assert_eq!(interval_and_last().await, Some((15, Some(120_015))));
    assert_eq!(
        poll("cf-poll-1", other, 120_016).await,
        PollOutcome::Unknown
    );
    assert_eq!(
        interval_and_last().await,
        Some((15, Some(120_015))),
        "another client's poll changes nothing"
    );

    assert!(ok(
        store
            .resolve_session(&s.id, &approved("2", &["pin", "app"], 120_020), 120_020)
            .await,
        "approve"
    ));
    assert_eq!(
        poll("cf-poll-1", c, 120_029).await,
        PollOutcome::SlowDown,
        "an approved request is slowed down too"
    );
    assert_eq!(
        ok(store.get_session(&s.id).await, "get after slow_down").map(|s| s.status),
        Some(SessionStatus::Approved),
        "slow_down does not hand out the request"
    );
    let want = AuthSession {
        status: SessionStatus::Consumed,
        acr: Some("2".to_string()),
        amr: strings(&["pin", "app"]),
        auth_time: Some(120_020),
        ..s.clone()
    };
    assert_eq!(
        poll("cf-poll-1", c, 120_035).await,
        PollOutcome::Approved(Box::new(want.clone())),
        "the approved request, now consumed"
    );
    assert_eq!(
        ok(store.get_session(&s.id).await, "get after approval poll"),
        Some(want)
    );
    assert_eq!(
        poll("cf-poll-1", c, 120_100).await,
        PollOutcome::Consumed,
        "an approved request is handed out once"
    );

    // Denied.
    let (d, bd) = bc_request(
        "cf-poll-2",
        c,
        "cf-poll-sub2",
        DeliveryMode::Ping,
        120_000,
        120_300,
    );
    ok(store.create_backchannel(&d, &bd, 120_000).await, "create");
    assert!(ok(
        store
            .resolve_session(&d.id, &denied("user_denied"), 120_010)
            .await,
        "deny"
    ));
    assert_eq!(
        poll("cf-poll-2", c, 120_011).await,
        PollOutcome::Denied {
            error: "user_denied".to_string()
        }
    );

    // Pending past expires_at.
    let (e, be) = bc_request(
        "cf-poll-3",
        c,
        "cf-poll-sub3",
        DeliveryMode::Poll,
        120_000,
        120_060,
    );
    ok(store.create_backchannel(&e, &be, 120_000).await, "create");
    assert_eq!(poll("cf-poll-3", c, 120_059).await, PollOutcome::Pending);
    assert_eq!(
        poll("cf-poll-3", c, 120_064).await,
        PollOutcome::Expired,
        "a pending request is expired when expires_at <= now"
    );
    assert!(
        !ok(
            store
                .resolve_session(&e.id, &approved("2", &["pin"], 120_065), 120_065)
                .await,
            "approve expired"
        ),
        "conformance: an expired request cannot be answered"
    );

    // A code issued for an approved request: its tokens are out.
    let (k, bk) = bc_request(
        "cf-poll-4",
        c,
        "cf-poll-sub4",
        DeliveryMode::Poll,
        120_000,
        120_300,
    );
    ok(store.create_backchannel(&k, &bk, 120_000).await, "create");
    assert!(ok(
        store
            .resolve_session(&k.id, &approved("2", &["pin"], 120_010), 120_010)
            .await,
        "approve"
    ));
    assert!(ok(
        store.issue_code(&k.id, "cf-poll-code", 120_070).await,
        "issue code"
    ));
    assert_eq!(poll("cf-poll-4", c, 120_011).await, PollOutcome::Consumed);

    // A push-mode request is not polled: its tokens go out by notification only, and the
    // poll records nothing (no interval, no hand-over).
    ok(
        store
            .insert_subscriber(&subscriber("cf-poll-sub5", "+440000002204"))
            .await,
        "subscriber",
    );
    let (p, bp) = bc_request(
        "cf-poll-5",
        c,
        "cf-poll-sub5",
        DeliveryMode::Push,
        120_000,
        120_300,
    );
    ok(store.create_backchannel(&p, &bp, 120_000).await, "create");
    assert_eq!(
        poll("cf-poll-5", other, 120_001).await,
        PollOutcome::Unknown
    );
    assert_eq!(poll("cf-poll-5", c, 120_001).await, PollOutcome::PushMode);
    assert!(ok(
        store
            .resolve_session(&p.id, &approved("2", &["pin"], 120_002), 120_002)
            .await,
        "approve"
    ));
    assert_eq!(poll("cf-poll-5", c, 120_003).await, PollOutcome::PushMode);
    assert_eq!(
        ok(store.get_backchannel("cf-poll-5").await, "get")
            .map(|(s, b)| (s.status, b.last_poll_at)),
        Some((SessionStatus::Approved, None)),
        "conformance: polling a push-mode request changes nothing"
    );
    assert!(
        ok(store.consume_backchannel("cf-poll-5").await, "consume").is_some(),
        "the notification still hands it over"
    );
}

/// `consume_backchannel` hands an approved request out once, and nothing else.
pub async fn backchannel_consume(store: &dyn Store) {
    let c = "cf-consume-client";
    fixture(
        store,
        c,
        &[
            ("cf-consume-sub", "+440000002300"),
            ("cf-consume-sub2", "+440000002301"),
        ],
    )
    .await;
    let (s, mut b) = bc_request(
        "cf-consume-1",
        c,
        "cf-consume-sub",
        DeliveryMode::Push,
        130_000,
        130_300,
    );
    b.kind = BackchannelKind::Si;
    ok(store.create_backchannel(&s, &b, 130_000).await, "create");
    assert_eq!(
        ok(store.consume_backchannel(&s.id).await, "consume pending"),
        None
    );
    assert!(ok(
        store
            .resolve_session(&s.id, &approved("3", &["pin"], 130_010), 130_010)
            .await,
        "approve"
    ));
    let want = AuthSession {
        status: SessionStatus::Consumed,
        acr: Some("3".to_string()),
        amr: strings(&["pin"]),
        auth_time: Some(130_010),
        ..s.clone()
    };
    assert_eq!(
        ok(store.consume_backchannel(&s.id).await, "consume approved"),
        Some(want.clone())
    );
    assert_eq!(
        ok(store.get_session(&s.id).await, "get consumed"),
        Some(want)
    );
    assert_eq!(
        ok(store.consume_backchannel(&s.id).await, "consume again"),
        None,
        "conformance: an approved request is consumed once"
    );
    // A push-mode request is never polled, consumed or not (CIBA Core §10.3).
    assert_eq!(
        ok(
            store.poll_backchannel(&s.id, c, 130_020).await,
            "poll consumed"
        ),
        PollOutcome::PushMode
    );

    let (d, bd) = bc_request(
        "cf-consume-2",
        c,
        "cf-consume-sub2",
        DeliveryMode::Push,
        130_000,
        130_300,
    );
    ok(store.create_backchannel(&d, &bd, 130_000).await, "create");
    assert!(ok(
        store
            .resolve_session(&d.id, &denied("user_denied"), 130_010)
            .await,
        "deny"
    ));
    assert_eq!(
        ok(store.consume_backchannel(&d.id).await, "consume denied"),
        None
    );
    assert_eq!(
        ok(
            store.consume_backchannel("cf-consume-none").await,
            "consume unknown"
        ),
        None
    );
}

/// Answering a back-channel request whose client is notified (ping, push, SI) enqueues
/// exactly one outbox item with the answer; a polling client or a front-channel session
/// gets none.
pub async fn backchannel_notifications(store: &dyn Store) {
    let c = "cf-notify-client";
    fixture(
        store,
        c,
        &[
            ("cf-notify-sub1", "+440000002400"),
            ("cf-notify-sub2", "+440000002401"),
            ("cf-notify-sub3", "+440000002402"),
            ("cf-notify-sub4", "+440000002403"),
        ],
    )
    .await;
    let (push, mut b_push) = bc_request(
        "cf-notify-push",
        c,
        "cf-notify-sub1",
        DeliveryMode::Push,
        140_000,
        140_300,
    );
    b_push.kind = BackchannelKind::Si;
    let (ping, b_ping) = bc_request(
        "cf-notify-ping",
        c,
        "cf-notify-sub2",
        DeliveryMode::Ping,
        140_000,
        140_300,
    );
    let (poll, b_poll) = bc_request(
        "cf-notify-poll",
        c,
        "cf-notify-sub3",
        DeliveryMode::Poll,
        140_000,
        140_300,
    );
    for (s, b) in [(&push, &b_push), (&ping, &b_ping), (&poll, &b_poll)] {
        ok(store.create_backchannel(s, b, 140_000).await, "create");
    }
    let front = session(
        "cf-notify-front",
        c,
        Some("cf-notify-sub4"),
        SessionStatus::Pending,
        140_000,
        140_300,
    );
    ok(store.create_session(&front, 140_000).await, "create front");

    assert_eq!(
        ok(
            store
                .answer_session(&push.id, &denied("user_denied"), 140_010)
                .await,
            "deny push"
        ),
        Answered::BackChannel,
        "conformance: a back-channel answer says its notification is queued"
    );
    assert_eq!(
        ok(
            store
                .answer_session(&push.id, &approved("2", &["pin"], 140_011), 140_011)
                .await,
            "late answer"
        ),
        Answered::NotPending,
        "conformance: the first answer wins"
    );
    for (id, want) in [
        (&ping.id, Answered::BackChannel),
        (&poll.id, Answered::BackChannel),
        (&front.id, Answered::FrontChannel),
    ] {
        assert_eq!(
            ok(
                store
                    .answer_session(id, &approved("2", &["pin"], 140_010), 140_010)
                    .await,
                "approve"
            ),
            want,
            "conformance: what an answer queued ({id})"
        );
    }

    let items = outbox_items_of(
        store,
        &[&push.id, &ping.id, &poll.id, &front.id].map(String::as_str),
        140_020,
    )
    .await;
    let mut about: Vec<&str> = items.iter().map(|i| i.session_id.as_str()).collect();
    about.sort_unstable();
    assert_eq!(
        about,
        vec!["cf-notify-ping", "cf-notify-push"],
        "conformance: one outbox item per answered notified request, none for poll or \
         front-channel"
    );
    for item in &items {
        assert_eq!(
            (item.attempts, item.payload.as_deref(), item.created_at),
            (0, None, 140_010),
            "a new outbox item: no attempt, no payload, created with the answer"
        );
        ok(store.complete_outbox(item.id).await, "complete");
    }
}

/// `expire_backchannel` ends the pending back-channel requests whose time is up (and only
/// those), notifying the clients that are notified; `pending_backchannel_count` counts the
/// live ones. A request made stale by its subscriber's next transaction is notified too.
pub async fn backchannel_expiry(store: &dyn Store) {
    let c = "cf-bcexp-client";
    fixture(
        store,
        c,
        &[
            ("cf-bcexp-sub1", "+440000002500"),
            ("cf-bcexp-sub2", "+440000002501"),
            ("cf-bcexp-sub3", "+440000002502"),
            ("cf-bcexp-sub4", "+440000002503"),
            ("cf-bcexp-sub5", "+440000002504"),
        ],
    )
    .await;
    let count = |now: i64| async move {
        ok(
            store.pending_backchannel_count(now).await,
            "pending_backchannel_count",
        )
    };
    let (base50, base100, base150) = (
        count(150_050).await,
        count(150_100).await,
        count(150_150).await,
    );

    let (mut push, mut b_push) = bc_request(
        "cf-bcexp-push",
        c,
        "cf-bcexp-sub1",
        DeliveryMode::Push,
        150_000,
        150_100,
    );
    b_push.kind = BackchannelKind::Si;
    let (mut poll, b_poll) = bc_request(
        "cf-bcexp-poll",
        c,
        "cf-bcexp-sub2",
        DeliveryMode::Poll,
        150_000,
        150_100,
    );
    let (live, b_live) = bc_request(
        "cf-bcexp-live",
        c,
        "cf-bcexp-sub3",
        DeliveryMode::Ping,
        150_000,
        150_200,
    );
    let (replaced, b_replaced) = bc_request(
        "cf-bcexp-replaced",
        c,
        "cf-bcexp-sub5",
        DeliveryMode::Ping,
        150_000,
        150_100,
    );
    for (s, b) in [
        (&push, &b_push),
        (&poll, &b_poll),
        (&live, &b_live),
        (&replaced, &b_replaced),
    ] {
        ok(store.create_backchannel(s, b, 150_000).await, "create");
    }
    let front = session(
        "cf-bcexp-front",
        c,
        Some("cf-bcexp-sub4"),
        SessionStatus::Pending,
        150_000,
        150_100,
    );
    ok(store.create_session(&front, 150_000).await, "create front");

    assert_eq!(
        count(150_050).await,
        base50 + 4,
        "conformance: pending_backchannel_count counts live back-channel requests only"
    );
    assert_eq!(
        count(150_100).await,
        base100 + 1,
        "a request is expired when expires_at <= now"
    );

    // The subscriber's next transaction replaces the stale request.
    let next = session(
        "cf-bcexp-next",
        c,
        Some("cf-bcexp-sub5"),
        SessionStatus::Pending,
        150_150,
        150_400,
    );
    ok(
        store.create_session(&next, 150_150).await,
        "front-channel session replacing a stale request",
    );

    let mut ended = Vec::new();
    for round in 0.. {
        let got = ok(store.expire_backchannel(150_150, 1).await, "expire");
        assert!(
            got.len() <= 1,
            "conformance: expire_backchannel obeys its limit"
        );
        if got.is_empty() {
            break;
        }
        assert!(
            round < 10_000 && !ended.contains(&got[0]),
            "conformance: expire_backchannel ends each request once"
        );
        ended.extend(got);
    }
    let mut mine: Vec<&str> = ended
        .iter()
        .map(String::as_str)
        .filter(|id| id.starts_with("cf-bcexp-"))
        .collect();
    mine.sort_unstable();
    assert_eq!(
        mine,
        vec!["cf-bcexp-poll", "cf-bcexp-push"],
        "conformance: expire_backchannel ends the pending requests whose time is up"
    );
    assert!(
        !ok(store.expire_backchannel(150_150, 100).await, "expire again")
            .iter()
            .any(|id| id.starts_with("cf-bcexp-")),
        "conformance: a request is expired once"
    );

    for s in [&mut push, &mut poll] {
        s.status = SessionStatus::Denied;
        s.error = Some(STALE_SESSION_ERROR.to_string());
        assert_eq!(
            ok(store.get_session(&s.id).await, "get expired request").as_ref(),
            Some(&*s),
            "an expired request is denied with STALE_SESSION_ERROR"
        );
        // Only a polled request is polled (a push-mode one answers PushMode in any state).
        let polled = if s.id == "cf-bcexp-poll" {
            PollOutcome::Expired
        } else {
            PollOutcome::PushMode
        };
        assert_eq!(
            ok(
                store.poll_backchannel(&s.id, c, 150_151).await,
                "poll expired"
            ),
            polled
        );
    }
    assert!(
        !ok(
            store
                .resolve_session(&push.id, &approved("2", &["pin"], 150_152), 150_152)
                .await,
            "answer expired"
        ),
        "conformance: an expired request cannot be answered"
    );
    assert_eq!(
        ok(store.get_session(&live.id).await, "get live request").map(|s| s.status),
        Some(SessionStatus::Pending),
        "a live request is left alone"
    );
    assert_eq!(
        ok(store.get_session(&front.id).await, "get front session").map(|s| s.status),
        Some(SessionStatus::Pending),
        "expire_backchannel leaves front-channel sessions alone"
    );
    assert_eq!(
        count(150_150).await,
        base150 + 1,
        "the live request still counts"
    );

    let items = outbox_items_of(
        store,
        &[&push.id, &poll.id, &live.id, &replaced.id, &front.id].map(String::as_str),
        150_160,
    )
    .await;
    let mut about: Vec<(&str, i64)> = items
        .iter()
        .map(|i| (i.session_id.as_str(), i.created_at))
        .collect();
    about.sort_unstable();
    assert_eq!(
        about,
        vec![("cf-bcexp-push", 150_150), ("cf-bcexp-replaced", 150_150)],
        "conformance: each expired notified request gets one outbox item"
    );
    for item in &items {
        ok(store.complete_outbox(item.id).await, "complete");
    }
}

/// A client assertion's `jti` is accepted once per client while it lives.
pub async fn jti_replay(store: &dyn Store) {
    fixture(store, "cf-jti-client", &[]).await;
    fixture(store, "cf-jti-other", &[]).await;
    let remember = |client: &'static str, jti: &'static str, now: i64| async move {
        ok(
            store.remember_jti(client, jti, 160_300, now).await,
            "remember_jti",
        )
    };
    assert!(
        remember("cf-jti-client", "jti-1", 160_000).await,
        "a new jti"
    );
    assert!(
        !remember("cf-jti-client", "jti-1", 160_010).await,
        "conformance: a jti seen before is a replay"
    );
    assert!(
        !remember("cf-jti-client", "jti-1", 160_299).await,
        "conformance: a jti is remembered until its expiry"
    );
    assert!(
        remember("cf-jti-other", "jti-1", 160_010).await,
        "jtis are per client"
    );
    assert!(
        remember("cf-jti-client", "jti-2", 160_010).await,
        "another jti"
    );
}

// ---------------------------------------------------------------------------------------
// OutboxStore

/// Items are leased when due and unleased, for `lease_secs`; a retry counts the attempt,
/// releases the lease and defers the item; the payload is kept for the retries; complete
/// removes the item; the depth counts what waits.
pub async fn outbox_leasing(store: &dyn Store) {
    let c = "cf-outbox-client";
    let sub = "cf-outbox-sub";
    fixture(store, c, &[(sub, "+440000002600")]).await;
    park_outbox(store).await;
    let before = ok(store.outbox_depth().await, "depth before");

    for (id, at) in [
        ("cf-outbox-a", 170_010),
        ("cf-outbox-b", 170_011),
        ("cf-outbox-c", 170_012),
    ] {
        answered_request(store, id, c, sub, DeliveryMode::Push, at).await;
    }
    assert_eq!(
        ok(store.outbox_depth().await, "depth"),
        OutboxDepth {
            items: before.items + 3,
            oldest: Some(before.oldest.map_or(170_010, |o| o.min(170_010))),
        }
    );

    let lease = |now: i64, limit: u32| async move {
        ok(store.lease_outbox(now, 30, limit).await, "lease_outbox")
    };
    assert_eq!(lease(170_009, 10).await, Vec::new(), "nothing is due yet");
    let first = lease(170_011, 1).await;
    assert_eq!(first.len(), 1, "conformance: lease_outbox obeys its limit");
    let second = lease(170_011, 10).await;
    assert_eq!(
        second.len(),
        1,
        "a leased item is not leased again; an item not due is not leased"
    );
    let mut ab = [first, second].concat();
    ab.sort_by_key(|item| item.created_at);
    let about: Vec<(&str, u32, Option<&[u8]>, i64)> = ab
        .iter()
        .map(|i| {
            (
                i.session_id.as_str(),
                i.attempts,
                i.payload.as_deref(),
                i.created_at,
            )
        })
        .collect();
    assert_eq!(
        about,
        vec![
            ("cf-outbox-a", 0, None, 170_010),
            ("cf-outbox-b", 0, None, 170_011),
        ]
    );
    let (a, b) = (ab[0].clone(), ab[1].clone());
    let c_item = lease(170_012, 10).await;
    assert_eq!(
        c_item
            .iter()
            .map(|i| i.session_id.as_str())
            .collect::<Vec<_>>(),
        vec!["cf-outbox-c"]
    );
    ok(store.complete_outbox(c_item[0].id).await, "complete c");
    assert_eq!(lease(170_040, 10).await, Vec::new(), "leases still held");
    let mut again = lease(170_041, 10).await;
    again.sort_by_key(|item| item.id);
    let mut want = vec![a.id, b.id];
    want.sort_unstable();
    assert_eq!(
        ids_of(&again),
        want,
        "conformance: an item whose lease ran out (lease_until <= now) is leased again"
    );

    let payload: &[u8] = b"\x00sealed notification\xff";
    ok(store.set_outbox_payload(a.id, payload).await, "set payload");
    ok(store.retry_outbox(a.id, 170_100).await, "retry a");
    ok(store.retry_outbox(b.id, 170_050).await, "retry b");
    assert_eq!(lease(170_049, 10).await, Vec::new(), "retried items wait");
    let b_again = lease(170_050, 10).await;
    assert_eq!(
        b_again,
        vec![OutboxItem {
            attempts: 1,
            ..b.clone()
        }],
        "conformance: a retry counts the attempt and releases the lease"
    );
    ok(store.complete_outbox(b.id).await, "complete b");
    let a_again = lease(170_100, 10).await;
    assert_eq!(
        a_again,
        vec![OutboxItem {
            attempts: 1,
            payload: Some(payload.to_vec()),
            ..a.clone()
        }],
        "the payload is kept for the retries"
    );
    ok(store.retry_outbox(a.id, 170_200).await, "retry a again");
    assert_eq!(
        lease(170_200, 10).await,
        vec![OutboxItem {
            attempts: 2,
            payload: Some(payload.to_vec()),
            ..a.clone()
        }]
    );
    assert_eq!(
        ok(store.outbox_depth().await, "depth with one left").items,
        before.items + 1
    );
    ok(store.complete_outbox(a.id).await, "complete a");
    assert_eq!(
        lease(PARK_AT - 1, 10).await,
        Vec::new(),
        "conformance: a completed item is gone"
    );
    assert_eq!(
        ok(store.outbox_depth().await, "depth after"),
        before,
        "completed items no longer count"
    );
}

// ---------------------------------------------------------------------------------------
// back-channel concurrency

/// [`RACERS`] concurrent creations for one subscriber, half of them back-channel requests
/// and half front-channel sessions: exactly one succeeds, the others are `Busy`.
pub async fn concurrent_backchannel_creation(store: &dyn Store) {
    let c = "cf-bcrace-client";
    let sub = "cf-bcrace-sub";
    fixture(store, c, &[(sub, "+440000002700")]).await;
    let requests: Vec<(AuthSession, BackchannelRecord)> = (0..RACERS)
        .map(|i| {
            bc_request(
                &format!("cf-bcrace-{i}"),
                c,
                sub,
                DeliveryMode::Poll,
                180_000,
                180_300,
            )
        })
        .collect();
    let results = join_all(
        requests
            .iter()
            .enumerate()
            .map(|(i, (s, b))| async move {
                if i % 2 == 0 {
                    store.create_backchannel(s, b, 180_000).await
                } else {
                    store.create_session(s, 180_000).await
                }
            })
            .collect(),
    )
    .await;
    let mut winners = Vec::new();
    for ((s, _), r) in requests.iter().zip(results) {
        match r {
            Ok(()) => winners.push(s.id.clone()),
            Err(StoreError::Busy) => {}
            Err(e) => panic!("conformance: concurrent creation: unexpected error {e:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "conformance: exactly one concurrent creation wins, whatever the channel: {winners:?}"
    );
    let live: Vec<String> = ok(
        store.pending_for_subscriber(sub, 180_001).await,
        "pending after race",
    )
    .into_iter()
    .map(|s| s.id)
    .collect();
    assert_eq!(live, winners);
}

/// [`RACERS`] concurrent polls of an approved request (interval 0): exactly one
/// `Approved`, the others `Consumed`. [`RACERS`] concurrent polls of a pending request at
/// the same second: one `Pending`, the others `SlowDown`, each growing the interval.
pub async fn concurrent_polls(store: &dyn Store) {
    let c = "cf-pollrace-client";
    fixture(
        store,
        c,
        &[
            ("cf-pollrace-sub1", "+440000002800"),
            ("cf-pollrace-sub2", "+440000002801"),
        ],
    )
    .await;
    let (s, mut b) = bc_request(
        "cf-pollrace-1",
        c,
        "cf-pollrace-sub1",
        DeliveryMode::Poll,
        190_000,
        190_300,
    );
    b.interval = 0;
    ok(store.create_backchannel(&s, &b, 190_000).await, "create");
    assert!(ok(
        store
            .resolve_session(&s.id, &approved("2", &["pin"], 190_010), 190_010)
            .await,
        "approve"
    ));
    let results = join_all(
        (0..RACERS)
            .map(|_| store.poll_backchannel(&s.id, c, 190_020))
            .collect(),
    )
    .await;
    let mut handed_out = 0;
    for r in results {
        match ok(r, "concurrent poll") {
            PollOutcome::Approved(got) => {
                handed_out += 1;
                assert_eq!(
                    (got.id.as_str(), got.status),
                    (s.id.as_str(), SessionStatus::Consumed)
                );
            }
            PollOutcome::Consumed => {}
            other => panic!("conformance: concurrent poll of an approved request: {other:?}"),
        }
    }
    assert_eq!(
        handed_out, 1,
        "conformance: exactly one concurrent poll gets the approved request"
    );

    let (p, bp) = bc_request(
        "cf-pollrace-2",
        c,
        "cf-pollrace-sub2",
        DeliveryMode::Poll,
        190_000,
        190_300,
    );
    ok(store.create_backchannel(&p, &bp, 190_000).await, "create");
    let results = join_all(
        (0..RACERS)
            .map(|_| store.poll_backchannel(&p.id, c, 190_020))
            .collect(),
    )
    .await;
    let mut pending = 0;
    for r in results {
        match ok(r, "concurrent poll") {
            PollOutcome::Pending => pending += 1,
            PollOutcome::SlowDown => {}
            other => panic!("conformance: concurrent poll of a pending request: {other:?}"),
        }
    }
    assert_eq!(
        pending, 1,
        "conformance: one of simultaneous polls is answered"
    );
    let grown = ok(store.get_backchannel(&p.id).await, "get raced request")
        .map(|(_, b)| (b.interval, b.last_poll_at));
    assert_eq!(
        grown,
        Some((bp.interval + 5 * (RACERS as i64 - 1), Some(190_020))),
        "conformance: every concurrent slow_down grows the interval"
    );
}

/// [`LEASERS`] concurrent `lease_outbox` calls: no item is leased by two of them, and
/// every item is leased by one.
pub async fn concurrent_outbox_leasing(store: &dyn Store) {
    let c = "cf-leaserace-client";
    let sub = "cf-leaserace-sub";
    fixture(store, c, &[(sub, "+440000002900")]).await;
    park_outbox(store).await;
    let ids: Vec<String> = (0..12).map(|i| format!("cf-leaserace-{i}")).collect();
    for id in &ids {
        answered_request(store, id, c, sub, DeliveryMode::Ping, 200_010).await;
    }
    let results = join_all(
        (0..LEASERS)
            .map(|_| store.lease_outbox(200_020, 60, 2))
            .collect(),
    )
    .await;
    let mut leased: Vec<OutboxItem> = results
        .into_iter()
        .flat_map(|r| ok(r, "concurrent lease_outbox"))
        .collect();
    // Whatever the racers left (a backend may lease fewer than `limit`).
    leased.extend(lease_all(|| store.lease_outbox(200_020, 60, 2)).await);
    let mut about: Vec<String> = leased.iter().map(|i| i.session_id.clone()).collect();
    about.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(
        about, want,
        "conformance: each outbox item is leased by exactly one worker"
    );
    for item in &leased {
        ok(store.complete_outbox(item.id).await, "complete");
    }
}
