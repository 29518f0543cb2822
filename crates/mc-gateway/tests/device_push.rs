//! App push with device keys over HTTP: an enrolment code from the admin API, registration
//! with a self-signed P-256 key, challenges by server-sent events and by long poll, answers
//! signed with the device key (ES256 compact JWS); bad signatures, stale and replayed
//! answers, another subscriber's device and LoA3 user verification; `acr`/`amr` in the
//! id_token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use flows::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mc_gateway::state::now;
use serde_json::{Value, json};

/// An app on a phone: its key pair and, once registered, its device id.
struct App {
    encoding: EncodingKey,
    jwk: Value,
    id: String,
}

impl App {
    fn new() -> App {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        App {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
            id: String::new(),
        }
    }

    fn sign(&self, kid: Option<&str>, with_jwk: bool, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = kid.map(str::to_owned);
        if with_jwk {
            h.jwk = Some(serde_json::from_value(self.jwk.clone()).unwrap());
        }
        jsonwebtoken::encode(&h, claims, &self.encoding).unwrap()
    }

    fn proof(&self) -> String {
        self.sign(Some(&self.id), false, &json!({"iat": now()}))
    }

    fn answer(&self, challenge: &str, extra: Value) -> String {
        let mut claims = json!({
            "challenge": challenge, "decision": "approve",
            "iat": now(), "nonce": format!("n-{}", rand_hex()),
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        self.sign(Some(&self.id), false, &claims)
    }
}

fn rand_hex() -> String {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn enrolment_code(g: &Gateway, msisdn: &str) -> String {
    let resp = g
        .http()
        .post(format!(
            "{}/admin/v1/subscribers/{msisdn}/enrolment",
            g.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    body["enrolment_code"].as_str().unwrap().to_owned()
}

async fn post(g: &Gateway, path: &str, body: String) -> (u16, Value) {
    let resp = g
        .http()
        .post(format!("{}{path}", g.base))
        .header("content-type", "application/jose")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    // `204` has no body.
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A registered app for `msisdn`.
async fn registered(g: &Gateway, msisdn: &str) -> App {
    let mut app = App::new();
    let code = enrolment_code(g, msisdn).await;
    let reg = app.sign(
        None,
        true,
        &json!({"enrolment_code": code, "label": "test phone", "iat": now()}),
    );
    let (status, body) = post(g, "/device/v1/register", reg.clone()).await;
    assert_eq!(status, 201, "{body}");
    app.id = body["device_id"].as_str().unwrap().to_owned();
    // The code is spent.
    let (status, body) = post(g, "/device/v1/register", reg).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_enrolment_code"))
    );
    app
}

/// Long poll for the first open challenge.
async fn long_poll(g: &Gateway, app: &App) -> Value {
    let resp = g
        .http()
        .get(format!("{}/device/v1/challenges?wait=10", g.base))
        .bearer_auth(app.proof())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["challenges"][0].clone()
}

/// Starts a login for `msisdn` with `edit` applied, driven in the background to its redirect.
fn start_login(
    g: &Gateway,
    sp: &Sp,
    msisdn: &str,
    edit: impl FnOnce(&mut Q),
) -> tokio::task::JoinHandle<String> {
    let mut q = Q::valid(sp, msisdn);
    edit(&mut q);
    let (url, redirect) = (q.url(g), sp.redirect_uri.clone());
    let http = g.http();
    let base = g.base.clone();
    tokio::spawn(async move {
        let mut url = url;
        for _ in 0..60 {
            let resp = http.get(&url).send().await.unwrap();
            let next = location(&base, &resp).expect("a redirect");
            if next.starts_with(&redirect) {
                return next;
            }
            url = next;
        }
        panic!("no redirect to the SP");
    })
}

async fn id_token_of(g: &Gateway, sp: &Sp, back: &str) -> Value {
    let code = query_of(back)
        .get("code")
        .unwrap_or_else(|| panic!("no code in {back}"))
        .clone();
    let tokens = redeem(g, sp, &code).await;
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

/// Reads server-sent events until one carries a non-empty challenge list.
async fn next_sse_challenge(resp: &mut reqwest::Response, buf: &mut String) -> Value {
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                let v: Value = serde_json::from_str(data.trim()).unwrap();
                if let Some(first) = v["challenges"].get(0) {
                    return first.clone();
                }
            }
        }
        let chunk = resp.chunk().await.unwrap().expect("the stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn registered_app_gets_challenges_by_sse_and_long_poll_and_approves_with_its_key() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    let msisdn = "447700900401";
    g.subscriber(msisdn, None).await;
    // Without an app the subscriber has no app_push capability; registering gives it.
    let sub = g
        .store()
        .find_subscriber_by_msisdn(msisdn)
        .await
        .unwrap()
        .unwrap();
    g.store()
        .update_subscriber(&sub.id, sub.status, &[])
        .await
        .unwrap();
    let app = registered(&g, msisdn).await;
    let sub = g.store().get_subscriber(&sub.id).await.unwrap().unwrap();
    assert_eq!(sub.capabilities, vec!["app_push".to_string()]);

    // The event stream opens with the (empty) list, then announces the challenge.
    let mut events = g
        .http()
        .get(format!("{}/device/v1/events", g.base))
        .query(&[("proof", app.proof())])
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let login = start_login(&g, &sp, msisdn, |_| {});
    let mut buf = String::new();
    let by_sse = next_sse_challenge(&mut events, &mut buf).await;
    let by_poll = long_poll(&g, &app).await;
    assert_eq!(by_sse["id"], by_poll["id"]);
    assert_eq!(by_sse["loa"], "2");
    let id = by_sse["id"].as_str().unwrap().to_owned();
    let path = format!("/device/v1/challenges/{id}");

    // Signed by another key under this device's id.
    let forger = App {
        id: app.id.clone(),
        ..App::new()
    };
    let (status, body) = post(&g, &path, forger.answer(&id, json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_signature"))
    );
    // Stale.
    let stale = app.answer(&id, json!({"iat": now() - 3600}));
    let (status, body) = post(&g, &path, stale).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("stale_message"))
    );
    // Signed for another challenge.
    let (status, body) = post(&g, &path, app.answer("another", json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("wrong_challenge"))
    );
    // Not a JWS at all.
    let (status, body) = post(&g, &path, "hello".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let approval = app.answer(&id, json!({}));
    let (status, body) = post(&g, &path, approval.clone()).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("approved")));
    // The same approval again: refused as a replay.
    let (status, body) = post(&g, &path, approval).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("replayed")));

    let back = login.await.unwrap();
    let claims = id_token_of(&g, &sp, &back).await;
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["amr"], json!(["PUSH_OK"]));
}

#[tokio::test]
async fn another_subscribers_device_and_unknown_or_revoked_devices_are_refused() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    let (alice, bob) = ("447700900402", "447700900403");
    g.subscriber(alice, None).await;
    g.subscriber(bob, None).await;
    let alices = registered(&g, alice).await;
    let bobs = registered(&g, bob).await;

    let login = start_login(&g, &sp, alice, |_| {});
    let challenge = long_poll(&g, &alices).await;
    let id = challenge["id"].as_str().unwrap().to_owned();
    let path = format!("/device/v1/challenges/{id}");
    // Bob's device sees nothing of Alice's and cannot answer it.
    let resp = g
        .http()
        .get(format!("{}/device/v1/challenges", g.base))
        .bearer_auth(bobs.proof())
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["challenges"], json!([]));
    let (status, body) = post(&g, &path, bobs.answer(&id, json!({}))).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (409, Some("not_pending"))
    );
    // A device id nobody registered.
    let ghost = App {
        id: "0123456789abcdef".into(),
        ..App::new()
    };
    let (status, body) = post(&g, &path, ghost.answer(&id, json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unknown_device"))
    );
    // A revoked device can neither fetch nor answer.
    assert!(g.store().revoke_device(&bobs.id, now()).await.unwrap());
    let resp = g
        .http()
        .get(format!("{}/device/v1/challenges", g.base))
        .bearer_auth(bobs.proof())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Alice denies with her device: the SP gets access_denied.
    let deny = alices.answer(&id, json!({"decision": "deny"}));
    let (status, body) = post(&g, &path, deny).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("denied")));
    let back = login.await.unwrap();
    assert_eq!(error_of(&back).0, "access_denied");
}

#[tokio::test]
async fn loa3_needs_user_verification_pin_checked_by_the_gateway_or_biometric() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    let msisdn = "447700900404";
    g.subscriber(msisdn, Some("1234")).await;
    let app = registered(&g, msisdn).await;

    let login = start_login(&g, &sp, msisdn, |q| {
        q.set("acr_values", "3");
    });
    let c = long_poll(&g, &app).await;
    assert_eq!(c["loa"], "3");
    let id = c["id"].as_str().unwrap().to_owned();
    let path = format!("/device/v1/challenges/{id}");
    // A plain OK is not enough at LoA3, and costs no PIN attempt.
    let (status, body) = post(&g, &path, app.answer(&id, json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("user_verification_required"))
    );
    // A wrong PIN, inside the signed answer, is counted by the gateway.
    let wrong = app.answer(&id, json!({"uv": "pin", "pin": "9999"}));
    let (status, body) = post(&g, &path, wrong).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("wrong_pin")));
    let right = app.answer(&id, json!({"uv": "pin", "pin": "1234"}));
    let (status, body) = post(&g, &path, right).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("approved")));
    let claims = id_token_of(&g, &sp, &login.await.unwrap()).await;
    assert_eq!(claims["acr"], "3");
    assert_eq!(claims["amr"], json!(["PUSH_PIN"]));

    // Biometric verification asserted by the signed answer.
    let login = start_login(&g, &sp, msisdn, |q| {
        q.set("acr_values", "3")
            .set("state", "st-2")
            .set("nonce", "n-2");
    });
    let c = long_poll(&g, &app).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let bio = app.answer(&id, json!({"uv": "biometric"}));
    let (status, body) = post(&g, &format!("/device/v1/challenges/{id}"), bio).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("approved")));
    let claims = id_token_of(&g, &sp, &login.await.unwrap()).await;
    assert_eq!(claims["acr"], "3");
    assert_eq!(claims["amr"], json!(["PUSH_PIN"]));
}

#[tokio::test]
async fn registration_refuses_bad_keys_codes_and_signatures() {
    let g = Gateway::start().await;
    let msisdn = "447700900405";
    g.subscriber(msisdn, None).await;
    let code = enrolment_code(&g, msisdn).await;
    let app = App::new();
    // Unknown code.
    let reg = app.sign(None, true, &json!({"enrolment_code": "nope", "iat": now()}));
    let (status, body) = post(&g, "/device/v1/register", reg).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_enrolment_code"))
    );
    // No key in the header.
    let reg = app.sign(None, false, &json!({"enrolment_code": code, "iat": now()}));
    let (status, _) = post(&g, "/device/v1/register", reg).await;
    assert_eq!(status, 400);
    // Signed by another key than the one it registers.
    let other = App::new();
    let mut h = Header::new(Algorithm::ES256);
    h.jwk = Some(serde_json::from_value(app.jwk.clone()).unwrap());
    let reg = jsonwebtoken::encode(
        &h,
        &json!({"enrolment_code": code, "iat": now()}),
        &other.encoding,
    )
    .unwrap();
    let (status, body) = post(&g, "/device/v1/register", reg).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_signature"))
    );
    // The code survived the failures; the admin API wants its token.
    let reg = app.sign(None, true, &json!({"enrolment_code": code, "iat": now()}));
    let (status, _) = post(&g, "/device/v1/register", reg).await;
    assert_eq!(status, 201);
    let resp = g
        .http()
        .post(format!(
            "{}/admin/v1/subscribers/{msisdn}/enrolment",
            g.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// The admin API's view of the subscriber's capabilities.
async fn capabilities(g: &Gateway, msisdn: &str) -> Value {
    let resp = g
        .http()
        .get(format!("{}/admin/v1/subscribers/{msisdn}", g.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["capabilities"].clone()
}

/// `DELETE /admin/v1/subscribers/{msisdn}/devices/{id}`: the status.
async fn revoke(g: &Gateway, msisdn: &str, device_id: &str) -> u16 {
    g.http()
        .delete(format!(
            "{}/admin/v1/subscribers/{msisdn}/devices/{device_id}",
            g.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The ids the admin API lists as the subscriber's devices.
async fn listed_devices(g: &Gateway, msisdn: &str) -> Vec<String> {
    let resp = g
        .http()
        .get(format!("{}/admin/v1/subscribers/{msisdn}/devices", g.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A login the app approves with its key (signed answer): the id_token's `amr`.
async fn app_login(g: &Gateway, sp: &Sp, msisdn: &str, app: &App, state: &str) -> Value {
    let login = start_login(g, sp, msisdn, |q| {
        q.set("state", state).set("nonce", &format!("n-{state}"));
    });
    let c = long_poll(g, app).await;
    let id = c["id"].as_str().expect("the app is asked").to_owned();
    let (status, body) = post(
        g,
        &format!("/device/v1/challenges/{id}"),
        app.answer(&id, json!({})),
    )
    .await;
    assert_eq!((status, body["result"].as_str()), (200, Some("approved")));
    id_token_of(g, sp, &login.await.unwrap()).await["amr"].clone()
}

/// Revoking devices through the admin API: the capability follows them. With a device left
/// the app is still asked; once the last one is revoked the subscriber loses `app_push`,
/// the next login's chain skips the app and starts the next authenticator (SMS) at once —
/// not after the app's `next_start_delay_secs`, which is far longer than the test waits —
/// and a newly registered device brings the app back as the first step.
#[tokio::test]
async fn revoking_the_last_device_takes_the_app_out_of_the_chain_until_a_new_one_registers() {
    use mc_sandbox::smsc::{Smsc, SmscConfig};
    let smsc = Smsc::start("127.0.0.1:0", SmscConfig::new("mcgw", "pw"))
        .await
        .unwrap();
    let mut inbox = smsc.subscribe();
    let addr = smsc.local_addr().to_string();
    let g = Gateway::start_with(move |c| {
        c.authenticators.enabled = vec!["app_push".into(), "sms_otp".into()];
        c.authenticators.next_start_delay_secs = 600;
        c.authenticators.sms = Some(
            serde_json::from_value(json!({
                "smsc_address": addr,
                "system_id": "mcgw",
                "password": "pw",
                "link_base": format!("{}/sms/link", c.issuer),
            }))
            .unwrap(),
        );
    })
    .await;
    let sp = g.shop().await;
    let msisdn = "447700900406";
    g.subscriber(msisdn, None).await;
    let first = registered(&g, msisdn).await;
    let second = registered(&g, msisdn).await;
    // Oldest first; both registered within the same second here, so compare as sets.
    let mut listed = listed_devices(&g, msisdn).await;
    listed.sort();
    let mut both = vec![first.id.clone(), second.id.clone()];
    both.sort();
    assert_eq!(listed, both);

    // One of two revoked: the other still carries the app.
    assert_eq!(revoke(&g, msisdn, &first.id).await, 204);
    assert_eq!(revoke(&g, msisdn, &first.id).await, 404, "revoked once");
    assert_eq!(listed_devices(&g, msisdn).await, vec![second.id.clone()]);
    assert_eq!(capabilities(&g, msisdn).await, json!(["app_push"]));
    assert_eq!(
        app_login(&g, &sp, msisdn, &second, "with-app").await,
        json!(["PUSH_OK"])
    );

    // Another subscriber's number does not reach this device; bad input is a clear 4xx.
    g.subscriber("447700900407", None).await;
    assert_eq!(revoke(&g, "447700900407", &second.id).await, 404);
    assert_eq!(revoke(&g, "not-a-number", &second.id).await, 400);
    assert_eq!(revoke(&g, "447700900999", &second.id).await, 404);
    assert_eq!(revoke(&g, msisdn, &"f".repeat(300)).await, 404);
    let unauthenticated = g
        .http()
        .delete(format!(
            "{}/admin/v1/subscribers/{msisdn}/devices/{}",
            g.base, second.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    // The last one revoked: no app, no app_push; the chain goes straight to the SMS.
    assert_eq!(revoke(&g, msisdn, &second.id).await, 204);
    assert!(listed_devices(&g, msisdn).await.is_empty());
    assert_eq!(capabilities(&g, msisdn).await, json!([]));
    let mut q = Q::valid(&sp, msisdn);
    q.set("state", "no-app").set("nonce", "n-no-app");
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    let wait = location(&g.base, &resp).expect("the waiting page");
    let to = format!("+{msisdn}");
    let sms = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let m = inbox.recv().await.unwrap();
            if m.to == to {
                return m;
            }
        }
    })
    .await
    .expect("the SMS starts at once: the app is not in the chain");
    let resp = g
        .http()
        .get(format!("{}/device/v1/challenges", g.base))
        .bearer_auth(second.proof())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a revoked device is cut off");
    let at = sms.text.find("Code: ").expect("a code in the SMS") + 6;
    let code: String = sms.text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let resp = g
        .http()
        .post(format!("{wait}/otp"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("code={code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let back = follow_to_redirect_uri(&g, &wait, &sp.redirect_uri).await;
    assert_eq!(id_token_of(&g, &sp, &back).await["amr"], json!(["OTP_OK"]));

    // A new device: app_push again, and the app is the chain's first step once more.
    let third = registered(&g, msisdn).await;
    assert_eq!(capabilities(&g, msisdn).await, json!(["app_push"]));
    assert_eq!(
        app_login(&g, &sp, msisdn, &third, "app-again").await,
        json!(["PUSH_OK"])
    );
}

/// The app signs out by itself: `POST /device/v1/deregister` with a message signed by its key
/// naming its own id. Nothing else stands in for it (a fetch proof, another device's id, a
/// signature by another key), and the subscriber's last device going takes `app_push` with it.
#[tokio::test]
async fn an_app_deregisters_its_own_device_and_nothing_else_can() {
    let g = Gateway::start().await;
    let msisdn = "447700900408";
    g.subscriber(msisdn, None).await;
    let app = registered(&g, msisdn).await;
    let other = registered(&g, msisdn).await;
    let deregister = |signer: &App, names: &str| {
        signer.sign(
            Some(&signer.id),
            false,
            &json!({"deregister": names, "iat": now()}),
        )
    };

    // Refused: a fetch proof, another device's id, a stale message, another key's signature.
    let (status, body) = post(&g, "/device/v1/deregister", app.proof()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _) = post(&g, "/device/v1/deregister", deregister(&app, &other.id)).await;
    assert_eq!(status, 400, "a device deregisters only itself");
    let stale = app.sign(
        Some(&app.id),
        false,
        &json!({"deregister": app.id, "iat": now() - 3600}),
    );
    let (status, body) = post(&g, "/device/v1/deregister", stale).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("stale_message"))
    );
    let forged = other.sign(
        Some(&app.id),
        false,
        &json!({"deregister": app.id, "iat": now()}),
    );
    let (status, body) = post(&g, "/device/v1/deregister", forged).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_signature"))
    );
    let mut listed = listed_devices(&g, msisdn).await;
    listed.sort();
    let mut both = vec![app.id.clone(), other.id.clone()];
    both.sort();
    assert_eq!(listed, both, "nothing revoked yet");

    // Its own: revoked, cut off, and the same message again finds no device.
    let signed_out = deregister(&app, &app.id);
    let (status, _) = post(&g, "/device/v1/deregister", signed_out.clone()).await;
    assert_eq!(status, 204);
    assert_eq!(listed_devices(&g, msisdn).await, vec![other.id.clone()]);
    let (status, body) = post(&g, "/device/v1/deregister", signed_out).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unknown_device"))
    );
    let resp = g
        .http()
        .get(format!("{}/device/v1/challenges", g.base))
        .bearer_auth(app.proof())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a deregistered device is cut off");
    assert_eq!(capabilities(&g, msisdn).await, json!(["app_push"]));

    // The last device signs out: the subscriber has no app any more.
    let (status, _) = post(&g, "/device/v1/deregister", deregister(&other, &other.id)).await;
    assert_eq!(status, 204);
    assert_eq!(capabilities(&g, msisdn).await, json!([]));
}
