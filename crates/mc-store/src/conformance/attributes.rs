//! Conformance of [`crate::AttributeStore`]: documents round-trip unchanged, replace
//! whole, belong to an existing subscriber, and can be removed.

use serde_json::{Map, Value, json};

use super::{ok, subscriber};
use crate::{AttributesRecord, Store, StoreError};

fn doc(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Runs every attribute contract.
pub async fn run(store: &dyn Store) {
    attribute_documents(store).await;
}

pub async fn attribute_documents(store: &dyn Store) {
    let s = subscriber("cf-attr-1", "+440000009701");
    ok(
        store.insert_subscriber(&s).await,
        "insert attribute subscriber",
    );
    assert_eq!(
        ok(
            store.get_attributes(&s.id).await,
            "get attributes before any"
        ),
        None,
        "conformance: a subscriber without attributes has none"
    );

    let first = AttributesRecord {
        subscriber_id: s.id.clone(),
        attributes: doc(json!({
            "given_name": "Zoë",
            "family_name": "O'Brien",
            "lost_stolen": false,
            "sim_changed_at": 1_700_000_000_i64,
            "nested": {"a": [1, 2, "three"]},
        })),
        updated_at: 1_700_000_500,
    };
    ok(store.put_attributes(&first).await, "put attributes");
    assert_eq!(
        ok(store.get_attributes(&s.id).await, "get attributes"),
        Some(first.clone()),
        "conformance: attributes round-trip unchanged (unicode, numbers, booleans, nesting)"
    );

    // A put replaces the whole document.
    let second = AttributesRecord {
        subscriber_id: s.id.clone(),
        attributes: doc(json!({"email": "zoe@example.com"})),
        updated_at: 1_700_000_600,
    };
    ok(store.put_attributes(&second).await, "replace attributes");
    assert_eq!(
        ok(store.get_attributes(&s.id).await, "get replaced attributes"),
        Some(second.clone()),
        "conformance: put_attributes replaces the document"
    );

    // Attributes of a subscriber that does not exist are refused.
    let orphan = AttributesRecord {
        subscriber_id: "cf-attr-nobody".into(),
        attributes: doc(json!({"email": "x@example.com"})),
        updated_at: 1,
    };
    match store.put_attributes(&orphan).await {
        Err(StoreError::NotFound) => {}
        other => panic!("conformance: attributes of an unknown subscriber: {other:?}"),
    }

    assert!(
        ok(store.delete_attributes(&s.id).await, "delete attributes"),
        "conformance: deleting existing attributes reports true"
    );
    assert!(
        !ok(
            store.delete_attributes(&s.id).await,
            "delete attributes again"
        ),
        "conformance: deleting absent attributes reports false"
    );
    assert_eq!(
        ok(store.get_attributes(&s.id).await, "get deleted attributes"),
        None
    );
}
