//! Conformance of [`crate::SmsStore`]: a challenge is stored with its SMS queued in the
//! same operation; a typed code is checked, counted and locked atomically (racing wrong
//! codes never exceed the limit); a link is answered once (a double click finds the first
//! answer); the SMS outbox leases each row to one worker at a time and forgets sent rows;
//! velocity counters never count beyond their limits, even when raced; the SMS lock.
//!
//! The SMS outbox is one queue: the checks that lease use times from 300 000 on, each its
//! own range, and complete everything they lease.

use super::{LEASERS, RACERS, expect_err, is_conflict, is_not_found, join_all, ok};
use crate::{
    LinkAnswer, LinkLookup, OtpCheck, SmsChallengeRecord, SmsChallengeState, SmsMode,
    SmsOutboxItem, Store, VelocityKey,
};

/// Runs every SMS contract.
pub async fn run(store: &dyn Store) {
    sms_challenge_roundtrip(store).await;
    sms_otp_checks(store).await;
    concurrent_wrong_codes(store).await;
    sms_links(store).await;
    concurrent_link_answers(store).await;
    sms_outbox(store).await;
    concurrent_sms_leasing(store).await;
    sms_velocity(store).await;
    concurrent_velocity(store).await;
    sms_locks(store).await;
    sms_purge(store).await;
}

fn challenge(id: &str, mode: SmsMode, created_at: i64, expires_at: i64) -> SmsChallengeRecord {
    SmsChallengeRecord {
        session_id: id.to_string(),
        subscriber_id: format!("{id}-sub"),
        mode,
        otp_hash: mode.has_otp().then(|| format!("{id}-otp")),
        link_hash: mode.has_url().then(|| format!("{id}-link")),
        attempts: 0,
        state: SmsChallengeState::Waiting,
        created_at,
        expires_at,
    }
}

/// Leases until nothing is left at `now`, completing each row; returns what was leased.
async fn drain(store: &dyn Store, now: i64) -> Vec<SmsOutboxItem> {
    let mut all = vec![];
    loop {
        let got = ok(store.lease_sms(now, 60, 50).await, "drain lease_sms");
        if got.is_empty() {
            return all;
        }
        for item in &got {
            ok(store.complete_sms(item.id).await, "drain complete_sms");
        }
        all.extend(got);
    }
}

/// Storing, reading back, the duplicate rule, and the SMS queued with the challenge.
pub async fn sms_challenge_roundtrip(store: &dyn Store) {
    drain(store, 300_000).await;
    let c = challenge("cf-sms-rt", SmsMode::OtpUrl, 300_000, 300_300);
    ok(
        store
            .create_sms_challenge(&c, "+440000007001", "code 123456")
            .await,
        "create_sms_challenge",
    );
    assert_eq!(
        ok(store.get_sms_challenge("cf-sms-rt").await, "get"),
        Some(c.clone()),
        "conformance: an SMS challenge reads back as stored"
    );
    assert_eq!(
        ok(store.get_sms_challenge("cf-sms-none").await, "get unknown"),
        None
    );
    expect_err(
        store
            .create_sms_challenge(&c, "+440000007001", "again")
            .await,
        "second challenge for one session",
        is_conflict,
    );
    let queued = drain(store, 300_000).await;
    assert_eq!(queued.len(), 1, "conformance: one SMS queued per challenge");
    let item = &queued[0];
    assert_eq!(
        (
            item.session_id.as_str(),
            item.msisdn.as_str(),
            item.text.as_str(),
            item.attempts,
            item.expires_at,
            item.created_at
        ),
        (
            "cf-sms-rt",
            "+440000007001",
            "code 123456",
            0,
            300_300,
            300_000
        ),
        "conformance: the queued SMS carries the challenge's number, text and expiry"
    );
}

/// Wrong codes count down and lock; the right code confirms (and confirms again); answers
/// after expiry or locking find nothing pending.
pub async fn sms_otp_checks(store: &dyn Store) {
    let c = challenge("cf-sms-otp", SmsMode::Otp, 300_100, 300_400);
    ok(
        store.create_sms_challenge(&c, "+440000007002", "t").await,
        "create",
    );
    let check = |code: &'static str, now: i64| store.check_sms_otp("cf-sms-otp", code, 3, now);
    assert_eq!(
        ok(check("nope", 300_110).await, "wrong 1"),
        OtpCheck::Wrong { remaining: 2 }
    );
    assert_eq!(
        ok(check("nope", 300_111).await, "wrong 2"),
        OtpCheck::Wrong { remaining: 1 }
    );
    assert_eq!(
        ok(check("cf-sms-otp-otp", 300_112).await, "right"),
        OtpCheck::Matched,
        "conformance: the right code within the limit confirms"
    );
    assert_eq!(
        ok(check("cf-sms-otp-otp", 300_113).await, "right again"),
        OtpCheck::Matched,
        "conformance: the same right code again finds the same answer"
    );
    assert_eq!(
        ok(check("nope", 300_114).await, "wrong after confirmed"),
        OtpCheck::NotPending
    );
    let got = ok(store.get_sms_challenge("cf-sms-otp").await, "get");
    assert_eq!(
        got.map(|g| (g.state, g.attempts)),
        Some((SmsChallengeState::Confirmed, 2))
    );

    let l = challenge("cf-sms-lock", SmsMode::OtpUrl, 300_100, 300_400);
    ok(
        store.create_sms_challenge(&l, "+440000007003", "t").await,
        "create",
    );
    let check = |code: &'static str| store.check_sms_otp("cf-sms-lock", code, 2, 300_120);
    assert_eq!(
        ok(check("x").await, "wrong 1"),
        OtpCheck::Wrong { remaining: 1 }
    );
    assert_eq!(
        ok(check("y").await, "wrong 2"),
        OtpCheck::Locked,
        "conformance: the last allowed wrong code locks"
    );
    assert_eq!(
        ok(check("cf-sms-lock-otp").await, "right after lock"),
        OtpCheck::NotPending,
        "conformance: a locked challenge takes no code, not even the right one"
    );
    assert_eq!(
        ok(
            store
                .answer_sms_link("cf-sms-lock-link", SmsChallengeState::Confirmed, 300_121)
                .await,
            "link after lock"
        ),
        LinkAnswer::Settled(SmsChallengeRecord {
            attempts: 2,
            state: SmsChallengeState::Locked,
            ..l.clone()
        }),
        "conformance: a locked challenge's link does not confirm"
    );

    let e = challenge("cf-sms-expired", SmsMode::Otp, 300_100, 300_130);
    ok(
        store.create_sms_challenge(&e, "+440000007004", "t").await,
        "create",
    );
    assert_eq!(
        ok(
            store
                .check_sms_otp("cf-sms-expired", "cf-sms-expired-otp", 3, 300_130)
                .await,
            "at expiry"
        ),
        OtpCheck::NotPending,
        "conformance: no code is taken at or after expires_at"
    );
    let u = challenge("cf-sms-urlonly", SmsMode::Url, 300_100, 300_400);
    ok(
        store.create_sms_challenge(&u, "+440000007005", "t").await,
        "create",
    );
    assert_eq!(
        ok(
            store
                .check_sms_otp("cf-sms-urlonly", "guess", 3, 300_110)
                .await,
            "no code"
        ),
        OtpCheck::NotPending,
        "conformance: a link-only challenge takes no code (and counts nothing)"
    );
    assert_eq!(
        ok(
            store
                .check_sms_otp("cf-sms-unknown", "guess", 3, 300_110)
                .await,
            "unknown"
        ),
        OtpCheck::NotPending
    );
    drain(store, 300_100).await;
}

/// Racing wrong codes: exactly `limit - 1` are counted as wrong, one locks, none beyond.
pub async fn concurrent_wrong_codes(store: &dyn Store) {
    let c = challenge("cf-sms-otprace", SmsMode::Otp, 300_200, 300_500);
    ok(
        store.create_sms_challenge(&c, "+440000007006", "t").await,
        "create",
    );
    let limit = 5u32;
    let results = join_all(
        (0..RACERS)
            .map(|_| store.check_sms_otp("cf-sms-otprace", "wrong", limit, 300_210))
            .collect(),
    )
    .await;
    let outcomes: Vec<OtpCheck> = results.into_iter().map(|r| ok(r, "racing check")).collect();
    let wrong = outcomes
        .iter()
        .filter(|o| matches!(o, OtpCheck::Wrong { .. }))
        .count();
    let locked = outcomes.iter().filter(|o| **o == OtpCheck::Locked).count();
    assert_eq!(
        (wrong, locked),
        (limit as usize - 1, 1),
        "conformance: racing wrong codes are counted one by one up to the lock: {outcomes:?}"
    );
    let got = ok(store.get_sms_challenge("cf-sms-otprace").await, "get");
    assert_eq!(
        got.map(|g| (g.state, g.attempts)),
        Some((SmsChallengeState::Locked, limit))
    );
    drain(store, 300_200).await;
}

/// Links: found in any state, answered once, settled answers returned as they stand.
pub async fn sms_links(store: &dyn Store) {
    let c = challenge("cf-sms-link", SmsMode::Url, 300_300, 300_600);
    ok(
        store.create_sms_challenge(&c, "+440000007007", "t").await,
        "create",
    );
    assert_eq!(
        ok(store.find_sms_link("cf-sms-link-link").await, "find"),
        LinkLookup::Found(c.clone())
    );
    assert_eq!(
        ok(store.find_sms_link("cf-sms-nolink").await, "find unknown"),
        LinkLookup::Unknown
    );
    let confirmed = SmsChallengeRecord {
        state: SmsChallengeState::Confirmed,
        ..c.clone()
    };
    assert_eq!(
        ok(
            store
                .answer_sms_link("cf-sms-link-link", SmsChallengeState::Confirmed, 300_310)
                .await,
            "confirm"
        ),
        LinkAnswer::Fresh(confirmed.clone()),
        "conformance: the first answer to a waiting link moves it"
    );
    assert_eq!(
        ok(
            store
                .answer_sms_link("cf-sms-link-link", SmsChallengeState::Confirmed, 300_311)
                .await,
            "confirm again"
        ),
        LinkAnswer::Settled(confirmed.clone()),
        "conformance: a double click finds the first answer"
    );
    assert_eq!(
        ok(
            store
                .answer_sms_link("cf-sms-link-link", SmsChallengeState::Rejected, 300_312)
                .await,
            "reject after"
        ),
        LinkAnswer::Settled(confirmed),
        "conformance: a later opposite answer changes nothing"
    );
    let r = challenge("cf-sms-reject", SmsMode::OtpUrl, 300_300, 300_600);
    ok(
        store.create_sms_challenge(&r, "+440000007008", "t").await,
        "create",
    );
    assert_eq!(
        ok(
            store
                .answer_sms_link("cf-sms-reject-link", SmsChallengeState::Rejected, 300_310)
                .await,
            "reject"
        ),
        LinkAnswer::Fresh(SmsChallengeRecord {
            state: SmsChallengeState::Rejected,
            ..r.clone()
        })
    );
    assert_eq!(
        ok(
            store
                .check_sms_otp("cf-sms-reject", "cf-sms-reject-otp", 3, 300_311)
                .await,
            "code after reject"
        ),
        OtpCheck::NotPending,
        "conformance: a rejected challenge takes no code"
    );
    let e = challenge("cf-sms-linkexp", SmsMode::Url, 300_300, 300_320);
    ok(
        store.create_sms_challenge(&e, "+440000007009", "t").await,
        "create",
    );
    assert_eq!(
        ok(
            store
                .answer_sms_link("cf-sms-linkexp-link", SmsChallengeState::Confirmed, 300_320)
                .await,
            "expired"
        ),
        LinkAnswer::Settled(e),
        "conformance: an expired link is not answered (it stays waiting, past expires_at)"
    );
    assert_eq!(
        ok(
            store
                .answer_sms_link("cf-sms-nolink", SmsChallengeState::Confirmed, 300_310)
                .await,
            "unknown"
        ),
        LinkAnswer::Unknown
    );
    drain(store, 300_300).await;
}

/// Racing clicks: one moves the link, the others find its answer.
pub async fn concurrent_link_answers(store: &dyn Store) {
    let c = challenge("cf-sms-linkrace", SmsMode::Url, 300_400, 300_700);
    ok(
        store.create_sms_challenge(&c, "+440000007010", "t").await,
        "create",
    );
    let results = join_all(
        (0..RACERS)
            .map(|i| {
                let answer = if i % 2 == 0 {
                    SmsChallengeState::Confirmed
                } else {
                    SmsChallengeState::Rejected
                };
                store.answer_sms_link("cf-sms-linkrace-link", answer, 300_410)
            })
            .collect(),
    )
    .await;
    let answers: Vec<LinkAnswer> = results
        .into_iter()
        .map(|r| ok(r, "racing answer"))
        .collect();
    let fresh: Vec<&SmsChallengeRecord> = answers
        .iter()
        .filter_map(|a| match a {
            LinkAnswer::Fresh(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(
        fresh.len(),
        1,
        "conformance: exactly one click answers a link"
    );
    let winner = fresh[0].state;
    assert!(
        answers.iter().all(|a| match a {
            LinkAnswer::Fresh(c) | LinkAnswer::Settled(c) => c.state == winner,
            LinkAnswer::Unknown => false,
        }),
        "conformance: every racing click sees the winning answer"
    );
    drain(store, 300_400).await;
}

/// Leasing, lease expiry, retries, completion.
pub async fn sms_outbox(store: &dyn Store) {
    drain(store, 300_500).await;
    let c = challenge("cf-sms-ob", SmsMode::Otp, 300_510, 300_900);
    ok(
        store
            .create_sms_challenge(&c, "+440000007011", "hello")
            .await,
        "create",
    );
    assert_eq!(
        ok(store.lease_sms(300_509, 60, 10).await, "lease before due").len(),
        0,
        "conformance: an SMS is not due before its challenge was created"
    );
    let first = ok(store.lease_sms(300_510, 60, 10).await, "lease");
    assert_eq!(first.len(), 1);
    let id = first[0].id;
    assert!(ok(store.sms_outbox_len().await, "len") >= 1);
    assert_eq!(
        ok(store.lease_sms(300_569, 60, 10).await, "lease while held").len(),
        0,
        "conformance: a leased SMS is not leased again while the lease lives"
    );
    let again = ok(store.lease_sms(300_570, 60, 10).await, "lease after expiry");
    assert_eq!(
        again.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![id],
        "conformance: a lease that ran out (a worker died) frees the SMS for another"
    );
    ok(store.retry_sms(id, 300_600).await, "retry");
    assert_eq!(
        ok(store.lease_sms(300_599, 60, 10).await, "before retry").len(),
        0
    );
    let retried = ok(store.lease_sms(300_600, 60, 10).await, "at retry");
    assert_eq!(
        (retried.len(), retried[0].attempts),
        (1, 1),
        "conformance: a retry counts an attempt and is due at its time"
    );
    ok(store.complete_sms(id).await, "complete");
    ok(store.complete_sms(id).await, "complete twice");
    assert_eq!(
        ok(store.lease_sms(400_000, 60, 10).await, "after complete").len(),
        0,
        "conformance: a completed SMS is gone"
    );
    expect_err(
        store.retry_sms(id, 300_700).await,
        "retry of a gone SMS",
        is_not_found,
    );
}

/// Racing workers: each SMS is leased by exactly one.
pub async fn concurrent_sms_leasing(store: &dyn Store) {
    drain(store, 301_000).await;
    let ids: Vec<String> = (0..12).map(|i| format!("cf-sms-leaserace-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let c = challenge(id, SmsMode::Otp, 301_010, 301_900);
        ok(
            store
                .create_sms_challenge(&c, &format!("+4400000071{i:02}"), "t")
                .await,
            "create",
        );
    }
    let results = join_all(
        (0..LEASERS)
            .map(|_| store.lease_sms(301_020, 60, 2))
            .collect(),
    )
    .await;
    let mut leased: Vec<SmsOutboxItem> = results
        .into_iter()
        .flat_map(|r| ok(r, "racing lease"))
        .collect();
    leased.extend(ok(store.lease_sms(301_020, 60, 50).await, "rest"));
    let mut about: Vec<String> = leased.iter().map(|i| i.session_id.clone()).collect();
    about.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(
        about, want,
        "conformance: each SMS is leased by exactly one worker"
    );
    for item in leased {
        ok(store.complete_sms(item.id).await, "complete");
    }
}

/// Counting against several keys at once, refusal naming the full key, windows apart.
pub async fn sms_velocity(store: &dyn Store) {
    let keys = vec![
        VelocityKey {
            key: "cf-vel-a".into(),
            limit: 2,
        },
        VelocityKey {
            key: "cf-vel-b".into(),
            limit: 3,
        },
    ];
    assert_eq!(ok(store.take_sms_velocity(&keys, 3_600).await, "1"), None);
    assert_eq!(ok(store.take_sms_velocity(&keys, 3_600).await, "2"), None);
    assert_eq!(
        ok(store.take_sms_velocity(&keys, 3_600).await, "3"),
        Some(0),
        "conformance: the first key at its limit is named"
    );
    let b = vec![keys[1].clone()];
    assert_eq!(
        ok(store.take_sms_velocity(&b, 3_600).await, "b alone"),
        None,
        "conformance: a refused take counts nothing on the other keys"
    );
    assert_eq!(
        ok(store.take_sms_velocity(&b, 3_600).await, "b full"),
        Some(0)
    );
    assert_eq!(
        ok(store.take_sms_velocity(&keys, 7_200).await, "next window"),
        None,
        "conformance: each window counts on its own"
    );
    assert_eq!(
        ok(store.take_sms_velocity(&[], 3_600).await, "no keys"),
        None
    );
}

/// Racing takers never count beyond the limit.
pub async fn concurrent_velocity(store: &dyn Store) {
    let keys = vec![
        VelocityKey {
            key: "cf-velrace-x".into(),
            limit: 100,
        },
        VelocityKey {
            key: "cf-velrace-y".into(),
            limit: 5,
        },
    ];
    let results = join_all(
        (0..RACERS)
            .map(|_| store.take_sms_velocity(&keys, 3_600))
            .collect(),
    )
    .await;
    let counted = results
        .into_iter()
        .map(|r| ok(r, "racing take"))
        .filter(Option::is_none)
        .count();
    assert_eq!(
        counted, 5,
        "conformance: racing takes stop exactly at the limit"
    );
    let x = vec![VelocityKey {
        key: "cf-velrace-x".into(),
        limit: 6,
    }];
    assert_eq!(ok(store.take_sms_velocity(&x, 3_600).await, "x"), None);
    assert_eq!(
        ok(store.take_sms_velocity(&x, 3_600).await, "x full"),
        Some(0),
        "conformance: refused racers counted nothing on the other key"
    );
}

/// The per-subscriber SMS lock.
pub async fn sms_locks(store: &dyn Store) {
    let s = "cf-sms-locked-sub";
    assert!(!ok(store.sms_locked(s).await, "unlocked"));
    ok(store.lock_sms(s, 100).await, "lock");
    ok(store.lock_sms(s, 101).await, "lock twice");
    assert!(ok(store.sms_locked(s).await, "locked"));
    assert!(ok(store.unlock_sms(s).await, "unlock"));
    assert!(!ok(store.unlock_sms(s).await, "unlock twice"));
    assert!(!ok(store.sms_locked(s).await, "unlocked again"));
}

/// Purging old windows and challenges.
pub async fn sms_purge(store: &dyn Store) {
    let k = vec![VelocityKey {
        key: "cf-velpurge".into(),
        limit: 1,
    }];
    ok(store.take_sms_velocity(&k, 60).await, "old window");
    assert!(ok(store.purge_sms_velocity(120).await, "purge velocity") >= 1);
    assert_eq!(
        ok(store.take_sms_velocity(&k, 60).await, "after purge"),
        None,
        "conformance: a purged window counts from zero"
    );
    let c = challenge("cf-sms-purge", SmsMode::Url, 50, 90);
    ok(
        store.create_sms_challenge(&c, "+440000007099", "t").await,
        "create",
    );
    assert!(ok(store.purge_sms_challenges(100).await, "purge") >= 1);
    assert_eq!(
        ok(store.get_sms_challenge("cf-sms-purge").await, "gone"),
        None
    );
    assert_eq!(
        ok(store.find_sms_link("cf-sms-purge-link").await, "link gone"),
        LinkLookup::Unknown
    );
    drain(store, 100).await;
}
