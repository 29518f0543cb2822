//! Server-initiated logins through the SDK against the real gateway: the notification
//! variant (the SDK's notification handler mounted in a small axum endpoint; mc_authz with
//! its texts), the polling variant (with private_key_jwt at the token endpoint), denial,
//! and a notification with the wrong bearer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use mc_client::authorize::LoginHint;
use mc_client::jose::{Algorithm, SigningKey};
use mc_client::si::{SiNotification, SiNotifications, SiPending, SiRequest};
use mc_client::{ClientCredentials, Error, MobileConnect, Operator};
use mc_core::msisdn::Msisdn;
use serde_json::json;
use tokio::sync::mpsc;

const ALICE: &str = "447700900301";

/// The SP's notification endpoint: the SDK's handler behind an axum route.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<(SiPending, SiNotification)>,
    refusals: mpsc::UnboundedReceiver<u16>,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Rs {
    handler: Arc<SiNotifications>,
    tx: mpsc::UnboundedSender<(SiPending, SiNotification)>,
    refused: mpsc::UnboundedSender<u16>,
}

async fn notify(State(s): State<Rs>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    match s.handler.handle(auth, &body) {
        Ok(got) => {
            s.tx.send(got).unwrap();
            StatusCode::NO_CONTENT
        }
        Err(e) => {
            s.refused.send(e.http_status()).unwrap();
            StatusCode::from_u16(e.http_status()).unwrap()
        }
    }
}

impl Receiver {
    async fn start(handler: Arc<SiNotifications>) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let (refused, refusals) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mc/notify", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/mc/notify", axum::routing::post(notify))
            .with_state(Rs {
                handler,
                tx,
                refused,
            });
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url,
            rx,
            refusals,
            _server: server,
        }
    }

    async fn next(&mut self) -> (SiPending, SiNotification) {
        tokio::time::timeout(Duration::from_secs(15), self.rx.recv())
            .await
            .expect("no notification within 15 s")
            .unwrap()
    }
}

/// Registers an SI client holding `key`, notified at `notify`; returns the shop-like
/// operator handle with its secret credentials.
async fn si_client(
    sbx: &Sandbox,
    mc: &MobileConnect,
    name: &str,
    key: &SigningKey,
    notify: &[&str],
    auth_method: Option<&str>,
) -> (Operator, String, String) {
    let mut metadata = json!({
        "jwks": key.public_jwks(),
        "notification_uris": notify,
    });
    if let Some(m) = auth_method {
        metadata["token_endpoint_auth_method"] = json!(m);
    }
    let spec: mc_gateway::registry::ClientSpec = serde_json::from_value(json!({
        "name": format!("{name} Ltd"),
        "short_name": name,
        "redirect_uris": [format!("{}/cb/{name}", sbx.base)],
        "scopes": ["openid", "mc_authn", "mc_authz"],
        "sector_identifier_uri": format!("https://{}.example/sector.json", name.to_lowercase()),
        "metadata": metadata,
    }))
    .unwrap();
    let (record, secret) = mc_gateway::registry::create_client(&sbx.state.store, &spec)
        .await
        .unwrap();
    let op = mc
        .operator_from_issuer(
            &sbx.base,
            ClientCredentials::secret_basic(&record.client_id, &secret).with_client_name(name),
        )
        .await
        .unwrap();
    (op, record.client_id, secret)
}

fn alice() -> LoginHint {
    LoginHint::Msisdn(Msisdn::parse(ALICE).unwrap())
}

#[tokio::test]
async fn notification_variant_with_mc_authz_texts() {
    let sbx = Arc::new(Sandbox::start().await);
    let mc = MobileConnect::new(Default::default());
    let handler = Arc::new(SiNotifications::default());
    let mut rx = Receiver::start(handler.clone()).await;
    let key = SigningKey::generate_rsa("bank-key-1", Algorithm::RS256).unwrap();
    let (op, _, _) = si_client(&sbx, &mc, "BankCo", &key, &[&rx.url], None).await;

    let pending = op
        .si_start(
            SiRequest::authz(alice(), "Transfer GBP 120.00 to J. Smith")
                .binding_message("TX-4410")
                .notify(&rx.url),
            &key,
        )
        .await
        .unwrap();
    assert!(pending.notification_token.is_some());
    handler.insert(pending.clone());
    let shown = sbx.approve_next(ALICE, None).await.unwrap();
    assert_eq!(shown["client_name"], "BankCo");
    assert_eq!(shown["context"], "Transfer GBP 120.00 to J. Smith");
    assert_eq!(shown["binding_message"], "TX-4410");

    let (taken, notification) = rx.next().await;
    assert_eq!(taken.auth_req_id, pending.auth_req_id);
    assert!(handler.is_empty(), "taken out once");
    let login = op.si_complete(&taken, notification).await.unwrap();
    assert_eq!(login.id_token.acr.as_deref(), Some("2"));
    assert!(
        login
            .id_token
            .displayed_data
            .as_deref()
            .unwrap()
            .contains("TX-4410")
    );
    // The SDK sent MSISDN:, so it checked hashed_login_hint against that number.
    assert_eq!(
        login.id_token.hashed_login_hint.as_deref(),
        Some(mc_core::id_token::hashed_login_hint(&Msisdn::parse(ALICE).unwrap()).as_str())
    );
    // The tokens work.
    op.userinfo(&login.tokens.access_token, Some(&login.id_token))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_notification_with_the_wrong_bearer_is_refused_and_the_real_one_still_lands() {
    let sbx = Arc::new(Sandbox::start().await);
    let mc = MobileConnect::new(Default::default());
    let handler = Arc::new(SiNotifications::default());
    let mut rx = Receiver::start(handler.clone()).await;
    let key = SigningKey::generate_ec("ec-1").unwrap();
    let (op, _, _) = si_client(&sbx, &mc, "EcShop", &key, &[&rx.url], None).await;
    let pending = op
        .si_start(SiRequest::authn(alice()).notify(&rx.url), &key)
        .await
        .unwrap();
    handler.insert(pending.clone());

    let forged = reqwest::Client::new()
        .post(&rx.url)
        .bearer_auth("guessed-token")
        .json(&json!({"auth_req_id": pending.auth_req_id, "error": "access_denied"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(rx.refusals.recv().await, Some(401));
    assert_eq!(
        handler.len(),
        1,
        "a refused notification does not consume the request"
    );

    sbx.approve_next(ALICE, None).await.unwrap();
    let (taken, notification) = rx.next().await;
    let login = op.si_complete(&taken, notification).await.unwrap();
    assert!(!login.id_token.pcr().is_empty());
}

#[tokio::test]
async fn polling_variant_with_private_key_jwt() {
    let sbx = Arc::new(Sandbox::start().await);
    let mc = MobileConnect::new(Default::default());
    let key = Arc::new(SigningKey::generate_rsa("pkj-1", Algorithm::PS256).unwrap());
    let (op, client_id, _) =
        si_client(&sbx, &mc, "PollShop", &key, &[], Some("private_key_jwt")).await;
    let op = op.with_credentials(ClientCredentials::private_key_jwt(&client_id, key.clone()));
    let pending = op.si_start(SiRequest::authn(alice()), &key).await.unwrap();
    assert!(pending.notification_token.is_none());
    assert!(matches!(
        op.si_poll(&pending).await.unwrap(),
        mc_client::si::SiPoll::Pending
    ));
    let phone = sbx.approve_next(ALICE, None);
    let login = op.si_wait(&pending, Duration::from_secs(1)).await.unwrap();
    phone.await.unwrap();
    assert_eq!(login.id_token.aud, [client_id]);

    // A denied request is a typed denial.
    let pending = op.si_start(SiRequest::authn(alice()), &key).await.unwrap();
    let deny = {
        let sbx = sbx.clone();
        tokio::spawn(async move {
            let c = sbx.next_challenge(ALICE).await;
            assert_eq!(sbx.answer(ALICE, &c, "deny", None).await, "denied");
        })
    };
    let err = op
        .si_wait(&pending, Duration::from_secs(1))
        .await
        .unwrap_err();
    deny.await.unwrap();
    assert!(matches!(err, Error::Denied { .. }), "{err:?}");
}

#[tokio::test]
async fn a_request_signed_with_an_unregistered_key_is_the_gateways_error() {
    let sbx = Sandbox::start().await;
    let mc = MobileConnect::new(Default::default());
    let key = SigningKey::generate_rsa("k", Algorithm::RS256).unwrap();
    let (op, _, _) = si_client(&sbx, &mc, "KeyShop", &key, &[], None).await;
    let stranger = SigningKey::generate_rsa("k", Algorithm::RS256).unwrap();
    match op.si_start(SiRequest::authn(alice()), &stranger).await {
        Err(Error::Protocol { status, error, .. }) => {
            assert_eq!((status, error.as_str()), (400, "unauthorized_client"))
        }
        other => panic!("{other:?}"),
    }
}
