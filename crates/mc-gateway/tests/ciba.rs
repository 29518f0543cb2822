//! OpenID CIBA Core 1.0 over HTTP: `POST /bc-authorize` and the CIBA grant at `/token`, in
//! poll, ping and push mode, with every error of CIBA Core §11 and §13 the gateway answers,
//! signed authentication requests, `private_key_jwt`, the registration rule, metadata, the
//! configuration switch and a restart in the middle of a request.
//!
//! The harness polls every second (`interval` 1); a test that must respect the interval
//! waits [`INTERVAL`] between polls, as a conforming client would. Nothing else sleeps:
//! the phone long-polls and notifications are awaited in bounded loops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::time::Duration;

use common::{ADMIN_TOKEN, Gateway, temp_dir};
use mc_authn::answer::{Answer, AnswerOutcome};
use mc_gateway::registry::{self, RegistryError};
use mc_gateway::state::now;
use mc_store::{ClientMetadata, ClientRecord, SessionStatus, SubscriberStatus};
use serde_json::{Value, json};
use support::*;

const MSISDN: &str = "447700900301";
const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
const NOTIFY_TOKEN: &str = "notify-token-0123456789abcdef";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A little more than the harness's poll interval (1 s; `now()` counts whole seconds, so
/// any wait of at least a second moves it on by at least one).
const INTERVAL: Duration = Duration::from_millis(1050);

// ---------------------------------------------------------------------------------------
// helpers

/// A registered CIBA client and its secret.
struct Client {
    record: ClientRecord,
    secret: String,
}

impl Client {
    fn id(&self) -> &str {
        &self.record.client_id
    }

    /// `POST /bc-authorize` with Basic authentication.
    async fn bc(&self, g: &Gateway, params: &[(&str, &str)]) -> (u16, Value) {
        bc_authorize(g, Some((self.id(), &self.secret)), params).await
    }

    /// A started request's `auth_req_id` (asserting the 200 answer).
    async fn start(&self, g: &Gateway, params: &[(&str, &str)]) -> (String, Value) {
        let (status, body) = self.bc(g, params).await;
        assert_eq!(status, 200, "{body}");
        (body["auth_req_id"].as_str().unwrap().to_owned(), body)
    }

    async fn poll(&self, g: &Gateway, auth_req_id: &str) -> (u16, Value) {
        poll_token(g, self.id(), &self.secret, auth_req_id).await
    }
}

async fn bc_authorize(
    g: &Gateway,
    basic: Option<(&str, &str)>,
    params: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = g
        .http()
        .post(format!("{}/bc-authorize", g.base))
        .form(params);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Registers a CIBA client in `mode`; `edit` adjusts the metadata.
async fn ciba_client(
    g: &Gateway,
    name: &str,
    mode: &str,
    endpoint: Option<&str>,
    edit: impl FnOnce(&mut ClientMetadata),
) -> Client {
    let mut m = ClientMetadata {
        backchannel_token_delivery_mode: Some(mode.to_owned()),
        backchannel_client_notification_endpoint: endpoint.map(str::to_owned),
        // Required by the registration rule; not fetched unless the client signs something.
        jwks_uri: Some("https://sp.example/jwks.json".into()),
        ..Default::default()
    };
    edit(&mut m);
    let (record, secret) = register(g, name, &["openid", "mc_authn", "mc_authz"], m).await;
    Client { record, secret }
}

async fn subscriber(g: &Gateway, msisdn: &str) {
    g.subscriber(msisdn, None).await;
}

fn hint(msisdn: &str) -> String {
    format!("MSISDN:{msisdn}")
}

/// The phone of `msisdn` taps OK on the next challenge; returns what it showed.
async fn approve(g: &Gateway, msisdn: &str) -> common::DeviceChallenge {
    g.phone(msisdn).approve_next().await
}

async fn deny(g: &Gateway, msisdn: &str) {
    let phone = g.phone(msisdn);
    let c = phone.next_challenge().await;
    assert_eq!(
        phone.answer(&c.id, Answer::Deny).await,
        AnswerOutcome::Denied
    );
}

async fn stored_interval(g: &Gateway, auth_req_id: &str) -> (i64, Option<i64>) {
    let (_, b) = g
        .store()
        .get_backchannel(auth_req_id)
        .await
        .unwrap()
        .unwrap();
    (b.interval, b.last_poll_at)
}

async fn status_of(g: &Gateway, auth_req_id: &str) -> SessionStatus {
    g.store()
        .get_backchannel(auth_req_id)
        .await
        .unwrap()
        .unwrap()
        .0
        .status
}

/// The 200 token response: checks its shape, verifies the id_token; returns the claims.
async fn tokens_of(g: &Gateway, client_id: &str, status: u16, body: &Value) -> Value {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() >= 32));
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    verified_claims(g, client_id, body["id_token"].as_str().unwrap()).await
}

fn assertion(g: &Gateway, key: &TestKey, client_id: &str, aud: &str, jti: &str) -> String {
    key.sign(
        "ES256",
        &json!({
            "iss": client_id, "sub": client_id, "aud": format!("{}{aud}", g.base),
            "exp": now() + 120, "iat": now(), "jti": jti,
        }),
    )
}

// ---------------------------------------------------------------------------------------
// poll mode

#[tokio::test]
async fn poll_mode_pending_then_tokens_once_with_the_front_channel_sub() {
    let g = Gateway::start().await;
    subscriber(&g, MSISDN).await;
    let c = ciba_client(&g, "PollShop", "poll", None, |_| {}).await;

    let resp = g
        .http()
        .post(format!("{}/bc-authorize", g.base))
        .basic_auth(c.id(), Some(&c.secret))
        .form(&[
            ("scope", "openid mc_authn"),
            ("login_hint", &hint(MSISDN)),
            ("binding_message", "ORDER-42"),
            ("acr_values", "2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let started: Value = resp.json().await.unwrap();
    let id = started["auth_req_id"].as_str().unwrap().to_owned();
    assert!(id.len() >= 40, "256 random bits: {id}");
    assert_eq!(started["expires_in"], 120, "default_expiry_secs");
    assert_eq!(started["interval"], 1, "the harness's poll_interval_secs");

    // Pending while the phone has not answered; a client that keeps the interval never
    // gets slow_down.
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (400, "authorization_pending"));
    tokio::time::sleep(INTERVAL).await;
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (400, "authorization_pending"));

    let shown = approve(&g, MSISDN).await;
    assert_eq!(shown.client_name, "PollShop");
    assert_eq!(shown.binding_message.as_deref(), Some("ORDER-42"));
    assert_eq!(shown.loa, "2");

    tokio::time::sleep(INTERVAL).await;
    let (status, body) = c.poll(&g, &id).await;
    let claims = tokens_of(&g, c.id(), status, &body).await;
    let id_token = body["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["amr"], json!(["PUSH_OK"]));
    assert_eq!(claims["azp"], c.id());
    // CIBA has no nonce: none, or a random one nobody sent.
    if let Some(n) = claims.get("nonce") {
        let n = n.as_str().unwrap();
        assert!(n.len() >= 32, "a random nonce, not {n:?}");
    }
    assert!(
        claims
            .get("urn:openid:params:jwt:claim:auth_req_id")
            .is_none(),
        "only notified tokens name the auth_req_id"
    );
    let sub = claims["sub"].as_str().unwrap().to_owned();
    assert!(!sub.contains(MSISDN));

    // The access token works at /userinfo.
    let ui: Value = g
        .http()
        .get(format!("{}/userinfo", g.base))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["sub"], sub.as_str());

    // Take-once: the next (well-timed) poll finds the request used.
    tokio::time::sleep(INTERVAL).await;
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!(
        (status, err(&body)),
        (400, ("invalid_grant", "auth_req_id was already used"))
    );
    assert_eq!(status_of(&g, &id).await, SessionStatus::Consumed);

    // The same SP and user through the front channel: the same pairwise sub.
    let front = front_channel_login(&g, &c.record, &c.secret, MSISDN).await;
    assert_eq!(front["sub"], sub.as_str());

    // The id_token is a usable id_token_hint for the next CIBA request.
    let (status, body) = c
        .bc(
            &g,
            &[("scope", "openid mc_authn"), ("id_token_hint", &id_token)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn polling_too_fast_is_slow_down_and_adds_five_seconds() {
    let g = Gateway::start().await;
    subscriber(&g, MSISDN).await;
    let c = ciba_client(&g, "FastPoller", "poll", None, |_| {}).await;
    let (id, _) = c
        .start(
            &g,
            &[("scope", "openid mc_authn"), ("login_hint", &hint(MSISDN))],
        )
        .await;

    let (status, body) = c.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (400, "authorization_pending"));
    // Polled again at once. Whole seconds: if the second changed between the two polls the
    // second one is in time, and the third (microseconds later) cannot also cross one.
    let mut slowed = None;
    for _ in 0..2 {
        let (status, body) = c.poll(&g, &id).await;
        if err(&body).0 == "slow_down" {
            slowed = Some((status, body));
            break;
        }
        assert_eq!(err(&body).0, "authorization_pending", "{body}");
    }
    let (status, body) = slowed.expect("an immediate second poll is slow_down");
    assert_eq!(
        (status, err(&body)),
        (
            400,
            (
                "slow_down",
                "Polling too fast: wait the interval between requests"
            )
        )
    );
    let (interval, last) = stored_interval(&g, &id).await;
    assert_eq!(interval, 1 + 5, "CIBA Core §11: the interval grows by 5 s");

    // Waiting the announced interval is no longer enough: interval + 5 now applies.
    tokio::time::sleep(INTERVAL).await;
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (400, "slow_down"), "{body}");
    let (interval, last_after) = stored_interval(&g, &id).await;
    assert_eq!(interval, 1 + 5 + 5);
    assert_eq!(
        last_after, last,
        "a slow_down poll is not a poll that counts"
    );
    // It holds for an approved request too: no tokens before the interval is over.
    approve(&g, MSISDN).await;
    let (_, body) = c.poll(&g, &id).await;
    assert_eq!(err(&body).0, "slow_down");
    assert_eq!(status_of(&g, &id).await, SessionStatus::Approved);
}

#[tokio::test]
async fn requested_expiry_is_capped_and_an_expired_request_is_expired_token() {
    // Config bounds: default_expiry_secs must be 10..=max_expiry_secs; requested_expiry only
    // has to be a positive integer and is capped at max_expiry_secs, so 1 s is allowed.
    let g = Gateway::start_with(|c| {
        c.backchannel.default_expiry_secs = 30;
        c.backchannel.max_expiry_secs = 30;
    })
    .await;
    subscriber(&g, MSISDN).await;
    subscriber(&g, "447700900302").await;
    let c = ciba_client(&g, "Expiring", "poll", None, |_| {}).await;

    let (_, body) = c
        .start(
            &g,
            &[
                ("scope", "openid mc_authn"),
                ("login_hint", &hint("447700900302")),
                ("requested_expiry", "99999"),
            ],
        )
        .await;
    assert_eq!(body["expires_in"], 30, "capped at max_expiry_secs");

    let (id, body) = c
        .start(
            &g,
            &[
                ("scope", "openid mc_authn"),
                ("login_hint", &hint(MSISDN)),
                ("requested_expiry", "1"),
            ],
        )
        .await;
    assert_eq!(body["expires_in"], 1);
    // The worker ends it (no sleep: wait for the store to say so).
    let g2 = &g;
    let id2 = id.clone();
    eventually("the request expires", Duration::from_secs(5), move || {
        let id = id2.clone();
        async move { status_of(g2, &id).await == SessionStatus::Denied }
    })
    .await;
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!(
        (status, err(&body)),
        (400, ("expired_token", "The auth_req_id has expired"))
    );
    // The subscriber is free again.
    let (status, body) = c
        .bc(
            &g,
            &[("scope", "openid mc_authn"), ("login_hint", &hint(MSISDN))],
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn denial_on_the_phone_is_access_denied() {
    let g = Gateway::start().await;
    subscriber(&g, MSISDN).await;
    let c = ciba_client(&g, "Denied", "poll", None, |_| {}).await;
    let (id, _) = c
        .start(
            &g,
            &[("scope", "openid mc_authn"), ("login_hint", &hint(MSISDN))],
        )
        .await;
    deny(&g, MSISDN).await;
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!(
        (status, err(&body)),
        (400, ("access_denied", "The user denied the request"))
    );
    // Another client cannot learn anything about the request.
    let other = ciba_client(&g, "Other", "poll", None, |_| {}).await;
    let (status, body) = other.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (400, "invalid_grant"));
}

// ---------------------------------------------------------------------------------------
// ping and push

#[tokio::test]
async fn ping_mode_notifies_the_auth_req_id_then_the_poll_returns_tokens() {
    let g = Gateway::start().await;
    subscriber(&g, MSISDN).await;
    let rx = Receiver::start(0).await;
    let c = ciba_client(&g, "Pinged", "ping", Some(&rx.url), |_| {}).await;
    let (id, started) = c
        .start(
            &g,
            &[
                ("scope", "openid mc_authn"),
                ("login_hint", &hint(MSISDN)),
                ("client_notification_token", NOTIFY_TOKEN),
            ],
        )
        .await;
    assert_eq!(started["interval"], 1, "ping clients may poll too");
    approve(&g, MSISDN).await;

    let hits = rx.delivered(WITHIN).await;
    assert_eq!(hits[0].json(), json!({ "auth_req_id": id }));
    assert_eq!(
        hits[0].authorization.as_deref(),
        Some(&*format!("Bearer {NOTIFY_TOKEN}"))
    );
    assert_eq!(hits[0].content_type.as_deref(), Some("application/json"));
    let (status, body) = c.poll(&g, &id).await;
    let claims = tokens_of(&g, c.id(), status, &body).await;
    assert_eq!(claims["acr"], "2");
    settle().await;
    assert_eq!(rx.hits().len(), 1, "one notification");
}

#[tokio::test]
async fn push_mode_delivers_tokens_and_cannot_be_polled() {
    let g = Gateway::start().await;
    subscriber(&g, MSISDN).await;
    let rx = Receiver::start(0).await;
    let c = ciba_client(&g, "Pushed", "push", Some(&rx.url), |_| {}).await;
    let (id, started) = c
        .start(
            &g,
            &[
                ("scope", "openid mc_authn"),
                ("login_hint", &hint(MSISDN)),
                ("client_notification_token", NOTIFY_TOKEN),
            ],
        )
        .await;
    assert!(started.get("interval").is_none(), "push: {started}");
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (400, "unauthorized_client"));

    approve(&g, MSISDN).await;
    let hits = rx.delivered(WITHIN).await;
    let hit = &hits[0];
    assert_eq!(
        hit.authorization.as_deref(),
        Some(&*format!("Bearer {NOTIFY_TOKEN}"))
    );
    let body = hit.json();
    assert_eq!(body["auth_req_id"], id.as_str());
    assert_eq!(body["token_type"], "Bearer");
    let claims = verified_claims(&g, c.id(), body["id_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["urn:openid:params:jwt:claim:auth_req_id"],
        id.as_str()
    );
    assert_eq!(claims["acr"], "2");
    // The tokens went out by notification only.
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (400, "unauthorized_client"));
    settle().await;
    assert_eq!(rx.hits().len(), 1);
}

// ---------------------------------------------------------------------------------------
// errors of /bc-authorize

#[tokio::test]
async fn every_authentication_request_error() {
    let g = Gateway::start().await;
    for m in [
        "447700900301",
        "447700900302",
        "447700900303",
        "447700900304",
    ] {
        subscriber(&g, m).await;
    }
    registry::update_subscriber(
        g.store(),
        "447700900304",
        Some(SubscriberStatus::Suspended),
        None,
    )
    .await
    .unwrap();
    let c = ciba_client(&g, "Errors", "poll", None, |_| {}).await;
    let rx = Receiver::start(0).await;
    let ping = ciba_client(&g, "PingErr", "ping", Some(&rx.url), |_| {}).await;
    let push = ciba_client(&g, "PushErr", "push", Some(&rx.url), |_| {}).await;
    let coded = ciba_client(&g, "Coded", "poll", None, |m| {
        m.backchannel_user_code_parameter = true
    })
    .await;
    let (plain, plain_secret) =
        register(&g, "Plain", &["openid", "mc_authn"], Default::default()).await;
    let h = hint("447700900303");
    let long_message = "x".repeat(129);
    let long_code = "1".repeat(65);
    let base = [("scope", "openid mc_authn"), ("login_hint", h.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        v
    };

    // Client authentication: 401 invalid_client with a challenge.
    for (who, basic) in [
        ("unknown client", Some(("nobody", "secret"))),
        ("bad secret", Some((c.id(), "wrong-secret"))),
        ("no credentials", None),
    ] {
        let resp = {
            let mut r = g
                .http()
                .post(format!("{}/bc-authorize", g.base))
                .form(&base);
            if let Some((id, s)) = basic {
                r = r.basic_auth(id, Some(s));
            }
            r.send().await.unwrap()
        };
        assert_eq!(resp.status(), 401, "{who}");
        assert!(resp.headers().contains_key("www-authenticate"), "{who}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(err(&body).0, "invalid_client", "{who}");
    }
    // A client not registered for CIBA.
    let (status, body) = bc_authorize(&g, Some((&plain.client_id, &plain_secret)), &base).await;
    assert_eq!(
        (status, err(&body)),
        (
            400,
            (
                "unauthorized_client",
                "The client is not registered for CIBA"
            )
        )
    );

    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing scope",
            vec![("login_hint", h.as_str())],
            "invalid_scope",
        ),
        (
            "scope without openid",
            vec![("scope", "mc_authn"), ("login_hint", h.as_str())],
            "invalid_scope",
        ),
        (
            "unregistered scope",
            vec![
                ("scope", "openid mc_identity_phonenumber"),
                ("login_hint", h.as_str()),
            ],
            "invalid_scope",
        ),
        (
            "no hint",
            vec![("scope", "openid mc_authn")],
            "invalid_request",
        ),
        (
            "two hints",
            with(&[("id_token_hint", "a.b.c")]),
            "invalid_request",
        ),
        (
            "malformed hint",
            vec![("scope", "openid mc_authn"), ("login_hint", "someone")],
            "invalid_request",
        ),
        (
            "unknown user",
            vec![
                ("scope", "openid mc_authn"),
                ("login_hint", "MSISDN:447700900999"),
            ],
            "unknown_user_id",
        ),
        (
            "suspended user",
            vec![
                ("scope", "openid mc_authn"),
                ("login_hint", "MSISDN:447700900304"),
            ],
            "unknown_user_id",
        ),
        (
            "binding_message too long",
            [
                base.as_slice(),
                &[("binding_message", long_message.as_str())],
            ]
            .concat(),
            "invalid_binding_message",
        ),
        (
            "binding_message with a control character",
            with(&[("binding_message", "pay\nnow")]),
            "invalid_binding_message",
        ),
        (
            "requested_expiry 0",
            with(&[("requested_expiry", "0")]),
            "invalid_request",
        ),
        (
            "requested_expiry negative",
            with(&[("requested_expiry", "-5")]),
            "invalid_request",
        ),
        (
            "requested_expiry not a number",
            with(&[("requested_expiry", "soon")]),
            "invalid_request",
        ),
        (
            "acr_values unsupported",
            with(&[("acr_values", "9")]),
            "invalid_request",
        ),
        (
            "duplicate parameter",
            with(&[("scope", "openid mc_authn")]),
            "invalid_request",
        ),
        (
            "claims not JSON",
            with(&[("claims", "{nope")]),
            "invalid_request",
        ),
    ];
    for (why, params, code) in &cases {
        let (status, body) = c.bc(&g, params).await;
        assert_eq!((status, err(&body).0), (400, *code), "{why}: {body}");
    }
    let (_, body) = c
        .bc(
            &g,
            &[
                ("scope", "openid mc_authn"),
                ("login_hint", "MSISDN:447700900999"),
            ],
        )
        .await;
    assert_eq!(err(&body).1, "The user could not be identified");

    // Not a form body.
    let resp = g
        .http()
        .post(format!("{}/bc-authorize", g.base))
        .basic_auth(c.id(), Some(&c.secret))
        .json(&json!({"scope": "openid mc_authn", "login_hint": h}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(err(&body).0, "invalid_request");

    // user_code: required when registered.
    let (status, body) = coded.bc(&g, &base).await;
    assert_eq!(
        (status, err(&body)),
        (
            400,
            (
                "missing_user_code",
                "A user_code is required for this client"
            )
        )
    );
    let (status, body) = coded
        .bc(
            &g,
            &[base.as_slice(), &[("user_code", long_code.as_str())]].concat(),
        )
        .await;
    assert_eq!((status, err(&body).0), (400, "invalid_user_code"), "{body}");
    // The code must be the subscriber's own: none provisioned yet → invalid.
    let (status, body) = coded.bc(&g, &with(&[("user_code", "4711")])).await;
    assert_eq!((status, err(&body).0), (400, "invalid_user_code"), "{body}");
    mc_gateway::registry::set_subscriber_user_code(g.store(), "+447700900303", Some("4711"))
        .await
        .unwrap();

    // Ping and push need a client_notification_token, of at least 16 characters.
    for n in [&ping, &push] {
        let (status, body) = n.bc(&g, &base).await;
        assert_eq!(
            (status, err(&body)),
            (
                400,
                ("invalid_request", "client_notification_token is required")
            )
        );
        let (status, body) = n
            .bc(&g, &with(&[("client_notification_token", "short")]))
            .await;
        assert_eq!(
            (status, err(&body)),
            (
                400,
                ("invalid_request", "client_notification_token is invalid")
            )
        );
    }

    // Busy: one live transaction per subscriber, whichever client started it.
    let (status, body) = coded.bc(&g, &with(&[("user_code", "4711")])).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.bc(&g, &base).await;
    assert_eq!(
        (status, err(&body)),
        (
            400,
            ("access_denied", "The user is busy with another transaction")
        )
    );
    let (status, body) = ping
        .bc(&g, &with(&[("client_notification_token", NOTIFY_TOKEN)]))
        .await;
    assert_eq!((status, err(&body).0), (400, "access_denied"), "{body}");
    // The user_code was shown with the request? The phone sees the binding data it has.
    let shown = g.phone("447700900303").next_challenge().await;
    assert_eq!(shown.client_name, "Coded");
    // Nothing was notified for refused requests.
    assert!(rx.hits().is_empty());
}

// ---------------------------------------------------------------------------------------
// signed requests and private_key_jwt

#[tokio::test]
async fn a_client_registered_for_signed_requests_must_sign_them() {
    let g = Gateway::start().await;
    for m in ["447700900301", "447700900302"] {
        subscriber(&g, m).await;
    }
    let key = TestKey::rsa("sig-1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let c = ciba_client(&g, "Signer", "poll", None, |m| {
        m.jwks_uri = Some(server.uri.clone());
        m.backchannel_authentication_request_signing_alg = Some("RS256".into());
    })
    .await;
    let request = |aud: Value, extra: Value| {
        let mut claims = json!({
            "iss": c.id(), "aud": aud, "exp": now() + 300, "iat": now(), "nbf": now(),
            "jti": format!("jti-{}", now()), "scope": "openid mc_authn",
            "login_hint": hint(MSISDN), "binding_message": "SIGNED-1",
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };

    // Unsigned parameters are refused for this client.
    let (status, body) = c
        .bc(
            &g,
            &[("scope", "openid mc_authn"), ("login_hint", &hint(MSISDN))],
        )
        .await;
    assert_eq!(
        (status, err(&body)),
        (
            400,
            (
                "invalid_request",
                "This client must send a signed authentication request"
            )
        )
    );

    // Refusals: wrong aud, expired, wrong iss, no jti, other key, other alg, alg none.
    let issuer = json!(g.base);
    let refused: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            key.sign(
                "RS256",
                &request(json!("https://other-op.example"), json!({})),
            ),
        ),
        (
            "expired",
            key.sign(
                "RS256",
                &request(issuer.clone(), json!({"exp": now() - 10})),
            ),
        ),
        (
            "iss another client",
            key.sign("RS256", &request(issuer.clone(), json!({"iss": "someone"}))),
        ),
        (
            "iat in the future",
            key.sign(
                "RS256",
                &request(issuer.clone(), json!({"iat": now() + 3600})),
            ),
        ),
        (
            "no jti",
            key.sign("RS256", &request(issuer.clone(), json!({"jti": null}))),
        ),
        (
            "another key under the kid",
            TestKey::rsa("sig-1").sign("RS256", &request(issuer.clone(), json!({}))),
        ),
        (
            "PS256 while RS256 is registered",
            key.sign("PS256", &request(issuer.clone(), json!({}))),
        ),
        ("alg none", unsigned(&request(issuer.clone(), json!({})))),
        ("not a JWS", "not-a-jws".to_owned()),
    ];
    for (why, jws) in &refused {
        let (status, body) = c.bc(&g, &[("request", jws)]).await;
        assert_eq!(
            (status, err(&body).0),
            (400, "invalid_request"),
            "{why}: {body}"
        );
    }
    let (_, body) = c
        .bc(
            &g,
            &[(
                "request",
                &key.sign(
                    "RS256",
                    &request(json!("https://other-op.example"), json!({})),
                ),
            )],
        )
        .await;
    assert_eq!(
        err(&body).1,
        "The signed authentication request has invalid iss, aud, exp, iat, nbf or jti"
    );
    // The claims inside are checked like parameters.
    let (status, body) = c
        .bc(
            &g,
            &[(
                "request",
                &key.sign(
                    "RS256",
                    &request(issuer.clone(), json!({"binding_message": "x".repeat(200)})),
                ),
            )],
        )
        .await;
    assert_eq!((status, err(&body).0), (400, "invalid_binding_message"));

    // Signed right: accepted, with aud the issuer or the endpoint; the phone shows the
    // signed binding_message.
    let (status, body) = c
        .bc(
            &g,
            &[(
                "request",
                &key.sign("RS256", &request(issuer.clone(), json!({}))),
            )],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let shown = approve(&g, MSISDN).await;
    assert_eq!(shown.binding_message.as_deref(), Some("SIGNED-1"));
    let (status, body) = c.poll(&g, &id).await;
    tokens_of(&g, c.id(), status, &body).await;

    let endpoint = json!(format!("{}/bc-authorize", g.base));
    let (status, body) = c
        .bc(
            &g,
            &[(
                "request",
                &key.sign(
                    "RS256",
                    &request(endpoint, json!({"login_hint": hint("447700900302")})),
                ),
            )],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.hits(), 1, "the jwks_uri is fetched once and cached");
}

#[tokio::test]
async fn private_key_jwt_authenticates_at_bc_authorize_and_token() {
    let g = Gateway::start().await;
    subscriber(&g, MSISDN).await;
    let key = TestKey::ec("pkj-1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let c = ciba_client(&g, "Asserting", "poll", None, |m| {
        m.jwks_uri = Some(server.uri.clone());
        m.token_endpoint_auth_method = Some("private_key_jwt".into());
    })
    .await;
    let params = |a: &str| {
        vec![
            ("client_assertion_type", ASSERTION_TYPE.to_owned()),
            ("client_assertion", a.to_owned()),
            ("scope", "openid mc_authn".to_owned()),
            ("login_hint", hint(MSISDN)),
        ]
    };
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let http = g.http();
        let url = format!("{}{path}", g.base);
        async move {
            let resp = http.post(url).form(&form).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };

    // The secret does not work for this client.
    let (status, body) = c
        .bc(
            &g,
            &[("scope", "openid mc_authn"), ("login_hint", &hint(MSISDN))],
        )
        .await;
    assert_eq!((status, err(&body).0), (401, "invalid_client"));

    let a = assertion(&g, &key, c.id(), "/bc-authorize", "bc-1");
    let (status, body) = post("/bc-authorize", params(&a)).await;
    assert_eq!(status, 200, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    // Replayed assertion, and one from a key the client never registered.
    let (status, body) = post("/bc-authorize", params(&a)).await;
    assert_eq!((status, err(&body).0), (401, "invalid_client"));
    let forged = assertion(&g, &TestKey::ec("pkj-1"), c.id(), "/bc-authorize", "bc-2");
    let (status, body) = post("/bc-authorize", params(&forged)).await;
    assert_eq!((status, err(&body).0), (401, "invalid_client"));

    approve(&g, MSISDN).await;
    let token_form = |a: String| {
        vec![
            ("grant_type", CIBA_GRANT.to_owned()),
            ("auth_req_id", id.clone()),
            ("client_assertion_type", ASSERTION_TYPE.to_owned()),
            ("client_assertion", a),
        ]
    };
    // Basic with the secret at /token: refused.
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (401, "invalid_client"));
    let (status, body) = post(
        "/token",
        token_form(assertion(&g, &key, c.id(), "/token", "tk-1")),
    )
    .await;
    let claims = tokens_of(&g, c.id(), status, &body).await;
    assert_eq!(claims["aud"], json!([c.id()]));
}

// ---------------------------------------------------------------------------------------
// registration, metadata, configuration

#[tokio::test]
async fn ciba_clients_must_register_a_jwks_uri() {
    let g = Gateway::start().await;
    let no_keys = ClientMetadata {
        backchannel_token_delivery_mode: Some("poll".into()),
        ..Default::default()
    };
    match registry::create_client(g.store(), &spec(&g, "NoKeys", &["openid"], no_keys)).await {
        Err(RegistryError::Invalid(why)) => assert!(why.contains("jwks_uri"), "{why}"),
        other => panic!("registered without jwks_uri: {other:?}"),
    }
    // Inline keys are not enough either: CIBA Core §4 asks for a jwks_uri.
    let inline = ClientMetadata {
        backchannel_token_delivery_mode: Some("poll".into()),
        jwks: Some(jwks(&[&TestKey::ec("e")])),
        ..Default::default()
    };
    assert!(matches!(
        registry::create_client(g.store(), &spec(&g, "Inline", &["openid"], inline)).await,
        Err(RegistryError::Invalid(_))
    ));
    // Ping without a notification endpoint, an unknown mode.
    for (mode, endpoint) in [("ping", None), ("push", None), ("carrier-pigeon", None)] {
        let m = ClientMetadata {
            backchannel_token_delivery_mode: Some(mode.into()),
            backchannel_client_notification_endpoint: endpoint,
            jwks_uri: Some("https://sp.example/jwks.json".into()),
            ..Default::default()
        };
        assert!(
            matches!(
                registry::create_client(g.store(), &spec(&g, "Bad", &["openid"], m)).await,
                Err(RegistryError::Invalid(_))
            ),
            "{mode}"
        );
    }
    // Through the admin API: 400 naming the field.
    let resp = g
        .http()
        .post(format!("{}/admin/v1/clients", g.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "Api Ltd", "short_name": "Api",
            "redirect_uris": ["https://api.example/cb"],
            "metadata": {"backchannel_token_delivery_mode": "poll"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    assert!(body.contains("jwks_uri"), "{body}");
    // With it: registered, with the CIBA grant.
    let resp = g
        .http()
        .post(format!("{}/admin/v1/clients", g.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "Api Ltd", "short_name": "Api",
            "redirect_uris": ["https://api.example/cb"],
            "metadata": {"backchannel_token_delivery_mode": "poll",
                         "jwks_uri": "https://api.example/jwks.json"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["grant_types"]
            .as_array()
            .unwrap()
            .contains(&json!(CIBA_GRANT)),
        "{body}"
    );
}

async fn metadata(g: &Gateway) -> Value {
    g.http()
        .get(format!("{}/.well-known/openid-configuration", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn metadata_advertises_ciba_and_switching_it_off_removes_route_and_keys() {
    let g = Gateway::start().await;
    let m = metadata(&g).await;
    assert_eq!(
        m["backchannel_authentication_endpoint"],
        format!("{}/bc-authorize", g.base)
    );
    assert_eq!(
        m["backchannel_token_delivery_modes_supported"],
        json!(["poll", "ping", "push"])
    );
    assert_eq!(m["backchannel_user_code_parameter_supported"], true);
    assert!(
        m["backchannel_authentication_request_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("RS256"))
    );
    assert!(
        m["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(CIBA_GRANT))
    );
    assert!(
        m["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );

    let off = Gateway::start_with(|c| c.backchannel.ciba = false).await;
    let m = metadata(&off).await;
    assert!(
        m.get("backchannel_authentication_endpoint").is_none(),
        "{m}"
    );
    assert!(
        m.get("backchannel_token_delivery_modes_supported")
            .is_none(),
        "{m}"
    );
    // SI stays on, and with it the grant its polling variant uses.
    assert_eq!(
        m["si_authorization_endpoint"],
        format!("{}/si-authorize", off.base)
    );
    let c = ciba_client(&off, "Off", "poll", None, |_| {}).await;
    let resp = off
        .http()
        .post(format!("{}/bc-authorize", off.base))
        .basic_auth(c.id(), Some(&c.secret))
        .form(&[("scope", "openid mc_authn"), ("login_hint", &hint(MSISDN))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Only some modes on: metadata says so and a client of another mode is refused.
    let poll_only =
        Gateway::start_with(|c| c.backchannel.delivery_modes = vec!["poll".into()]).await;
    subscriber(&poll_only, MSISDN).await;
    let m = metadata(&poll_only).await;
    assert_eq!(
        m["backchannel_token_delivery_modes_supported"],
        json!(["poll"])
    );
    let rx = Receiver::start(0).await;
    let pusher = ciba_client(&poll_only, "Pusher", "push", Some(&rx.url), |_| {}).await;
    let (status, body) = pusher
        .bc(
            &poll_only,
            &[
                ("scope", "openid mc_authn"),
                ("login_hint", &hint(MSISDN)),
                ("client_notification_token", NOTIFY_TOKEN),
            ],
        )
        .await;
    assert_eq!(
        (status, err(&body).0),
        (400, "unauthorized_client"),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------
// restart

#[tokio::test]
async fn a_pending_request_survives_a_restart() {
    let dir = temp_dir("ciba-restart");
    let g = Gateway::start_in(dir.clone(), |_| {}).await;
    subscriber(&g, MSISDN).await;
    let c = ciba_client(&g, "Restarted", "poll", None, |_| {}).await;
    let (id, _) = c
        .start(
            &g,
            &[("scope", "openid mc_authn"), ("login_hint", &hint(MSISDN))],
        )
        .await;
    let (status, body) = c.poll(&g, &id).await;
    assert_eq!((status, err(&body).0), (400, "authorization_pending"));
    drop(g);

    let g = Gateway::start_in(dir, |_| {}).await;
    let shown = approve(&g, MSISDN).await;
    assert_eq!(shown.client_name, "Restarted");
    // The poll before the restart counts: keep the interval.
    tokio::time::sleep(INTERVAL).await;
    let (status, body) = c.poll(&g, &id).await;
    let claims = tokens_of(&g, c.id(), status, &body).await;
    assert_eq!(
        claims["iss"],
        g.base.as_str(),
        "the new instance issued them"
    );
}

#[tokio::test]
async fn the_user_code_is_the_subscribers_own_and_guessing_locks_it() {
    let g = Gateway::start().await;
    subscriber(&g, "447700900311").await;
    let coded = ciba_client(&g, "Coded", "poll", None, |m| {
        m.backchannel_user_code_parameter = true;
    })
    .await;
    mc_gateway::registry::set_subscriber_user_code(g.store(), "+447700900311", Some("blue-42"))
        .await
        .unwrap();
    let req = |code: &'static str| {
        vec![
            ("scope", "openid mc_authn"),
            ("login_hint", "MSISDN:447700900311"),
            ("user_code", code),
        ]
    };
    // Wrong codes count; the third locks the code (login.pin_max_failures = 3).
    for _ in 0..2 {
        let (status, body) = coded.bc(&g, &req("red-17")).await;
        assert_eq!((status, err(&body).0), (400, "invalid_user_code"), "{body}");
    }
    // A right one in between resets the count.
    let (status, body) = coded.bc(&g, &req("blue-42")).await;
    assert_eq!(status, 200, "{body}");
    let auth_req_id = body["auth_req_id"].as_str().unwrap().to_owned();
    deny(&g, "447700900311").await;
    assert_eq!(status_of(&g, &auth_req_id).await, SessionStatus::Denied);
    for _ in 0..3 {
        let (status, body) = coded.bc(&g, &req("red-17")).await;
        assert_eq!((status, err(&body).0), (400, "invalid_user_code"), "{body}");
    }
    // Locked: even the right code is refused, until provisioning sets a new one.
    let (status, body) = coded.bc(&g, &req("blue-42")).await;
    assert_eq!((status, err(&body).0), (400, "invalid_user_code"), "{body}");
    // Through the admin API (the provisioning interface), with bad input refused.
    let admin = |method: reqwest::Method, body: Option<Value>| {
        let mut r = g
            .http()
            .request(
                method,
                format!("{}/admin/v1/subscribers/447700900311/user_code", g.base),
            )
            .bearer_auth(common::ADMIN_TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    let r = admin(reqwest::Method::PUT, Some(json!({"user_code": "ab"})))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin(reqwest::Method::PUT, Some(json!({"user_code": "green-7"})))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (status, body) = coded.bc(&g, &req("green-7")).await;
    assert_eq!(status, 200, "{body}");
    deny(&g, "447700900311").await;
    let r = admin(reqwest::Method::DELETE, None).await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = coded.bc(&g, &req("green-7")).await;
    assert_eq!((status, err(&body).0), (400, "invalid_user_code"), "{body}");
}
