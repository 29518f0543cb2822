//! The SIM applet authenticator through the gateway, against the sandbox MSSP over
//! loopback: LoA2 "OK" and LoA3 SIM PIN logins end in id_tokens with `amr` SIM_OK /
//! SIM_PIN; chains fall back to app push when the SIM channel cannot start (no SIM at the
//! MSSP) or times out, and a cancel on the SIM denies the login.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../mc-gateway/tests/common/mod.rs"]
mod common;
#[path = "../../mc-gateway/tests/flows/mod.rs"]
mod flows;

use common::*;
use flows::*;
use mc_authn::answer::AnswerOutcome;
use mc_gateway::config::{GatewayConfig, SimAppletConfig};
use mc_gateway::registry::{self, SubscriberSpec};
use mc_sandbox::mssp::{MsspSim, MsspSimConfig};
use serde_json::{Value, json};

const AP_ID: &str = "mid://gateway";
const AP_PASSWORD: &str = "ap-secret";
/// Subscribers with an applet SIM at the MSSP, and one that says it has one but the MSSP
/// does not know it (the start fails).
const SIM_2: &str = "+447700900401";
const SIM_3: &str = "+447700900402";
const NO_SIM_AT_MSSP: &str = "+447700900403";
const SIM_PIN: &str = "2468";

struct Mssp {
    base: String,
    http: reqwest::Client,
}

impl Mssp {
    async fn start() -> Mssp {
        // The profiles the gateway's MSSP client sends by default.
        let defaults = mc_authn::mssp::MsspConfig::new("http://x/", AP_ID, AP_PASSWORD);
        let sim = MsspSim::new(MsspSimConfig {
            ap_id: AP_ID.into(),
            ap_password: AP_PASSWORD.into(),
            profile_loa2: defaults.profile_loa2,
            profile_loa3: defaults.profile_loa3,
        });
        sim.add_sim(SIM_2, SIM_PIN);
        sim.add_sim(SIM_3, SIM_PIN);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = sim.router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Mssp {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// The SIM's one outstanding transaction (the gateway started it before answering the
    /// authorization request, so it is there at once).
    async fn outstanding(&self, msisdn: &str) -> Value {
        let v: Value = self
            .http
            .get(format!("{}/mssp/sim/{msisdn}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pending = v["pending"].as_array().cloned().unwrap_or_default();
        assert_eq!(pending.len(), 1, "one transaction on the SIM: {v}");
        pending[0].clone()
    }

    async fn post(&self, msisdn: &str, what: &str, body: Value) -> Value {
        self.http
            .post(format!("{}/mssp/sim/{msisdn}/{what}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A gateway whose LoA2 and LoA3 chains are SIM applet, then app push.
async fn gateway(mssp: &Mssp, next_start_delay_secs: u32) -> Gateway {
    let url = format!("{}/mssp/rest/service", mssp.base);
    let g = Gateway::start_with(move |c: &mut GatewayConfig| {
        c.authenticators.enabled = vec!["sim_applet".into(), "app_push".into()];
        c.authenticators.chains = [
            (
                "2".to_string(),
                vec!["sim_applet".into(), "app_push".into()],
            ),
            (
                "3".to_string(),
                vec!["sim_applet".into(), "app_push".into()],
            ),
        ]
        .into();
        c.authenticators.next_start_delay_secs = next_start_delay_secs;
        c.authenticators.sim_applet = Some(SimAppletConfig {
            mssp_url: url,
            ap_id: AP_ID.into(),
            ap_password: AP_PASSWORD.into(),
            mssp_id: None,
            profile_loa2: None,
            profile_loa3: None,
            transaction_timeout_secs: 30,
            poll_interval_millis: 100,
            display_text: "truncate".into(),
            outbox_lease_secs: 30,
        });
    })
    .await;
    for msisdn in [SIM_2, SIM_3, NO_SIM_AT_MSSP] {
        registry::create_subscriber(
            g.store(),
            &SubscriberSpec {
                msisdn: msisdn.into(),
                pin: Some("1357".into()),
                capabilities: vec!["sim_applet".into(), "app_push".into()],
            },
        )
        .await
        .unwrap();
    }
    g
}

/// GET /authorize; the 302 to the waiting page (the challenge has been started).
async fn authorize(g: &Gateway, q: &Q) -> String {
    let r = g.http().get(q.url(g)).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    location(&g.base, &r).unwrap()
}

/// `amr` and `acr` of the id_token the code of `back` redeems for.
async fn amr_acr(g: &Gateway, sp: &Sp, back: &str) -> (Vec<String>, String) {
    let code = query_of(back)
        .get("code")
        .unwrap_or_else(|| panic!("no code in {back}"))
        .clone();
    let tokens = redeem(g, sp, &code).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    let amr = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (amr, claims["acr"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn loa2_is_ok_on_the_sim_and_the_id_token_says_sim_ok() {
    let mssp = Mssp::start().await;
    let g = gateway(&mssp, 60).await;
    let sp = g.shop().await;
    let wait = authorize(&g, &Q::valid(&sp, SIM_2)).await;
    let tx = mssp.outstanding(SIM_2).await;
    assert!(
        tx["text"].as_str().unwrap().starts_with("OnlineShopper"),
        "{tx}"
    );
    assert_eq!(tx["pin_required"], false);
    let done = mssp
        .post(
            SIM_2,
            "answer",
            json!({"trans_id": tx["trans_id"], "accept": true}),
        )
        .await;
    assert_eq!(done["outcome"], "signed");
    let back = follow_to_redirect_uri(&g, &wait, &sp.redirect_uri).await;
    let (amr, acr) = amr_acr(&g, &sp, &back).await;
    assert_eq!(amr, ["SIM_OK"]);
    assert_eq!(acr, "2");
}

#[tokio::test]
async fn loa3_is_the_sim_pin_checked_by_the_card() {
    let mssp = Mssp::start().await;
    let g = gateway(&mssp, 60).await;
    let sp = g.shop().await;
    let mut q = Q::valid(&sp, SIM_3);
    q.set("acr_values", "3");
    let wait = authorize(&g, &q).await;
    let tx = mssp.outstanding(SIM_3).await;
    assert_eq!(tx["pin_required"], true);
    let wrong = mssp
        .post(
            SIM_3,
            "answer",
            json!({"trans_id": tx["trans_id"], "accept": true, "pin": "0000"}),
        )
        .await;
    assert_eq!(wrong["error"], "wrong PIN", "{wrong}");
    mssp.post(
        SIM_3,
        "answer",
        json!({"trans_id": tx["trans_id"], "accept": true, "pin": SIM_PIN}),
    )
    .await;
    let back = follow_to_redirect_uri(&g, &wait, &sp.redirect_uri).await;
    let (amr, acr) = amr_acr(&g, &sp, &back).await;
    assert_eq!(amr, ["SIM_PIN"]);
    assert_eq!(acr, "3");
}

#[tokio::test]
async fn cancel_on_the_sim_denies_the_login() {
    let mssp = Mssp::start().await;
    let g = gateway(&mssp, 60).await;
    let sp = g.shop().await;
    let wait = authorize(&g, &Q::valid(&sp, SIM_2)).await;
    let tx = mssp.outstanding(SIM_2).await;
    mssp.post(
        SIM_2,
        "answer",
        json!({"trans_id": tx["trans_id"], "accept": false}),
    )
    .await;
    let back = follow_to_redirect_uri(&g, &wait, &sp.redirect_uri).await;
    assert_eq!(error_of(&back).0, "access_denied", "{back}");
}

#[tokio::test]
async fn a_sim_the_mssp_does_not_know_hands_over_to_app_push_at_once() {
    let mssp = Mssp::start().await;
    // A long delay: only the immediate hand-over on a start failure can reach the app.
    let g = gateway(&mssp, 600).await;
    let sp = g.shop().await;
    let phone = g.phone(NO_SIM_AT_MSSP);
    let answer = tokio::spawn(async move { phone.approve_next().await });
    let back =
        follow_to_redirect_uri(&g, &Q::valid(&sp, NO_SIM_AT_MSSP).url(&g), &sp.redirect_uri).await;
    answer.await.unwrap();
    let (amr, acr) = amr_acr(&g, &sp, &back).await;
    assert_eq!(amr, ["PUSH_OK"]);
    assert_eq!(acr, "2");
}

#[tokio::test]
async fn a_sim_that_times_out_leaves_the_login_to_app_push_with_pin_at_loa3() {
    let mssp = Mssp::start().await;
    let g = gateway(&mssp, 0).await;
    let sp = g.shop().await;
    let mut q = Q::valid(&sp, SIM_3);
    q.set("acr_values", "3");
    let wait = authorize(&g, &q).await;
    let tx = mssp.outstanding(SIM_3).await;
    // The SIM never answers: its transaction times out at the MSSP.
    let expired = mssp
        .post(SIM_3, "expire", json!({"trans_id": tx["trans_id"]}))
        .await;
    assert_eq!(expired["outcome"], "expired");
    // The login stays open for the next authenticator of the chain, the app, with the PIN.
    let (c, outcome) = g.phone(SIM_3).approve_next_with_pin("1357").await;
    assert_eq!(outcome, AnswerOutcome::Approved, "{c:?}");
    let back = follow_to_redirect_uri(&g, &wait, &sp.redirect_uri).await;
    let (amr, acr) = amr_acr(&g, &sp, &back).await;
    assert_eq!(amr, ["PUSH_PIN"]);
    assert_eq!(acr, "3");
    // The SIM's late answer finds the login over.
    let late = g.phone(SIM_3).pending().await;
    assert!(late.is_empty(), "{late:?}");
}

#[tokio::test]
async fn a_service_provider_chain_of_its_own_skips_the_sim() {
    let mssp = Mssp::start().await;
    let g = gateway(&mssp, 600).await;
    let spec = registry::ClientSpec {
        client_id: None,
        name: "AppOnly Ltd".into(),
        short_name: "AppOnly".into(),
        redirect_uris: vec![format!("http://127.0.0.1:{}/cb/AppOnly", g.addr.port())],
        scopes: vec!["openid".into(), "mc_authn".into()],
        sector_identifier_uri: None,
        metadata: mc_store::ClientMetadata {
            authenticator_chains: [("2".to_string(), vec!["app_push".into()])].into(),
            ..Default::default()
        },
    };
    let (record, secret) = registry::create_client(g.store(), &spec).await.unwrap();
    let sp = Sp {
        client_id: record.client_id,
        secret,
        redirect_uri: spec.redirect_uris[0].clone(),
        short_name: "AppOnly".into(),
    };
    let wait = authorize(&g, &Q::valid(&sp, SIM_2)).await;
    let sim: Value = mssp
        .http
        .get(format!("{}/mssp/sim/{SIM_2}", mssp.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sim["pending"], json!([]), "the SIM was not asked: {sim}");
    g.phone(SIM_2).approve_next().await;
    let back = follow_to_redirect_uri(&g, &wait, &sp.redirect_uri).await;
    assert_eq!(amr_acr(&g, &sp, &back).await.0, ["PUSH_OK"]);

    // A chain naming an authenticator the gateway does not know is refused at registration.
    let bad = registry::ClientSpec {
        metadata: mc_store::ClientMetadata {
            authenticator_chains: [("2".to_string(), vec!["carrier_pigeon".into()])].into(),
            ..Default::default()
        },
        ..spec
    };
    let err = registry::create_client(g.store(), &bad).await.unwrap_err();
    assert!(
        format!("{err:?}").contains("authenticator_chains"),
        "{err:?}"
    );
}
