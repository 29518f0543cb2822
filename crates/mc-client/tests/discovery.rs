//! The Discovery client: against a scripted fake Discovery (every answer shape of digest
//! §2, ttl clamping with an injected clock, Discovery down with and without a cache), and
//! against the real `mc-discovery` service in front of the real gateway — MSISDN lookup,
//! `ENCR_MSISDN` login with the `subscriber_id`, and the operator-selection page's round
//! trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use common::*;
use mc_client::authorize::{AuthorizationRequest, LoginHint};
use mc_client::discovery::{
    DiscoveryClient, DiscoveryConfig, DiscoveryOutcome, DiscoveryRequest, MAX_TTL_SECS,
    MIN_TTL_SECS,
};
use mc_client::redirect::{Redirect, parse_redirect};
use mc_client::{DiscoveryError, Error, MobileConnect};
use mc_core::msisdn::Msisdn;
use serde_json::{Value, json};

const ALICE: &str = "447700900301";

// ---------------------------------------------------------------------------------------
// a scripted Discovery

#[derive(Clone, Debug)]
enum Answer {
    /// 200 with `ttl` = this many epoch milliseconds (None: no ttl member).
    Ok(Option<i64>),
    Selection202,
    Redirect302,
    Status(u16, Value),
    /// 200 whose correlation_id is not the one sent.
    WrongCorrelation,
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    authorization: Option<String>,
    params: HashMap<String, String>,
}

#[derive(Clone)]
struct Fake {
    answer: Arc<Mutex<Answer>>,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn ok_body(ttl: Option<i64>, correlation_id: &str) -> Value {
    let mut b = json!({
        "response": {
            "client_id": "shop-at-op", "client_secret": "secret-at-op",
            "serving_operator": "op-a", "country": "United Kingdom", "currency": "GBP",
            "client_name": "OnlineShopper",
            "apis": {"operatorid": {"link": [
                {"rel": "authorization", "href": "https://op.example/authorize"},
                {"rel": "token", "href": "https://op.example/token"},
                {"rel": "issuer", "href": "https://op.example"}
            ]}}
        },
        "subscriber_id": "00ff",
        "correlation_id": correlation_id,
    });
    if let Some(t) = ttl {
        b["ttl"] = json!(t);
    }
    b
}

async fn fake_handler(
    State(f): State<Fake>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    f.hits.fetch_add(1, Ordering::SeqCst);
    let raw = if method == Method::POST {
        String::from_utf8(body.to_vec()).unwrap()
    } else {
        q.unwrap_or_default()
    };
    let params: HashMap<String, String> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let corr = params.get("correlation_id").cloned().unwrap_or_default();
    f.seen.lock().unwrap().push(Seen {
        method,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        params,
    });
    let answer = f.answer.lock().unwrap().clone();
    match answer {
        Answer::Ok(ttl) => axum::Json(ok_body(ttl, &corr)).into_response(),
        Answer::Selection202 => (
            StatusCode::ACCEPTED,
            axum::Json(
                json!({"links": [{"rel": "operatorSelection", "href": "/select?session_id=s1"}]}),
            ),
        )
            .into_response(),
        Answer::Redirect302 => (
            StatusCode::FOUND,
            [("location", "https://discovery.example/select?session_id=s2")],
        )
            .into_response(),
        Answer::Status(s, body) => {
            let mut body = body.clone();
            if body.is_object() {
                body["correlation_id"] = json!(corr);
            }
            (StatusCode::from_u16(s).unwrap(), axum::Json(body)).into_response()
        }
        Answer::WrongCorrelation => axum::Json(ok_body(None, "not-the-one-sent")).into_response(),
    }
}

struct FakeDiscovery {
    url: String,
    fake: Fake,
    server: tokio::task::JoinHandle<()>,
}

impl FakeDiscovery {
    async fn start(answer: Answer) -> FakeDiscovery {
        let fake = Fake {
            answer: Arc::new(Mutex::new(answer)),
            hits: Arc::new(AtomicUsize::new(0)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2/discovery", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/v2/discovery", axum::routing::any(fake_handler))
            .with_state(fake.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeDiscovery { url, fake, server }
    }

    fn set(&self, a: Answer) {
        *self.fake.answer.lock().unwrap() = a;
    }

    fn hits(&self) -> usize {
        self.fake.hits.load(Ordering::SeqCst)
    }

    fn last(&self) -> Seen {
        self.fake.seen.lock().unwrap().last().cloned().unwrap()
    }

    /// Stops the server: the port refuses connections from now on.
    async fn stop(&self) {
        self.server.abort();
        while !self.server.is_finished() {
            tokio::task::yield_now().await;
        }
    }
}

struct Bed {
    fake: FakeDiscovery,
    offset: Arc<AtomicI64>,
    mc: MobileConnect,
    client: DiscoveryClient,
}

async fn bed(answer: Answer) -> Bed {
    let fake = FakeDiscovery::start(answer).await;
    let offset = Arc::new(AtomicI64::new(0));
    let mc = MobileConnect::new(options_with_offset(offset.clone()));
    let client = mc.discovery(DiscoveryConfig::new(
        &fake.url,
        "disco-id",
        "disco secret:1",
        "https://shop.example/cb",
    ));
    Bed {
        fake,
        offset,
        mc,
        client,
    }
}

fn alice() -> DiscoveryRequest {
    DiscoveryRequest::msisdn(Msisdn::parse(ALICE).unwrap())
}

fn operator(o: DiscoveryOutcome) -> Box<mc_client::discovery::DiscoveredOperator> {
    match o {
        DiscoveryOutcome::Operator(op) => op,
        other => panic!("{other:?}"),
    }
}

fn ms(secs: i64) -> i64 {
    secs * 1000
}

// ---------------------------------------------------------------------------------------
// against the fake

#[tokio::test]
async fn msisdn_lookup_posts_a_form_with_basic_auth_and_caches_until_ttl() {
    let b = bed(Answer::Ok(None)).await;
    // The expiry the fake sends, read once: reading the clock again for the assertion fails
    // when a second boundary falls in between.
    let expires_at = b.mc.now() + 3600;
    b.fake.set(Answer::Ok(Some(ms(expires_at))));
    let op = operator(b.client.discover(&alice()).await.unwrap());
    let seen = b.fake.last();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.params["MSISDN"], ALICE, "no '+'");
    assert_eq!(seen.params["Redirect_URL"], "https://shop.example/cb");
    assert_eq!(
        Some(&seen.params["correlation_id"]),
        op.correlation_id.as_ref()
    );
    use base64::Engine as _;
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("disco-id:disco secret:1")
        ))
    );
    assert_eq!(op.client_id, "shop-at-op");
    assert_eq!(op.client_secret.as_ref().unwrap().expose(), "secret-at-op");
    assert_eq!(op.subscriber_id.as_deref(), Some("00ff"));
    assert_eq!(op.client_name.as_deref(), Some("OnlineShopper"));
    assert_eq!(op.link("issuer"), Some("https://op.example"));
    assert!(!op.from_cache && !op.stale);
    assert_eq!(op.expires_at, expires_at);

    let again = operator(b.client.discover(&alice()).await.unwrap());
    assert!(again.from_cache && !again.stale);
    assert_eq!(
        again.subscriber_id.as_deref(),
        Some("00ff"),
        "a per-MSISDN entry keeps it"
    );
    assert_eq!(b.fake.hits(), 1);
    b.offset.store(3601, Ordering::SeqCst);
    let fresh = operator(b.client.discover(&alice()).await.unwrap());
    assert!(!fresh.from_cache);
    assert_eq!(b.fake.hits(), 2);
}

#[tokio::test]
async fn ttl_in_the_past_is_cached_five_minutes_and_far_future_180_days() {
    let b = bed(Answer::Ok(Some(1_466_082_848_000))).await; // the Java fixture's ttl
    let before = b.mc.now();
    let op = operator(b.client.discover(&alice()).await.unwrap());
    assert_expires_within(op.expires_at, before, b.mc.now(), MIN_TTL_SECS);
    b.offset.store(MIN_TTL_SECS - 1, Ordering::SeqCst);
    b.client.discover(&alice()).await.unwrap();
    assert_eq!(b.fake.hits(), 1, "still fresh");
    b.offset.store(MIN_TTL_SECS + 1, Ordering::SeqCst);
    b.client.discover(&alice()).await.unwrap();
    assert_eq!(b.fake.hits(), 2, "expired after the 5 min floor");

    // A ttl read as a duration by the Java SDK (small number) or absent: the floor too.
    b.fake.set(Answer::Ok(None));
    let before = b.mc.now();
    let op = operator(
        b.client
            .discover(&DiscoveryRequest::identified("901", "01"))
            .await
            .unwrap(),
    );
    assert_expires_within(op.expires_at, before, b.mc.now(), MIN_TTL_SECS);

    // Ten years: 180 days.
    let before = b.mc.now();
    b.fake.set(Answer::Ok(Some(ms(before + 10 * 365 * 86_400))));
    let op = operator(
        b.client
            .discover(&DiscoveryRequest::identified("234", "15"))
            .await
            .unwrap(),
    );
    assert_expires_within(op.expires_at, before, b.mc.now(), MAX_TTL_SECS);
}

/// The client reads the clock itself, so the expiry is only known to lie between the
/// clock read before and after the call (a second boundary may fall in between).
fn assert_expires_within(expires_at: i64, before: i64, after: i64, ttl: i64) {
    assert!(
        (before + ttl..=after + ttl).contains(&expires_at),
        "expires_at {expires_at} not within [{}, {}]",
        before + ttl,
        after + ttl
    );
}

#[tokio::test]
async fn discovery_down_serves_the_stale_entry_and_without_one_is_a_typed_error() {
    let b = bed(Answer::Ok(None)).await;
    b.fake.set(Answer::Ok(Some(ms(b.mc.now() + 600))));
    b.client.discover(&alice()).await.unwrap();
    b.offset.store(601, Ordering::SeqCst);

    // Discovery answers 503: the expired entry stands in.
    b.fake.set(Answer::Status(
        503,
        json!({"error": "temporarily_unavailable"}),
    ));
    let stale = operator(b.client.discover(&alice()).await.unwrap());
    assert!(stale.stale && stale.from_cache);
    assert_eq!(stale.client_id, "shop-at-op");
    assert_eq!(b.fake.hits(), 2, "it did ask");

    // Discovery is gone altogether.
    b.fake.stop().await;
    let stale = operator(b.client.discover(&alice()).await.unwrap());
    assert!(stale.stale);
    // Nothing cached for another number: a typed error.
    let bob = DiscoveryRequest::msisdn(Msisdn::parse("447700900302").unwrap());
    match b.client.discover(&bob).await {
        Err(Error::Discovery(DiscoveryError::Unavailable(_))) => {}
        other => panic!("{other:?}"),
    }
    // Nor for a request without a cache key.
    assert!(matches!(
        b.client.discover(&DiscoveryRequest::none()).await,
        Err(Error::Discovery(DiscoveryError::Unavailable(_)))
    ));
}

#[tokio::test]
async fn definitive_errors_are_typed_and_never_answered_from_the_cache() {
    let b = bed(Answer::Ok(None)).await;
    b.fake.set(Answer::Ok(Some(ms(b.mc.now() + 600))));
    b.client.discover(&alice()).await.unwrap();
    b.offset.store(601, Ordering::SeqCst);
    let cases = [
        (
            Answer::Status(
                401,
                json!({"error": "invalid_client", "description": "bad credentials"}),
            ),
            "unauthorized",
        ),
        (
            Answer::Status(
                404,
                json!({"error": "Not_Found_Entity", "description": "Operator Not Found"}),
            ),
            "not found",
        ),
        // The Java fixture's "not found" comes with HTTP 200.
        (
            Answer::Status(
                200,
                json!({"error": "Not_Found_Entity", "description": "Operator Not Found"}),
            ),
            "not found",
        ),
        (
            Answer::Status(
                400,
                json!({"error": "invalid_request", "description": "Redirect_URL is missing"}),
            ),
            "rejected",
        ),
        (Answer::WrongCorrelation, "correlation"),
    ];
    for (answer, want) in cases {
        b.fake.set(answer.clone());
        let err = b.client.discover(&alice()).await.unwrap_err();
        let got = match &err {
            Error::Discovery(DiscoveryError::Unauthorized(d)) => {
                assert_eq!(d, "bad credentials");
                "unauthorized"
            }
            Error::Discovery(DiscoveryError::NotFound(d)) => {
                assert_eq!(d, "Operator Not Found");
                "not found"
            }
            Error::Discovery(DiscoveryError::Rejected { status, error, .. }) => {
                assert_eq!((*status, error.as_str()), (400, "invalid_request"));
                "rejected"
            }
            Error::Discovery(DiscoveryError::CorrelationIdMismatch { .. }) => "correlation",
            other => panic!("{answer:?}: {other:?}"),
        };
        assert_eq!(got, want, "{answer:?}");
    }
}

#[tokio::test]
async fn operator_selection_by_202_and_302_and_the_way_back() {
    let b = bed(Answer::Selection202).await;
    match b.client.discover(&DiscoveryRequest::none()).await.unwrap() {
        DiscoveryOutcome::OperatorSelection { url } => {
            assert_eq!(
                url,
                format!(
                    "{}/select?session_id=s1",
                    b.fake.url.trim_end_matches("/v2/discovery")
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.fake.last().method, Method::GET);
    assert!(!b.fake.last().params.contains_key("MSISDN"));
    b.fake.set(Answer::Redirect302);
    match b
        .client
        .discover(&DiscoveryRequest::none().source_ip("10.64.1.2"))
        .await
        .unwrap()
    {
        DiscoveryOutcome::OperatorSelection { url } => {
            assert_eq!(url, "https://discovery.example/select?session_id=s2")
        }
        other => panic!("{other:?}"),
    }

    // The page sends the browser back with mcc_mnc and subscriber_id.
    b.fake.set(Answer::Ok(Some(ms(b.mc.now() + 3600))));
    let back = parse_redirect("https://shop.example/cb?mcc_mnc=901_01&subscriber_id=abc").unwrap();
    let op = operator(b.client.after_selection(&back).await.unwrap());
    let seen = b.fake.last();
    assert_eq!(
        (
            seen.params["Selected-MCC"].as_str(),
            seen.params["Selected-MNC"].as_str()
        ),
        ("901", "01")
    );
    assert_eq!(
        op.subscriber_id.as_deref(),
        Some("00ff"),
        "the answer's own wins"
    );
    // Another user of the same network: served from the MCC/MNC entry, which never keeps
    // the previous user's subscriber_id.
    let back = parse_redirect("mcc_mnc=901_01&subscriber_id=def").unwrap();
    let op = operator(b.client.after_selection(&back).await.unwrap());
    assert!(op.from_cache);
    assert_eq!(op.subscriber_id.as_deref(), Some("def"));
    assert_eq!(op.mcc_mnc, Some(("901".into(), "01".into())));

    // The page's own errors.
    match b
        .client
        .after_selection(&parse_redirect("err_msg=MSISDNNotFound").unwrap())
        .await
    {
        Err(Error::Discovery(DiscoveryError::Selection(m))) => assert_eq!(m, "MSISDNNotFound"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// against the real Discovery service and gateway

struct RealDiscovery {
    url: String,
    _server: tokio::task::JoinHandle<()>,
}

const DISCO_ID: &str = "onlineshopper-discovery";
const DISCO_SECRET: &str = "discovery-secret-0123456789abcdef";

/// `mc-discovery` with one operator — the sandbox gateway (MCC/MNC 901/01, range
/// +4477009003, subscriber_ids encrypted to the gateway's `enc` key) — and the shop's
/// discovery credentials and its credentials at the gateway.
async fn real_discovery(sbx: &Sandbox) -> RealDiscovery {
    use mc_discovery::registry::{self, AppSpec, CredentialSpec, OperatorSpec};
    use mc_store::{DiscoveryStore, NumberEntry, NumberKind};
    let store = Arc::new(
        mc_store_sqlite::SqliteStore::open_in_memory()
            .await
            .unwrap(),
    );
    let s: &dyn DiscoveryStore = &*store;
    let jwks: Value = reqwest::get(format!("{}/jwks", sbx.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let enc = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["use"] == "enc")
        .cloned()
        .expect("the gateway publishes an encryption key");
    let mut links = BTreeMap::new();
    for (rel, path) in [
        ("authorization", "/authorize"),
        ("token", "/token"),
        ("userinfo", "/userinfo"),
        ("jwks", "/jwks"),
    ] {
        links.insert(rel.to_owned(), format!("{}{path}", sbx.base));
    }
    links.insert("issuer".to_owned(), sbx.base.clone());
    registry::create_operator(
        s,
        &OperatorSpec {
            id: "sandbox-op".into(),
            mcc: "901".into(),
            mnc: "01".into(),
            name: "Sandbox Operator".into(),
            country: "United Kingdom".into(),
            currency: "GBP".into(),
            links,
            encryption_jwk: Some(enc),
            enabled: true,
        },
    )
    .await
    .unwrap();
    registry::create_app(
        s,
        &AppSpec {
            client_id: Some(DISCO_ID.into()),
            name: "OnlineShopper".into(),
            short_name: "OnlineShopper".into(),
            redirect_uris: vec![sbx.shop_redirect()],
            enabled: true,
        },
        Some(DISCO_SECRET),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = mc_discovery::DiscoveryState::new(
        store.clone(),
        mc_discovery::DiscoveryConfig::new(base.clone()),
        &[5u8; 32],
    )
    .unwrap();
    let shop = sbx.shop();
    registry::put_credential(
        s,
        state.secrets(),
        DISCO_ID,
        "sandbox-op",
        &CredentialSpec {
            client_id: shop.client_id.clone(),
            client_secret: shop.client_secret.clone(),
            client_name: Some(shop.short_name.clone()),
        },
    )
    .await
    .unwrap();
    s.upsert_numbers(
        &[NumberEntry {
            kind: NumberKind::Range,
            number: 4_477_009_003,
            operator_id: "sandbox-op".into(),
        }],
        1,
    )
    .await
    .unwrap();
    state.reload().await.unwrap();
    let app = mc_discovery::router(state);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    RealDiscovery {
        url: format!("{base}/v2/discovery"),
        _server: server,
    }
}

#[tokio::test]
async fn msisdn_discovery_then_an_encr_msisdn_login_against_the_real_services() {
    let sbx = Arc::new(Sandbox::start().await);
    let disco = real_discovery(&sbx).await;
    let mc = MobileConnect::new(Default::default());
    let client = mc.discovery(DiscoveryConfig::new(
        &disco.url,
        DISCO_ID,
        DISCO_SECRET,
        sbx.shop_redirect(),
    ));
    let found = operator(client.discover(&alice()).await.unwrap());
    assert_eq!(found.client_id, sbx.shop().client_id);
    assert_eq!(found.mcc_mnc, None);
    let subscriber_id = found.subscriber_id.clone().expect("encrypted MSISDN");
    assert!(subscriber_id.len() >= 512, "RSA-2048 ciphertext in hex");
    assert!(found.expires_at > mc.now() + MIN_TTL_SECS - 1);

    let op = mc.operator_from_discovery(&found).await.unwrap();
    assert_eq!(op.issuer(), sbx.base);
    let start = op
        .authorize(
            AuthorizationRequest::authn(&sbx.shop_redirect())
                .login_hint(LoginHint::from_discovery(&found).unwrap()),
        )
        .unwrap();
    assert!(start.url.contains("ENCR_MSISDN"));
    assert_eq!(
        start.pending.msisdn.as_deref(),
        Some(ALICE),
        "known from discovery"
    );
    let phone = sbx.approve_next(ALICE, None);
    let back = browser(&start.url, &sbx.shop_redirect()).await;
    phone.await.unwrap();
    let login = op.complete(&start.pending, &back).await.unwrap();
    // The gateway decrypted the number: hashed_login_hint is Alice's (checked by complete).
    assert_eq!(
        login.id_token.hashed_login_hint.as_deref(),
        Some(mc_core::id_token::hashed_login_hint(&Msisdn::parse(ALICE).unwrap()).as_str())
    );

    // Unknown number and wrong credentials: the documented errors, typed.
    let stranger = DiscoveryRequest::msisdn(Msisdn::parse("33612345678").unwrap());
    match client.discover(&stranger).await {
        Err(Error::Discovery(DiscoveryError::NotFound(_)))
        | Ok(DiscoveryOutcome::OperatorSelection { .. }) => {}
        other => panic!("{other:?}"),
    }
    let wrong = mc.discovery(DiscoveryConfig::new(
        &disco.url,
        DISCO_ID,
        "wrong",
        sbx.shop_redirect(),
    ));
    assert!(matches!(
        wrong.discover(&alice()).await,
        Err(Error::Discovery(DiscoveryError::Unauthorized(_)))
    ));
}

#[tokio::test]
async fn the_operator_selection_page_round_trip_against_the_real_services() {
    let sbx = Arc::new(Sandbox::start().await);
    let disco = real_discovery(&sbx).await;
    let mc = MobileConnect::new(Default::default());
    let client = mc.discovery(DiscoveryConfig::new(
        &disco.url,
        DISCO_ID,
        DISCO_SECRET,
        sbx.shop_redirect(),
    ));
    let DiscoveryOutcome::OperatorSelection { url } =
        client.discover(&DiscoveryRequest::none()).await.unwrap()
    else {
        panic!("no hint: operator selection expected");
    };
    // The user types the number on the page.
    let page = url::Url::parse(&url).unwrap();
    let session_id = page
        .query_pairs()
        .find(|(k, _)| k == "session_id")
        .map(|(_, v)| v.into_owned())
        .expect("session_id in the selection URL");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = http.get(&url).send().await.unwrap();
    assert_eq!(html.status(), 200);
    let resp = http
        .post(page.as_str().split('?').next().unwrap())
        .form(&[
            ("session_id", session_id.as_str()),
            ("msisdn", "+44 7700 900301"),
        ])
        .send()
        .await
        .unwrap();
    let back = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&sbx.shop_redirect()), "{back}");
    let redirect = parse_redirect(&back).unwrap();
    assert!(
        matches!(&redirect, Redirect::OperatorSelected { mcc, mnc, subscriber_id: Some(_), .. }
        if mcc == "901" && mnc == "01")
    );
    let found = operator(client.after_selection(&redirect).await.unwrap());
    let op = mc.operator_from_discovery(&found).await.unwrap();
    let start = op
        .authorize(
            AuthorizationRequest::authn(&sbx.shop_redirect())
                .login_hint(LoginHint::from_discovery(&found).unwrap()),
        )
        .unwrap();
    let phone = sbx.approve_next(ALICE, None);
    let back = browser(&start.url, &sbx.shop_redirect()).await;
    phone.await.unwrap();
    let login = op.complete(&start.pending, &back).await.unwrap();
    assert!(!login.id_token.pcr().is_empty());
}
