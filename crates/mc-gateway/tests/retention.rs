//! The retention purge through the gateway: a stale pending login that is purged frees its
//! subscriber for a new login; what is younger than its age stays; counts reach /metrics.
//! Time is injected (`retention::purge(…, now)`), never waited for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use common::*;
use flows::*;
use mc_gateway::retention::{self, RetentionConfig};
use mc_gateway::state::now;
use mc_store::PurgeKind;

const MSISDN: &str = "447700900301";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_stale_pending_login_lets_the_subscriber_log_in_again() {
    // The scheduled purge is off: this test runs the rounds itself, at chosen times.
    let g = Gateway::start_with(|c| c.retention.enabled = false).await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let sub = g
        .store()
        .find_subscriber_by_msisdn(mc_core::msisdn::Msisdn::parse(MSISDN).unwrap().as_str())
        .await
        .unwrap()
        .unwrap();

    // A login the phone never answers: the session stays `pending`.
    let q = Q::valid(&sp, MSISDN);
    let r = g.http().get(q.url(&g)).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let pending = g
        .store()
        .pending_for_subscriber(&sub.id, now())
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    let stale = pending[0].clone();

    // A purge while it is younger than its age keeps it.
    let config = RetentionConfig::default();
    let t_young = stale.expires_at + config.sessions_secs as i64 - 1;
    let purged = retention::purge(&**g.store(), &config, t_young).await;
    assert!(g.store().get_session(&stale.id).await.unwrap().is_some());
    assert_eq!(purged.of(PurgeKind::Sessions), 0);

    // Past its age it goes, with nothing else of the subscriber's.
    let t_old = stale.expires_at + config.sessions_secs as i64;
    let purged = retention::purge(&**g.store(), &config, t_old).await;
    assert_eq!(purged.of(PurgeKind::Sessions), 1);
    assert!(g.store().get_session(&stale.id).await.unwrap().is_none());
    assert!(
        g.store()
            .find_subscriber_by_msisdn(mc_core::msisdn::Msisdn::parse(MSISDN).unwrap().as_str())
            .await
            .unwrap()
            .is_some()
    );

    // The subscriber's slot is free: a new login runs to the end (here the clock has not
    // reached the stale session's expiry, so only its removal can have freed the slot).
    assert!(now() < stale.expires_at);
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let tokens = redeem(&g, &sp, &code).await;
    assert!(tokens["id_token"].is_string());

    // The finished login and its token are kept until they are past their age too.
    let purged = retention::purge(&**g.store(), &config, now()).await;
    assert_eq!(purged.of(PurgeKind::Sessions), 0);
    assert_eq!(purged.of(PurgeKind::AccessTokens), 0);
    let far = now() + 10 * 86_400;
    let purged = retention::purge(&**g.store(), &config, far).await;
    assert_eq!(purged.of(PurgeKind::AccessTokens), 1);
    assert_eq!(
        purged.of(PurgeKind::Sessions),
        1,
        "the session goes after its token"
    );

    // The counts are exported.
    let metrics = g
        .http()
        .get(format!("{}/metrics", g.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("mc_retention_purged_total{kind=\"sessions\"}"))
        .unwrap_or_else(|| panic!("no purge counter in {metrics}"));
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2.0, "{line}");
}

#[tokio::test]
async fn retention_configuration_is_validated() {
    let mut c = RetentionConfig::default();
    assert!(c.validate().is_ok());
    c.batch_size = 0;
    assert!(c.validate().unwrap_err().contains("retention.batch_size"));
    let c = RetentionConfig {
        interval_secs: 1,
        ..Default::default()
    };
    assert!(
        c.validate()
            .unwrap_err()
            .contains("retention.interval_secs")
    );
    let mut cfg = config("https://id.example");
    cfg.keys.publish_ahead_secs = 10;
    assert!(
        cfg.validate()
            .unwrap_err()
            .contains("keys.publish_ahead_secs")
    );
    let mut cfg = config("https://id.example");
    cfg.keys.rotate_every_secs = cfg.keys.publish_ahead_secs - 1;
    assert!(
        cfg.validate()
            .unwrap_err()
            .contains("keys.rotate_every_secs")
    );
    cfg.keys.rotate_every_secs = 0;
    assert!(cfg.validate().is_ok(), "0 turns scheduled rotation off");
}
