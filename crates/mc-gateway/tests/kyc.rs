#![allow(clippy::unwrap_used, clippy::expect_used)]
//! KYC match at `/premiuminfo` (digest §8.3): the SP sends the values it holds in the
//! `claims` parameter and learns `<claim>_match` per claim — plain (`mc_kyc_plain`,
//! normalised text) and hashed (`mc_kyc_hashed`, SHA-256 over the normalised text) — never
//! the operator's record; an incomplete combination is `invalid_request`.

mod common;
mod flows;

use common::*;
use flows::*;
use mc_gateway::state::sha256_hex;
use serde_json::{Value, json};

const MSISDN: &str = "447700900301";

async fn setup() -> (Gateway, Sp) {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let sp = g
        .sp(
            "Bank",
            &["openid", "mc_authn", "mc_kyc_plain", "mc_kyc_hashed"],
        )
        .await;
    let resp = g
        .http()
        .put(format!(
            "{}/admin/v1/subscribers/{MSISDN}/attributes",
            g.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "given_name": "David", "middle_name": "Andrew", "family_name": "Smith",
            "houseno_or_housename": "123", "street_address": "Fake Street",
            "city": "Manchester", "postal_code": "M1 1AB", "country": "United Kingdom",
            "birthdate": "1990-11-04",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    (g, sp)
}

/// Logs in with `scope` and the KYC `claims` (premiuminfo member), then reads
/// `/premiuminfo`.
async fn kyc(g: &Gateway, sp: &Sp, scope: &str, premiuminfo: Value) -> (u16, Value) {
    let claims = json!({ "premiuminfo": premiuminfo }).to_string();
    let code = code_for(g, sp, MSISDN, |q| {
        q.set("scope", scope).set("claims", &claims);
    })
    .await;
    let token = redeem(g, sp, &code).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = g
        .http()
        .get(format!("{}/premiuminfo", g.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn v(s: &str) -> Value {
    json!({ "value": s })
}

#[tokio::test]
async fn plain_match_and_mismatch_per_claim() {
    let (g, sp) = setup().await;
    let (status, body) = kyc(
        &g,
        &sp,
        "openid mc_kyc_plain",
        json!({
            "name": v("DAVID ANDREW SMITH"),
            "address": v("123 Fake Street, Manchester M1 1AB, United Kingdom"),
            "birthdate": v("1990-11-04"),
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name_match"], "true");
    assert_eq!(body["address_match"], "true");
    assert_eq!(body["birthdate_match"], "true");
    // Only answers: no attribute leaves.
    for leaked in [
        "given_name",
        "family_name",
        "city",
        "birthdate",
        "address",
        "name",
    ] {
        assert!(body.get(leaked).is_none(), "{leaked} leaked: {body}");
    }

    let (status, body) = kyc(
        &g,
        &sp,
        "openid mc_kyc_plain",
        json!({
            "given_name": v("david"), "family_name": v("Smyth"),
            "houseno_or_housename": v("123"), "postal_code": v("m1 1ab"),
            "town": v("Manchester"), "country": v("France"),
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["given_name_match"], "true");
    assert_eq!(body["family_name_match"], "false");
    assert_eq!(body["houseno_or_housename_match"], "true");
    assert_eq!(body["postal_code_match"], "true", "normalised");
    assert_eq!(body["town_match"], "true");
    assert_eq!(body["country_match"], "false");
}

#[tokio::test]
async fn hashed_match_compares_sha256_of_normalised_values() {
    let (g, sp) = setup().await;
    // The SP normalises (lowercase, letters and digits only) and hashes on its side.
    let (status, body) = kyc(
        &g,
        &sp,
        "openid mc_kyc_hashed",
        json!({
            "name_hashed": v(&sha256_hex("davidandrewsmith")),
            "address_hashed": v(&sha256_hex("123fakestreetmanchesterm11abunitedkingdom")),
            "birthdate_hashed": v(&sha256_hex("19901105")),
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name_hashed_match"], "true");
    assert_eq!(body["address_hashed_match"], "true");
    assert_eq!(body["birthdate_hashed_match"], "false");
}

#[tokio::test]
async fn an_incomplete_combination_is_refused() {
    let (g, sp) = setup().await;
    for premiuminfo in [
        json!({"name": v("David Smith")}),
        json!({"given_name": v("David"), "address": v("123 Fake Street")}),
        json!({"name": v("David Smith"), "postal_code": v("M1 1AB"), "country": v("UK")}),
    ] {
        let (status, body) = kyc(&g, &sp, "openid mc_kyc_plain", premiuminfo.clone()).await;
        assert_eq!(status, 400, "{premiuminfo}: {body}");
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(
            body["error_description"],
            "KYC match needs name (or given_name and family_name) and address (or houseno_or_housename, postal_code, town and country)"
        );
    }
    // A hashed claim that is not a SHA-256.
    let (status, body) = kyc(
        &g,
        &sp,
        "openid mc_kyc_hashed",
        json!({"name_hashed": v("abc"), "address_hashed": v(&sha256_hex("x"))}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error_description"],
        "KYC claim name_hashed needs a value"
    );
}

#[tokio::test]
async fn kyc_claims_need_the_kyc_scope() {
    let (g, sp) = setup().await;
    // mc_authn only: the KYC claims in the request are not answered at all.
    let (status, body) = kyc(
        &g,
        &sp,
        "openid mc_authn",
        json!({"name": v("David Smith"), "address": v("123 Fake Street")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("name_match").is_none(), "{body}");
}
