//! The admin API's OpenAPI document (`{base}/admin/v1/openapi.json`): it parses as OpenAPI
//! 3.1 with the service's base URL as its server and no secret in it, names every admin
//! route (each documented operation is routed, and the routes the admin API answers are all
//! documented), and what the API really answers — statuses and bodies — is what it says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{ADMIN_TOKEN, APP_ID, APP_SECRET, MASTER, Service, client, start};
use mc_discovery::registry::{AppSpec, CredentialSpec, RELS};
use mc_discovery::{DiscoveryConfig, DiscoveryState};
use reqwest::Method;
use serde_json::{Value, json};

/// Every operation `admin::router` serves, and the document itself (method, path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/admin/v1/status"),
    ("get", "/admin/v1/operators"),
    ("post", "/admin/v1/operators"),
    ("get", "/admin/v1/operators/{id}"),
    ("put", "/admin/v1/operators/{id}"),
    ("delete", "/admin/v1/operators/{id}"),
    ("get", "/admin/v1/apps"),
    ("post", "/admin/v1/apps"),
    ("get", "/admin/v1/apps/{id}"),
    ("put", "/admin/v1/apps/{id}"),
    ("delete", "/admin/v1/apps/{id}"),
    ("post", "/admin/v1/apps/{id}/secret"),
    ("get", "/admin/v1/apps/{id}/credentials"),
    ("put", "/admin/v1/apps/{id}/credentials/{operator}"),
    ("delete", "/admin/v1/apps/{id}/credentials/{operator}"),
    ("post", "/admin/v1/numbers/import"),
    ("get", "/admin/v1/numbers/lookup/{msisdn}"),
    ("put", "/admin/v1/numbers/{kind}/{number}"),
    ("delete", "/admin/v1/numbers/{kind}/{number}"),
    ("get", "/admin/v1/ip-ranges"),
    ("post", "/admin/v1/ip-ranges"),
    ("delete", "/admin/v1/ip-ranges"),
    ("get", "/admin/v1/openapi.json"),
];

const DOC_PATH: &str = "/admin/v1/openapi.json";

async fn document(svc: &Service) -> Value {
    let resp = client().get(svc.url(DOC_PATH)).send().await.unwrap();
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

/// A documented path with its parameters filled by values that name nothing.
fn filled(path: &str) -> String {
    path.replace("{id}", "nobody")
        .replace("{operator}", "nobody")
        .replace("{kind}", "ported")
        .replace("{number}", "447700900998")
        .replace("{msisdn}", "447700900998")
}

fn schema_named<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

fn resolved<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolved(
            doc,
            schema_named(doc, r.strip_prefix("#/components/schemas/").unwrap()),
        ),
        None => schema,
    }
}

/// The properties a schema declares, through `$ref`s and `allOf` parts (a flattened member).
fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let s = resolved(doc, schema);
    let mut out: BTreeSet<String> = s["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in s["allOf"].as_array().into_iter().flatten() {
        out.extend(properties(doc, part));
    }
    out
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What of `v` the schema does not allow: the types, enums, required members and items, and
/// (objects with declared properties) no member the schema does not name, so an answer
/// carries nothing undocumented. Enough of JSON Schema for what utoipa writes.
fn violations(doc: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let s = resolved(doc, schema);
    let mut out = Vec::new();
    for part in s["allOf"].as_array().into_iter().flatten() {
        out.extend(
            violations(doc, part, v, at)
                .into_iter()
                .filter(|e| !e.contains("undocumented member")),
        );
    }
    if let Some(branches) = s["oneOf"].as_array().or(s["anyOf"].as_array())
        && branches
            .iter()
            .all(|b| !violations(doc, b, v, at).is_empty())
    {
        out.push(format!("{at}: {v} matches no branch"));
    }
    let t = json_type(v);
    let allowed: Vec<&str> = match &s["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let fits = allowed.is_empty()
        || allowed.contains(&t)
        || (t == "integer" && allowed.contains(&"number"));
    if !fits {
        out.push(format!("{at}: {t}, the document says {allowed:?}"));
    }
    if let Some(values) = s["enum"].as_array()
        && !values.contains(v)
    {
        out.push(format!("{at}: {v} is not one of {values:?}"));
    }
    if let Value::Object(members) = v {
        for r in s["required"].as_array().into_iter().flatten() {
            if !members.contains_key(r.as_str().unwrap()) {
                out.push(format!("{at}: the required member {r} is missing"));
            }
        }
        let declared = properties(doc, s);
        for (k, m) in members {
            let here = format!("{at}.{k}");
            if let Some(sub) = s["properties"].get(k) {
                out.extend(violations(doc, sub, m, &here));
            } else if s["additionalProperties"].is_object() {
                out.extend(violations(doc, &s["additionalProperties"], m, &here));
            } else if !declared.is_empty() && !declared.contains(k) {
                out.push(format!("{here}: an undocumented member"));
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (v, s.get("items")) {
        for (i, x) in items.iter().enumerate() {
            out.extend(violations(doc, item, x, &format!("{at}[{i}]")));
        }
    }
    out
}

/// Checks one real answer against the document: its status is documented for the
/// operation, and its JSON body (if the document gives one) fits the documented schema.
/// Returns the body.
async fn conforms(doc: &Value, method: &str, path: &str, resp: reqwest::Response) -> Value {
    let status = resp.status().as_u16().to_string();
    let text = resp.text().await.unwrap();
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let documented = &op["responses"][&status];
    assert!(
        documented.is_object(),
        "{method} {path} answered {status}, not documented: {text}"
    );
    let Some(schema) = documented["content"]["application/json"].get("schema") else {
        assert!(text.is_empty(), "{method} {path} {status}: a body: {text}");
        return Value::Null;
    };
    let body: Value = serde_json::from_str(&text).unwrap();
    let wrong = violations(doc, schema, &body, "body");
    assert!(
        wrong.is_empty(),
        "{method} {path} {status}: {wrong:?} in {body}"
    );
    body
}

fn admin(method: Method, url: String) -> reqwest::RequestBuilder {
    client().request(method, url).bearer_auth(ADMIN_TOKEN)
}

#[tokio::test]
async fn the_document_is_openapi_3_1_names_every_admin_route_and_holds_no_secret() {
    let svc = start().await;
    let doc = document(&svc).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["servers"][0]["url"], svc.base,
        "the base URL is the server"
    );
    assert!(doc["info"]["title"].is_string());

    let documented = operations(&doc);
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected, "documented operations");

    // Every `$ref` resolves; the one security scheme is the bearer token, and every
    // operation but the document itself needs it (the document's default) and documents
    // its 401.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"").skip(1) {
        let target = r.split('"').next().unwrap();
        schema_named(&doc, target.strip_prefix("#/components/schemas/").unwrap());
    }
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({"admin_token": {"type": "http", "scheme": "bearer"}})
    );
    assert_eq!(doc["security"], json!([{"admin_token": []}]));
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        if path == DOC_PATH {
            assert_eq!(op["security"], json!([{}]), "the document needs no token");
            continue;
        }
        assert!(op.get("security").is_none(), "{method} {path}");
        assert!(op["responses"]["401"].is_object(), "{method} {path}: 401");
    }

    // No secret: neither the token, nor its hash, nor anything the store holds.
    let hash = mc_discovery::crypto::sha256_hex(ADMIN_TOKEN);
    for secret in [ADMIN_TOKEN, hash.as_str(), APP_SECRET, "secret-at-op-a"] {
        assert!(!text.contains(secret), "the document holds {secret:?}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_one_is() {
    let svc = start().await;
    let doc = document(&svc).await;
    let documented = operations(&doc);
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let url = svc.url(&filled(path));
        for method in ["get", "post", "put", "delete", "patch"] {
            let m: Method = method.to_uppercase().parse().unwrap();
            // Without the token: 401 for what is routed (the document needs none).
            let bare = client().request(m.clone(), &url).send().await.unwrap();
            // With it: a routed operation answers (its own 404 is JSON, the router's is
            // empty), a method that is not routed is 405.
            let resp = admin(m, url.clone()).send().await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            if documented.contains(&(method.to_string(), path.clone())) {
                let want = if path == DOC_PATH { 200 } else { 401 };
                assert_eq!(bare.status().as_u16(), want, "{method} {path}");
                assert_ne!(status, 405, "{method} {path} is not routed");
                assert!(
                    status != 404 || body.contains("not_found"),
                    "{method} {path} is not routed"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is routed: {body}");
            }
        }
    }
    // A path the document does not name is not served.
    let resp = admin(Method::GET, svc.url("/admin/v1/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// The request schemas name exactly the members the API's specs take, and refuse others.
#[tokio::test]
async fn the_request_schemas_are_the_specs_the_api_parses() {
    let svc = start().await;
    let doc = document(&svc).await;
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let operator = serde_json::to_value(svc.op("op-a").spec("A", "United Kingdom", "GBP")).unwrap();
    let app = serde_json::to_value(AppSpec {
        client_id: None,
        name: "n".into(),
        short_name: "s".into(),
        redirect_uris: vec![],
        enabled: true,
    })
    .unwrap();
    let credential = serde_json::to_value(CredentialSpec {
        client_id: "c".into(),
        client_secret: "s".into(),
        client_name: None,
    })
    .unwrap();
    for (name, spec) in [
        ("OperatorSpec", &operator),
        ("AppSpec", &app),
        ("CredentialSpec", &credential),
    ] {
        assert_eq!(properties(&doc, &schema(name)), keys(spec), "{name}");
    }
    let rels: BTreeSet<String> = RELS.iter().map(|r| r.to_string()).collect();
    assert_eq!(properties(&doc, &schema("Links")), rels);
    for name in [
        "OperatorSpec",
        "Links",
        "AppSpec",
        "CredentialSpec",
        "NumberOperator",
        "IpRange",
    ] {
        assert_eq!(
            schema_named(&doc, name)["additionalProperties"],
            json!(false),
            "{name} refuses unknown members"
        );
    }
    // The test operator's spec is a valid OperatorSpec by the document too.
    let wrong = violations(&doc, &schema("OperatorSpec"), &operator, "spec");
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[tokio::test]
async fn answers_are_as_documented() {
    let svc = start().await;
    let doc = document(&svc).await;
    let d = &doc;
    let url = |p: &str| svc.url(p);

    // 401: no token, with the Bearer challenge.
    let resp = client().get(url("/admin/v1/status")).send().await.unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    conforms(d, "get", "/admin/v1/status", resp).await;
    let resp = admin(Method::GET, url("/admin/v1/status"))
        .send()
        .await
        .unwrap();
    let status = conforms(d, "get", "/admin/v1/status", resp).await;
    assert_eq!(status["stored"]["operators"], 4);

    // Operators: create, conflict, invalid, get, list, replace, delete, gone.
    let mut spec =
        serde_json::to_value(svc.op("op-c").spec("Operator D", "Germany", "EUR")).unwrap();
    spec["id"] = json!("op-d");
    spec["mcc"] = json!("262");
    let ops = "/admin/v1/operators";
    let one = "/admin/v1/operators/{id}";
    let resp = admin(Method::POST, url(ops))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created = conforms(d, "post", ops, resp).await;
    assert_eq!(created["mcc"], "262");
    let resp = admin(Method::POST, url(ops))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    conforms(d, "post", ops, resp).await;
    let mut bad = spec.clone();
    bad["mcc"] = json!("26");
    let resp = admin(Method::POST, url(ops))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    conforms(d, "post", ops, resp).await;
    let resp = admin(Method::GET, url("/admin/v1/operators/op-d"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    conforms(d, "get", one, resp).await;
    let resp = admin(Method::GET, url(ops)).send().await.unwrap();
    let list = conforms(d, "get", ops, resp).await;
    assert_eq!(list["operators"].as_array().unwrap().len(), 5);
    spec["name"] = json!("Operator D (renamed)");
    let resp = admin(Method::PUT, url("/admin/v1/operators/op-d"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        conforms(d, "put", one, resp).await["name"],
        "Operator D (renamed)"
    );

    // Applications: create (secret shown once, never cached), rotate, read with credentials.
    let apps = "/admin/v1/apps";
    let resp = admin(Method::POST, url(apps))
        .json(&json!({"name": "Bank", "short_name": "Bank", "redirect_uris": ["https://bank.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let app = conforms(d, "post", apps, resp).await;
    let id = app["client_id"].as_str().unwrap();
    let resp = admin(Method::POST, url(&format!("/admin/v1/apps/{id}/secret")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let rotated = conforms(d, "post", "/admin/v1/apps/{id}/secret", resp).await;
    assert_ne!(rotated["client_secret"], app["client_secret"]);
    let cred = "/admin/v1/apps/{id}/credentials/{operator}";
    let resp = admin(
        Method::PUT,
        url(&format!("/admin/v1/apps/{id}/credentials/op-d")),
    )
    .json(&json!({"client_id": "bank-at-d", "client_secret": "s3cret", "client_name": "Bank"}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 204);
    conforms(d, "put", cred, resp).await;
    let resp = admin(
        Method::PUT,
        url(&format!("/admin/v1/apps/{id}/credentials/op-zz")),
    )
    .json(&json!({"client_id": "bank-at-zz", "client_secret": "s3cret"}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 404, "an unknown operator");
    conforms(d, "put", cred, resp).await;
    let resp = admin(Method::GET, url(&format!("/admin/v1/apps/{id}")))
        .send()
        .await
        .unwrap();
    let detail = conforms(d, "get", "/admin/v1/apps/{id}", resp).await;
    assert_eq!(detail["credentials"][0]["client_id"], "bank-at-d");
    let resp = admin(
        Method::GET,
        url(&format!("/admin/v1/apps/{APP_ID}/credentials")),
    )
    .send()
    .await
    .unwrap();
    conforms(d, "get", "/admin/v1/apps/{id}/credentials", resp).await;
    let resp = admin(Method::GET, url(apps)).send().await.unwrap();
    conforms(d, "get", apps, resp).await;

    // Numbers: import (and a refused one with its lines), lookup, one entry.
    let import = "/admin/v1/numbers/import";
    let resp = admin(Method::POST, url(import))
        .header("content-type", "text/csv")
        .body("kind,number,operator\nrange,49151,op-d\nported,447700900301,262_01\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let report = conforms(d, "post", import, resp).await;
    assert_eq!(
        (report["ranges"].as_u64(), report["ported"].as_u64()),
        (Some(1), Some(1))
    );
    let resp = admin(Method::POST, url(&format!("{import}?mode=replace")))
        .body("range,49151,op-zzz\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let refused = conforms(d, "post", import, resp).await;
    assert_eq!(refused["errors"][0]["line"], 1);
    let lookup = "/admin/v1/numbers/lookup/{msisdn}";
    for (number, status, operator) in [
        ("+447700900301", 200, Some("op-d")),
        ("4915112345678", 200, Some("op-d")),
        ("12025550100", 404, None),
        ("0447700900301", 400, None),
    ] {
        let resp = admin(
            Method::GET,
            url(&format!("/admin/v1/numbers/lookup/{number}")),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), status, "{number}");
        let found = conforms(d, "get", lookup, resp).await;
        if let Some(op) = operator {
            assert_eq!(found["operator"], op);
        }
    }
    let number = "/admin/v1/numbers/{kind}/{number}";
    let resp = admin(Method::PUT, url("/admin/v1/numbers/range/4930"))
        .json(&json!({"operator": "op-d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(conforms(d, "put", number, resp).await["number"], "4930");
    let resp = admin(Method::PUT, url("/admin/v1/numbers/ported/4930"))
        .json(&json!({"operator": "op-d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "too short for a ported number");
    conforms(d, "put", number, resp).await;
    for status in [204, 404] {
        let resp = admin(Method::DELETE, url("/admin/v1/numbers/range/4930"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status);
        conforms(d, "delete", number, resp).await;
    }

    // IP ranges: set (canonical CIDR back), list, delete by any spelling.
    let ranges = "/admin/v1/ip-ranges";
    let resp = admin(Method::POST, url(ranges))
        .json(&json!({"cidr": "2001:db8:0::/32", "operator": "op-d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        conforms(d, "post", ranges, resp).await["cidr"],
        "2001:db8::/32"
    );
    let resp = admin(Method::GET, url(ranges)).send().await.unwrap();
    conforms(d, "get", ranges, resp).await;
    let resp = admin(Method::DELETE, url(ranges))
        .query(&[("cidr", "2001:0db8::/32")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    conforms(d, "delete", ranges, resp).await;

    // Deleting the operator; then it is gone.
    let resp = admin(Method::DELETE, url("/admin/v1/operators/op-d"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    conforms(d, "delete", one, resp).await;
    let resp = admin(Method::GET, url("/admin/v1/operators/op-d"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    conforms(d, "get", one, resp).await;
}

/// Where the API and its document disagreed: a JSON array was read as the object the
/// document asks for (serde fills a struct from a sequence), and a missing or repeated query
/// parameter or a path segment that is not UTF-8 was answered with axum's plain-text 400.
/// Now each is this API's JSON 400.
#[tokio::test]
async fn malformed_requests_are_json_400s() {
    let svc = start().await;
    let doc = document(&svc).await;
    let resp = admin(Method::PUT, svc.url("/admin/v1/numbers/range/4930"))
        .json(&json!(["op-a"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "an array is not a NumberOperator");
    conforms(&doc, "put", "/admin/v1/numbers/{kind}/{number}", resp).await;
    let resp = admin(Method::DELETE, svc.url("/admin/v1/ip-ranges"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "no cidr");
    conforms(&doc, "delete", "/admin/v1/ip-ranges", resp).await;
    let resp = admin(Method::GET, svc.url("/admin/v1/operators/%FF"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "not UTF-8");
    conforms(&doc, "get", "/admin/v1/operators/{id}", resp).await;
    let resp = admin(
        Method::POST,
        svc.url("/admin/v1/numbers/import?mode=merge&mode=replace"),
    )
    .body("")
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400, "mode twice");
    conforms(&doc, "post", "/admin/v1/numbers/import", resp).await;
}

/// What schemathesis found: an import without a body (the document requires one) was an
/// import of nothing, 200; a replacing `PUT /operators/{id}` took a spec whose own `id`
/// the document refuses, since the path's id wins. Both are 400 now.
#[tokio::test]
async fn an_empty_import_and_a_bad_spec_id_are_refused() {
    let svc = start().await;
    let doc = document(&svc).await;
    let import = "/admin/v1/numbers/import";
    let resp = admin(Method::POST, svc.url(import)).send().await.unwrap();
    assert_eq!(resp.status(), 400, "no body");
    conforms(&doc, "post", import, resp).await;
    // A file with nothing but its header is still an import (of nothing).
    let resp = admin(Method::POST, svc.url(import))
        .body("kind,number,operator\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    conforms(&doc, "post", import, resp).await;

    let one = "/admin/v1/operators/{id}";
    let mut spec = serde_json::to_value(svc.op("op-a").spec("A", "United Kingdom", "GBP")).unwrap();
    spec["id"] = json!("");
    let resp = admin(Method::PUT, svc.url("/admin/v1/operators/op-a"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "an id the document refuses");
    conforms(&doc, "put", one, resp).await;
    spec["id"] = json!("another-id");
    let resp = admin(Method::PUT, svc.url("/admin/v1/operators/op-a"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "a valid id: the path's wins");
    assert_eq!(conforms(&doc, "put", one, resp).await["id"], "op-a");
}

/// Without `admin_token_sha256` there is no admin API, and no document of it.
#[tokio::test]
async fn no_document_without_the_admin_api() {
    let svc = start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = DiscoveryState::new(
        svc.store.clone(),
        DiscoveryConfig::new(base.clone()),
        &MASTER,
    )
    .unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, mc_discovery::router(state)).await;
    });
    let resp = client()
        .get(format!("{base}{DOC_PATH}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    server.abort();
}

/// Under a path (`/discovery`, as in the sandbox) the document is there, naming the full
/// base URL as its server.
#[tokio::test]
async fn under_a_path_the_server_is_the_base_url() {
    let svc = common::start_at("/discovery").await;
    assert!(svc.base.ends_with("/discovery"));
    let doc = document(&svc).await;
    assert_eq!(doc["servers"][0]["url"], svc.base);
}

/// The checker above finds what it is there to find (a wrong type, a missing member, an
/// undocumented one, a value outside an enum), also through a flattened (`allOf`) schema.
#[tokio::test]
async fn the_answer_checker_catches_mismatches() {
    let svc = start().await;
    let doc = document(&svc).await;
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let app = json!({
        "client_id": "a", "name": "n", "short_name": "s", "redirect_uris": [],
        "enabled": true, "created_at": 1, "client_secret": "x",
    });
    assert!(violations(&doc, &schema("AppCreated"), &app, "b").is_empty());
    for (name, wrong) in [
        ("Error", json!({"error": 1})),
        ("Error", json!({"error_description": "no error member"})),
        ("Error", json!({"error": "e", "extra": true})),
        (
            "Lookup",
            json!({"operator": "o", "mcc_mnc": "1_2", "match": "sideways"}),
        ),
        ("AppCreated", json!({"client_secret": "x"})),
        ("AppCreated", {
            let mut a = app.clone();
            a["secret_hash"] = json!("h");
            a
        }),
    ] {
        assert!(
            !violations(&doc, &schema(name), &wrong, "b").is_empty(),
            "{name}: {wrong}"
        );
    }
}
