//! The multi-operator sandbox: every operator's numbers are discovered to that operator's
//! own issuer (a ported number to its new operator), logins at each operator give tokens
//! that validate against that issuer and its keys only, and every subscriber's phone is
//! reachable at `/phone/<msisdn>` and is an app of its own operator: its key registers at
//! that operator's device API and its answers are signed there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::Sandbox;
use mc_client::authorize::{AuthorizationRequest, LoginHint};
use mc_client::discovery::{DiscoveryConfig, DiscoveryOutcome, DiscoveryRequest};
use mc_client::{DiscoveryError, Error, MobileConnect, Options};
use mc_core::msisdn::Msisdn;
use serde_json::{Value, json};

fn discovery(sbx: &Sandbox, mc: &MobileConnect) -> mc_client::discovery::DiscoveryClient {
    let sp = &sbx.info.service_providers[0];
    mc.discovery(DiscoveryConfig::new(
        sbx.info.discovery_url.clone().unwrap(),
        sp.discovery_client_id.clone().unwrap(),
        sp.discovery_client_secret.clone().unwrap(),
        mc_sandbox::shop::callback_url(&sbx.base),
    ))
}

async fn discover(
    d: &mc_client::discovery::DiscoveryClient,
    number: &str,
) -> Result<Box<mc_client::discovery::DiscoveredOperator>, Error> {
    match d
        .discover(&DiscoveryRequest::msisdn(Msisdn::parse(number).unwrap()))
        .await?
    {
        DiscoveryOutcome::Operator(found) => Ok(found),
        DiscoveryOutcome::OperatorSelection { url } => panic!("selection {url} for {number}"),
    }
}

#[tokio::test]
async fn each_operators_numbers_are_discovered_to_its_own_issuer() {
    let sbx = Sandbox::start("disc").await;
    assert_eq!(sbx.info.operators.len(), 3, "{:?}", sbx.info.operators);
    let issuers: std::collections::HashSet<&str> = sbx
        .info
        .operators
        .iter()
        .map(|o| o.issuer.as_str())
        .collect();
    assert_eq!(issuers.len(), 3, "three distinct issuers");
    let mc = MobileConnect::new(Options::default());
    let d = discovery(&sbx, &mc);
    for (number, operator) in [
        ("+447700900301", "sandbox"),
        ("+447700901301", "bluewave"),
        ("+447700902301", "northstar"),
        // In Bluewave's range, ported to Northstar.
        ("+447700901555", "northstar"),
        // In Bluewave's range and not ported.
        ("+447700901556", "bluewave"),
    ] {
        let found = discover(&d, number).await.unwrap();
        assert_eq!(
            found.serving_operator.as_deref(),
            Some(operator),
            "{number}"
        );
        assert_eq!(
            found.link("issuer"),
            Some(sbx.issuer_of(operator).as_str()),
            "{number}"
        );
        assert!(found.subscriber_id.is_some(), "{number}: subscriber_id");
        // The SP's credentials at that operator, not another's.
        let at = sbx
            .info
            .operators
            .iter()
            .find(|o| o.id == operator)
            .unwrap();
        let expected = at
            .client_secret
            .clone()
            .unwrap_or_else(|| sbx.info.service_providers[0].client_secret.clone());
        assert_eq!(
            found.client_secret.as_ref().map(|s| s.expose().to_owned()),
            Some(expected),
            "{number}"
        );
    }
    // A number no operator serves.
    match discover(&d, "+447911123456").await {
        Err(Error::Discovery(DiscoveryError::NotFound(_))) => {}
        other => panic!("unknown number: {other:?}"),
    }
}

fn kid_of(jwt: &str) -> String {
    mc_client::jose::Jws::parse(jwt)
        .unwrap()
        .kid()
        .unwrap()
        .to_owned()
}

async fn jwks_kids(issuer: &str) -> Vec<String> {
    let doc: Value = reqwest::get(format!("{issuer}/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn logins_at_each_operator_validate_against_that_issuer_and_its_keys() {
    let sbx = Arc::new(Sandbox::start("tokens").await);
    let mc = MobileConnect::new(Options::default());
    let d = discovery(&sbx, &mc);
    let callback = mc_sandbox::shop::callback_url(&sbx.base);
    let mut kids = Vec::new();
    for (number, operator) in [
        ("447700901301", "bluewave"),
        ("447700901555", "northstar"),
        ("447700900301", "sandbox"),
    ] {
        let found = discover(&d, &format!("+{number}")).await.unwrap();
        let op = mc.operator_from_discovery(&found).await.unwrap();
        assert_eq!(op.issuer(), sbx.issuer_of(operator));
        let start = op
            .authorize(
                AuthorizationRequest::authn(&callback)
                    .login_hint(LoginHint::from_discovery(&found).unwrap()),
            )
            .unwrap();
        let phone = sbx.answer_next(number, "approve", None);
        let browser = common::Browser::new();
        let landed = browser.follow(browser.get(&start.url).await).await;
        // The shop has no login under way for this browser: it refuses the code, but the
        // URL it was sent to carries it.
        let code_url = landed.url.clone();
        assert!(code_url.starts_with(&callback), "{code_url}");
        let shown = phone.await.unwrap();
        assert_eq!(shown["client_name"], "OnlineShopper");
        let login = op.complete(&start.pending, &code_url).await.unwrap();
        assert_eq!(login.id_token.iss, sbx.issuer_of(operator));
        let kid = kid_of(&login.id_token.raw);
        for other in &sbx.info.operators {
            let has = jwks_kids(&other.issuer).await.contains(&kid);
            assert_eq!(
                has,
                other.id == operator,
                "{number}: kid {kid} in {}'s JWKS",
                other.id
            );
        }
        kids.push(kid);
    }
    kids.dedup();
    assert_eq!(kids.len(), 3, "every operator signs with its own key");
}

#[tokio::test]
async fn a_token_from_one_operator_is_refused_by_another() {
    let sbx = Arc::new(Sandbox::start("cross").await);
    let mc = MobileConnect::new(Options::default());
    let d = discovery(&sbx, &mc);
    let callback = mc_sandbox::shop::callback_url(&sbx.base);
    let found = discover(&d, "+447700902301").await.unwrap();
    let northstar = mc.operator_from_discovery(&found).await.unwrap();
    let bluewave = mc
        .operator_from_discovery(&discover(&d, "+447700901301").await.unwrap())
        .await
        .unwrap();
    let start = northstar
        .authorize(
            AuthorizationRequest::authn(&callback)
                .login_hint(LoginHint::from_discovery(&found).unwrap()),
        )
        .unwrap();
    let phone = sbx.answer_next("447700902301", "approve", None);
    let browser = common::Browser::new();
    let landed = browser.follow(browser.get(&start.url).await).await;
    phone.await.unwrap();
    // Bluewave does not accept Northstar's pending login.
    assert!(matches!(
        bluewave.complete(&start.pending, &landed.url).await,
        Err(Error::InvalidRequest(_))
    ));
    let login = northstar
        .complete(&start.pending, &landed.url)
        .await
        .unwrap();
    // Bluewave's keys do not verify Northstar's id_token.
    let expectations = start.pending.expectations();
    assert!(
        bluewave
            .validate_id_token(&login.id_token.raw, &expectations)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn phones_of_every_operator_are_served_at_phone_msisdn() {
    let sbx = Sandbox::start("phones").await;
    let http = reqwest::Client::new();
    for s in &sbx.info.subscribers {
        let page = http.get(&s.phone_url).send().await.unwrap();
        let st = page.status();
        assert_eq!(st, 200, "{} {}", s.phone_url, page.text().await.unwrap());
        let list = http
            .get(format!("{}/challenges", s.phone_url))
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), 200, "{}", s.phone_url);
    }
    let numbers: Vec<&str> = sbx
        .info
        .subscribers
        .iter()
        .map(|s| s.msisdn.as_str())
        .collect();
    for n in [
        "+447700900301",
        "+447700901301",
        "+447700902302",
        "+447700901555",
    ] {
        assert!(numbers.contains(&n), "{n} in {numbers:?}");
    }
}

#[tokio::test]
async fn extra_operators_keep_their_keys_and_secrets_across_restarts() {
    let dir = common::temp_dir("restart");
    let kek = mc_gateway::keys::Kek::new(&common::KEK).unwrap();
    let cfg: mc_gateway::config::GatewayConfig =
        serde_json::from_value(serde_json::json!({ "issuer": "http://127.0.0.1:9" })).unwrap();
    let mut info1 = empty_info();
    let first = mc_sandbox::operators::open_extra(&dir, &kek, &cfg, None, &mut info1)
        .await
        .unwrap();
    let kid1: Vec<String> = first
        .iter()
        .map(|o| o.state.keys.signing_kid().to_owned())
        .collect();
    drop(first);
    let mut info2 = empty_info();
    let second = mc_sandbox::operators::open_extra(&dir, &kek, &cfg, Some(&info1), &mut info2)
        .await
        .unwrap();
    let kid2: Vec<String> = second
        .iter()
        .map(|o| o.state.keys.signing_kid().to_owned())
        .collect();
    assert_eq!(kid1, kid2);
    assert_eq!(
        info1
            .operators
            .iter()
            .map(|o| o.client_secret.clone())
            .collect::<Vec<_>>(),
        info2
            .operators
            .iter()
            .map(|o| o.client_secret.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        info2.operators[0].issuer,
        "http://127.0.0.1:9/operators/bluewave"
    );
}

fn empty_info() -> mc_sandbox::SandboxInfo {
    mc_sandbox::SandboxInfo {
        operators: vec![],
        service_providers: vec![],
        subscribers: vec![],
        admin_token: String::new(),
        discovery_url: None,
    }
}

/// A virtual phone's app as the page runs it (WebCrypto there, aws-lc-rs here): a P-256
/// key, registered with an enrolment code, signing every request (compact JWS, ES256).
struct App {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    id: String,
}

fn b64u(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    mc_gateway::state::now()
}

impl App {
    fn new() -> App {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        App {
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            id: String::new(),
        }
    }

    fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair;
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64u(&point[1..33]), "y": b64u(&point[33..65])})
    }

    fn jws(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64u(header.to_string().as_bytes()),
            b64u(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64u(sig.as_ref()))
    }

    fn registration(&self, code: &str) -> String {
        self.jws(
            &json!({"alg": "ES256", "jwk": self.jwk()}),
            &json!({"enrolment_code": code, "label": "virtual phone (test)", "iat": now()}),
        )
    }

    fn signed(&self, claims: &Value) -> String {
        self.jws(&json!({"alg": "ES256", "kid": self.id}), claims)
    }
}

/// The phone page's `data-device-api` attribute.
fn device_api_of(page: &str) -> String {
    page.split("data-device-api=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the phone page names its device API")
        .to_owned()
}

async fn post_jose(http: &reqwest::Client, url: &str, body: String) -> (u16, Value) {
    let resp = http
        .post(url)
        .header("content-type", "application/jose")
        .body(body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// Every operator's virtual phone is an app of that operator: the page points at its own
/// gateway's device API, the enrolment code it gets is that gateway's (the first operator's
/// device API does not know it), and a login at Bluewave is approved by an answer signed
/// with the registered key and posted to Bluewave's device API — a forged signature is
/// refused there, so the approval is the signed one, not the unsigned phone API's.
#[tokio::test]
async fn every_operators_phone_registers_and_answers_at_its_own_device_api() {
    let sbx = Sandbox::start("devices").await;
    let http = reqwest::Client::new();
    for (number, path) in [
        ("447700900301", "/device/v1"),
        ("447700901301", "/operators/bluewave/device/v1"),
        ("447700902301", "/operators/northstar/device/v1"),
        ("447700901555", "/operators/northstar/device/v1"),
    ] {
        let page = http
            .get(format!("{}/phone/{number}", sbx.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(device_api_of(&page), path, "{number}");
    }

    // The page's registration, as Bluewave's phone does it.
    let number = "447700901301";
    let page = http
        .get(format!("{}/phone/{number}", sbx.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let device_api = format!("{}{}", sbx.base, device_api_of(&page));
    assert_eq!(
        device_api,
        format!("{}/device/v1", sbx.issuer_of("bluewave"))
    );
    let enrolment = || async {
        let resp = http
            .post(format!("{}/phone/{number}/enrolment", sbx.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        body["enrolment_code"].as_str().unwrap().to_owned()
    };
    let mut app = App::new();
    let code = enrolment().await;
    // What the page used to do: Bluewave's code at the first operator's device API.
    let (status, body) = post_jose(
        &http,
        &format!("{}/device/v1/register", sbx.base),
        app.registration(&code),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_enrolment_code")),
        "the first operator does not know Bluewave's codes"
    );
    let (status, body) = post_jose(
        &http,
        &format!("{device_api}/register"),
        app.registration(&code),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    app.id = body["device_id"].as_str().unwrap().to_owned();

    // A login at Bluewave, answered by the app.
    let mc = MobileConnect::new(Options::default());
    let d = discovery(&sbx, &mc);
    let callback = mc_sandbox::shop::callback_url(&sbx.base);
    let found = discover(&d, &format!("+{number}")).await.unwrap();
    let op = mc.operator_from_discovery(&found).await.unwrap();
    assert_eq!(op.issuer(), sbx.issuer_of("bluewave"));
    let start = op
        .authorize(
            AuthorizationRequest::authn(&callback)
                .login_hint(LoginHint::from_discovery(&found).unwrap()),
        )
        .unwrap();
    let browser = common::Browser::new();
    let url = start.url.clone();
    let landed = tokio::spawn(async move { browser.follow(browser.get(&url).await).await });
    let challenge = loop {
        let resp = http
            .get(format!("{device_api}/challenges?wait=10"))
            .bearer_auth(app.signed(&json!({"iat": now()})))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        if let Some(c) = body["challenges"].get(0) {
            break c.clone();
        }
    };
    assert_eq!(challenge["client_name"], "OnlineShopper");
    let id = challenge["id"].as_str().unwrap().to_owned();
    let answer = |app: &App, nonce: &str| {
        app.signed(&json!({
            "challenge": id, "decision": "approve", "iat": now(), "nonce": nonce,
        }))
    };
    let answer_url = format!("{device_api}/challenges/{id}");
    // Under this device's id, signed by another key: refused.
    let forger = App {
        id: app.id.clone(),
        ..App::new()
    };
    let (status, body) = post_jose(&http, &answer_url, answer(&forger, "forged")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_signature"))
    );
    let (status, body) = post_jose(&http, &answer_url, answer(&app, "real")).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("approved")));
    let landed = landed.await.unwrap();
    let login = op.complete(&start.pending, &landed.url).await.unwrap();
    assert_eq!(login.id_token.iss, sbx.issuer_of("bluewave"));
    assert_eq!(login.id_token.amr, vec!["PUSH_OK".to_string()]);
}
