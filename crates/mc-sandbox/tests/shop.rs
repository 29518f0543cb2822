//! The demo shop "OnlineShopper" over loopback, as a browser drives it: Discovery's
//! operator-selection page, the operator's authorization endpoint, the virtual phone, the
//! shop's callback. Passwordless login (account created, then found by PCR), the two-factor
//! login (password, then the phone with `login_hint=PCR:…`), a payment with `mc_authz`,
//! a denial on the phone, and answers that belong to no request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Browser, Page, Sandbox, input_value, text_of};

/// "Log in with Mobile Connect", the number typed on the operator-selection page, OK on
/// the phone (or Cancel); returns the page the browser ends on.
async fn mc_login(sbx: &Arc<Sandbox>, b: &Browser, number: &str, decision: &'static str) -> Page {
    let out = b.get(&format!("{}/shop/login", sbx.base)).await;
    assert_eq!(out.status, 303, "{out:?}");
    let selection = out.location.unwrap();
    assert!(selection.contains("/discovery/"), "{selection}");
    let page = b.get(&selection).await;
    assert_eq!(page.status, 200, "{page:?}");
    let sid = input_value(&page.body, "session_id");
    let post_to = selection.split('?').next().unwrap();
    let back = b
        .post(
            post_to,
            &[("session_id", &sid), ("msisdn", &format!("+{number}"))],
        )
        .await;
    let to_shop = back.location.clone().unwrap();
    assert!(
        to_shop.starts_with(&format!("{}/shop/callback?", sbx.base))
            && to_shop.contains("mcc_mnc="),
        "{to_shop}"
    );
    let phone = sbx.answer_next(number, decision, None);
    let end = b.follow(back).await;
    phone.await.unwrap();
    end
}

fn account_no(page: &Page) -> String {
    let at = page.body.find("Account #").unwrap();
    page.body[at..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn passwordless_login_creates_the_account_then_finds_it_by_pcr() {
    let sbx = Arc::new(Sandbox::start("shop-login").await);
    let b = Browser::new();
    let home = b.get(&format!("{}/shop", sbx.base)).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Log in with Mobile Connect"));

    let page = mc_login(&sbx, &b, "447700901301", "approve").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.url.ends_with("/shop/account"), "{}", page.url);
    assert!(
        text_of(&page.body, "notice").contains("created"),
        "{}",
        page.body
    );
    assert_eq!(text_of(&page.body, "operator"), "Bluewave Mobile");
    assert_eq!(text_of(&page.body, "issuer"), sbx.issuer_of("bluewave"));
    assert_eq!(text_of(&page.body, "acr"), "2");
    assert!(!text_of(&page.body, "amr").is_empty());
    let pcr = text_of(&page.body, "pcr");
    assert!(pcr.len() > 10 && !pcr.contains("447700901301"), "{pcr}");
    let first = account_no(&page);

    // Another browser, the same subscriber: the same account, found by the PCR.
    let b2 = Browser::new();
    let again = mc_login(&sbx, &b2, "447700901301", "approve").await;
    assert_eq!(text_of(&again.body, "notice"), "Welcome back.");
    assert_eq!(text_of(&again.body, "pcr"), pcr);
    assert_eq!(account_no(&again), first);

    // The ported number logs in at Northstar: another operator, another account.
    let b3 = Browser::new();
    let ported = mc_login(&sbx, &b3, "447700901555", "approve").await;
    assert_eq!(text_of(&ported.body, "operator"), "Northstar Telecom");
    assert_eq!(text_of(&ported.body, "issuer"), sbx.issuer_of("northstar"));
    assert_ne!(account_no(&ported), first);
}

#[tokio::test]
async fn a_denial_on_the_phone_leaves_the_browser_logged_out() {
    let sbx = Arc::new(Sandbox::start("shop-deny").await);
    let b = Browser::new();
    let page = mc_login(&sbx, &b, "447700902301", "deny").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(text_of(&page.body, "title"), "Not logged in");
    let account = b.get(&format!("{}/shop/account", sbx.base)).await;
    assert_eq!(account.status, 303, "no account page without a login");
}

#[tokio::test]
async fn two_factor_login_asks_the_phone_of_the_stored_pcr() {
    let sbx = Arc::new(Sandbox::start("shop-2fa").await);
    let b = Browser::new();
    let page = mc_login(&sbx, &b, "447700902301", "approve").await;
    let pcr = text_of(&page.body, "pcr");
    let set = b
        .post(
            &format!("{}/shop/account/password", sbx.base),
            &[("username", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(set.status, 303, "{set:?}");
    let short = b
        .post(
            &format!("{}/shop/account/password", sbx.base),
            &[("username", "alice"), ("password", "short")],
        )
        .await;
    assert_eq!(short.status, 400);

    let b2 = Browser::new();
    let wrong = b2
        .post(
            &format!("{}/shop/password", sbx.base),
            &[("username", "alice"), ("password", "wrong horse")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.location.is_none());
    let right = b2
        .post(
            &format!("{}/shop/password", sbx.base),
            &[("username", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(right.status, 303, "{right:?}");
    let authorize = right.location.clone().unwrap();
    let expected_hint = format!("login_hint=PCR%3A{}", pcr.replace('/', "%2F"));
    assert!(
        authorize.starts_with(&sbx.issuer_of("northstar")) && authorize.contains(&expected_hint),
        "{authorize}"
    );
    let phone = sbx.answer_next("447700902301", "approve", None);
    let end = b2.follow(right).await;
    phone.await.unwrap();
    assert!(end.url.ends_with("/shop/account"), "{end:?}");
    assert_eq!(text_of(&end.body, "how"), "password + Mobile Connect");
    assert_eq!(text_of(&end.body, "pcr"), pcr);
}

#[tokio::test]
async fn a_payment_is_approved_with_mc_authz_and_checked_in_the_id_token() {
    let sbx = Arc::new(Sandbox::start("shop-pay").await);
    let b = Browser::new();
    mc_login(&sbx, &b, "447700900301", "approve").await;
    let pay = b.post(&format!("{}/shop/pay", sbx.base), &[]).await;
    assert_eq!(pay.status, 303, "{pay:?}");
    let authorize = url::Url::parse(pay.location.as_ref().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert!(q["scope"].split(' ').any(|s| s == "mc_authz"), "{q:?}");
    let context = q["context"].clone();
    let binding = q["binding_message"].clone();
    assert!(context.contains("GBP 42.00"), "{context}");
    assert!(binding.starts_with("PAY-"), "{binding}");

    let phone = {
        let sbx = sbx.clone();
        tokio::spawn(async move {
            let c = sbx.next_challenge("447700900301").await;
            assert_eq!(
                sbx.answer("447700900301", &c, "approve", None).await,
                "approved"
            );
            c
        })
    };
    let end = b.follow(pay).await;
    let shown = phone.await.unwrap();
    assert_eq!(
        shown["context"],
        context.as_str(),
        "the phone shows the context"
    );
    assert_eq!(shown["binding_message"], binding.as_str());
    assert!(end.url.ends_with("/shop/account"), "{end:?}");
    assert!(text_of(&end.body, "notice").contains("Payment approved"));
    // The row shows the id_token's displayed_data, which names both.
    let row = &end.body[end.body.find("class=\"shown\"").unwrap()..];
    let displayed = row[row.find('>').unwrap() + 1..row.find("</td>").unwrap()].to_owned();
    assert!(
        displayed.contains(&context) && displayed.contains(&binding),
        "{displayed}"
    );
}

#[tokio::test]
async fn answers_that_belong_to_no_request_get_a_page_not_a_500() {
    let sbx = Arc::new(Sandbox::start("shop-bad").await);
    let b = Browser::new();
    for q in [
        "",
        "?code=abc&state=nothing",
        "?mcc_mnc=901_02",
        "?error=access_denied",
    ] {
        let page = b.get(&format!("{}/shop/callback{q}", sbx.base)).await;
        assert!(
            page.status == 400 || page.status == 200,
            "{q}: {} {}",
            page.status,
            page.body
        );
        assert!(page.body.contains("Back to the shop"), "{q}");
    }
    let pay = b.post(&format!("{}/shop/pay", sbx.base), &[]).await;
    assert_eq!(pay.status, 303, "paying needs a login");
    assert!(pay.location.unwrap().ends_with("/shop"));
}
