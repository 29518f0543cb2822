//! Passkeys through the gateway's HTTP surface, up to what needs a real authenticator (the
//! browser suite `tests/interop/node/passkey.mjs` signs with Chromium's virtual one): the
//! enrolment page behind the phone login, the anti-forgery token, the chain offering the
//! passkey at LoA3 to the waiting page, and every refusal of a ceremony step — bad JSON,
//! unknown ceremony, wrong challenge, unknown credential, replay — as a clear 4xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Gateway, Sp, follow_to_redirect_uri, location};
use mc_store::{PasskeyRecord, SubscriberStatus};
use serde_json::{Value, json};

const MSISDN: &str = "447700900741";

/// A stored passkey (an ES256 credential, webauthn-rs's own test fixture): no test here
/// holds its private key, which is the point — assertions made up below must fail.
const STORED_PASSKEY: &str = r#"{"cred":{"cred_id":"uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130dMbFHBHI9RTFgdJQIzQ","cred":{"type_":"ES256","key":{"EC_EC2":{"curve":"SECP256R1","x":[194,126,127,109,252,23,131,21,252,6,223,99,44,254,140,27,230,17,94,5,133,28,104,41,144,69,171,149,161,26,200,243],"y":[143,123,183,156,24,178,21,248,117,159,162,69,171,52,188,252,26,59,6,47,103,92,19,58,117,103,249,0,219,8,95,196]}}},"counter":2,"user_verified":true,"backup_eligible":false,"backup_state":false,"registration_policy":"required","extensions":{"cred_protect":"NotRequested","hmac_create_secret":"NotRequested"},"attestation":{"data":"None","metadata":"None"},"attestation_format":"None"}}"#;
const STORED_ID: &str =
    "uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130dMbFHBHI9RTFgdJQIzQ";

/// A gateway with passkeys on, its issuer on `localhost` (WebAuthn refuses IP addresses),
/// one subscriber with the app and no PIN, and the shop.
async fn setup() -> (Gateway, Sp, String) {
    let g = Gateway::start_with(|c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
        c.authenticators.enabled = vec!["app_push".into(), "passkey".into()];
    })
    .await;
    let issuer = g.state.config.issuer.clone();
    g.subscriber(&format!("+{MSISDN}"), None).await;
    let sp = g.shop().await;
    (g, sp, issuer)
}

async fn subscriber_id(g: &Gateway) -> String {
    g.store()
        .find_subscriber_by_msisdn(MSISDN)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Gives the subscriber the stored passkey (and the capability, as enrolment does).
async fn with_stored_passkey(g: &Gateway) {
    let id = subscriber_id(g).await;
    g.store()
        .insert_passkey(&PasskeyRecord {
            credential_id: STORED_ID.into(),
            subscriber_id: id.clone(),
            passkey: STORED_PASSKEY.into(),
            counter: 2,
            created_at: 1,
            last_used_at: None,
        })
        .await
        .unwrap();
    g.store()
        .update_subscriber(
            &id,
            SubscriberStatus::Active,
            &["app_push".into(), "passkey".into()],
        )
        .await
        .unwrap();
}

/// Starts an LoA3 login of the subscriber; returns the waiting path.
async fn loa3_login(g: &Gateway, sp: &Sp) -> String {
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20mc_authn\
         &acr_values=3&version=mc_di_r2_v2.3&state=st-pk&nonce=n-pk&login_hint=MSISDN%3A{MSISDN}",
        g.base,
        sp.client_id,
        urlencode(&sp.redirect_uri)
    );
    let resp = g.http().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{}", resp.text().await.unwrap());
    let wait = location(&g.base, &resp).unwrap();
    assert!(wait.contains("/authorize/wait/"), "{wait}");
    wait
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn post_json(g: &Gateway, url: &str, body: &str) -> (u16, Value) {
    let resp = g
        .http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// An assertion for `credential_id` answering `challenge`, signed with nothing valid.
fn made_up_assertion(issuer: &str, credential_id: &str, challenge: &str) -> Value {
    let client_data = json!({
        "type": "webauthn.get",
        "challenge": challenge,
        "origin": issuer,
        "crossOrigin": false,
    });
    let rp_hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"localhost");
    let mut auth_data = rp_hash.as_ref().to_vec();
    auth_data.push(0x05); // user present + user verified
    auth_data.extend_from_slice(&9u32.to_be_bytes());
    json!({
        "id": credential_id,
        "rawId": credential_id,
        "type": "public-key",
        "response": {
            "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
            "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.to_string()),
            "signature": URL_SAFE_NO_PAD.encode([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
            "userHandle": null,
        },
        "extensions": {},
    })
}

#[tokio::test]
async fn the_passkey_is_offered_at_loa3_and_every_bad_assertion_is_a_clear_4xx() {
    let (g, sp, issuer) = setup().await;

    // Without a passkey the subscriber (no PIN) cannot log in at LoA3: nothing to offer.
    let first = loa3_login_or_error(&g, &sp).await;
    assert!(
        first.is_err(),
        "LoA3 without a PIN or passkey must be refused"
    );

    with_stored_passkey(&g).await;
    let wait = loa3_login(&g, &sp).await;

    // The waiting page loads the passkey script, which is served.
    let page = g
        .http()
        .get(&wait)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/passkey.js"), "{page}");
    let js = g
        .http()
        .get(format!("{wait}/passkey.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.text()
            .await
            .unwrap()
            .contains("navigator.credentials.get")
    );

    // Options: a challenge for the subscriber's own credential, user verification required.
    let (status, options) = post_json(&g, &format!("{wait}/passkey/options"), "").await;
    assert_eq!(status, 200, "{options}");
    let pk = &options["options"]["publicKey"];
    assert_eq!(pk["userVerification"], "required", "{pk}");
    assert_eq!(pk["rpId"], "localhost");
    assert_eq!(pk["allowCredentials"][0]["id"], STORED_ID);
    let ceremony = options["ceremony"].as_str().unwrap().to_owned();
    let challenge = pk["challenge"].as_str().unwrap().to_owned();

    let finish = format!("{wait}/passkey");
    // Not JSON, no credential, the wrong content type: 400 invalid_request.
    for body in [
        "{not json",
        r#"{"ceremony":"x"}"#,
        r#"{"ceremony":1,"credential":{}}"#,
    ] {
        let (status, e) = post_json(&g, &finish, body).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}: {e}"
        );
    }
    let form = g
        .http()
        .post(&finish)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("ceremony=x")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    // A well-formed body that is not a WebAuthn assertion: 400, and the ceremony survives
    // (malformed input does not burn it).
    let (status, e) = post_json(
        &g,
        &finish,
        &json!({"ceremony": ceremony, "credential": {"id": "x"}}).to_string(),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );

    // An unknown ceremony: 400, said so.
    let (status, e) = post_json(
        &g,
        &finish,
        &json!({"ceremony": "no-such-ceremony",
                "credential": made_up_assertion(&issuer, STORED_ID, &challenge)})
        .to_string(),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{e}"
    );

    // The wrong challenge: 403 access_denied; the ceremony is spent.
    let wrong = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let (status, e) = post_json(
        &g,
        &finish,
        &json!({"ceremony": ceremony, "credential": made_up_assertion(&issuer, STORED_ID, &wrong)})
            .to_string(),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (403, Some("access_denied")),
        "{e}"
    );

    // Replaying onto the spent ceremony, even with the right challenge: 400.
    let (status, e) = post_json(
        &g,
        &finish,
        &json!({"ceremony": ceremony,
                "credential": made_up_assertion(&issuer, STORED_ID, &challenge)})
        .to_string(),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );

    // A fresh ceremony, the right challenge, a credential that is not the subscriber's: 403.
    let (_, options) = post_json(&g, &format!("{wait}/passkey/options"), "").await;
    let ceremony = options["ceremony"].as_str().unwrap();
    let challenge = options["options"]["publicKey"]["challenge"]
        .as_str()
        .unwrap();
    let stranger = URL_SAFE_NO_PAD.encode([9u8; 48]);
    let (status, e) = post_json(
        &g,
        &finish,
        &json!({"ceremony": ceremony,
                "credential": made_up_assertion(&issuer, &stranger, challenge)})
        .to_string(),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (403, Some("access_denied")),
        "{e}"
    );

    // A fresh ceremony, the right challenge and credential, a signature that is not the
    // key's: 403.
    let (_, options) = post_json(&g, &format!("{wait}/passkey/options"), "").await;
    let ceremony = options["ceremony"].as_str().unwrap();
    let challenge = options["options"]["publicKey"]["challenge"]
        .as_str()
        .unwrap();
    let (status, e) = post_json(
        &g,
        &finish,
        &json!({"ceremony": ceremony,
                "credential": made_up_assertion(&issuer, STORED_ID, challenge)})
        .to_string(),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (403, Some("access_denied")),
        "{e}"
    );

    // None of it approved the login: it still waits.
    let session = wait.rsplit('/').next().unwrap();
    let s = g.store().get_session(session).await.unwrap().unwrap();
    assert_eq!(s.status, mc_store::SessionStatus::Pending);
    let stored = g.store().get_passkey(STORED_ID).await.unwrap().unwrap();
    assert_eq!((stored.counter, stored.last_used_at), (2, None));
}

/// `Ok(wait)` or `Err(location)` of an LoA3 authorization request.
async fn loa3_login_or_error(g: &Gateway, sp: &Sp) -> Result<String, String> {
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20mc_authn\
         &acr_values=3&version=mc_di_r2_v2.3&state=st-pk0&nonce=n-pk0&login_hint=MSISDN%3A{MSISDN}",
        g.base,
        sp.client_id,
        urlencode(&sp.redirect_uri)
    );
    let resp = g.http().get(&url).send().await.unwrap();
    let to = location(&g.base, &resp).unwrap_or_default();
    if to.contains("/authorize/wait/") {
        Ok(to)
    } else {
        Err(to)
    }
}

#[tokio::test]
async fn a_login_not_waiting_for_a_passkey_gets_no_options() {
    let (g, sp, _) = setup().await;
    with_stored_passkey(&g).await;
    // LoA2: the chain is app push first (the passkey later, after the delay): not offered.
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20mc_authn\
         &acr_values=2&version=mc_di_r2_v2.3&state=st-pk2&nonce=n-pk2&login_hint=MSISDN%3A{MSISDN}",
        g.base,
        sp.client_id,
        urlencode(&sp.redirect_uri)
    );
    let resp = g.http().get(&url).send().await.unwrap();
    let wait = location(&g.base, &resp).unwrap();
    let (status, e) = post_json(&g, &format!("{wait}/passkey/options"), "").await;
    assert_eq!(
        (status, e["error"].as_str()),
        (404, Some("invalid_request")),
        "{e}"
    );
    // Unknown logins likewise.
    let (status, _) = post_json(
        &g,
        &format!("{}/authorize/wait/nope/passkey/options", g.base),
        "",
    )
    .await;
    assert_eq!(status, 404);
    // The phone answers; the login completes with the app's amr.
    g.phone(MSISDN).approve_next().await;
    let back = follow_to_redirect_uri(&g, &wait, &sp.redirect_uri).await;
    assert!(back.contains("code="), "{back}");
}

#[tokio::test]
async fn passkeys_are_not_served_when_the_authenticator_is_off() {
    let g = Gateway::start().await;
    let (status, _) = post_json(
        &g,
        &format!("{}/authorize/wait/any/passkey/options", g.base),
        "",
    )
    .await;
    assert_eq!(status, 404);
    let resp = g
        .http()
        .post(format!("{}/account/passkeys/register/start", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// The self-service login (approved on the phone); returns the account cookie pair.
async fn account_cookie(g: &Gateway, issuer: &str) -> String {
    let resp = g
        .http()
        .post(format!("{}/account/login", g.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("msisdn=%2B{MSISDN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let state_cookie = pair(resp.headers().get("set-cookie").unwrap().to_str().unwrap());
    let wait = location(&g.base, &resp).unwrap();
    g.phone(MSISDN).approve_next().await;
    let callback = follow_to_redirect_uri(g, &wait, &format!("{issuer}/account/callback")).await;
    let callback = callback.replacen(issuer, &g.base, 1);
    let done = g
        .http()
        .get(&callback)
        .header("cookie", &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let set = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("mc_account="))
        .expect("the account cookie");
    pair(&set)
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn enrolment_needs_the_phone_login_and_the_anti_forgery_token() {
    let (g, _sp, issuer) = setup().await;
    let start = format!("{}/account/passkeys/register/start", g.base);
    let finish = format!("{}/account/passkeys/register/finish", g.base);

    // Not logged in: the page sends to the account login, the API answers 401.
    let page = g
        .http()
        .get(format!("{}/account/passkeys", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302);
    let resp = g.http().post(&start).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let cookie = account_cookie(&g, &issuer).await;
    let account = g
        .http()
        .get(format!("{}/account", g.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        account.contains("/account/passkeys"),
        "the account page links to enrolment"
    );
    let page = g
        .http()
        .get(format!("{}/account/passkeys", g.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("You have no passkey yet"), "{html}");
    assert!(!html.contains(MSISDN), "the page shows the full number");
    let csrf = html
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();

    // Logged in but without the token (or a wrong one): 403.
    for token in [None, Some("forged")] {
        let mut req = g.http().post(&start).header("cookie", &cookie);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        assert_eq!(req.send().await.unwrap().status(), 403);
    }

    // With it: creation options for a passkey with user verification, for this RP.
    let resp = g
        .http()
        .post(&start)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let options: Value = resp.json().await.unwrap();
    let pk = &options["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost", "{pk}");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert!(
        !pk["user"]["name"].as_str().unwrap().contains(MSISDN),
        "{pk}"
    );
    let ceremony = options["ceremony"].as_str().unwrap().to_owned();

    let send = |body: String| {
        g.http()
            .post(&finish)
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Garbage: 400, the ceremony survives.
    let resp = send("[]".into()).await.unwrap();
    assert_eq!(resp.status(), 400);
    // A made-up attestation: 403 access_denied, the ceremony is spent.
    let fake = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {
            "attestationObject": URL_SAFE_NO_PAD.encode(b"not cbor"),
            "clientDataJSON": URL_SAFE_NO_PAD.encode(json!({"type": "webauthn.create",
                "challenge": "AAAA", "origin": issuer}).to_string()),
        },
        "extensions": {},
    });
    let resp = send(json!({"ceremony": ceremony, "credential": fake}).to_string())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let e: Value = resp.json().await.unwrap();
    assert_eq!(
        (status, e["error"].as_str()),
        (403, Some("access_denied")),
        "{e}"
    );
    let resp = send(json!({"ceremony": ceremony, "credential": fake}).to_string())
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "a spent ceremony is not found again");
    assert!(
        g.store()
            .passkeys_of(&subscriber_id(&g).await)
            .await
            .unwrap()
            .is_empty()
    );
}
