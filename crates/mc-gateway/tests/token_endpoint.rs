//! `/token` and `/userinfo` errors over HTTP (RFC 6749 §5.2, RFC 6750 §3, digest §5):
//! status, `error`, `error_description`, `WWW-Authenticate`, `Cache-Control: no-store` and
//! the echoed `correlation_id`.
//!
//! Code expiry is not exercised here: waiting out even a 1 s `tokens.code_secs` would need
//! a sleep, and the store conformance suite (`mc_store::conformance`, "Expired code") already
//! pins that an expired code is refused and not consumed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use base64::Engine as _;
use common::*;
use flows::*;
use mc_gateway::registry;
use mc_store::ClientStatus;
use serde_json::{Value, json};

const MSISDN: &str = "447700900301";
const AUTH_FAILED: &str = "Client authentication failed";
const BAD_CODE: &str = "Authorization code doesn't exist or is invalid for the client";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// What a client-authentication case sends: a label, Basic credentials, the form.
type AuthCase<'a> = (&'a str, Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>);

/// A malformed request: a label, the form, the expected `error` and description.
type ShapeCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);

/// Status, `WWW-Authenticate`, `Cache-Control` and the JSON body.
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    cache_control: Option<String>,
    body: Value,
}

async fn answer(resp: reqwest::Response) -> Answer {
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (www_authenticate, cache_control) = (h("www-authenticate"), h("cache-control"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    Answer {
        status,
        www_authenticate,
        cache_control,
        body,
    }
}

/// Asserts an OAuth error answer: status, code, description, `no-store`.
fn assert_error(what: &str, a: &Answer, status: u16, error: &str, description: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    assert_eq!(a.body["error"], error, "{what}: {}", a.body);
    assert_eq!(
        a.body["error_description"], description,
        "{what}: {}",
        a.body
    );
    assert_eq!(
        a.cache_control.as_deref(),
        Some("no-store"),
        "{what}: Cache-Control"
    );
}

fn grant<'a>(code: &'a str, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ]
}

async fn setup() -> (Gateway, Sp) {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    (g, sp)
}

#[tokio::test]
async fn failed_client_authentication_is_401_and_does_not_burn_the_code() {
    let (g, sp) = setup().await;
    let other = g.sp("Other", &["openid", "mc_authn"]).await;
    let disabled = g.sp("Gone", &["openid", "mc_authn"]).await;
    registry::set_client_status(g.store(), &disabled.client_id, ClientStatus::Disabled)
        .await
        .unwrap();
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let body = grant(&code, &sp.redirect_uri);
    let id = sp.client_id.as_str();
    let cases: Vec<AuthCase> = vec![
        ("no client authentication", None, body.clone()),
        (
            "wrong secret (Basic)",
            Some((id, "not-the-secret")),
            body.clone(),
        ),
        ("empty secret (Basic)", Some((id, "")), body.clone()),
        (
            "another client's secret",
            Some((id, &other.secret)),
            body.clone(),
        ),
        (
            "unknown client",
            Some(("no-such-client", "x")),
            body.clone(),
        ),
        (
            "disabled client with its right secret",
            Some((&disabled.client_id, &disabled.secret)),
            body.clone(),
        ),
        (
            "client_secret_post with the wrong secret",
            None,
            [
                body.clone(),
                vec![("client_id", id), ("client_secret", "nope")],
            ]
            .concat(),
        ),
        (
            "client_id in the body without a secret",
            None,
            [body.clone(), vec![("client_id", id)]].concat(),
        ),
        (
            "Basic and body name different clients",
            Some((id, &sp.secret)),
            [body.clone(), vec![("client_id", other.client_id.as_str())]].concat(),
        ),
        (
            "Basic and body disagree on the secret",
            Some((id, &sp.secret)),
            [
                body.clone(),
                vec![("client_id", id), ("client_secret", "other")],
            ]
            .concat(),
        ),
        (
            "unsupported grant without authentication",
            None,
            vec![
                ("grant_type", "password"),
                ("username", "u"),
                ("password", "p"),
            ],
        ),
    ];
    for (what, creds, form) in cases {
        let a = answer(post_token(&g, creds, &form).await).await;
        assert_error(what, &a, 401, "invalid_client", AUTH_FAILED);
        assert!(
            a.www_authenticate
                .as_deref()
                .is_some_and(|w| w.starts_with("Basic")),
            "{what}: WWW-Authenticate {:?}",
            a.www_authenticate
        );
    }
    // Authorization headers that are not Basic credentials.
    for header in [
        "Bearer abc".to_owned(),
        "Basic !!!".to_owned(),
        "Basic".to_owned(),
        format!("Basic {}", "QUJD"), // "ABC": no colon
        basic("", &sp.secret),
    ] {
        let resp = g
            .http()
            .post(format!("{}/token", g.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &header)
            .body(serde_urlencoded::to_string(&body).unwrap())
            .send()
            .await
            .unwrap();
        let a = answer(resp).await;
        assert_error(&header, &a, 401, "invalid_client", AUTH_FAILED);
        assert!(a.www_authenticate.is_some(), "{header}");
    }
    // None of that consumed the code.
    let tokens = redeem(&g, &sp, &code).await;
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
async fn malformed_token_requests_are_400_invalid_request_or_unsupported_grant_type() {
    let (g, sp) = setup().await;
    let creds = Some((sp.client_id.as_str(), sp.secret.as_str()));
    let r = sp.redirect_uri.as_str();
    let cases: Vec<ShapeCase> = vec![
        (
            "grant_type missing",
            vec![("code", "c"), ("redirect_uri", r)],
            "invalid_request",
            "MANDATORY parameter grant_type is missing",
        ),
        (
            "grant_type empty",
            vec![("grant_type", ""), ("code", "c"), ("redirect_uri", r)],
            "invalid_request",
            "MANDATORY parameter grant_type is missing",
        ),
        (
            "grant_type password",
            vec![
                ("grant_type", "password"),
                ("username", "u"),
                ("password", "p"),
            ],
            "unsupported_grant_type",
            "The grant_type is not supported",
        ),
        (
            // Served, but not registered for this client (tests/token_manager.rs).
            "grant_type client_credentials",
            vec![("grant_type", "client_credentials"), ("scope", "mc_atp")],
            "unauthorized_client",
            "The client is not allowed to use this grant_type",
        ),
        (
            // Served, but not registered for this client (tests/token_manager.rs).
            "grant_type refresh_token",
            vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
            "unauthorized_client",
            "The client is not allowed to use this grant_type",
        ),
        (
            "grant_type in another case",
            vec![
                ("grant_type", "Authorization_Code"),
                ("code", "c"),
                ("redirect_uri", r),
            ],
            "unsupported_grant_type",
            "The grant_type is not supported",
        ),
        (
            "code missing",
            vec![("grant_type", "authorization_code"), ("redirect_uri", r)],
            "invalid_request",
            "MANDATORY parameter code is missing",
        ),
        (
            "redirect_uri missing",
            vec![("grant_type", "authorization_code"), ("code", "c")],
            "invalid_request",
            "MANDATORY parameter redirect_uri is missing",
        ),
        (
            "code twice",
            vec![
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("code", "d"),
                ("redirect_uri", r),
            ],
            "invalid_request",
            "duplicate parameters",
        ),
    ];
    for (what, form, error, description) in cases {
        let a = answer(post_token(&g, creds, &form).await).await;
        assert_error(what, &a, 400, error, description);
        assert!(a.body.get("correlation_id").is_none(), "{what}");
        // The same with a correlation_id: it is echoed.
        let mut with_corr = form.clone();
        with_corr.push(("correlation_id", "corr-tok"));
        let a = answer(post_token(&g, creds, &with_corr).await).await;
        assert_error(what, &a, 400, error, description);
        assert_eq!(a.body["correlation_id"], "corr-tok", "{what}");
    }
    // Not a form.
    for ct in [
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let resp = g
            .http()
            .post(format!("{}/token", g.base))
            .header("content-type", ct)
            .header("authorization", basic(&sp.client_id, &sp.secret))
            .body(r#"{"grant_type":"authorization_code","code":"c","redirect_uri":"r"}"#)
            .send()
            .await
            .unwrap();
        let a = answer(resp).await;
        assert_error(
            ct,
            &a,
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    // The correlation_id is also echoed on 401s.
    let a = answer(
        post_token(
            &g,
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("redirect_uri", r),
                ("correlation_id", "corr-401"),
            ],
        )
        .await,
    )
    .await;
    assert_error(
        "401 with correlation_id",
        &a,
        401,
        "invalid_client",
        AUTH_FAILED,
    );
    assert_eq!(a.body["correlation_id"], "corr-401");
}

#[tokio::test]
async fn codes_that_do_not_belong_to_the_request_are_invalid_grant() {
    let (g, sp) = setup().await;
    let other = g.sp("Other", &["openid", "mc_authn"]).await;
    let mine = Some((sp.client_id.as_str(), sp.secret.as_str()));

    let a = answer(post_token(&g, mine, &grant("no-such-code", &sp.redirect_uri)).await).await;
    assert_error("unknown code", &a, 400, "invalid_grant", BAD_CODE);
    let long = "c".repeat(300);
    let a = answer(post_token(&g, mine, &grant(&long, &sp.redirect_uri)).await).await;
    assert_error("absurdly long code", &a, 400, "invalid_grant", BAD_CODE);

    // Another client presenting the shop's code, with its own credentials and URI.
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let a = answer(
        post_token(
            &g,
            Some((&other.client_id, &other.secret)),
            &grant(&code, &other.redirect_uri),
        )
        .await,
    )
    .await;
    assert_error("code of another client", &a, 400, "invalid_grant", BAD_CODE);

    // A redirect_uri other than the authorization request's.
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    for (i, uri) in [format!("{}/", sp.redirect_uri), other.redirect_uri.clone()]
        .iter()
        .enumerate()
    {
        // The first attempt consumes the code; the second shows the same answer for a
        // fresh one.
        let code = if i == 0 {
            code.clone()
        } else {
            code_for(&g, &sp, MSISDN, |_| {}).await
        };
        let a = answer(post_token(&g, mine, &grant(&code, uri)).await).await;
        assert_error(
            &format!("redirect_uri {uri}"),
            &a,
            400,
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        );
    }

    // Replay: the second redemption fails and revokes what the first one issued.
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let tokens = redeem(&g, &sp, &code).await;
    let a = answer(post_token(&g, mine, &grant(&code, &sp.redirect_uri)).await).await;
    assert_error("replayed code", &a, 400, "invalid_grant", BAD_CODE);
    let resp = g
        .http()
        .get(format!("{}/userinfo", g.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the replayed code's token is revoked");

    // A client disabled after its code was issued cannot redeem it.
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    registry::set_client_status(g.store(), &sp.client_id, ClientStatus::Disabled)
        .await
        .unwrap();
    let a = answer(post_token(&g, mine, &grant(&code, &sp.redirect_uri)).await).await;
    assert_error(
        "disabled after the code",
        &a,
        401,
        "invalid_client",
        AUTH_FAILED,
    );
}

#[tokio::test]
async fn pkce_is_enforced_at_the_token_endpoint() {
    let (g, sp) = setup().await;
    let creds = Some((sp.client_id.as_str(), sp.secret.as_str()));
    let with_challenge = |q: &mut Q| {
        q.set("code_challenge", CHALLENGE)
            .set("code_challenge_method", "S256");
    };
    let cases: Vec<(&str, bool, Option<&str>, &str)> = vec![
        (
            "wrong verifier",
            true,
            Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            "code_verifier does not match the code_challenge",
        ),
        ("verifier missing", true, None, "code_verifier is missing"),
        (
            "verifier too short",
            true,
            Some("short"),
            "code_verifier is invalid",
        ),
        (
            "verifier with a forbidden character",
            true,
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+"),
            "code_verifier is invalid",
        ),
        (
            "verifier without a challenge (downgrade)",
            false,
            Some(VERIFIER),
            "code_verifier sent but no code_challenge was",
        ),
    ];
    for (what, challenge, verifier, description) in cases {
        let code = if challenge {
            code_for(&g, &sp, MSISDN, with_challenge).await
        } else {
            code_for(&g, &sp, MSISDN, |_| {}).await
        };
        let mut form = grant(&code, &sp.redirect_uri);
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let a = answer(post_token(&g, creds, &form).await).await;
        assert_error(what, &a, 400, "invalid_grant", description);
    }
    // The right verifier works.
    let code = code_for(&g, &sp, MSISDN, with_challenge).await;
    let mut form = grant(&code, &sp.redirect_uri);
    form.push(("code_verifier", VERIFIER));
    let resp = post_token(&g, creds, &form).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_code_presented_wrongly_is_spent() {
    let (g, sp) = setup().await;
    let other = g.sp("Other", &["openid", "mc_authn"]).await;
    let mine = Some((sp.client_id.as_str(), sp.secret.as_str()));
    let with_challenge = |q: &mut Q| {
        q.set("code_challenge", CHALLENGE)
            .set("code_challenge_method", "S256");
    };

    let code = code_for(&g, &sp, MSISDN, with_challenge).await;
    let mut wrong = grant(&code, &sp.redirect_uri);
    wrong.push((
        "code_verifier",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ));
    assert_eq!(post_token(&g, mine, &wrong).await.status(), 400);
    let mut right = grant(&code, &sp.redirect_uri);
    right.push(("code_verifier", VERIFIER));
    let a = answer(post_token(&g, mine, &right).await).await;
    assert_error("after a wrong verifier", &a, 400, "invalid_grant", BAD_CODE);

    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let theirs = Some((other.client_id.as_str(), other.secret.as_str()));
    let a = answer(post_token(&g, theirs, &grant(&code, &other.redirect_uri)).await).await;
    assert_error(
        "another client's attempt",
        &a,
        400,
        "invalid_grant",
        BAD_CODE,
    );
    let a = answer(post_token(&g, mine, &grant(&code, &sp.redirect_uri)).await).await;
    assert_error(
        "after another client's attempt",
        &a,
        400,
        "invalid_grant",
        BAD_CODE,
    );
}

#[tokio::test]
async fn concurrent_exchanges_of_one_code_issue_once_and_revoke_it() {
    let (g, sp) = setup().await;
    let mine = Some((sp.client_id.as_str(), sp.secret.as_str()));
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let form = grant(&code, &sp.redirect_uri);
    let answers = futures_util::future::join_all((0..4).map(|_| post_token(&g, mine, &form))).await;
    let mut issued = Vec::new();
    for resp in answers {
        let a = answer(resp).await;
        match a.status {
            200 => issued.push(a.body["access_token"].as_str().unwrap().to_owned()),
            _ => assert_error("a losing exchange", &a, 400, "invalid_grant", BAD_CODE),
        }
    }
    assert_eq!(issued.len(), 1, "exactly one exchange issues tokens");
    // The losers were replays: what the winner got is revoked (RFC 6749 §4.1.2).
    let resp = g
        .http()
        .get(format!("{}/userinfo", g.base))
        .bearer_auth(&issued[0])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the code's token is revoked");
}

#[tokio::test]
async fn a_successful_exchange_is_not_cacheable_and_echoes_the_correlation_id() {
    let (g, sp) = setup().await;
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    // client_secret_post, agreeing Basic + body (the Java SDK) and plain Basic all work.
    let resp = post_token(
        &g,
        Some((&sp.client_id, &sp.secret)),
        &[
            grant(&code, &sp.redirect_uri),
            vec![
                ("client_id", sp.client_id.as_str()),
                ("client_secret", sp.secret.as_str()),
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64());
    assert_eq!(
        body["correlation_id"], "corr-1",
        "from the authorization request"
    );
    let id_token = body["id_token"].as_str().unwrap();
    let claims = jwt_claims(id_token);
    assert_eq!(claims["iss"], g.base);
    assert_eq!(claims["aud"][0], sp.client_id);
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["amr"], json!(["PUSH_OK"]));
    assert_eq!(
        claims["hashed_login_hint"],
        mc_gateway::state::sha256_hex(&format!("MSISDN:{MSISDN}")),
        "docs/decisions.md, hashed_login_hint"
    );
    // at_hash: base64url of the left half of SHA-256(access_token) (OIDC Core §3.1.3.6).
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        body["access_token"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(
        claims["at_hash"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    );
    // The signing key is the JWKS's `sig` key.
    let jwks: Value = g
        .http()
        .get(format!("{}/jwks", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jwt_header(id_token);
    assert_eq!(header["alg"], "RS256");
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"] && k["use"] == "sig")
    );

    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let resp = post_token(
        &g,
        None,
        &[
            grant(&code, &sp.redirect_uri),
            vec![
                ("client_id", sp.client_id.as_str()),
                ("client_secret", sp.secret.as_str()),
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(resp.status(), 200, "client_secret_post");
}

#[tokio::test]
async fn userinfo_requires_a_valid_bearer_token() {
    let (g, sp) = setup().await;
    let url = format!("{}/userinfo", g.base);
    let http = g.http();

    // No token at all (also: a non-Bearer scheme, an empty Bearer).
    for auth in [None, Some("Basic YTpi"), Some("Bearer "), Some("Bearer")] {
        let mut req = http.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let a = answer(req.send().await.unwrap()).await;
        assert_error(
            &format!("{auth:?}"),
            &a,
            401,
            "invalid_request",
            "No Access Token",
        );
        assert!(
            a.www_authenticate
                .as_deref()
                .is_some_and(|w| w.starts_with("Bearer error=\"invalid_request\"")),
            "{auth:?}: {:?}",
            a.www_authenticate
        );
    }

    // Garbage tokens.
    let long = "t".repeat(300);
    for token in ["garbage", "eyJhbGciOiJub25lIn0.e30.", long.as_str()] {
        let a = answer(http.get(&url).bearer_auth(token).send().await.unwrap()).await;
        assert_error(
            token,
            &a,
            401,
            "invalid_token",
            "The access token is invalid or expired",
        );
        assert_eq!(
            a.www_authenticate.as_deref(),
            Some("Bearer error=\"invalid_token\""),
            "{token}"
        );
    }
    let a = answer(
        http.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("access_token=garbage")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(
        "POST garbage",
        &a,
        401,
        "invalid_token",
        "The access token is invalid or expired",
    );

    // A real token works by header and by form body.
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let tokens = redeem(&g, &sp, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    let sub = jwt_claims(tokens["id_token"].as_str().unwrap())["sub"].clone();
    let resp = http.get(&url).bearer_auth(access).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["sub"], sub);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["sub"], sub);
}
