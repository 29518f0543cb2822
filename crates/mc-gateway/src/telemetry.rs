//! Operating the gateway: Prometheus metrics, request ids and the request span.
//!
//! - **Metrics.** One recorder per process ([`install`], behind a `OnceLock`: several gateways
//!   in one process — tests, an embedding — share it). [`envelope`] counts every request by
//!   route *template* (`/authorize/wait/{session}`, never the raw URI: query strings and
//!   paths may carry MSISDNs), method and status; store gauges are sampled when `/metrics`
//!   is scraped ([`sample_store_gauges`]). `logins_total` is counted where the outcome is
//!   decided: the phone's answer in `mc_authn::answer` (approved, denied, locked — exactly
//!   once per login, on whichever node receives the answer) and timeouts here
//!   ([`count_login_timeouts`]).
//! - **Request ids.** An incoming `x-request-id` is kept when it is 1 to
//!   [`MAX_REQUEST_ID_LEN`] visible ASCII characters, otherwise replaced by a generated UUID;
//!   it is echoed in the response and is a field of the request span.
//! - **Request span.** `http{method, route, request_id, session, auth_req_id}`: every log
//!   line of a request carries it (JSON logs as `span`/`spans`). A login crosses nodes (the
//!   browser on node A, the phone's answer on node B, the token request on node C): each of
//!   those requests records the login's id in the span ([`note_session`],
//!   [`note_auth_req_id`]), so one query on `session` (or `auth_req_id`) follows it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::header::{REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use crate::state::AppState;

/// The request id header, accepted and echoed.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest incoming request id kept (longer ones are replaced).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// `http_requests_total{route, method, status}`.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// `http_request_duration_seconds{route}` (histogram).
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// `logins_total{authenticator, outcome}`; counted in `mc_authn::answer` too.
pub const LOGINS: &str = "logins_total";
/// Pending, unexpired back-channel requests (sampled at scrape time).
pub const BACKCHANNEL_PENDING: &str = "backchannel_pending_requests";
/// Notifications waiting in the outbox (sampled at scrape time).
pub const OUTBOX_DEPTH: &str = "outbox_depth";
/// Age of the oldest waiting notification, 0 when none (sampled at scrape time).
pub const OUTBOX_OLDEST_AGE: &str = "outbox_oldest_age_seconds";
/// SMS waiting in the SMS outbox (sampled at scrape time).
pub const SMS_OUTBOX_DEPTH: &str = "sms_outbox_depth";
/// SIM applet requests not over yet (the durable MSSP requests, sampled at scrape time).
pub const MSSP_OUTBOX_DEPTH: &str = "mssp_outbox_depth";
/// Age of the oldest of them.
pub const MSSP_OUTBOX_OLDEST_AGE: &str = "mssp_outbox_oldest_age_seconds";
/// `store_pool_connections{pool, state="idle"|"in_use"}`: this node's store connections
/// (sampled at scrape time).
pub const STORE_POOL_CONNECTIONS: &str = "store_pool_connections";
/// `store_pool_max_connections{pool}`: the most connections the pool may open.
pub const STORE_POOL_MAX: &str = "store_pool_max_connections";

/// Request duration buckets, seconds. Long polls (waiting URL, phone) are held for up to 25 s.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// How often histograms are drained when nobody scrapes (memory stays bounded).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// A store sample taking longer is skipped (the scrape is answered without it).
const STORE_SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder on the first call and returns its handle;
/// later calls return the same handle. If another recorder was installed first (an
/// embedding application's), this one is not installed and renders nothing but gauges of
/// its own — logged once.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), DURATION_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "metrics: another recorder is installed; /metrics will be empty");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            // Scrapes still drain the histograms.
            tracing::warn!(error = %e, "metrics: upkeep thread not started");
        }
        handle
    })
}

/// The recorder's handle, if [`install`] ran in this process.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request duration by route template"
    );
    describe_counter!(
        LOGINS,
        "Finished logins by authenticator and outcome (approved, denied, locked, timeout)"
    );
    describe_gauge!(
        BACKCHANNEL_PENDING,
        "Pending, unexpired back-channel (CIBA, SI) requests"
    );
    describe_gauge!(OUTBOX_DEPTH, "Notifications waiting in the outbox");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest waiting notification"
    );
    describe_gauge!(SMS_OUTBOX_DEPTH, "SMS waiting in the SMS outbox");
    describe_gauge!(MSSP_OUTBOX_DEPTH, "SIM applet (MSSP) requests not over yet");
    describe_gauge!(
        MSSP_OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest SIM applet (MSSP) request not over yet"
    );
    describe_gauge!(
        STORE_POOL_CONNECTIONS,
        "This node's store connections by pool and state (idle, in_use)"
    );
    describe_gauge!(
        STORE_POOL_MAX,
        "The most connections each store pool of this node may open"
    );
}

/// The route label: the matched template, `unmatched` for a 404 of the router. Never the
/// raw URI.
fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned())
}

/// The method label: the standard methods by name, anything else `other` (bounded labels).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware, outermost (one layer for what every request gets, rather than one layer
/// each, all of them cloned with the route for every request): the request id (an incoming
/// `x-request-id` kept when it is single and [acceptable](acceptable_request_id), else a
/// generated one; set on the request, echoed in the response), the [request
/// span](request_span) the handler runs in (the request's start and end are logged in it at
/// debug level, a 5xx answer as an error), the request's metrics (count and duration by
/// route; a no-op until [`install`] ran), and the [security headers](add_security_headers).
/// It is the panic net and the timeout too ([`guarded`]), so their 500s and 503s are logged,
/// counted and carry the headers like any answer.
pub async fn envelope(mut req: Request, next: Next) -> Response {
    let id = request_id_of(&mut req);
    let span = request_span(&req);
    let route = HANDLE
        .get()
        .map(|_| (route_of(&req), method_label(req.method())));
    tracing::debug!(parent: &span, "started processing request");
    let started = Instant::now();
    let mut resp = guarded(REQUEST_TIMEOUT, next.run(req))
        .instrument(span.clone())
        .await;
    let latency = started.elapsed();
    let status = resp.status();
    if status.is_server_error() {
        tracing::error!(parent: &span, status = status.as_u16(), latency_ms = latency.as_millis() as u64, "response failed");
    } else {
        tracing::debug!(parent: &span, status = status.as_u16(), latency_ms = latency.as_millis() as u64, "finished processing request");
    }
    if let Some((route, method)) = route {
        metrics::histogram!(HTTP_DURATION, "route" => route.clone()).record(latency.as_secs_f64());
        let status = status.as_u16().to_string();
        metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status)
            .increment(1);
    }
    let headers = resp.headers_mut();
    if let axum::http::header::Entry::Vacant(slot) = headers.entry(REQUEST_ID) {
        slot.insert(id);
    }
    add_security_headers(headers);
    resp
}

/// The headers every answer carries unless its handler set them: pages must not be framed
/// (clickjacking of the PIN and number forms), content types are not sniffed, and the
/// authorize URL (which may carry a login_hint) must not leak through `Referer`.
fn add_security_headers(headers: &mut axum::http::HeaderMap) {
    for (name, value) in [
        (X_FRAME_OPTIONS, "DENY"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ] {
        if let axum::http::header::Entry::Vacant(slot) = headers.entry(name) {
            slot.insert(HeaderValue::from_static(value));
        }
    }
}

/// How long a request may take before it is answered 503 (long polls hold for 25 s at most).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What `handling` answers; a 500 `server_error` if it panics (the panic is logged, the
/// process goes on), a 503 `temporarily_unavailable` if it takes longer than `limit`.
async fn guarded(limit: Duration, handling: impl Future<Output = Response>) -> Response {
    use futures_util::FutureExt as _;
    use std::panic::AssertUnwindSafe;
    match tokio::time::timeout(limit, AssertUnwindSafe(handling).catch_unwind()).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(panic)) => {
            tracing::error!(panic = panic_message(&*panic), "request handler panicked");
            crate::error::ApiError::from(mc_core::McError::ServerError).into_response()
        }
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            crate::error::ApiError::from(mc_core::McError::TemporarilyUnavailable).into_response()
        }
    }
}

/// What a panic said (`panic!` with a literal or a formatted message), for the log.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// The request's id: the one it carries when that is single and acceptable, else a new one
/// (set on the request in its place).
fn request_id_of(req: &mut Request) -> HeaderValue {
    let mut given = req.headers().get_all(&REQUEST_ID).iter();
    if let (Some(v), None) = (given.next(), given.next())
        && acceptable_request_id(v.as_bytes())
    {
        return v.clone();
    }
    let id = REQUEST_IDS.next_value();
    req.headers_mut().insert(REQUEST_ID, id.clone());
    id
}

/// The process's request-id generator.
static REQUEST_IDS: std::sync::LazyLock<MakeRequestIds> =
    std::sync::LazyLock::new(MakeRequestIds::new);

/// Generated request ids: UUIDs (version 4 in shape) made of a random 64-bit prefix drawn
/// once per process and a counter. Unique across nodes without a system call per request
/// (`MakeRequestUuid` asks the kernel for 16 random bytes each time); a request id is a
/// label for logs, not a secret.
#[derive(Clone)]
struct MakeRequestIds {
    prefix: [u8; 8],
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl MakeRequestIds {
    fn new() -> MakeRequestIds {
        let mut prefix = [0u8; 8];
        // Without the system RNG the ids stay unique within this process (the counter).
        let _ = aws_lc_rs::rand::fill(&mut prefix);
        MakeRequestIds {
            prefix,
            next: Default::default(),
        }
    }

    /// The next id as a header value.
    fn next_value(&self) -> HeaderValue {
        let mut text = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(self.next_id().hyphenated().encode_lower(&mut text))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    }

    fn next_id(&self) -> uuid::Uuid {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.prefix);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// True for an incoming request id worth keeping: 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII
/// characters (no spaces or control characters: it goes into logs verbatim).
pub fn acceptable_request_id(v: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&v.len()) && v.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The request span: method, route template, request id; the login's id is recorded later
/// by the handler that learns it. No URI, no query, no header but the request id.
pub fn request_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str())
        .unwrap_or_default();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        method = %req.method(),
        route,
        request_id,
        session = tracing::field::Empty,
        auth_req_id = tracing::field::Empty,
    )
}

/// Session ids and `auth_req_id`s are 43 characters; anything much longer is not one.
const MAX_LOGIN_ID_LEN: usize = 128;

/// Records the front-channel login this request belongs to in the request span.
pub fn note_session(session_id: &str) {
    if session_id.len() <= MAX_LOGIN_ID_LEN {
        tracing::Span::current().record("session", session_id);
    }
}

/// Records the back-channel request this request belongs to in the request span.
pub fn note_auth_req_id(auth_req_id: &str) {
    if auth_req_id.len() <= MAX_LOGIN_ID_LEN {
        tracing::Span::current().record("auth_req_id", auth_req_id);
    }
}

/// Counts logins that ran out of time. The store does not record which authenticator was
/// asked, so they carry `authenticator="unknown"`.
pub fn count_login_timeouts(n: u64) {
    if n > 0 {
        metrics::counter!(LOGINS, "authenticator" => "unknown", "outcome" => "timeout")
            .increment(n);
    }
}

/// Sets the store gauges (pending back-channel requests, outbox depth and oldest age) from
/// the store, now, and this node's pool use. Called at scrape time: the values are those of
/// the scraped node's store (shared by every node of a PostgreSQL deployment) and pools
/// (its own).
pub async fn sample_store_gauges(s: &AppState) {
    for p in s.store.pool_usage() {
        let pool = p.pool;
        metrics::gauge!(STORE_POOL_CONNECTIONS, "pool" => pool, "state" => "idle")
            .set(f64::from(p.idle));
        metrics::gauge!(STORE_POOL_CONNECTIONS, "pool" => pool, "state" => "in_use")
            .set(f64::from(p.in_use()));
        metrics::gauge!(STORE_POOL_MAX, "pool" => pool).set(f64::from(p.max));
    }
    let t = crate::state::now();
    match tokio::time::timeout(STORE_SAMPLE_TIMEOUT, s.store.pending_backchannel_count(t)).await {
        Ok(Ok(n)) => metrics::gauge!(BACKCHANNEL_PENDING).set(n as f64),
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: pending back-channel count failed"),
        Err(_) => tracing::warn!("metrics: pending back-channel count timed out"),
    }
    match tokio::time::timeout(STORE_SAMPLE_TIMEOUT, s.store.outbox_depth()).await {
        Ok(Ok(d)) => {
            metrics::gauge!(OUTBOX_DEPTH).set(d.items as f64);
            let age = d.oldest.map_or(0, |o| (t - o).max(0));
            metrics::gauge!(OUTBOX_OLDEST_AGE).set(age as f64);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: outbox depth failed"),
        Err(_) => tracing::warn!("metrics: outbox depth timed out"),
    }
    match tokio::time::timeout(STORE_SAMPLE_TIMEOUT, s.store.sms_outbox_len()).await {
        Ok(Ok(n)) => metrics::gauge!(SMS_OUTBOX_DEPTH).set(n as f64),
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: SMS outbox depth failed"),
        Err(_) => tracing::warn!("metrics: SMS outbox depth timed out"),
    }
    match tokio::time::timeout(STORE_SAMPLE_TIMEOUT, s.store.mssp_outbox_depth()).await {
        Ok(Ok(d)) => {
            metrics::gauge!(MSSP_OUTBOX_DEPTH).set(d.items as f64);
            let age = d.oldest.map_or(0, |o| (t - o).max(0));
            metrics::gauge!(MSSP_OUTBOX_OLDEST_AGE).set(age as f64);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: MSSP outbox depth failed"),
        Err(_) => tracing::warn!("metrics: MSSP outbox depth timed out"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn request_ids_are_bounded_and_printable() {
        assert!(acceptable_request_id(b"abc-123_XYZ.:/"));
        assert!(acceptable_request_id(&[b'a'; MAX_REQUEST_ID_LEN]));
        assert!(!acceptable_request_id(&[b'a'; MAX_REQUEST_ID_LEN + 1]));
        assert!(!acceptable_request_id(b""));
        assert!(!acceptable_request_id(b"a b"));
        assert!(!acceptable_request_id(b"a\tb"));
        assert!(!acceptable_request_id("é".as_bytes()));
    }

    /// Distinct within a process and between processes (their random prefixes), and shaped
    /// like the UUIDs the ops test and log readers expect.
    #[test]
    fn generated_request_ids_are_distinct_version_4_uuids() {
        let (a, b) = (MakeRequestIds::new(), MakeRequestIds::new());
        let ids: Vec<uuid::Uuid> = (0..3).map(|_| a.next_id()).chain([b.next_id()]).collect();
        for id in &ids {
            assert_eq!(id.get_version_num(), 4, "{id}");
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
        assert_ne!(
            ids[0].as_bytes()[..8],
            ids[3].as_bytes()[..8],
            "one prefix per process"
        );
    }

    async fn boom() -> &'static str {
        panic!("handler bug")
    }

    async fn fetch(app: &Router, path: &str) -> Response {
        app.clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn json_of(resp: Response) -> serde_json::Value {
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_and_the_router_serves_on() {
        let app = crate::with_layers(
            Router::new()
                .route("/boom", get(boom))
                .route("/fine", get(|| async { "fine" })),
        );
        for _ in 0..2 {
            let resp = fetch(&app, "/boom").await;
            assert_eq!(resp.status(), 500);
            assert_eq!(resp.headers()["x-frame-options"], "DENY");
            assert_eq!(resp.headers()[REQUEST_ID].len(), 36);
            let v = json_of(resp).await;
            assert_eq!(v["error"], "server_error", "{v}");
            assert_eq!(fetch(&app, "/fine").await.status(), 200);
        }
    }

    #[tokio::test]
    async fn a_request_past_its_time_is_a_503() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late".into_response()
        };
        let resp = guarded(Duration::from_millis(20), slow).await;
        assert_eq!(resp.status(), 503);
        let v = json_of(resp).await;
        assert_eq!(v["error"], "temporarily_unavailable", "{v}");
        let quick = guarded(Duration::from_secs(5), async { "quick".into_response() }).await;
        assert_eq!(quick.status(), 200);
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "other"
        );
    }

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    /// The JSON log line of an event inside a request carries the request span: route
    /// template, method, request id and the login's id — the configuration of
    /// `log.format = "json"` in the binary (`tracing_subscriber::fmt().json()`).
    #[tokio::test(flavor = "current_thread")]
    async fn json_log_lines_carry_the_request_span() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(buf.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = crate::with_layers(Router::new().route(
            "/authorize/wait/{session}",
            get(
                |axum::extract::Path(id): axum::extract::Path<String>| async move {
                    note_session(&id);
                    tracing::info!("inside the handler");
                    "ok"
                },
            ),
        ));
        let resp = app
            .oneshot(
                axum::http::Request::get("/authorize/wait/sess-1?login_hint=MSISDN%3A447700900301")
                    .header("x-request-id", "req-42")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-request-id"], "req-42");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("inside the handler"))
            .unwrap_or_else(|| panic!("no log line: {text}"));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let span = &v["span"];
        assert_eq!(span["name"], "http", "{line}");
        assert_eq!(span["request_id"], "req-42", "{line}");
        assert_eq!(span["route"], "/authorize/wait/{session}", "{line}");
        assert_eq!(span["method"], "GET", "{line}");
        assert_eq!(span["session"], "sess-1", "{line}");
        assert!(!text.contains("447700900301"), "{text}");
    }
}
