#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Data Gateway sources: the local store and an HTTP back-end (a small axum server on
//! 127.0.0.1 in the test), merged per attribute by precedence. A back-end that is up
//! contributes its attributes; one that is slow (times out) or down costs only its own
//! attributes, never a 500. The circuit breaker opens after N failures and recovers through
//! one trial call; the cache answers within its TTL — both on an injected clock, no sleeps.

mod common;
mod flows;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::*;
use flows::*;
use mc_core::msisdn::Msisdn;
use mc_datagw::breaker::BreakerState;
use mc_datagw::clock::ManualClock;
use mc_datagw::config::HttpSourceConfig;
use mc_datagw::http::HttpSource;
use mc_datagw::source::{AttributeSource, SourceError, Subject};
use serde_json::{Value, json};

const MSISDN: &str = "447700900301";

const UP: u8 = 0;
const SLOW: u8 = 1;
const DOWN: u8 = 2;
const UNKNOWN: u8 = 3;

/// The operator's CRM: `POST /attributes` answers per mode; counts calls and remembers
/// the last request body.
#[derive(Clone)]
struct Crm {
    url: String,
    mode: Arc<AtomicU8>,
    calls: Arc<AtomicUsize>,
    last: Arc<std::sync::Mutex<Value>>,
    _server: Arc<Server>,
}

struct Server(tokio::task::JoinHandle<()>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn crm_answer(State(c): State<Crm>, Json(req): Json<Value>) -> Response {
    c.calls.fetch_add(1, Ordering::SeqCst);
    *c.last.lock().unwrap() = req;
    match c.mode.load(Ordering::SeqCst) {
        UP => Json(json!({
            "email": "crm@example.com",
            "given_name": "FromCrm",
            "national_identifier": "QQ999999Z",
            "shoe_size": "9",
            "birthdate": null,
        }))
        .into_response(),
        // Never answers: the source's timeout ends the call.
        SLOW => std::future::pending::<Response>().await,
        UNKNOWN => StatusCode::NOT_FOUND.into_response(),
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

impl Crm {
    async fn start() -> Crm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/attributes", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(UP));
        let calls = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(std::sync::Mutex::new(Value::Null));
        let (tx, rx) = tokio::sync::oneshot::channel::<Crm>();
        let server = tokio::spawn(async move {
            let crm = rx.await.unwrap();
            let app = axum::Router::new()
                .route("/attributes", axum::routing::post(crm_answer))
                .with_state(crm);
            axum::serve(listener, app).await.unwrap();
        });
        let crm = Crm {
            url,
            mode,
            calls,
            last,
            _server: Arc::new(Server(server)),
        };
        tx.send(crm.clone()).ok();
        crm
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn source_config(url: &str, threshold: u32, ttl: u64) -> HttpSourceConfig {
    serde_json::from_value(json!({
        "name": "crm",
        "url": url,
        "timeout_ms": 300,
        "failure_threshold": threshold,
        "open_secs": 30,
        "cache_ttl_secs": ttl,
        "bearer_token": "crm-secret",
    }))
    .unwrap()
}

fn subject() -> Subject {
    Subject {
        subscriber_id: "sub-1".into(),
        msisdn: Msisdn::parse(MSISDN).unwrap(),
    }
}

#[tokio::test]
async fn circuit_breaker_opens_after_n_failures_and_recovers() {
    let crm = Crm::start().await;
    let clock = Arc::new(ManualClock::new());
    let source = HttpSource::new(source_config(&crm.url, 3, 0), clock.clone()).unwrap();

    // Up: attributes, lenient (unknown and null dropped).
    let a = source.fetch(&subject()).await.unwrap();
    assert_eq!(a.text("email"), Some("crm@example.com"));
    assert!(!a.contains("birthdate"));
    assert_eq!(
        *crm.last.lock().unwrap(),
        json!({"subscriber_id": "sub-1", "msisdn": MSISDN})
    );

    crm.set(DOWN);
    for n in 1..=3u32 {
        assert_eq!(
            source.fetch(&subject()).await.unwrap_err(),
            SourceError::BadAnswer("HTTP 503".into())
        );
        if n < 3 {
            assert_eq!(source.breaker_state(), BreakerState::Closed { failures: n });
        }
    }
    assert_eq!(source.breaker_state(), BreakerState::Open);
    let calls = crm.calls();
    for _ in 0..5 {
        assert_eq!(
            source.fetch(&subject()).await.unwrap_err(),
            SourceError::CircuitOpen
        );
    }
    assert_eq!(
        crm.calls(),
        calls,
        "an open circuit does not call the back-end"
    );

    // The back-end recovers; after open_secs one trial call closes the circuit.
    crm.set(UP);
    clock.advance(Duration::from_secs(29));
    assert_eq!(
        source.fetch(&subject()).await.unwrap_err(),
        SourceError::CircuitOpen
    );
    clock.advance(Duration::from_secs(1));
    assert!(source.fetch(&subject()).await.is_ok());
    assert_eq!(source.breaker_state(), BreakerState::Closed { failures: 0 });
    assert_eq!(crm.calls(), calls + 1);

    // A failed trial reopens it.
    crm.set(SLOW);
    for _ in 0..3 {
        assert_eq!(
            source.fetch(&subject()).await.unwrap_err(),
            SourceError::Timeout
        );
    }
    assert_eq!(source.breaker_state(), BreakerState::Open);
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        source.fetch(&subject()).await.unwrap_err(),
        SourceError::Timeout,
        "the trial call"
    );
    assert_eq!(source.breaker_state(), BreakerState::Open);

    // 404: the back-end knows nothing about the subscriber, which is an answer.
    crm.set(UNKNOWN);
    clock.advance(Duration::from_secs(30));
    assert!(source.fetch(&subject()).await.unwrap().is_empty());
    assert_eq!(source.breaker_state(), BreakerState::Closed { failures: 0 });
}

#[tokio::test]
async fn answers_are_cached_for_their_ttl() {
    let crm = Crm::start().await;
    let clock = Arc::new(ManualClock::new());
    let source = HttpSource::new(source_config(&crm.url, 3, 60), clock.clone()).unwrap();
    source.fetch(&subject()).await.unwrap();
    crm.set(DOWN);
    let cached = source.fetch(&subject()).await.unwrap();
    assert_eq!(cached.text("email"), Some("crm@example.com"));
    assert_eq!(crm.calls(), 1);
    clock.advance(Duration::from_secs(61));
    assert!(
        source.fetch(&subject()).await.is_err(),
        "expired: asked again"
    );
    assert_eq!(crm.calls(), 2);
}

/// A gateway whose Data Gateway merges `local` and the CRM: the CRM wins for
/// `given_name`, the store for everything else it has.
async fn gateway(crm: &Crm) -> (Gateway, Sp) {
    let url = crm.url.clone();
    let g = Gateway::start_with(move |c| {
        c.datagw = serde_json::from_value(json!({
            "precedence": ["local", "crm"],
            "attribute_precedence": {"given_name": ["crm", "local"]},
            "http_sources": [{
                "name": "crm", "url": url, "timeout_ms": 300, "failure_threshold": 2,
                "open_secs": 30, "cache_ttl_secs": 0,
            }],
        }))
        .unwrap();
    })
    .await;
    g.subscriber(MSISDN, None).await;
    mc_gateway::datagw::set_subscriber_attributes(
        g.store(),
        MSISDN,
        &json!({"given_name": "FromStore", "family_name": "Smith", "email": "local@example.com"}),
        false,
    )
    .await
    .unwrap();
    let sp = g
        .sp("Shop", &["openid", "mc_identity_nationalid", "mc_authn"])
        .await;
    (g, sp)
}

async fn premiuminfo(g: &Gateway, sp: &Sp) -> Value {
    let code = code_for(g, sp, MSISDN, |q| {
        q.set("scope", "openid mc_identity_nationalid");
    })
    .await;
    let token = redeem(g, sp, &code).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    let resp = g
        .http()
        .get(format!("{}/premiuminfo", g.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "a failing source is never a 500");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the source timeout"
    );
    resp.json().await.unwrap()
}

#[tokio::test]
async fn up_slow_and_down_back_ends_through_the_gateway() {
    let crm = Crm::start().await;
    let (g, sp) = gateway(&crm).await;

    let up = premiuminfo(&g, &sp).await;
    assert_eq!(
        up["given_name"], "FromCrm",
        "attribute precedence: crm first"
    );
    assert_eq!(
        up["email"], "local@example.com",
        "default precedence: local first"
    );
    assert_eq!(
        up["national_identifier"], "QQ999999Z",
        "only the CRM has it"
    );
    assert_eq!(up["family_name"], "Smith", "only the store has it");
    assert_eq!(up["phone_number"], MSISDN);

    crm.set(SLOW);
    let slow = premiuminfo(&g, &sp).await;
    assert_eq!(
        slow["given_name"], "FromStore",
        "degraded to the store's value"
    );
    assert!(slow.get("national_identifier").is_none(), "{slow}");
    assert_eq!(slow["email"], "local@example.com");

    crm.set(DOWN);
    let down = premiuminfo(&g, &sp).await;
    assert_eq!(down["given_name"], "FromStore");
    assert!(down.get("national_identifier").is_none());
    assert_eq!(down["phone_number"], MSISDN);

    // The circuit is open now (2 failures): the back-end is not called any more.
    let calls = crm.calls();
    let again = premiuminfo(&g, &sp).await;
    assert_eq!(again["family_name"], "Smith");
    assert_eq!(crm.calls(), calls, "open circuit");
}

#[tokio::test]
async fn an_unreachable_back_end_degrades_too() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/attributes", listener.local_addr().unwrap());
    drop(listener);
    let g = Gateway::start_with(move |c| {
        c.datagw = serde_json::from_value(json!({
            "http_sources": [{"name": "crm", "url": dead, "timeout_ms": 300}],
        }))
        .unwrap();
    })
    .await;
    g.subscriber(MSISDN, None).await;
    mc_gateway::datagw::set_subscriber_attributes(
        g.store(),
        MSISDN,
        &json!({"given_name": "FromStore"}),
        false,
    )
    .await
    .unwrap();
    let sp = g.sp("Shop", &["openid", "mc_identity_nationalid"]).await;
    let body = premiuminfo(&g, &sp).await;
    assert_eq!(body["given_name"], "FromStore");
}

#[tokio::test]
async fn configuration_is_validated() {
    let mut c = config("http://127.0.0.1:1");
    c.datagw = serde_json::from_value(json!({
        "precedence": ["ldap"],
    }))
    .unwrap();
    assert!(
        c.validate()
            .unwrap_err()
            .contains("datagw.precedence: unknown source \"ldap\"")
    );
    c.datagw = serde_json::from_value(json!({
        "http_sources": [{"name": "crm", "url": "ftp://crm.example/x"}],
    }))
    .unwrap();
    assert!(
        c.validate()
            .unwrap_err()
            .contains("datagw.http_sources[0].url")
    );
}
