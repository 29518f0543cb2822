//! The MSSP client of `mc-authn` against the sandbox MSSP over loopback HTTP: LoA2 and
//! LoA3 transactions, every fault the SIM channel maps, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mc_authn::mssp::{
    DisplayPolicy, FaultOutcome, MsspClient, MsspConfig, MsspError, MsspFault, Status,
};
use mc_sandbox::mssp::{MsspSim, MsspSimConfig};
use serde_json::{Value, json};

const PHONE: &str = "+447700900302";

struct Fixture {
    base: String,
    http: reqwest::Client,
}

async fn start() -> (Fixture, MsspConfig) {
    let sim = MsspSim::new(MsspSimConfig {
        ap_id: "mid://mobileconnect".into(),
        ap_password: "ap-secret".into(),
        profile_loa2: "urn:profile:loa2".into(),
        profile_loa3: "urn:profile:loa3".into(),
    });
    sim.add_sim(PHONE, "1234");
    sim.add_sim("+447700900303", "5678");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = sim.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cfg = MsspConfig::new(
        &format!("{base}/mssp/rest/service"),
        "mid://mobileconnect",
        "ap-secret",
    );
    cfg.profile_loa2 = "urn:profile:loa2".into();
    cfg.profile_loa3 = "urn:profile:loa3".into();
    cfg.poll_interval = Duration::from_millis(10);
    (
        Fixture {
            base,
            http: reqwest::Client::new(),
        },
        cfg,
    )
}

impl Fixture {
    async fn pending(&self, msisdn: &str) -> Value {
        self.http
            .get(format!("{}/mssp/sim/{msisdn}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn answer(&self, msisdn: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/mssp/sim/{msisdn}/answer", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn post_raw(&self, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/mssp/rest/service", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

fn fault_code(e: &MsspError) -> u16 {
    match e {
        MsspError::Fault(MsspFault { code, .. }) => *code,
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[tokio::test]
async fn loa2_ok_on_the_sim_signs() {
    let (fx, cfg) = start().await;
    let client = MsspClient::new(cfg).unwrap();
    let tx = client
        .start(PHONE, "OnlineShopper: log in?", false, "ap-1")
        .await
        .unwrap();
    assert_eq!(client.status(&tx).await.unwrap(), Status::Outstanding);
    let view = fx.pending(PHONE).await;
    assert_eq!(view["pending"][0]["text"], "OnlineShopper: log in?");
    assert_eq!(view["pending"][0]["pin_required"], false);
    let (code, _) = fx
        .answer(PHONE, json!({"trans_id": tx.mssp_trans_id, "accept": true}))
        .await;
    assert_eq!(code, 200);
    assert!(matches!(
        client.poll(&tx).await.unwrap(),
        Status::Signed { signature: Some(_) }
    ));
}

#[tokio::test]
async fn loa3_needs_the_sim_pin_and_blocks_after_three_wrong() {
    let (fx, cfg) = start().await;
    let client = MsspClient::new(cfg).unwrap();
    let tx = client
        .start(PHONE, "Pay 10 GBP", true, "ap-2")
        .await
        .unwrap();
    let (code, body) = fx
        .answer(
            PHONE,
            json!({"trans_id": tx.mssp_trans_id, "accept": true, "pin": "0000"}),
        )
        .await;
    assert_eq!((code, body["tries_left"].as_u64()), (403, Some(2)));
    let (code, _) = fx
        .answer(
            PHONE,
            json!({"trans_id": tx.mssp_trans_id, "accept": true, "pin": "1234"}),
        )
        .await;
    assert_eq!(code, 200, "the right PIN within the tries signs");
    assert!(matches!(
        client.poll(&tx).await.unwrap(),
        Status::Signed { .. }
    ));

    let tx = client
        .start(PHONE, "Pay again", true, "ap-3")
        .await
        .unwrap();
    for _ in 0..3 {
        fx.answer(
            PHONE,
            json!({"trans_id": tx.mssp_trans_id, "accept": true, "pin": "9999"}),
        )
        .await;
    }
    let err = client.poll(&tx).await.unwrap_err();
    assert_eq!(fault_code(&err), 402);
    assert_eq!(err.outcome(), FaultOutcome::NotUsable);
    // A blocked SIM refuses new transactions at once.
    let err = client
        .start(PHONE, "again", false, "ap-4")
        .await
        .unwrap_err();
    assert_eq!(fault_code(&err), 402);
    assert_eq!(fx.pending(PHONE).await["blocked"], true);
}

#[tokio::test]
async fn cancel_on_the_sim_is_a_refusal() {
    let (fx, cfg) = start().await;
    let client = MsspClient::new(cfg).unwrap();
    let tx = client.start(PHONE, "Log in?", false, "ap-5").await.unwrap();
    fx.answer(
        PHONE,
        json!({"trans_id": tx.mssp_trans_id, "accept": false}),
    )
    .await;
    let err = client.poll(&tx).await.unwrap_err();
    assert_eq!(fault_code(&err), 401);
    assert_eq!(err.outcome(), FaultOutcome::Refused);
    // A second answer to an ended transaction changes nothing.
    let (code, _) = fx
        .answer(PHONE, json!({"trans_id": tx.mssp_trans_id, "accept": true}))
        .await;
    assert_eq!(code, 409);
    assert_eq!(fault_code(&client.status(&tx).await.unwrap_err()), 401);
}

#[tokio::test]
async fn unknown_numbers_busy_sims_and_expiry_map_to_their_outcomes() {
    let (fx, cfg) = start().await;
    let client = MsspClient::new(cfg).unwrap();
    let err = client
        .start("+447700900399", "hi", false, "ap-6")
        .await
        .unwrap_err();
    assert_eq!(
        (fault_code(&err), err.outcome()),
        (105, FaultOutcome::NotUsable)
    );

    let tx = client
        .start("+447700900303", "first", false, "ap-7")
        .await
        .unwrap();
    let err = client
        .start("+447700900303", "second", false, "ap-8")
        .await
        .unwrap_err();
    assert_eq!((fault_code(&err), err.outcome()), (406, FaultOutcome::Busy));

    let r = fx
        .http
        .post(format!("{}/mssp/sim/+447700900303/expire", fx.base))
        .json(&json!({"trans_id": tx.mssp_trans_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let err = client.poll(&tx).await.unwrap_err();
    assert_eq!(
        (fault_code(&err), err.outcome()),
        (208, FaultOutcome::TimedOut)
    );
    // The SIM is free again.
    client
        .start("+447700900303", "third", false, "ap-9")
        .await
        .unwrap();
}

#[tokio::test]
async fn our_own_deadline_ends_polling_of_an_unanswered_transaction() {
    let (_fx, mut cfg) = start().await;
    cfg.transaction_timeout = Duration::from_millis(50);
    cfg.poll_interval = Duration::from_millis(20);
    let client = MsspClient::new(cfg).unwrap();
    let err = client
        .run(PHONE, "nobody answers", false, "ap-10")
        .await
        .unwrap_err();
    assert_eq!(err, MsspError::TimedOut);
}

#[tokio::test]
async fn wrong_ap_credentials_are_a_configuration_fault() {
    let (_fx, mut cfg) = start().await;
    cfg.ap_password = "wrong".into();
    let client = MsspClient::new(cfg).unwrap();
    let err = client.start(PHONE, "hi", false, "ap-11").await.unwrap_err();
    assert_eq!(
        (fault_code(&err), err.outcome()),
        (104, FaultOutcome::Misconfigured)
    );
}

#[tokio::test]
async fn over_long_text_is_refused_by_policy_or_truncated() {
    let (fx, mut cfg) = start().await;
    cfg.display_policy = DisplayPolicy::Reject;
    let long = "Confirm payment ".repeat(20);
    let client = MsspClient::new(cfg.clone()).unwrap();
    assert_eq!(
        client
            .start(PHONE, &long, false, "ap-12")
            .await
            .unwrap_err(),
        MsspError::TextTooLong
    );
    cfg.display_policy = DisplayPolicy::Truncate;
    let client = MsspClient::new(cfg).unwrap();
    client.start(PHONE, &long, false, "ap-13").await.unwrap();
    let shown = fx.pending(PHONE).await["pending"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(shown.len() <= 239 && shown.ends_with("..."), "{shown}");

    // The MSSP itself refuses what a client sends over the limit.
    let body = json!({"MSS_SignatureReq": {
        "AP_Info": {"AP_ID": "mid://mobileconnect", "AP_PWD": "ap-secret", "AP_TransID": "x"},
        "MobileUser": {"MSISDN": "+447700900303"},
        "DataToBeSigned": {"Data": "ж".repeat(120)},
        "SignatureProfile": "urn:profile:loa2",
        "MessagingMode": "asynchClientServer"
    }});
    let (code, fault) = fx.post_raw(&body.to_string()).await;
    assert_eq!(code, 500);
    assert_eq!(fault["Fault"]["Code"]["SubCode"]["Value"], "mss:_103");
}

#[tokio::test]
async fn malformed_requests_get_faults_not_crashes() {
    let (fx, cfg) = start().await;
    for (body, code) in [
        ("not json", "mss:_101"),
        ("{}", "mss:_102"),
        (r#"{"MSS_SignatureReq": {}}"#, "mss:_102"),
        (
            r#"{"MSS_StatusReq": {"AP_Info": {"AP_ID": "mid://mobileconnect", "AP_PWD": "ap-secret"}, "MSSP_TransID": "nope"}}"#,
            "mss:_101",
        ),
        (
            r#"{"MSS_SignatureReq": {"AP_Info": {"AP_ID": "mid://mobileconnect", "AP_PWD": "ap-secret"}, "MobileUser": {"MSISDN": "+447700900302"}, "DataToBeSigned": {"Data": "x"}, "SignatureProfile": "urn:profile:loa2", "MessagingMode": "synch"}}"#,
            "mss:_101",
        ),
        (
            r#"{"MSS_SignatureReq": {"AP_Info": {"AP_ID": "mid://mobileconnect", "AP_PWD": "ap-secret"}, "MobileUser": {"MSISDN": "+447700900302"}, "DataToBeSigned": {"Data": "x"}, "SignatureProfile": "urn:other", "MessagingMode": "asynchClientServer"}}"#,
            "mss:_109",
        ),
    ] {
        let (status, fault) = fx.post_raw(body).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(fault["Fault"]["Code"]["SubCode"]["Value"], code, "{body}");
    }
    let (code, _) = fx.answer(PHONE, json!({"nonsense": true})).await;
    assert_eq!(code, 400);
    // The client refuses a malformed number before any request.
    let client = MsspClient::new(cfg).unwrap();
    assert_eq!(
        client.start("12ab", "x", false, "ap-14").await.unwrap_err(),
        MsspError::BadMsisdn
    );
}

#[tokio::test]
async fn an_unreachable_mssp_is_a_channel_failure() {
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = MsspConfig::new(&format!("http://{addr}/mssp/rest/service"), "a", "b");
    let client = MsspClient::new(cfg).unwrap();
    let err = client.start(PHONE, "x", false, "ap-15").await.unwrap_err();
    assert!(matches!(err, MsspError::Transport(_)), "{err:?}");
    assert_eq!(err.outcome(), FaultOutcome::ChannelFailed);
}

/// The gateway sends a request again with the same `AP_TransID` after a crash: the MSSP
/// answers with the transaction the first one started and the SIM is asked once; the same
/// `AP_TransID` for a different request is refused.
#[tokio::test]
async fn a_retransmission_is_answered_with_its_transaction_and_asks_the_sim_once() {
    let sim = MsspSim::new(MsspSimConfig {
        ap_id: "mid://mobileconnect".into(),
        ap_password: "ap-secret".into(),
        profile_loa2: "urn:profile:loa2".into(),
        profile_loa3: "urn:profile:loa3".into(),
    });
    sim.add_sim(PHONE, "1234");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = sim.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cfg = MsspConfig::new(
        &format!("{base}/mssp/rest/service"),
        "mid://mobileconnect",
        "ap-secret",
    );
    cfg.profile_loa2 = "urn:profile:loa2".into();
    cfg.profile_loa3 = "urn:profile:loa3".into();
    let client = MsspClient::new(cfg).unwrap();

    let first = client
        .start(PHONE, "OnlineShopper: log in?", false, "session-1")
        .await
        .unwrap();
    let again = client
        .start(PHONE, "OnlineShopper: log in?", false, "session-1")
        .await
        .unwrap();
    assert_eq!(again.mssp_trans_id, first.mssp_trans_id);
    assert_eq!(sim.prompts(PHONE), 1, "the SIM is asked once");
    assert_eq!(sim.retransmissions(), 1);

    let other = client
        .start(PHONE, "OnlineShopper: pay 5 GBP?", false, "session-1")
        .await
        .unwrap_err();
    assert_eq!(fault_code(&other), 101);
    assert_eq!(sim.prompts(PHONE), 1);

    assert_eq!(client.status(&first).await.unwrap(), Status::Outstanding);
    assert_eq!(sim.status_queries(PHONE), 1);
}
