//! Conformance of [`crate::DeviceStore`]: an enrolment code registers exactly one device
//! (once, before it expires, even under a race), devices list per subscriber without the
//! revoked ones, and revocation happens once; the `app_push` capability follows the
//! devices (registration adds it, revoking the last device removes it).

use super::{RACERS, expect_err, fixture, is_conflict, is_not_found, join_all, ok};
use crate::{DeviceRecord, NewDevice, Store, SubscriberStatus};

/// Runs every device contract.
pub async fn run(store: &dyn Store) {
    enrolment_and_registration(store).await;
    concurrent_registration(store).await;
    capability_follows_devices(store).await;
    revocation_racing_registration(store).await;
}

fn new_device(id: &str) -> NewDevice {
    NewDevice {
        id: id.to_string(),
        public_jwk: format!(r#"{{"kty":"EC","crv":"P-256","x":"x-{id}","y":"y-{id}"}}"#),
        label: format!("phone {id}"),
    }
}

/// Codes are taken once and only while fresh; devices list and revoke.
pub async fn enrolment_and_registration(store: &dyn Store) {
    let (sub, other) = ("cf-device-sub", "cf-device-other");
    fixture(
        store,
        "cf-device-client",
        &[(sub, "+440000007701"), (other, "+440000007702")],
    )
    .await;
    ok(
        store
            .create_enrolment_code("cf-dev-code-1", sub, 5_000, 1_000)
            .await,
        "create enrolment code",
    );
    expect_err(
        store
            .create_enrolment_code("cf-dev-code-1", other, 5_000, 1_000)
            .await,
        "a second code with the same hash",
        is_conflict,
    );
    expect_err(
        store
            .create_enrolment_code("cf-dev-code-x", "cf-device-nobody", 5_000, 1_000)
            .await,
        "a code for an unknown subscriber",
        is_not_found,
    );
    assert_eq!(
        ok(
            store
                .register_device("cf-dev-unknown", &new_device("cf-dev-a"), 1_100)
                .await,
            "register with an unknown code",
        ),
        None,
        "conformance: an unknown code registers nothing"
    );
    let got = ok(
        store
            .register_device("cf-dev-code-1", &new_device("cf-dev-a"), 1_100)
            .await,
        "register",
    );
    let want = DeviceRecord {
        id: "cf-dev-a".into(),
        subscriber_id: sub.into(),
        public_jwk: new_device("cf-dev-a").public_jwk,
        label: "phone cf-dev-a".into(),
        created_at: 1_100,
        revoked_at: None,
    };
    assert_eq!(
        got.as_ref(),
        Some(&want),
        "conformance: the device belongs to the code's subscriber"
    );
    assert_eq!(
        ok(store.get_device("cf-dev-a").await, "get device"),
        Some(want.clone())
    );
    assert_eq!(
        ok(
            store
                .register_device("cf-dev-code-1", &new_device("cf-dev-b"), 1_200)
                .await,
            "register twice with one code",
        ),
        None,
        "conformance: an enrolment code is taken once"
    );

    // An expired code registers nothing; a device id that exists is a conflict and leaves
    // the code usable.
    ok(
        store
            .create_enrolment_code("cf-dev-code-2", sub, 1_300, 1_000)
            .await,
        "short-lived code",
    );
    assert_eq!(
        ok(
            store
                .register_device("cf-dev-code-2", &new_device("cf-dev-c"), 1_300)
                .await,
            "register with an expired code",
        ),
        None,
        "conformance: an expired code registers nothing"
    );
    ok(
        store
            .create_enrolment_code("cf-dev-code-3", sub, 5_000, 1_000)
            .await,
        "third code",
    );
    expect_err(
        store
            .register_device("cf-dev-code-3", &new_device("cf-dev-a"), 1_400)
            .await,
        "register an existing device id",
        is_conflict,
    );
    let second = ok(
        store
            .register_device("cf-dev-code-3", &new_device("cf-dev-d"), 1_500)
            .await,
        "register after a conflict",
    );
    assert!(
        second.is_some(),
        "conformance: a failed registration leaves its code unused"
    );

    let ids = |list: Vec<DeviceRecord>| list.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        ids(ok(store.devices_of(sub).await, "devices_of")),
        vec!["cf-dev-a", "cf-dev-d"],
        "conformance: devices oldest first"
    );
    assert!(ok(store.devices_of(other).await, "devices_of other").is_empty());
    assert!(ok(store.revoke_device("cf-dev-a", 1_600).await, "revoke"));
    assert!(
        !ok(store.revoke_device("cf-dev-a", 1_700).await, "revoke again"),
        "conformance: a device is revoked once"
    );
    assert!(!ok(
        store.revoke_device("cf-dev-none", 1_700).await,
        "revoke unknown"
    ));
    assert_eq!(
        ids(ok(store.devices_of(sub).await, "devices_of after revoke")),
        vec!["cf-dev-d"],
        "conformance: revoked devices are not listed"
    );
    let revoked = ok(store.get_device("cf-dev-a").await, "get revoked").map(|d| d.revoked_at);
    assert_eq!(
        revoked,
        Some(Some(1_600)),
        "conformance: revocation time kept"
    );
}

/// Of many registrations racing with one code exactly one gets a device.
pub async fn concurrent_registration(store: &dyn Store) {
    let sub = "cf-device-race";
    fixture(store, "cf-device-race-client", &[(sub, "+440000007703")]).await;
    ok(
        store
            .create_enrolment_code("cf-dev-race-code", sub, 5_000, 1_000)
            .await,
        "race code",
    );
    let devices: Vec<NewDevice> = (0..RACERS)
        .map(|i| new_device(&format!("cf-dev-race-{i}")))
        .collect();
    let results = join_all(
        devices
            .iter()
            .map(|d| store.register_device("cf-dev-race-code", d, 1_100))
            .collect(),
    )
    .await;
    let winners = results
        .into_iter()
        .map(|r| ok(r, "racing registration"))
        .filter(Option::is_some)
        .count();
    assert_eq!(winners, 1, "conformance: one code, one device");
    assert_eq!(ok(store.devices_of(sub).await, "race devices").len(), 1);
}

/// Registering gives `app_push`, revoking one of two devices keeps it, revoking the last
/// takes it (other capabilities untouched), registering again gives it back.
pub async fn capability_follows_devices(store: &dyn Store) {
    let sub = "cf-device-caps";
    fixture(store, "cf-device-caps-client", &[(sub, "+440000007704")]).await;
    let caps = |want: &[&str]| want.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    ok(
        store
            .update_subscriber(sub, SubscriberStatus::Active, &caps(&["sms"]))
            .await,
        "subscriber without the app",
    );
    let capabilities = |label: &'static str| async move {
        match ok(store.get_subscriber(sub).await, label) {
            Some(s) => s.capabilities,
            None => panic!("conformance: {label}: the subscriber is gone"),
        }
    };
    let register = |code: &'static str, device: &'static str| async move {
        ok(
            store.create_enrolment_code(code, sub, 5_000, 1_000).await,
            "caps code",
        );
        let got = ok(
            store
                .register_device(code, &new_device(device), 1_100)
                .await,
            "caps register",
        );
        assert!(got.is_some(), "conformance: {device} registers");
    };
    register("cf-dev-caps-1", "cf-dev-caps-a").await;
    assert_eq!(
        capabilities("caps after a registration").await,
        caps(&["sms", "app_push"]),
        "conformance: a registered device gives app_push"
    );
    register("cf-dev-caps-2", "cf-dev-caps-b").await;
    assert_eq!(
        capabilities("caps after a second registration").await,
        caps(&["sms", "app_push"]),
        "conformance: app_push is listed once"
    );
    assert!(ok(
        store.revoke_device("cf-dev-caps-a", 1_200).await,
        "revoke one"
    ));
    assert_eq!(
        capabilities("caps with one device left").await,
        caps(&["sms", "app_push"]),
        "conformance: another unrevoked device keeps app_push"
    );
    assert!(ok(
        store.revoke_device("cf-dev-caps-b", 1_300).await,
        "revoke the last"
    ));
    assert_eq!(
        capabilities("caps without a device").await,
        caps(&["sms"]),
        "conformance: revoking the last device takes app_push"
    );
    register("cf-dev-caps-3", "cf-dev-caps-c").await;
    assert_eq!(
        capabilities("caps after registering again").await,
        caps(&["sms", "app_push"]),
        "conformance: a new device gives app_push back"
    );
}

/// Revoking a subscriber's only device while a new one registers for them, concurrently:
/// whichever commits first, the subscriber ends with the new device and `app_push` (a
/// revocation that did not see the new device must not take the capability from it).
pub async fn revocation_racing_registration(store: &dyn Store) {
    use std::future::Future;
    use std::pin::Pin;
    type Step<'a> = Pin<Box<dyn Future<Output = crate::StoreResult<bool>> + Send + 'a>>;

    let sub = "cf-device-caps-race";
    fixture(
        store,
        "cf-device-caps-race-client",
        &[(sub, "+440000007705")],
    )
    .await;
    ok(
        store
            .update_subscriber(sub, SubscriberStatus::Active, &[])
            .await,
        "race subscriber without the app",
    );
    let code = |i: usize| format!("cf-dev-cr-code-{i}");
    let device = |i: usize| new_device(&format!("cf-dev-cr-{i}"));
    ok(
        store
            .create_enrolment_code(&code(0), sub, 5_000, 1_000)
            .await,
        "race code 0",
    );
    let first = ok(
        store.register_device(&code(0), &device(0), 1_000).await,
        "race device 0",
    );
    assert!(first.is_some(), "conformance: the first device registers");
    for round in 1..=RACERS {
        ok(
            store
                .create_enrolment_code(&code(round), sub, 5_000, 1_000)
                .await,
            "race code",
        );
        let (old, new) = (device(round - 1), device(round));
        let steps: Vec<Step<'_>> = vec![
            Box::pin(store.revoke_device(&old.id, 1_000 + round as i64)),
            Box::pin(async {
                store
                    .register_device(&code(round), &new, 1_000 + round as i64)
                    .await
                    .map(|d| d.is_some())
            }),
        ];
        let done: Vec<bool> = join_all(steps)
            .await
            .into_iter()
            .map(|r| ok(r, "racing revocation and registration"))
            .collect();
        assert_eq!(done, vec![true, true], "conformance: both happen");
        let caps = match ok(store.get_subscriber(sub).await, "race caps") {
            Some(s) => s.capabilities,
            None => panic!("conformance: the race subscriber is gone"),
        };
        assert_eq!(
            caps,
            vec![DeviceRecord::CAPABILITY.to_string()],
            "conformance: round {round}: the new device keeps app_push"
        );
    }
}
