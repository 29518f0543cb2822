//! A Discovery service on 127.0.0.1:0 over an in-memory SQLite store, with three operators,
//! one application and its credentials, number ranges, a ported number and an IP range.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_discovery::registry::{self, AppSpec, CredentialSpec, OperatorSpec};
use mc_discovery::{DiscoveryConfig, DiscoveryState};
use mc_store::{DiscoveryStore, NumberEntry, NumberKind};
use mc_store_sqlite::SqliteStore;
use serde_json::Value;

pub const APP_ID: &str = "shop-discovery";
pub const APP_SECRET: &str = "shop-discovery-secret-0123456789";
pub const REDIRECT: &str = "https://shop.example/mc/callback";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub const MASTER: [u8; 32] = [42u8; 32];

/// One operator and its private key.
pub struct TestOperator {
    pub id: &'static str,
    pub mcc: &'static str,
    pub mnc: &'static str,
    pub pair: KeyPair,
}

impl TestOperator {
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        serde_json::json!({
            "kty": "RSA",
            "use": "enc",
            "kid": format!("{}-enc", self.id),
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// Decrypts a `subscriber_id` (hex, RSA-OAEP-SHA256) with the operator's private key.
    pub fn decrypt(&self, subscriber_id: &str) -> String {
        assert!(subscriber_id.len().is_multiple_of(2), "hex");
        let ct: Vec<u8> = (0..subscriber_id.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&subscriber_id[i..i + 2], 16).unwrap())
            .collect();
        let der = self.pair.as_der().unwrap();
        let key =
            OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(der.as_ref()).unwrap())
                .unwrap();
        let mut buf = vec![0u8; 512];
        let plain = key
            .decrypt(&OAEP_SHA256_MGF1SHA256, &ct, &mut buf, None)
            .unwrap();
        String::from_utf8(plain.to_vec()).unwrap()
    }

    pub fn spec(&self, name: &str, country: &str, currency: &str) -> OperatorSpec {
        let base = format!("https://{}.example", self.id);
        let mut links = BTreeMap::new();
        for (rel, path) in [
            ("authorization", "/authorize"),
            ("token", "/token"),
            ("userinfo", "/userinfo"),
            ("premiuminfo", "/premiuminfo"),
            ("jwks", "/jwks"),
            ("tokenrevoke", "/revoke"),
        ] {
            links.insert(rel.to_string(), format!("{base}{path}"));
        }
        links.insert("issuer".to_string(), base.clone());
        links.insert("scope".to_string(), "openid mc_authn mc_authz".to_string());
        OperatorSpec {
            id: self.id.into(),
            mcc: self.mcc.into(),
            mnc: self.mnc.into(),
            name: name.into(),
            country: country.into(),
            currency: currency.into(),
            links,
            encryption_jwk: Some(self.jwk()),
            enabled: true,
        }
    }
}

pub struct Service {
    pub base: String,
    pub state: DiscoveryState,
    pub store: Arc<SqliteStore>,
    pub ops: Vec<TestOperator>,
    pub server: tokio::task::JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Service {
    pub fn op(&self, id: &str) -> &TestOperator {
        self.ops.iter().find(|o| o.id == id).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn discovery_url(&self) -> String {
        self.url("/v2/discovery")
    }
}

/// RSA key generation costs up to a second: the four operators' keys are made once per
/// test binary and parsed again for each service.
fn key(i: usize) -> KeyPair {
    static KEYS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let ders = KEYS.get_or_init(|| {
        (0..4)
            .map(|_| {
                let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
                pair.as_der().unwrap().as_ref().to_vec()
            })
            .collect()
    });
    KeyPair::from_pkcs8(&ders[i]).unwrap()
}

/// Operators: `op-a` (234/15, GB, range 447700900), `op-b` (234/30, GB, range 4477009,
/// ported 447700900399, IP 10.64.0.0/10), `op-c` (208/01, FR, range 33; the application has
/// no credentials there), `op-off` (234/99, disabled, range 447900).
pub async fn start() -> Service {
    start_at("").await
}

/// [`start`] with the service under a path (`/discovery`).
pub async fn start_at(path: &str) -> Service {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let ops = vec![
        TestOperator {
            id: "op-a",
            mcc: "234",
            mnc: "15",
            pair: key(0),
        },
        TestOperator {
            id: "op-b",
            mcc: "234",
            mnc: "30",
            pair: key(1),
        },
        TestOperator {
            id: "op-c",
            mcc: "208",
            mnc: "01",
            pair: key(2),
        },
        TestOperator {
            id: "op-off",
            mcc: "234",
            mnc: "99",
            pair: key(3),
        },
    ];
    let s: &dyn DiscoveryStore = &*store;
    registry::create_operator(s, &ops[0].spec("Operator A", "United Kingdom", "GBP"))
        .await
        .unwrap();
    let mut b = ops[1].spec("Operator B", "United Kingdom", "GBP");
    b.links.remove("premiuminfo");
    registry::create_operator(s, &b).await.unwrap();
    registry::create_operator(s, &ops[2].spec("Opérateur C", "France", "EUR"))
        .await
        .unwrap();
    let mut off = ops[3].spec("Operator Off", "United Kingdom", "GBP");
    off.enabled = false;
    registry::create_operator(s, &off).await.unwrap();
    let app = AppSpec {
        client_id: Some(APP_ID.into()),
        name: "Online Shop".into(),
        short_name: "OnlineShop".into(),
        redirect_uris: vec![REDIRECT.into()],
        enabled: true,
    };
    registry::create_app(s, &app, Some(APP_SECRET))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}{path}");
    let mut config = DiscoveryConfig::new(base.clone());
    config.admin_token_sha256 = Some(mc_discovery::crypto::sha256_hex(ADMIN_TOKEN));
    let state = DiscoveryState::new(store.clone(), config, &MASTER).unwrap();
    for (op, name) in [
        ("op-a", Some("Shop at A")),
        ("op-b", None),
        ("op-off", None),
    ] {
        registry::put_credential(
            s,
            state.secrets(),
            APP_ID,
            op,
            &CredentialSpec {
                client_id: format!("client-at-{op}"),
                client_secret: format!("secret-at-{op}"),
                client_name: name.map(String::from),
            },
        )
        .await
        .unwrap();
    }
    let entry = |kind, number, op: &str| NumberEntry {
        kind,
        number,
        operator_id: op.into(),
    };
    s.upsert_numbers(
        &[
            entry(NumberKind::Range, 447_700_900, "op-a"),
            entry(NumberKind::Range, 4_477_009, "op-b"),
            entry(NumberKind::Range, 33, "op-c"),
            entry(NumberKind::Range, 447_900, "op-off"),
            entry(NumberKind::Ported, 447_700_900_399, "op-b"),
        ],
        1,
    )
    .await
    .unwrap();
    registry::put_ip_range(s, "10.64.0.0/10", "op-b")
        .await
        .unwrap();
    state.reload().await.unwrap();
    let app = mc_discovery::router(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Service {
        base,
        state,
        store,
        ops,
        server,
    }
}

/// A client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The link hrefs of a 200 body by rel.
pub fn links(body: &Value) -> BTreeMap<String, String> {
    body["response"]["apis"]["operatorid"]["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["rel"].as_str().unwrap().to_string(),
                l["href"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
