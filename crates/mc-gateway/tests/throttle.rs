//! The Access Gateway's per-SP quotas over HTTP: per second (in-memory, per node) and per
//! day (in the store, shared by every node), `429` with `Retry-After` and a JSON error,
//! quotas from the registry or the configured default, and calls that were not the SP's
//! (failed client authentication) not charged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;
mod support;

use common::*;
use flows::*;
use mc_gateway::state::now;
use mc_store::ClientMetadata;
use serde_json::Value;

const MSISDN: &str = "447700900301";

async fn sp_with(g: &Gateway, name: &str, metadata: ClientMetadata) -> Sp {
    let (record, secret) =
        support::register(g, name, &["openid", "mc_authn", "mc_atp"], metadata).await;
    Sp {
        redirect_uri: record.redirect_uris[0].clone(),
        client_id: record.client_id,
        secret,
        short_name: name.to_owned(),
    }
}

fn quota(per_second: Option<u32>, per_day: Option<u64>) -> ClientMetadata {
    ClientMetadata {
        quota_per_second: per_second,
        quota_per_day: per_day,
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    }
}

/// What a throttled endpoint answered: status, `Retry-After`, body.
struct Answer {
    status: u16,
    retry_after: Option<i64>,
    body: Value,
}

/// One cheap SP-facing call: an introspection of a token that does not exist.
async fn call(g: &Gateway, client_id: &str, secret: &str) -> Answer {
    call_at(
        g.http(),
        g.base.clone(),
        client_id.to_owned(),
        secret.to_owned(),
    )
    .await
}

async fn call_at(http: reqwest::Client, base: String, client_id: String, secret: String) -> Answer {
    let resp = http
        .post(format!("{base}/introspect"))
        .header("authorization", basic(&client_id, &secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=nothing")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

fn assert_throttled(a: &Answer, quota: &str) {
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.body["error"], "temporarily_unavailable", "{}", a.body);
    assert!(a.body["error_description"].is_string());
    assert_eq!(a.body["quota"], quota);
    assert_eq!(
        Some(a.body["retry_after"].as_i64().unwrap()),
        a.retry_after,
        "the body repeats Retry-After"
    );
}

#[tokio::test]
async fn per_day_quota_gives_429_until_midnight() {
    let g = Gateway::start().await;
    let sp = sp_with(&g, "Daily", quota(None, Some(3))).await;
    // Failed client authentication is not charged to the SP.
    for _ in 0..2 {
        assert_eq!(call(&g, &sp.client_id, "wrong").await.status, 401);
    }
    for _ in 0..3 {
        let a = call(&g, &sp.client_id, &sp.secret).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let t = now();
    let a = call(&g, &sp.client_id, &sp.secret).await;
    assert_throttled(&a, "per_day");
    let until_midnight = 86_400 - t.rem_euclid(86_400);
    let retry = a.retry_after.unwrap();
    assert!(
        (until_midnight - 2..=until_midnight).contains(&retry),
        "Retry-After {retry}, midnight in {until_midnight}"
    );
    // Every SP-facing endpoint draws on the same quota.
    let resp = post_token(
        &g,
        Some((&sp.client_id, &sp.secret)),
        &[("grant_type", "client_credentials"), ("scope", "mc_atp")],
    )
    .await;
    assert_eq!(resp.status(), 429);
    let resp = g
        .http()
        .get(Q::valid(&sp, MSISDN).url(&g))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // Refused calls are not counted; other SPs are not affected.
    assert_eq!(
        g.store()
            .daily_calls(&sp.client_id, now().div_euclid(86_400))
            .await
            .unwrap(),
        3
    );
    let other = sp_with(&g, "Other", quota(None, Some(3))).await;
    assert_eq!(call(&g, &other.client_id, &other.secret).await.status, 200);

    // Raising the quota in the registry applies (after the limits cache's few seconds:
    // polled, not slept).
    let mut spec = support::spec(
        &g,
        "Daily",
        &["openid", "mc_authn", "mc_atp"],
        quota(None, Some(10)),
    );
    spec.redirect_uris = vec![sp.redirect_uri.clone()];
    mc_gateway::registry::update_client(g.store(), &sp.client_id, &spec)
        .await
        .unwrap();
    support::eventually(
        "the raised quota applies",
        mc_gateway::throttle::LIMITS_TTL + std::time::Duration::from_secs(5),
        || async { call(&g, &sp.client_id, &sp.secret).await.status == 200 },
    )
    .await;
}

#[tokio::test]
async fn per_second_quota_gives_429_with_retry_after_1() {
    let g = Gateway::start().await;
    let sp = sp_with(&g, "Burst", quota(Some(3), None)).await;
    let mut burst = tokio::task::JoinSet::new();
    let http = g.http();
    for _ in 0..12 {
        burst.spawn(call_at(
            http.clone(),
            g.base.clone(),
            sp.client_id.clone(),
            sp.secret.clone(),
        ));
    }
    let answers = burst.join_all().await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let throttled: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(ok + throttled.len(), 12);
    // Three at once, plus what refills while the burst is served (3 per second).
    assert!((3..=6).contains(&ok), "{ok} calls got through");
    for a in &throttled {
        assert_throttled(a, "per_second");
        assert_eq!(a.retry_after, Some(1));
    }
    // The bucket refills: a call gets through again (polled, not slept).
    support::eventually(
        "the bucket refills",
        std::time::Duration::from_secs(5),
        || async { call(&g, &sp.client_id, &sp.secret).await.status == 200 },
    )
    .await;
}

#[tokio::test]
async fn the_configured_default_applies_to_sps_without_a_quota() {
    let g = Gateway::start_with(|c| c.throttle.default_per_day = 2).await;
    let plain = sp_with(&g, "Plain", ClientMetadata::default()).await;
    let unlimited = sp_with(&g, "Unlimited", quota(Some(0), Some(0))).await;
    for _ in 0..2 {
        assert_eq!(call(&g, &plain.client_id, &plain.secret).await.status, 200);
    }
    assert_throttled(&call(&g, &plain.client_id, &plain.secret).await, "per_day");
    for _ in 0..5 {
        assert_eq!(
            call(&g, &unlimited.client_id, &unlimited.secret)
                .await
                .status,
            200,
            "0 is unlimited"
        );
    }
    // Unknown clients are not throttled (the endpoint refuses them itself).
    assert_eq!(call(&g, "nobody", "x").await.status, 401);
}

#[tokio::test]
async fn authorize_and_userinfo_are_charged_to_their_sp() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let (record, secret) = support::register(
        &g,
        "Front",
        &["openid", "mc_authn"],
        ClientMetadata {
            quota_per_day: Some(4),
            ..Default::default()
        },
    )
    .await;
    let sp = Sp {
        redirect_uri: record.redirect_uris[0].clone(),
        client_id: record.client_id,
        secret,
        short_name: "Front".into(),
    };
    // An authorize call whose redirect URI does not check out is not the SP's.
    let mut bad = Q::valid(&sp, MSISDN);
    bad.set("redirect_uri", "https://evil.example/cb");
    let resp = g.http().get(bad.url(&g)).send().await.unwrap();
    assert_eq!(resp.status(), 400);

    // authorize (1) + token (2) + userinfo (3).
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let tokens = redeem(&g, &sp, &code).await;
    let at = tokens["access_token"].as_str().unwrap();
    let userinfo = || async {
        g.http()
            .get(format!("{}/userinfo", g.base))
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(userinfo().await.status(), 200);
    assert_eq!(userinfo().await.status(), 200, "the fourth call");
    let resp = userinfo().await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["quota"], "per_day");
}

#[tokio::test]
async fn the_daily_quota_is_shared_by_gateway_nodes_on_one_store() {
    let dir = temp_dir("throttle-nodes");
    let a = Gateway::start_in(dir.clone(), |_| {}).await;
    let b = Gateway::start_in(dir, |_| {}).await;
    let sp = sp_with(&a, "Shared", quota(None, Some(4))).await;
    assert_eq!(call(&a, &sp.client_id, &sp.secret).await.status, 200);
    assert_eq!(call(&b, &sp.client_id, &sp.secret).await.status, 200);
    assert_eq!(call(&a, &sp.client_id, &sp.secret).await.status, 200);
    assert_eq!(call(&b, &sp.client_id, &sp.secret).await.status, 200);
    assert_throttled(&call(&a, &sp.client_id, &sp.secret).await, "per_day");
    assert_throttled(&call(&b, &sp.client_id, &sp.secret).await, "per_day");
}
