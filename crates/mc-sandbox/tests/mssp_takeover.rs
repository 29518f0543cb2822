//! The take-over of durable MSSP requests, in process, against the sandbox MSSP: the branch
//! the binary kill test (`crates/mobileconnect/tests/outbox_kill.rs`) cannot reach with the
//! sandbox MSSP — a request sent again after a crash whose `AP_TransID` the MSSP refuses
//! ends the SIM step (the request is deleted, the SIM is not asked again, the login stays
//! open for its other channels).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../mc-gateway/tests/common/mod.rs"]
mod common;
#[path = "../../mc-gateway/tests/flows/mod.rs"]
mod flows;

use std::time::{Duration, Instant};

use common::*;
use flows::*;
use mc_gateway::config::{GatewayConfig, SimAppletConfig};
use mc_gateway::registry::{self, SubscriberSpec};
use mc_sandbox::mssp::{MsspSim, MsspSimConfig};
use mc_store::{MsspRequestRecord, SessionStatus};

const AP_ID: &str = "mid://gateway";
const AP_PASSWORD: &str = "ap-secret";
const SIM: &str = "+447700900411";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Re-checks `f` every 25 ms until it holds (bounded).
async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "not within 30 s: {what}");
        // Polling interval of the condition (not a synchronisation).
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_the_mssp_refuses_ends_the_sim_step_and_asks_the_sim_no_second_time() {
    let defaults = mc_authn::mssp::MsspConfig::new("http://x/", AP_ID, AP_PASSWORD);
    let sim = MsspSim::new(MsspSimConfig {
        ap_id: AP_ID.into(),
        ap_password: AP_PASSWORD.into(),
        profile_loa2: defaults.profile_loa2,
        profile_loa3: defaults.profile_loa3,
    });
    sim.add_sim(SIM, "2468");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/mssp/rest/service",
        listener.local_addr().unwrap()
    );
    let app = sim.router();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let g = Gateway::start_with(move |c: &mut GatewayConfig| {
        c.authenticators.enabled = vec!["sim_applet".into(), "app_push".into()];
        c.authenticators.chains = [(
            "2".to_string(),
            vec!["sim_applet".into(), "app_push".into()],
        )]
        .into();
        c.authenticators.next_start_delay_secs = 600;
        c.authenticators.sim_applet = Some(SimAppletConfig {
            mssp_url: url,
            ap_id: AP_ID.into(),
            ap_password: AP_PASSWORD.into(),
            mssp_id: None,
            profile_loa2: None,
            profile_loa3: None,
            transaction_timeout_secs: 120,
            poll_interval_millis: 100,
            display_text: "truncate".into(),
            outbox_lease_secs: 2,
        });
    })
    .await;
    registry::create_subscriber(
        g.store(),
        &SubscriberSpec {
            msisdn: SIM.into(),
            pin: None,
            capabilities: vec!["sim_applet".into(), "app_push".into()],
        },
    )
    .await
    .unwrap();
    let sp = g.shop().await;
    let r = g
        .http()
        .get(Q::valid(&sp, SIM).url(&g))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let wait = location(&g.base, &r).unwrap();
    let session = wait.rsplit('/').next().unwrap().to_owned();
    let store = g.store();
    let first = store.get_mssp_request(&session).await.unwrap().unwrap();
    assert!(
        first.mssp_trans_id.is_some(),
        "the MSSP's transaction id is stored once it took the request"
    );
    assert_eq!(first.ap_trans_id, session, "AP_TransID is the session id");
    assert_eq!(sim.prompts(SIM), 1);

    // As if this node had died before storing the MSSP's answer, and the request read
    // differently (so the MSSP cannot take it for a retransmission): a lapsed lease, no
    // transaction id, another text under the same AP_TransID.
    store.complete_mssp_request(&session).await.unwrap();
    let now = unix_now();
    store
        .create_mssp_request(&MsspRequestRecord {
            text: "OnlineShopper: something else? Press OK to confirm.".into(),
            mssp_trans_id: None,
            lease_owner: "a-node-that-died".into(),
            lease_until: now - 1,
            ..first.clone()
        })
        .await
        .unwrap();

    // The take-over worker sends it again; the MSSP refuses the reused AP_TransID
    // (101 WRONG_PARAM): the SIM step is over and the request gone.
    until("the refused request is deleted", || async {
        store.get_mssp_request(&session).await.unwrap().is_none()
    })
    .await;
    assert_eq!(sim.prompts(SIM), 1, "the SIM is never asked a second time");
    let s = store.get_session(&session).await.unwrap().unwrap();
    assert_eq!(
        s.status,
        SessionStatus::Pending,
        "the login stays open for its other channels"
    );
}
