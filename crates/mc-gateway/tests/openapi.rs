//! The OpenAPI document served at `/admin/v1/openapi.json`: it parses as OpenAPI 3.1, names
//! every admin route (each documented operation exists, and the routes the admin API
//! answers are all documented), and its schemas match what the API really sends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};

/// Every operation the admin API, introspection and revocation serve (method, path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/admin/v1/clients"),
    ("post", "/admin/v1/clients"),
    ("get", "/admin/v1/clients/{id}"),
    ("put", "/admin/v1/clients/{id}"),
    ("patch", "/admin/v1/clients/{id}"),
    ("post", "/admin/v1/clients/{id}/secret"),
    ("get", "/admin/v1/subscribers"),
    ("post", "/admin/v1/subscribers"),
    ("get", "/admin/v1/subscribers/{msisdn}"),
    ("patch", "/admin/v1/subscribers/{msisdn}"),
    ("put", "/admin/v1/subscribers/{msisdn}/pin"),
    ("delete", "/admin/v1/subscribers/{msisdn}/pin"),
    ("put", "/admin/v1/subscribers/{msisdn}/user_code"),
    ("delete", "/admin/v1/subscribers/{msisdn}/user_code"),
    ("get", "/admin/v1/subscribers/{msisdn}/attributes"),
    ("put", "/admin/v1/subscribers/{msisdn}/attributes"),
    ("patch", "/admin/v1/subscribers/{msisdn}/attributes"),
    ("delete", "/admin/v1/subscribers/{msisdn}/attributes"),
    ("post", "/admin/v1/subscribers/{msisdn}/enrolment"),
    ("get", "/admin/v1/subscribers/{msisdn}/devices"),
    ("delete", "/admin/v1/subscribers/{msisdn}/devices/{id}"),
    ("get", "/admin/v1/openapi.json"),
    ("post", "/introspect"),
    ("post", "/revoke"),
];

async fn document(g: &Gateway) -> Value {
    let resp = g
        .http()
        .get(format!("{}/admin/v1/openapi.json", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

/// The properties a schema declares, following one `$ref` into the components.
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    let schema = &doc["components"]["schemas"][name];
    let mut out: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    // `allOf` (a flattened member): the union of the parts.
    for part in schema["allOf"].as_array().into_iter().flatten() {
        if let Some(r) = part["$ref"].as_str() {
            out.extend(properties(doc, r.rsplit('/').next().unwrap()));
        }
        if let Some(p) = part["properties"].as_object() {
            out.extend(p.keys().cloned());
        }
    }
    out
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_names_every_admin_route() {
    let g = Gateway::start().await;
    let doc = document(&g).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["servers"][0]["url"], g.base, "the issuer is the server");
    assert!(doc["info"]["title"].is_string());

    let documented = operations(&doc);
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected, "documented operations");

    // Every `$ref` resolves, and the security schemes the operations name exist.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"").skip(1) {
        let target = r.split('"').next().unwrap();
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {target}"
        );
    }
    let schemes = keys(&doc["components"]["securitySchemes"]);
    assert_eq!(
        schemes,
        ["admin_token", "client"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        assert!(
            op["responses"].is_object(),
            "{method} {path} has no responses"
        );
        if path.starts_with("/admin/v1/") && path != "/admin/v1/openapi.json" {
            assert_eq!(
                op["security"],
                json!([{"admin_token": []}]),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_route_exists_and_undocumented_ones_do_not() {
    let g = Gateway::start().await;
    let doc = document(&g).await;
    let http = g.http();
    for (method, path) in operations(&doc) {
        let url = format!(
            "{}{}",
            g.base,
            path.replace("{id}", "nobody")
                .replace("{msisdn}", "447700900999")
        );
        let req = http.request(method.to_uppercase().parse().unwrap(), &url);
        let status = req.send().await.unwrap().status().as_u16();
        // Without credentials: the route answers (401 for the protected ones, 200 for the
        // document), never 404/405.
        let want: &[u16] = if path == "/admin/v1/openapi.json" {
            &[200]
        } else {
            &[400, 401]
        };
        assert!(want.contains(&status), "{method} {path}: {status}");
    }
    // A route that does not exist is a 404 with the admin token too (the document is
    // complete for what the admin API serves).
    let status = http
        .get(format!("{}/admin/v1/keys-that-do-not-exist", g.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_schemas_match_what_the_api_sends() {
    let g = Gateway::start().await;
    let doc = document(&g).await;
    let http = g.http();
    let admin = |b: reqwest::RequestBuilder| b.bearer_auth(ADMIN_TOKEN);
    // An admin request's JSON answer.
    let answer = |b: reqwest::RequestBuilder| async move {
        admin(b)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };

    let resp = admin(http.post(format!("{}/admin/v1/clients", g.base)))
        .json(&json!({
            "name": "Schema Shop",
            "short_name": "SchemaShop",
            "redirect_uris": ["https://shop.example/cb"],
        }))
        .send()
        .await
        .unwrap();
    // A secret in the answer: never kept by a cache.
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let created: Value = resp.json().await.unwrap();
    assert_eq!(
        keys(&created),
        properties(&doc, "ClientCreated"),
        "{created}"
    );
    let id = created["client_id"].as_str().unwrap();
    let view: Value = answer(http.get(format!("{}/admin/v1/clients/{id}", g.base))).await;
    assert_eq!(keys(&view), properties(&doc, "Client"), "{view}");
    let secret: Value = answer(http.post(format!("{}/admin/v1/clients/{id}/secret", g.base))).await;
    assert_eq!(keys(&secret), properties(&doc, "ClientSecret"));

    let sub: Value = answer(
        http.post(format!("{}/admin/v1/subscribers", g.base))
            .json(&json!({"msisdn": "+447700900777"})),
    )
    .await;
    assert_eq!(keys(&sub), properties(&doc, "Subscriber"), "{sub}");
    // The app devices' routes, with the number typed as the other Provisioning routes take it.
    let resp = admin(http.post(format!(
        "{}/admin/v1/subscribers/+44%207700%20900777/enrolment",
        g.base
    )))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let enrolment: Value = resp.json().await.unwrap();
    assert_eq!(
        keys(&enrolment),
        properties(&doc, "Enrolment"),
        "{enrolment}"
    );
    let devices: Value = answer(http.get(format!(
        "{}/admin/v1/subscribers/447700900777/devices",
        g.base
    )))
    .await;
    assert_eq!(keys(&devices), properties(&doc, "DeviceList"), "{devices}");
    // The request schemas name exactly what the API accepts: every documented member is
    // accepted (no "unknown field"), so the spec drives valid requests.
    assert!(properties(&doc, "SubscriberSpec").contains("attributes"));
    let bad: Value = answer(http.get(format!("{}/admin/v1/clients/nobody", g.base))).await;
    assert!(keys(&bad).is_subset(&properties(&doc, "Error")), "{bad}");
}

/// What schemathesis found where the document and the API disagreed: a JSON array where the
/// document has an object was read as the object (serde fills a struct from a sequence), and
/// the document allowed any text as an MSISDN. Now arrays are refused, unknown members are
/// refused as the document says, and the MSISDN pattern admits exactly what the API does.
#[tokio::test]
async fn bodies_and_numbers_are_checked_as_the_document_says() {
    let g = Gateway::start().await;
    let doc = document(&g).await;
    let schemas = &doc["components"]["schemas"];
    for name in [
        "ClientSpec",
        "ClientPatch",
        "SubscriberSpec",
        "SubscriberPatch",
        "Pin",
    ] {
        assert_eq!(
            schemas[name]["additionalProperties"],
            json!(false),
            "{name} refuses unknown members"
        );
    }
    let admin = |method: reqwest::Method, path: &str, body: Value| {
        g.http()
            .request(method, format!("{}{path}", g.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };

    // Formatting and a leading 00 are accepted (the pattern allows them) ...
    let r = admin(
        reqwest::Method::POST,
        "/admin/v1/subscribers",
        json!({"msisdn": "00 44 (7700) 900-399"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["msisdn"], "447700900399");
    // ... a leading zero after the + is not (nor does the pattern allow it).
    let r = admin(
        reqwest::Method::POST,
        "/admin/v1/subscribers",
        json!({"msisdn": "+0447700900398"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);

    let r = admin(
        reqwest::Method::PATCH,
        "/admin/v1/subscribers/447700900399",
        json!([null, null]),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400, "an array is not a SubscriberPatch");
    let r = admin(
        reqwest::Method::PATCH,
        "/admin/v1/subscribers/447700900399",
        json!({"status": "suspended", "": null}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400, "unknown members are refused");

    let sp = g.sp("ArrayShop", &["openid", "mc_authn"]).await;
    let client: Value = admin(
        reqwest::Method::GET,
        &format!("/admin/v1/clients/{}", sp.client_id),
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut spec = json!({
        "name": client["name"],
        "short_name": client["short_name"],
        "redirect_uris": client["redirect_uris"],
        "scopes": client["scopes"],
        "sector_identifier_uri": "https://arrayshop.example/sector.json",
        "metadata": {},
    });
    let path = format!("/admin/v1/clients/{}", sp.client_id);
    let r = admin(reqwest::Method::PUT, &path, spec.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    spec["metadata"] = json!([null, null]);
    let r = admin(reqwest::Method::PUT, &path, spec).await.unwrap();
    assert_eq!(r.status(), 400, "an array is not the metadata object");
}
