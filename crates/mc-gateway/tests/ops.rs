#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Operating the gateway: `/metrics`, `/healthz`, `/readyz` and request ids.
//!
//! The Prometheus recorder is one per process: the tests here share it, so they look for
//! samples they caused rather than exact totals.

mod common;

use common::*;

/// A number no other test in this binary uses, so its digits are easy to look for.
const NUMBER: &str = "447700900377";

/// One LoA2 login, approved on the phone.
async fn login(g: &Gateway) {
    let sp = g.shop().await;
    g.subscriber(NUMBER, None).await;
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20mc_authn&acr_values=2&version=mc_di_r2_v2.3&state=s1&nonce=n1&login_hint=MSISDN%3A{NUMBER}",
        g.base, sp.client_id, sp.redirect_uri
    );
    let phone = g.phone(NUMBER);
    let answer = tokio::spawn(async move { phone.approve_next().await });
    let back = follow_to_redirect_uri(g, &url, &sp.redirect_uri).await;
    answer.await.unwrap();
    assert!(query_of(&back).contains_key("code"), "{back}");
}

async fn scrape(g: &Gateway) -> String {
    let resp = g
        .http()
        .get(format!("{}/metrics", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    resp.text().await.unwrap()
}

/// The sample lines of a metric (no `# HELP`/`# TYPE`).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .collect()
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_logins_by_outcome() {
    let g = Gateway::start().await;
    login(&g).await;
    // A 404 whose path carries the number: counted, but not under its URI.
    let resp = g
        .http()
        .get(format!("{}/nowhere/{NUMBER}", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // A waiting URL (the login above got its code from /authorize itself): counted under
    // its route template, never under its session id.
    g.http()
        .get(format!("{}/authorize/wait/no-such-session", g.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();

    let text = scrape(&g).await;
    assert!(!text.contains("no-such-session"), "{text}");
    let requests = samples(&text, "http_requests_total");
    assert!(
        requests.iter().any(|l| l.contains(r#"route="/authorize""#)
            && l.contains(r#"method="GET""#)
            && l.contains(r#"status="302""#)),
        "{text}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains(r#"route="/authorize/wait/{session}""#)),
        "{text}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains(r#"route="unmatched""#) && l.contains(r#"status="404""#)),
        "{text}"
    );
    assert!(
        samples(&text, "http_request_duration_seconds_bucket")
            .iter()
            .any(|l| l.contains(r#"route="/authorize""#)),
        "{text}"
    );
    assert!(
        samples(&text, "logins_total")
            .iter()
            .any(|l| l.contains(r#"authenticator="app_push""#)
                && l.contains(r#"outcome="approved""#)),
        "{text}"
    );
    for gauge in [
        "backchannel_pending_requests",
        "outbox_depth",
        "outbox_oldest_age_seconds",
    ] {
        assert_eq!(samples(&text, gauge).len(), 1, "{gauge}: {text}");
    }
    // Neither the number nor its national part, anywhere.
    assert!(!text.contains(NUMBER), "{text}");
    assert!(!text.contains(&NUMBER[2..]), "{text}");
}

#[tokio::test]
async fn liveness_and_readiness() {
    let g = Gateway::start().await;
    let http = g.http();
    let live = http
        .get(format!("{}/healthz", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.text().await.unwrap(), "ok");
    let ready = http.get(format!("{}/readyz", g.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let g = Gateway::start().await;
    let http = g.http();
    let url = format!("{}/healthz", g.base);

    let given = http
        .get(&url)
        .header("x-request-id", "lb-7f3a:42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "lb-7f3a:42");

    let generated = http.get(&url).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    // Too long or not printable: replaced, not echoed.
    for bad in ["x".repeat(129), "has space".to_owned()] {
        let resp = http
            .get(&url)
            .header("x-request-id", bad.as_str())
            .send()
            .await
            .unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36, "{id}");
    }

    // Two ids: neither is kept.
    let twice = http
        .get(&url)
        .header("x-request-id", "a-1")
        .header("x-request-id", "a-2")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = twice.headers().get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].len(), 36, "{:?}", ids[0]);

    // Error answers carry it too.
    let missing = http
        .get(format!("{}/nowhere", g.base))
        .header("x-request-id", "r-404")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-request-id"], "r-404");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let g = Gateway::start().await;
    let http = g.http();
    for (path, status) in [
        ("/healthz", 200),
        ("/nowhere", 404),
        ("/.well-known/openid-configuration", 200),
        ("/authorize", 400),
    ] {
        let resp = http.get(format!("{}{path}", g.base)).send().await.unwrap();
        assert_eq!(resp.status(), status, "{path}");
        let h = resp.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h.get_all("x-frame-options").iter().count(), 1, "{path}");
    }
}

#[tokio::test]
async fn metrics_off_is_not_served() {
    let g = Gateway::start_with(|c| c.telemetry.metrics = false).await;
    let http = g.http();
    let resp = http
        .get(format!("{}/metrics", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // The rest of the ops surface stays.
    let ready = http.get(format!("{}/readyz", g.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn ops_routes_follow_the_issuer_path() {
    let g = Gateway::start_with(|c| c.issuer.push_str("/mc")).await;
    let http = g.http();
    for path in ["/mc/healthz", "/mc/readyz", "/mc/metrics"] {
        let resp = http.get(format!("{}{path}", g.base)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_denied_login_is_counted_as_denied() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    let number = "447700900378";
    g.subscriber(number, None).await;
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20mc_authn&acr_values=2&version=mc_di_r2_v2.3&state=s2&nonce=n2&login_hint=MSISDN%3A{number}",
        g.base, sp.client_id, sp.redirect_uri
    );
    let phone = g.phone(number);
    let answer = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        phone.answer(&c.id, mc_authn::answer::Answer::Deny).await
    });
    let back = follow_to_redirect_uri(&g, &url, &sp.redirect_uri).await;
    assert_eq!(
        answer.await.unwrap(),
        mc_authn::answer::AnswerOutcome::Denied
    );
    assert!(query_of(&back).contains_key("error"), "{back}");
    let text = scrape(&g).await;
    assert!(
        samples(&text, "logins_total")
            .iter()
            .any(|l| l.contains(r#"outcome="denied""#)),
        "{text}"
    );
    assert!(!text.contains(&number[2..]), "{text}");
}
