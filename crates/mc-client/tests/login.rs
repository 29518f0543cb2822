//! The SDK against the real gateway over loopback: device-initiated logins (authn with
//! PKCE, authz with its binding message, LoA3 with a PIN, userinfo), and every way an
//! id_token or a redirect must be refused — wrong nonce, wrong issuer, expired token
//! (injected clock), tampered signature, wrong audience, acr too low, state mismatch,
//! error redirects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::*;
use mc_client::authorize::{AuthorizationRequest, LoginHint};
use mc_client::id_token::Expectations;
use mc_client::{ClientCredentials, Error, IdTokenError, MobileConnect};
use mc_core::acr::Loa;
use mc_core::msisdn::Msisdn;

const ALICE: &str = "447700900301";
const BOB_WITH_PIN: &str = "447700900302";

fn msisdn(m: &str) -> LoginHint {
    LoginHint::Msisdn(Msisdn::parse(m).unwrap())
}

/// A whole authn login; returns (operator, login).
async fn login(
    sbx: &Arc<Sandbox>,
    mc: &MobileConnect,
    req: AuthorizationRequest,
    who: &str,
    pin: Option<&str>,
) -> (
    mc_client::Operator,
    mc_client::authorize::Login,
    serde_json::Value,
) {
    let op = sbx.shop_operator(mc).await;
    let start = op.authorize(req).unwrap();
    let phone = sbx.approve_next(who, pin);
    let back = browser(&start.url, &sbx.shop_redirect()).await;
    let shown = phone.await.unwrap();
    let login = op.complete(&start.pending, &back).await.unwrap();
    (op, login, shown)
}

#[tokio::test]
async fn authn_login_end_to_end_with_pkce_and_userinfo() {
    let sbx = Arc::new(Sandbox::start().await);
    let mc = MobileConnect::new(Default::default());
    let op = sbx.shop_operator(&mc).await;
    let start = op
        .authorize(AuthorizationRequest::authn(&sbx.shop_redirect()).login_hint(msisdn(ALICE)))
        .unwrap();
    let q: std::collections::HashMap<String, String> = url::Url::parse(&start.url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(
        q["version"], "mc_di_v3.0",
        "highest version the gateway lists for mc_authn"
    );
    assert_eq!(q["login_hint"], "MSISDN:447700900301");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["acr_values"], "2");
    assert!(!q.contains_key("max-age"));

    let phone = sbx.approve_next(ALICE, None);
    let back = browser(&start.url, &sbx.shop_redirect()).await;
    let shown = phone.await.unwrap();
    assert_eq!(shown["client_name"], "OnlineShopper");
    let login = op.complete(&start.pending, &back).await.unwrap();
    let t = &login.id_token;
    assert_eq!(t.iss, sbx.base);
    assert_eq!(t.acr.as_deref(), Some("2"));
    assert!(
        !t.pcr().is_empty() && !t.pcr().contains(ALICE),
        "sub is a PCR"
    );
    assert_eq!(
        t.hashed_login_hint.as_deref(),
        Some(mc_core::id_token::hashed_login_hint(&Msisdn::parse(ALICE).unwrap()).as_str())
    );
    let info = op
        .userinfo(&login.tokens.access_token, Some(&login.id_token))
        .await
        .unwrap();
    assert_eq!(info["sub"], t.sub.as_str());
    // The code is single use: completing again is the gateway's invalid_grant, and the
    // replay revokes what the code issued (RFC 9700 §4.5).
    match op.complete(&start.pending, &back).await {
        Err(Error::Protocol { error, status, .. }) => {
            assert_eq!((status, error.as_str()), (400, "invalid_grant"))
        }
        other => panic!("{other:?}"),
    }
    match op.userinfo(&login.tokens.access_token, None).await {
        Err(Error::Protocol { status: 401, .. }) => {}
        other => panic!("revoked after the replay: {other:?}"),
    }
    // A bad access token is the gateway's 401 challenge, typed.
    match op.userinfo("not-a-token", None).await {
        Err(Error::Protocol {
            status: 401, error, ..
        }) => assert_eq!(error, "invalid_token"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn authz_shows_the_binding_message_and_the_token_carries_it() {
    let sbx = Arc::new(Sandbox::start().await);
    let mc = MobileConnect::new(Default::default());
    let req = AuthorizationRequest::authz(&sbx.shop_redirect(), "Pay GBP 25.00 to OnlineShopper")
        .binding_message("ORDER-7731")
        .login_hint(msisdn(ALICE));
    let (_, login, shown) = login(&sbx, &mc, req, ALICE, None).await;
    assert_eq!(shown["context"], "Pay GBP 25.00 to OnlineShopper");
    assert_eq!(shown["binding_message"], "ORDER-7731");
    let shown_in_token = login.id_token.displayed_data.clone().unwrap();
    assert!(
        shown_in_token.contains("ORDER-7731") && shown_in_token.contains("Pay GBP 25.00"),
        "{shown_in_token}"
    );
}

#[tokio::test]
async fn authz_without_a_context_or_short_name_is_refused_before_any_request() {
    let sbx = Sandbox::start().await;
    let mc = MobileConnect::new(Default::default());
    let s = sbx.shop();
    let anonymous = mc
        .operator_from_issuer(
            &sbx.base,
            ClientCredentials::secret_basic(&s.client_id, &s.client_secret),
        )
        .await
        .unwrap();
    let err = anonymous
        .authorize(AuthorizationRequest::authz(&sbx.shop_redirect(), "Pay"))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest(ref m) if m.contains("client_name")),
        "{err}"
    );
    let mut req = AuthorizationRequest::authz(&sbx.shop_redirect(), "Pay");
    req.context = None;
    let err = sbx
        .shop_operator(&mc)
        .await
        .authorize(req.scope("openid mc_authz"))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidRequest(ref m) if m.contains("context")),
        "{err}"
    );
}

#[tokio::test]
async fn loa3_with_pin_and_acr_too_low_is_refused() {
    let sbx = Arc::new(Sandbox::start().await);
    let mc = MobileConnect::new(Default::default());
    let req = AuthorizationRequest::authn(&sbx.shop_redirect())
        .acr_values("3")
        .login_hint(msisdn(BOB_WITH_PIN));
    let (op, login, shown) = login(&sbx, &mc, req, BOB_WITH_PIN, Some("1234")).await;
    assert_eq!(shown["loa"], "3");
    assert_eq!(login.id_token.acr.as_deref(), Some("3"));

    // An LoA2 login presented where LoA3 was required.
    let req = AuthorizationRequest::authn(&sbx.shop_redirect()).login_hint(msisdn(ALICE));
    let start = op.authorize(req).unwrap();
    let phone = sbx.approve_next(ALICE, None);
    let back = browser(&start.url, &sbx.shop_redirect()).await;
    phone.await.unwrap();
    let mut pending = start.pending.clone();
    pending.acr_values = "3".into();
    match op.complete(&pending, &back).await {
        Err(Error::IdToken(IdTokenError::AcrTooLow { required, got })) => {
            assert_eq!((required, got.as_str()), (Loa::Three, "2"))
        }
        other => panic!("{other:?}"),
    }
}

/// One real token and what it takes to check it again.
struct Issued {
    op: mc_client::Operator,
    login: mc_client::authorize::Login,
    expect: Expectations,
}

async fn issued(sbx: &Arc<Sandbox>, mc: &MobileConnect) -> Issued {
    let op = sbx.shop_operator(mc).await;
    let start = op
        .authorize(AuthorizationRequest::authn(&sbx.shop_redirect()).login_hint(msisdn(ALICE)))
        .unwrap();
    let phone = sbx.approve_next(ALICE, None);
    let back = browser(&start.url, &sbx.shop_redirect()).await;
    phone.await.unwrap();
    let login = op.complete(&start.pending, &back).await.unwrap();
    let mut expect = start.pending.expectations();
    expect.access_token = Some(login.tokens.access_token.clone());
    Issued { op, login, expect }
}

#[tokio::test]
async fn real_tokens_fail_each_check_with_its_typed_error() {
    let sbx = Arc::new(Sandbox::start().await);
    let offset = Arc::new(AtomicI64::new(0));
    let mc = MobileConnect::new(options_with_offset(offset.clone()));
    let Issued { op, login, expect } = issued(&sbx, &mc).await;
    let jwt = login.id_token.raw.clone();
    assert!(op.validate_id_token(&jwt, &expect).await.is_ok());

    // Wrong nonce.
    let mut e = expect.clone();
    e.nonce = Some("another-nonce".into());
    assert_eq!(
        op.validate_id_token(&jwt, &e).await.unwrap_err(),
        IdTokenError::InvalidNonce
    );

    // Wrong audience: the same token presented to another client of the operator.
    let other = op.with_credentials(ClientCredentials::secret_basic("another-client", "x"));
    assert_eq!(
        other.validate_id_token(&jwt, &expect).await.unwrap_err(),
        IdTokenError::InvalidAudience
    );

    // Tampered: payload edited (sub swapped), signature kept.
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims = login.id_token.claims.clone();
    claims.insert("sub".into(), "someone-else".into());
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(
        op.validate_id_token(&forged, &expect).await.unwrap_err(),
        IdTokenError::InvalidSignature
    );
    // Tampered: one signature byte flipped.
    let mut sig = base64_decode(parts[2]);
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], base64_url(&sig));
    assert_eq!(
        op.validate_id_token(&flipped, &expect).await.unwrap_err(),
        IdTokenError::InvalidSignature
    );

    // Wrong hashed_login_hint: the login was for Alice, the SP expected another number.
    let mut e = expect.clone();
    e.msisdn = Msisdn::parse("447700900303");
    assert_eq!(
        op.validate_id_token(&jwt, &e).await.unwrap_err(),
        IdTokenError::InvalidHashedLoginHint
    );

    // at_hash bound to the access token.
    let mut e = expect.clone();
    e.access_token = Some("another-access-token".into());
    assert_eq!(
        op.validate_id_token(&jwt, &e).await.unwrap_err(),
        IdTokenError::InvalidAtHash
    );

    // Expired: the clock moves past exp + 60 s of skew; within the skew it still passes.
    let exp = login.id_token.exp;
    let now = mc.now();
    offset.store(exp - now + 59, Ordering::SeqCst);
    assert!(
        op.validate_id_token(&jwt, &expect).await.is_ok(),
        "inside the 60 s skew"
    );
    offset.store(exp - now + 61, Ordering::SeqCst);
    assert!(matches!(
        op.validate_id_token(&jwt, &expect).await.unwrap_err(),
        IdTokenError::Expired { .. }
    ));
    // Clock far behind: issued in the future.
    offset.store(-3600, Ordering::SeqCst);
    assert!(matches!(
        op.validate_id_token(&jwt, &expect).await.unwrap_err(),
        IdTokenError::IssuedInFuture { .. }
    ));
}

#[tokio::test]
async fn a_token_from_another_issuer_with_the_same_keys_is_refused() {
    // Same database (so the same signing keys), served under another issuer URL.
    let dir = temp_dir("two-issuers");
    let first = Arc::new(Sandbox::start_in(dir.clone()).await);
    let mc = MobileConnect::new(Default::default());
    let Issued { login, expect, .. } = issued(&first, &mc).await;
    drop(first);
    let second = Sandbox::start_in(dir).await;
    let op = second.shop_operator(&mc).await;
    match op.validate_id_token(&login.id_token.raw, &expect).await {
        Err(IdTokenError::InvalidIssuer { expected, found }) => {
            assert_eq!(expected, second.base);
            assert_ne!(found, second.base);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn metadata_for_another_issuer_is_refused() {
    let sbx = Sandbox::start().await;
    let mc = MobileConnect::new(Default::default());
    // The same server reached by another name: its metadata names 127.0.0.1.
    let alias = sbx.base.replace("127.0.0.1", "localhost");
    match mc
        .operator_from_issuer(&alias, sbx.shop_credentials())
        .await
    {
        Err(Error::Metadata(m)) => assert!(m.contains("issuer"), "{m}"),
        Err(Error::Transport { .. }) => {} // no "localhost" resolution on this machine
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn state_mismatch_and_error_redirects_are_typed() {
    let sbx = Arc::new(Sandbox::start().await);
    let mc = MobileConnect::new(Default::default());
    let op = sbx.shop_operator(&mc).await;
    let start = op
        .authorize(AuthorizationRequest::authn(&sbx.shop_redirect()).login_hint(msisdn(ALICE)))
        .unwrap();
    let cb = sbx.shop_redirect();
    assert!(matches!(
        op.complete(&start.pending, &format!("{cb}?code=x&state=forged"))
            .await,
        Err(Error::StateMismatch)
    ));
    assert!(matches!(
        op.complete(&start.pending, &format!("{cb}?code=x")).await,
        Err(Error::StateMismatch)
    ));
    let st = &start.pending.state;
    assert!(matches!(
        op.complete(
            &start.pending,
            &format!("{cb}?code=x&state={st}&correlation_id=other")
        )
        .await,
        Err(Error::CorrelationIdMismatch { .. })
    ));

    // The user says no on the phone: the gateway redirects with access_denied.
    let deny = {
        let sbx = sbx.clone();
        tokio::spawn(async move {
            let c = sbx.next_challenge(ALICE).await;
            assert_eq!(sbx.answer(ALICE, &c, "deny", None).await, "denied");
        })
    };
    let back = browser(&start.url, &sbx.shop_redirect()).await;
    deny.await.unwrap();
    match op.complete(&start.pending, &back).await {
        Err(Error::Authorization { error, .. }) => assert_eq!(error, "access_denied"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn client_secret_post_works_too() {
    let sbx = Arc::new(Sandbox::start().await);
    let mc = MobileConnect::new(Default::default());
    let s = sbx.shop();
    let op = sbx
        .shop_operator(&mc)
        .await
        .with_credentials(ClientCredentials::secret_post(
            &s.client_id,
            &s.client_secret,
        ));
    let start = op
        .authorize(AuthorizationRequest::authn(&sbx.shop_redirect()).login_hint(msisdn(ALICE)))
        .unwrap();
    let phone = sbx.approve_next(ALICE, None);
    let back = browser(&start.url, &sbx.shop_redirect()).await;
    phone.await.unwrap();
    let login = op.complete(&start.pending, &back).await.unwrap();
    assert_eq!(login.id_token.aud, std::slice::from_ref(&s.client_id));
    // And a wrong secret is the gateway's invalid_client.
    let wrong = op.with_credentials(ClientCredentials::secret_basic(&s.client_id, "wrong"));
    match wrong.exchange_code(&start.pending, "whatever").await {
        Err(Error::Protocol { error, .. }) => assert_eq!(error, "invalid_client"),
        other => panic!("{other:?}"),
    }
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
