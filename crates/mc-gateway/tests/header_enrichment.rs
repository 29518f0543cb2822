//! Header enrichment over HTTP: a gateway served with the TCP peer address recorded (as
//! `mobileconnect serve` does), the MSISDN header believed only from the configured source
//! networks (directly or behind a trusted proxy's `X-Forwarded-For`), the login finished with
//! no interaction at LoA2 (`amr` `SEAM_OK` in the id_token); from anywhere else, with
//! `prompt=no_seam`, at LoA3 or for another hinted subscriber, the ordinary chain runs (the
//! phone is asked).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use flows::*;
use mc_gateway::enrichment::HeaderEnrichmentConfig;
use mc_gateway::keys::{Kek, KeyRing};
use mc_gateway::state::{AppState, now};
use mc_store::DynStore;
use mc_store_sqlite::SqliteStore;
use serde_json::json;

const MSISDN: &str = "447700900501";

/// A gateway that records peer addresses, with header enrichment trusting `sources` and
/// `proxies`. Wrapped in the harness's `Gateway` so the shared helpers apply.
async fn start(sources: &[&str], proxies: &[&str]) -> (Gateway, tokio::task::JoinHandle<()>) {
    // The harness gateway gives the store, SP and subscriber helpers; a second server over
    // the same state records peer addresses and is the one the tests talk to.
    let he = HeaderEnrichmentConfig {
        header: "x-msisdn".into(),
        trusted_sources: sources.iter().map(|s| s.to_string()).collect(),
        trusted_proxies: proxies.iter().map(|s| s.to_string()).collect(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = temp_dir("he");
    let mut cfg = config(&format!("http://{addr}"));
    cfg.authenticators.header_enrichment = Some(he);
    cfg.authenticators
        .enabled
        .push(mc_authn::header_enrichment::NAME.into());
    cfg.login.allow_no_hint = true;
    cfg.validate().unwrap();
    let store: DynStore = Arc::new(SqliteStore::open(&dir.join("mc.db")).await.unwrap());
    let keys = KeyRing::load_or_create(&*store, &Kek::new(&KEK).unwrap(), now())
        .await
        .unwrap();
    let state = AppState::new(store, cfg.clone(), keys);
    let app = mc_gateway::app(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    // The harness's own server (without peer addresses) over another database is not
    // used; only its helpers, pointed at our address and state.
    let mut g = Gateway::start_in(dir.join("unused"), |c| *c = cfg.clone()).await;
    g.addr = addr;
    g.base = format!("http://{addr}");
    g.state = state;
    g.subscriber(MSISDN, Some("1234")).await;
    (g, server)
}

/// GET /authorize with the enrichment header (and `extra` headers); the first redirect.
async fn authorize(g: &Gateway, q: &Q, extra: &[(&str, &str)]) -> String {
    let mut req = g.http().get(q.url(g)).header("x-msisdn", MSISDN);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    location(&g.base, &resp).unwrap()
}

/// Follows the gateway's redirects from `url` until the SP's redirect URI; the phone is
/// never touched, so a login that needs it would hang there (it does not: see the callers).
async fn follow(g: &Gateway, url: &str, redirect_uri: &str) -> String {
    follow_to_redirect_uri(g, url, redirect_uri).await
}

#[tokio::test]
async fn trusted_source_is_logged_in_with_no_interaction_at_loa2() {
    let (g, _server) = start(&["127.0.0.0/8"], &[]).await;
    let sp = g.shop().await;
    let metadata: serde_json::Value = g
        .http()
        .get(format!("{}/.well-known/openid-configuration", g.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let amr = metadata["mc_amr_values_supported"].as_array().unwrap();
    assert!(amr.contains(&json!("SEAM_OK")), "{amr:?}");
    // With a matching hint, and without any hint.
    for q in [Q::valid(&sp, MSISDN), {
        let mut q = Q::valid(&sp, MSISDN);
        q.del("login_hint");
        q
    }] {
        let first = authorize(&g, &q, &[]).await;
        assert!(
            g.phone(MSISDN).pending().await.is_empty(),
            "the phone is not asked"
        );
        let back = follow(&g, &first, &sp.redirect_uri).await;
        let code = query_of(&back).get("code").cloned().expect("a code");
        let tokens = redeem(&g, &sp, &code).await;
        let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["acr"], "2");
        assert_eq!(claims["amr"], json!(["SEAM_OK"]));
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_address_decides() {
    let (g, _server) = start(&["10.20.0.0/16"], &["127.0.0.1/32"]).await;
    let sp = g.shop().await;
    let q = Q::valid(&sp, MSISDN);
    let first = authorize(&g, &q, &[("x-forwarded-for", "10.20.3.4")]).await;
    let back = follow(&g, &first, &sp.redirect_uri).await;
    assert!(query_of(&back).contains_key("code"));

    // A client that prepends a trusted address is still the untrusted one on the right:
    // the header is ignored and the phone is asked.
    let q = Q::valid(&sp, MSISDN);
    let first = authorize(&g, &q, &[("x-forwarded-for", "10.20.3.4, 192.0.2.66")]).await;
    assert!(first.contains("/authorize/wait/"), "{first}");
    let c = g.phone(MSISDN).next_challenge().await;
    g.phone(MSISDN)
        .answer(&c.id, mc_authn::answer::Answer::Deny)
        .await;
}

#[tokio::test]
async fn untrusted_source_no_seam_loa3_and_another_hint_fall_back_to_the_phone() {
    let (g, _server) = start(&["10.0.0.0/8"], &[]).await;
    let sp = g.shop().await;
    // 127.0.0.1 is not a trusted source: the header is ignored.
    let first = authorize(&g, &Q::valid(&sp, MSISDN), &[]).await;
    assert!(first.contains("/authorize/wait/"), "{first}");
    let phone = g.phone(MSISDN);
    let approve = tokio::spawn(async move { phone.approve_next().await });
    let back = follow(&g, &first, &sp.redirect_uri).await;
    approve.await.unwrap();
    let tokens = redeem(&g, &sp, query_of(&back).get("code").unwrap()).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["PUSH_OK"]));

    // Trusted source, but the request opts out, asks for LoA3, or hints someone else.
    let (g, _server) = start(&["127.0.0.0/8"], &[]).await;
    let sp = g.shop().await;
    g.subscriber("447700900502", None).await;
    let mut no_seam = Q::valid(&sp, MSISDN);
    no_seam.set("prompt", "no_seam");
    let mut loa3 = Q::valid(&sp, MSISDN);
    loa3.set("acr_values", "3");
    let other = Q::valid(&sp, "447700900502");
    for (what, q, asked) in [
        ("prompt=no_seam", no_seam, MSISDN),
        ("acr_values=3", loa3, MSISDN),
        ("another hint", other, "447700900502"),
    ] {
        let first = authorize(&g, &q, &[]).await;
        assert!(first.contains("/authorize/wait/"), "{what}: {first}");
        let c = g.phone(asked).next_challenge().await;
        g.phone(asked)
            .answer(&c.id, mc_authn::answer::Answer::Deny)
            .await;
    }
}
