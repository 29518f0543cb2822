#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Scale and durability of server-initiated login (OpenID CIBA, poll mode), on the real
//! `mobileconnect` binary driven over HTTP only:
//!
//! "10,000 concurrent pending requests on one node with bounded memory; pending requests
//! survive a restart of the gateway and still complete."
//!
//! The sandbox (debug build, temporary data folder, request lifetime raised to one hour so
//! nothing expires during the test) gets [`N`] subscribers through the admin REST API and one
//! CIBA poll client; then [`N`] requests are started, one per subscriber, [`IN_FLIGHT`] at a
//! time. The child's resident set (`VmRSS` of `/proc/<pid>/status`) is read before
//! provisioning, after it, half-way through the requests and after them: the pending state
//! lives in SQLite, so the requests may not grow the process by more than
//! [`MAX_PENDING_GROWTH_KIB`]. Then the process is killed (SIGKILL, no graceful shutdown),
//! started again on the same folder, and requests started before the kill are approved on
//! the virtual phone and polled to tokens, while another one is still pending.
//!
//! The helpers are a trimmed copy of those in `binary.rs`; the child is killed when its
//! guard drops, also when an assertion fails.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mobileconnect");
/// How long a child may take to answer `/healthz`.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// Subscribers provisioned and CIBA requests left pending.
const N: usize = 10_000;
/// Requests in flight at a time (provisioning and starts).
const IN_FLIGHT: usize = 32;
/// The first test number: `+447700910000` … `+447700919999`, clear of the sandbox's own
/// `+447700900301` and `+447700900302`.
const FIRST_MSISDN: u64 = 447_700_910_000;
/// The most the process may grow while the [`N`] requests are started and left pending.
/// Measured (debug build, 2 shared cores): +1.0 MiB for 10,000 requests, on a process of
/// about 49 MiB. The pending state is rows in SQLite; what the process may add while serving
/// them is the page caches of its five SQLite connections (SQLite's default `cache_size` is
/// 2,000 KiB per connection: 10 MiB at most) plus allocator slack for [`IN_FLIGHT`] requests.
/// Keeping every pending request in memory (a session record is about 1 to 2 KiB of strings)
/// would add 10 to 20 MiB and fail this bound.
const MAX_PENDING_GROWTH_KIB: u64 = 16 * 1024;
/// The most the second half of the requests may grow the process (measured: +0.0 MiB).
/// Were pending requests held in memory, this half would grow it as much as the first, by
/// 5 to 10 MiB.
const MAX_SECOND_HALF_GROWTH_KIB: u64 = 4 * 1024;

// ---------------------------------------------------------------------------------------
// Harness (from binary.rs)
// ---------------------------------------------------------------------------------------

/// A fresh temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "mc-scale-{tag}-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago; [`start`] retries on a bind failure.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running child process; killed (SIGKILL) and reaped on drop.
struct Server {
    child: Child,
    port: u16,
    /// `http://127.0.0.1:<port>`
    base: String,
    stderr: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The child's resident set in KiB (`VmRSS`) and its peak (`VmHWM`).
    fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/<pid>/status: {status}"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// `mobileconnect sandbox --data DATA` with a clean environment (no inherited `MC_*`) plus
/// `env`; waits for `/healthz` with a bounded poll. The first attempt uses `preferred` when
/// given; a child that lost its port to another process is retried on a fresh one.
async fn sandbox(data: &Path, logs: &Path, preferred: Option<u16>, env: &[(&str, &str)]) -> Server {
    let http = client();
    for attempt in 0..5 {
        let port = match (attempt, preferred) {
            (0, Some(p)) => p,
            _ => free_port(),
        };
        let out = logs.join(format!("child-{port}-{attempt}.out"));
        let err = logs.join(format!("child-{port}-{attempt}.err"));
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MC_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .current_dir(logs)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .arg("sandbox")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(data);
        let mut server = Server {
            child: cmd.spawn().unwrap(),
            port,
            base: format!("http://127.0.0.1:{port}"),
            stderr: err,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                let e = server.stderr();
                if e.contains("listen") && e.to_lowercase().contains("in use") {
                    break; // taken meanwhile: another port
                }
                panic!("the binary exited with {status} before it was ready: {e}");
            }
            let healthy = http
                .get(format!("{}/healthz", server.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if healthy {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "not ready within {READY_WITHIN:?}: {}",
                server.stderr()
            );
            // Polling interval of the readiness loop (not a synchronisation).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("could not bind a free loopback port in 5 attempts");
}

/// No redirects followed, no cookies, no proxy, bounded.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    Url::parse_with_params("http://x/", pairs)
        .unwrap()
        .query()
        .unwrap()
        .to_owned()
}

/// The JSON of one JWT segment.
fn jwt_part(jwt: &str, i: usize) -> Value {
    let seg = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}

fn msisdn(i: usize) -> String {
    (FIRST_MSISDN + i as u64).to_string()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------
// Bounded concurrency
// ---------------------------------------------------------------------------------------

/// Runs `f(i)` for every `i` in `range`, at most `in_flight` at a time (that many workers
/// take the next index from a shared counter); the results in index order.
async fn bounded<T, F, Fut>(range: std::ops::Range<usize>, in_flight: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send,
{
    let next = Arc::new(AtomicUsize::new(range.start));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (next, f, end) = (next.clone(), f.clone(), range.end);
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= end {
                    return done;
                }
                done.push((i, f(i).await));
            }
        });
    }
    let mut all: Vec<(usize, T)> = Vec::with_capacity(range.len());
    while let Some(done) = workers.join_next().await {
        all.extend(done.unwrap());
    }
    all.sort_by_key(|(i, _)| *i);
    assert_eq!(all.len(), range.len());
    all.into_iter().map(|(_, t)| t).collect()
}

/// Why one call failed: the HTTP status (or `transport`) and the body (or error).
type Failure = (String, String);

fn transport(e: reqwest::Error) -> Failure {
    ("transport".to_owned(), e.to_string())
}

/// Panics with a digest (count per status, first bodies) when any outcome is an error;
/// `first` is the index of the first outcome (the number it was for is named).
fn all_ok<T>(what: &str, first: usize, outcomes: Vec<Result<T, Failure>>) -> Vec<T> {
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut samples: Vec<String> = Vec::new();
    let mut ok = Vec::with_capacity(outcomes.len());
    for (i, o) in outcomes.into_iter().enumerate() {
        match o {
            Ok(t) => ok.push(t),
            Err((status, body)) => {
                *by_status.entry(status.clone()).or_default() += 1;
                if samples.len() < 5 {
                    let i = first + i;
                    samples.push(format!("#{i} ({}): {status} {body}", msisdn(i)));
                }
            }
        }
    }
    assert!(
        by_status.is_empty(),
        "{what}: {} of {} failed, by status {by_status:?}; first: {samples:#?}",
        by_status.values().sum::<usize>(),
        ok.len() + by_status.values().sum::<usize>()
    );
    ok
}

// ---------------------------------------------------------------------------------------
// The service provider's side
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Sp {
    client_id: String,
    secret: String,
}

/// A started request as `/bc-authorize` answered it.
#[derive(Clone, Debug)]
struct Started {
    auth_req_id: String,
    expires_in: i64,
    interval: u64,
}

async fn bc_authorize(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    msisdn: &str,
) -> Result<Started, Failure> {
    let hint = format!("MSISDN:{msisdn}");
    let r = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth(&sp.client_id, Some(&sp.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("scope", "openid mc_authn"),
            ("login_hint", &hint),
            ("binding_message", "SCALE-1"),
        ]))
        .send()
        .await
        .map_err(transport)?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        return Err((status.to_string(), text));
    }
    let v: Value = serde_json::from_str(&text).map_err(|_| (status.to_string(), text.clone()))?;
    match (
        v["auth_req_id"].as_str(),
        v["expires_in"].as_i64(),
        v["interval"].as_u64(),
    ) {
        (Some(id), Some(expires_in), Some(interval)) if !id.is_empty() => Ok(Started {
            auth_req_id: id.to_owned(),
            expires_in,
            interval,
        }),
        _ => Err((status.to_string(), text)),
    }
}

/// One poll of the CIBA grant at `/token`.
async fn poll(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    auth_req_id: &str,
) -> (StatusCode, Value) {
    let r = http
        .post(format!("{base}/token"))
        .basic_auth(&sp.client_id, Some(&sp.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", auth_req_id),
        ]))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The phone of `msisdn` (JSON device API): long-polls for its open challenge, checks it is
/// the request `auth_req_id`, and approves it.
async fn approve_on_phone(http: &reqwest::Client, base: &str, msisdn: &str, auth_req_id: &str) {
    let mut challenge = None;
    for _ in 0..3 {
        let r = http
            .get(format!("{base}/phone/{msisdn}/challenges?wait=10"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "phone {msisdn}");
        let v: Value = r.json().await.unwrap();
        if let Some(c) = v["challenges"].as_array().and_then(|a| a.first()) {
            challenge = Some(c.clone());
            break;
        }
    }
    let c = challenge.unwrap_or_else(|| panic!("no challenge reached phone {msisdn} in 30 s"));
    assert_eq!(c["id"], auth_req_id, "{c}");
    assert_eq!(c["binding_message"], "SCALE-1", "{c}");
    let r = http
        .post(format!("{base}/phone/{msisdn}/challenges/{auth_req_id}"))
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["result"], "approved", "{v}");
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_pending_ciba_requests_bounded_memory_and_survive_a_restart() {
    let t_all = Instant::now();
    let tmp = TempDir::new("ciba");
    let data = tmp.join("data");
    let env = [
        ("MC_GATEWAY__BACKCHANNEL__MAX_EXPIRY_SECS", "3600"),
        ("MC_GATEWAY__BACKCHANNEL__DEFAULT_EXPIRY_SECS", "3600"),
    ];
    let first = sandbox(&data, tmp.path(), None, &env).await;
    let base = first.base.clone();
    let info = read_json(&data.join("sandbox.json"));
    let admin_token = info["admin_token"].as_str().unwrap().to_owned();
    let http = client();
    let (rss_start, _) = first.rss_kib();

    // ----- N subscribers through the admin REST API ------------------------------------
    let t_prov = Instant::now();
    let created = bounded(0..N, IN_FLIGHT, {
        let (http, base, token) = (http.clone(), base.clone(), admin_token.clone());
        move |i| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            async move {
                let r = http
                    .post(format!("{base}/admin/v1/subscribers"))
                    .bearer_auth(&token)
                    .json(
                        &json!({"msisdn": format!("+{}", msisdn(i)), "capabilities": ["app_push"]}),
                    )
                    .send()
                    .await
                    .map_err(transport)?;
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                if status == StatusCode::CREATED {
                    Ok(())
                } else {
                    Err((status.to_string(), body))
                }
            }
        }
    })
    .await;
    all_ok("provisioning", 0, created);
    let provision_time = t_prov.elapsed();
    let (rss_provisioned, _) = first.rss_kib();

    // ----- one CIBA poll client -----------------------------------------------------------
    let r = http
        .post(format!("{base}/admin/v1/clients"))
        .bearer_auth(&admin_token)
        .json(&json!({
            "name": "Scale test back end",
            "short_name": "ScaleShop",
            "redirect_uris": [format!("{base}/demo-sp/callback")],
            "scopes": ["openid", "mc_authn"],
            "metadata": {
                "backchannel_token_delivery_mode": "poll",
                "jwks_uri": format!("{base}/demo-sp/jwks.json"),
                // The sandbox's default of 100 calls a day would stop the test at 100.
                "quota_per_day": 0,
                "quota_per_second": 0,
                // The app only: no SMS fallback for requests nobody answers.
                "authenticator_chains": {"2": ["app_push"], "3": ["app_push"]},
            },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let sp = Sp {
        client_id: v["client_id"].as_str().unwrap().to_owned(),
        secret: v["client_secret"].as_str().unwrap().to_owned(),
    };

    // ----- N pending requests, in two halves (RSS in between) ------------------------------
    let start_range = |range: std::ops::Range<usize>| {
        let (http, base, sp) = (http.clone(), base.clone(), sp.clone());
        bounded(range, IN_FLIGHT, move |i| {
            let (http, base, sp) = (http.clone(), base.clone(), sp.clone());
            async move { bc_authorize(&http, &base, &sp, &msisdn(i)).await }
        })
    };
    let t_start = Instant::now();
    let mut started = all_ok("bc-authorize (first half)", 0, start_range(0..N / 2).await);
    let (rss_half, _) = first.rss_kib();
    started.extend(all_ok(
        "bc-authorize (second half)",
        N / 2,
        start_range(N / 2..N).await,
    ));
    let start_time = t_start.elapsed();
    let (rss_pending, hwm_pending) = first.rss_kib();
    let db_kib = ["mobileconnect.db", "mobileconnect.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len() / 1024)
        .sum::<u64>();

    assert_eq!(started.len(), N);
    let ids: HashSet<&str> = started.iter().map(|s| s.auth_req_id.as_str()).collect();
    assert_eq!(ids.len(), N, "auth_req_ids must be distinct");
    assert!(
        started.iter().all(|s| s.expires_in > 3000),
        "the one-hour expiry was not applied: {:?}",
        started[0]
    );
    let interval = Duration::from_secs(started[0].interval);
    assert!(started.iter().all(|s| s.interval == started[0].interval));

    // One of them, polled: still pending.
    let polled = &started[0];
    let (status, v) = poll(&http, &base, &sp, &polled.auth_req_id).await;
    let polled_at = Instant::now();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "authorization_pending", "{v}");

    let growth = rss_pending.saturating_sub(rss_provisioned);
    let second_half = rss_pending.saturating_sub(rss_half);
    println!(
        "RSS: start {:.1} MiB, after {N} subscribers {:.1} MiB, after {} requests {:.1} MiB, \
         after {N} requests {:.1} MiB (peak {:.1} MiB); growth from the requests {:.1} MiB, \
         from the second half {:.1} MiB; database and WAL on disk {:.1} MiB",
        mib(rss_start),
        mib(rss_provisioned),
        N / 2,
        mib(rss_half),
        mib(rss_pending),
        mib(hwm_pending),
        mib(growth),
        mib(second_half),
        mib(db_kib),
    );

    // ----- SIGKILL, restart on the same folder -----------------------------------------
    let port = first.port;
    drop(first);
    let t_restart = Instant::now();
    let second = sandbox(&data, tmp.path(), Some(port), &env).await;
    let restart_time = t_restart.elapsed();
    let (rss_restarted, _) = second.rss_kib();
    let base2 = second.base.clone();

    // A request nobody answered is still pending after the restart.
    let untouched = &started[N / 2];
    let (status, v) = poll(&http, &base2, &sp, &untouched.auth_req_id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "authorization_pending", "{v}");

    // Two requests started before the kill (one of them polled then) complete: approved on
    // the phone, polled to tokens.
    for i in [0, N - 1] {
        let req = &started[i];
        approve_on_phone(&http, &base2, &msisdn(i), &req.auth_req_id).await;
        if i == 0 {
            // CIBA pacing, not a synchronisation: this request was polled before the kill,
            // and a poll within `interval` of that one is answered slow_down.
            let since = polled_at.elapsed();
            if since < interval {
                tokio::time::sleep(interval - since).await;
            }
        }
        let (status, tokens) = poll(&http, &base2, &sp, &req.auth_req_id).await;
        assert_eq!(status, StatusCode::OK, "request #{i}: {tokens}");
        assert!(tokens["access_token"].is_string(), "{tokens}");
        let id_token = tokens["id_token"].as_str().unwrap();
        let claims = jwt_part(id_token, 1);
        let aud_ok = match &claims["aud"] {
            Value::String(a) => *a == sp.client_id,
            Value::Array(v) => v.iter().any(|a| *a == sp.client_id.as_str()),
            _ => false,
        };
        assert!(aud_ok, "{claims}");
        assert_eq!(claims["iss"], base2.as_str(), "{claims}");
        assert_eq!(claims["acr"], "2", "{claims}");
        assert!(
            !claims["sub"].as_str().unwrap().contains(&msisdn(i)),
            "{claims}"
        );
    }

    let per_sec = |d: Duration| N as f64 / d.as_secs_f64();
    println!(
        "SUMMARY n={N} in_flight={IN_FLIGHT}: provision {:.1} s ({:.0}/s); start {N} CIBA \
         requests {:.1} s ({:.0}/s); RSS before {:.1} MiB, after provisioning {:.1} MiB, with \
         {N} pending {:.1} MiB (+{:.1} MiB, second half +{:.1} MiB, peak {:.1} MiB); restart \
         {:.1} s, RSS after restart {:.1} MiB; total {:.1} s",
        provision_time.as_secs_f64(),
        per_sec(provision_time),
        start_time.as_secs_f64(),
        per_sec(start_time),
        mib(rss_start),
        mib(rss_provisioned),
        mib(rss_pending),
        mib(growth),
        mib(second_half),
        mib(hwm_pending),
        restart_time.as_secs_f64(),
        mib(rss_restarted),
        t_all.elapsed().as_secs_f64(),
    );
    assert!(
        growth < MAX_PENDING_GROWTH_KIB,
        "{N} pending requests grew the process by {:.1} MiB (bound {:.0} MiB)",
        mib(growth),
        mib(MAX_PENDING_GROWTH_KIB)
    );
    assert!(
        second_half < MAX_SECOND_HALF_GROWTH_KIB,
        "the second {} pending requests grew the process by {:.1} MiB (bound {:.0} MiB)",
        N / 2,
        mib(second_half),
        mib(MAX_SECOND_HALF_GROWTH_KIB)
    );
}
