//! Conformance of [`crate::MsspStore`]: a request is stored once per session and reads back
//! as stored; only the lease holder (by owner token) records the MSSP's transaction id or
//! renews its lease; a request whose lease ran out is taken over by exactly one worker
//! (attempts counted, the old holder fenced out), an expired one by none; completed
//! requests are gone; purge and the depth metric.
//!
//! The requests are one table: the checks that lease use times from 500 000 on, each its
//! own range, and complete everything they create.

use super::{LEASERS, expect_err, is_conflict, join_all, ok};
use crate::{MsspRequestRecord, Store};

/// Runs every MSSP contract.
pub async fn run(store: &dyn Store) {
    mssp_request_roundtrip(store).await;
    mssp_holder_fencing(store).await;
    mssp_takeover(store).await;
    concurrent_mssp_leasing(store).await;
    mssp_purge_and_depth(store).await;
}

fn request(id: &str, owner: &str, created_at: i64, lease_until: i64) -> MsspRequestRecord {
    MsspRequestRecord {
        session_id: id.to_string(),
        subscriber_id: format!("{id}-sub"),
        msisdn: "+440000008001".to_string(),
        text: "OnlineShopper: Log in? Press OK to confirm.".to_string(),
        pin_required: false,
        ap_trans_id: format!("{id}-ap"),
        mssp_trans_id: None,
        attempts: 0,
        lease_owner: owner.to_string(),
        lease_until,
        expires_at: created_at + 80,
        created_at,
    }
}

/// Storing, reading back, the duplicate rule, completion (idempotent).
pub async fn mssp_request_roundtrip(store: &dyn Store) {
    let mut r = request("cf-mssp-rt", "owner-a", 500_000, 500_030);
    r.pin_required = true;
    ok(store.create_mssp_request(&r).await, "create_mssp_request");
    assert_eq!(
        ok(store.get_mssp_request("cf-mssp-rt").await, "get"),
        Some(r.clone()),
        "conformance: an MSSP request reads back as stored"
    );
    assert_eq!(
        ok(store.get_mssp_request("cf-mssp-none").await, "get unknown"),
        None
    );
    expect_err(
        store.create_mssp_request(&r).await,
        "a second request for one session",
        is_conflict,
    );
    ok(store.complete_mssp_request("cf-mssp-rt").await, "complete");
    assert_eq!(
        ok(store.get_mssp_request("cf-mssp-rt").await, "get completed"),
        None,
        "conformance: a completed MSSP request is gone"
    );
    ok(
        store.complete_mssp_request("cf-mssp-rt").await,
        "complete again (idempotent)",
    );
}

/// Only the holder records the transaction id or renews; a lost lease answers false.
pub async fn mssp_holder_fencing(store: &dyn Store) {
    let r = request("cf-mssp-fence", "owner-a", 501_000, 501_030);
    ok(store.create_mssp_request(&r).await, "create");
    assert!(
        !ok(
            store
                .set_mssp_trans_id("cf-mssp-fence", "owner-b", "T-b", 501_040)
                .await,
            "set by a non-holder",
        ),
        "conformance: only the lease holder records the MSSP transaction id"
    );
    assert!(ok(
        store
            .set_mssp_trans_id("cf-mssp-fence", "owner-a", "T-1", 501_040)
            .await,
        "set by the holder",
    ));
    let got = ok(store.get_mssp_request("cf-mssp-fence").await, "get");
    assert_eq!(
        got.as_ref().and_then(|r| r.mssp_trans_id.as_deref()),
        Some("T-1")
    );
    assert_eq!(
        got.map(|r| r.lease_until),
        Some(501_040),
        "setting the id renews the lease"
    );
    assert!(ok(
        store
            .renew_mssp_lease("cf-mssp-fence", "owner-a", 501_060)
            .await,
        "renew by the holder",
    ));
    assert!(
        !ok(
            store
                .renew_mssp_lease("cf-mssp-fence", "owner-b", 501_090)
                .await,
            "renew by a non-holder",
        ),
        "conformance: only the lease holder renews"
    );
    assert_eq!(
        ok(store.get_mssp_request("cf-mssp-fence").await, "get").map(|r| r.lease_until),
        Some(501_060)
    );
    assert!(
        !ok(
            store
                .renew_mssp_lease("cf-mssp-unknown", "owner-a", 501_060)
                .await,
            "renew unknown",
        ),
        "conformance: renewing a request that is gone answers false"
    );
    ok(
        store.complete_mssp_request("cf-mssp-fence").await,
        "complete",
    );
}

/// A live lease is not taken; a lapsed one is, by a new owner, with the attempt counted and
/// the old holder fenced out; an expired request is not taken at all.
pub async fn mssp_takeover(store: &dyn Store) {
    let live = request("cf-mssp-live", "owner-a", 502_000, 502_100);
    let mut lapsed = request("cf-mssp-lapsed", "owner-a", 502_000, 502_030);
    lapsed.mssp_trans_id = Some("T-lapsed".into());
    let mut expired = request("cf-mssp-expired", "owner-a", 501_900, 501_930);
    expired.expires_at = 502_040;
    for r in [&live, &lapsed, &expired] {
        ok(store.create_mssp_request(r).await, "create");
    }
    let got = ok(
        store.lease_mssp_requests(502_050, 20, "owner-w", 10).await,
        "lease at 502 050",
    );
    let ids: Vec<&str> = got.iter().map(|r| r.session_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["cf-mssp-lapsed"],
        "conformance: only an unexpired request whose lease ran out is taken over"
    );
    let taken = &got[0];
    assert_eq!(taken.lease_owner, "owner-w");
    assert_eq!(taken.lease_until, 502_070);
    assert_eq!(
        taken.attempts, 1,
        "conformance: a take-over counts an attempt"
    );
    assert_eq!(
        taken.mssp_trans_id.as_deref(),
        Some("T-lapsed"),
        "conformance: the MSSP transaction id survives a take-over"
    );
    assert!(
        !ok(
            store
                .renew_mssp_lease("cf-mssp-lapsed", "owner-a", 502_200)
                .await,
            "renew by the old holder",
        ),
        "conformance: the holder whose lease was taken over is fenced out"
    );
    assert!(
        ok(
            store.lease_mssp_requests(502_060, 20, "owner-x", 10).await,
            "lease again within the new lease",
        )
        .is_empty(),
        "conformance: a taken-over request is not taken again while its lease lives"
    );
    for id in ["cf-mssp-live", "cf-mssp-lapsed", "cf-mssp-expired"] {
        ok(store.complete_mssp_request(id).await, "complete");
    }
}

/// Racing workers take each lapsed request exactly once.
pub async fn concurrent_mssp_leasing(store: &dyn Store) {
    let ids: Vec<String> = (0..12).map(|i| format!("cf-mssp-race-{i}")).collect();
    for id in &ids {
        ok(
            store
                .create_mssp_request(&request(id, "owner-dead", 503_000, 503_010))
                .await,
            "create",
        );
    }
    let owners: Vec<String> = (0..LEASERS).map(|i| format!("owner-{i}")).collect();
    let results = join_all(
        owners
            .iter()
            .map(|o| store.lease_mssp_requests(503_020, 60, o, 2))
            .collect(),
    )
    .await;
    let mut leased: Vec<MsspRequestRecord> = results
        .into_iter()
        .flat_map(|r| ok(r, "racing lease"))
        .collect();
    leased.extend(ok(
        store
            .lease_mssp_requests(503_020, 60, "owner-rest", 50)
            .await,
        "rest",
    ));
    let mut about: Vec<String> = leased.iter().map(|r| r.session_id.clone()).collect();
    about.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(
        about, want,
        "conformance: each MSSP request is taken over by exactly one worker"
    );
    for r in &leased {
        assert_eq!(
            ok(store.get_mssp_request(&r.session_id).await, "get").map(|s| s.lease_owner),
            Some(r.lease_owner.clone()),
            "conformance: the stored owner is the one the lease answered"
        );
        ok(store.complete_mssp_request(&r.session_id).await, "complete");
    }
}

/// Purge forgets expired requests only; the depth counts what is left and its oldest.
pub async fn mssp_purge_and_depth(store: &dyn Store) {
    let before = ok(store.mssp_outbox_depth().await, "depth before").items;
    let old = request("cf-mssp-old", "owner-a", 400, 430);
    let young = request("cf-mssp-young", "owner-a", 504_000, 504_030);
    ok(store.create_mssp_request(&old).await, "create old");
    ok(store.create_mssp_request(&young).await, "create young");
    let depth = ok(store.mssp_outbox_depth().await, "depth");
    assert_eq!(
        depth.items,
        before + 2,
        "conformance: the depth counts requests"
    );
    assert!(
        depth.oldest.is_some_and(|t| t <= 400),
        "conformance: the depth names the oldest request: {depth:?}"
    );
    assert!(
        ok(store.purge_mssp_requests(1_000).await, "purge") >= 1,
        "conformance: purge removes expired requests"
    );
    assert_eq!(
        ok(store.get_mssp_request("cf-mssp-old").await, "get old"),
        None
    );
    assert!(
        ok(store.get_mssp_request("cf-mssp-young").await, "get young").is_some(),
        "conformance: purge keeps unexpired requests"
    );
    ok(
        store.complete_mssp_request("cf-mssp-young").await,
        "complete",
    );
    assert_eq!(
        ok(store.mssp_outbox_depth().await, "depth after").items,
        before
    );
}
