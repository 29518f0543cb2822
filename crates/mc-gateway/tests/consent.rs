//! Consent (issue 6 item 5, docs/decisions.md "Consent"): attributes are released only with
//! consent given on the phone or in the browser; refused optional attributes leave the login
//! without them, a refused identity product refuses the login; the subscriber's
//! self-service page lists the SPs that know them and withdraws consent, which revokes that
//! SP's tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use common::*;
use flows::*;
use mc_authn::answer::{Answer, AnswerOutcome};
use mc_core::msisdn::Msisdn;
use mc_gateway::state::now;
use mc_store::{ConsentChannel, Resolution};

const MSISDN: &str = "447700900301";

/// A login request of `sp` for `scope` (LoA2, product version).
fn request(sp: &Sp, scope: &str) -> Q {
    let mut q = Q::valid(sp, MSISDN);
    q.set("scope", scope);
    q
}

async fn setup() -> (Gateway, Sp) {
    let g = Gateway::start().await;
    g.subscriber(&format!("+{MSISDN}"), None).await;
    let sp = g
        .sp(
            "OnlineShopper",
            &[
                "openid",
                "mc_authn",
                "mc_identity_phonenumber",
                "phone",
                "email",
            ],
        )
        .await;
    (g, sp)
}

async fn subscriber_id(g: &Gateway) -> String {
    g.store()
        .find_subscriber_by_msisdn(MSISDN)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Starts the login of `q` and returns the waiting URL (the phone has been asked).
async fn start(g: &Gateway, q: &Q) -> String {
    let resp = g.http().get(q.url(g)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let wait = location(&g.base, &resp).unwrap();
    assert!(wait.contains("/authorize/wait/"), "{wait}");
    wait
}

fn session_of(wait_url: &str) -> String {
    wait_url.rsplit('/').next().unwrap().to_owned()
}

/// Follows the gateway's redirects from `url` (headless) until the SP's redirect URI.
async fn to_sp(g: &Gateway, url: &str, sp: &Sp) -> String {
    follow_to_redirect_uri(g, url, &sp.redirect_uri).await
}

/// The phone answers the next challenge with `share`; returns the challenge and outcome.
async fn answer_sharing(
    g: &Gateway,
    share: bool,
) -> (mc_authn::push::DeviceChallenge, AnswerOutcome) {
    let phone = g.phone(MSISDN);
    let c = phone.next_challenge().await;
    let outcome = g
        .state
        .push_channel()
        .answer_sharing(
            &Msisdn::parse(MSISDN).unwrap(),
            &c.id,
            Answer::Approve { pin: None },
            share,
            now(),
        )
        .await
        .unwrap();
    (c, outcome)
}

#[tokio::test]
async fn consent_given_on_the_phone_releases_the_attributes_and_is_asked_once() {
    let (g, sp) = setup().await;
    let q = request(&sp, "openid mc_identity_phonenumber");
    let wait = start(&g, &q).await;

    let (challenge, outcome) = answer_sharing(&g, true).await;
    let ask = challenge
        .consent
        .expect("the phone shows the consent question");
    assert_eq!(ask.items, vec!["mc_identity_phonenumber"]);
    assert_eq!(ask.labels, vec!["Your phone number"]);
    assert!(
        ask.required,
        "an identity product cannot be refused and the login kept"
    );
    assert_eq!(outcome, AnswerOutcome::Approved);

    let back = to_sp(&g, &wait, &sp).await;
    let code = query_of(&back).get("code").cloned().expect("a code");
    let tokens = redeem(&g, &sp, &code).await;
    assert!(
        tokens["scope"]
            .as_str()
            .unwrap()
            .contains("mc_identity_phonenumber"),
        "{tokens}"
    );
    let (status, info) = userinfo(&g, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["phone_number"], format!("+{MSISDN}"), "{info}");

    let record = g
        .store()
        .consent_for(&subscriber_id(&g).await, &sp.client_id)
        .await
        .unwrap()
        .expect("a consent record");
    assert_eq!(record.scopes, vec!["mc_identity_phonenumber"]);
    assert_eq!(record.channel, Some(ConsentChannel::Phone));
    assert!(record.given_at.is_some() && record.revoked_at.is_none());

    // The next login of the same SP for the same attributes asks nothing more.
    let _wait = start(&g, &q).await;
    let again = g.phone(MSISDN).approve_next().await;
    assert_eq!(
        again.consent, None,
        "consent already given is not asked again"
    );
}

#[tokio::test]
async fn optional_attributes_refused_on_the_phone_leave_the_login_without_them() {
    let (g, sp) = setup().await;
    let mut q = request(&sp, "openid phone");
    q.del("version");
    let wait = start(&g, &q).await;

    let (challenge, outcome) = answer_sharing(&g, false).await;
    let ask = challenge
        .consent
        .expect("the phone shows the consent question");
    assert_eq!(ask.items, vec!["phone"]);
    assert!(!ask.required);
    assert_eq!(outcome, AnswerOutcome::Approved);

    let back = to_sp(&g, &wait, &sp).await;
    let code = query_of(&back).get("code").cloned().expect("login granted");
    let tokens = redeem(&g, &sp, &code).await;
    assert_eq!(
        tokens["scope"], "openid",
        "the refused scope is not granted"
    );
    let (status, info) = userinfo(&g, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{info}");
    assert!(info.get("phone_number").is_none(), "{info}");
    assert!(info["sub"].is_string(), "{info}");

    // The SP knows the subscriber now (first contact), with no attribute.
    let record = g
        .store()
        .consent_for(&subscriber_id(&g).await, &sp.client_id)
        .await
        .unwrap()
        .expect("first contact noted");
    assert!(record.scopes.is_empty() && record.given_at.is_none());
}

#[tokio::test]
async fn a_refused_identity_product_refuses_the_login() {
    let (g, sp) = setup().await;
    let q = request(&sp, "openid mc_identity_phonenumber");
    let wait = start(&g, &q).await;
    let (_, outcome) = answer_sharing(&g, false).await;
    assert_eq!(outcome, AnswerOutcome::Denied);
    let back = to_sp(&g, &wait, &sp).await;
    let (error, _) = error_of(&back);
    assert_eq!(error, "access_denied", "{back}");
    assert_eq!(
        query_of(&back).get("state").map(String::as_str),
        Some("st-1")
    );
    assert_eq!(
        g.store()
            .consent_for(&subscriber_id(&g).await, &sp.client_id)
            .await
            .unwrap(),
        None
    );
}

/// A device that cannot show the question approved the login (an OTP channel, say): the
/// browser is asked before the code is issued.
async fn approve_without_consent_screen(g: &Gateway, session_id: &str) {
    let approved = Resolution::Approved {
        acr: "2".into(),
        amr: vec!["OTP".into()],
        auth_time: now(),
    };
    assert!(
        g.store()
            .resolve_session(session_id, &approved, now())
            .await
            .unwrap()
    );
}

/// `GET` the consent page: the form's `csrf` value and the cookie set with it.
async fn consent_page(g: &Gateway, url: &str) -> (String, String, String) {
    let resp = g.http().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let html = resp.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    (csrf, set_cookie, html)
}

async fn post_form(
    g: &Gateway,
    url: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = g
        .http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap());
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

/// The `name=value` part of a `Set-Cookie`.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_owned()
}

#[tokio::test]
async fn consent_given_in_the_browser_when_the_device_cannot_show_it() {
    let (g, sp) = setup().await;
    let q = request(&sp, "openid mc_identity_phonenumber email");
    let wait = start(&g, &q).await;
    let id = session_of(&wait);
    approve_without_consent_screen(&g, &id).await;

    let resp = g.http().get(&wait).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let consent_url = location(&g.base, &resp).unwrap();
    assert_eq!(consent_url, format!("{}/authorize/consent/{id}", g.base));

    let (csrf, set_cookie, html) = consent_page(&g, &consent_url).await;
    assert!(
        html.contains("Your phone number") && html.contains("Your email address"),
        "{html}"
    );
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        &format!("Path=/authorize/consent/{id}"),
    ] {
        assert!(set_cookie.contains(attr), "{attr} missing in {set_cookie}");
    }
    let cookie = cookie_pair(&set_cookie);

    // A forged post (no cookie, or another token) records nothing and issues no code.
    let forged = post_form(
        &g,
        &consent_url,
        None,
        &[("csrf", &csrf), ("decision", "share")],
    )
    .await;
    assert_eq!(forged.status(), 200);
    let other = post_form(
        &g,
        &consent_url,
        Some(&cookie),
        &[("csrf", "x"), ("decision", "share")],
    )
    .await;
    assert_eq!(other.status(), 200);
    let sub = subscriber_id(&g).await;
    assert_eq!(
        g.store().consent_for(&sub, &sp.client_id).await.unwrap(),
        None
    );

    let shared = post_form(
        &g,
        &consent_url,
        Some(&cookie),
        &[("csrf", &csrf), ("decision", "share")],
    )
    .await;
    assert_eq!(shared.status(), 302);
    let back = location(&g.base, &shared).unwrap();
    assert!(back.starts_with(&sp.redirect_uri), "{back}");
    let tokens = redeem(&g, &sp, query_of(&back).get("code").unwrap()).await;
    let scope = tokens["scope"].as_str().unwrap();
    assert!(
        scope.contains("email") && scope.contains("mc_identity_phonenumber"),
        "{scope}"
    );
    let record = g
        .store()
        .consent_for(&sub, &sp.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.scopes, vec!["email", "mc_identity_phonenumber"]);
    assert_eq!(record.channel, Some(ConsentChannel::Browser));

    // The page is gone once answered.
    let after = g.http().get(&consent_url).send().await.unwrap();
    assert_eq!(after.status(), 302);
}

#[tokio::test]
async fn consent_declined_in_the_browser() {
    let (g, sp) = setup().await;

    // Optional attributes: the login goes on without them.
    let mut q = request(&sp, "openid email");
    q.del("version");
    let wait = start(&g, &q).await;
    approve_without_consent_screen(&g, &session_of(&wait)).await;
    let consent_url = location(&g.base, &g.http().get(&wait).send().await.unwrap()).unwrap();
    let (csrf, set_cookie, html) = consent_page(&g, &consent_url).await;
    assert!(html.contains("Continue without sharing"), "{html}");
    let resp = post_form(
        &g,
        &consent_url,
        Some(&cookie_pair(&set_cookie)),
        &[("csrf", &csrf), ("decision", "decline")],
    )
    .await;
    let back = location(&g.base, &resp).unwrap();
    let tokens = redeem(&g, &sp, query_of(&back).get("code").unwrap()).await;
    assert_eq!(tokens["scope"], "openid");

    // An identity product: access_denied, and the waiting URL cannot issue a code later.
    let q = request(&sp, "openid mc_identity_phonenumber");
    let wait = start(&g, &q).await;
    approve_without_consent_screen(&g, &session_of(&wait)).await;
    let consent_url = location(&g.base, &g.http().get(&wait).send().await.unwrap()).unwrap();
    let (csrf, set_cookie, html) = consent_page(&g, &consent_url).await;
    assert!(html.contains("Cancel login"), "{html}");
    let resp = post_form(
        &g,
        &consent_url,
        Some(&cookie_pair(&set_cookie)),
        &[("csrf", &csrf), ("decision", "decline")],
    )
    .await;
    let back = location(&g.base, &resp).unwrap();
    assert_eq!(error_of(&back).0, "access_denied", "{back}");
    let later = g.http().get(&wait).send().await.unwrap();
    assert_ne!(later.status(), 302, "no code after a refusal");
}

/// Logs in to the self-service page as the subscriber; returns the account cookie pair.
async fn account_login(g: &Gateway) -> String {
    let page = g
        .http()
        .get(format!("{}/account", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("name=\"msisdn\""));

    let resp = post_form(
        g,
        &format!("{}/account/login", g.base),
        None,
        &[("msisdn", &format!("+{MSISDN}"))],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let state_cookie = cookie_pair(resp.headers().get("set-cookie").unwrap().to_str().unwrap());
    let wait = location(&g.base, &resp).unwrap();

    let c = g.phone(MSISDN).approve_next().await;
    assert_eq!(c.client_name, "My Mobile Connect account");
    let callback = follow_to_redirect_uri(g, &wait, &format!("{}/account/callback", g.base)).await;

    // Without the browser's state cookie the code is not accepted.
    let stray = g.http().get(&callback).send().await.unwrap();
    assert_eq!(stray.status(), 400);

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
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/account"] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    cookie_pair(&set)
}

#[tokio::test]
async fn self_service_lists_providers_and_withdrawing_revokes_their_tokens() {
    let (g, sp) = setup().await;
    let other = g.sp("NewsReader", &["openid", "mc_authn"]).await;

    // OnlineShopper gets the phone number (consent on the phone), NewsReader only logs in.
    let q = request(&sp, "openid mc_identity_phonenumber");
    let code = code_for(&g, &sp, MSISDN, |e| *e = q.clone()).await;
    let shop_tokens = redeem(&g, &sp, &code).await;
    let shop_at = shop_tokens["access_token"].as_str().unwrap().to_owned();
    let code = code_for(&g, &other, MSISDN, |_| {}).await;
    let news_tokens = redeem(&g, &other, &code).await;
    let news_at = news_tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&g, &shop_at).await.0, 200);

    let cookie = account_login(&g).await;
    let page = g
        .http()
        .get(format!("{}/account", g.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("OnlineShopper Ltd") && html.contains("NewsReader Ltd"),
        "{html}"
    );
    assert!(
        html.contains("onlineshopper.example"),
        "the sector is shown: {html}"
    );
    assert!(html.contains("Your phone number"), "{html}");
    assert!(
        !html.contains("My Mobile Connect account"),
        "the page itself is not a provider"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();

    let revoke = format!("{}/account/revoke", g.base);
    // Without the anti-forgery token, or without the session: nothing happens.
    let forged = post_form(
        &g,
        &revoke,
        Some(&cookie),
        &[("csrf", "forged"), ("client_id", &sp.client_id)],
    )
    .await;
    assert_eq!(forged.status(), 403);
    let anonymous = post_form(
        &g,
        &revoke,
        None,
        &[("csrf", &csrf), ("client_id", &sp.client_id)],
    )
    .await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        userinfo(&g, &shop_at).await.0,
        200,
        "still active after forged posts"
    );

    let done = post_form(
        &g,
        &revoke,
        Some(&cookie),
        &[("csrf", &csrf), ("client_id", &sp.client_id)],
    )
    .await;
    assert_eq!(done.status(), 303);

    // That SP's token is dead, the other SP's is not; the consent is gone.
    let (status, _) = userinfo(&g, &shop_at).await;
    assert_eq!(status, 401);
    assert_eq!(userinfo(&g, &news_at).await.0, 200);
    let record = g
        .store()
        .consent_for(&subscriber_id(&g).await, &sp.client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(record.scopes.is_empty() && record.revoked_at.is_some());

    let page = g
        .http()
        .get(format!("{}/account?withdrawn=1", g.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("You withdrew your consent"), "{page}");

    // A later login asks for consent again.
    let _wait = start(&g, &q).await;
    let c = g.phone(MSISDN).next_challenge().await;
    assert!(
        c.consent.is_some(),
        "consent is asked again after withdrawal"
    );
}

#[tokio::test]
async fn consent_withdrawn_through_the_store_revokes_the_live_token() {
    // As another node's self-service page would: the withdrawal and the token revocation
    // are one store transaction.
    let (g, sp) = setup().await;
    let q = request(&sp, "openid mc_identity_phonenumber");
    let code = code_for(&g, &sp, MSISDN, |e| *e = q.clone()).await;
    let tokens = redeem(&g, &sp, &code).await;
    let at = tokens["access_token"].as_str().unwrap();
    let sub = subscriber_id(&g).await;
    let revoked = g
        .store()
        .revoke_consent(&sub, &sp.client_id, now())
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    assert_eq!(userinfo(&g, at).await.0, 401);
}
