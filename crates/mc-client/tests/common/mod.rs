//! The SDK's test bed: the sandbox in-process — a real gateway on a loopback port over a
//! fresh SQLite file, the virtual phones' JSON API, and the sandbox's demo data (the
//! "OnlineShopper" service provider and the test subscribers) — plus a headless browser
//! that follows the gateway's redirects.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_client::{ClientCredentials, MobileConnect, Operator, Options};
use mc_gateway::config::GatewayConfig;
use mc_gateway::keys::{Kek, KeyRing};
use mc_gateway::state::{AppState, now};
use mc_sandbox::seed::SandboxInfo;
use mc_store::DynStore;
use mc_store_sqlite::SqliteStore;
use serde_json::{Value, json};

pub const KEK: [u8; 32] = [9u8; 32];

/// A running sandbox.
pub struct Sandbox {
    pub base: String,
    pub state: AppState,
    pub info: SandboxInfo,
    pub dir: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fresh, unique folder under Cargo's scratch folder for tests (`target/tmp`), so the
/// gateways' data leaves with the build instead of piling up in /tmp.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "mc-client-{tag}-{}-{n}-{}",
        std::process::id(),
        now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Sandbox {
    pub async fn start() -> Sandbox {
        Self::start_in(temp_dir("sbx")).await
    }

    /// Starts over the database in `dir` (same keys when reused).
    pub async fn start_in(dir: PathBuf) -> Sandbox {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut cfg: GatewayConfig = serde_json::from_value(json!({ "issuer": base })).unwrap();
        cfg.login.headless_hold_secs = 1;
        cfg.backchannel.poll_interval_secs = 1;
        cfg.backchannel.worker_tick_millis = 50;
        cfg.validate().unwrap();
        let store: DynStore = Arc::new(SqliteStore::open(&dir.join("mc.db")).await.unwrap());
        let keys = KeyRing::load_or_create(&*store, &Kek::new(&KEK).unwrap(), now())
            .await
            .unwrap();
        let state = AppState::new(store, cfg, keys);
        let info = mc_sandbox::seed(&state.store, &base, None, "admin-token".into())
            .await
            .unwrap();
        mc_gateway::notify::spawn_workers(state.clone());
        let app = mc_gateway::with_layers(
            mc_gateway::routes(&state)
                .merge(mc_sandbox::phone::router())
                .with_state(state.clone()),
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Sandbox {
            base,
            state,
            info,
            dir,
            server,
        }
    }

    /// The demo SP "OnlineShopper" of sandbox.json.
    pub fn shop(&self) -> &mc_sandbox::seed::ServiceProviderInfo {
        &self.info.service_providers[0]
    }

    pub fn shop_redirect(&self) -> String {
        self.shop().redirect_uris[0].clone()
    }

    pub fn shop_credentials(&self) -> ClientCredentials {
        let s = self.shop();
        ClientCredentials::secret_basic(&s.client_id, &s.client_secret)
            .with_client_name(&s.short_name)
    }

    /// The shop at this operator, configured with nothing but the issuer URL.
    pub async fn shop_operator(&self, mc: &MobileConnect) -> Operator {
        mc.operator_from_issuer(&self.base, self.shop_credentials())
            .await
            .unwrap()
    }

    /// Waits (long poll through the phone's JSON API) for the next challenge on `msisdn`.
    pub async fn next_challenge(&self, msisdn: &str) -> Value {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let list: Value = http
                .get(format!("{}/phone/{msisdn}/challenges?wait=5", self.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(c) = list["challenges"].as_array().and_then(|a| a.first()) {
                return c.clone();
            }
            assert!(Instant::now() < deadline, "no challenge reached {msisdn}");
        }
    }

    /// Answers `challenge` on the phone page's JSON API; returns the result word.
    pub async fn answer(
        &self,
        msisdn: &str,
        challenge: &Value,
        decision: &str,
        pin: Option<&str>,
    ) -> String {
        let mut body = json!({"decision": decision});
        if let Some(p) = pin {
            body["pin"] = json!(p);
        }
        let resp: Value = reqwest::Client::new()
            .post(format!(
                "{}/phone/{msisdn}/challenges/{}",
                self.base,
                challenge["id"].as_str().unwrap()
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["result"].as_str().unwrap_or_default().to_owned()
    }

    /// A background task that approves the next challenge on `msisdn` (with `pin`) and
    /// returns what the phone showed.
    pub fn approve_next(
        self: &Arc<Self>,
        msisdn: &str,
        pin: Option<&str>,
    ) -> tokio::task::JoinHandle<Value> {
        let (me, msisdn, pin) = (self.clone(), msisdn.to_owned(), pin.map(str::to_owned));
        tokio::spawn(async move {
            let c = me.next_challenge(&msisdn).await;
            assert_eq!(
                me.answer(&msisdn, &c, "approve", pin.as_deref()).await,
                "approved"
            );
            c
        })
    }
}

/// SDK options with `offset` seconds added to the clock (for expiry tests).
pub fn options_with_offset(offset: Arc<std::sync::atomic::AtomicI64>) -> Options {
    Options {
        clock: mc_client::Clock::from_fn(move || {
            now() + offset.load(std::sync::atomic::Ordering::SeqCst)
        }),
        ..Options::default()
    }
}

/// The browser's part of a login without a browser: GET the authorization URL and follow
/// the gateway's redirects (its headless waiting URL answers 302s until the phone
/// answered) until one leaves for `redirect_uri`; returns that URL.
pub async fn browser(authorize_url: &str, redirect_uri: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut url = authorize_url.to_owned();
    for _ in 0..60 {
        let resp = http.get(&url).send().await.unwrap();
        let status = resp.status();
        let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok()) else {
            panic!(
                "expected a redirect from {url}, got {status}: {}",
                resp.text().await.unwrap_or_default()
            );
        };
        let next = url::Url::parse(&url)
            .unwrap()
            .join(loc)
            .unwrap()
            .to_string();
        if next.starts_with(redirect_uri) {
            return next;
        }
        url = next;
    }
    panic!("no redirect to {redirect_uri} after 60 hops");
}
