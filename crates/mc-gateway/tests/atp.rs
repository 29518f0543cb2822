#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Account-takeover protection (`mc_atp`, digest §8.4): a client-credentials token,
//! `User-ID-Type`/`User-ID` headers (MSISDN, encrypted MSISDN, PCR), answers from
//! provisioning data (SIM change within a window or as a date, lost/stolen, account
//! state), at `/atp` and CAMARA-style at `/userinfo`; authentication and input errors.

mod common;
mod flows;

use common::*;
use flows::*;
use mc_core::msisdn::Msisdn;
use mc_gateway::state::now;
use mc_store::ClientMetadata;
use serde_json::{Value, json};

/// Name/value pairs (headers or query parameters).
type Pairs<'a> = Vec<(&'a str, &'a str)>;

const SWAPPED: &str = "447700900302";
const STEADY: &str = "447700900301";
const STOLEN: &str = "447700900309";

struct Atp {
    g: Gateway,
    client_id: String,
    secret: String,
    redirect_uri: String,
}

async fn setup_with(tweak: impl FnOnce(&mut mc_gateway::config::GatewayConfig)) -> Atp {
    let g = Gateway::start_with(tweak).await;
    for m in [SWAPPED, STEADY, STOLEN] {
        g.subscriber(m, None).await;
    }
    let t = now();
    let docs = [
        (
            SWAPPED,
            json!({"sim_changed_at": t - 2 * 3600, "call_divert_active": true}),
        ),
        (
            STEADY,
            json!({"sim_changed_at": t - 40 * 86_400, "device_changed_at": 1_594_598_400}),
        ),
        (STOLEN, json!({"lost_stolen": true})),
    ];
    for (m, doc) in docs {
        mc_gateway::datagw::set_subscriber_attributes(g.store(), m, &doc, false)
            .await
            .unwrap();
    }
    mc_gateway::registry::update_subscriber(
        g.store(),
        STOLEN,
        Some(mc_store::SubscriberStatus::Suspended),
        None,
    )
    .await
    .unwrap();
    let spec = mc_gateway::registry::ClientSpec {
        client_id: None,
        name: "Bank Ltd".into(),
        short_name: "Bank".into(),
        redirect_uris: vec![format!("http://127.0.0.1:{}/cb/bank", g.addr.port())],
        scopes: vec!["openid".into(), "mc_authn".into(), "mc_atp".into()],
        sector_identifier_uri: Some("https://bank.example/sector.json".into()),
        metadata: ClientMetadata {
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        },
    };
    let (record, secret) = mc_gateway::registry::create_client(g.store(), &spec)
        .await
        .unwrap();
    Atp {
        redirect_uri: record.redirect_uris[0].clone(),
        client_id: record.client_id,
        secret,
        g,
    }
}

impl Atp {
    /// `POST /token grant_type=client_credentials scope=…`.
    async fn token(&self, scope: &str) -> String {
        let resp = post_token(
            &self.g,
            Some((&self.client_id, &self.secret)),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn ask(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> (u16, Value, Option<String>) {
        let mut req = self.g.http().post(format!("{}{path}", self.g.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !form.is_empty() {
            req = req.form(form);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let www = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, resp.json().await.unwrap_or(Value::Null), www)
    }

    async fn atp(&self, token: &str, kind: &str, id: &str) -> Value {
        let (status, body, _) = self
            .ask(
                "/atp",
                Some(token),
                &[("User-ID-Type", kind), ("User-ID", id)],
                &[],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

#[tokio::test]
async fn sim_change_lost_stolen_and_account_state_from_provisioning() {
    let a = setup_with(|_| {}).await;
    let t = a.token("mc_atp").await;

    let swapped = a.atp(&t, "msisdn", SWAPPED).await;
    assert_eq!(swapped["simChange"], "true", "{swapped}");
    assert_eq!(swapped["isLostStolen"], "false");
    assert_eq!(swapped["accountState"], "active");
    assert_eq!(swapped["isUncontidionalCallDivertActive"], "true");
    assert!(
        swapped["correlation_id"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );

    let steady = a.atp(&t, "MSISDN", &format!("+{STEADY}")).await;
    assert_eq!(steady["simChange"], "false", "40 days ago is outside 240 h");
    assert_eq!(steady["deviceChange"], "2020-07-13");

    let stolen = a.atp(&t, "msisdn", STOLEN).await;
    assert_eq!(stolen["isLostStolen"], "true");
    assert_eq!(stolen["accountState"], "inactive", "suspended");

    // maxAge (hours) narrows the window: 2 h ago is outside 1 h.
    let (status, body, _) = a
        .ask(
            "/atp",
            Some(&t),
            &[("User-ID-Type", "msisdn"), ("User-ID", SWAPPED)],
            &[("maxAge", "1"), ("correlation_id", "corr-atp-1")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["simChange"], "false");
    assert_eq!(body["correlation_id"], "corr-atp-1");

    // CAMARA posts to /userinfo with the same headers.
    let (status, body, _) = a
        .ask(
            "/userinfo",
            Some(&t),
            &[("user-id-type", "msisdn"), ("user-id", SWAPPED)],
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["simChange"], "true");
}

#[tokio::test]
async fn encrypted_msisdn_and_pcr_name_the_subscriber() {
    let a = setup_with(|_| {}).await;
    let t = a.token("mc_atp").await;
    let encrypted =
        a.g.state
            .keys
            .encrypt_msisdn(&Msisdn::parse(SWAPPED).unwrap())
            .unwrap();
    let body = a.atp(&t, "encr_msisdn", &encrypted).await;
    assert_eq!(body["simChange"], "true");

    // The PCR this client got from a login of the subscriber.
    let sp = Sp {
        client_id: a.client_id.clone(),
        secret: a.secret.clone(),
        redirect_uri: a.redirect_uri.clone(),
        short_name: "Bank".into(),
    };
    let code = code_for(&a.g, &sp, SWAPPED, |_| {}).await;
    let tokens = redeem(&a.g, &sp, &code).await;
    let pcr = jwt_claims(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = a.atp(&t, "pcr", &pcr).await;
    assert_eq!(body["simChange"], "true");
    // A login token is not an ATP token.
    let (status, body, www) = a
        .ask(
            "/atp",
            tokens["access_token"].as_str(),
            &[("User-ID-Type", "msisdn"), ("User-ID", SWAPPED)],
            &[],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    assert!(www.unwrap().contains("insufficient_scope"));
}

#[tokio::test]
async fn sim_change_as_a_date_when_configured() {
    let a = setup_with(|c| c.datagw.atp.sim_change_format = "date".into()).await;
    let t = a.token("mc_atp").await;
    let body = a.atp(&t, "msisdn", SWAPPED).await;
    let today = mc_datagw::attributes::date_of(now() - 2 * 3600).unwrap();
    assert_eq!(body["simChange"], today);
}

#[tokio::test]
async fn authentication_and_input_errors() {
    let a = setup_with(|_| {}).await;
    let t = a.token("mc_atp").await;
    let hdr = [("User-ID-Type", "msisdn"), ("User-ID", SWAPPED)];
    // As long as an RSA-2048 ciphertext, but not one.
    let garbage = "ab".repeat(256);

    let (status, body, www) = a.ask("/atp", None, &hdr, &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(www.unwrap().contains("No Access Token"));
    let (status, body, _) = a.ask("/atp", Some("forged"), &hdr, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );

    // (headers, query, the error_description expected)
    let cases: Vec<(Pairs, Pairs, &str)> = vec![
        (
            vec![("User-ID", SWAPPED)],
            vec![],
            "Mandatory header User-ID-Type is missing",
        ),
        (
            vec![("User-ID-Type", "msisdn")],
            vec![],
            "Mandatory header User-ID is missing",
        ),
        (
            vec![("User-ID-Type", "imsi"), ("User-ID", SWAPPED)],
            vec![],
            "User-ID-Type must be msisdn, encr_msisdn or pcr",
        ),
        (
            vec![("User-ID-Type", "msisdn"), ("User-ID", "not-a-number")],
            vec![],
            "User-ID is not an MSISDN",
        ),
        (
            vec![("User-ID-Type", "encr_msisdn"), ("User-ID", "00ff")],
            vec![],
            "User-ID is not an encrypted MSISDN",
        ),
        (
            vec![("User-ID-Type", "encr_msisdn"), ("User-ID", &garbage)],
            vec![],
            "User-ID could not be decrypted",
        ),
        (
            hdr.to_vec(),
            vec![("maxAge", "0")],
            "maxAge must be 1 to 2400 hours",
        ),
        (
            hdr.to_vec(),
            vec![("maxAge", "2401")],
            "maxAge must be 1 to 2400 hours",
        ),
    ];
    for (headers, form, text) in cases {
        let (status, body, _) = a.ask("/atp", Some(&t), &headers, &form).await;
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["error_description"], text);
    }
    // An unknown number (and a PCR of nobody) cannot be answered.
    for (kind, id) in [("msisdn", "447700900999"), ("pcr", "NOT-A-PCR")] {
        let (status, body, _) = a
            .ask(
                "/atp",
                Some(&t),
                &[("User-ID-Type", kind), ("User-ID", id)],
                &[],
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "unknown_user_id");
    }
    // An ATP token reads no identity claims.
    let (status, body, _) = a.ask("/premiuminfo", Some(&t), &[], &[]).await;
    assert_eq!(status, 403, "{body}");
}
