//! Conformance of [`crate::UserCodeStore`]: set, read, count failures up to the lock, reset
//! by a new code, remove; unknown subscribers are `NotFound`.

use super::{expect_err, ok, subscriber};
use crate::{PinState, Store, StoreError, UserCodeRecord};

/// The stored code, which the step expects to be there.
async fn code_of(store: &dyn Store, id: &str, step: &str) -> UserCodeRecord {
    match ok(store.get_user_code(id).await, step) {
        Some(c) => c,
        None => panic!("conformance: {step}: the user code is missing"),
    }
}

/// Runs every user-code contract.
pub async fn run(store: &dyn Store) {
    let s = subscriber("cf-ucode-1", "+440000009801");
    ok(
        store.insert_subscriber(&s).await,
        "insert user-code subscriber",
    );
    assert_eq!(
        ok(store.get_user_code(&s.id).await, "no code yet"),
        None,
        "conformance: a subscriber has no user code until one is set"
    );
    ok(
        store.set_user_code(&s.id, Some("$argon2id$first")).await,
        "set code",
    );
    let got = code_of(store, &s.id, "get code").await;
    assert_eq!(
        (got.code_hash.as_str(), got.failures, got.locked),
        ("$argon2id$first", 0, false)
    );

    let first = ok(
        store.record_user_code_failure(&s.id, 3).await,
        "first failure",
    );
    assert_eq!(
        first,
        PinState {
            failures: 1,
            locked: false
        }
    );
    ok(store.clear_user_code_failures(&s.id).await, "clear");
    for n in 1..=3 {
        let state = ok(store.record_user_code_failure(&s.id, 3).await, "failure");
        assert_eq!(state.failures, n);
        assert_eq!(
            state.locked,
            n == 3,
            "conformance: locked at the third failure"
        );
    }
    let locked = code_of(store, &s.id, "locked code").await;
    assert!(locked.locked);
    // A right code afterwards does not unlock it; only a new code does.
    ok(
        store.clear_user_code_failures(&s.id).await,
        "clear while locked",
    );
    assert!(ok(store.get_user_code(&s.id).await, "still locked").is_some_and(|c| c.locked));
    ok(
        store.set_user_code(&s.id, Some("$argon2id$second")).await,
        "new code",
    );
    let reset = code_of(store, &s.id, "reset").await;
    assert_eq!(
        (reset.code_hash.as_str(), reset.failures, reset.locked),
        ("$argon2id$second", 0, false)
    );

    ok(store.set_user_code(&s.id, None).await, "remove code");
    assert_eq!(ok(store.get_user_code(&s.id).await, "removed"), None);
    ok(store.set_user_code(&s.id, None).await, "remove twice");
    let not_found = |e: &StoreError| matches!(e, StoreError::NotFound);
    expect_err(
        store.record_user_code_failure(&s.id, 3).await,
        "failure without a code",
        not_found,
    );
    expect_err(
        store.set_user_code("cf-ucode-nobody", Some("h")).await,
        "code for an unknown subscriber",
        not_found,
    );
    expect_err(
        store.set_user_code("cf-ucode-nobody", None).await,
        "removing the code of an unknown subscriber",
        not_found,
    );
}
