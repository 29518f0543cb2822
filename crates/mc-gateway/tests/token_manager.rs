//! The Token Manager over HTTP: the `client_credentials` grant, introspection (RFC 7662),
//! revocation (RFC 7009) and refresh tokens (`offline_access`, rotation, reuse detection).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;
mod support;

use common::*;
use flows::*;
use mc_gateway::state::{now, sha256_hex};
use mc_store::{AccessTokenRecord, ClientMetadata};
use serde_json::{Value, json};

const MSISDN: &str = "447700900301";

/// Registers an SP with `scopes` and `metadata`.
async fn sp_with(g: &Gateway, name: &str, scopes: &[&str], metadata: ClientMetadata) -> Sp {
    let (record, secret) = support::register(g, name, scopes, metadata).await;
    Sp {
        redirect_uri: record.redirect_uris[0].clone(),
        client_id: record.client_id,
        secret,
        short_name: name.to_owned(),
    }
}

/// An ATP-style back end: `mc_atp`, the `client_credentials` grant.
async fn atp_sp(g: &Gateway, name: &str) -> Sp {
    sp_with(
        g,
        name,
        &["openid", "mc_authn", "mc_atp"],
        ClientMetadata {
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        },
    )
    .await
}

/// An SP allowed refresh tokens.
async fn offline_sp(g: &Gateway, name: &str) -> Sp {
    sp_with(
        g,
        name,
        &["openid", "mc_authn", "offline_access"],
        ClientMetadata::default(),
    )
    .await
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

async fn client_credentials(g: &Gateway, sp: &Sp, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    json_of(post_token(g, Some((&sp.client_id, &sp.secret)), &form).await).await
}

/// POSTs a form to `path` with `sp`'s Basic credentials.
async fn post_as(g: &Gateway, path: &str, sp: &Sp, form: &[(&str, &str)]) -> (u16, Value) {
    post_with(g, path, Some((&sp.client_id, &sp.secret)), form).await
}

async fn post_with(
    g: &Gateway,
    path: &str,
    credentials: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = g
        .http()
        .post(format!("{}{path}", g.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap());
    if let Some((id, secret)) = credentials {
        req = req.header("authorization", basic(id, secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn introspect(g: &Gateway, sp: &Sp, token: &str) -> Value {
    let (status, body) = post_as(g, "/introspect", sp, &[("token", token)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn revoke(g: &Gateway, sp: &Sp, form: &[(&str, &str)]) -> u16 {
    post_as(g, "/revoke", sp, form).await.0
}

/// A front-channel login of `sp` with `scope`, redeemed: the token response.
async fn login_tokens(g: &Gateway, sp: &Sp, scope: &str) -> Value {
    let code = code_for(g, sp, MSISDN, |q| {
        q.set("scope", scope);
    })
    .await;
    redeem(g, sp, &code).await
}

async fn refresh(g: &Gateway, sp: &Sp, refresh_token: &str, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    json_of(post_token(g, Some((&sp.client_id, &sp.secret)), &form).await).await
}

fn inactive() -> Value {
    json!({"active": false})
}

#[tokio::test]
async fn client_credentials_issues_a_session_less_token() {
    let g = Gateway::start().await;
    let sp = atp_sp(&g, "AtpBackEnd").await;

    let (status, body) = client_credentials(&g, &sp, Some("mc_atp")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mc_atp");
    assert_eq!(body["expires_in"], 3600);
    assert!(
        body.get("id_token").is_none(),
        "no id_token without a subscriber"
    );
    assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3");
    let token = body["access_token"].as_str().unwrap();

    // Stored by hash only, about the client alone.
    let stored = g
        .store()
        .find_access_token(&sha256_hex(token), now())
        .await
        .unwrap()
        .expect("the token is found by its hash");
    assert_eq!(stored.client_id, sp.client_id);
    assert_eq!(stored.scope, "mc_atp");
    assert_eq!(
        (stored.session_id, stored.subscriber_id, stored.sub),
        (None, None, None)
    );
    assert!(
        g.store()
            .find_access_token(token, now())
            .await
            .unwrap()
            .is_none(),
        "the raw token is not a key"
    );

    // `openid` is dropped; no scope means every client-level scope registered.
    let (_, body) = client_credentials(&g, &sp, Some("openid mc_atp")).await;
    assert_eq!(body["scope"], "mc_atp");
    let (_, body) = client_credentials(&g, &sp, None).await;
    assert_eq!(body["scope"], "mc_atp");

    // client_secret_post works too, and the operators' query-string shape (digest §8.4).
    let (status, body) = json_of(
        post_token(
            &g,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "mc_atp"),
                ("client_id", &sp.client_id),
                ("client_secret", &sp.secret),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let resp = g
        .http()
        .post(format!(
            "{}/token?grant_type=client_credentials&scope=mc_atp",
            g.base
        ))
        .header("authorization", basic(&sp.client_id, &sp.secret))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "mc_atp");
    // …but never with the secret in the URL.
    let resp = g
        .http()
        .post(format!(
            "{}/token?grant_type=client_credentials&client_id={}&client_secret={}",
            g.base, sp.client_id, sp.secret
        ))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let introspected = introspect(&g, &sp, token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["client_id"], sp.client_id.as_str());
    assert_eq!(introspected["scope"], "mc_atp");
    assert!(introspected.get("sub").is_none(), "{introspected}");
}

#[tokio::test]
async fn client_credentials_errors() {
    let g = Gateway::start().await;
    let atp = atp_sp(&g, "AtpBackEnd").await;
    let shop = g.shop().await;
    // The grant without any client-level scope registered.
    let no_atp = sp_with(
        &g,
        "NoAtp",
        &["openid", "mc_authn"],
        ClientMetadata {
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        },
    )
    .await;

    let (status, body) = client_credentials(&g, &shop, Some("mc_atp")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    for scope in ["mc_authn", "openid", "mc_bogus", "mc_atp mc_authn"] {
        let (status, body) = client_credentials(&g, &atp, Some(scope)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{scope}: {body}"
        );
    }
    let (status, body) = client_credentials(&g, &no_atp, Some("mc_atp")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let (status, body) = client_credentials(&g, &no_atp, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );

    let resp = post_token(
        &g,
        Some((&atp.client_id, "not-the-secret")),
        &[("grant_type", "client_credentials"), ("scope", "mc_atp")],
    )
    .await;
    assert!(resp.headers().contains_key("www-authenticate"));
    let (status, body) = json_of(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = json_of(
        post_token(
            &g,
            None,
            &[("grant_type", "client_credentials"), ("scope", "mc_atp")],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Registering the grant for an unknown name is refused.
    let bad = mc_gateway::registry::create_client(
        g.store(),
        &support::spec(
            &g,
            "Bad",
            &["openid"],
            ClientMetadata {
                grant_types: vec!["password".into()],
                ..Default::default()
            },
        ),
    )
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn introspection_answers_only_the_owner_about_live_tokens() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let shop = g.shop().await;
    let other = atp_sp(&g, "Other").await;

    let tokens = login_tokens(&g, &shop, "openid mc_authn").await;
    let at = tokens["access_token"].as_str().unwrap();
    let id_claims = jwt_claims(tokens["id_token"].as_str().unwrap());

    let t0 = now();
    let body = introspect(&g, &shop, at).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], shop.client_id.as_str());
    assert_eq!(body["scope"], "mc_authn openid");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["sub"], id_claims["sub"],
        "sub is the PCR of the id_token"
    );
    assert_eq!(body["acr"], "2");
    assert_eq!(body["amr"], id_claims["amr"]);
    assert_eq!(body["iss"], g.base.as_str());
    let iat = body["iat"].as_i64().unwrap();
    assert!((t0 - 60..=t0 + 1).contains(&iat), "iat {iat}");
    assert_eq!(body["exp"].as_i64().unwrap(), iat + 3600);

    // Another client learns nothing, not even that the token exists.
    assert_eq!(introspect(&g, &other, at).await, inactive());
    assert_eq!(introspect(&g, &shop, "no-such-token").await, inactive());
    assert_eq!(introspect(&g, &shop, &"x".repeat(600)).await, inactive());

    // Expired: a token whose time is up (inserted so, no waiting).
    let expired = "expired-token-value";
    g.store()
        .insert_access_token(&AccessTokenRecord {
            token_hash: sha256_hex(expired),
            session_id: None,
            client_id: shop.client_id.clone(),
            subscriber_id: None,
            sub: None,
            scope: "openid".into(),
            expires_at: now() - 1,
            issued_at: now() - 3601,
            family_id: None,
            claims: None,
        })
        .await
        .unwrap();
    assert_eq!(introspect(&g, &shop, expired).await, inactive());

    // Revoked.
    assert_eq!(revoke(&g, &shop, &[("token", at)]).await, 200);
    assert_eq!(introspect(&g, &shop, at).await, inactive());

    // Request errors: client authentication first, then the parameters.
    let (status, body) = post_with(
        &g,
        "/introspect",
        Some((&shop.client_id, "wrong")),
        &[("token", at)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = post_with(&g, "/introspect", None, &[("token", at)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = post_as(&g, "/introspect", &shop, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = post_as(
        &g,
        "/introspect",
        &shop,
        &[("token", "t"), ("token_type_hint", "id_token")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_token_type"))
    );
    let resp = g
        .http()
        .post(format!("{}/introspect", g.base))
        .header("authorization", basic(&shop.client_id, &shop.secret))
        .header("content-type", "application/json")
        .body(r#"{"token":"t"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn revocation_of_access_tokens() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let shop = g.shop().await;
    let other = atp_sp(&g, "Other").await;
    let tokens = login_tokens(&g, &shop, "openid mc_authn").await;
    let at = tokens["access_token"].as_str().unwrap();
    let userinfo = |token: String| {
        let g = &g;
        async move {
            g.http()
                .get(format!("{}/userinfo", g.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(userinfo(at.to_owned()).await, 200);

    // Unknown tokens, and another client's, are 200 and change nothing (RFC 7009 §2.2).
    assert_eq!(revoke(&g, &shop, &[("token", "no-such-token")]).await, 200);
    assert_eq!(revoke(&g, &other, &[("token", at)]).await, 200);
    assert_eq!(introspect(&g, &shop, at).await["active"], true);
    // Bad client authentication and an unknown hint are errors.
    let (status, body) = post_with(
        &g,
        "/revoke",
        Some((&shop.client_id, "wrong")),
        &[("token", at)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = post_as(
        &g,
        "/revoke",
        &shop,
        &[("token", at), ("token_type_hint", "id_token")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_token_type"))
    );
    assert_eq!(introspect(&g, &shop, at).await["active"], true);
    let (status, body) = post_as(&g, "/revoke", &shop, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // A wrong hint does not stop the search (RFC 7009 §2.1).
    let (status, body) = post_as(
        &g,
        "/revoke",
        &shop,
        &[("token", at), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(introspect(&g, &shop, at).await, inactive());
    assert_eq!(userinfo(at.to_owned()).await, 401);
    // Again: still 200.
    assert_eq!(revoke(&g, &shop, &[("token", at)]).await, 200);
}

/// `/userinfo` as a client sees it: status, `WWW-Authenticate`, body. `in_form`: the token
/// in a form body (RFC 6750 §2.2) instead of the `Authorization` header.
async fn userinfo_seen(g: &Gateway, token: &str, in_form: bool) -> (u16, Option<String>, Value) {
    let url = format!("{}/userinfo", g.base);
    let req = if in_form {
        g.http()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string([("access_token", token)]).unwrap())
    } else {
        g.http().get(url).bearer_auth(token)
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, resp.json().await.unwrap_or(Value::Null))
}

/// The throttle reads the token to name the client and hands the record to `/userinfo`:
/// the answer must stay the store's answer at the time of the handler, request by request.
#[tokio::test]
async fn userinfo_refuses_revoked_and_expired_tokens_like_unknown_ones() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let shop = g.shop().await;
    let unknown = userinfo_seen(&g, "no-such-token", false).await;
    assert_eq!(unknown.0, 401, "{unknown:?}");
    assert_eq!(userinfo_seen(&g, "no-such-token", true).await, unknown);

    let tokens = login_tokens(&g, &shop, "openid mc_authn").await;
    let at = tokens["access_token"].as_str().unwrap();
    let live = userinfo_seen(&g, at, false).await;
    assert_eq!(live.0, 200, "{live:?}");
    assert_eq!(userinfo_seen(&g, at, true).await, live);

    // Records of a live token's subscriber, but out of time: at and before `now`.
    let record = g
        .store()
        .find_access_token(&sha256_hex(at), now())
        .await
        .unwrap()
        .unwrap();
    for (token, expires_at) in [("expires-now", now()), ("expired", now() - 1)] {
        g.store()
            .insert_access_token(&AccessTokenRecord {
                token_hash: sha256_hex(token),
                expires_at,
                ..record.clone()
            })
            .await
            .unwrap();
        for in_form in [false, true] {
            assert_eq!(userinfo_seen(&g, token, in_form).await, unknown, "{token}");
        }
    }

    // Revoked after it was answered: the next requests know nothing of the earlier ones.
    assert_eq!(revoke(&g, &shop, &[("token", at)]).await, 200);
    for in_form in [false, true] {
        assert_eq!(userinfo_seen(&g, at, in_form).await, unknown);
    }
}

#[tokio::test]
async fn refresh_tokens_come_with_offline_access_only() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let sp = offline_sp(&g, "Offline").await;
    let record = g.store().get_client(&sp.client_id).await.unwrap().unwrap();
    assert!(record.grant_types.iter().any(|x| x == "refresh_token"));

    let without = login_tokens(&g, &sp, "openid mc_authn").await;
    assert!(without.get("refresh_token").is_none(), "{without}");

    let with = login_tokens(&g, &sp, "openid mc_authn offline_access").await;
    let rt = with["refresh_token"].as_str().expect("a refresh token");
    assert!(with["id_token"].is_string());
    let stored = g
        .store()
        .find_refresh_token(&sha256_hex(rt), now())
        .await
        .unwrap()
        .expect("stored by hash");
    assert_eq!(stored.client_id, sp.client_id);

    // The shop is not registered for offline_access: the scope is refused at /authorize.
    let shop = g.shop().await;
    let mut q = Q::valid(&shop, MSISDN);
    q.set("scope", "openid mc_authn offline_access");
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    let loc = location(&g.base, &resp).unwrap_or_default();
    assert_eq!(error_of(&loc).0, "invalid_scope", "{loc}");
}

/// A refreshed access token answers `/userinfo` as the first one did: the `claims` parameter
/// of the login goes with every access token of the family.
#[tokio::test]
async fn a_refreshed_token_keeps_the_claims_the_login_asked_for() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let sp = sp_with(
        &g,
        "OfflineClaims",
        &["openid", "mc_authn", "offline_access", "phone"],
        ClientMetadata::default(),
    )
    .await;
    let code = code_for(&g, &sp, MSISDN, |q| {
        q.set("scope", "openid mc_authn offline_access");
        q.set("claims", r#"{"userinfo":{"phone_number":null}}"#);
    })
    .await;
    let first = redeem(&g, &sp, &code).await;
    let (status, before) = userinfo(&g, first["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{before}");
    assert!(before["phone_number"].is_string(), "asked for: {before}");

    let (status, second) = refresh(&g, &sp, first["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 200, "{second}");
    let (status, after) = userinfo(&g, second["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["phone_number"], before["phone_number"], "{after}");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let sp = offline_sp(&g, "Offline").await;
    let other = offline_sp(&g, "OtherOffline").await;
    let first = login_tokens(&g, &sp, "openid mc_authn offline_access").await;
    let (at0, rt0) = (
        first["access_token"].as_str().unwrap().to_owned(),
        first["refresh_token"].as_str().unwrap().to_owned(),
    );
    let sub = jwt_claims(first["id_token"].as_str().unwrap())["sub"].clone();

    // Another client cannot use it, and its attempt revokes nothing.
    let (status, body) = refresh(&g, &other, &rt0, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (status, second) = refresh(&g, &sp, &rt0, None).await;
    assert_eq!(status, 200, "{second}");
    let (at1, rt1) = (
        second["access_token"].as_str().unwrap().to_owned(),
        second["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_ne!(rt1, rt0, "rotated on every use");
    assert_ne!(at1, at0);
    assert!(second.get("id_token").is_none());
    assert_eq!(second["scope"], "mc_authn offline_access openid");
    let body = introspect(&g, &sp, &at1).await;
    assert_eq!(
        (body["active"].clone(), body["sub"].clone()),
        (json!(true), sub)
    );
    let body = introspect(&g, &sp, &rt1).await;
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(introspect(&g, &sp, &rt0).await, inactive(), "rotated");

    // Narrowing is allowed, widening is not.
    let (status, third) = refresh(&g, &sp, &rt1, Some("openid")).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(third["scope"], "openid");
    let rt2 = third["refresh_token"].as_str().unwrap().to_owned();
    let at2 = third["access_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh(&g, &sp, &rt2, Some("openid phone")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    assert_eq!(
        introspect(&g, &sp, &rt2).await["active"],
        true,
        "a refused narrowing keeps the token"
    );

    // Reuse of a rotated token: refused, and the whole family is revoked.
    let (status, body) = refresh(&g, &sp, &rt0, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    for t in [&at0, &at1, &at2, &rt2] {
        assert_eq!(
            introspect(&g, &sp, t).await,
            inactive(),
            "family member {t}"
        );
    }
    let (status, _) = refresh(&g, &sp, &rt2, None).await;
    assert_eq!(status, 400, "the live refresh token died with its family");

    // Another login is another family, untouched.
    let again = login_tokens(&g, &sp, "openid mc_authn offline_access").await;
    let (status, _) = refresh(&g, &sp, again["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let sp = offline_sp(&g, "Offline").await;
    let first = login_tokens(&g, &sp, "openid mc_authn offline_access").await;
    let (status, second) = refresh(&g, &sp, first["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 200);
    let rt1 = second["refresh_token"].as_str().unwrap();
    assert_eq!(
        revoke(
            &g,
            &sp,
            &[("token", rt1), ("token_type_hint", "refresh_token")]
        )
        .await,
        200
    );
    for t in [
        first["access_token"].as_str().unwrap(),
        second["access_token"].as_str().unwrap(),
        rt1,
    ] {
        assert_eq!(introspect(&g, &sp, t).await, inactive());
    }
    let (status, body) = refresh(&g, &sp, rt1, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_the_refresh_token_too() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let sp = offline_sp(&g, "Offline").await;
    let code = code_for(&g, &sp, MSISDN, |q| {
        q.set("scope", "openid mc_authn offline_access");
    })
    .await;
    let tokens = redeem(&g, &sp, &code).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let resp = post_token(
        &g,
        Some((&sp.client_id, &sp.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &sp.redirect_uri),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(introspect(&g, &sp, rt).await, inactive());
    assert_eq!(
        introspect(&g, &sp, tokens["access_token"].as_str().unwrap()).await,
        inactive()
    );
}

#[tokio::test]
async fn metadata_advertises_the_token_manager() {
    let g = Gateway::start().await;
    let m: Value = g
        .http()
        .get(format!("{}/.well-known/openid-configuration", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["introspection_endpoint"],
        format!("{}/introspect", g.base)
    );
    assert_eq!(m["revocation_endpoint"], format!("{}/revoke", g.base));
    for key in [
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        assert_eq!(
            m[key],
            json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ]),
            "{key}"
        );
    }
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")));
    assert!(grants.contains(&json!("refresh_token")));
}
