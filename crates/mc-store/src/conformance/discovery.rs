//! Conformance of [`crate::DiscoveryStore`]: operators, applications and their per-operator
//! credentials, number tables (batches, keyset pages, replacing imports), IP ranges, and the
//! generation counter every write bumps.
//!
//! Ids start with `cf-d`; numbers live under the prefix `999` (reserved by ITU-T, never a
//! real country code) so the checks can count exactly what they wrote.

use std::collections::BTreeMap;

use super::{expect_err, is_conflict, is_not_found, ok};
use crate::{
    DiscoveryAppRecord, IpRangeRecord, NumberEntry, NumberKind, OperatorCredentialRecord,
    OperatorRecord, Store,
};

/// Runs every discovery contract.
pub async fn run(store: &dyn Store) {
    operators(store).await;
    apps_and_credentials(store).await;
    numbers(store).await;
    replacing_import(store).await;
    ip_ranges(store).await;
    deleting_an_operator_removes_what_names_it(store).await;
}

fn operator(id: &str, mnc: &str) -> OperatorRecord {
    let mut links = BTreeMap::new();
    links.insert(
        "authorization".to_string(),
        format!("https://{id}.example/authorize"),
    );
    links.insert("token".to_string(), format!("https://{id}.example/token"));
    OperatorRecord {
        id: id.to_string(),
        mcc: "999".to_string(),
        mnc: mnc.to_string(),
        name: format!("Operator {id}"),
        country: "Nowhere".to_string(),
        currency: "XTS".to_string(),
        links,
        encryption_jwk: Some(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#.to_string()),
        enabled: true,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn app(id: &str) -> DiscoveryAppRecord {
    DiscoveryAppRecord {
        client_id: id.to_string(),
        secret_hash: "00ff".to_string(),
        name: "Shop".to_string(),
        short_name: "shop".to_string(),
        redirect_uris: vec!["https://shop.example/cb".to_string()],
        enabled: true,
        created_at: 1_000,
    }
}

fn entry(kind: NumberKind, number: u64, operator_id: &str) -> NumberEntry {
    NumberEntry {
        kind,
        number,
        operator_id: operator_id.to_string(),
    }
}

async fn generation(store: &dyn Store) -> i64 {
    ok(store.discovery_generation().await, "discovery generation").all
}

async fn numbers_generation(store: &dyn Store) -> i64 {
    ok(store.discovery_generation().await, "discovery generation").numbers
}

/// Entries of `kind` under our `999` prefix, read through the keyset pages.
async fn ours(store: &dyn Store, kind: NumberKind, page: u32) -> Vec<NumberEntry> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let got = ok(store.numbers_after(kind, after, page).await, "numbers page");
        assert!(
            got.len() <= page as usize,
            "conformance: a page holds at most `limit` entries"
        );
        let Some(last) = got.last() else {
            break;
        };
        after = Some(last.number);
        out.extend(got);
    }
    let sorted = out.windows(2).all(|w| w[0].number < w[1].number);
    assert!(sorted, "conformance: numbers come in ascending order");
    out.retain(|e| e.number.to_string().starts_with("999"));
    out
}

pub async fn operators(store: &dyn Store) {
    let g0 = generation(store).await;
    let n0 = numbers_generation(store).await;
    let a = operator("cf-dop-a", "01");
    ok(store.insert_operator(&a).await, "insert operator");
    assert!(
        generation(store).await > g0,
        "conformance: a write bumps the generation"
    );
    assert_eq!(
        numbers_generation(store).await,
        n0,
        "conformance: an operator write leaves the numbers generation alone"
    );
    assert_eq!(
        ok(store.get_operator(&a.id).await, "get operator"),
        Some(a.clone())
    );
    expect_err(
        store.insert_operator(&a).await,
        "insert duplicate operator id",
        is_conflict,
    );
    let same_code = OperatorRecord {
        id: "cf-dop-b".to_string(),
        ..a.clone()
    };
    expect_err(
        store.insert_operator(&same_code).await,
        "insert operator with a taken MCC/MNC",
        is_conflict,
    );
    let b = operator("cf-dop-b", "02");
    ok(store.insert_operator(&b).await, "insert second operator");

    let mut changed = a.clone();
    changed.name = "Renamed".to_string();
    changed.encryption_jwk = None;
    changed.enabled = false;
    changed
        .links
        .insert("premiuminfo".into(), "https://x/p".into());
    changed.updated_at = 2_000;
    changed.created_at = 5; // ignored
    ok(store.update_operator(&changed).await, "update operator");
    let got = ok(store.get_operator(&a.id).await, "get updated operator");
    assert_eq!(
        got,
        Some(OperatorRecord {
            created_at: a.created_at,
            ..changed.clone()
        }),
        "conformance: update keeps created_at and replaces the rest"
    );
    let mut clash = b.clone();
    clash.mnc = "01".to_string();
    expect_err(
        store.update_operator(&clash).await,
        "update operator onto a taken MCC/MNC",
        is_conflict,
    );
    expect_err(
        store.update_operator(&operator("cf-dop-none", "77")).await,
        "update unknown operator",
        is_not_found,
    );
    let listed: Vec<String> = ok(store.list_operators().await, "list operators")
        .into_iter()
        .map(|o| o.id)
        .filter(|id| id.starts_with("cf-dop-"))
        .collect();
    assert_eq!(listed.len(), 2, "conformance: both operators listed");
    assert_eq!(
        ok(
            store.get_operator("cf-dop-none").await,
            "get unknown operator"
        ),
        None
    );
}

pub async fn apps_and_credentials(store: &dyn Store) {
    let op = operator("cf-dop-cred", "10");
    ok(
        store.insert_operator(&op).await,
        "insert credential operator",
    );
    let a = app("cf-dapp-1");
    ok(store.insert_discovery_app(&a).await, "insert app");
    expect_err(
        store.insert_discovery_app(&a).await,
        "insert duplicate app",
        is_conflict,
    );
    assert_eq!(
        ok(store.get_discovery_app(&a.client_id).await, "get app"),
        Some(a.clone())
    );
    let mut changed = a.clone();
    changed.secret_hash = "abcd".to_string();
    changed
        .redirect_uris
        .push("https://shop.example/other".into());
    changed.enabled = false;
    ok(store.update_discovery_app(&changed).await, "update app");
    assert_eq!(
        ok(
            store.get_discovery_app(&a.client_id).await,
            "get updated app"
        ),
        Some(changed.clone())
    );
    expect_err(
        store.update_discovery_app(&app("cf-dapp-none")).await,
        "update unknown app",
        is_not_found,
    );
    assert!(
        ok(store.list_discovery_apps().await, "list apps")
            .iter()
            .any(|x| x.client_id == a.client_id)
    );

    let cred = OperatorCredentialRecord {
        app_id: a.client_id.clone(),
        operator_id: op.id.clone(),
        client_id: "op-client".to_string(),
        client_secret_sealed: vec![0, 1, 2, 255],
        client_name: Some("Shop at op".to_string()),
        updated_at: 3_000,
    };
    ok(store.put_operator_credential(&cred).await, "put credential");
    let replaced = OperatorCredentialRecord {
        client_id: "op-client-2".to_string(),
        client_name: None,
        ..cred.clone()
    };
    ok(
        store.put_operator_credential(&replaced).await,
        "replace credential",
    );
    assert_eq!(
        ok(
            store.get_operator_credential(&a.client_id, &op.id).await,
            "get credential"
        ),
        Some(replaced.clone())
    );
    assert_eq!(
        ok(
            store.list_operator_credentials(&a.client_id).await,
            "list credentials"
        ),
        vec![replaced.clone()]
    );
    let orphan = OperatorCredentialRecord {
        operator_id: "cf-dop-none".to_string(),
        ..cred.clone()
    };
    expect_err(
        store.put_operator_credential(&orphan).await,
        "credential at an unknown operator",
        is_not_found,
    );
    let orphan = OperatorCredentialRecord {
        app_id: "cf-dapp-none".to_string(),
        ..cred.clone()
    };
    expect_err(
        store.put_operator_credential(&orphan).await,
        "credential of an unknown app",
        is_not_found,
    );
    assert!(ok(
        store.delete_operator_credential(&a.client_id, &op.id).await,
        "delete credential"
    ));
    assert!(!ok(
        store.delete_operator_credential(&a.client_id, &op.id).await,
        "delete credential again"
    ));

    // Deleting an app takes its credentials with it.
    ok(
        store.put_operator_credential(&cred).await,
        "put credential again",
    );
    ok(store.delete_discovery_app(&a.client_id).await, "delete app");
    assert_eq!(
        ok(
            store.get_discovery_app(&a.client_id).await,
            "get deleted app"
        ),
        None
    );
    assert!(
        ok(
            store.list_operator_credentials(&a.client_id).await,
            "credentials of a deleted app"
        )
        .is_empty()
    );
    expect_err(
        store.delete_discovery_app(&a.client_id).await,
        "delete unknown app",
        is_not_found,
    );
}

pub async fn numbers(store: &dyn Store) {
    let a = operator("cf-dop-num-a", "20");
    let b = operator("cf-dop-num-b", "21");
    ok(store.insert_operator(&a).await, "insert number operator a");
    ok(store.insert_operator(&b).await, "insert number operator b");
    let ranges = [
        entry(NumberKind::Range, 99_920, &a.id),
        entry(NumberKind::Range, 999_201, &b.id),
    ];
    let g = generation(store).await;
    let n = numbers_generation(store).await;
    ok(store.upsert_numbers(&ranges, 1).await, "insert ranges");
    assert!(
        generation(store).await > g,
        "conformance: an import bumps the generation"
    );
    assert!(
        numbers_generation(store).await > n,
        "conformance: an import bumps the numbers generation"
    );
    let ported: Vec<NumberEntry> = (0..25)
        .map(|i| entry(NumberKind::Ported, 999_200_000_000 + i * 7, &b.id))
        .collect();
    ok(store.upsert_numbers(&ported, 1).await, "insert ported");

    // Ranges and ported numbers are separate tables: a number in one is not in the other.
    assert_eq!(ours(store, NumberKind::Range, 1).await, ranges.to_vec());
    assert_eq!(ours(store, NumberKind::Ported, 4).await, ported);
    assert!(
        ok(
            store.count_numbers(NumberKind::Ported).await,
            "count ported"
        ) >= 25
    );

    // An upsert moves a number to another operator; a batch naming an unknown operator
    // changes nothing.
    let moved = entry(NumberKind::Ported, 999_200_000_007, &a.id);
    ok(
        store.upsert_numbers(std::slice::from_ref(&moved), 2).await,
        "move a ported number",
    );
    let bad = [
        entry(NumberKind::Ported, 999_200_000_014, &a.id),
        entry(NumberKind::Ported, 999_299_999_999, "cf-dop-none"),
    ];
    expect_err(
        store.upsert_numbers(&bad, 3).await,
        "batch naming an unknown operator",
        is_not_found,
    );
    let now = ours(store, NumberKind::Ported, 100).await;
    let op_of = |n: u64| {
        now.iter()
            .find(|e| e.number == n)
            .map(|e| e.operator_id.clone())
    };
    assert_eq!(op_of(999_200_000_007), Some(a.id.clone()));
    assert_eq!(
        op_of(999_200_000_014),
        Some(b.id.clone()),
        "conformance: a failed batch is all or nothing"
    );
    assert_eq!(op_of(999_299_999_999), None);

    assert!(ok(
        store
            .delete_number(NumberKind::Ported, 999_200_000_007)
            .await,
        "delete ported"
    ));
    assert!(!ok(
        store
            .delete_number(NumberKind::Ported, 999_200_000_007)
            .await,
        "delete ported again"
    ));
    assert!(!ok(
        store
            .delete_number(NumberKind::Range, 999_200_000_014)
            .await,
        "a ported number is not a range"
    ));
    assert_eq!(ours(store, NumberKind::Ported, 100).await.len(), 24);
}

pub async fn replacing_import(store: &dyn Store) {
    let a = operator("cf-dop-imp", "30");
    ok(store.insert_operator(&a).await, "insert import operator");
    let first: Vec<NumberEntry> = (0..10)
        .map(|i| entry(NumberKind::Range, 9_993_000 + i, &a.id))
        .collect();
    ok(store.upsert_numbers(&first, 100).await, "first import");
    // The second import re-sends half of them; purging keeps exactly its own entries.
    let second: Vec<NumberEntry> = (5..15)
        .map(|i| entry(NumberKind::Range, 9_993_000 + i, &a.id))
        .collect();
    ok(store.upsert_numbers(&second, 200).await, "second import");
    let purged = ok(
        store.purge_numbers_except(NumberKind::Range, 200).await,
        "purge",
    );
    assert!(purged >= 5, "conformance: the stale entries are purged");
    let left: Vec<u64> = ours(store, NumberKind::Range, 1000)
        .await
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(left, (9_993_005..9_993_015).collect::<Vec<u64>>());
}

pub async fn ip_ranges(store: &dyn Store) {
    let a = operator("cf-dop-ip", "40");
    ok(store.insert_operator(&a).await, "insert ip operator");
    let r = IpRangeRecord {
        cidr: "198.51.100.0/24".to_string(),
        operator_id: a.id.clone(),
    };
    ok(store.put_ip_range(&r).await, "put ip range");
    ok(store.put_ip_range(&r).await, "put ip range again");
    let v6 = IpRangeRecord {
        cidr: "2001:db8:99::/48".to_string(),
        operator_id: a.id.clone(),
    };
    ok(store.put_ip_range(&v6).await, "put v6 range");
    expect_err(
        store
            .put_ip_range(&IpRangeRecord {
                cidr: "203.0.113.0/24".to_string(),
                operator_id: "cf-dop-none".to_string(),
            })
            .await,
        "ip range of an unknown operator",
        is_not_found,
    );
    let mine: Vec<IpRangeRecord> = ok(store.list_ip_ranges().await, "list ip ranges")
        .into_iter()
        .filter(|x| x.operator_id == a.id)
        .collect();
    assert_eq!(mine.len(), 2);
    assert!(mine.contains(&r) && mine.contains(&v6));
    assert!(ok(store.delete_ip_range(&r.cidr).await, "delete ip range"));
    assert!(!ok(
        store.delete_ip_range(&r.cidr).await,
        "delete ip range again"
    ));
}

pub async fn deleting_an_operator_removes_what_names_it(store: &dyn Store) {
    let op = operator("cf-dop-del", "50");
    ok(store.insert_operator(&op).await, "insert doomed operator");
    let a = app("cf-dapp-del");
    ok(
        store.insert_discovery_app(&a).await,
        "insert app for deletion",
    );
    let cred = OperatorCredentialRecord {
        app_id: a.client_id.clone(),
        operator_id: op.id.clone(),
        client_id: "c".to_string(),
        client_secret_sealed: vec![1],
        client_name: None,
        updated_at: 1,
    };
    ok(
        store.put_operator_credential(&cred).await,
        "credential at doomed",
    );
    ok(
        store
            .upsert_numbers(
                &[
                    entry(NumberKind::Range, 9_995_000, &op.id),
                    entry(NumberKind::Ported, 999_500_000_001, &op.id),
                ],
                1,
            )
            .await,
        "numbers of doomed",
    );
    ok(
        store
            .put_ip_range(&IpRangeRecord {
                cidr: "192.0.2.0/24".to_string(),
                operator_id: op.id.clone(),
            })
            .await,
        "ip range of doomed",
    );
    let n = numbers_generation(store).await;
    ok(store.delete_operator(&op.id).await, "delete operator");
    assert!(
        numbers_generation(store).await > n,
        "conformance: deleting an operator bumps the numbers generation"
    );
    assert_eq!(ok(store.get_operator(&op.id).await, "get deleted"), None);
    assert_eq!(
        ok(
            store.get_operator_credential(&a.client_id, &op.id).await,
            "credential of deleted operator"
        ),
        None
    );
    for kind in [NumberKind::Range, NumberKind::Ported] {
        assert!(
            !ours(store, kind, 1000)
                .await
                .iter()
                .any(|e| e.operator_id == op.id),
            "conformance: deleting an operator removes its {} entries",
            kind.as_str()
        );
    }
    assert!(
        !ok(store.list_ip_ranges().await, "ip ranges after delete")
            .iter()
            .any(|r| r.operator_id == op.id)
    );
    expect_err(
        store.delete_operator(&op.id).await,
        "delete unknown operator",
        is_not_found,
    );
}
