//! Federated use (issue 5 item 5, the WSO2 case of seed 000): a standard OpenID Connect
//! library — the `openidconnect` crate, with its stock `CoreClient` and no Mobile Connect
//! knowledge — configured with nothing but the operator's issuer URL and the client's
//! credentials, uses the gateway as an upstream identity provider. It sends a plain OIDC
//! request (`scope=openid`, state, nonce, PKCE; no `version`, `acr_values` or
//! `login_hint`); the gateway asks the user for the number on its own page, the phone
//! approves, and the library verifies the id_token and calls userinfo. See
//! docs/federation.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, TokenResponse,
};

const ALICE: &str = "447700900301";

#[tokio::test]
async fn a_stock_oidc_client_with_only_the_issuer_logs_in_through_the_gateway() {
    let sbx = Arc::new(Sandbox::start().await);
    let shop = sbx.shop().clone();
    let redirect_uri = sbx.shop_redirect();
    // openidconnect's advice: never follow redirects from the OP.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // 1. Configuration: the issuer URL, the client id and secret. Nothing else.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(sbx.base.clone()).unwrap(), &http)
            .await
            .expect("OpenID Connect Discovery from the issuer");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(shop.client_id.clone()),
        Some(ClientSecret::new(shop.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri.clone()).unwrap());

    // 2. A plain OIDC authorization request.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "openid");
    for mc_param in ["version", "acr_values", "login_hint"] {
        assert!(
            !query.contains_key(mc_param),
            "{mc_param} is not sent by a stock client"
        );
    }

    // 3. The browser: the gateway asks for the number on its own page.
    let first = http.get(url.as_str()).send().await.unwrap();
    assert!(first.status().is_redirection(), "{}", first.status());
    let page = url
        .join(first.headers()["location"].to_str().unwrap())
        .unwrap();
    assert!(page.path().starts_with("/authorize/number/"), "{page}");
    let html = http.get(page.as_str()).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(html.text().await.unwrap().contains("name=\"msisdn\""));
    let phone = sbx.approve_next(ALICE, None);
    let typed = http
        .post(page.as_str())
        .form(&[("msisdn", "+44 7700 900301")])
        .send()
        .await
        .unwrap();
    assert!(typed.status().is_redirection(), "{}", typed.status());
    let wait = page
        .join(typed.headers()["location"].to_str().unwrap())
        .unwrap();
    let back = browser(wait.as_str(), &redirect_uri).await;
    let shown = phone.await.unwrap();
    assert_eq!(shown["client_name"], shop.short_name.as_str());

    // 4. Back at the relying party: the library's own checks.
    let back = url::Url::parse(&back).unwrap();
    let params: std::collections::HashMap<String, String> =
        back.query_pairs().into_owned().collect();
    assert_eq!(params.get("state"), Some(state.secret()), "{back}");
    let response = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("token endpoint from discovery")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = response.id_token().expect("an id_token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("the id_token verifies: signature via jwks_uri, iss, aud, exp, nonce");
    assert_eq!(
        claims.auth_context_ref().map(|a| a.as_str()),
        Some("2"),
        "a plain OIDC request defaults to LoA2"
    );
    let sub = claims.subject().clone();
    assert!(
        !sub.as_str().contains(ALICE),
        "sub is a PCR, not the number"
    );
    let userinfo: openidconnect::core::CoreUserInfoClaims = client
        .user_info(response.access_token().clone(), Some(sub.clone()))
        .expect("userinfo endpoint from discovery")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject(), &sub);
    assert!(
        userinfo.phone_number().is_none(),
        "scope openid releases no number"
    );
}
