//! Client keys and client-signed JWSs: `ClientKeys::verify_client_jws` over inline `jwks`
//! and a served `jwks_uri` (RS256, PS256, ES256, refusals, rotation), and `private_key_jwt`
//! client authentication at `/token` (RFC 7523).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
    RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::Gateway;
use mc_gateway::client_keys::{ClientKeys, FetchPolicy, JwsError};
use mc_gateway::registry::{self, ClientSpec};
use mc_gateway::state::now;
use mc_store::{ClientMetadata, ClientRecord};
use serde_json::{Value, json};

// ---------------------------------------------------------------- test keys and signing

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A client signing key with its public JWK.
struct TestKey {
    kid: String,
    pair: Pair,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(v: &Value) -> String {
    b64(&serde_json::to_vec(v).unwrap())
}

impl TestKey {
    fn rsa(kid: &str) -> TestKey {
        TestKey {
            kid: kid.to_owned(),
            pair: Pair::Rsa(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap()),
        }
    }

    fn ec(kid: &str) -> TestKey {
        TestKey {
            kid: kid.to_owned(),
            pair: Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()),
        }
    }

    fn jwk(&self) -> Value {
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

    /// A compact JWS of `claims` under `header` (signed as `alg` says: RS256, PS256, ES256).
    fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
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

    fn sign(&self, alg: &str, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": alg, "typ": "JWT", "kid": self.kid}), claims)
    }
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

// ---------------------------------------------------------------- a JWKS server

/// Serves `GET /jwks.json` from a document the test can swap, counting fetches.
struct JwksServer {
    uri: String,
    doc: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    delay: Arc<Mutex<Duration>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl JwksServer {
    async fn start(doc: Value) -> JwksServer {
        let doc = Arc::new(Mutex::new(doc));
        let hits = Arc::new(AtomicUsize::new(0));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let (d, h, w) = (doc.clone(), hits.clone(), delay.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (d, h, w) = (d.clone(), h.clone(), w.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let wait = *w.lock().unwrap();
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    let body = d.lock().unwrap().to_string();
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
            doc,
            hits,
            delay,
            server,
        }
    }

    fn set(&self, doc: Value) {
        *self.doc.lock().unwrap() = doc;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------- registration helpers

async fn register(g: &Gateway, name: &str, metadata: ClientMetadata) -> (ClientRecord, String) {
    let spec = ClientSpec {
        client_id: None,
        name: format!("{name} Ltd"),
        short_name: name.to_owned(),
        redirect_uris: vec![format!("http://127.0.0.1:{}/cb/{name}", g.addr.port())],
        scopes: vec!["openid".into(), "mc_authn".into()],
        sector_identifier_uri: Some(format!(
            "https://{}.example/sector.json",
            name.to_lowercase()
        )),
        metadata,
    };
    registry::create_client(g.store(), &spec).await.unwrap()
}

fn inline(doc: Value) -> ClientMetadata {
    ClientMetadata {
        jwks: Some(doc),
        ..Default::default()
    }
}

fn by_uri(uri: &str) -> ClientMetadata {
    ClientMetadata {
        jwks_uri: Some(uri.to_owned()),
        ..Default::default()
    }
}

fn some_claims() -> Value {
    json!({"iss": "someone", "aud": "https://op.example", "exp": now() + 60, "jti": "j1"})
}

// ---------------------------------------------------------------- verify_client_jws

#[tokio::test]
async fn inline_jwks_verifies_rs256_ps256_es256() {
    let g = Gateway::start().await;
    let (rsa, ec) = (TestKey::rsa("r1"), TestKey::ec("e1"));
    let (client, _) = register(&g, "Inline", inline(jwks(&[&rsa, &ec]))).await;
    let keys = &g.state.client_keys;
    let claims = some_claims();
    for (key, alg) in [(&rsa, "RS256"), (&rsa, "PS256"), (&ec, "ES256")] {
        let got = keys
            .verify_client_jws(&client, &key.sign(alg, &claims), None)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(Value::Object(got), claims, "{alg}");
        // The registered algorithm, when it is the one used, is accepted too.
        assert!(
            keys.verify_client_jws(&client, &key.sign(alg, &claims), Some(alg))
                .await
                .is_ok()
        );
    }
    // Without a kid: the only key of the matching type.
    let no_kid = rsa.sign_with_header(&json!({"alg": "RS256"}), &claims);
    assert!(keys.verify_client_jws(&client, &no_kid, None).await.is_ok());
    let no_kid = ec.sign_with_header(&json!({"alg": "ES256"}), &claims);
    assert!(keys.verify_client_jws(&client, &no_kid, None).await.is_ok());
    // ... and with two RSA keys, no kid is ambiguous.
    let rsa2 = TestKey::rsa("r2");
    let (two, _) = register(&g, "TwoKeys", inline(jwks(&[&rsa, &rsa2]))).await;
    let no_kid = rsa.sign_with_header(&json!({"alg": "RS256"}), &claims);
    assert_eq!(
        keys.verify_client_jws(&two, &no_kid, None).await,
        Err(JwsError::AmbiguousKey)
    );
    assert!(
        keys.verify_client_jws(&two, &rsa2.sign("PS256", &claims), None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn jwks_uri_verifies_and_is_cached() {
    let g = Gateway::start().await;
    let (rsa, ec) = (TestKey::rsa("r1"), TestKey::ec("e1"));
    let server = JwksServer::start(jwks(&[&rsa, &ec])).await;
    let (client, _) = register(&g, "ByUri", by_uri(&server.uri)).await;
    let keys = &g.state.client_keys;
    let claims = some_claims();
    for (key, alg) in [(&rsa, "RS256"), (&rsa, "PS256"), (&ec, "ES256")] {
        let got = keys
            .verify_client_jws(&client, &key.sign(alg, &claims), None)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(got["jti"], "j1");
    }
    assert_eq!(server.hits(), 1, "the document is fetched once and cached");
}

#[tokio::test]
async fn bad_signatures_and_algorithms_are_refused() {
    let g = Gateway::start().await;
    let (rsa, ec) = (TestKey::rsa("r1"), TestKey::ec("e1"));
    let (client, _) = register(&g, "Strict", inline(jwks(&[&rsa, &ec]))).await;
    let keys = &g.state.client_keys;
    let claims = some_claims();
    let verify = |jws: String, expected: Option<&'static str>| {
        let client = client.clone();
        async move { keys.verify_client_jws(&client, &jws, expected).await }
    };

    // Signed by another key under the registered kid.
    let impostor = TestKey::rsa("r1");
    assert_eq!(
        verify(impostor.sign("RS256", &claims), None).await,
        Err(JwsError::BadSignature)
    );
    let impostor_ec = TestKey::ec("e1");
    assert_eq!(
        verify(impostor_ec.sign("ES256", &claims), None).await,
        Err(JwsError::BadSignature)
    );
    // A payload changed after signing.
    let good = rsa.sign("RS256", &claims);
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64_json(&json!({"iss": "admin"})),
        parts[2]
    );
    assert_eq!(verify(forged, None).await, Err(JwsError::BadSignature));
    // A PKCS#1 v1.5 signature presented as PS256.
    let mislabelled = format!(
        "{}.{}.{}",
        b64_json(&json!({"alg": "PS256", "kid": "r1"})),
        parts[1],
        parts[2]
    );
    assert_eq!(verify(mislabelled, None).await, Err(JwsError::BadSignature));

    // alg none, with and without a signature part.
    let none_header = b64_json(&json!({"alg": "none"}));
    let payload = b64_json(&claims);
    assert_eq!(
        verify(format!("{none_header}.{payload}.c2ln"), None).await,
        Err(JwsError::UnsupportedAlg("none".into()))
    );
    // An unsecured JWT (empty signature) fails validation; it is not a malformed request.
    assert_eq!(
        verify(format!("{none_header}.{payload}."), None).await,
        Err(JwsError::BadSignature)
    );
    // HS256 keyed with something public (the RSA modulus): the classic confusion.
    let hs_header = b64_json(&json!({"alg": "HS256", "kid": "r1"}));
    let input = format!("{hs_header}.{payload}");
    let mac_key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        rsa.jwk()["n"].as_str().unwrap().as_bytes(),
    );
    let mac = aws_lc_rs::hmac::sign(&mac_key, input.as_bytes());
    assert_eq!(
        verify(format!("{input}.{}", b64(mac.as_ref())), None).await,
        Err(JwsError::UnsupportedAlg("HS256".into()))
    );
    for other in ["RS512", "ES384", "EdDSA"] {
        let h = b64_json(&json!({"alg": other}));
        assert_eq!(
            verify(format!("{h}.{payload}.c2ln"), None).await,
            Err(JwsError::UnsupportedAlg(other.into()))
        );
    }
    // The registered algorithm is PS256 but RS256 was used.
    assert_eq!(
        verify(rsa.sign("RS256", &claims), Some("PS256")).await,
        Err(JwsError::AlgMismatch {
            expected: "PS256".into(),
            found: "RS256".into()
        })
    );
    // An EC key cannot verify an RSA algorithm (and vice versa).
    let crossed = ec.sign_with_header(&json!({"alg": "ES256", "kid": "r1"}), &claims);
    assert_eq!(verify(crossed, None).await, Err(JwsError::UnknownKey));
    // A kid the client never registered.
    assert_eq!(
        verify(TestKey::rsa("zz").sign("RS256", &claims), None).await,
        Err(JwsError::UnknownKey)
    );
    // Unsupported extensions.
    let crit = rsa.sign_with_header(
        &json!({"alg": "RS256", "kid": "r1", "crit": ["exp"], "exp": 1}),
        &claims,
    );
    assert!(matches!(
        verify(crit, None).await,
        Err(JwsError::Malformed(_))
    ));
    // Not a JWS at all, and a JWE-shaped five-part token.
    assert!(matches!(
        verify("garbage".into(), None).await,
        Err(JwsError::Malformed(_))
    ));
    assert!(matches!(
        verify("a.b.c.d.e".into(), None).await,
        Err(JwsError::Malformed(_))
    ));
    // A 1 MB request object: refused on size, no panic, no parsing.
    let huge = json!({"iss": "x", "pad": "p".repeat(1024 * 1024)});
    assert_eq!(
        verify(rsa.sign("RS256", &huge), None).await,
        Err(JwsError::TooLarge)
    );
    // A client without any keys.
    let (keyless, _) = register(&g, "Keyless", ClientMetadata::default()).await;
    assert_eq!(
        keys.verify_client_jws(&keyless, &rsa.sign("RS256", &claims), None)
            .await,
        Err(JwsError::NoKeys)
    );
    // The back-channel mapping of these errors.
    assert_eq!(
        JwsError::BadSignature.backchannel_error(),
        mc_core::McError::BackchannelUnauthorized("Token validation failed")
    );
    assert_eq!(
        JwsError::TooLarge.backchannel_error().code().as_str(),
        "invalid_request"
    );
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_uri_at_most_once_per_interval() {
    let g = Gateway::start().await;
    let (old, new) = (TestKey::rsa("2024"), TestKey::ec("2025"));
    let server = JwksServer::start(jwks(&[&old])).await;
    let (client, _) = register(&g, "Rotating", by_uri(&server.uri)).await;
    let keys = ClientKeys::with_policy(FetchPolicy {
        refetch_interval: Duration::from_millis(300),
        ..Default::default()
    });
    let claims = some_claims();
    assert!(
        keys.verify_client_jws(&client, &old.sign("RS256", &claims), None)
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1);

    // The client rotates: its new key is published, the old one withdrawn.
    server.set(jwks(&[&new]));
    // Just fetched: an unknown kid does not refetch yet (no fetch storm from bad kids).
    assert_eq!(
        keys.verify_client_jws(&client, &new.sign("ES256", &claims), None)
            .await,
        Err(JwsError::UnknownKey)
    );
    assert_eq!(server.hits(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Now the unknown kid triggers one refetch and the new key verifies.
    assert!(
        keys.verify_client_jws(&client, &new.sign("ES256", &claims), None)
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 2);
    // The withdrawn key no longer verifies, and asking again does not refetch.
    for _ in 0..3 {
        assert_eq!(
            keys.verify_client_jws(&client, &old.sign("RS256", &claims), None)
                .await,
            Err(JwsError::UnknownKey)
        );
    }
    assert_eq!(server.hits(), 2);
    // Still cached for the new key.
    assert!(
        keys.verify_client_jws(&client, &new.sign("ES256", &claims), None)
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn unusable_jwks_uri_documents_are_refused() {
    let g = Gateway::start().await;
    let rsa = TestKey::rsa("r1");
    let claims = some_claims();
    let jws = rsa.sign("RS256", &claims);
    let keys = ClientKeys::with_policy(FetchPolicy {
        timeout: Duration::from_millis(500),
        refetch_interval: Duration::ZERO,
        ..Default::default()
    });

    // Larger than the cap.
    let mut big = jwks(&[&rsa]);
    big["padding"] = json!("x".repeat(100 * 1024));
    let server = JwksServer::start(big).await;
    let (client, _) = register(&g, "BigDoc", by_uri(&server.uri)).await;
    assert_eq!(
        keys.verify_client_jws(&client, &jws, None).await,
        Err(JwsError::KeysUnavailable)
    );
    // Not a JWKS.
    server.set(json!({"hello": "world"}));
    assert_eq!(
        keys.verify_client_jws(&client, &jws, None).await,
        Err(JwsError::KeysUnavailable)
    );
    // Too slow: the fetch times out.
    server.set(jwks(&[&rsa]));
    *server.delay.lock().unwrap() = Duration::from_secs(3);
    let started = std::time::Instant::now();
    assert_eq!(
        keys.verify_client_jws(&client, &jws, None).await,
        Err(JwsError::KeysUnavailable)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // Back to normal: it works.
    *server.delay.lock().unwrap() = Duration::ZERO;
    assert!(keys.verify_client_jws(&client, &jws, None).await.is_ok());

    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (gone, _) = register(&g, "Gone", by_uri(&format!("http://{closed}/jwks.json"))).await;
    assert_eq!(
        keys.verify_client_jws(&gone, &jws, None).await,
        Err(JwsError::KeysUnavailable)
    );
}

// ---------------------------------------------------------------- private_key_jwt at /token

struct PkjClient {
    record: ClientRecord,
    secret: String,
    key: TestKey,
}

async fn pkj_client(g: &Gateway, name: &str, metadata: ClientMetadata, key: TestKey) -> PkjClient {
    let (record, secret) = register(g, name, metadata).await;
    PkjClient {
        record,
        secret,
        key,
    }
}

fn assertion_claims(g: &Gateway, client_id: &str, jti: &str) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{}/token", g.base),
        "exp": now() + 120,
        "iat": now(),
        "jti": jti,
    })
}

/// `POST /token` with a bogus code: `(status, error)`. `invalid_grant` means the client
/// authenticated; `invalid_client` means it did not.
async fn token_with(
    g: &Gateway,
    c: &PkjClient,
    extra: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, String) {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", "no-such-code"),
        ("redirect_uri", &c.record.redirect_uris[0]),
    ];
    form.extend_from_slice(extra);
    let mut req = g.http().post(format!("{}/token", g.base)).form(&form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn token_with_assertion(g: &Gateway, c: &PkjClient, assertion: &str) -> (u16, String) {
    token_with(
        g,
        c,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
        None,
    )
    .await
}

const AUTHENTICATED: (u16, &str) = (400, "invalid_grant");
const REFUSED: (u16, &str) = (401, "invalid_client");

fn pair(r: &(u16, String)) -> (u16, &str) {
    (r.0, r.1.as_str())
}

#[tokio::test]
async fn private_key_jwt_authenticates_at_the_token_endpoint() {
    let g = Gateway::start().await;
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let c = pkj_client(
        &g,
        "Assertive",
        ClientMetadata {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(server.uri.clone()),
            ..Default::default()
        },
        key,
    )
    .await;
    let id = c.record.client_id.clone();

    // A valid assertion authenticates (the bogus code then fails the grant).
    let a = c.key.sign("RS256", &assertion_claims(&g, &id, "jti-1"));
    assert_eq!(pair(&token_with_assertion(&g, &c, &a).await), AUTHENTICATED);
    // The same assertion again: a replay.
    assert_eq!(pair(&token_with_assertion(&g, &c, &a).await), REFUSED);
    // A new jti is fine, with the body's client_id agreeing; PS256 too.
    let a = c.key.sign("PS256", &assertion_claims(&g, &id, "jti-2"));
    let r = token_with(
        &g,
        &c,
        &[
            ("client_id", &id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &a),
        ],
        None,
    )
    .await;
    assert_eq!(pair(&r), AUTHENTICATED);
    // aud as the issuer, as the back-channel endpoint, or in a list.
    for (jti, aud) in [
        ("jti-3", json!(g.base)),
        ("jti-4", json!(format!("{}/bc-authorize", g.base))),
        (
            "jti-5",
            json!(["https://other.example", format!("{}/token", g.base)]),
        ),
    ] {
        let mut claims = assertion_claims(&g, &id, jti);
        claims["aud"] = aud;
        let a = c.key.sign("RS256", &claims);
        assert_eq!(
            pair(&token_with_assertion(&g, &c, &a).await),
            AUTHENTICATED,
            "{jti}"
        );
    }

    // Refusals, each with a fresh jti so only the defect under test counts.
    let refuse = |jti: &str, edit: &dyn Fn(&mut Value)| {
        let mut claims = assertion_claims(&g, &id, jti);
        edit(&mut claims);
        c.key.sign("RS256", &claims)
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            refuse("r1", &|c| {
                c["aud"] = json!("https://elsewhere.example/token")
            }),
        ),
        (
            "no aud",
            refuse("r2", &|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        ("expired", refuse("r3", &|c| c["exp"] = json!(now() - 600))),
        (
            "no exp",
            refuse("r4", &|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "exp too far",
            refuse("r5", &|c| c["exp"] = json!(now() + 7200)),
        ),
        (
            "no jti",
            refuse("r6", &|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        (
            "sub differs",
            refuse("r7", &|c| c["sub"] = json!("someone-else")),
        ),
        (
            "nbf future",
            refuse("r8", &|c| c["nbf"] = json!(now() + 600)),
        ),
        (
            "wrong key",
            TestKey::rsa("k1").sign("RS256", &assertion_claims(&g, &id, "r9")),
        ),
        (
            "unknown client",
            c.key.sign("RS256", &assertion_claims(&g, "nobody", "r10")),
        ),
        ("not a JWT", "abc".to_owned()),
    ];
    for (why, a) in &cases {
        assert_eq!(
            pair(&token_with_assertion(&g, &c, a).await),
            REFUSED,
            "{why}"
        );
    }
    // An HS256 assertion keyed with the client secret is not private_key_jwt.
    let hs_input = format!(
        "{}.{}",
        b64_json(&json!({"alg": "HS256"})),
        b64_json(&assertion_claims(&g, &id, "r11"))
    );
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, c.secret.as_bytes()),
        hs_input.as_bytes(),
    );
    let hs = format!("{hs_input}.{}", b64(mac.as_ref()));
    assert_eq!(pair(&token_with_assertion(&g, &c, &hs).await), REFUSED);

    // Body client_id naming another client.
    let a = c.key.sign("RS256", &assertion_claims(&g, &id, "r12"));
    let r = token_with(
        &g,
        &c,
        &[
            ("client_id", "another"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &a),
        ],
        None,
    )
    .await;
    assert_eq!(pair(&r), REFUSED);
    // Wrong assertion type.
    let a = c.key.sign("RS256", &assertion_claims(&g, &id, "r13"));
    let r = token_with(
        &g,
        &c,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &a),
        ],
        None,
    )
    .await;
    assert_eq!(pair(&r), REFUSED);
    // Two methods at once (assertion plus Basic).
    let a = c.key.sign("RS256", &assertion_claims(&g, &id, "r14"));
    let r = token_with(
        &g,
        &c,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &a),
        ],
        Some((&id, &c.secret)),
    )
    .await;
    assert_eq!(pair(&r), REFUSED);

    // A private_key_jwt client cannot fall back to its secret, Basic or post.
    let r = token_with(&g, &c, &[], Some((&id, &c.secret))).await;
    assert_eq!(pair(&r), REFUSED);
    let r = token_with(
        &g,
        &c,
        &[("client_id", &id), ("client_secret", &c.secret)],
        None,
    )
    .await;
    assert_eq!(pair(&r), REFUSED);
}

#[tokio::test]
async fn secret_clients_keep_secrets_and_cannot_use_assertions() {
    let g = Gateway::start().await;
    let key = TestKey::ec("e1");
    // Registered keys (e.g. for SI request objects) but secret authentication.
    let c = pkj_client(&g, "Secretive", inline(jwks(&[&key])), key).await;
    let id = c.record.client_id.clone();
    let r = token_with(&g, &c, &[], Some((&id, &c.secret))).await;
    assert_eq!(pair(&r), AUTHENTICATED);
    let r = token_with(
        &g,
        &c,
        &[("client_id", &id), ("client_secret", &c.secret)],
        None,
    )
    .await;
    assert_eq!(pair(&r), AUTHENTICATED);
    let a = c.key.sign("ES256", &assertion_claims(&g, &id, "x1"));
    assert_eq!(pair(&token_with_assertion(&g, &c, &a).await), REFUSED);
}

#[tokio::test]
async fn private_key_jwt_with_inline_ec_keys() {
    let g = Gateway::start().await;
    let key = TestKey::ec("e1");
    let c = pkj_client(
        &g,
        "InlineEc",
        ClientMetadata {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(jwks(&[&key])),
            ..Default::default()
        },
        key,
    )
    .await;
    let id = c.record.client_id.clone();
    let a = c.key.sign("ES256", &assertion_claims(&g, &id, "e-1"));
    assert_eq!(pair(&token_with_assertion(&g, &c, &a).await), AUTHENTICATED);
    assert_eq!(pair(&token_with_assertion(&g, &c, &a).await), REFUSED);
}
