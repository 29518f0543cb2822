//! Shared harness of the multi-node and crash tests: `mobileconnect serve` started as a child
//! process (its own loopback port, a configuration file written here, the sandbox's virtual
//! phones on), a PostgreSQL schema per test, and the HTTP steps of a login (service provider
//! and phone side).
//!
//! Every child is killed (SIGKILL) and reaped when its guard drops, also when an assertion
//! fails. Waiting is always on an observable condition with a deadline ([`eventually`]).
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub const BIN: &str = env!("CARGO_BIN_EXE_mobileconnect");
/// The variable naming the PostgreSQL server of the tests.
pub const PG_URL_VAR: &str = "MC_TEST_POSTGRES_URL";
/// The admin API token of every node (its SHA-256 is in the configuration).
pub const ADMIN_TOKEN: &str = "test-admin-token-multinode-crash";
/// The issuer of every node: the name a load balancer would answer to, so the nodes are
/// interchangeable (`iss`, metadata and tokens do not depend on the node).
pub const ISSUER: &str = "https://id.operator.example";
/// How long a child may take to answer `/healthz` (a debug build generates RSA keys on the
/// first start, on a shared machine).
pub const READY_WITHIN: Duration = Duration::from_secs(120);
/// The generous bound of every wait on an observable condition.
pub const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Folders, ports, databases
// ---------------------------------------------------------------------------------------

/// A fresh temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mc-{tag}-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A loopback port that was free a moment ago; [`start_serve`] retries on a bind failure.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The PostgreSQL server of the tests, or `None` (the test is skipped with a message) when
/// `MC_TEST_POSTGRES_URL` is not set. Under `CI=true` a missing server fails the test.
pub fn pg_server(test: &str) -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{test}: {PG_URL_VAR} is not set and CI=true: the PostgreSQL tests must run in CI"
            );
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: {PG_URL_VAR} not set (a PostgreSQL server URL)"
            );
            None
        }
    }
}

/// A schema of its own in the test server's database (tests run in parallel), dropped by
/// [`PgSchema::drop_schema`].
pub struct PgSchema {
    base: String,
    schema: String,
}

impl PgSchema {
    pub async fn create(base: String, tag: &str) -> PgSchema {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let schema = format!(
            "mc_{tag}_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            nanos() % 1_000_000_000
        );
        let mut conn = PgConnection::connect(&base).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        PgSchema { base, schema }
    }

    /// The gateway's database URL: this schema first on the search path.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={}", self.base, self.schema)
    }

    pub async fn drop_schema(&self) {
        let mut conn = PgConnection::connect(&self.base).await.unwrap();
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------

/// How a node is configured.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// `sqlite:PATH` or `postgres://…`.
    pub database_url: String,
    /// The key-encryption key file (shared by the nodes of one store).
    pub kek_file: PathBuf,
    /// JSON log lines at `info` on stdout (kept in a file) instead of `warn` text.
    pub json_logs: bool,
    /// More TOML tables, e.g. `[gateway.backchannel]\npoll_interval_secs = 1\n`.
    pub extra_toml: String,
}

/// A running `mobileconnect serve`; killed (SIGKILL) and reaped on drop.
pub struct Node {
    pub name: String,
    child: Child,
    pub port: u16,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// `kill -9`: SIGKILL (what `Child::kill` sends on Unix), then reaped. No graceful
    /// shutdown of any kind runs.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "{}: killed, yet {status}", self.name);
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The JSON log lines written so far (stdout).
    pub fn json_log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Everything the node logged (stdout and stderr).
    pub fn all_logs(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default() + &self.stderr_text()
    }
}

/// `mobileconnect serve --config <dir>/<name>.toml`, on `preferred` (if given and free) or a
/// free loopback port; waits for `/healthz` (bounded).
pub async fn start_serve(dir: &Path, name: &str, spec: &NodeSpec, preferred: Option<u16>) -> Node {
    let http = client();
    for attempt in 0..5 {
        let port = match (attempt, preferred) {
            (0, Some(p)) => p,
            _ => free_port(),
        };
        let config = dir.join(format!("{name}.toml"));
        let log = if spec.json_logs {
            // The gateway's telemetry at debug: the start of every request is logged (with
            // its id).
            "format = \"json\"\nfilter = \"info,mc_gateway::telemetry=debug\""
        } else {
            "filter = \"warn\""
        };
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:{port}"

[database]
url = "{url}"

[keys]
kek_file = "{kek}"

[log]
{log}

[sandbox]
virtual_phones = true

[gateway]
issuer = "{ISSUER}"

[gateway.admin]
token_sha256 = "{token_sha256}"

{extra}
"#,
                url = spec.database_url,
                kek = spec.kek_file.display(),
                token_sha256 = mc_gateway::state::sha256_hex(ADMIN_TOKEN),
                extra = spec.extra_toml,
            ),
        )
        .unwrap();
        let tag = format!("{name}-{}-{attempt}", nanos());
        let stdout = dir.join(format!("{tag}.out"));
        let stderr = dir.join(format!("{tag}.err"));
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MC_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env_remove("RUST_LOG")
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let mut node = Node {
            name: name.to_owned(),
            child: cmd.spawn().unwrap(),
            port,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = node.child.try_wait().unwrap() {
                let e = node.all_logs();
                if e.contains("listen") && e.to_lowercase().contains("in use") {
                    break; // the port was taken meanwhile: another one
                }
                panic!("node {name} exited with {status} before it was ready: {e}");
            }
            let healthy = http
                .get(format!("{}/healthz", node.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if healthy {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "node {name} not ready within {READY_WITHIN:?}: {}",
                node.all_logs()
            );
            // Polling interval of the readiness loop (not a synchronisation).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("could not bind a free loopback port in 5 attempts");
}

// ---------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------

/// Re-evaluates `check` (every 25 ms) until it yields a value or `within` passes; panics
/// with `what` then.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        // Polling interval of the condition (not a synchronisation).
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// No redirects followed, no cookies, no proxy, bounded.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    Url::parse_with_params("http://x/", pairs)
        .unwrap()
        .query()
        .unwrap()
        .to_owned()
}

/// The JSON of one JWT segment.
pub fn jwt_part(jwt: &str, i: usize) -> Value {
    let seg = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// GET with the admin token; 200 expected.
pub async fn admin_get(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    r.json().await.unwrap()
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    r.json().await.unwrap()
}

/// The `kid`s of the signing keys of a JWKS.
pub fn sig_kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "sig")
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

/// One value of a Prometheus text exposition (a metric without labels, or the first series).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let metric_name = series.split('{').next()?;
        (metric_name == name).then(|| value.parse().ok()).flatten()
    })
}

// ---------------------------------------------------------------------------------------
// Registry and provisioning
// ---------------------------------------------------------------------------------------

/// A registered service provider.
#[derive(Clone, Debug)]
pub struct Sp {
    pub client_id: String,
    pub secret: String,
    pub redirect_uri: String,
}

pub const REDIRECT_URI: &str = "https://shop.example/cb";

/// Registers an SP through the admin API of `base`: the code flow and, with `metadata`
/// (e.g. `backchannel_token_delivery_mode`, `jwks_uri`), CIBA.
pub async fn register_sp(http: &reqwest::Client, base: &str, short: &str, metadata: Value) -> Sp {
    let r = http
        .post(format!("{base}/admin/v1/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": format!("{short} (test)"),
            "short_name": short,
            "redirect_uris": [REDIRECT_URI],
            "scopes": ["openid", "mc_authn"],
            "metadata": metadata,
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v}");
    Sp {
        client_id: v["client_id"].as_str().unwrap().to_owned(),
        secret: v["client_secret"].as_str().unwrap().to_owned(),
        redirect_uri: REDIRECT_URI.to_owned(),
    }
}

/// Provisions an app-push subscriber through the admin API of `base`.
pub async fn provision(http: &reqwest::Client, base: &str, msisdn: &str) {
    let r = http
        .post(format!("{base}/admin/v1/subscribers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"msisdn": format!("+{msisdn}"), "capabilities": ["app_push"]}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------
// Logins
// ---------------------------------------------------------------------------------------

/// Why one call failed: the HTTP status (or `transport`) and the body (or error).
pub type Failure = (String, String);

pub fn transport(e: reqwest::Error) -> Failure {
    ("transport".to_owned(), e.to_string())
}

/// A `GET` with an optional `x-request-id`.
fn get(http: &reqwest::Client, url: &str, rid: Option<&str>) -> reqwest::RequestBuilder {
    let r = http.get(url);
    match rid {
        Some(id) => r.header("x-request-id", id),
        None => r,
    }
}

/// `/authorize` (code flow, MSISDN hint, LoA2) on `base`: the session id of the waiting URL
/// it redirects to.
pub async fn authorize(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    msisdn: &str,
    state: &str,
    rid: Option<&str>,
) -> Result<String, Failure> {
    let hint = format!("MSISDN:{msisdn}");
    let url = Url::parse_with_params(
        &format!("{base}/authorize"),
        [
            ("client_id", sp.client_id.as_str()),
            ("redirect_uri", &sp.redirect_uri),
            ("response_type", "code"),
            ("scope", "openid mc_authn"),
            ("acr_values", "2"),
            ("version", "mc_di_r2_v2.3"),
            ("state", state),
            ("nonce", &format!("n-{state}")),
            ("login_hint", &hint),
            ("binding_message", "MN-1"),
        ],
    )
    .unwrap();
    // As a browser (`Accept: text/html`): the waiting URL at once, where a headless client
    // would be held at /authorize until the phone answers.
    let r = get(http, url.as_str(), rid)
        .header("accept", "text/html")
        .send()
        .await
        .map_err(transport)?;
    let status = r.status();
    let loc = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match loc.strip_prefix("/authorize/wait/") {
        Some(id) if status.is_redirection() && !id.is_empty() => Ok(id.to_owned()),
        _ => Err((status.to_string(), format!("Location {loc:?}"))),
    }
}

/// The phone of `msisdn`, on `base`: its open challenge ids (`wait` seconds of long poll).
pub async fn phone_challenges(
    http: &reqwest::Client,
    base: &str,
    msisdn: &str,
    wait: u32,
) -> Result<Vec<Value>, Failure> {
    let r = http
        .get(format!("{base}/phone/{msisdn}/challenges?wait={wait}"))
        .send()
        .await
        .map_err(transport)?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        return Err((status.to_string(), text));
    }
    let v: Value = serde_json::from_str(&text).map_err(|_| (status.to_string(), text.clone()))?;
    Ok(v["challenges"].as_array().cloned().unwrap_or_default())
}

/// The phone of `msisdn` answers challenge `id` on `base`: the device API's `result`
/// (`approved`, `denied`, `not_pending`, …).
pub async fn phone_answer(
    http: &reqwest::Client,
    base: &str,
    msisdn: &str,
    id: &str,
    approve: bool,
    rid: Option<&str>,
) -> Result<String, Failure> {
    let decision = if approve { "approve" } else { "deny" };
    let mut r = http
        .post(format!("{base}/phone/{msisdn}/challenges/{id}"))
        .json(&json!({ "decision": decision }));
    if let Some(rid) = rid {
        r = r.header("x-request-id", rid);
    }
    let r = r.send().await.map_err(transport)?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).map_err(|_| (status.to_string(), text.clone()))?;
    match v["result"].as_str() {
        Some(result) if status == StatusCode::OK || status == StatusCode::CONFLICT => {
            Ok(result.to_owned())
        }
        _ => Err((status.to_string(), text)),
    }
}

/// The waiting URL of session `id` on `base`, as a headless client: held while the phone
/// has not answered and redirected to itself, until it redirects elsewhere. The final
/// `Location`, or the status of a non-redirect answer (an error page: `Err`).
pub async fn wait_for_redirect(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    rid: Option<&str>,
) -> Result<String, Failure> {
    let url = format!("{base}/authorize/wait/{id}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let r = get(http, &url, rid).send().await.map_err(transport)?;
        let status = r.status();
        let loc = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        match loc {
            Some(l) if status.is_redirection() && l == format!("/authorize/wait/{id}") => {
                if Instant::now() > deadline {
                    return Err(("still pending".into(), l));
                }
            }
            Some(l) if status.is_redirection() => return Ok(l),
            _ => return Err((status.to_string(), r.text().await.unwrap_or_default())),
        }
    }
}

/// `/token` with the code (`client_secret_basic`).
pub async fn redeem(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    code: &str,
    rid: Option<&str>,
) -> Result<(StatusCode, Value), Failure> {
    let mut r = http
        .post(format!("{base}/token"))
        .basic_auth(&sp.client_id, Some(&sp.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &sp.redirect_uri),
        ]));
    if let Some(rid) = rid {
        r = r.header("x-request-id", rid);
    }
    let r = r.send().await.map_err(transport)?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// `/bc-authorize` (CIBA) for `msisdn`, with `extra` parameters: the JSON answer on 200.
pub async fn bc_authorize(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    msisdn: &str,
    extra: &[(&str, &str)],
) -> Result<Value, Failure> {
    let hint = format!("MSISDN:{msisdn}");
    let mut params = vec![
        ("scope", "openid mc_authn"),
        ("login_hint", hint.as_str()),
        ("binding_message", "MN-2"),
    ];
    params.extend_from_slice(extra);
    let r = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth(&sp.client_id, Some(&sp.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&params))
        .send()
        .await
        .map_err(transport)?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        return Err((status.to_string(), text));
    }
    let v: Value = serde_json::from_str(&text).map_err(|_| (status.to_string(), text.clone()))?;
    if v["auth_req_id"].as_str().is_none_or(str::is_empty) {
        return Err((status.to_string(), text));
    }
    Ok(v)
}

/// One poll of the CIBA grant at `/token`.
pub async fn poll(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    auth_req_id: &str,
) -> Result<(StatusCode, Value), Failure> {
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
        .map_err(transport)?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// `/userinfo` with a bearer token.
pub async fn userinfo(
    http: &reqwest::Client,
    base: &str,
    access_token: &str,
    rid: Option<&str>,
) -> (StatusCode, Value) {
    let r = get(http, &format!("{base}/userinfo"), rid)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Checks a token response: an access token and an id_token for `sp`, issued by [`ISSUER`],
/// signed with a key of `kids`. Returns `(access_token, sub)`.
pub fn check_tokens(tokens: &Value, sp: &Sp, kids: &[String]) -> (String, String) {
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token: {tokens}"))
        .to_owned();
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {tokens}"));
    let header = jwt_part(id_token, 0);
    assert!(
        kids.iter().any(|k| header["kid"] == k.as_str()),
        "id_token kid {} not among {kids:?}",
        header["kid"]
    );
    let claims = jwt_part(id_token, 1);
    assert_eq!(claims["iss"], ISSUER, "{claims}");
    let aud_ok = match &claims["aud"] {
        Value::String(a) => *a == sp.client_id,
        Value::Array(v) => v.iter().any(|a| *a == sp.client_id.as_str()),
        _ => false,
    };
    assert!(aud_ok, "{claims}");
    let sub = claims["sub"].as_str().unwrap().to_owned();
    (access, sub)
}

// ---------------------------------------------------------------------------------------
// Bounded concurrency
// ---------------------------------------------------------------------------------------

/// Runs `f(i)` for every `i` in `range`, at most `in_flight` at a time; the results in index
/// order.
pub async fn bounded<T, F, Fut>(range: std::ops::Range<usize>, in_flight: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send,
{
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
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
