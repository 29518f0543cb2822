//! The multi-operator sandbox in-process, wired like `mobileconnect sandbox`: the first
//! operator at the root, the extra operators under `/operators/<id>` each over its own
//! SQLite file, Discovery at `/discovery`, the phones (dispatched by number) and the shop
//! — on one loopback port. Plus a cookie-keeping browser without a browser.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_discovery::state::{DiscoveryConfig, DiscoveryState};
use mc_gateway::config::GatewayConfig;
use mc_gateway::keys::{Kek, KeyRing};
use mc_gateway::state::{AppState, now};
use mc_sandbox::SandboxInfo;
use mc_sandbox::operators::VirtualOperator;
use mc_store::{DiscoveryStore, DynStore};
use mc_store_sqlite::SqliteStore;
use serde_json::{Value, json};

pub const KEK: [u8; 32] = [7u8; 32];

pub struct Sandbox {
    pub base: String,
    pub state: AppState,
    pub extra: Vec<VirtualOperator>,
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
        "mc-sandbox-{tag}-{}-{n}-{}",
        std::process::id(),
        now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Sandbox {
    pub async fn start(tag: &str) -> Sandbox {
        let dir = temp_dir(tag);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut cfg: GatewayConfig = serde_json::from_value(json!({ "issuer": base })).unwrap();
        cfg.login.headless_hold_secs = 1;
        cfg.backchannel.poll_interval_secs = 1;
        cfg.admin.token_sha256 = Some(mc_gateway::state::sha256_hex("admin-token"));
        cfg.validate().unwrap();
        let kek = Kek::new(&KEK).unwrap();
        let store: DynStore = Arc::new(SqliteStore::open(&dir.join("mc.db")).await.unwrap());
        let keys = KeyRing::load_or_create(&*store, &kek, now()).await.unwrap();
        let state = AppState::new(store, cfg.clone(), keys);
        let mut info = mc_sandbox::seed(&state.store, &base, None, "admin-token".into())
            .await
            .unwrap();
        let extra = mc_sandbox::operators::open_extra(&dir, &kek, &cfg, None, &mut info)
            .await
            .unwrap();
        let dstore: Arc<dyn DiscoveryStore> = state.store.clone();
        let mut dcfg = DiscoveryConfig::new(format!("{base}/discovery"));
        dcfg.admin_token_sha256 = cfg.admin.token_sha256.clone();
        let discovery = DiscoveryState::new(dstore.clone(), dcfg, &KEK).unwrap();
        mc_sandbox::discovery::seed(
            &*dstore,
            discovery.secrets(),
            &state,
            discovery.config().base(),
            None,
            &mut info,
        )
        .await
        .unwrap();
        mc_sandbox::discovery::seed_operators(&*dstore, discovery.secrets(), &extra)
            .await
            .unwrap();
        discovery.reload().await.unwrap();
        let shop = mc_sandbox::shop::Shop::new(
            mc_sandbox::shop::ShopConfig::from_info(&info, &base).unwrap(),
        );
        mc_gateway::notify::spawn_workers(state.clone());
        for op in &extra {
            mc_gateway::notify::spawn_workers(op.state.clone());
        }
        let phones = mc_sandbox::operators::Phones::new(&extra);
        let app = mc_gateway::with_layers(
            mc_gateway::routes(&state)
                .merge(mc_sandbox::phone::router())
                .with_state(state.clone())
                .merge(mc_sandbox::operators::routes(&extra))
                .merge(mc_discovery::router(discovery))
                .merge(shop.router())
                .layer(axum::middleware::from_fn_with_state(
                    phones,
                    mc_sandbox::operators::phone_dispatch,
                )),
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Sandbox {
            base,
            state,
            extra,
            info,
            dir,
            server,
        }
    }

    pub fn issuer_of(&self, id: &str) -> String {
        self.info
            .operators
            .iter()
            .find(|o| o.id == id)
            .unwrap_or_else(|| panic!("no operator {id}"))
            .issuer
            .clone()
    }

    /// Waits (long poll through the phone API at `/phone/<msisdn>`) for the next challenge.
    pub async fn next_challenge(&self, msisdn: &str) -> Value {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let resp = http
                .get(format!("{}/phone/{msisdn}/challenges?wait=5", self.base))
                .send()
                .await
                .unwrap();
            assert!(
                resp.status().is_success(),
                "phone {msisdn}: {}",
                resp.status()
            );
            let list: Value = resp.json().await.unwrap();
            if let Some(c) = list["challenges"].as_array().and_then(|a| a.first()) {
                return c.clone();
            }
            assert!(Instant::now() < deadline, "no challenge reached {msisdn}");
        }
    }

    /// Answers `challenge` on the phone's API; returns the result word.
    pub async fn answer(
        &self,
        msisdn: &str,
        challenge: &Value,
        decision: &str,
        pin: Option<&str>,
    ) -> String {
        let mut body = json!({ "decision": decision });
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

    /// In the background: answers the next challenge on `msisdn`, returns what it showed.
    pub fn answer_next(
        self: &Arc<Self>,
        msisdn: &str,
        decision: &'static str,
        pin: Option<&str>,
    ) -> tokio::task::JoinHandle<Value> {
        let (me, msisdn, pin) = (self.clone(), msisdn.to_owned(), pin.map(str::to_owned));
        tokio::spawn(async move {
            let c = me.next_challenge(&msisdn).await;
            let result = me.answer(&msisdn, &c, decision, pin.as_deref()).await;
            assert_eq!(
                result,
                if decision == "approve" {
                    "approved"
                } else {
                    "denied"
                }
            );
            c
        })
    }
}

/// A browser without a browser: keeps cookies per host, follows nothing by itself.
pub struct Browser {
    http: reqwest::Client,
    cookies: std::sync::Mutex<Vec<(String, String)>>,
}

/// A response: status, `Location` (absolute) and body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub url: String,
    pub location: Option<String>,
    pub body: String,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&self, url: &str, resp: reqwest::Response) -> Page {
        for v in resp.headers().get_all("set-cookie") {
            let first = v.to_str().unwrap().split(';').next().unwrap();
            let (k, val) = first.split_once('=').unwrap();
            let mut jar = self.cookies.lock().unwrap();
            jar.retain(|(n, _)| n != k);
            jar.push((k.to_owned(), val.to_owned()));
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| url::Url::parse(url).unwrap().join(l).unwrap().to_string());
        Page {
            status,
            url: url.to_owned(),
            location,
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        let resp = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(url, resp).await
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> Page {
        let resp = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.read(url, resp).await
    }

    /// Follows redirects from `page` until one that is not a redirect (the gateway's
    /// headless waiting URL redirects to itself until the phone answered).
    pub async fn follow(&self, mut page: Page) -> Page {
        for _ in 0..80 {
            let Some(next) = page.location.clone() else {
                return page;
            };
            page = self.get(&next).await;
        }
        panic!("too many redirects, last {}", page.url);
    }
}

/// The value of `<input ... name="NAME" value="...">` in `html`.
pub fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
}

/// The text of the element with `id="ID"` (up to the next `<`).
pub fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let rest = &rest[start..];
    rest[..rest.find('<').unwrap()].to_owned()
}
