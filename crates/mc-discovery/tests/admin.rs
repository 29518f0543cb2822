//! The admin REST API (`/admin/v1`): bearer token, operators, applications and their
//! credentials, CSV import (errors with line numbers, merge and replace), single numbers,
//! IP ranges — and lookups seeing every change at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_TOKEN, APP_ID, APP_SECRET, REDIRECT, client, start};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn operator_of(svc: &common::Service, msisdn: &str) -> Option<String> {
    let (status, body) =
        send(client().get(svc.url(&format!("/admin/v1/numbers/lookup/{msisdn}")))).await;
    (status == StatusCode::OK).then(|| body["operator"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn admin_needs_the_bearer_token() {
    let svc = start().await;
    for token in [None, Some("wrong")] {
        let mut req = client().get(svc.url("/admin/v1/status"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    }
    let (status, body) = send(client().get(svc.url("/admin/v1/status"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["loaded"]["ported"], 1);
    assert_eq!(body["stored"]["ranges"], 4);
}

#[tokio::test]
async fn csv_import_merges_reports_bad_lines_and_replaces() {
    let svc = start().await;
    let import = |mode: &'static str, csv: &'static str| {
        client()
            .post(svc.url(&format!("/admin/v1/numbers/import?mode={mode}")))
            .header("Content-Type", "text/csv")
            .body(csv)
    };
    // Errors: nothing is written, every bad line is named.
    let (status, body) = send(import(
        "merge",
        "kind,number,operator\nported,447700900301,op-b\nported,123,op-b\nrange,44,op-zzz\n",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let lines: Vec<u64> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4]);
    assert!(
        body["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("unknown operator")
    );
    assert_eq!(
        operator_of(&svc, "447700900301").await.as_deref(),
        Some("op-a")
    );

    // Merge: the new ported number overrides its range at once, the rest stays.
    let (status, body) = send(import(
        "merge",
        "# ported numbers\nported,447700900301,234_30\nrange,4478,op-a\n",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ported"], 1);
    assert_eq!(body["ranges"], 1);
    assert_eq!(
        operator_of(&svc, "447700900301").await.as_deref(),
        Some("op-b")
    );
    assert_eq!(
        operator_of(&svc, "447700900399").await.as_deref(),
        Some("op-b")
    );
    assert_eq!(
        operator_of(&svc, "447812345678").await.as_deref(),
        Some("op-a")
    );

    // Replace (ported only): the file is the whole truth for ported numbers; ranges stay.
    let (status, body) = send(import("replace", "ported,447700900302,op-b\n")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["purged"], 2);
    assert_eq!(
        operator_of(&svc, "447700900301").await.as_deref(),
        Some("op-a")
    );
    assert_eq!(
        operator_of(&svc, "447700900399").await.as_deref(),
        Some("op-a")
    );
    assert_eq!(
        operator_of(&svc, "447700900302").await.as_deref(),
        Some("op-b")
    );
    assert_eq!(
        operator_of(&svc, "447812345678").await.as_deref(),
        Some("op-a")
    );
    assert_eq!(operator_of(&svc, "12025550100").await, None);

    let (status, _) = send(import("sideways", "ported,447700900302,op-b\n")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn operators_numbers_and_ip_ranges_over_rest() {
    let svc = start().await;
    let jwk = svc.op("op-c").jwk();
    let spec = json!({
        "id": "op-d",
        "mcc": "262",
        "mnc": "01",
        "name": "Operator D",
        "country": "Germany",
        "currency": "EUR",
        "links": {
            "authorization": "https://op-d.example/authorize",
            "token": "https://op-d.example/token",
            "issuer": "https://op-d.example",
        },
        "encryption_jwk": jwk,
    });
    let (status, body) = send(client().post(svc.url("/admin/v1/operators")).json(&spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = send(client().post(svc.url("/admin/v1/operators")).json(&spec)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut bad = spec.clone();
    bad["id"] = json!("op-e");
    bad["mcc"] = json!("26");
    let (status, body) = send(client().post(svc.url("/admin/v1/operators")).json(&bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error_description"].as_str().unwrap().contains("mcc"));

    // One range and one ported number, then the application's credentials there.
    let (status, _) = send(
        client()
            .put(svc.url("/admin/v1/numbers/range/49151"))
            .json(&json!({"operator": "op-d"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        operator_of(&svc, "4915112345678").await.as_deref(),
        Some("op-d")
    );
    let (status, _) = send(
        client()
            .put(svc.url("/admin/v1/apps/shop-discovery/credentials/op-d"))
            .json(&json!({"client_id": "at-d", "client_secret": "secret-d"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .form(&[("MSISDN", "4915112345678"), ("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["response"]["serving_operator"], "op-d");
    assert_eq!(body["response"]["client_secret"], "secret-d");
    assert_eq!(
        svc.op("op-c")
            .decrypt(body["subscriber_id"].as_str().unwrap()),
        "4915112345678"
    );

    // IP ranges: host bits must be zero; deleting works by CIDR.
    let (status, _) = send(
        client()
            .post(svc.url("/admin/v1/ip-ranges"))
            .json(&json!({"cidr": "100.64.0.1/10", "operator": "op-d"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(
        client()
            .post(svc.url("/admin/v1/ip-ranges"))
            .json(&json!({"cidr": "100.64.0.0/10", "operator": "op-d"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let resp = client()
        .get(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .header("X-Source-IP", "100.100.1.1")
        .query(&[("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = send(
        client()
            .delete(svc.url("/admin/v1/ip-ranges"))
            .query(&[("cidr", "100.64.0.0/10")]),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Deleting the operator removes its numbers from lookups at once.
    let (status, _) = send(client().delete(svc.url("/admin/v1/operators/op-d"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(operator_of(&svc, "4915112345678").await, None);
    let (status, _) = send(client().delete(svc.url("/admin/v1/numbers/ported/447700900399"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        operator_of(&svc, "447700900399").await.as_deref(),
        Some("op-a")
    );
    let (status, _) = send(client().delete(svc.url("/admin/v1/numbers/ported/447700900399"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn applications_and_their_secrets() {
    let svc = start().await;
    let (status, body) = send(client().post(svc.url("/admin/v1/apps")).json(&json!({
        "name": "Bank",
        "short_name": "Bank",
        "redirect_uris": ["https://bank.example/cb"],
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["client_id"].as_str().unwrap().to_string();
    let secret = body["client_secret"].as_str().unwrap().to_string();
    let discover = |id: String, secret: String| {
        client()
            .get(svc.discovery_url())
            .basic_auth(id, Some(secret))
            .query(&[("Redirect_URL", "https://bank.example/cb")])
            .send()
    };
    assert_eq!(
        discover(id.clone(), secret.clone()).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let (status, body) = send(client().post(svc.url(&format!("/admin/v1/apps/{id}/secret")))).await;
    assert_eq!(status, StatusCode::OK);
    let rotated = body["client_secret"].as_str().unwrap().to_string();
    assert_eq!(
        discover(id.clone(), secret).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        discover(id.clone(), rotated).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let (status, body) = send(client().get(svc.url(&format!("/admin/v1/apps/{APP_ID}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("client_secret").is_none() && !body.to_string().contains("secret-at"));
    assert_eq!(body["credentials"].as_array().unwrap().len(), 3);
    let (status, _) = send(client().post(svc.url("/admin/v1/apps")).json(&json!({
        "name": "Bad",
        "short_name": "Bad",
        "redirect_uris": ["javascript:alert(1)"],
    })))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
