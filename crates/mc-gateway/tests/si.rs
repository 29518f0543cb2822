//! Mobile Connect Server-Initiated (digest §9) over HTTP: signed request objects (RS256,
//! PS256, ES256; inline `jwks` and `jwks_uri`) sent to `/si-authorize` by GET, form POST
//! (also with the parameters in the query string) and JSON POST; the notification with the
//! tokens, with identical retries; the polling variant redeemed with the CIBA grant; every
//! error of digest §9.2 and docs/decisions.md; denial and timeout notifications; mc_authz.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::time::Duration;

use common::Gateway;
use mc_authn::answer::{Answer, AnswerOutcome};
use mc_gateway::registry;
use mc_gateway::state::now;
use mc_store::{ClientMetadata, ClientRecord, ClientStatus};
use serde_json::{Value, json};
use support::*;

const TOKEN: &str = "si-notification-token-0123456789";
const SI_VERSION: &str = "mc_si_r2_v1.0";
const ALLOWED: &str = "Allowed params are: client_id, response_type, scope, request";

// ---------------------------------------------------------------------------------------
// helpers

/// A registered SI client: its record, secret and signing keys.
struct SiClient {
    record: ClientRecord,
    secret: String,
    rsa: TestKey,
    ec: TestKey,
}

impl SiClient {
    fn id(&self) -> &str {
        &self.record.client_id
    }

    fn key(&self, alg: &str) -> &TestKey {
        if alg == "ES256" { &self.ec } else { &self.rsa }
    }

    /// The request-object claims of an LoA2 mc_authn request for `msisdn`, notified at
    /// `notify` (`None`: the polling variant).
    fn claims(&self, g: &Gateway, msisdn: &str, notify: Option<&str>, corr: &str) -> Value {
        let mut c = json!({
            "response_type": "mc_si_async_code",
            "client_id": self.id(),
            "iss": self.id(),
            "aud": g.base,
            "scope": "openid mc_authn",
            "version": SI_VERSION,
            "nonce": format!("nonce-{corr}"),
            "login_hint": format!("MSISDN:{msisdn}"),
            "acr_values": "2",
            "correlation_id": corr,
            "binding_message": format!("bm-{corr}"),
            "iat": now(),
            "exp": now() + 300,
            "jti": format!("jti-{corr}"),
        });
        if let Some(uri) = notify {
            c["notification_uri"] = json!(uri);
            c["client_notification_token"] = json!(TOKEN);
        }
        c
    }

    fn sign(&self, alg: &str, claims: &Value) -> String {
        self.key(alg).sign(alg, claims)
    }

    /// The four outer parameters around a request object.
    fn outer(&self, request: &str) -> Vec<(String, String)> {
        vec![
            ("client_id".into(), self.id().into()),
            ("response_type".into(), "mc_si_async_code".into()),
            ("scope".into(), "openid mc_authn".into()),
            ("request".into(), request.into()),
        ]
    }
}

/// How the request reaches `/si-authorize`.
#[derive(Debug, Clone, Copy)]
enum Via {
    Get,
    Form,
    /// Form content type, every parameter in the query string, empty body (GSMA Python).
    FormQuery,
    /// Form content type, client_id and response_type in the query, the rest in the body.
    FormSplit,
    Json,
}

async fn send(g: &Gateway, via: Via, params: &[(String, String)]) -> (u16, Value) {
    let url = format!("{}/si-authorize", g.base);
    let http = g.http();
    let form = |p: &[(String, String)]| serde_urlencoded::to_string(p).unwrap();
    let req = match via {
        Via::Get => http.get(format!("{url}?{}", form(params))),
        Via::Form => http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(params)),
        Via::FormQuery => http
            .post(format!("{url}?{}", form(params)))
            .header("content-type", "application/x-www-form-urlencoded"),
        Via::FormSplit => {
            let (q, b): (Vec<_>, Vec<_>) = params
                .iter()
                .cloned()
                .partition(|(k, _)| k == "client_id" || k == "response_type");
            http.post(format!("{url}?{}", form(&q)))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&b))
        }
        Via::Json => {
            let obj: serde_json::Map<String, Value> =
                params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            http.post(&url).json(&obj)
        }
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Registers an SI client with inline RSA and EC keys, notified at `notify`.
async fn si_client(
    g: &Gateway,
    name: &str,
    notify: &[&str],
    edit: impl FnOnce(&mut ClientMetadata),
) -> SiClient {
    let (rsa, ec) = (
        TestKey::rsa(&format!("{name}-rsa")),
        TestKey::ec(&format!("{name}-ec")),
    );
    let mut m = ClientMetadata {
        notification_uris: notify.iter().map(|s| (*s).to_owned()).collect(),
        jwks: Some(jwks(&[&rsa, &ec])),
        ..Default::default()
    };
    edit(&mut m);
    let (record, secret) = register(g, name, &["openid", "mc_authn", "mc_authz"], m).await;
    SiClient {
        record,
        secret,
        rsa,
        ec,
    }
}

/// A jwks_uri client: the keys are made first and served, then the client registered.
async fn si_client_by_uri(g: &Gateway, name: &str, notify: &[&str]) -> (SiClient, JwksServer) {
    let (rsa, ec) = (
        TestKey::rsa(&format!("{name}-rsa")),
        TestKey::ec(&format!("{name}-ec")),
    );
    let server = JwksServer::start(jwks(&[&rsa, &ec])).await;
    let m = ClientMetadata {
        notification_uris: notify.iter().map(|s| (*s).to_owned()).collect(),
        jwks_uri: Some(server.uri.clone()),
        ..Default::default()
    };
    let (record, secret) = register(g, name, &["openid", "mc_authn", "mc_authz"], m).await;
    (
        SiClient {
            record,
            secret,
            rsa,
            ec,
        },
        server,
    )
}

async fn subscribers(g: &Gateway, msisdns: &[&str]) {
    for m in msisdns {
        g.subscriber(m, None).await;
    }
}

/// Checks an SI notification carrying tokens; returns the verified id_token claims.
async fn check_token_notification(
    g: &Gateway,
    c: &SiClient,
    hit: &Hit,
    auth_req_id: &str,
    corr: &str,
) -> Value {
    assert_eq!(
        hit.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(hit.content_type.as_deref(), Some("application/json"));
    let body = hit.json();
    assert_eq!(body["auth_req_id"], auth_req_id, "{body}");
    assert_eq!(body["correlation_id"], corr, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    let claims = verified_claims(g, c.id(), body["id_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["nonce"],
        format!("nonce-{corr}"),
        "the request object's nonce"
    );
    assert_eq!(claims["acr"], "2");
    assert_eq!(
        claims["urn:openid:params:jwt:claim:auth_req_id"],
        auth_req_id
    );
    claims
}

// ---------------------------------------------------------------------------------------
// happy paths

#[tokio::test]
async fn every_algorithm_key_source_and_transport_is_accepted_and_notified() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let msisdns = [
        "447700900301",
        "447700900302",
        "447700900303",
        "447700900304",
        "447700900305",
    ];
    subscribers(&g, &msisdns).await;
    let inline = si_client(&g, "InlineSp", &[&rx.url], |_| {}).await;
    let (by_uri, server) = si_client_by_uri(&g, "UriSp", &[&rx.url]).await;

    let cases: [(&SiClient, &str, Via); 5] = [
        (&inline, "RS256", Via::Get),
        (&by_uri, "PS256", Via::Form),
        (&inline, "ES256", Via::Json),
        (&by_uri, "ES256", Via::FormQuery),
        (&by_uri, "RS256", Via::FormSplit),
    ];
    let mut started = Vec::new();
    for (i, ((c, alg, via), msisdn)) in cases.iter().zip(msisdns).enumerate() {
        let corr = format!("corr-{i}-{alg}");
        let jws = c.sign(alg, &c.claims(&g, msisdn, Some(&rx.url), &corr));
        let (status, body) = send(&g, *via, &c.outer(&jws)).await;
        assert_eq!(status, 200, "{alg} {via:?}: {body}");
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["auth_req_id", "correlation_id", "expires_in"],
            "{alg} {via:?}: {body}"
        );
        assert_eq!(body["correlation_id"], corr.as_str());
        assert_eq!(body["expires_in"], 120);
        started.push((
            *c,
            body["auth_req_id"].as_str().unwrap().to_owned(),
            corr,
            msisdn,
        ));
    }
    assert_eq!(server.hits(), 1, "the jwks_uri is fetched once and cached");

    for (c, _, corr, msisdn) in &started {
        let shown = g.phone(msisdn).approve_next().await;
        assert_eq!(shown.client_name, c.record.short_name);
        assert_eq!(
            shown.binding_message.as_deref(),
            Some(&*format!("bm-{corr}"))
        );
    }
    let within = std::time::Instant::now();
    let mut hits = Vec::new();
    while hits.len() < started.len() {
        assert!(within.elapsed() < WITHIN, "notifications: {hits:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        hits = rx.hits();
    }
    for (c, id, corr, _) in &started {
        let hit = hits
            .iter()
            .find(|h| h.json()["auth_req_id"] == id.as_str())
            .unwrap_or_else(|| {
                let seen: Vec<Value> = hits.iter().map(Hit::json).collect();
                panic!("no notification for {corr} ({id}); seen: {seen:?}")
            });
        let claims = check_token_notification(&g, c, hit, id, corr).await;
        assert_eq!(claims["correlation_id"], corr.as_str());
    }
    // Exactly one notification per request, and the tokens it carries work (a second
    // delivery with fresh tokens would revoke the first ones).
    settle().await;
    let mut all = Vec::new();
    for h in rx.hits() {
        let j = h.json();
        let status = g
            .http()
            .get(format!("{}/userinfo", g.base))
            .bearer_auth(j["access_token"].as_str().unwrap_or_default())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        all.push(format!(
            "{} auth_req_id={}… access_token={}… userinfo={status}",
            j["correlation_id"],
            &j["auth_req_id"].as_str().unwrap_or_default()[..8],
            &j["access_token"].as_str().unwrap_or_default()[..8],
        ));
    }
    all.sort();
    assert!(
        all.len() == started.len() && all.iter().all(|l| l.ends_with("userinfo=200")),
        "one notification per request, with working tokens: {all:#?}"
    );
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_same_body_until_it_succeeds_once() {
    let g = Gateway::start().await;
    let rx = Receiver::start(2).await;
    subscribers(&g, &["447700900301"]).await;
    let c = si_client(&g, "Retried", &[&rx.url], |_| {}).await;
    let jws = c.sign(
        "RS256",
        &c.claims(&g, "447700900301", Some(&rx.url), "retry-1"),
    );
    let (status, body) = send(&g, Via::Form, &c.outer(&jws)).await;
    assert_eq!(status, 200, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    g.phone("447700900301").approve_next().await;

    // Backoff 1 s, then 2 s.
    rx.delivered(WITHIN).await;
    settle().await;
    let hits = rx.hits();
    let answered: Vec<u16> = hits.iter().map(|h| h.answered).collect();
    assert_eq!(answered, [500, 500, 204], "exactly one successful delivery");
    assert!(
        hits.iter().all(|h| h.body == hits[0].body),
        "retries differ"
    );
    check_token_notification(&g, &c, &hits[2], &id, "retry-1").await;
}

#[tokio::test]
async fn the_polling_variant_redeems_with_the_ciba_grant() {
    let g = Gateway::start().await;
    subscribers(&g, &["447700900301", "447700900302"]).await;
    let c = si_client(&g, "Poller", &[], |_| {}).await;
    let jws = c.sign("ES256", &c.claims(&g, "447700900301", None, "poll-1"));
    let (status, body) = send(&g, Via::Json, &c.outer(&jws)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["interval"], 1, "{body}");
    assert_eq!(body["correlation_id"], "poll-1");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();

    let (status, body) = poll_token(&g, c.id(), &c.secret, &id).await;
    assert_eq!((status, err(&body).0), (400, "authorization_pending"));
    g.phone("447700900301").approve_next().await;
    tokio::time::sleep(Duration::from_millis(1050)).await; // the interval
    let (status, body) = poll_token(&g, c.id(), &c.secret, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["correlation_id"], "poll-1");
    let claims = verified_claims(&g, c.id(), body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["nonce"], "nonce-poll-1");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (status, body) = poll_token(&g, c.id(), &c.secret, &id).await;
    assert_eq!((status, err(&body).0), (400, "invalid_grant"), "take-once");

    // A denied polling request is access_denied at the token endpoint.
    let jws = c.sign("RS256", &c.claims(&g, "447700900302", None, "poll-2"));
    let (_, body) = send(&g, Via::Get, &c.outer(&jws)).await;
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let phone = g.phone("447700900302");
    let ch = phone.next_challenge().await;
    assert_eq!(
        phone.answer(&ch.id, Answer::Deny).await,
        AnswerOutcome::Denied
    );
    let (status, body) = poll_token(&g, c.id(), &c.secret, &id).await;
    assert_eq!((status, err(&body).0), (400, "access_denied"));
}

// ---------------------------------------------------------------------------------------
// errors

/// `(status, error, error_description)`.
fn triple(r: &(u16, Value)) -> (u16, &str, &str) {
    let (e, d) = err(&r.1);
    (r.0, e, d)
}

#[tokio::test]
async fn every_si_error() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    subscribers(&g, &["447700900301", "447700900302", "447700900303"]).await;
    let c = si_client(&g, "Strict", &[&rx.url], |_| {}).await;
    let m = "447700900301";
    let good = c.claims(&g, m, Some(&rx.url), "err-1");
    let signed = |claims: &Value| c.sign("RS256", claims);
    let edited = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut claims = good.as_object().unwrap().clone();
        edit(&mut claims);
        signed(&Value::Object(claims))
    };
    let outer = c.outer(&signed(&good));
    let invalid = |d: &'static str| (400u16, "invalid_request", d);

    // Outer parameters (digest §9.2), on every transport.
    for via in [Via::Get, Via::Form, Via::Json] {
        let mut extra = outer.clone();
        extra.push(("nonce".into(), "n".into()));
        assert_eq!(
            triple(&send(&g, via, &extra).await),
            invalid(ALLOWED),
            "{via:?}"
        );
        let capital: Vec<_> = outer
            .iter()
            .map(|(k, v)| {
                (
                    if k == "request" {
                        "Request".into()
                    } else {
                        k.clone()
                    },
                    v.clone(),
                )
            })
            .collect();
        assert_eq!(
            triple(&send(&g, via, &capital).await),
            invalid(ALLOWED),
            "{via:?}"
        );
        let no_scope: Vec<_> = outer
            .iter()
            .filter(|(k, _)| k != "scope")
            .cloned()
            .collect();
        assert_eq!(
            triple(&send(&g, via, &no_scope).await),
            invalid("Mandatory parameter scope is missing"),
            "{via:?}"
        );
        let code: Vec<_> = outer
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k == "response_type" {
                        "code".into()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        assert_eq!(
            triple(&send(&g, via, &code).await),
            invalid("Mandatory parameter response_type is invalid"),
            "{via:?}"
        );
    }
    let mut twice = outer.clone();
    twice.push(("scope".into(), "openid mc_authn".into()));
    assert_eq!(
        triple(&send(&g, Via::Form, &twice).await).1,
        "invalid_request"
    );
    // JSON values must be strings; the body must be JSON.
    let resp = g
        .http()
        .post(format!("{}/si-authorize", g.base))
        .json(&json!({"client_id": c.id(), "response_type": "mc_si_async_code", "scope": ["openid"], "request": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // An unknown client, a disabled one.
    let mut unknown = outer.clone();
    unknown[0].1 = "no-such-client".into();
    assert_eq!(
        triple(&send(&g, Via::Form, &unknown).await),
        (400, "unauthorized_client", "The client is not registered")
    );
    let off = si_client(&g, "Disabled", &[&rx.url], |_| {}).await;
    registry::set_client_status(g.store(), off.id(), ClientStatus::Disabled)
        .await
        .unwrap();
    let jws = off.sign("RS256", &off.claims(&g, m, Some(&rx.url), "off"));
    assert_eq!(
        triple(&send(&g, Via::Form, &off.outer(&jws)).await),
        (
            400,
            "access_denied",
            "The client is not allowed to make MC service requests"
        )
    );

    // Signatures: another key under the client's kid, a payload changed after signing,
    // an algorithm other than the registered one.
    let token_failed = (400u16, "unauthorized_client", "Token validation failed");
    let impostor = TestKey::rsa(&c.rsa.kid).sign("RS256", &good);
    assert_eq!(
        triple(&send(&g, Via::Form, &c.outer(&impostor)).await),
        token_failed
    );
    let real = signed(&good);
    let parts: Vec<&str> = real.split('.').collect();
    let mut forged_claims = good.clone();
    forged_claims["login_hint"] = json!("MSISDN:447700900302");
    let forged = format!("{}.{}.{}", parts[0], b64_json(&forged_claims), parts[2]);
    assert_eq!(
        triple(&send(&g, Via::Form, &c.outer(&forged)).await),
        token_failed
    );
    let hs = {
        let input = format!("{}.{}", b64_json(&json!({"alg": "HS256"})), b64_json(&good));
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, c.secret.as_bytes());
        format!(
            "{input}.{}",
            b64(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref())
        )
    };
    assert_eq!(
        triple(&send(&g, Via::Form, &c.outer(&hs)).await),
        token_failed
    );
    let strict_alg = si_client(&g, "Ps256Only", &[&rx.url], |m| {
        m.request_object_signing_alg = Some("PS256".into())
    })
    .await;
    let jws = strict_alg.sign("RS256", &strict_alg.claims(&g, m, Some(&rx.url), "alg"));
    assert_eq!(
        triple(&send(&g, Via::Form, &strict_alg.outer(&jws)).await),
        token_failed
    );
    // Not a JWS at all.
    assert_eq!(
        triple(&send(&g, Via::Form, &c.outer("garbage")).await).1,
        "invalid_request"
    );

    // The claims, in RUGW's order.
    let claim_cases: Vec<(&str, String, (u16, &str, &str))> = vec![
        (
            "wrong aud",
            edited(&|m| {
                m.insert("aud".into(), json!("https://other-operator.example"));
            }),
            invalid("REQUIRED parameter aud is invalid"),
        ),
        (
            "no aud",
            edited(&|m| {
                m.remove("aud");
            }),
            invalid("REQUIRED parameter aud is invalid"),
        ),
        (
            "expired",
            edited(&|m| {
                m.insert("exp".into(), json!(now() - 5));
            }),
            invalid("The request object has expired (exp)"),
        ),
        (
            "iss another client",
            edited(&|m| {
                m.insert("iss".into(), json!("someone-else"));
            }),
            invalid("REQUIRED parameter iss is invalid"),
        ),
        (
            "client_id another client",
            edited(&|m| {
                m.insert("client_id".into(), json!("someone-else"));
            }),
            invalid("REQUIRED parameter client_id is invalid"),
        ),
        (
            "inner response_type",
            edited(&|m| {
                m.insert("response_type".into(), json!("code"));
            }),
            invalid("REQUIRED parameter response_type is invalid"),
        ),
        (
            "scope differs from the outer one",
            edited(&|m| {
                m.insert("scope".into(), json!("openid mc_authz"));
            }),
            invalid("REQUIRED parameter scope is invalid (differs from the outer scope)"),
        ),
        (
            "device-initiated version",
            edited(&|m| {
                m.insert("version".into(), json!("mc_di_r2_v2.3"));
            }),
            invalid("REQUIRED parameter version is invalid"),
        ),
        (
            "no nonce",
            edited(&|m| {
                m.remove("nonce");
            }),
            invalid("REQUIRED parameter nonce is missing"),
        ),
        (
            "no login_hint",
            edited(&|m| {
                m.remove("login_hint");
            }),
            invalid("REQUIRED parameter login_hint is missing or invalid"),
        ),
        (
            "no acr_values",
            edited(&|m| {
                m.remove("acr_values");
            }),
            invalid("REQUIRED parameter acr_values is missing"),
        ),
        (
            "notification_uri without a token",
            edited(&|m| {
                m.remove("client_notification_token");
            }),
            invalid("REQUIRED parameter client_notification_token or notification_uri is missing"),
        ),
        (
            "token without a notification_uri",
            edited(&|m| {
                m.remove("notification_uri");
            }),
            invalid("REQUIRED parameter client_notification_token or notification_uri is missing"),
        ),
        (
            "foreign notification_uri",
            edited(&|m| {
                m.insert(
                    "notification_uri".into(),
                    json!("https://attacker.example/notify"),
                );
            }),
            (
                400,
                "unauthorized_client",
                "notification_uri is not registered for this client",
            ),
        ),
        (
            "short client_notification_token",
            edited(&|m| {
                m.insert("client_notification_token".into(), json!("short"));
            }),
            invalid("client_notification_token is invalid"),
        ),
    ];
    for (why, jws, expected) in &claim_cases {
        let got = send(&g, Via::Form, &c.outer(jws)).await;
        assert_eq!(triple(&got), *expected, "{why}: {:?}", got.1);
    }

    // The subscriber side: unknown, busy.
    let jws = signed(&c.claims(&g, "447700900999", Some(&rx.url), "unknown"));
    let got = send(&g, Via::Form, &c.outer(&jws)).await;
    assert_eq!(got.0, 400);
    assert_eq!(err(&got.1).0, "access_denied", "{:?}", got.1);
    assert_eq!(got.1["correlation_id"], "unknown");
    let jws = signed(&c.claims(&g, "447700900303", Some(&rx.url), "first"));
    assert_eq!(send(&g, Via::Form, &c.outer(&jws)).await.0, 200);
    let jws = signed(&c.claims(&g, "447700900303", Some(&rx.url), "second"));
    let got = send(&g, Via::Form, &c.outer(&jws)).await;
    assert_eq!(
        triple(&got),
        (
            400,
            "authorization_error",
            "Previous authentication transaction is not finished"
        )
    );
    assert_eq!(got.1["correlation_id"], "second");

    // Nothing refused was notified.
    settle().await;
    assert!(rx.hits().is_empty(), "{:?}", rx.hits());
}

/// The correlation_id of a request object whose signature verified is known: an error
/// about its claims echoes it (docs/decisions.md: SI errors are
/// `{error, error_description, correlation_id}`).
#[tokio::test]
async fn claim_errors_echo_the_correlation_id() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    g.subscriber("447700900301", None).await;
    let c = si_client(&g, "Echo", &[&rx.url], |_| {}).await;
    let mut claims = c.claims(&g, "447700900301", Some(&rx.url), "echo-1");
    claims["aud"] = json!("https://other-operator.example");
    let got = send(&g, Via::Form, &c.outer(&c.sign("RS256", &claims))).await;
    assert_eq!(triple(&got).1, "invalid_request");
    assert_eq!(got.1["correlation_id"], "echo-1", "{:?}", got.1);
}

/// An unsecured JWT (`alg: none`, empty signature, RFC 7519 §6) is an unsigned request
/// object: "Token validation failed" like any other signature failure (decisions, digest
/// §9.2), not a malformed request.
#[tokio::test]
async fn unsigned_request_objects_fail_token_validation() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    g.subscriber("447700900301", None).await;
    let c = si_client(&g, "Unsigned", &[&rx.url], |_| {}).await;
    let claims = c.claims(&g, "447700900301", Some(&rx.url), "none-1");
    // alg none with some bytes where the signature goes: refused as unsigned.
    let with_sig = format!("{}c2ln", unsigned(&claims));
    assert_eq!(
        triple(&send(&g, Via::Form, &c.outer(&with_sig)).await),
        (400, "unauthorized_client", "Token validation failed")
    );
    // The standard unsecured form: `header.payload.` with nothing after the last dot.
    assert_eq!(
        triple(&send(&g, Via::Form, &c.outer(&unsigned(&claims))).await),
        (400, "unauthorized_client", "Token validation failed")
    );
}

/// The status line of a raw HTTP/1.1 request (for URIs reqwest refuses to build), or
/// `None` when the server closed the connection without answering.
async fn raw_status(g: &Gateway, head: &str, body: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    // The server may answer and close before reading everything: write errors are fine.
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        while !buf.windows(2).any(|w| w == b"\r\n") {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    let line = String::from_utf8_lossy(&buf);
    line.split(' ').nth(1).and_then(|c| c.parse().ok())
}

#[tokio::test]
async fn a_megabyte_request_object_is_a_clear_4xx() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    g.subscriber("447700900301", None).await;
    let c = si_client(&g, "Huge", &[&rx.url], |_| {}).await;
    let mut claims = c.claims(&g, "447700900301", Some(&rx.url), "huge");
    claims["padding"] = json!("p".repeat(1024 * 1024));
    let huge = c.sign("RS256", &claims);
    // In a body: form and JSON.
    for via in [Via::Form, Via::Json] {
        let (status, body) = send(&g, via, &c.outer(&huge)).await;
        let text = body.to_string();
        assert!(
            (400..500).contains(&status),
            "{via:?}: {status} {}",
            &text[..text.len().min(200)]
        );
    }
    // In the query string (GET, and POST with the parameters in the query).
    let query = serde_urlencoded::to_string(c.outer(&huge)).unwrap();
    let host = g.addr;
    for method in ["GET", "POST"] {
        let head = format!(
            "{method} /si-authorize?{query} HTTP/1.1\r\nHost: {host}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        );
        let status = raw_status(&g, &head, b"").await;
        assert!(
            status.is_some_and(|s| (400..500).contains(&s)),
            "{method} with a 1 MB query: {status:?}"
        );
    }
    // The gateway is fine afterwards.
    let ok = c.sign(
        "RS256",
        &c.claims(&g, "447700900301", Some(&rx.url), "after"),
    );
    assert_eq!(send(&g, Via::Form, &c.outer(&ok)).await.0, 200);
}

// ---------------------------------------------------------------------------------------
// refusals by the subscriber, and time

#[tokio::test]
async fn denial_is_notified_as_authorization_error() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    g.subscriber("447700900301", None).await;
    let c = si_client(&g, "DenySp", &[&rx.url], |_| {}).await;
    let jws = c.sign(
        "PS256",
        &c.claims(&g, "447700900301", Some(&rx.url), "deny-1"),
    );
    let (status, body) = send(&g, Via::Get, &c.outer(&jws)).await;
    assert_eq!(status, 200, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let phone = g.phone("447700900301");
    let ch = phone.next_challenge().await;
    assert_eq!(
        phone.answer(&ch.id, Answer::Deny).await,
        AnswerOutcome::Denied
    );
    let hits = rx.delivered(WITHIN).await;
    assert_eq!(
        hits[0].json(),
        json!({
            "auth_req_id": id,
            "correlation_id": "deny-1",
            "error": "authorization_error",
            "error_description": "Subscriber denied the request",
        })
    );
    assert_eq!(
        hits[0].authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
}

#[tokio::test]
async fn nobody_answering_is_notified_as_a_consent_timeout() {
    // The shortest lifetime the configuration allows (default_expiry_secs >= 10); SI has no
    // requested_expiry.
    let g = Gateway::start_with(|c| c.backchannel.default_expiry_secs = 10).await;
    let rx = Receiver::start(0).await;
    g.subscriber("447700900301", None).await;
    let c = si_client(&g, "Patient", &[&rx.url], |_| {}).await;
    let jws = c.sign(
        "ES256",
        &c.claims(&g, "447700900301", Some(&rx.url), "late-1"),
    );
    let (status, body) = send(&g, Via::Json, &c.outer(&jws)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 10);
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let hits = rx.delivered(Duration::from_secs(20)).await;
    assert_eq!(
        hits[0].json(),
        json!({
            "auth_req_id": id,
            "correlation_id": "late-1",
            "error": "authorization_error",
            "error_description": "Subscriber consent waiting time expired",
        })
    );
}

// ---------------------------------------------------------------------------------------
// mc_authz

#[tokio::test]
async fn an_authz_request_needs_the_short_name_and_a_context() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    g.subscriber("447700900301", None).await;
    let c = si_client(&g, "PayShop", &[&rx.url], |_| {}).await;
    let authz = |edit: &dyn Fn(&mut Value)| {
        let mut claims = c.claims(&g, "447700900301", Some(&rx.url), "authz-1");
        claims["scope"] = json!("openid mc_authz");
        claims["client_name"] = json!("PayShop");
        claims["context"] = json!("Pay 10 EUR to PayShop");
        claims["binding_message"] = json!("REF-7");
        edit(&mut claims);
        let mut outer = c.outer(&c.sign("RS256", &claims));
        outer[2].1 = "openid mc_authz".into();
        outer
    };
    let got = send(
        &g,
        Via::Form,
        &authz(&|c| c["client_name"] = json!("Someone Else")),
    )
    .await;
    assert_eq!(triple(&got).1, "invalid_request", "{:?}", got.1);
    assert!(err(&got.1).1.contains("client_name"), "{:?}", got.1);
    let got = send(
        &g,
        Via::Form,
        &authz(&|c| {
            c.as_object_mut().unwrap().remove("client_name");
        }),
    )
    .await;
    assert!(err(&got.1).1.contains("client_name"), "{:?}", got.1);
    let got = send(
        &g,
        Via::Form,
        &authz(&|c| {
            c.as_object_mut().unwrap().remove("context");
        }),
    )
    .await;
    assert_eq!(
        triple(&got),
        (
            400,
            "invalid_request",
            "MANDATORY parameter context is missing or invalid"
        )
    );

    let (status, body) = send(&g, Via::Form, &authz(&|_| {})).await;
    assert_eq!(status, 200, "{body}");
    let id = body["auth_req_id"].as_str().unwrap().to_owned();
    let shown = g.phone("447700900301").approve_next().await;
    assert_eq!(shown.client_name, "PayShop");
    assert_eq!(shown.context.as_deref(), Some("Pay 10 EUR to PayShop"));
    assert_eq!(shown.binding_message.as_deref(), Some("REF-7"));
    let hits = rx.delivered(WITHIN).await;
    let claims = check_token_notification(&g, &c, &hits[0], &id, "authz-1").await;
    assert_eq!(
        claims["displayed_data"],
        "PayShop | Pay 10 EUR to PayShop | REF-7"
    );
}
