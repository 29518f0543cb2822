#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Back-channel notifications (CIBA ping/push, Mobile Connect SI): the worker delivers each
//! answered or expired request once, to a receiver on loopback, with identical retries.
//! Requests are created directly in the store; the phone answers through the harness.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use mc_authn::answer::{Answer, AnswerOutcome};
use mc_gateway::registry::{self, ClientSpec, SubscriberSpec};
use mc_gateway::state::{now, random_token, sha256_hex};
use mc_store::{
    AuthSession, BackchannelKind, BackchannelRecord, ClientMetadata, ClientRecord, DeliveryMode,
    Resolution, SessionStatus,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// the client's notification endpoint

#[derive(Debug, Clone)]
struct Hit {
    authorization: Option<String>,
    content_type: Option<String>,
    body: Bytes,
    answered: u16,
}

/// A notification endpoint on 127.0.0.1 that records every request and answers 500 to the
/// first `fail_first` of them, 204 afterwards.
#[derive(Clone)]
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    fail_first: Arc<AtomicUsize>,
}

async fn record(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let fail = r
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    r.hits.lock().unwrap().push(Hit {
        authorization: header("authorization"),
        content_type: header("content-type"),
        body,
        answered: status.as_u16(),
    });
    status
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            url: format!("http://{}/notify", listener.local_addr().unwrap()),
            hits: Arc::default(),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
        };
        let app = axum::Router::new()
            .route("/notify", axum::routing::post(record))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits (bounded) until one request was answered with success; returns every request
    /// seen so far.
    async fn delivered(&self, within: Duration) -> Vec<Hit> {
        let start = Instant::now();
        loop {
            let hits = self.hits();
            if hits.iter().any(|h| h.answered < 300) {
                return hits;
            }
            assert!(
                start.elapsed() < within,
                "no successful delivery within {within:?}; attempts: {hits:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn json_of(hit: &Hit) -> Value {
    serde_json::from_slice(&hit.body).unwrap()
}

// ---------------------------------------------------------------------------------------
// clients, subscribers, requests

const TOKEN: &str = "client-notification-token-1";

/// A CIBA client with `mode`, notified at `endpoint`.
async fn ciba_client(g: &Gateway, mode: &str, endpoint: &str) -> ClientRecord {
    client(
        g,
        ClientMetadata {
            backchannel_token_delivery_mode: Some(mode.into()),
            backchannel_client_notification_endpoint: Some(endpoint.into()),
            jwks_uri: Some("https://sp.example/jwks".into()),
            ..Default::default()
        },
    )
    .await
}

/// A Mobile Connect SI client whose `notification_uri` is `endpoint`.
async fn si_client(g: &Gateway, endpoint: &str) -> ClientRecord {
    client(
        g,
        ClientMetadata {
            notification_uris: vec![endpoint.into()],
            jwks_uri: Some("https://sp.example/jwks".into()),
            ..Default::default()
        },
    )
    .await
}

async fn client(g: &Gateway, metadata: ClientMetadata) -> ClientRecord {
    let spec = ClientSpec {
        name: "Shop Ltd".into(),
        short_name: "Shop".into(),
        redirect_uris: vec!["https://sp.example/cb".into()],
        scopes: vec!["openid".into(), "mc_authn".into()],
        metadata,
        ..Default::default()
    };
    registry::create_client(g.store(), &spec).await.unwrap().0
}

/// Provisions `msisdn`; returns the subscriber id.
async fn subscriber(g: &Gateway, msisdn: &str, pin: Option<&str>) -> String {
    let spec = SubscriberSpec {
        msisdn: msisdn.into(),
        pin: pin.map(str::to_owned),
        capabilities: vec!["app_push".into()],
    };
    registry::create_subscriber(g.store(), &spec)
        .await
        .unwrap()
        .id
}

struct NewRequest<'a> {
    client: &'a ClientRecord,
    subscriber_id: &'a str,
    kind: BackchannelKind,
    mode: DeliveryMode,
    endpoint: Option<&'a str>,
    acr: &'a str,
    lifetime_secs: i64,
    correlation_id: Option<&'a str>,
}

/// Starts a back-channel request the way the endpoints will; returns its `auth_req_id`.
async fn start_request(g: &Gateway, r: NewRequest<'_>) -> String {
    let id = random_token();
    let t = now();
    let session = AuthSession {
        id: id.clone(),
        client_id: r.client.client_id.clone(),
        subscriber_id: Some(r.subscriber_id.to_owned()),
        redirect_uri: String::new(),
        state: String::new(),
        nonce: "nonce-7".into(),
        scope: "openid mc_authn".into(),
        version: "mc_si_r2_v1.0".into(),
        acr_values: r.acr.into(),
        max_age: None,
        claims: None,
        client_name: r.client.short_name.clone(),
        context: None,
        binding_message: Some("Pay 10 EUR".into()),
        correlation_id: r.correlation_id.map(str::to_owned),
        code_challenge: None,
        status: SessionStatus::Pending,
        acr: Some(r.acr.into()),
        amr: Vec::new(),
        auth_time: None,
        error: None,
        created_at: t,
        expires_at: t + r.lifetime_secs,
    };
    let bc = BackchannelRecord {
        auth_req_id: id.clone(),
        kind: r.kind,
        mode: r.mode,
        notification_endpoint: r.endpoint.map(str::to_owned),
        notification_token: r.endpoint.map(|_| TOKEN.to_owned()),
        interval: 1,
        last_poll_at: None,
    };
    g.store()
        .create_backchannel(&session, &bc, t)
        .await
        .unwrap();
    id
}

fn req<'a>(
    client: &'a ClientRecord,
    subscriber_id: &'a str,
    kind: BackchannelKind,
    mode: DeliveryMode,
    endpoint: &'a str,
) -> NewRequest<'a> {
    NewRequest {
        client,
        subscriber_id,
        kind,
        mode,
        endpoint: Some(endpoint),
        acr: "2",
        lifetime_secs: 60,
        correlation_id: None,
    }
}

async fn status_of(g: &Gateway, id: &str) -> SessionStatus {
    g.store()
        .get_backchannel(id)
        .await
        .unwrap()
        .unwrap()
        .0
        .status
}

async fn token_valid(g: &Gateway, access_token: &str) -> bool {
    g.store()
        .find_access_token(&sha256_hex(access_token), now())
        .await
        .unwrap()
        .is_some()
}

/// Verifies an id_token against the gateway's published `/jwks`; returns its claims.
async fn verified_claims(g: &Gateway, client_id: &str, id_token: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let jwks: JwkSet = g
        .http()
        .get(format!("{}/jwks", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = decode_header(id_token).unwrap().kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[client_id]);
    v.set_issuer(&[g.base.as_str()]);
    decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap()
        .claims
}

/// Quiet for long enough that a (wrong) delivery would have happened: many worker ticks.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

const WITHIN: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// tests

#[tokio::test]
async fn push_approved_delivers_signed_tokens_exactly_once() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let client = ciba_client(&g, "push", &rx.url).await;
    let sub = subscriber(&g, "447700900501", None).await;
    let id = start_request(
        &g,
        req(
            &client,
            &sub,
            BackchannelKind::Ciba,
            DeliveryMode::Push,
            &rx.url,
        ),
    )
    .await;
    g.phone("447700900501").approve_next().await;

    let hits = rx.delivered(WITHIN).await;
    settle().await;
    let hits_after = rx.hits();
    assert_eq!(hits_after.len(), 1, "{hits_after:?}");
    let hit = &hits[0];
    assert_eq!(
        hit.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(hit.content_type.as_deref(), Some("application/json"));
    let body = json_of(hit);
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "auth_req_id",
            "expires_in",
            "id_token",
            "token_type"
        ],
        "{body}"
    );
    assert_eq!(body["auth_req_id"], id.as_str());
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);

    let claims = verified_claims(&g, &client.client_id, body["id_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["urn:openid:params:jwt:claim:auth_req_id"],
        id.as_str()
    );
    assert_eq!(claims["nonce"], "nonce-7");
    assert_eq!(claims["acr"], "2");
    assert!(token_valid(&g, body["access_token"].as_str().unwrap()).await);

    // Take-once: the request is consumed and the outbox is empty.
    assert_eq!(status_of(&g, &id).await, SessionStatus::Consumed);
    assert_eq!(g.store().outbox_depth().await.unwrap().items, 0);
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_bytes() {
    let g = Gateway::start_with(|c| c.backchannel.notify_retry_base_secs = 1).await;
    let rx = Receiver::start(2).await;
    let client = ciba_client(&g, "push", &rx.url).await;
    let sub = subscriber(&g, "447700900502", None).await;
    start_request(
        &g,
        req(
            &client,
            &sub,
            BackchannelKind::Ciba,
            DeliveryMode::Push,
            &rx.url,
        ),
    )
    .await;
    g.phone("447700900502").approve_next().await;

    // Backoff 1 s, then 2 s.
    rx.delivered(WITHIN).await;
    settle().await;
    let hits = rx.hits();
    let answered: Vec<u16> = hits.iter().map(|h| h.answered).collect();
    assert_eq!(answered, [500, 500, 204]);
    assert!(
        hits.iter().all(|h| h.body == hits[0].body),
        "retries differ"
    );
    assert!(
        hits.iter()
            .all(|h| h.authorization.as_deref() == Some(&*format!("Bearer {TOKEN}")))
    );
    // The one set of tokens that was sent is the valid one.
    let body = json_of(&hits[2]);
    assert!(token_valid(&g, body["access_token"].as_str().unwrap()).await);
    assert_eq!(g.store().outbox_depth().await.unwrap().items, 0);
}

#[tokio::test]
async fn ping_tells_the_auth_req_id_only() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let client = ciba_client(&g, "ping", &rx.url).await;
    let sub = subscriber(&g, "447700900503", None).await;
    let id = start_request(
        &g,
        req(
            &client,
            &sub,
            BackchannelKind::Ciba,
            DeliveryMode::Ping,
            &rx.url,
        ),
    )
    .await;
    g.phone("447700900503").approve_next().await;

    let hits = rx.delivered(WITHIN).await;
    assert_eq!(json_of(&hits[0]), json!({ "auth_req_id": id }));
    assert_eq!(
        hits[0].authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    // The client polls for the tokens: nothing was consumed.
    assert_eq!(status_of(&g, &id).await, SessionStatus::Approved);
}

#[tokio::test]
async fn push_denied_is_access_denied() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let client = ciba_client(&g, "push", &rx.url).await;
    let sub = subscriber(&g, "447700900504", None).await;
    let id = start_request(
        &g,
        req(
            &client,
            &sub,
            BackchannelKind::Ciba,
            DeliveryMode::Push,
            &rx.url,
        ),
    )
    .await;
    let phone = g.phone("447700900504");
    let c = phone.next_challenge().await;
    assert_eq!(
        phone.answer(&c.id, Answer::Deny).await,
        AnswerOutcome::Denied
    );

    let hits = rx.delivered(WITHIN).await;
    let body = json_of(&hits[0]);
    assert_eq!(body["auth_req_id"], id.as_str());
    assert_eq!(body["error"], "access_denied");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn si_denied_is_authorization_error_with_the_correlation_id() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let client = si_client(&g, &rx.url).await;
    let sub = subscriber(&g, "447700900505", None).await;
    let id = start_request(
        &g,
        NewRequest {
            correlation_id: Some("corr-42"),
            ..req(
                &client,
                &sub,
                BackchannelKind::Si,
                DeliveryMode::Push,
                &rx.url,
            )
        },
    )
    .await;
    let phone = g.phone("447700900505");
    let c = phone.next_challenge().await;
    assert_eq!(
        phone.answer(&c.id, Answer::Deny).await,
        AnswerOutcome::Denied
    );

    let hits = rx.delivered(WITHIN).await;
    assert_eq!(
        json_of(&hits[0]),
        json!({
            "auth_req_id": id,
            "correlation_id": "corr-42",
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
async fn si_expiry_is_notified_by_the_worker() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let client = si_client(&g, &rx.url).await;
    let sub = subscriber(&g, "447700900506", None).await;
    let id = start_request(
        &g,
        NewRequest {
            lifetime_secs: 1,
            correlation_id: Some("corr-43"),
            ..req(
                &client,
                &sub,
                BackchannelKind::Si,
                DeliveryMode::Push,
                &rx.url,
            )
        },
    )
    .await;
    // Nobody answers.
    let hits = rx.delivered(WITHIN).await;
    assert_eq!(
        json_of(&hits[0]),
        json!({
            "auth_req_id": id,
            "correlation_id": "corr-43",
            "error": "authorization_error",
            "error_description": "Subscriber consent waiting time expired",
        })
    );
    assert_eq!(status_of(&g, &id).await, SessionStatus::Denied);
}

#[tokio::test]
async fn si_approved_carries_tokens_and_the_correlation_id() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let client = si_client(&g, &rx.url).await;
    let sub = subscriber(&g, "447700900507", None).await;
    let id = start_request(
        &g,
        NewRequest {
            correlation_id: Some("corr-44"),
            ..req(
                &client,
                &sub,
                BackchannelKind::Si,
                DeliveryMode::Push,
                &rx.url,
            )
        },
    )
    .await;
    g.phone("447700900507").approve_next().await;

    let hits = rx.delivered(WITHIN).await;
    let body = json_of(&hits[0]);
    assert_eq!(body["auth_req_id"], id.as_str());
    assert_eq!(body["correlation_id"], "corr-44");
    assert_eq!(body["token_type"], "Bearer");
    let claims = verified_claims(&g, &client.client_id, body["id_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["urn:openid:params:jwt:claim:auth_req_id"],
        id.as_str()
    );
}

#[tokio::test]
async fn si_pin_locked_is_access_denied() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let client = si_client(&g, &rx.url).await;
    let sub = subscriber(&g, "447700900508", Some("2468")).await;
    start_request(
        &g,
        NewRequest {
            acr: "3",
            ..req(
                &client,
                &sub,
                BackchannelKind::Si,
                DeliveryMode::Push,
                &rx.url,
            )
        },
    )
    .await;
    let phone = g.phone("447700900508");
    let mut last = None;
    for _ in 0..3 {
        last = Some(phone.approve_next_with_pin("0000").await.1);
    }
    assert_eq!(last, Some(AnswerOutcome::Locked));

    let hits = rx.delivered(WITHIN).await;
    let body = json_of(&hits[0]);
    assert_eq!(body["error"], "access_denied");
    assert_eq!(
        body["error_description"],
        "The user has run out of PIN attempts"
    );
}

#[tokio::test]
async fn poll_mode_is_never_notified() {
    let g = Gateway::start().await;
    let rx = Receiver::start(0).await;
    let client = ciba_client(&g, "poll", &rx.url).await;
    let sub = subscriber(&g, "447700900509", None).await;
    let id = start_request(
        &g,
        req(
            &client,
            &sub,
            BackchannelKind::Ciba,
            DeliveryMode::Poll,
            &rx.url,
        ),
    )
    .await;
    g.phone("447700900509").approve_next().await;
    settle().await;
    assert!(rx.hits().is_empty(), "{:?}", rx.hits());
    assert_eq!(status_of(&g, &id).await, SessionStatus::Approved);
    assert_eq!(g.store().outbox_depth().await.unwrap().items, 0);
}

/// A worker that consumed the request and issued tokens, then died before storing the body:
/// the next attempt revokes those tokens and delivers fresh ones.
#[tokio::test]
async fn tokens_issued_before_a_crash_are_revoked_and_replaced() {
    // The worker runs once at start and then only when woken: the crash is staged between.
    let g = Gateway::start_with(|c| c.backchannel.worker_tick_millis = 10_000).await;
    let rx = Receiver::start(0).await;
    let client = ciba_client(&g, "push", &rx.url).await;
    let sub = subscriber(&g, "447700900510", None).await;
    let id = start_request(
        &g,
        req(
            &client,
            &sub,
            BackchannelKind::Ciba,
            DeliveryMode::Push,
            &rx.url,
        ),
    )
    .await;
    let t = now();
    // Answered without waking the worker (the store enqueues the notification).
    let approved = Resolution::Approved {
        acr: "2".into(),
        amr: vec!["SIM_OK".into()],
        auth_time: t,
    };
    let answered = g.store().answer_session(&id, &approved, t).await.unwrap();
    assert_eq!(answered, mc_store::Answered::BackChannel);
    // The "crashed" attempt: consumed, tokens issued, body never stored.
    let session = g.store().consume_backchannel(&id).await.unwrap().unwrap();
    let lost = mc_gateway::tokens::issue_tokens(&g.state, &client, &session, t, Some(&id))
        .await
        .unwrap();
    assert!(token_valid(&g, &lost.access_token).await);

    // What the phone's answer publishes: the notifier's cue.
    g.state.hub.publish_answer(&id, answered, &approved);
    let hits = rx.delivered(WITHIN).await;
    let body = json_of(&hits[0]);
    let delivered = body["access_token"].as_str().unwrap();
    assert_ne!(delivered, lost.access_token);
    assert!(token_valid(&g, delivered).await);
    assert!(!token_valid(&g, &lost.access_token).await);
    let claims = verified_claims(&g, &client.client_id, body["id_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["urn:openid:params:jwt:claim:auth_req_id"],
        id.as_str()
    );
}
