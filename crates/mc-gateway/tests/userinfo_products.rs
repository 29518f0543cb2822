#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `/userinfo` and `/premiuminfo` (digest §8.1–§8.2): the claim set of every scope — the
//! OIDC scopes of `mc_v1.1` and the identity products of `mc_v2.0`+ under their v2 and
//! `mc_di_v3.0` names — from attributes provisioned through the admin API; the `claims`
//! request parameter (`essential`, `value`, `values`); a signed userinfo JWT verified
//! against `/jwks`; metadata.

mod common;
mod flows;

use std::collections::BTreeSet;

use common::*;
use flows::*;
use mc_store::ClientMetadata;
use serde_json::{Value, json};

const MSISDN: &str = "447700900301";

/// Every identity attribute, plus provisioning facts that must never be released.
fn attributes() -> Value {
    json!({
        "title": "Mr", "given_name": "David", "middle_name": "Andrew", "family_name": "Smith",
        "nickname": "Dave", "gender": "male", "birthdate": "1990-11-04", "locale": "en-GB",
        "zoneinfo": "Europe/London", "email": "test@test.com", "email_verified": true,
        "phone_number_alternate": "447700100100", "houseno_or_housename": "123",
        "street_address": "Fake Street", "city": "Manchester", "state": "Greater Manchester",
        "postal_code": "M1 1AB", "country": "England", "national_identifier": "QQ123456C",
        "national_identifier_authority": "HMRC", "sim_changed_at": "2026-01-01T00:00:00Z",
        "lost_stolen": false, "account_state": "active",
    })
}

const ALL_SCOPES: &[&str] = &[
    "openid",
    "mc_authn",
    "profile",
    "email",
    "address",
    "phone",
    "mc_identity_phonenumber",
    "mc_identity_signup",
    "mc_identity_signupplus",
    "mc_identity_nationalid",
    "mc_phonenumber",
    "mc_signup",
    "mc_nationalid",
];

/// `PUT /admin/v1/subscribers/{msisdn}/attributes`.
async fn provision(g: &Gateway, msisdn: &str, doc: &Value) -> (u16, Value) {
    let resp = g
        .http()
        .put(format!(
            "{}/admin/v1/subscribers/{msisdn}/attributes",
            g.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(doc)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn setup(scopes: &[&str]) -> (Gateway, Sp) {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let sp = g.sp("Shop", scopes).await;
    let (status, _) = provision(&g, MSISDN, &attributes()).await;
    assert_eq!(status, 200);
    (g, sp)
}

/// A token for `scope` (with `version` and an optional `claims` parameter).
async fn token(
    g: &Gateway,
    sp: &Sp,
    scope: &str,
    version: Option<&str>,
    claims: Option<&str>,
) -> String {
    let code = code_for(g, sp, MSISDN, |q| {
        q.set("scope", scope);
        match version {
            Some(v) => q.set("version", v),
            None => q.del("version"),
        };
        if let Some(c) = claims {
            q.set("claims", c);
        }
    })
    .await;
    redeem(g, sp, &code).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn info(g: &Gateway, path: &str, token: &str) -> (u16, Value) {
    let resp = g
        .http()
        .get(format!("{}{path}", g.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

const SIGNUP: &[&str] = &[
    "sub",
    "given_name",
    "family_name",
    "middle_name",
    "title",
    "email",
    "phone_number",
    "phone_number_verified",
    "phone_number_alternate",
    "street_address",
    "city",
    "state",
    "postal_code",
    "country",
    "birthdate",
];

#[tokio::test]
async fn every_identity_product_has_its_claim_set_at_premiuminfo() {
    let (g, sp) = setup(ALL_SCOPES).await;
    let signup_plus: Vec<&str> = SIGNUP
        .iter()
        .copied()
        .chain(["name", "gender", "houseno_or_housename", "email_verified"])
        .collect();
    let national: Vec<&str> = SIGNUP
        .iter()
        .copied()
        .chain(["national_identifier", "national_identifier_authority"])
        .collect();
    let phone: &[&str] = &["sub", "phone_number", "phone_number_verified"];
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        ("mc_identity_phonenumber", "mc_di_r2_v2.3", phone.to_vec()),
        ("mc_phonenumber", "mc_di_v3.0", phone.to_vec()),
        ("mc_identity_signup", "mc_v2.0", SIGNUP.to_vec()),
        ("mc_signup", "mc_di_v3.0", SIGNUP.to_vec()),
        ("mc_identity_signupplus", "mc_di_r2_v2.3", signup_plus),
        ("mc_identity_nationalid", "mc_di_r2_v2.3", national.clone()),
        ("mc_nationalid", "mc_di_v3.0", national),
        ("mc_authn", "mc_di_r2_v2.3", vec!["sub"]),
    ];
    for (product, version, want) in cases {
        let t = token(&g, &sp, &format!("openid {product}"), Some(version), None).await;
        let (status, body) = info(&g, "/premiuminfo", &t).await;
        assert_eq!(status, 200, "{product}: {body}");
        assert_eq!(keys(&body), set(&want), "{product}: {body}");
        if body.get("phone_number").is_some() {
            // The premiuminfo fixture's form: E.164 digits without '+'.
            assert_eq!(body["phone_number"], MSISDN, "{product}");
        }
        if product.contains("signup") {
            assert_eq!(body["given_name"], "David");
            assert_eq!(body["street_address"], "Fake Street");
            assert_eq!(body["city"], "Manchester");
            assert_eq!(body["birthdate"], "1990-11-04");
        }
        if product.contains("nationalid") {
            assert_eq!(body["national_identifier"], "QQ123456C");
        }
        assert!(body.get("sim_changed_at").is_none() && body.get("lost_stolen").is_none());
    }
}

#[tokio::test]
async fn mc_v1_1_oidc_scopes_have_their_claim_sets_at_userinfo() {
    let (g, sp) = setup(ALL_SCOPES).await;
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "profile",
            vec![
                "sub",
                "name",
                "given_name",
                "family_name",
                "middle_name",
                "nickname",
                "gender",
                "birthdate",
                "locale",
                "zoneinfo",
            ],
        ),
        ("email", vec!["sub", "email", "email_verified"]),
        ("address", vec!["sub", "address"]),
        (
            "phone",
            vec!["sub", "phone_number", "phone_number_verified"],
        ),
    ];
    for (scope, want) in cases {
        // No version and no mc_ product: a plain OIDC (mc_v1.1) request.
        let t = token(&g, &sp, &format!("openid {scope}"), None, None).await;
        let (status, body) = info(&g, "/userinfo", &t).await;
        assert_eq!(status, 200, "{scope}: {body}");
        assert_eq!(keys(&body), set(&want), "{scope}: {body}");
    }
    let t = token(&g, &sp, "openid profile email address phone", None, None).await;
    let (_, body) = info(&g, "/userinfo", &t).await;
    assert_eq!(body["name"], "David Andrew Smith");
    assert_eq!(body["email_verified"], true);
    assert_eq!(body["phone_number"], "+447700900301");
    assert_eq!(body["phone_number_verified"], true);
    assert_eq!(
        body["address"],
        json!({
            "street_address": "123 Fake Street", "locality": "Manchester",
            "region": "Greater Manchester", "postal_code": "M1 1AB", "country": "England",
            "formatted": "123 Fake Street\nManchester Greater Manchester M1 1AB\nEngland",
        })
    );
}

#[tokio::test]
async fn identity_products_at_userinfo_take_the_oidc_shape() {
    let (g, sp) = setup(ALL_SCOPES).await;
    let t = token(
        &g,
        &sp,
        "openid mc_identity_signup",
        Some("mc_di_r2_v2.3"),
        None,
    )
    .await;
    let (status, body) = info(&g, "/userinfo", &t).await;
    assert_eq!(status, 200);
    let mut want: BTreeSet<String> = set(SIGNUP);
    for flat in ["street_address", "city", "state", "postal_code", "country"] {
        want.remove(flat);
    }
    want.insert("address".into());
    assert_eq!(keys(&body), want, "{body}");
    assert_eq!(body["phone_number"], "+447700900301");
    assert_eq!(body["address"]["locality"], "Manchester");
}

#[tokio::test]
async fn the_claims_parameter_adds_registered_claims_and_filters_by_value() {
    let (g, sp) = setup(&["openid", "mc_authn", "email", "phone", "profile"]).await;
    // email and given_name are not granted by mc_authn but the client may ask for them
    // individually; national_identifier needs a scope the client is not registered for.
    let claims = json!({"userinfo": {
        "email": {"essential": true},
        "given_name": {"values": ["Dave", "David"]},
        "family_name": {"value": "Jones"},
        "phone_number": {"value": "+447700900301"},
        "national_identifier": null,
    }});
    let t = token(
        &g,
        &sp,
        "openid mc_authn",
        Some("mc_di_r2_v2.3"),
        Some(&claims.to_string()),
    )
    .await;
    let (status, body) = info(&g, "/userinfo", &t).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "test@test.com");
    assert_eq!(body["given_name"], "David");
    assert_eq!(body["phone_number"], "+447700900301", "value matches");
    assert!(
        body.get("family_name").is_none(),
        "value does not match: {body}"
    );
    assert!(
        body.get("national_identifier").is_none(),
        "not registered: {body}"
    );
    // The member addressed to the other endpoint does not count here.
    let (_, premium) = info(&g, "/premiuminfo", &t).await;
    assert_eq!(keys(&premium), set(&["sub"]), "{premium}");
}

#[tokio::test]
async fn a_client_registered_for_signed_userinfo_gets_a_jwt_verified_by_jwks() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    provision(&g, MSISDN, &attributes()).await;
    let (record, secret) = mc_gateway::registry::create_client(
        g.store(),
        &mc_gateway::registry::ClientSpec {
            client_id: None,
            name: "Signed Ltd".into(),
            short_name: "Signed".into(),
            redirect_uris: vec![format!("http://127.0.0.1:{}/cb/signed", g.addr.port())],
            scopes: vec![
                "openid".into(),
                "mc_identity_phonenumber".into(),
                "email".into(),
            ],
            sector_identifier_uri: None,
            metadata: ClientMetadata {
                userinfo_signed_response_alg: Some("RS256".into()),
                ..Default::default()
            },
        },
    )
    .await
    .unwrap();
    let sp = Sp {
        client_id: record.client_id.clone(),
        secret,
        redirect_uri: record.redirect_uris[0].clone(),
        short_name: "Signed".into(),
    };
    let t = token(
        &g,
        &sp,
        "openid mc_identity_phonenumber email",
        Some("mc_di_r2_v2.3"),
        None,
    )
    .await;
    for path in ["/userinfo", "/premiuminfo"] {
        let resp = g
            .http()
            .get(format!("{}{path}", g.base))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/jwt"
        );
        let jwt = resp.text().await.unwrap();
        let claims = verified(&g, &sp.client_id, &jwt).await;
        assert_eq!(claims["iss"], g.base);
        assert_eq!(claims["aud"], sp.client_id);
        assert_eq!(claims["email"], "test@test.com");
        let want = if path == "/userinfo" {
            "+447700900301"
        } else {
            MSISDN
        };
        assert_eq!(claims["phone_number"], want);
        assert!(
            claims["sub"]
                .as_str()
                .is_some_and(|s| !s.contains("7700900301"))
        );
    }

    // A value other than RS256 is refused at registration.
    let bad = mc_gateway::registry::create_client(
        g.store(),
        &mc_gateway::registry::ClientSpec {
            client_id: None,
            name: "Bad Ltd".into(),
            short_name: "Bad".into(),
            redirect_uris: vec![format!("http://127.0.0.1:{}/cb/bad", g.addr.port())],
            scopes: vec!["openid".into()],
            sector_identifier_uri: None,
            metadata: ClientMetadata {
                userinfo_signed_response_alg: Some("HS256".into()),
                ..Default::default()
            },
        },
    )
    .await;
    assert!(bad.is_err());
}

/// Verifies an RS256 JWS against the published `/jwks` (audience, issuer, expiry).
async fn verified(g: &Gateway, client_id: &str, jwt: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let jwks: JwkSet = g
        .http()
        .get(format!("{}/jwks", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let jwk = jwks.find(&header.kid.unwrap()).expect("key published");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[client_id]);
    v.set_issuer(&[g.base.as_str()]);
    decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .expect("the userinfo JWT verifies against /jwks")
        .claims
}

#[tokio::test]
async fn tokens_and_provisioning_errors() {
    let (g, sp) = setup(ALL_SCOPES).await;
    for path in ["/userinfo", "/premiuminfo"] {
        let (status, _) = info(&g, path, "not-a-token").await;
        assert_eq!(status, 401, "{path}");
        let resp = g
            .http()
            .get(format!("{}{path}", g.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("No Access Token")
        );
    }
    // POST with the token in a form body works too (RFC 6750 §2.2).
    let t = token(
        &g,
        &sp,
        "openid mc_identity_phonenumber",
        Some("mc_di_r2_v2.3"),
        None,
    )
    .await;
    let resp = g
        .http()
        .post(format!("{}/premiuminfo", g.base))
        .form(&[("access_token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["phone_number"], MSISDN);

    // Provisioning refuses unknown attributes and bad values, naming them.
    for (doc, text) in [
        (
            json!({"shoe_size": 9}),
            "attributes.shoe_size: unknown attribute",
        ),
        (
            json!({"birthdate": "04/11/1990"}),
            "attributes.birthdate: must be a date YYYY-MM-DD",
        ),
    ] {
        let (status, body) = provision(&g, MSISDN, &doc).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error_description"], text);
    }
    let (status, _) = provision(&g, "447700900999", &json!({})).await;
    assert_eq!(status, 404);
    // PATCH merges; null removes; GET shows the document; DELETE clears it.
    let url = format!("{}/admin/v1/subscribers/{MSISDN}/attributes", g.base);
    let patched: Value = g
        .http()
        .patch(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"nickname": null, "email": "new@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["email"], "new@example.com");
    assert!(patched.get("nickname").is_none());
    assert_eq!(patched["given_name"], "David");
    let got: Value = g
        .http()
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, patched);
    let deleted = g
        .http()
        .delete(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let t = token(
        &g,
        &sp,
        "openid mc_identity_signup",
        Some("mc_di_r2_v2.3"),
        None,
    )
    .await;
    let (_, body) = info(&g, "/premiuminfo", &t).await;
    assert_eq!(
        keys(&body),
        set(&["sub", "phone_number", "phone_number_verified"]),
        "without attributes only the number is known: {body}"
    );
    // Without the admin token: 401.
    let resp = g.http().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn create_subscriber_with_attributes_and_metadata() {
    let g = Gateway::start().await;
    let resp = g
        .http()
        .post(format!("{}/admin/v1/subscribers", g.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"msisdn": "+447700900777", "attributes": {"given_name": "Ann"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["attributes"], json!({"given_name": "Ann"}));
    // A bad attribute document creates nothing.
    let resp = g
        .http()
        .post(format!("{}/admin/v1/subscribers", g.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"msisdn": "+447700900778", "attributes": {"given_name": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        g.store()
            .find_subscriber_by_msisdn("447700900778")
            .await
            .unwrap()
            .is_none()
    );

    let m: Value = g
        .http()
        .get(format!("{}/.well-known/openid-configuration", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["premiuminfo_endpoint"], format!("{}/premiuminfo", g.base));
    let claims: Vec<&str> = m["claims_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for c in [
        "given_name",
        "address",
        "national_identifier",
        "phone_number",
    ] {
        assert!(claims.contains(&c), "{c} in claims_supported");
    }
    assert!(
        m["mobile_connect_version_supported"]
            .as_array()
            .unwrap()
            .contains(&json!({"openid mc_kyc_plain": "mc_di_r2_v2.3"}))
    );
}
