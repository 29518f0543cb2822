//! The harness itself works: one login end to end without any SP library.

mod common;

use common::*;

#[tokio::test]
async fn harness_login_reaches_the_redirect_uri_with_a_code() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber("447700900301", None).await;
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20mc_authn&acr_values=2&version=mc_di_r2_v2.3&state=s1&nonce=n1&login_hint=MSISDN%3A447700900301",
        g.base, sp.client_id, sp.redirect_uri
    );
    let phone = g.phone("447700900301");
    let answer = tokio::spawn(async move { phone.approve_next().await });
    let back = follow_to_redirect_uri(&g, &url, &sp.redirect_uri).await;
    answer.await.unwrap();
    let q = query_of(&back);
    assert_eq!(q.get("state").map(String::as_str), Some("s1"));
    assert!(q.contains_key("code"), "{back}");
}
