//! Shared by the back-channel suites (`ciba.rs`, `si.rs`): client signing keys and JWSs
//! made with aws-lc-rs (no extra dependencies), a `jwks_uri` server and a notification
//! receiver on loopback, client registration, id_token verification against `/jwks`, and a
//! raw front-channel login (for comparing `sub`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
    RsaKeyPair,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mc_gateway::registry::{self, ClientSpec};
use mc_store::{ClientMetadata, ClientRecord};
use serde_json::{Value, json};

use crate::common::{Gateway, follow_to_redirect_uri, query_of};

// ---------------------------------------------------------------------------------------
// keys and JWSs

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A client signing key (RSA 2048 or P-256) with its public JWK.
pub struct TestKey {
    pub kid: String,
    pair: Pair,
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64_json(v: &Value) -> String {
    b64(&serde_json::to_vec(v).unwrap())
}

impl TestKey {
    pub fn rsa(kid: &str) -> TestKey {
        TestKey {
            kid: kid.to_owned(),
            pair: Pair::Rsa(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap()),
        }
    }

    pub fn ec(kid: &str) -> TestKey {
        TestKey {
            kid: kid.to_owned(),
            pair: Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()),
        }
    }

    pub fn jwk(&self) -> Value {
        match &self.pair {
            Pair::Rsa(p) => {
                let public = p.public_key();
                json!({
                    "kty": "RSA", "use": "sig", "kid": self.kid,
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(p) => {
                let point = p.public_key().as_ref();
                assert_eq!(point.len(), 65);
                json!({
                    "kty": "EC", "use": "sig", "crv": "P-256", "kid": self.kid,
                    "x": b64(&point[1..33]), "y": b64(&point[33..]),
                })
            }
        }
    }

    /// A compact JWS of `claims` under `header` (RS256, PS256 or ES256 as `alg` says).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64_json(header), b64_json(claims));
        let alg = header["alg"].as_str().unwrap();
        let sig = match (&self.pair, alg) {
            (Pair::Rsa(p), "RS256" | "PS256") => {
                let padding = if alg == "RS256" {
                    &RSA_PKCS1_SHA256
                } else {
                    &RSA_PSS_SHA256
                };
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            (Pair::Ec(p), "ES256") => p
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            _ => panic!("this test key cannot sign {alg}"),
        };
        format!("{input}.{}", b64(&sig))
    }

    pub fn sign(&self, alg: &str, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": alg, "typ": "JWT", "kid": self.kid}), claims)
    }
}

pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// An unsigned (`alg: none`) JWT of `claims`.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none"})),
        b64_json(claims)
    )
}

// ---------------------------------------------------------------------------------------
// a jwks_uri

/// Serves `GET /jwks.json` on 127.0.0.1, counting fetches.
pub struct JwksServer {
    pub uri: String,
    hits: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl JwksServer {
    pub async fn start(doc: Value) -> JwksServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let body = doc.to_string();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (h, body) = (h.clone(), body.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    ([("content-type", "application/json")], body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        JwksServer {
            uri: format!("http://{addr}/jwks.json"),
            hits,
            server,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------
// the client's notification endpoint

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The status the receiver answered with.
    pub answered: u16,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A notification endpoint on 127.0.0.1 (`POST /notify`) that records every request and
/// answers 500 to the first `fail_first` of them, 204 afterwards.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    fail_first: Arc<AtomicUsize>,
    server: Arc<ServerHandle>,
}

struct ServerHandle(tokio::task::JoinHandle<()>);

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn record(State(r): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let fail = r
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    };
    r.hits.lock().unwrap().push(Hit {
        authorization: header("authorization"),
        content_type: header("content-type"),
        body,
        answered: status.as_u16(),
    });
    status
}

#[derive(Clone)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    fail_first: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let st = ReceiverState {
            hits: Arc::default(),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
        };
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/notify", axum::routing::post(record))
            .with_state(st.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url,
            hits: st.hits,
            fail_first: st.fail_first,
            server: Arc::new(ServerHandle(server)),
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits (bounded, checking every 20 ms) until one request was answered with success;
    /// returns every request seen so far.
    pub async fn delivered(&self, within: Duration) -> Vec<Hit> {
        let start = Instant::now();
        loop {
            let hits = self.hits();
            if hits.iter().any(|h| h.answered < 300) {
                return hits;
            }
            assert!(
                start.elapsed() < within,
                "no successful delivery within {within:?}; attempts: {hits:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Long enough that a second (wrong) delivery would have been made: many worker ticks
/// (the harness ticks every 50 ms and wakes the worker on every answer).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

/// How long a notification may take to arrive.
pub const WITHIN: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// clients

/// Registers a client through the registry: `(record, secret)`.
pub async fn register(
    g: &Gateway,
    short_name: &str,
    scopes: &[&str],
    metadata: ClientMetadata,
) -> (ClientRecord, String) {
    registry::create_client(g.store(), &spec(g, short_name, scopes, metadata))
        .await
        .unwrap()
}

/// The spec `register` uses: one redirect URI on the gateway's host, an own sector.
pub fn spec(
    g: &Gateway,
    short_name: &str,
    scopes: &[&str],
    metadata: ClientMetadata,
) -> ClientSpec {
    ClientSpec {
        client_id: None,
        name: format!("{short_name} Ltd"),
        short_name: short_name.to_owned(),
        redirect_uris: vec![format!(
            "http://127.0.0.1:{}/cb/{short_name}",
            g.addr.port()
        )],
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        sector_identifier_uri: Some(format!(
            "https://{}.example/sector.json",
            short_name.to_lowercase()
        )),
        metadata,
    }
}

// ---------------------------------------------------------------------------------------
// tokens

/// Verifies an RS256 id_token against the gateway's published `/jwks` (issuer, audience,
/// expiry); returns its claims.
pub async fn verified_claims(g: &Gateway, client_id: &str, id_token: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let jwks: JwkSet = g
        .http()
        .get(format!("{}/jwks", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[client_id]);
    v.set_issuer(&[g.base.as_str()]);
    decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .expect("the id_token verifies against /jwks")
        .claims
}

/// `POST /token` with the CIBA grant and Basic client authentication.
pub async fn poll_token(
    g: &Gateway,
    client_id: &str,
    secret: &str,
    auth_req_id: &str,
) -> (u16, Value) {
    let resp = g
        .http()
        .post(format!("{}/token", g.base))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", auth_req_id),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `(error, error_description)` of an error body.
pub fn err(body: &Value) -> (&str, &str) {
    (
        body["error"].as_str().unwrap_or("<none>"),
        body["error_description"].as_str().unwrap_or("<none>"),
    )
}

/// A front-channel LoA2 login (`/authorize` → phone taps OK → `/token`) of `msisdn` at the
/// client; returns the verified id_token claims.
pub async fn front_channel_login(
    g: &Gateway,
    client: &ClientRecord,
    secret: &str,
    msisdn: &str,
) -> Value {
    let redirect_uri = client.redirect_uris[0].clone();
    let hint = format!("MSISDN:{msisdn}");
    let query = serde_urlencoded::to_string([
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", "openid mc_authn"),
        ("state", "state-front-1"),
        ("nonce", "nonce-front-1"),
        ("version", "mc_di_r2_v2.3"),
        ("acr_values", "2"),
        ("login_hint", hint.as_str()),
    ])
    .unwrap();
    let phone = g.phone(msisdn);
    let approve = tokio::spawn(async move { phone.approve_next().await });
    let back =
        follow_to_redirect_uri(g, &format!("{}/authorize?{query}", g.base), &redirect_uri).await;
    approve.await.expect("phone task");
    let q = query_of(&back);
    let code = q.get("code").unwrap_or_else(|| panic!("no code in {back}"));
    let resp = g
        .http()
        .post(format!("{}/token", g.base))
        .basic_auth(&client.client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    verified_claims(g, &client.client_id, body["id_token"].as_str().unwrap()).await
}

/// Waits (bounded) until `f` holds, checking every 20 ms.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
