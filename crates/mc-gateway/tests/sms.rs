//! The SMS authenticator end to end: a real gateway sends its SMS over SMPP 3.4 to the
//! sandbox SMSC, the test reads them as the handset would, and answers as the subscriber —
//! the code typed in the browser's form, the link's confirm/reject page — then checks the
//! redirect to the service provider and the id_token's `acr`/`amr`. Also: lockout after
//! wrong codes and unlock through provisioning, expired and unknown links, velocity limits
//! (per number, per destination prefix), an over-long request text, and a gateway stopped
//! between accepting a login and sending its SMS (the SMS goes out once, after restart).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use flows::*;
use mc_gateway::routes::sms::SmsConfig;
use mc_sandbox::smsc::{DeliveredSms, Smsc, SmscConfig};
use mc_store::{SmsChallengeRecord, SmsChallengeState, SmsMode};
use tokio::sync::broadcast;

const MSISDN: &str = "447700900401";

async fn smsc() -> Smsc {
    Smsc::start("127.0.0.1:0", SmscConfig::new("mcgw", "pw"))
        .await
        .unwrap()
}

fn sms_config(smsc_address: &str, issuer: &str) -> SmsConfig {
    serde_json::from_value(serde_json::json!({
        "smsc_address": smsc_address,
        "system_id": "mcgw",
        "password": "pw",
        "link_base": format!("{issuer}/sms/link"),
    }))
    .unwrap()
}

/// A gateway whose only authenticator is `mode`, sending to `smsc_address`.
async fn gateway(mode: &str, smsc_address: &str, tweak: impl FnOnce(&mut SmsConfig)) -> Gateway {
    let mode = mode.to_owned();
    let addr = smsc_address.to_owned();
    Gateway::start_with(move |c| {
        let mut sms = sms_config(&addr, &c.issuer);
        tweak(&mut sms);
        c.authenticators.enabled = vec![mode];
        c.authenticators.sms = Some(sms);
    })
    .await
}

/// The next SMS to `msisdn` (E.164 digits), waiting at most 10 s.
async fn next_sms(inbox: &mut broadcast::Receiver<DeliveredSms>, msisdn: &str) -> DeliveredSms {
    let to = format!("+{msisdn}");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = inbox.recv().await.unwrap();
            if m.to == to {
                return m;
            }
        }
    })
    .await
    .expect("an SMS within 10 s")
}

fn code_in(text: &str) -> String {
    let at = text.find("Code: ").expect("a code in the SMS") + 6;
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

fn link_in(text: &str) -> String {
    let at = text.find("http").expect("a link in the SMS");
    text[at..].split_whitespace().next().unwrap().to_owned()
}

/// Starts a login of `sp` for `msisdn`; returns the waiting page's URL.
async fn start_login(g: &Gateway, sp: &Sp, msisdn: &str, edit: impl FnOnce(&mut Q)) -> String {
    let mut q = Q::valid(sp, msisdn);
    edit(&mut q);
    let resp = g.http().get(q.url(g)).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    location(&g.base, &resp).unwrap()
}

async fn post_form(g: &Gateway, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    g.http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap()
}

/// Follows the waiting page (headless) to the SP.
async fn finish(g: &Gateway, wait_url: &str, sp: &Sp) -> String {
    follow_to_redirect_uri(g, wait_url, &sp.redirect_uri).await
}

async fn id_token_claims(g: &Gateway, sp: &Sp, back: &str) -> serde_json::Value {
    let q = query_of(back);
    let code = q.get("code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = redeem(g, sp, code).await;
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

/// Waits until the outbox is empty (the worker deleted what it sent).
async fn outbox_drained(g: &Gateway) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while g.store().sms_outbox_len().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the SMS outbox drains");
}

#[tokio::test]
async fn otp_login_with_the_right_code_reports_otp_ok() {
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let g = gateway("sms_otp", &smsc.local_addr().to_string(), |_| {}).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;

    let wait = start_login(&g, &sp, MSISDN, |_| {}).await;
    let sms = next_sms(&mut inbox, MSISDN).await;
    assert!(
        sms.text.starts_with("OnlineShopper: log in"),
        "{}",
        sms.text
    );
    let code = code_in(&sms.text);
    assert_eq!(code.len(), 6);

    // The waiting page carries the code form, also served on its own.
    let page = g
        .http()
        .get(&wait)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("id=\"sms-otp\""));
    let form = g.http().get(format!("{wait}/otp")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("name=\"code\""));

    let resp = post_form(&g, &format!("{wait}/otp"), &[("code", &code)]).await;
    assert_eq!(resp.status(), 303);
    let back = finish(&g, &wait, &sp).await;
    let claims = id_token_claims(&g, &sp, &back).await;
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["amr"], serde_json::json!(["OTP_OK"]));

    // The code is stored hashed: nowhere in the challenge row.
    let session_id = wait.rsplit('/').next().unwrap();
    let row = g
        .store()
        .get_sms_challenge(session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, SmsChallengeState::Confirmed);
    assert!(!row.otp_hash.unwrap().contains(&code));
    outbox_drained(&g).await;
}

#[tokio::test]
async fn wrong_codes_lock_until_provisioning_unlocks() {
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let g = gateway("sms_otp", &smsc.local_addr().to_string(), |_| {}).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;

    let wait = start_login(&g, &sp, MSISDN, |_| {}).await;
    let code = code_in(&next_sms(&mut inbox, MSISDN).await.text);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for (i, left) in ["2 tries left", "1 try left"].iter().enumerate() {
        let resp = post_form(&g, &format!("{wait}/otp"), &[("code", wrong)]).await;
        assert_eq!(resp.status(), 400, "wrong code {i}");
        assert!(resp.text().await.unwrap().contains(left));
    }
    // Garbage counts like any wrong code, and the last one refuses the login.
    let resp = post_form(&g, &format!("{wait}/otp"), &[("code", "<script>")]).await;
    assert_eq!(resp.status(), 303);
    let back = finish(&g, &wait, &sp).await;
    assert_eq!(
        error_of(&back),
        (
            "access_denied".to_owned(),
            "The client has run out of attempts to authorize by sms code".to_owned()
        )
    );
    // The right code afterwards changes nothing.
    let resp = post_form(&g, &format!("{wait}/otp"), &[("code", &code)]).await;
    assert_eq!(resp.status(), 303);

    // Locked: the next login sends no SMS and is refused.
    let sub = g
        .store()
        .find_subscriber_by_msisdn(mc_core::msisdn::Msisdn::parse(MSISDN).unwrap().as_str())
        .await
        .unwrap()
        .unwrap();
    assert!(g.store().sms_locked(&sub.id).await.unwrap());
    let sent_before = smsc.stats().submits.load(Ordering::SeqCst);
    let refused = start_login(&g, &sp, MSISDN, |_| {}).await;
    assert!(refused.starts_with(&sp.redirect_uri), "{refused}");
    assert_eq!(error_of(&refused).0, "access_denied");
    assert_eq!(smsc.stats().submits.load(Ordering::SeqCst), sent_before);

    // Provisioning lifts the lock (admin token required).
    let url = format!("{}/admin/subscribers/{}/sms-unlock", g.base, sub.id);
    let denied = g.http().post(&url).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let lifted = g
        .http()
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(lifted.status(), 200);
    assert_eq!(
        lifted.json::<serde_json::Value>().await.unwrap()["unlocked"],
        true
    );
    let wait = start_login(&g, &sp, MSISDN, |_| {}).await;
    let code = code_in(&next_sms(&mut inbox, MSISDN).await.text);
    post_form(&g, &format!("{wait}/otp"), &[("code", &code)]).await;
    let back = finish(&g, &wait, &sp).await;
    assert!(query_of(&back).contains_key("code"), "{back}");
}

#[tokio::test]
async fn url_login_confirm_is_idempotent_and_reports_sms_url_ok() {
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let g = gateway("sms_url", &smsc.local_addr().to_string(), |_| {}).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;

    let wait = start_login(&g, &sp, MSISDN, |q| {
        q.set("binding_message", "BM-42");
    })
    .await;
    let sms = next_sms(&mut inbox, MSISDN).await;
    assert!(!sms.text.contains("Code:"), "{}", sms.text);
    let link = link_in(&sms.text);
    assert!(link.starts_with(&format!("{}/sms/link/", g.base)), "{link}");

    // Opening the link (a preview fetches it too) answers nothing.
    let page = g.http().get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("OnlineShopper") && html.contains("BM-42") && html.contains("confirm"));
    let session_id = wait.rsplit('/').next().unwrap();
    let s = g.store().get_session(session_id).await.unwrap().unwrap();
    assert_eq!(s.status, mc_store::SessionStatus::Pending);

    for click in 0..2 {
        let resp = post_form(&g, &link, &[("answer", "confirm")]).await;
        assert_eq!(resp.status(), 200, "click {click}");
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("data-state=\"confirmed\"")
        );
    }
    // A reject after the confirm does not undo it.
    let resp = post_form(&g, &link, &[("answer", "reject")]).await;
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("data-state=\"confirmed\"")
    );

    let back = finish(&g, &wait, &sp).await;
    let claims = id_token_claims(&g, &sp, &back).await;
    assert_eq!(claims["amr"], serde_json::json!(["SMS_URL_OK"]));
    assert_eq!(claims["acr"], "2");
    // After the login ended, the link still says what happened.
    let resp = g.http().get(&link).send().await.unwrap();
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("data-state=\"confirmed\"")
    );
}

#[tokio::test]
async fn url_reject_refuses_the_login() {
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let g = gateway("sms_otp_url", &smsc.local_addr().to_string(), |_| {}).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;

    let wait = start_login(&g, &sp, MSISDN, |_| {}).await;
    let sms = next_sms(&mut inbox, MSISDN).await;
    let (code, link) = (code_in(&sms.text), link_in(&sms.text));
    let resp = post_form(&g, &link, &[("answer", "reject")]).await;
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("data-state=\"rejected\"")
    );
    // The code of a rejected challenge is not taken.
    post_form(&g, &format!("{wait}/otp"), &[("code", &code)]).await;
    let back = finish(&g, &wait, &sp).await;
    assert_eq!(error_of(&back).0, "access_denied");
    // Nonsense answers leave the link as it stands.
    let resp = post_form(&g, &link, &[("answer", "maybe")]).await;
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("data-state=\"rejected\"")
    );
}

#[tokio::test]
async fn otp_url_answered_by_code_reports_otp_ok() {
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let g = gateway("sms_otp_url", &smsc.local_addr().to_string(), |_| {}).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let wait = start_login(&g, &sp, MSISDN, |_| {}).await;
    let sms = next_sms(&mut inbox, MSISDN).await;
    post_form(&g, &format!("{wait}/otp"), &[("code", &code_in(&sms.text))]).await;
    let back = finish(&g, &wait, &sp).await;
    let claims = id_token_claims(&g, &sp, &back).await;
    assert_eq!(claims["amr"], serde_json::json!(["OTP_OK"]));
    // The link of a login confirmed by its code says so; confirming again changes nothing.
    let resp = post_form(&g, &link_in(&sms.text), &[("answer", "confirm")]).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("data-state=\"confirmed\"")
    );
}

#[tokio::test]
async fn expired_unknown_and_malformed_links_get_clear_pages() {
    let smsc = smsc().await;
    let g = gateway("sms_url", &smsc.local_addr().to_string(), |_| {}).await;
    // An expired challenge with a known token.
    let token = "ab".repeat(32);
    let t = mc_gateway::state::now();
    let c = SmsChallengeRecord {
        session_id: "expired-session".into(),
        subscriber_id: "nobody".into(),
        mode: SmsMode::Url,
        otp_hash: None,
        link_hash: Some(mc_authn::sms::secret::link_hash(&token)),
        attempts: 0,
        state: SmsChallengeState::Waiting,
        created_at: t - 300,
        expires_at: t - 10,
    };
    // Written straight to the store: its SMS is past its time and is dropped unsent.
    g.store()
        .create_sms_challenge(&c, "+447700900499", "old")
        .await
        .unwrap();
    let link = format!("{}/sms/link/{token}", g.base);
    let page = g.http().get(&link).send().await.unwrap();
    assert_eq!(page.status(), 410);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-state=\"expired\"")
    );
    let resp = post_form(&g, &link, &[("answer", "confirm")]).await;
    assert_eq!(resp.status(), 410);

    for bad in [
        "cd".repeat(32),
        "short".into(),
        "%2e%2e%2fetc".into(),
        "Z".repeat(64),
    ] {
        let url = format!("{}/sms/link/{bad}", g.base);
        let page = g.http().get(&url).send().await.unwrap();
        assert_eq!(page.status(), 404, "{bad}");
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("data-state=\"unknown\"")
        );
        let resp = post_form(&g, &url, &[("answer", "confirm")]).await;
        assert_eq!(resp.status(), 404, "{bad}");
    }
    // A code for a login that has no SMS challenge: back to the waiting page, no 500.
    let resp = post_form(
        &g,
        &format!("{}/authorize/wait/none/otp", g.base),
        &[("code", "1")],
    )
    .await;
    assert_eq!(resp.status(), 303);
    outbox_drained(&g).await;
    assert_eq!(smsc.stats().submits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn velocity_limits_refuse_sms_per_number_and_per_prefix() {
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let g = gateway("sms_otp", &smsc.local_addr().to_string(), |c| {
        c.per_msisdn = 1;
        c.per_prefix = 2;
        c.prefix_digits = 8;
    })
    .await;
    let sp = g.shop().await;
    for n in ["447700900401", "447700900402", "447700900403"] {
        g.subscriber(n, None).await;
    }
    // The first login of a number gets its SMS; answer it to free the number.
    let wait = start_login(&g, &sp, "447700900401", |_| {}).await;
    let code = code_in(&next_sms(&mut inbox, "447700900401").await.text);
    post_form(&g, &format!("{wait}/otp"), &[("code", &code)]).await;
    finish(&g, &wait, &sp).await;
    // The second within the window is refused without an SMS.
    let refused = start_login(&g, &sp, "447700900401", |_| {}).await;
    assert_eq!(error_of(&refused).0, "access_denied", "{refused}");
    // Another number of the same prefix: the prefix's second SMS goes out…
    let wait = start_login(&g, &sp, "447700900402", |_| {}).await;
    next_sms(&mut inbox, "447700900402").await;
    drop(wait);
    // …its third does not, whichever number.
    let refused = start_login(&g, &sp, "447700900403", |_| {}).await;
    assert_eq!(error_of(&refused).0, "access_denied", "{refused}");
    outbox_drained(&g).await;
    assert_eq!(smsc.stats().submits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_over_long_request_text_still_makes_a_short_sms() {
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let g = gateway("sms_otp_url", &smsc.local_addr().to_string(), |_| {}).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let long = "Pay 100 EUR to ".to_owned() + &"x".repeat(200);
    let wait = start_login(&g, &sp, MSISDN, |q| {
        q.set("scope", "openid mc_authz");
        q.set("context", &long);
        q.set("binding_message", "BM-7");
        q.set("client_name", "OnlineShopper");
    })
    .await;
    assert!(wait.contains("/authorize/wait/"), "{wait}");
    let sms = next_sms(&mut inbox, MSISDN).await;
    assert!(sms.text.contains("BM-7 Pay 100 EUR"), "{}", sms.text);
    assert!(sms.text.contains("...\nCode: "), "{}", sms.text);
    assert!(sms.parts <= 2, "{} parts", sms.parts);
}

/// A gateway stopped after it accepted a login (challenge and SMS committed) but before
/// the SMS left (its SMSC link never came up): the restarted gateway sends that SMS once,
/// and the login completes with its code.
#[tokio::test]
async fn an_accepted_sms_is_sent_exactly_once_after_a_restart() {
    let dir = temp_dir("sms-restart");
    // An address nothing listens on: the first gateway's SMPP link stays down.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let first_dir = dir.clone();
    // The first gateway runs on a runtime of its own, dropped to stop it: every task of
    // it (server, SMPP client, outbox worker) ends there, like a killed process's.
    let first = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let g = Gateway::start_in(first_dir, |c| {
                c.authenticators.enabled = vec!["sms_otp".into()];
                let mut sms = sms_config(&dead, &c.issuer);
                // A short lease, so that the restarted gateway may take the SMS soon.
                sms.outbox_lease_secs = 2;
                c.authenticators.sms = Some(sms);
            })
            .await;
            let sp = g.shop().await;
            g.subscriber(MSISDN, None).await;
            tx.send((g.base.clone(), sp)).unwrap();
            tokio::task::block_in_place(|| stop_rx.recv().ok());
        });
        rt.shutdown_background();
    });
    let (first_base, sp) = tokio::task::spawn_blocking(move || rx.recv().unwrap())
        .await
        .unwrap();
    let q = Q::valid(&sp, MSISDN);
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{first_base}/authorize?{}", q.encode()))
        .send()
        .await
        .unwrap();
    let wait_path = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(wait_path.contains("/authorize/wait/"), "{wait_path}");
    stop_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || first.join().unwrap())
        .await
        .unwrap();

    // Restart over the same database, now with a working SMSC.
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let addr = smsc.local_addr().to_string();
    let g = Gateway::start_in(dir, move |c| {
        c.authenticators.enabled = vec!["sms_otp".into()];
        c.authenticators.sms = Some(sms_config(&addr, &c.issuer));
    })
    .await;
    assert_eq!(
        g.store().sms_outbox_len().await.unwrap(),
        1,
        "the accepted SMS survived"
    );
    let sms = next_sms(&mut inbox, MSISDN).await;
    outbox_drained(&g).await;
    assert_eq!(
        smsc.stats().submits.load(Ordering::SeqCst),
        1,
        "sent exactly once"
    );
    // The login accepted before the restart completes with that SMS's code.
    let session = wait_path.rsplit('/').next().unwrap();
    let wait = format!("{}/authorize/wait/{session}", g.base);
    post_form(&g, &format!("{wait}/otp"), &[("code", &code_in(&sms.text))]).await;
    let back = finish(&g, &wait, &sp).await;
    let claims = id_token_claims(&g, &sp, &back).await;
    assert_eq!(claims["amr"], serde_json::json!(["OTP_OK"]));
}

/// SMS as the fallback of the chain (app push first, no delay): the waiting page's status
/// says a code is expected once the SMS has started, so a page drawn before shows the form.
#[tokio::test]
async fn the_waiting_status_announces_a_code_sent_as_a_fallback() {
    let smsc = smsc().await;
    let mut inbox = smsc.subscribe();
    let addr = smsc.local_addr().to_string();
    let g = Gateway::start_with(move |c| {
        c.authenticators.enabled = vec!["app_push".into(), "sms_otp".into()];
        c.authenticators.next_start_delay_secs = 0;
        c.authenticators.sms = Some(sms_config(&addr, &c.issuer));
    })
    .await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let wait = start_login(&g, &sp, MSISDN, |_| {}).await;
    let sms = next_sms(&mut inbox, MSISDN).await;
    let status: serde_json::Value = g
        .http()
        .get(format!("{wait}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status, serde_json::json!({"done": false, "sms_otp": true}));
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
    assert!(
        page.contains("id=\"sms-otp\""),
        "the page now asks for the code"
    );
    let resp = post_form(&g, &format!("{wait}/otp"), &[("code", &code_in(&sms.text))]).await;
    assert_eq!(resp.status(), 303);
    let back = finish(&g, &wait, &sp).await;
    assert_eq!(
        id_token_claims(&g, &sp, &back).await["amr"],
        serde_json::json!(["OTP_OK"])
    );
}
