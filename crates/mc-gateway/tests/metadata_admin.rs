//! Provider metadata and JWKS (digest §3, §6.2) and the `/admin/v1` Registry/Provisioning
//! REST API: every Mobile Connect key, issuer and endpoints from the configuration, public
//! keys only; the admin API's lifecycle, validation messages, 401/404/409, and that no
//! secret or PIN hash ever leaves it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use common::*;
use flows::*;
use serde_json::{Value, json};

const MSISDN: &str = "447700900301";

async fn get_json(g: &Gateway, path: &str) -> (u16, Value) {
    let resp = g
        .http()
        .get(format!("{}{path}", g.base))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{path}"
    );
    (status, resp.json().await.unwrap())
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn metadata_has_every_mobile_connect_key_and_endpoints_under_the_issuer() {
    let g = Gateway::start().await;
    let (status, m) = get_json(&g, "/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    assert_eq!(
        m["issuer"], g.base,
        "issuer is the configured base URL, byte for byte"
    );
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(m[key], format!("{}{path}", g.base), "{key}");
    }
    let versions = strings(&m["mc_version"]);
    for v in ["mc_v1.1", "mc_di_r2_v2.3"] {
        assert!(versions.contains(&v), "mc_version lacks {v}: {versions:?}");
    }
    // The SI endpoint is on by default, so its version is published too (RUGW does the same).
    assert!(versions.contains(&"mc_si_r2_v1.0"), "{versions:?}");
    assert_eq!(
        m["si_authorization_endpoint"],
        format!("{}/si-authorize", g.base)
    );
    assert_eq!(
        m["backchannel_authentication_endpoint"],
        format!("{}/bc-authorize", g.base)
    );
    let supported = m["mobile_connect_version_supported"].as_array().unwrap();
    assert!(supported.contains(&json!({"openid": "mc_v1.1"})));
    assert!(supported.contains(&json!({"openid mc_authn": "mc_di_r2_v2.3"})));
    assert!(supported.contains(&json!({"openid mc_authz": "mc_di_r2_v2.3"})));
    let hints = strings(&m["login_hint_methods_supported"]);
    for h in ["MSISDN", "ENCR_MSISDN", "ENCRYPTED_MSISDN", "PCR"] {
        assert!(hints.contains(&h), "login_hint_methods_supported lacks {h}");
    }
    assert_eq!(m["acr_values_supported"], json!(["2", "3"]));
    let scopes = strings(&m["scopes_supported"]);
    for s in ["openid", "mc_authn", "mc_authz", "mc_identity_phonenumber"] {
        assert!(scopes.contains(&s), "scopes_supported lacks {s}");
    }
    assert!(
        !scopes.contains(&"mc_atp"),
        "mc_atp is refused on the front channel"
    );
    assert!(strings(&m["subject_types_supported"]).contains(&"pairwise"));
    let amr = strings(&m["mc_amr_values_supported"]);
    assert!(
        amr.contains(&"PUSH_OK") && amr.contains(&"PUSH_PIN"),
        "{amr:?}"
    );
    assert_eq!(m["claims_parameter_supported"], true);
    assert_eq!(m["request_parameter_supported"], false);
    // `mc_si_async_code` is listed because the SI endpoint is on by default.
    assert_eq!(
        m["response_types_supported"],
        json!(["code", "mc_si_async_code"])
    );
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["id_token_signing_alg_values_supported"], json!(["RS256"]));
    let auth = strings(&m["token_endpoint_auth_methods_supported"]);
    assert!(auth.contains(&"client_secret_basic") && auth.contains(&"client_secret_post"));

    // The advertised endpoints are the served ones.
    let http = g.http();
    let jwks = http
        .get(m["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    let userinfo = http
        .get(m["userinfo_endpoint"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
    let token = http
        .post(m["token_endpoint"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 400);
    let authorize = http
        .get(m["authorization_endpoint"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        authorize.status(),
        400,
        "an empty request is a page, not a 404"
    );
}

#[tokio::test]
async fn jwks_publishes_a_signing_key_and_an_encryption_key_and_nothing_private() {
    let g = Gateway::start().await;
    let (status, jwks) = get_json(&g, "/jwks").await;
    assert_eq!(status, 200);
    let keys = jwks["keys"].as_array().unwrap();
    let sig: Vec<&Value> = keys.iter().filter(|k| k["use"] == "sig").collect();
    let enc: Vec<&Value> = keys.iter().filter(|k| k["use"] == "enc").collect();
    assert_eq!(sig.len(), 1, "{jwks}");
    assert_eq!(enc.len(), 1, "{jwks}");
    let (sig, enc) = (sig[0], enc[0]);
    assert_eq!(sig["alg"], "RS256");
    assert_eq!(sig["kty"], "RSA");
    assert!(sig["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(enc["kty"], "RSA");
    assert!(enc["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(
        enc.get("alg").is_none(),
        "the enc key carries no alg (docs/decisions.md, ENCR_MSISDN)"
    );
    assert_ne!(sig["kid"], enc["kid"]);
    for k in keys {
        assert!(k["n"].is_string() && k["e"].is_string(), "{k}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
            assert!(k.get(private).is_none(), "private member {private} in {k}");
        }
    }
    // The keys survive a restart over the same database.
    let dir = g.dir.clone();
    drop(g);
    let g = Gateway::start_in(dir, |_| {}).await;
    let (_, again) = get_json(&g, "/jwks").await;
    assert_eq!(again, jwks);
}

#[tokio::test]
async fn metadata_and_tokens_follow_the_configured_issuer() {
    for (issuer, base, prefix) in [
        (
            "https://id.operator.example/mc",
            "https://id.operator.example/mc",
            "/mc",
        ),
        (
            "https://id.operator.example/",
            "https://id.operator.example",
            "",
        ),
    ] {
        let g = Gateway::start_with(|c| c.issuer = issuer.to_owned()).await;
        // Every route lives under the issuer's path.
        let (_, m) = get_json(&g, &format!("{prefix}/.well-known/openid-configuration")).await;
        assert_eq!(m["issuer"], issuer, "exactly as configured");
        assert_eq!(m["authorization_endpoint"], format!("{base}/authorize"));
        assert_eq!(m["token_endpoint"], format!("{base}/token"));
        assert_eq!(m["userinfo_endpoint"], format!("{base}/userinfo"));
        assert_eq!(m["jwks_uri"], format!("{base}/jwks"));
        // Only app_push exists today and it reaches LoA3, so the advertised levels do not
        // change with the authenticator list yet.
        assert_eq!(m["acr_values_supported"], json!(["2", "3"]));

        if !prefix.is_empty() {
            let root = g
                .http()
                .get(format!("{}/.well-known/openid-configuration", g.base))
                .send()
                .await
                .unwrap();
            assert_eq!(
                root.status(),
                404,
                "nothing is served outside the issuer's path"
            );
            let jwks = g
                .http()
                .get(format!("{}{prefix}/jwks", g.base))
                .send()
                .await
                .unwrap();
            assert_eq!(jwks.status(), 200);
            continue;
        }
        // The id_token's iss is the same string.
        let sp = g.shop().await;
        g.subscriber(MSISDN, None).await;
        let code = code_for(&g, &sp, MSISDN, |_| {}).await;
        let tokens = redeem(&g, &sp, &code).await;
        assert_eq!(
            jwt_claims(tokens["id_token"].as_str().unwrap())["iss"],
            issuer
        );
    }
}

// ---------------------------------------------------------------- admin API

/// A client for `/admin/v1` that remembers every body it saw, to check that no hash leaks.
struct Admin<'a> {
    g: &'a Gateway,
    seen: std::cell::RefCell<Vec<String>>,
}

impl<'a> Admin<'a> {
    fn new(g: &'a Gateway) -> Self {
        Admin {
            g,
            seen: Default::default(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(Some(ADMIN_TOKEN), method, path, body.map(|b| b.to_string()))
            .await
    }

    async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.g.http().request(
            method.parse().unwrap(),
            format!("{}/admin/v1{path}", self.g.base),
        );
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        self.seen.borrow_mut().push(text.clone());
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {text}"))
        };
        (status, v)
    }

    /// No response so far carried a secret hash or a PIN hash.
    fn assert_no_hashes(&self) {
        for body in self.seen.borrow().iter() {
            for needle in ["argon2", "pin_hash", "secret_hash", "sha256:", "$v=19"] {
                assert!(!body.contains(needle), "{needle} in {body}");
            }
        }
    }
}

fn client_spec(g: &Gateway, name: &str) -> Value {
    json!({
        "name": format!("{name} Ltd"),
        "short_name": name,
        "redirect_uris": [format!("http://127.0.0.1:{}/cb/{name}", g.addr.port())],
        "scopes": ["openid", "mc_authn"],
    })
}

/// The SP as the harness helpers want it, from an admin-created client.
fn sp_of(created: &Value, secret: &str) -> Sp {
    Sp {
        client_id: created["client_id"].as_str().unwrap().to_owned(),
        secret: secret.to_owned(),
        redirect_uri: created["redirect_uris"][0].as_str().unwrap().to_owned(),
        short_name: created["short_name"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn admin_api_requires_the_admin_bearer_token() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let admin = Admin::new(&g);
    let routes = [
        ("GET", "/clients".to_owned()),
        ("POST", "/clients".to_owned()),
        ("GET", format!("/clients/{}", sp.client_id)),
        ("PUT", format!("/clients/{}", sp.client_id)),
        ("PATCH", format!("/clients/{}", sp.client_id)),
        ("POST", format!("/clients/{}/secret", sp.client_id)),
        ("GET", "/clients/no-such-client".to_owned()),
        ("GET", "/subscribers".to_owned()),
        ("POST", "/subscribers".to_owned()),
        ("GET", format!("/subscribers/{MSISDN}")),
        ("PATCH", format!("/subscribers/{MSISDN}")),
        ("PUT", format!("/subscribers/{MSISDN}/pin")),
        ("DELETE", format!("/subscribers/{MSISDN}/pin")),
    ];
    for (method, path) in &routes {
        for token in [
            None,
            Some("wrong-token"),
            Some(""),
            Some("test-admin-toke"),
            Some("test-admin-token-2"),
        ] {
            let resp = {
                let mut req = g.http().request(
                    method.parse().unwrap(),
                    format!("{}/admin/v1{path}", g.base),
                );
                if let Some(t) = token {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                req.header("content-type", "application/json")
                    .body(r#"{"status":"disabled","pin":"0000"}"#)
                    .send()
                    .await
                    .unwrap()
            };
            assert_eq!(resp.status(), 401, "{method} {path} with {token:?}");
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        }
        // The admin token is not Basic credentials either.
        let resp = g
            .http()
            .request(
                method.parse().unwrap(),
                format!("{}/admin/v1{path}", g.base),
            )
            .header("authorization", basic("admin", ADMIN_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{method} {path} with Basic");
    }
    // Nothing changed.
    let client = g.store().get_client(&sp.client_id).await.unwrap().unwrap();
    assert_eq!(client.status, mc_store::ClientStatus::Active);
    let (status, list) = admin.call("GET", "/subscribers", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["pin_set"], false);
    admin.assert_no_hashes();
}

#[tokio::test]
async fn admin_client_lifecycle_create_list_get_put_disable_rotate() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let admin = Admin::new(&g);

    // Create (generated id) and create (chosen id).
    let (status, created) = admin
        .call("POST", "/clients", Some(client_spec(&g, "Shop")))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "256-bit secret: {secret}");
    assert_eq!(created["status"], "active");
    assert_eq!(created["grant_types"], json!(["authorization_code"]));
    let mut chosen = client_spec(&g, "Books");
    chosen["client_id"] = json!("books-1");
    let (status, books) = admin.call("POST", "/clients", Some(chosen.clone())).await;
    assert_eq!(status, 201, "{books}");
    assert_eq!(books["client_id"], "books-1");
    let (status, dup) = admin.call("POST", "/clients", Some(chosen)).await;
    assert_eq!(status, 409, "{dup}");
    assert_eq!(dup["error"], "conflict");

    // List and get (no secret shown again).
    let (status, list) = admin.call("GET", "/clients", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&"books-1"),
        "{ids:?}"
    );
    let (status, got) = admin.call("GET", &format!("/clients/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "Shop Ltd");
    assert!(got.get("client_secret").is_none());
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("client_secret").is_none())
    );

    // The secret works at /token.
    let sp = sp_of(&created, &secret);
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    redeem(&g, &sp, &code).await;

    // PUT replaces the registration (not the id, secret or creation time).
    let mut spec = client_spec(&g, "Shop");
    spec["name"] = json!("Shop Renamed Ltd");
    spec["scopes"] = json!(["openid", "mc_authn", "mc_authz"]);
    let (status, put) = admin
        .call("PUT", &format!("/clients/{id}"), Some(spec))
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["client_id"], id);
    assert_eq!(put["created_at"], created["created_at"]);
    let (_, got) = admin.call("GET", &format!("/clients/{id}"), None).await;
    assert_eq!(got["name"], "Shop Renamed Ltd");
    assert!(strings(&got["scopes"]).contains(&"mc_authz"));

    // PATCH disables: /authorize refuses by redirect and /token refuses the client.
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let (status, patched) = admin
        .call(
            "PATCH",
            &format!("/clients/{id}"),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["status"], "disabled");
    let resp = g
        .http()
        .get(Q::valid(&sp, MSISDN).url(&g))
        .send()
        .await
        .unwrap();
    let loc = location(&g.base, &resp).unwrap();
    assert_eq!(
        error_of(&loc),
        (
            "access_denied".into(),
            "The client is not allowed to make MC service requests".into()
        )
    );
    let resp = post_token(
        &g,
        Some((&id, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &sp.redirect_uri),
        ],
    )
    .await;
    assert_eq!(resp.status(), 401, "a disabled client cannot redeem");
    let (status, _) = admin
        .call(
            "PATCH",
            &format!("/clients/{id}"),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, 200);
    // Its code was not consumed by the refused attempt.
    redeem(&g, &sp, &code).await;

    // Rotation: the old secret stops working at once, the new one works.
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let (status, rotated) = admin
        .call("POST", &format!("/clients/{id}/secret"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(rotated["client_id"], id);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", sp.redirect_uri.as_str()),
    ];
    let resp = post_token(&g, Some((&id, &secret)), &form).await;
    assert_eq!(resp.status(), 401, "old secret after rotation");
    let resp = post_token(&g, Some((&id, &new_secret)), &form).await;
    assert_eq!(resp.status(), 200, "new secret");

    // Unknown ids.
    for (method, path, body) in [
        ("GET", "/clients/nope", None),
        ("PUT", "/clients/nope", Some(client_spec(&g, "Nope"))),
        (
            "PATCH",
            "/clients/nope",
            Some(json!({"status": "disabled"})),
        ),
        ("POST", "/clients/nope/secret", None),
    ] {
        let (status, v) = admin.call(method, path, body).await;
        assert_eq!(status, 404, "{method} {path}: {v}");
        assert_eq!(v["error"], "not_found");
    }
    admin.assert_no_hashes();
}

#[tokio::test]
async fn admin_rejects_invalid_client_bodies_with_a_message_naming_the_field() {
    let g = Gateway::start().await;
    let admin = Admin::new(&g);
    let base = client_spec(&g, "Shop");
    let with = |k: &str, v: Value| {
        let mut s = base.clone();
        s[k] = v;
        s
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "plain http off loopback",
            with("redirect_uris", json!(["http://shop.example/cb"])),
            "redirect_uris",
        ),
        (
            "not a URI",
            with("redirect_uris", json!(["not a uri"])),
            "redirect_uris",
        ),
        (
            "relative URI",
            with("redirect_uris", json!(["/cb"])),
            "redirect_uris",
        ),
        (
            "URI with a fragment",
            with("redirect_uris", json!(["https://shop.example/cb#x"])),
            "redirect_uris",
        ),
        (
            "no redirect URI",
            with("redirect_uris", json!([])),
            "redirect_uris",
        ),
        (
            "hosts without sector_identifier_uri",
            with(
                "redirect_uris",
                json!(["https://a.example/cb", "https://b.example/cb"]),
            ),
            "sector_identifier_uri",
        ),
        (
            "unknown scope",
            with("scopes", json!(["openid", "mc_bogus"])),
            "scopes",
        ),
        (
            "scopes without openid",
            with("scopes", json!(["mc_authn"])),
            "scopes",
        ),
        ("empty name", with("name", json!(" ")), "name"),
        (
            "empty short_name",
            with("short_name", json!("")),
            "short_name",
        ),
        (
            "control character in short_name",
            with("short_name", json!("Sh\u{7}op")),
            "short_name",
        ),
        (
            "client_id with a space",
            with("client_id", json!("a b")),
            "client_id",
        ),
        ("unknown field", with("colour", json!("blue")), "colour"),
        (
            "wrong type",
            with("redirect_uris", json!("https://x.example/cb")),
            "body",
        ),
    ];
    for (what, spec, field) in &cases {
        for (method, path) in [("POST", "/clients"), ("PUT", "/clients/any")] {
            if *field == "client_id" && method == "PUT" {
                continue;
            }
            let (status, v) = admin.call(method, path, Some(spec.clone())).await;
            assert_eq!(status, 400, "{what} ({method}): {v}");
            assert_eq!(v["error"], "invalid_request", "{what}");
            let d = v["error_description"].as_str().unwrap_or_default();
            assert!(
                d.contains(field),
                "{what} ({method}): {d:?} should name {field}"
            );
        }
    }
    // Bodies that are not the JSON asked for.
    for body in ["", "{", "[]", "null", "{\"status\":1}"] {
        let (status, v) = admin
            .call_as(Some(ADMIN_TOKEN), "POST", "/clients", Some(body.into()))
            .await;
        assert_eq!(status, 400, "{body:?}: {v}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .starts_with("body:")
        );
    }
    let (status, v) = admin
        .call("PATCH", "/clients/any", Some(json!({"status": "paused"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error_description"], "status: active or disabled");
    let (_, list) = admin.call("GET", "/clients", None).await;
    assert_eq!(list, json!([]), "nothing was registered");
}

#[tokio::test]
async fn admin_subscriber_lifecycle_suspend_pin_and_validation() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    let admin = Admin::new(&g);
    const NEW: &str = "447700900401";

    let (status, created) = admin
        .call(
            "POST",
            "/subscribers",
            Some(json!({"msisdn": format!("+{NEW}"), "pin": "2468"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["msisdn"], NEW);
    assert_eq!(created["status"], "active");
    assert_eq!(created["pin_set"], true);
    assert_eq!(created["pin_locked"], false);
    assert_eq!(created["capabilities"], json!(["app_push"]));
    assert!(created.get("pin").is_none());
    let (status, dup) = admin
        .call("POST", "/subscribers", Some(json!({"msisdn": NEW})))
        .await;
    assert_eq!(status, 409, "{dup}");
    let (status, _) = admin
        .call("POST", "/subscribers", Some(json!({"msisdn": MSISDN})))
        .await;
    assert_eq!(status, 201);

    let (status, list) = admin.call("GET", "/subscribers", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, got) = admin
        .call("GET", &format!("/subscribers/{NEW}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], created["id"]);

    // Suspend (stolen phone): logins get the unknown-user answer; reactivate: they work.
    let (status, patched) = admin
        .call(
            "PATCH",
            &format!("/subscribers/{MSISDN}"),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["status"], "suspended");
    let resp = g
        .http()
        .get(Q::valid(&sp, MSISDN).url(&g))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(&location(&g.base, &resp).unwrap()),
        ("access_denied".into(), "Unknown Mobile Connect User".into())
    );
    let (status, _) = admin
        .call(
            "PATCH",
            &format!("/subscribers/{MSISDN}"),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, 200);
    code_for(&g, &sp, MSISDN, |_| {}).await;

    // PIN: set (LoA3 then works with it), clear (LoA3 is then unavailable).
    let (status, v) = admin
        .call(
            "PUT",
            &format!("/subscribers/{MSISDN}/pin"),
            Some(json!({"pin": "1357"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["pin_set"], true);
    let mut q = Q::valid(&sp, MSISDN);
    q.set("acr_values", "3");
    let phone = g.phone(MSISDN);
    let answer = tokio::spawn(async move { phone.approve_next_with_pin("1357").await });
    let back = follow_to_redirect_uri(&g, &q.url(&g), &sp.redirect_uri).await;
    let (challenge, outcome) = answer.await.unwrap();
    assert_eq!(challenge.loa, "3");
    assert_eq!(outcome, mc_authn::answer::AnswerOutcome::Approved);
    assert!(query_of(&back).contains_key("code"));
    let (status, v) = admin
        .call("DELETE", &format!("/subscribers/{MSISDN}/pin"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["pin_set"], false);
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    assert_eq!(
        error_of(&location(&g.base, &resp).unwrap()).1,
        "The requested level of assurance cannot be provided for this user"
    );

    // Validation, with the field named.
    let (new_path, new_pin) = (
        format!("/subscribers/{NEW}"),
        format!("/subscribers/{NEW}/pin"),
    );
    let bad: Vec<(&str, &str, Value, &str)> = vec![
        ("POST", "/subscribers", json!({"msisdn": "abc"}), "msisdn"),
        (
            "POST",
            "/subscribers",
            json!({"msisdn": "+0123456789"}),
            "msisdn",
        ),
        ("POST", "/subscribers", json!({"msisdn": "12"}), "msisdn"),
        (
            "POST",
            "/subscribers",
            json!({"msisdn": "447700900402", "pin": "12"}),
            "pin",
        ),
        (
            "POST",
            "/subscribers",
            json!({"msisdn": "447700900402", "pin": "abcd"}),
            "pin",
        ),
        (
            "POST",
            "/subscribers",
            json!({"msisdn": "447700900402", "pin": "123456789"}),
            "pin",
        ),
        (
            "POST",
            "/subscribers",
            json!({"msisdn": "447700900402", "capabilities": ["carrier_pigeon"]}),
            "capabilities",
        ),
        (
            "POST",
            "/subscribers",
            json!({"msisdn": "447700900402", "colour": 1}),
            "colour",
        ),
        ("PUT", &new_pin, json!({"pin": "1"}), "pin"),
        ("PUT", &new_pin, json!({"pin": "12a4"}), "pin"),
        ("PATCH", &new_path, json!({"status": "stolen"}), "body"),
        (
            "PATCH",
            &new_path,
            json!({"capabilities": ["fax"]}),
            "capabilities",
        ),
        ("GET", "/subscribers/abc", Value::Null, "msisdn"),
    ];
    for (method, path, body, field) in bad {
        let body = (!body.is_null()).then_some(body);
        let (status, v) = admin.call(method, path, body).await;
        assert_eq!(status, 400, "{method} {path}: {v}");
        let d = v["error_description"].as_str().unwrap_or_default();
        assert!(
            d.contains(field),
            "{method} {path}: {d:?} should name {field}"
        );
    }
    let (_, list) = admin.call("GET", "/subscribers", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "nothing was provisioned");

    // Unknown numbers.
    for (method, path, body) in [
        ("GET", "/subscribers/447700900499", None),
        (
            "PATCH",
            "/subscribers/447700900499",
            Some(json!({"status": "suspended"})),
        ),
        (
            "PUT",
            "/subscribers/447700900499/pin",
            Some(json!({"pin": "1234"})),
        ),
        ("DELETE", "/subscribers/447700900499/pin", None),
    ] {
        let (status, v) = admin.call(method, path, body).await;
        assert_eq!(status, 404, "{method} {path}: {v}");
    }
    admin.assert_no_hashes();
}

#[tokio::test]
async fn admin_routes_are_absent_without_a_configured_token() {
    let g = Gateway::start_with(|c| c.admin.token_sha256 = None).await;
    g.shop().await;
    for (method, path) in [
        ("GET", "/clients"),
        ("POST", "/clients"),
        ("GET", "/subscribers"),
        ("POST", "/subscribers"),
        ("PUT", "/subscribers/447700900301/pin"),
    ] {
        let resp = g
            .http()
            .request(
                method.parse().unwrap(),
                format!("{}/admin/v1{path}", g.base),
            )
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(r#"{"msisdn":"447700900301"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    // The rest of the gateway is unaffected.
    let (status, _) = get_json(&g, "/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
}

/// RFC 9110 §11.1: the authentication scheme is case-insensitive. `/token` (`Basic`) and
/// `/userinfo` (`Bearer`) honour that; the admin API should too.
#[tokio::test]
async fn admin_bearer_scheme_is_case_insensitive() {
    let g = Gateway::start().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let resp = g
            .http()
            .get(format!("{}/admin/v1/clients", g.base))
            .header("authorization", format!("{scheme} {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "scheme {scheme:?}");
    }
}
