//! Key rotation as the SDK sees it: the JWKS is fetched lazily and reused; a token signed
//! with a `kid` the cached set lacks refetches it (at most every `jwks_min_refresh_secs`);
//! the gateway's encryption key is never used to verify. A small fake operator (metadata +
//! JWKS) signs with keys the test controls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use common::options_with_offset;
use mc_client::id_token::Expectations;
use mc_client::jose::{Algorithm, SigningKey};
use mc_client::{ClientCredentials, IdTokenError, MobileConnect};
use serde_json::{Value, json};

#[derive(Clone)]
struct Op {
    issuer: Arc<Mutex<String>>,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn metadata(State(op): State<Op>) -> axum::Json<Value> {
    let iss = op.issuer.lock().unwrap().clone();
    axum::Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn jwks(State(op): State<Op>) -> axum::Json<Value> {
    op.fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(op.jwks.lock().unwrap().clone())
}

fn token(key: &SigningKey, iss: &str, now: i64) -> String {
    key.sign(&json!({
        "iss": iss, "sub": "pcr", "aud": "sp", "exp": now + 300, "iat": now, "nonce": "n",
    }))
    .unwrap()
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_every_ten_seconds() {
    let k1 = SigningKey::generate_rsa("k1", Algorithm::RS256).unwrap();
    let k2 = SigningKey::generate_ec("k2").unwrap();
    let k3 = SigningKey::generate_rsa("k3", Algorithm::RS256).unwrap();
    // The operator's encryption key under k3's kid: never a verification key.
    let mut enc = k3.public_jwk();
    enc["use"] = json!("enc");
    let op = Op {
        issuer: Arc::new(Mutex::new(String::new())),
        jwks: Arc::new(Mutex::new(json!({"keys": [k1.public_jwk(), enc]}))),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let iss = format!("http://{}", listener.local_addr().unwrap());
    *op.issuer.lock().unwrap() = iss.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(metadata),
        )
        .route("/jwks", axum::routing::get(jwks))
        .with_state(op.clone());
    let _server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let offset = Arc::new(AtomicI64::new(0));
    let mc = MobileConnect::new(options_with_offset(offset.clone()));
    let operator = mc
        .operator_from_issuer(&iss, ClientCredentials::secret_basic("sp", "s"))
        .await
        .unwrap();
    let expect = Expectations {
        nonce: Some("n".into()),
        ..Default::default()
    };
    assert_eq!(op.fetches.load(Ordering::SeqCst), 0, "fetched lazily");
    operator
        .validate_id_token(&token(&k1, &iss, mc.now()), &expect)
        .await
        .unwrap();
    operator
        .validate_id_token(&token(&k1, &iss, mc.now()), &expect)
        .await
        .unwrap();
    assert_eq!(op.fetches.load(Ordering::SeqCst), 1, "reused");

    // k3 is only an encryption key: no match, and within 10 s no refetch either.
    assert_eq!(
        operator
            .validate_id_token(&token(&k3, &iss, mc.now()), &expect)
            .await
            .unwrap_err(),
        IdTokenError::NoMatchingKey(Some("k3".into()))
    );
    assert_eq!(op.fetches.load(Ordering::SeqCst), 1, "rate-limited refetch");

    // The operator publishes k2 (publish-before-use) and signs with it 11 s later.
    *op.jwks.lock().unwrap() = json!({"keys": [k1.public_jwk(), k2.public_jwk()]});
    offset.store(11, Ordering::SeqCst);
    operator
        .validate_id_token(&token(&k2, &iss, mc.now()), &expect)
        .await
        .unwrap();
    assert_eq!(
        op.fetches.load(Ordering::SeqCst),
        2,
        "the unknown kid refetched"
    );
    // Old tokens under k1 still verify from the new set, without another fetch.
    operator
        .validate_id_token(&token(&k1, &iss, mc.now()), &expect)
        .await
        .unwrap();
    assert_eq!(op.fetches.load(Ordering::SeqCst), 2);

    // After the 15-minute reuse window the set is refreshed anyway; k1 retired.
    *op.jwks.lock().unwrap() = json!({"keys": [k2.public_jwk()]});
    offset.store(11 + 901, Ordering::SeqCst);
    assert_eq!(
        operator
            .validate_id_token(&token(&k1, &iss, mc.now()), &expect)
            .await
            .unwrap_err(),
        IdTokenError::NoMatchingKey(Some("k1".into()))
    );
    assert_eq!(op.fetches.load(Ordering::SeqCst), 3);
}
