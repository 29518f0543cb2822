//! Nothing lost (issue 3, item 8): an SMS or a SIM applet (MSSP) request that the gateway
//! accepted is sent exactly once even when `mobileconnect serve` is killed with SIGKILL
//! before it went out, and the login completes after the restart on the same data.
//!
//! The SMSC and the MSSP run in this test process (the sandbox's SMPP server and its
//! TS 102 204 MSSP with virtual SIMs), so the test controls what reaches them:
//!
//! * **SMS**: the SMSC is not up when the login is accepted (the outbox worker leases
//!   nothing while its link is down), the binary is killed, the SMSC comes up, the binary
//!   starts again: the SMSC receives that SMS exactly once, and its code completes the
//!   login. "Exactly once" is read when the outbox is empty (`sms_outbox_depth` 0: a row is
//!   deleted only after `submit_sm_resp`), so no later send can follow.
//! * **MSSP**, three logins in flight at the kill: one whose signature request is held
//!   before it reaches the MSSP, one whose request the MSSP took but whose answer is held
//!   (the gateway never learnt the MSSP's transaction id), and one being polled. After the
//!   restart every SIM was asked exactly once (the second login's request is sent again with
//!   the same `AP_TransID` and the MSSP answers with the original transaction), each SIM's
//!   answer completes its login with `amr` `SIM_OK`, and no MSSP request is left
//!   (`mssp_outbox_depth` 0) nor any subscriber busy.
//!
//! Runs on SQLite (always) and on PostgreSQL (with `MC_TEST_POSTGRES_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mc_sandbox::mssp::{MsspSim, MsspSimConfig};
use mc_sandbox::smsc::{Smsc, SmscConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use support::*;

const AP_ID: &str = "mid://gateway.outbox-kill.test";
const AP_PASSWORD: &str = "ap-pw-outbox-kill";
const PROFILE_LOA2: &str = "http://mobileconnect/mssp/profile/loa2";
const PROFILE_LOA3: &str = "http://mobileconnect/mssp/profile/loa3";
const SMPP_SYSTEM_ID: &str = "mcgw";
const SMPP_PASSWORD: &str = "smspw";

/// The SMS subscriber.
const SMS_MSISDN: &str = "447700960001";
/// Signature request held before it reaches the MSSP.
const SIM_HELD_REQUEST: &str = "447700960101";
/// Signature request taken by the MSSP, its answer held.
const SIM_HELD_ANSWER: &str = "447700960102";
/// Being polled at the kill.
const SIM_POLLED: &str = "447700960103";

// ---------------------------------------------------------------------------------------
// The MSSP behind a gate
// ---------------------------------------------------------------------------------------

/// What the gate does with a signature request for one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Keeps the request from the MSSP (never answered).
    Request,
    /// Passes the request to the MSSP and keeps its answer from the gateway.
    Answer,
}

#[derive(Default)]
struct GateState {
    holds: HashMap<String, Hold>,
    /// `AP_TransID` (the gateway's session id) of each held request, by number.
    held: HashMap<String, String>,
    /// Signature requests that reached the gate, by number (retransmissions included).
    signature_requests: HashMap<String, usize>,
}

/// The sandbox MSSP (served on its own port: its service and handset API) and, in front
/// of its service, a gate that the gateway is configured with.
struct Mssp {
    sim: MsspSim,
    /// The MSSP itself (handset API: `/mssp/sim/{msisdn}`).
    inner: String,
    /// The gate's service URL.
    service_url: String,
    gate: Arc<Mutex<GateState>>,
    http: reqwest::Client,
}

#[derive(Clone)]
struct Gate {
    state: Arc<Mutex<GateState>>,
    forward_to: String,
    http: reqwest::Client,
}

async fn gate(State(g): State<Gate>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let signature = request.get("MSS_SignatureReq");
    let msisdn = signature
        .and_then(|r| r.pointer("/MobileUser/MSISDN"))
        .and_then(Value::as_str)
        .map(|m| m.trim_start_matches('+').to_owned());
    let hold = msisdn.as_ref().and_then(|m| {
        let mut st = g.state.lock().unwrap();
        *st.signature_requests.entry(m.clone()).or_default() += 1;
        st.holds.get(m).copied()
    });
    let note_held = || {
        let ap_trans_id = signature
            .and_then(|r| r.pointer("/AP_Info/AP_TransID"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let m = msisdn.clone().unwrap_or_default();
        g.state.lock().unwrap().held.insert(m, ap_trans_id);
    };
    if hold == Some(Hold::Request) {
        note_held();
        // Until the gateway's connection goes (its process is killed).
        std::future::pending::<()>().await;
    }
    let answer = g
        .http
        .post(&g.forward_to)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = AxumStatus::from_u16(answer.status().as_u16()).unwrap();
    let bytes = answer.bytes().await.unwrap();
    if hold == Some(Hold::Answer) {
        note_held();
        std::future::pending::<()>().await;
    }
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

impl Mssp {
    async fn start(sims: &[&str]) -> Mssp {
        let sim = MsspSim::new(MsspSimConfig {
            ap_id: AP_ID.into(),
            ap_password: AP_PASSWORD.into(),
            profile_loa2: PROFILE_LOA2.into(),
            profile_loa3: PROFILE_LOA3.into(),
        });
        for m in sims {
            sim.add_sim(&format!("+{m}"), "2468");
        }
        let inner_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let inner = format!("http://{}", inner_listener.local_addr().unwrap());
        let app = sim.router();
        tokio::spawn(async move { axum::serve(inner_listener, app).await });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let state = Arc::new(Mutex::new(GateState::default()));
        let gate_app = Router::new()
            .route("/mssp/rest/service", post(gate))
            .with_state(Gate {
                state: state.clone(),
                forward_to: format!("{inner}/mssp/rest/service"),
                http: http.clone(),
            });
        let gate_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service_url = format!(
            "http://{}/mssp/rest/service",
            gate_listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(gate_listener, gate_app).await });
        Mssp {
            sim,
            inner,
            service_url,
            gate: state,
            http,
        }
    }

    fn hold(&self, msisdn: &str, hold: Option<Hold>) {
        let mut st = self.gate.lock().unwrap();
        match hold {
            Some(h) => st.holds.insert(msisdn.to_owned(), h),
            None => st.holds.remove(msisdn),
        };
    }

    fn held(&self, msisdn: &str) -> Option<String> {
        self.gate.lock().unwrap().held.get(msisdn).cloned()
    }

    fn signature_requests(&self, msisdn: &str) -> usize {
        let st = self.gate.lock().unwrap();
        st.signature_requests.get(msisdn).copied().unwrap_or(0)
    }

    /// The transaction waiting on the SIM of `msisdn`, if one is.
    async fn pending_on_sim(&self, msisdn: &str) -> Option<String> {
        let v: Value = self
            .http
            .get(format!("{}/mssp/sim/+{msisdn}", self.inner))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["pending"][0]["trans_id"].as_str().map(str::to_owned)
    }

    /// OK on the SIM of `msisdn` (LoA2: no PIN).
    async fn press_ok(&self, msisdn: &str) {
        let trans_id = eventually(
            &format!("a prompt on the SIM of {msisdn}"),
            DEADLINE,
            || self.pending_on_sim(msisdn),
        )
        .await;
        let r = self
            .http
            .post(format!("{}/mssp/sim/+{msisdn}/answer", self.inner))
            .json(&json!({"trans_id": trans_id, "accept": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
}

// ---------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------

async fn provision_with(http: &reqwest::Client, base: &str, msisdn: &str, capability: &str) {
    let r = http
        .post(format!("{base}/admin/v1/subscribers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"msisdn": format!("+{msisdn}"), "capabilities": [capability]}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// A metric of `base`'s `/metrics`.
async fn metric_of(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    metric(&text, name)
}

/// The waiting page of `session` leads to the SP with a code; the code's tokens; the
/// id_token's `amr`.
async fn finish_login(http: &reqwest::Client, base: &str, sp: &Sp, session: &str) -> Vec<String> {
    let location = wait_for_redirect(http, base, session, None)
        .await
        .unwrap_or_else(|e| panic!("login {session}: {e:?}"));
    let query = query_of(&location);
    let code = query
        .get("code")
        .unwrap_or_else(|| panic!("no code in {location}"));
    let (status, tokens) = redeem(http, base, sp, code, None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    claims["amr"]
        .as_array()
        .unwrap_or_else(|| panic!("no amr: {claims}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn node_spec(dir: &TempDir, database_url: String, extra_toml: String) -> NodeSpec {
    NodeSpec {
        database_url,
        kek_file: dir.join("kek.hex"),
        json_logs: false,
        extra_toml,
    }
}

// ---------------------------------------------------------------------------------------
// SMS
// ---------------------------------------------------------------------------------------

async fn sms_sent_exactly_once_after_kill(dir: &TempDir, database_url: String) {
    // The SMSC's address is reserved, but nothing listens there yet.
    let smsc_port = free_port();
    let extra = format!(
        r#"[gateway.authenticators]
enabled = ["sms_otp"]

[gateway.authenticators.chains]
"2" = ["sms_otp"]

[gateway.authenticators.sms]
smsc_address = "127.0.0.1:{smsc_port}"
system_id = "{SMPP_SYSTEM_ID}"
password = "{SMPP_PASSWORD}"
"#
    );
    let spec = node_spec(dir, database_url, extra);
    let mut node = start_serve(dir.path(), "sms-before", &spec, None).await;
    let http = client();
    let sp = register_sp(&http, &node.base, "SmsKillShop", json!({})).await;
    provision_with(&http, &node.base, SMS_MSISDN, "sms").await;

    // Accepted: the waiting page is shown, so the challenge and its SMS are committed.
    let session = authorize(&http, &node.base, &sp, SMS_MSISDN, "sms-kill", None)
        .await
        .unwrap();
    assert_eq!(
        metric_of(&http, &node.base, "sms_outbox_depth").await,
        Some(1.0),
        "the accepted login's SMS waits in the outbox (no SMSC yet)"
    );
    node.kill9();

    let smsc = Smsc::start(
        &format!("127.0.0.1:{smsc_port}"),
        SmscConfig::new(SMPP_SYSTEM_ID, SMPP_PASSWORD),
    )
    .await
    .unwrap();
    let mut inbox = smsc.subscribe();
    let node = start_serve(dir.path(), "sms-after", &spec, Some(node.port)).await;

    let sms = tokio::time::timeout(DEADLINE, inbox.recv())
        .await
        .expect("the SMS after the restart")
        .unwrap();
    assert_eq!(sms.to, format!("+{SMS_MSISDN}"));
    let code: String = sms
        .text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit code in {:?}", sms.text))
        .to_owned();

    // The row is deleted only after the SMSC accepted the SMS: once the outbox is empty,
    // nothing more can be sent for this login.
    eventually("the SMS outbox is empty", DEADLINE, || async {
        (metric_of(&http, &node.base, "sms_outbox_depth").await == Some(0.0)).then_some(())
    })
    .await;
    assert_eq!(
        smsc.stats()
            .submits
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the SMSC received the SMS exactly once"
    );
    assert!(
        inbox.try_recv().is_err(),
        "no second SMS reached the handset"
    );

    // The code from the SMS completes the login.
    let r = http
        .post(format!("{}/authorize/wait/{session}/otp", node.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("code", &code)]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let amr = finish_login(&http, &node.base, &sp, &session).await;
    assert_eq!(amr, vec!["OTP_OK".to_owned()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_an_accepted_sms_is_sent_exactly_once_after_kill_9() {
    let dir = TempDir::new("outbox-kill-sms-sqlite");
    let url = format!("sqlite:{}", dir.join("data/mobileconnect.db").display());
    sms_sent_exactly_once_after_kill(&dir, url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_an_accepted_sms_is_sent_exactly_once_after_kill_9() {
    let Some(server) = pg_server("postgres_an_accepted_sms_is_sent_exactly_once_after_kill_9")
    else {
        return;
    };
    let dir = TempDir::new("outbox-kill-sms-pg");
    let schema = PgSchema::create(server, "outbox_sms").await;
    sms_sent_exactly_once_after_kill(&dir, schema.url()).await;
    schema.drop_schema().await;
}

// ---------------------------------------------------------------------------------------
// MSSP
// ---------------------------------------------------------------------------------------

async fn mssp_requests_survive_kill(dir: &TempDir, database_url: String) {
    let sims = [SIM_HELD_REQUEST, SIM_HELD_ANSWER, SIM_POLLED];
    let mssp = Mssp::start(&sims).await;
    let extra = format!(
        r#"[gateway.authenticators]
enabled = ["sim_applet"]

[gateway.authenticators.chains]
"2" = ["sim_applet"]

[gateway.authenticators.sim_applet]
mssp_url = "{url}"
ap_id = "{AP_ID}"
ap_password = "{AP_PASSWORD}"
transaction_timeout_secs = 120
poll_interval_millis = 200
outbox_lease_secs = 2
"#,
        url = mssp.service_url
    );
    let spec = node_spec(dir, database_url, extra);
    let mut node = start_serve(dir.path(), "mssp-before", &spec, None).await;
    let http = client();
    let sp = register_sp(&http, &node.base, "SimKillShop", json!({})).await;
    for m in sims {
        provision_with(&http, &node.base, m, "sim_applet").await;
    }

    // Being polled: the MSSP took it and answered with its transaction id (stored before
    // the first status query).
    let polled = authorize(&http, &node.base, &sp, SIM_POLLED, "polled", None)
        .await
        .unwrap();
    eventually("the polled login's status queries", DEADLINE, || async {
        (mssp.sim.status_queries(&format!("+{SIM_POLLED}")) > 0).then_some(())
    })
    .await;

    // Accepted but not sent: `/authorize` waits for the MSSP, which never answers.
    mssp.hold(SIM_HELD_REQUEST, Some(Hold::Request));
    mssp.hold(SIM_HELD_ANSWER, Some(Hold::Answer));
    let mut in_flight = Vec::new();
    for m in [SIM_HELD_REQUEST, SIM_HELD_ANSWER] {
        let (http, base, sp) = (http.clone(), node.base.clone(), sp.clone());
        in_flight.push(tokio::spawn(async move {
            authorize(&http, &base, &sp, m, m, None).await
        }));
    }
    let held_request = eventually("the held signature request", DEADLINE, || async {
        mssp.held(SIM_HELD_REQUEST)
    })
    .await;
    let held_answer = eventually("the held MSSP answer", DEADLINE, || async {
        mssp.held(SIM_HELD_ANSWER)
    })
    .await;
    assert_eq!(mssp.sim.prompts(&format!("+{SIM_HELD_REQUEST}")), 0);
    assert_eq!(mssp.sim.prompts(&format!("+{SIM_HELD_ANSWER}")), 1);

    node.kill9();
    for t in in_flight {
        assert!(
            t.await.unwrap().is_err(),
            "an /authorize cut by the kill has no answer"
        );
    }
    mssp.hold(SIM_HELD_REQUEST, None);
    mssp.hold(SIM_HELD_ANSWER, None);
    // Answered while the gateway is down: the restarted one finds the answers at the MSSP.
    mssp.press_ok(SIM_POLLED).await;
    mssp.press_ok(SIM_HELD_ANSWER).await;

    let node = start_serve(dir.path(), "mssp-after", &spec, Some(node.port)).await;
    // Sent again after the restart (the same AP_TransID), then answered on the SIM.
    mssp.press_ok(SIM_HELD_REQUEST).await;

    // The AP_TransID is the login's session id: its waiting page gives the code.
    for (msisdn, session) in [
        (SIM_POLLED, &polled),
        (SIM_HELD_ANSWER, &held_answer),
        (SIM_HELD_REQUEST, &held_request),
    ] {
        let amr = finish_login(&http, &node.base, &sp, session).await;
        assert_eq!(amr, vec!["SIM_OK".to_owned()], "{msisdn}");
    }

    for m in sims {
        assert_eq!(
            mssp.sim.prompts(&format!("+{m}")),
            1,
            "{m}: the SIM was asked exactly once"
        );
    }
    assert_eq!(
        mssp.sim.retransmissions(),
        1,
        "the request whose answer was lost was sent again and recognised"
    );
    assert_eq!(mssp.signature_requests(SIM_POLLED), 1, "never sent again");
    assert_eq!(mssp.signature_requests(SIM_HELD_ANSWER), 2);
    assert_eq!(mssp.signature_requests(SIM_HELD_REQUEST), 2);

    // Nothing left: no MSSP request, and each subscriber can log in again.
    eventually("no MSSP request left", DEADLINE, || async {
        (metric_of(&http, &node.base, "mssp_outbox_depth").await == Some(0.0)).then_some(())
    })
    .await;
    for m in sims {
        let again = authorize(&http, &node.base, &sp, m, &format!("{m}-again"), None).await;
        assert!(again.is_ok(), "{m} is not left busy: {again:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_mssp_requests_are_sent_once_and_polled_on_after_kill_9() {
    let dir = TempDir::new("outbox-kill-mssp-sqlite");
    let url = format!("sqlite:{}", dir.join("data/mobileconnect.db").display());
    mssp_requests_survive_kill(&dir, url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_mssp_requests_are_sent_once_and_polled_on_after_kill_9() {
    let Some(server) = pg_server("postgres_mssp_requests_are_sent_once_and_polled_on_after_kill_9")
    else {
        return;
    };
    let dir = TempDir::new("outbox-kill-mssp-pg");
    let schema = PgSchema::create(server, "outbox_mssp").await;
    mssp_requests_survive_kill(&dir, schema.url()).await;
    schema.drop_schema().await;
}
