//! Conformance of [`crate::RetentionStore`]: each purge deletes exactly what is past its
//! cutoff, in batches of at most `limit`, and keeps what is younger, what is still live
//! (a pending back-channel request) and what is still named by a token or an outbox item.
//!
//! Uses ids `cf-ret-*` and times below 1 000 (cutoff 500), which no other check uses. In
//! [`run`] (part of `run_all`, a shared store) the counts are lower bounds; [`run_exact`]
//! expects a fresh store and checks them exactly.

use super::{approved, bc_request, denied, fixture, ok, session, token};
use crate::{DeliveryMode, Redemption, SessionStatus, Store};

const CLIENT: &str = "cf-ret-client";
const CUTOFF: i64 = 500;

/// Runs the retention contracts on a shared store.
pub async fn run(store: &dyn Store) {
    purges(store, false).await;
}

/// Runs them on a fresh store, where every count is exact.
pub async fn run_exact(store: &dyn Store) {
    purges(store, true).await;
}

#[track_caller]
fn count(got: u64, want: u64, exact: bool, step: &str) {
    if exact {
        assert_eq!(
            got, want,
            "conformance: {step}: purged {got}, expected {want}"
        );
    } else {
        assert!(
            got >= want,
            "conformance: {step}: purged {got}, expected at least {want}"
        );
    }
}

async fn gone(store: &dyn Store, id: &str) -> bool {
    ok(store.get_session(id).await, "get session").is_none()
}

async fn purges(store: &dyn Store, exact: bool) {
    fixture(
        store,
        CLIENT,
        &[
            ("cf-ret-sub-1", "+440000000971"),
            ("cf-ret-sub-2", "+440000000972"),
            ("cf-ret-sub-3", "+440000000973"),
            ("cf-ret-sub-4", "+440000000974"),
            ("cf-ret-sub-5", "+440000000975"),
            ("cf-ret-sub-6", "+440000000976"),
        ],
    )
    .await;
    let insert = |id: &'static str, sub: Option<&'static str>, status, expires_at| async move {
        let s = session(id, CLIENT, sub, status, 100, expires_at);
        ok(store.create_session(&s, 100).await, "create session");
    };
    // Finished and past the cutoff: purged.
    insert("cf-ret-denied", None, SessionStatus::Denied, 300).await;
    insert("cf-ret-consumed", None, SessionStatus::Consumed, 300).await;
    insert("cf-ret-awaiting", None, SessionStatus::AwaitingNumber, 400).await;
    insert(
        "cf-ret-edge",
        Some("cf-ret-sub-5"),
        SessionStatus::Denied,
        CUTOFF,
    )
    .await;
    // A stale front-channel login: still `pending`, its time long up.
    insert(
        "cf-ret-stale",
        Some("cf-ret-sub-1"),
        SessionStatus::Pending,
        200,
    )
    .await;
    // A code issued and never redeemed.
    insert(
        "cf-ret-code",
        Some("cf-ret-sub-4"),
        SessionStatus::Pending,
        400,
    )
    .await;
    assert!(ok(
        store
            .resolve_session("cf-ret-code", &approved("2", &["app"], 150), 150)
            .await,
        "approve"
    ));
    assert!(ok(
        store
            .issue_code("cf-ret-code", "cf-ret-code-hash", 200)
            .await,
        "issue code"
    ));
    // Younger than the cutoff: kept.
    insert("cf-ret-young", None, SessionStatus::Denied, CUTOFF + 1).await;
    insert(
        "cf-ret-live",
        Some("cf-ret-sub-2"),
        SessionStatus::Pending,
        900,
    )
    .await;
    // Old, but named by tokens: kept until the tokens go.
    insert("cf-ret-tokened", None, SessionStatus::Consumed, 300).await;
    insert("cf-ret-old-tokened", None, SessionStatus::Consumed, 300).await;
    for t in [
        token("cf-ret-t-live", Some("cf-ret-tokened"), CLIENT, 800),
        token("cf-ret-t-old", Some("cf-ret-old-tokened"), CLIENT, 450),
        token("cf-ret-t-edge", None, CLIENT, CUTOFF),
        token("cf-ret-t-young", None, CLIENT, CUTOFF + 1),
    ] {
        ok(store.insert_access_token(&t).await, "insert token");
    }
    ok(
        store.revoke_tokens_of_session("cf-ret-old-tokened").await,
        "revoke",
    );
    // Back-channel: a pending request past its time is kept (expire_backchannel ends it and
    // notifies); a denied one goes with its back-channel row; a denied ping request waits
    // for its notification.
    let (s, b) = bc_request(
        "cf-ret-bc-pending",
        CLIENT,
        "cf-ret-sub-3",
        DeliveryMode::Poll,
        100,
        300,
    );
    ok(store.create_backchannel(&s, &b, 100).await, "create bc");
    let (s, b) = bc_request(
        "cf-ret-bc-denied",
        CLIENT,
        "cf-ret-sub-6",
        DeliveryMode::Poll,
        100,
        300,
    );
    ok(store.create_backchannel(&s, &b, 100).await, "create bc");
    assert!(ok(
        store
            .resolve_session("cf-ret-bc-denied", &denied("user_denied"), 150)
            .await,
        "deny bc"
    ));
    let (s, b) = bc_request(
        "cf-ret-bc-ping",
        CLIENT,
        "cf-ret-sub-6",
        DeliveryMode::Ping,
        160,
        300,
    );
    ok(
        store.create_backchannel(&s, &b, 160).await,
        "create ping bc",
    );
    assert!(ok(
        store
            .resolve_session("cf-ret-bc-ping", &denied("user_denied"), 170)
            .await,
        "deny ping bc"
    ));

    // Sessions first: what tokens and the outbox still name stays.
    let mut purged = 0;
    for _ in 0..10 {
        let n = ok(store.purge_sessions(CUTOFF, 100).await, "purge sessions");
        purged += n;
        if n == 0 {
            break;
        }
    }
    count(purged, 7, exact, "sessions");
    for id in [
        "cf-ret-denied",
        "cf-ret-consumed",
        "cf-ret-awaiting",
        "cf-ret-edge",
        "cf-ret-stale",
        "cf-ret-code",
        "cf-ret-bc-denied",
    ] {
        assert!(
            gone(store, id).await,
            "conformance: session {id} not purged"
        );
    }
    for id in [
        "cf-ret-young",
        "cf-ret-live",
        "cf-ret-tokened",
        "cf-ret-old-tokened",
        "cf-ret-bc-pending",
        "cf-ret-bc-ping",
    ] {
        assert!(
            !gone(store, id).await,
            "conformance: session {id} purged but must be kept"
        );
    }
    assert_eq!(
        ok(store.get_backchannel("cf-ret-bc-denied").await, "get bc"),
        None,
        "conformance: a purged request's back-channel row goes with it"
    );
    assert!(
        ok(store.get_backchannel("cf-ret-bc-pending").await, "get bc").is_some(),
        "conformance: a pending back-channel request is kept"
    );
    assert_eq!(
        ok(store.redeem_code("cf-ret-code-hash", 600).await, "redeem"),
        Redemption::Unknown,
        "conformance: a purged code is unknown"
    );
    // The stale login's subscriber is free (nothing of it is left to expire).
    let fresh = session(
        "cf-ret-again",
        CLIENT,
        Some("cf-ret-sub-1"),
        SessionStatus::Pending,
        600,
        700,
    );
    ok(
        store.create_session(&fresh, 600).await,
        "a new login of the purged stale login's subscriber",
    );

    // Tokens: by expiry, revoked or not, in batches.
    let first = ok(store.purge_access_tokens(CUTOFF, 1).await, "purge tokens");
    assert_eq!(
        first, 1,
        "conformance: a purge deletes at most `limit` rows"
    );
    let rest = ok(store.purge_access_tokens(CUTOFF, 100).await, "purge tokens");
    count(first + rest, 2, exact, "access tokens");
    for (hash, kept) in [
        ("cf-ret-t-live", true),
        ("cf-ret-t-young", true),
        ("cf-ret-t-old", false),
        ("cf-ret-t-edge", false),
    ] {
        // Looked up at a time both live ones are valid.
        let found = ok(store.find_access_token(hash, 400).await, "find token").is_some();
        assert_eq!(found, kept, "conformance: token {hash} kept={kept}");
    }

    // The outbox: nothing due before the cutoff is left but the ping notification; an item
    // under a live lease is not touched.
    count(
        ok(store.purge_outbox(CUTOFF, 600, 100).await, "purge outbox"),
        1,
        exact,
        "outbox",
    );

    // Now the rest of the old sessions can go, one per call.
    let mut rounds = Vec::new();
    for _ in 0..4 {
        rounds.push(ok(store.purge_sessions(CUTOFF, 1).await, "purge sessions"));
    }
    if exact {
        assert_eq!(rounds, vec![1, 1, 0, 0], "conformance: batches of one");
    }
    assert!(gone(store, "cf-ret-old-tokened").await);
    assert!(gone(store, "cf-ret-bc-ping").await);
    assert!(!gone(store, "cf-ret-tokened").await);

    // Client assertion ids, in batches.
    for (jti, exp) in [
        ("cf-ret-j1", 200),
        ("cf-ret-j2", 300),
        ("cf-ret-j3", CUTOFF),
        ("cf-ret-j4", CUTOFF + 1),
    ] {
        assert!(ok(
            store.remember_jti(CLIENT, jti, exp, 0).await,
            "remember"
        ));
    }
    let first = ok(store.purge_assertion_jtis(CUTOFF, 2).await, "purge jtis");
    assert_eq!(
        first, 2,
        "conformance: a purge deletes at most `limit` rows"
    );
    let rest = ok(store.purge_assertion_jtis(CUTOFF, 100).await, "purge jtis");
    count(first + rest, 3, exact, "assertion jtis");
    // Forgotten ids are accepted again; the kept one is still a replay.
    assert!(ok(
        store.remember_jti(CLIENT, "cf-ret-j1", 900, 0).await,
        "remember"
    ));
    assert!(!ok(
        store.remember_jti(CLIENT, "cf-ret-j4", 900, 0).await,
        "remember"
    ));
}
