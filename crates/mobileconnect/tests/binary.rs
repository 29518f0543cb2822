//! The real `mobileconnect` binary, started as a child process on a free loopback port with a
//! temporary data folder, and driven over HTTP only: no crate of the workspace is linked here.
//!
//! * (a) `sandbox` starts, writes `sandbox.json`, answers metadata and JWKS at its issuer;
//! * (b) a whole login: `/authorize` → the phone answers through its JSON device API →
//!   redirect URI with a code → `/token` (Basic auth) → `/userinfo`;
//! * (c) a restart on the same data folder keeps the signing key (`kid`), the demo secret,
//!   the admin token and issued access tokens;
//! * (d) `serve --config FILE`: bad files stop the start with one line naming the field; a
//!   good file serves its issuer, and `MC_GATEWAY__ISSUER` overrides it;
//! * (e) `admin --data DIR …` prints JSON, and what it provisions is used by a sandbox on
//!   that folder (and what it changes is seen by a running one).
//!
//! Every child is killed when its guard drops, also when an assertion fails.

// The helpers below are test code too: a failed step panics with its context.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mobileconnect");
/// LoA2 only, no PIN.
const MSISDN_301: &str = "447700900301";
/// LoA2 and LoA3, PIN 1234.
const MSISDN_302: &str = "447700900302";
/// How long a child may take to answer `/healthz` (a debug build generates RSA keys on the
/// first start, on a shared machine).
const READY_WITHIN: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// A fresh temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "mc-bin-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
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

/// A loopback port that was free a moment ago (bound to port 0, then released). Another
/// process may take it before the child binds it: [`start`] retries on a bind failure.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary with a clean environment: no inherited `MC_*` override, quiet logs.
fn bin(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MC_") {
            c.env_remove(&k);
        }
    }
    c.env("RUST_LOG", "warn")
        .current_dir(cwd)
        .stdin(Stdio::null());
    c
}

/// A running child process; killed (and reaped) on drop.
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
    /// What the child wrote to stderr so far (for failure messages).
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Starts the command built by `make(port)` and waits for `/healthz` with a bounded poll.
/// The first attempt uses `preferred` when given, later ones a fresh free port: a child
/// that exits because its port was taken meanwhile is retried (up to 5 times). Output goes
/// to files under `logs`.
async fn start(logs: &Path, preferred: Option<u16>, make: impl Fn(u16) -> Command) -> Server {
    let http = client();
    for attempt in 0..5 {
        let port = match (attempt, preferred) {
            (0, Some(p)) => p,
            _ => free_port(),
        };
        let out = logs.join(format!("child-{port}-{attempt}.out"));
        let err = logs.join(format!("child-{port}-{attempt}.err"));
        let mut cmd = make(port);
        cmd.stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let child = cmd.spawn().unwrap();
        let mut server = Server {
            child,
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

/// `mobileconnect sandbox` on `data`.
async fn sandbox(data: &Path, logs: &Path, preferred: Option<u16>) -> Server {
    let data = data.to_owned();
    let cwd = logs.to_owned();
    start(logs, preferred, move |port| {
        let mut c = bin(&cwd);
        c.arg("sandbox")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(&data);
        c
    })
    .await
}

/// Runs the binary to completion.
fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin(cwd);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Runs an `admin` command that must succeed and print JSON.
fn admin(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["admin", "--data", data.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(data, &all, &[]);
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "admin {args:?} did not print JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
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

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    r.json().await.unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The signing key ids of a JWKS.
fn sig_kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "sig")
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Demo SP credentials from `sandbox.json`.
#[derive(Clone, Debug)]
struct Sp {
    client_id: String,
    secret: String,
    redirect_uri: String,
}

fn demo_sp(info: &Value) -> Sp {
    let sp = &info["service_providers"][0];
    Sp {
        client_id: sp["client_id"].as_str().unwrap().to_owned(),
        secret: sp["client_secret"].as_str().unwrap().to_owned(),
        redirect_uri: sp["redirect_uris"][0].as_str().unwrap().to_owned(),
    }
}

// ----- the phone, through its JSON device API -------------------------------------------

/// Long-polls `/phone/{msisdn}/challenges?wait=10` until a challenge is open (at most 3
/// polls).
async fn next_challenge(http: &reqwest::Client, base: &str, msisdn: &str) -> Value {
    for _ in 0..3 {
        let v = get_json(http, &format!("{base}/phone/{msisdn}/challenges?wait=10")).await;
        if let Some(c) = v["challenges"].as_array().and_then(|a| a.first()) {
            return c.clone();
        }
    }
    panic!("no challenge reached phone {msisdn} within 30 s");
}

async fn answer(http: &reqwest::Client, base: &str, msisdn: &str, id: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}/phone/{msisdn}/challenges/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

// ----- the service provider side ----------------------------------------------------------

/// One authorization request.
struct Authz<'a> {
    sp: &'a Sp,
    /// The registered short name (required by `mc_authz`).
    client_name: &'a str,
    msisdn: &'a str,
    scope: &'a str,
    acr: &'a str,
    state: &'a str,
    nonce: &'a str,
}

fn authorize_url(base: &str, a: &Authz<'_>) -> Url {
    let hint = format!("MSISDN:{}", a.msisdn);
    Url::parse_with_params(
        &format!("{base}/authorize"),
        [
            ("client_id", a.sp.client_id.as_str()),
            ("redirect_uri", &a.sp.redirect_uri),
            ("response_type", "code"),
            ("scope", a.scope),
            ("acr_values", a.acr),
            ("version", "mc_di_r2_v2.3"),
            ("state", a.state),
            ("nonce", a.nonce),
            ("login_hint", &hint),
            ("client_name", a.client_name),
            ("context", "Log in to the test shop"),
            ("binding_message", "TST-42"),
        ],
    )
    .unwrap()
}

/// Resolves a `Location` against the server.
fn location(base: &str, r: &reqwest::Response) -> String {
    let loc = r
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {} from {}", r.status(), r.url()))
        .to_str()
        .unwrap();
    if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        loc.to_owned()
    }
}

/// Follows the gateway's redirects (as a headless client: the waiting URL is held and
/// redirected to itself) until one leads to `redirect_uri`; returns that URL.
async fn follow_to_redirect_uri(
    http: &reqwest::Client,
    base: &str,
    start: &str,
    redirect_uri: &str,
) -> String {
    let mut url = start.to_owned();
    for _ in 0..40 {
        let r = http.get(&url).send().await.unwrap();
        assert!(
            r.status().is_redirection(),
            "expected a redirect from {url}, got {}",
            r.status()
        );
        let next = location(base, &r);
        if next.starts_with(redirect_uri) {
            return next;
        }
        assert!(
            next.starts_with(&format!("{base}/authorize/")),
            "unexpected redirect to {next}"
        );
        url = next;
    }
    panic!("no redirect to {redirect_uri} after 40 hops");
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The JSON of one JWT segment.
fn jwt_part(jwt: &str, i: usize) -> Value {
    let seg = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}

/// `/token` with `client_secret_basic`.
async fn exchange(http: &reqwest::Client, base: &str, sp: &Sp, code: &str) -> (StatusCode, Value) {
    let body = Url::parse_with_params(
        "http://x/",
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &sp.redirect_uri),
        ],
    )
    .unwrap()
    .query()
    .unwrap()
    .to_owned();
    let basic = STANDARD.encode(format!("{}:{}", sp.client_id, sp.secret));
    let r = http
        .post(format!("{base}/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn userinfo(http: &reqwest::Client, base: &str, access_token: &str) -> (StatusCode, Value) {
    let r = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What a finished login yields.
struct Tokens {
    code: String,
    access_token: String,
    id_token: String,
    claims: Value,
    userinfo: Value,
}

/// A whole login over HTTP. The phone approves (with `pin` for LoA3) while the SP side
/// follows the redirects; then code → tokens → userinfo, with the checks every login must
/// pass.
async fn login(base: &str, a: &Authz<'_>, pin: Option<&str>) -> Tokens {
    let http = client();
    let phone = {
        let (http, base, msisdn) = (http.clone(), base.to_owned(), a.msisdn.to_owned());
        let pin = pin.map(str::to_owned);
        tokio::spawn(async move {
            let c = next_challenge(&http, &base, &msisdn).await;
            let id = c["id"].as_str().unwrap().to_owned();
            let body = match &pin {
                Some(p) => json!({"decision": "approve", "pin": p}),
                None => json!({"decision": "approve"}),
            };
            let outcome = answer(&http, &base, &msisdn, &id, body).await;
            (c, outcome)
        })
    };
    let url = authorize_url(base, a);
    let back = follow_to_redirect_uri(&http, base, url.as_str(), &a.sp.redirect_uri).await;
    if query(&back).contains_key("error") {
        phone.abort();
        panic!("the login was refused: {back}");
    }
    let (challenge, outcome) = phone.await.unwrap();
    assert_eq!(outcome["result"], "approved", "{outcome}");
    assert_eq!(challenge["client_name"], a.client_name, "{challenge}");
    assert_eq!(
        challenge["context"], "Log in to the test shop",
        "{challenge}"
    );
    assert_eq!(challenge["binding_message"], "TST-42", "{challenge}");
    assert!(challenge["expires_at"].is_i64(), "{challenge}");

    let q = query(&back);
    assert_eq!(q.get("state").map(String::as_str), Some(a.state), "{back}");
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {back}"));

    let (status, tokens) = exchange(&http, base, a.sp, code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        tokens["token_type"].as_str().map(str::to_ascii_lowercase),
        Some("bearer".into()),
        "{tokens}"
    );
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let header = jwt_part(&id_token, 0);
    assert_eq!(header["alg"], "RS256", "{header}");
    let jwks = get_json(&http, &format!("{base}/jwks")).await;
    assert!(
        sig_kids(&jwks).iter().any(|k| header["kid"] == k.as_str()),
        "id_token kid {} not in the JWKS {jwks}",
        header["kid"]
    );
    let claims = jwt_part(&id_token, 1);
    assert_eq!(claims["iss"], base, "{claims}");
    let aud_ok = match &claims["aud"] {
        Value::String(s) => *s == a.sp.client_id,
        Value::Array(v) => v.iter().any(|x| *x == a.sp.client_id.as_str()),
        _ => false,
    };
    assert!(aud_ok, "{claims}");
    assert_eq!(claims["nonce"], a.nonce, "{claims}");
    let sub = claims["sub"].as_str().unwrap();
    assert!(
        !sub.is_empty() && !sub.contains(a.msisdn),
        "sub must be a PCR, not the number: {claims}"
    );
    assert!(claims["hashed_login_hint"].is_string(), "{claims}");

    let (status, info) = userinfo(&http, base, &access_token).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["sub"], claims["sub"], "{info}");
    Tokens {
        code: code.clone(),
        access_token,
        id_token,
        claims,
        userinfo: info,
    }
}

fn demo_login<'a>(sp: &'a Sp, state: &'a str) -> Authz<'a> {
    Authz {
        sp,
        client_name: "OnlineShopper",
        msisdn: MSISDN_301,
        scope: "openid mc_authn",
        acr: "2",
        state,
        nonce: "n-0S6_WzA2Mj",
    }
}

// ---------------------------------------------------------------------------------------
// (a) the sandbox starts and describes itself
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_starts_writes_sandbox_json_and_serves_metadata() {
    let tmp = TempDir::new("start");
    let data = tmp.join("data");
    let s = sandbox(&data, tmp.path(), None).await;
    let base = s.base.clone();

    let info_path = data.join("sandbox.json");
    let info = read_json(&info_path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&info_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "sandbox.json holds secrets");
    }
    let op = &info["operators"][0];
    assert_eq!(op["issuer"], base.as_str(), "{info}");
    assert_eq!(
        op["metadata_url"],
        format!("{base}/.well-known/openid-configuration")
    );
    let sp = &info["service_providers"][0];
    assert_eq!(sp["client_id"], "onlineshopper");
    assert_eq!(sp["short_name"], "OnlineShopper");
    assert!(sp["client_secret"].as_str().unwrap().len() >= 32, "{sp}");
    let uris: Vec<&str> = sp["redirect_uris"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(
        uris.contains(&format!("{base}/demo-sp/callback").as_str()),
        "{uris:?}"
    );
    let subs = info["subscribers"].as_array().unwrap();
    let find = |m: &str| {
        subs.iter()
            .find(|s| s["msisdn"] == m)
            .unwrap_or_else(|| panic!("{m} missing from {info}"))
    };
    let s301 = find("+447700900301");
    assert_eq!(s301["pin"], Value::Null);
    assert_eq!(s301["phone_url"], format!("{base}/phone/447700900301"));
    let s302 = find("+447700900302");
    assert_eq!(s302["pin"], "1234");
    assert_eq!(s302["phone_url"], format!("{base}/phone/447700900302"));
    assert!(
        subs.iter()
            .all(|s| s["msisdn"].as_str().is_some_and(|m| m.starts_with('+')))
    );
    assert!(info["admin_token"].as_str().is_some_and(|t| t.len() >= 32));

    // Metadata at the issuer, endpoints under it, JWKS with a signing key.
    let http = client();
    let meta = get_json(&http, op["metadata_url"].as_str().unwrap()).await;
    assert_eq!(meta["issuer"], base.as_str());
    assert_eq!(meta["authorization_endpoint"], format!("{base}/authorize"));
    assert_eq!(meta["token_endpoint"], format!("{base}/token"));
    assert_eq!(meta["userinfo_endpoint"], format!("{base}/userinfo"));
    assert_eq!(meta["jwks_uri"], format!("{base}/jwks"));
    let jwks = get_json(&http, meta["jwks_uri"].as_str().unwrap()).await;
    let sig: Vec<&Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "sig")
        .collect();
    assert_eq!(sig.len(), 1, "{jwks}");
    assert_eq!(sig[0]["alg"], "RS256");
    assert_eq!(sig[0]["kty"], "RSA");
    assert!(sig[0]["kid"].as_str().is_some_and(|k| !k.is_empty()));

    // The virtual phone page and an idle device API.
    let page = http
        .get(s301["phone_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("+447700900301"));
    let idle = get_json(&http, &format!("{base}/phone/447700900301/challenges")).await;
    assert_eq!(idle, json!({"challenges": []}));
}

// ---------------------------------------------------------------------------------------
// (b) a whole login over HTTP
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn full_login_through_http_only() {
    let tmp = TempDir::new("login");
    let data = tmp.join("data");
    let s = sandbox(&data, tmp.path(), None).await;
    let sp = demo_sp(&read_json(&data.join("sandbox.json")));
    let t = login(&s.base, &demo_login(&sp, "st-b1"), None).await;
    assert_eq!(t.claims["acr"], "2", "{}", t.claims);
    assert_eq!(t.claims["amr"], json!(["PUSH_OK"]), "{}", t.claims);
    assert!(t.claims["at_hash"].is_string(), "{}", t.claims);
    // mc_authn releases no phone number.
    assert!(t.userinfo.get("phone_number").is_none(), "{}", t.userinfo);
    assert!(!t.id_token.contains(MSISDN_301));
    // A code is good once; its replay also revokes what it yielded (RFC 6749 §4.1.2).
    let http = client();
    let replayed = t.code.clone();
    let (again, err) = exchange(&http, &s.base, &sp, &replayed).await;
    assert_eq!(again, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "invalid_grant", "{err}");
    let (status, _) = userinfo(&http, &s.base, &t.access_token).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "replay must revoke the access token"
    );

    // The redirect URI itself (the demo SP's callback, served by the sandbox) shows the code.
    let sp2 = Authz {
        state: "st-b2",
        ..demo_login(&sp, "")
    };
    let phone = {
        let (http, base) = (http.clone(), s.base.clone());
        tokio::spawn(async move {
            let c = next_challenge(&http, &base, MSISDN_301).await;
            answer(
                &http,
                &base,
                MSISDN_301,
                c["id"].as_str().unwrap(),
                json!({"decision": "approve"}),
            )
            .await
        })
    };
    let back = follow_to_redirect_uri(
        &http,
        &s.base,
        authorize_url(&s.base, &sp2).as_str(),
        &sp.redirect_uri,
    )
    .await;
    assert_eq!(phone.await.unwrap()["result"], "approved");
    let page = http.get(&back).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(&query(&back)["code"]), "{html}");

    // LoA3 with the PIN, and a phone-number scope.
    let a3 = Authz {
        msisdn: MSISDN_302,
        scope: "openid mc_authz mc_identity_phonenumber",
        acr: "3",
        ..demo_login(&sp, "st-b3")
    };
    let t3 = login(&s.base, &a3, Some("1234")).await;
    assert_eq!(t3.claims["acr"], "3", "{}", t3.claims);
    assert_eq!(t3.claims["amr"], json!(["PUSH_PIN"]), "{}", t3.claims);
    assert_eq!(
        t3.userinfo["phone_number"], "+447700900302",
        "{}",
        t3.userinfo
    );
    assert_ne!(t3.claims["sub"], t.claims["sub"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_and_wrong_pin_on_the_phone_reach_the_sp_as_errors() {
    let tmp = TempDir::new("deny");
    let data = tmp.join("data");
    let s = sandbox(&data, tmp.path(), None).await;
    let sp = demo_sp(&read_json(&data.join("sandbox.json")));
    let http = client();

    // Cancel on the phone → access_denied at the redirect URI, state echoed.
    let a = demo_login(&sp, "st-deny");
    let phone = {
        let (http, base) = (http.clone(), s.base.clone());
        tokio::spawn(async move {
            let c = next_challenge(&http, &base, MSISDN_301).await;
            answer(
                &http,
                &base,
                MSISDN_301,
                c["id"].as_str().unwrap(),
                json!({"decision": "deny"}),
            )
            .await
        })
    };
    let back = follow_to_redirect_uri(
        &http,
        &s.base,
        authorize_url(&s.base, &a).as_str(),
        &sp.redirect_uri,
    )
    .await;
    assert_eq!(phone.await.unwrap()["result"], "denied");
    let q = query(&back);
    assert_eq!(q["error"], "access_denied", "{back}");
    assert_eq!(q["state"], "st-deny", "{back}");
    assert!(!q.contains_key("code"));

    // LoA3: a wrong PIN keeps the challenge open; the right one then approves.
    let a3 = Authz {
        msisdn: MSISDN_302,
        acr: "3",
        scope: "openid mc_authz",
        ..demo_login(&sp, "st-pin")
    };
    let phone = {
        let (http, base) = (http.clone(), s.base.clone());
        tokio::spawn(async move {
            let c = next_challenge(&http, &base, MSISDN_302).await;
            assert_eq!(c["loa"], "3", "{c}");
            let id = c["id"].as_str().unwrap();
            let wrong = answer(
                &http,
                &base,
                MSISDN_302,
                id,
                json!({"decision": "approve", "pin": "0000"}),
            )
            .await;
            let right = answer(
                &http,
                &base,
                MSISDN_302,
                id,
                json!({"decision": "approve", "pin": "1234"}),
            )
            .await;
            let late = answer(
                &http,
                &base,
                MSISDN_302,
                id,
                json!({"decision": "approve", "pin": "1234"}),
            )
            .await;
            (wrong, right, late)
        })
    };
    let back = follow_to_redirect_uri(
        &http,
        &s.base,
        authorize_url(&s.base, &a3).as_str(),
        &sp.redirect_uri,
    )
    .await;
    let (wrong, right, late) = phone.await.unwrap();
    assert_eq!(wrong["result"], "wrong_pin", "{wrong}");
    assert_eq!(right["result"], "approved", "{right}");
    assert_eq!(late["result"], "not_pending", "{late}");
    assert!(query(&back).contains_key("code"), "{back}");
}

// ---------------------------------------------------------------------------------------
// (c) restart on the same data folder
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_kid_secret_admin_token_and_access_tokens() {
    let tmp = TempDir::new("restart");
    let data = tmp.join("data");
    let http = client();

    let first = sandbox(&data, tmp.path(), None).await;
    let port = first.port;
    let info1 = read_json(&data.join("sandbox.json"));
    let jwks1 = get_json(&http, &format!("{}/jwks", first.base)).await;
    let kids1 = sig_kids(&jwks1);
    assert_eq!(kids1.len(), 1, "{jwks1}");
    let sp1 = demo_sp(&info1);
    let before = login(&first.base, &demo_login(&sp1, "st-c1"), None).await;
    drop(first); // SIGKILL: no graceful shutdown.

    // Again on the same port if it is still free (the issuer stays the same).
    let second = sandbox(&data, tmp.path(), Some(port)).await;
    let info2 = read_json(&data.join("sandbox.json"));
    let jwks2 = get_json(&http, &format!("{}/jwks", second.base)).await;
    assert_eq!(
        sig_kids(&jwks2),
        kids1,
        "the signing key changed on restart"
    );
    let kids = |j: &Value| -> Vec<String> {
        j["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(kids(&jwks2), kids(&jwks1), "the JWKS changed on restart");
    let sp2 = demo_sp(&info2);
    assert_eq!(sp2.secret, sp1.secret, "the demo client_secret changed");
    assert_eq!(info2["admin_token"], info1["admin_token"]);

    // The old secret still authenticates at /token, and the old access token still works.
    let after = login(&second.base, &demo_login(&sp1, "st-c2"), None).await;
    assert_eq!(jwt_part(&after.id_token, 0)["kid"], kids1[0].as_str());
    assert_eq!(after.claims["sub"], before.claims["sub"], "PCR is stable");
    if second.port == port {
        let (status, info) = userinfo(&http, &second.base, &before.access_token).await;
        assert_eq!(status, StatusCode::OK, "{info}");
        assert_eq!(info["sub"], before.claims["sub"]);
    }
    // The admin API accepts the kept token.
    let token = info2["admin_token"].as_str().unwrap();
    let r = http
        .get(format!("{}/admin/v1/clients", second.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------------

/// Sends SIGTERM (as a service manager does) and waits, bounded, for the exit.
fn terminate(s: &mut Server, within: Duration) -> (std::process::ExitStatus, Duration) {
    let t0 = Instant::now();
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            return (status, t0.elapsed());
        }
        assert!(
            t0.elapsed() < within,
            "still running {within:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50)); // polling interval
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_sandbox_cleanly() {
    let tmp = TempDir::new("term");
    let mut s = sandbox(&tmp.join("data"), tmp.path(), None).await;
    let (status, took) = terminate(&mut s, Duration::from_secs(30));
    assert!(status.success(), "exit status {status} after SIGTERM");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// A virtual phone page left open keeps a long poll (`?wait=20`) in flight all the time;
/// the waiting page holds `/authorize/wait/{id}/status` for 20 s. Shutdown must not wait for
/// such requests to end (regression: it once took 25 s).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_does_not_wait_for_open_long_polls() {
    use std::io::{Read, Write};
    let tmp = TempDir::new("termpoll");
    let mut s = sandbox(&tmp.join("data"), tmp.path(), None).await;
    // One keep-alive connection, known to be served (a first request answered), then the
    // long poll on it.
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tcp.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200"));
    tcp.write_all(b"GET /phone/447700900301/challenges?wait=25 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (status, took) = terminate(&mut s, Duration::from_secs(40));
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} with one long poll open"
    );
}

// ---------------------------------------------------------------------------------------
// (d) serve --config
// ---------------------------------------------------------------------------------------

/// Runs `serve --config` on a file that must be refused; returns its one stderr line.
fn refused(tmp: &TempDir, name: &str, toml: &str, env: &[(&str, &str)]) -> String {
    let path = tmp.join(name);
    std::fs::write(&path, toml).unwrap();
    let out = run(
        tmp.path(),
        &["serve", "--config", path.to_str().unwrap()],
        env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{name}: accepted; stderr: {stderr}; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{name}: stderr must be one line: {stderr:?}"
    );
    assert!(
        lines[0].starts_with("error: config: "),
        "{name}: {stderr:?}"
    );
    lines[0].to_owned()
}

#[test]
fn serve_refuses_bad_configuration_with_one_line_naming_the_field() {
    let tmp = TempDir::new("badcfg");
    let ok_issuer = "[gateway]\nissuer = \"https://id.example\"\n";

    let e = refused(
        &tmp,
        "type.toml",
        &format!("{ok_issuer}[gateway.tokens]\ncode_secs = \"x\"\n"),
        &[],
    );
    assert!(e.contains("gateway.tokens.code_secs"), "{e}");

    let e = refused(&tmp, "missing.toml", "[gateway]\n", &[]);
    assert!(e.contains("issuer"), "{e}");
    assert!(e.contains("gateway"), "{e}");

    let e = refused(&tmp, "nogateway.toml", "listen = \"127.0.0.1:1\"\n", &[]);
    assert!(e.contains("gateway"), "{e}");

    let e = refused(
        &tmp,
        "unknown.toml",
        &format!("{ok_issuer}bogus = 1\n"),
        &[],
    );
    assert!(e.contains("bogus"), "{e}");

    let e = refused(
        &tmp,
        "unknown-top.toml",
        &format!("colour = \"blue\"\n{ok_issuer}"),
        &[],
    );
    assert!(e.contains("colour"), "{e}");

    let e = refused(
        &tmp,
        "range.toml",
        &format!("{ok_issuer}[gateway.tokens]\ncode_secs = 0\n"),
        &[],
    );
    assert!(e.contains("gateway.tokens.code_secs"), "{e}");

    let e = refused(
        &tmp,
        "issuer.toml",
        "[gateway]\nissuer = \"not a url\"\n",
        &[],
    );
    assert!(e.contains("gateway.issuer"), "{e}");

    // Discovery next to the gateway needs a path of its own (both have `/admin/v1`).
    let e = refused(
        &tmp,
        "discovery-root.toml",
        &format!("{ok_issuer}[discovery]\nbase_url = \"https://discovery.example\"\n"),
        &[],
    );
    assert!(e.contains("discovery.base_url"), "{e}");
    let e = refused(
        &tmp,
        "discovery-token.toml",
        &format!(
            "{ok_issuer}[discovery]\nbase_url = \"https://id.example/discovery\"\nadmin_token_sha256 = \"secret\"\n"
        ),
        &[],
    );
    assert!(e.contains("discovery.admin_token_sha256"), "{e}");

    let e = refused(
        &tmp,
        "listen.toml",
        &format!("listen = \"nowhere\"\n{ok_issuer}"),
        &[],
    );
    assert!(e.contains("listen"), "{e}");

    let e = refused(
        &tmp,
        "authn.toml",
        &format!("{ok_issuer}[gateway.authenticators]\nenabled = [\"carrier_pigeon\"]\n"),
        &[],
    );
    assert!(e.contains("gateway.authenticators.enabled"), "{e}");

    // The environment is checked the same way.
    let e = refused(
        &tmp,
        "env.toml",
        ok_issuer,
        &[("MC_GATEWAY__TOKENS__CODE_SECS", "soon")],
    );
    assert!(e.contains("gateway.tokens.code_secs"), "{e}");

    // A file that does not exist.
    let out = run(
        tmp.path(),
        &[
            "serve",
            "--config",
            tmp.join("absent.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("absent.toml"), "{stderr:?}");

    // Nothing was created by the refused starts.
    assert!(!tmp.join("data").exists(), "a refused start created ./data");
}

#[test]
fn sandbox_refuses_a_bad_environment_override_with_one_line() {
    let tmp = TempDir::new("badenv");
    let data = tmp.join("data");
    let out = run(
        tmp.path(),
        &[
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ],
        &[("MC_GATEWAY__TOKENS__CODE_SECS", "x")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr:?}");
    assert!(lines[0].contains("gateway.tokens.code_secs"), "{stderr:?}");
}

/// Environment variables that merely start with `MC_` but are no configuration key (Midnight
/// Commander's subshell exports `MC_SID` and `MC_TMPDIR`; scripts use `MC_*` names of their
/// own) should not stop the start. Today every `MC_*` variable is read as a key and
/// `deny_unknown_fields` refused it (regression: `error: config: sid: unknown field`).
#[tokio::test(flavor = "multi_thread")]
async fn foreign_mc_variables_do_not_stop_the_sandbox() {
    let tmp = TempDir::new("mcsid");
    let data = tmp.join("data");
    let cwd = tmp.path().to_owned();
    let s = start(tmp.path(), None, move |port| {
        let mut c = bin(&cwd);
        c.arg("sandbox")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(&data)
            .env("MC_SID", "4242")
            .env("MC_TMPDIR", "/tmp/mc-user");
        c
    })
    .await;
    let meta = get_json(
        &client(),
        &format!("{}/.well-known/openid-configuration", s.base),
    )
    .await;
    assert_eq!(meta["issuer"], s.base.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_a_good_config_serves_its_issuer_and_env_overrides_it() {
    let tmp = TempDir::new("serve");
    let state = tmp.join("state");
    let config = tmp.join("mc.toml");
    let http = client();
    let make_cfg = |port: u16| {
        let toml = format!(
            r#"listen = "127.0.0.1:{port}"

[database]
url = "sqlite:{db}"

[keys]
kek_file = "{kek}"

[log]
format = "json"
filter = "warn"

[gateway]
issuer = "https://id.operator.example"

[gateway.tokens]
code_secs = 30

[gateway.login]
timeout_secs = 60
headless_hold_secs = 1
"#,
            db = state.join("mc.db").display(),
            kek = state.join("kek.hex").display(),
        );
        std::fs::write(&config, toml).unwrap();
    };
    let serve = |env: Vec<(&'static str, &'static str)>| {
        let (tmp_path, config) = (tmp.path().to_owned(), config.clone());
        move |port: u16| {
            make_cfg(port);
            let mut c = bin(&tmp_path);
            c.arg("serve").arg("--config").arg(&config);
            for (k, v) in &env {
                c.env(k, v);
            }
            c
        }
    };

    let s = start(tmp.path(), None, serve(vec![])).await;
    let meta = get_json(
        &http,
        &format!("{}/.well-known/openid-configuration", s.base),
    )
    .await;
    assert_eq!(meta["issuer"], "https://id.operator.example", "{meta}");
    assert_eq!(
        meta["authorization_endpoint"],
        "https://id.operator.example/authorize"
    );
    assert_eq!(meta["jwks_uri"], "https://id.operator.example/jwks");
    let kids1 = sig_kids(&get_json(&http, &format!("{}/jwks", s.base)).await);
    // The KEK was created owner-only, the database where configured.
    let kek = state.join("kek.hex");
    assert_eq!(std::fs::read_to_string(&kek).unwrap().trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(state.join("mc.db").exists());
    // No sandbox routes and no admin API (no token hash configured) in production.
    for path in ["/phone/447700900301", "/admin/v1/clients"] {
        let r = http.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    drop(s);

    let s = start(
        tmp.path(),
        None,
        serve(vec![("MC_GATEWAY__ISSUER", "https://env.operator.example")]),
    )
    .await;
    let meta = get_json(
        &http,
        &format!("{}/.well-known/openid-configuration", s.base),
    )
    .await;
    assert_eq!(meta["issuer"], "https://env.operator.example", "{meta}");
    assert_eq!(meta["token_endpoint"], "https://env.operator.example/token");
    // Same database and KEK: same signing key.
    assert_eq!(
        sig_kids(&get_json(&http, &format!("{}/jwks", s.base)).await),
        kids1
    );
}

// ---------------------------------------------------------------------------------------
// (e) admin commands
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_print_json_and_a_sandbox_uses_what_they_provision() {
    let tmp = TempDir::new("admin");
    let data = tmp.join("data");
    std::fs::create_dir_all(&data).unwrap();

    let sub = admin(
        &data,
        &["subscribers", "create", "+447700900401", "--pin", "2468"],
    );
    assert_eq!(sub["msisdn"], "447700900401", "{sub}");
    assert_eq!(sub["status"], "active", "{sub}");
    assert_eq!(sub["pin_set"], true, "{sub}");
    assert!(
        !sub.to_string().contains("2468"),
        "the PIN is never printed"
    );

    let list = admin(&data, &["subscribers", "list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|s| s["msisdn"] == "447700900401"),
        "{list}"
    );

    let created = admin(
        &data,
        &[
            "clients",
            "create",
            "--name",
            "Test Shop",
            "--short-name",
            "TestShop",
            "--redirect-uri",
            "http://localhost:4000/cb",
            "--scope",
            "openid",
            "--scope",
            "mc_authn",
            "--scope",
            "mc_authz",
        ],
    );
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["short_name"], "TestShop", "{created}");
    assert_eq!(created["status"], "active", "{created}");
    let clients = admin(&data, &["clients", "list"]);
    let listed = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == client_id.as_str())
        .unwrap_or_else(|| panic!("{clients}"));
    assert!(
        listed.get("client_secret").is_none(),
        "secrets are shown once"
    );

    // A sandbox on that folder: the demo data is added, the provisioned data is used.
    let s = sandbox(&data, tmp.path(), None).await;
    let info = read_json(&data.join("sandbox.json"));
    assert_eq!(info["service_providers"][0]["client_id"], "onlineshopper");
    let http = client();
    let r = http
        .get(format!("{}/admin/v1/subscribers/+447700900401", s.base))
        .bearer_auth(info["admin_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["msisdn"], "447700900401", "{v}");

    let sp = Sp {
        client_id: client_id.clone(),
        secret,
        redirect_uri: "http://localhost:4000/cb".into(),
    };
    let a = Authz {
        sp: &sp,
        client_name: "TestShop",
        msisdn: "447700900401",
        scope: "openid mc_authz",
        acr: "3",
        state: "st-e1",
        nonce: "n-e1",
    };
    let t = login(&s.base, &a, Some("2468")).await;
    assert_eq!(t.claims["acr"], "3", "{}", t.claims);

    // An admin change while the sandbox runs is seen at once: a suspended number cannot log in.
    let suspended = admin(&data, &["subscribers", "suspend", "+447700900401"]);
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    let r = http
        .get(
            authorize_url(
                &s.base,
                &Authz {
                    state: "st-e2",
                    ..a
                },
            )
            .as_str(),
        )
        .send()
        .await
        .unwrap();
    let back = location(&s.base, &r);
    assert!(back.starts_with(&sp.redirect_uri), "{back}");
    let q = query(&back);
    assert_eq!(q["error"], "access_denied", "{back}");
    assert_eq!(q["state"], "st-e2");
}

// ---------------------------------------------------------------------------------------
// the sandbox's SIM applet channel (built-in MSSP, virtual SIM on the phone page)
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_sim_subscriber_logs_in_on_the_virtual_sim() {
    let tmp = TempDir::new("sim");
    let data = tmp.join("data");
    let s = sandbox(&data, tmp.path(), None).await;
    let base = s.base.clone();
    let info = read_json(&data.join("sandbox.json"));
    let sim_sub = info["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["msisdn"] == "+447700900305")
        .unwrap_or_else(|| panic!("no SIM subscriber in {info}"));
    assert!(
        sim_sub["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("sim_applet")),
        "{sim_sub}"
    );
    let sp = demo_sp(&info);
    let http = client();
    // The phone page carries the SIM Toolkit dialog.
    let page = http
        .get(format!("{base}/phone/447700900305"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/mssp/sim/"),
        "no SIM dialog on the phone page"
    );

    let a = Authz {
        msisdn: "447700900305",
        acr: "3",
        ..demo_login(&sp, "sim-1")
    };
    let r = http.get(authorize_url(&base, &a)).send().await.unwrap();
    let wait = location(&base, &r);
    let sim = get_json(&http, &format!("{base}/mssp/sim/%2B447700900305")).await;
    let tx = &sim["pending"][0];
    assert_eq!(tx["pin_required"], true, "{sim}");
    assert!(
        tx["text"].as_str().unwrap().contains("TST-42"),
        "the binding message is on the SIM: {sim}"
    );
    let r = http
        .post(format!("{base}/mssp/sim/%2B447700900305/answer"))
        .json(&json!({"trans_id": tx["trans_id"], "accept": true, "pin": "2468"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let back = follow_to_redirect_uri(&http, &base, &wait, &sp.redirect_uri).await;
    let code = query(&back)["code"].clone();
    let (status, tokens) = exchange(&http, &base, &sp, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["acr"], "3");
    assert_eq!(claims["amr"], json!(["SIM_PIN"]));
    drop(s);
}

/// The sandbox SMS channel end to end: the gateway's SMPP client, the built-in SMSC, the
/// phone's inbox, the one-time link's confirm page.
#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_sends_the_sms_link_through_its_smsc_to_the_phone() {
    let tmp = TempDir::new("sms");
    let data = tmp.join("data");
    let s = sandbox(&data, tmp.path(), None).await;
    let base = s.base.clone();
    let info = read_json(&data.join("sandbox.json"));
    let http = client();
    // An SP whose own chain is SMS only (its registration narrows the operator's chain).
    let redirect_uri = format!("{base}/demo-sp/callback");
    let r = http
        .post(format!("{base}/admin/v1/clients"))
        .bearer_auth(info["admin_token"].as_str().unwrap())
        .json(&json!({
            "name": "Texting Shop",
            "short_name": "TextShop",
            "redirect_uris": [redirect_uri],
            "scopes": ["openid", "mc_authn"],
            "metadata": {"authenticator_chains": {"2": ["sms_otp_url"]}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let sp = Sp {
        client_id: v["client_id"].as_str().unwrap().to_owned(),
        secret: v["client_secret"].as_str().unwrap().to_owned(),
        redirect_uri,
    };
    let a = Authz {
        client_name: "TextShop",
        ..demo_login(&sp, "sms-1")
    };
    let r = http.get(authorize_url(&base, &a)).send().await.unwrap();
    let wait = location(&base, &r);
    // The outbox worker submits the SMS; the SMSC delivers it to the phone's inbox.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let inbox = get_json(&http, &format!("{base}/phone/{MSISDN_301}/sms")).await;
        if let Some(t) = inbox["messages"][0]["text"].as_str() {
            break t.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no SMS reached the phone: {inbox}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{base}/sms/link/")))
        .unwrap_or_else(|| panic!("no link in {text:?}"));
    let r = http
        .post(link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("answer=confirm")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let back = follow_to_redirect_uri(&http, &base, &wait, &sp.redirect_uri).await;
    let code = query(&back)["code"].clone();
    let (status, tokens) = exchange(&http, &base, &sp, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["SMS_URL_OK"]));
    drop(s);
}
