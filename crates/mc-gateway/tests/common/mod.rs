//! The test harness: a real gateway on a loopback port over a fresh SQLite file, seeded
//! through the registry, with a handle to answer as the subscriber's phone through the same
//! device API a real channel uses (`PushChannel`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mc_authn::answer::{Answer, AnswerOutcome};
use mc_core::msisdn::Msisdn;
use mc_gateway::config::{AdminConfig, GatewayConfig};
use mc_gateway::keys::{Kek, KeyRing};
use mc_gateway::registry::{self, ClientSpec, SubscriberSpec};
use mc_gateway::state::{AppState, now, sha256_hex};
use mc_store::DynStore;
use mc_store_sqlite::SqliteStore;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const KEK: [u8; 32] = [7u8; 32];

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub dir: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

/// A registered service provider and its secret.
#[derive(Clone, Debug)]
pub struct Sp {
    pub client_id: String,
    pub secret: String,
    pub redirect_uri: String,
    pub short_name: String,
}

impl Drop for Gateway {
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
        "mc-gw-{tag}-{}-{n}-{}",
        std::process::id(),
        now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The default test configuration for an issuer (`login` tweaks via `configure`).
pub fn config(issuer: &str) -> GatewayConfig {
    let mut c = GatewayConfig {
        issuer: issuer.to_owned(),
        tokens: Default::default(),
        login: Default::default(),
        authenticators: Default::default(),
        admin: AdminConfig {
            token_sha256: Some(sha256_hex(ADMIN_TOKEN)),
        },
        backchannel: Default::default(),
        telemetry: Default::default(),
        keys: Default::default(),
        retention: Default::default(),
        datagw: Default::default(),
        throttle: Default::default(),
    };
    // Headless polls are held 1 s and back-channel clients may poll every second, so tests
    // stay quick.
    c.login.headless_hold_secs = 1;
    c.backchannel.poll_interval_secs = 1;
    c.backchannel.worker_tick_millis = 50;
    c
}

impl Gateway {
    /// Starts a gateway on 127.0.0.1:<free port> over a new database.
    pub async fn start() -> Gateway {
        Self::start_with(|_| {}).await
    }

    /// Starts with a configuration tweak.
    pub async fn start_with(tweak: impl FnOnce(&mut GatewayConfig)) -> Gateway {
        Self::start_in(temp_dir("gw"), tweak).await
    }

    /// Starts over the database in `dir` (reuse it to test restarts).
    pub async fn start_in(dir: PathBuf, tweak: impl FnOnce(&mut GatewayConfig)) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let mut cfg = config(&base);
        tweak(&mut cfg);
        cfg.validate().unwrap();
        let store: DynStore = Arc::new(SqliteStore::open(&dir.join("mc.db")).await.unwrap());
        let keys = KeyRing::load_or_create(&*store, &Kek::new(&KEK).unwrap(), now())
            .await
            .unwrap();
        let state = AppState::new(store, cfg, keys);
        mc_gateway::notify::spawn_workers(state.clone());
        let app = mc_gateway::app(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Gateway {
            addr,
            base,
            state,
            dir,
            server,
        }
    }

    pub fn store(&self) -> &DynStore {
        &self.state.store
    }

    /// Registers a service provider with the given scopes on `http://127.0.0.1:<port>/cb/<name>`.
    pub async fn sp(&self, short_name: &str, scopes: &[&str]) -> Sp {
        let redirect_uri = format!("http://127.0.0.1:{}/cb/{short_name}", self.addr.port());
        let spec = ClientSpec {
            client_id: None,
            name: format!("{short_name} Ltd"),
            short_name: short_name.to_owned(),
            redirect_uris: vec![redirect_uri.clone()],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            // Each SP its own sector, so PCRs differ between SPs.
            sector_identifier_uri: Some(format!(
                "https://{}.example/sector.json",
                short_name.to_lowercase()
            )),
            metadata: Default::default(),
        };
        let (record, secret) = registry::create_client(self.store(), &spec).await.unwrap();
        Sp {
            client_id: record.client_id,
            secret,
            redirect_uri,
            short_name: short_name.to_owned(),
        }
    }

    /// The default SP: scopes `openid mc_authn mc_authz mc_identity_phonenumber phone`.
    pub async fn shop(&self) -> Sp {
        self.sp(
            "OnlineShopper",
            &[
                "openid",
                "mc_authn",
                "mc_authz",
                "mc_identity_phonenumber",
                "phone",
            ],
        )
        .await
    }

    /// Provisions a subscriber with the `app_push` capability.
    pub async fn subscriber(&self, msisdn: &str, pin: Option<&str>) {
        let spec = SubscriberSpec {
            msisdn: msisdn.to_owned(),
            pin: pin.map(String::from),
            capabilities: vec!["app_push".into()],
        };
        registry::create_subscriber(self.store(), &spec)
            .await
            .unwrap();
    }

    /// The phone of `msisdn`.
    pub fn phone(&self, msisdn: &str) -> Phone {
        Phone {
            state: self.state.clone(),
            msisdn: Msisdn::parse(msisdn).unwrap(),
        }
    }

    /// An HTTP client that does not follow redirects and keeps no cookies.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }
}

/// The subscriber's phone, answering through `PushChannel` (the app-push device API).
pub struct Phone {
    state: AppState,
    msisdn: Msisdn,
}

/// A challenge as the phone sees it.
pub type DeviceChallenge = mc_authn::push::DeviceChallenge;

impl Phone {
    /// Waits (long poll, up to 10 s) for the first open challenge.
    pub async fn next_challenge(&self) -> DeviceChallenge {
        let list = self
            .state
            .push_channel()
            .wait_pending(
                &self.msisdn,
                std::time::Duration::from_secs(10),
                std::time::Duration::from_millis(100),
                now,
            )
            .await
            .unwrap();
        list.into_iter()
            .next()
            .expect("no challenge reached the phone within 10 s")
    }

    pub async fn pending(&self) -> Vec<DeviceChallenge> {
        self.state
            .push_channel()
            .pending(&self.msisdn, now())
            .await
            .unwrap()
    }

    pub async fn answer(&self, id: &str, answer: Answer) -> AnswerOutcome {
        self.state
            .push_channel()
            .answer(&self.msisdn, id, answer, now())
            .await
            .unwrap()
    }

    /// Waits for the next challenge and taps OK (LoA2).
    pub async fn approve_next(&self) -> DeviceChallenge {
        let c = self.next_challenge().await;
        assert_eq!(
            self.answer(&c.id, Answer::Approve { pin: None }).await,
            AnswerOutcome::Approved
        );
        c
    }

    /// Waits for the next challenge and enters `pin`.
    pub async fn approve_next_with_pin(&self, pin: &str) -> (DeviceChallenge, AnswerOutcome) {
        let c = self.next_challenge().await;
        let outcome = self
            .answer(
                &c.id,
                Answer::Approve {
                    pin: Some(pin.to_owned()),
                },
            )
            .await;
        (c, outcome)
    }
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// `Location` of a response, resolved against the gateway.
pub fn location(base: &str, resp: &reqwest::Response) -> Option<String> {
    let loc = resp.headers().get("location")?.to_str().ok()?;
    Some(if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        loc.to_owned()
    })
}

/// Drives a browser-less login: GET the authorize URL, follow the gateway's own redirects
/// (held at `/authorize` and the waiting URL) until a `Location` on the SP's redirect URI
/// appears. Returns that final redirect URL (`authorize_url` itself when it already is one:
/// a caller may pass on `/authorize`'s own answer).
pub async fn follow_to_redirect_uri(
    g: &Gateway,
    authorize_url: &str,
    redirect_uri: &str,
) -> String {
    if authorize_url.starts_with(redirect_uri) {
        return authorize_url.to_owned();
    }
    let http = g.http();
    let mut url = authorize_url.to_owned();
    for _ in 0..60 {
        let resp = http.get(&url).send().await.unwrap();
        assert!(
            resp.status().is_redirection(),
            "expected a redirect from {url}, got {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        let next = location(&g.base, &resp).unwrap();
        if next.starts_with(redirect_uri) {
            return next;
        }
        url = next;
    }
    panic!("no redirect to {redirect_uri} after 60 hops");
}
