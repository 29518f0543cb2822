//! Two gateway nodes on one PostgreSQL database: two real `mobileconnect serve` processes,
//! each on its own loopback port, sharing the database and the key-encryption key — what a
//! load balancer in front of several nodes sees.
//!
//! * a browser login started on node A (authorize, waiting URL) is approved on the phone
//!   through node B, noticed by the waiting URL held open on A (no in-process wake-up can
//!   reach it: A re-reads the store), and its code is redeemed at B; and the reverse. The JSON
//!   logs of both nodes carry the login's session id and the request id the client sent, and
//!   no MSISDN;
//! * a CIBA request started on A is approved through B and polled on A; and the reverse;
//! * 200 ping-mode CIBA requests, started and approved alternately on A and B: the outbox
//!   workers of both nodes compete for the notifications, and the client's notification
//!   endpoint (an axum server in this test) receives exactly one per `auth_req_id`.
//!
//! Needs `MC_TEST_POSTGRES_URL`; each test works in a schema of its own. Without the
//! variable the tests print "skipped" and pass, except under `CI=true`, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use reqwest::StatusCode;
use serde_json::{Value, json};

use support::*;

/// Two nodes on a fresh schema: A starts first (creates the tables and the keys), then B
/// (finds both).
struct Cluster {
    // Dropped first: the nodes stop before the schema is dropped.
    a: Node,
    b: Node,
    schema: PgSchema,
    _dir: TempDir,
}

impl Cluster {
    async fn start(base: String, tag: &str, json_logs: bool, extra_toml: &str) -> Cluster {
        let dir = TempDir::new(tag);
        let schema = PgSchema::create(base, tag).await;
        let spec = NodeSpec {
            database_url: schema.url(),
            kek_file: dir.join("kek.hex"),
            json_logs,
            extra_toml: extra_toml.to_owned(),
        };
        let a = start_serve(dir.path(), "a", &spec, None).await;
        let b = start_serve(dir.path(), "b", &spec, None).await;
        Cluster {
            a,
            b,
            schema,
            _dir: dir,
        }
    }

    /// Stops both nodes and drops the schema.
    async fn finish(self) {
        let Cluster {
            a, b, schema, _dir, ..
        } = self;
        drop(a);
        drop(b);
        schema.drop_schema().await;
    }

    /// The signing keys both nodes publish: the same set.
    async fn shared_kids(&self, http: &reqwest::Client) -> Vec<String> {
        let kids_a = sig_kids(&get_json(http, &format!("{}/jwks", self.a.base)).await);
        let kids_b = sig_kids(&get_json(http, &format!("{}/jwks", self.b.base)).await);
        assert!(!kids_a.is_empty());
        assert_eq!(
            kids_a, kids_b,
            "the second node loads the keys the first stored"
        );
        kids_a
    }
}

const POLL_EVERY_SECOND: &str = "[gateway.backchannel]\npoll_interval_secs = 1\n";
const POLL_EVERY_THREE_SECONDS: &str = "[gateway.backchannel]\npoll_interval_secs = 3\n";

// ---------------------------------------------------------------------------------------
// (a) the browser login
// ---------------------------------------------------------------------------------------

/// A browser login across nodes: `/authorize` and the waiting URL on `start`, the phone's
/// answer through `other`, the code redeemed at `other`, userinfo at `start`. Every request
/// carries the request id `rid`. Returns the session id.
async fn browser_login_across(
    http: &reqwest::Client,
    start: &Node,
    other: &Node,
    sp: &Sp,
    msisdn: &str,
    kids: &[String],
    rid: &str,
) -> String {
    let state = format!("st-{}", start.name);
    let sid = authorize(http, &start.base, sp, msisdn, &state, Some(rid))
        .await
        .unwrap();

    // The waiting page's long poll, held open on the starting node (20 s at most), under a
    // request id of its own; the node logs the request's start (its telemetry at debug), so
    // the test knows it is being held before the phone answers.
    let status_rid = format!("{rid}-status");
    let status_poll = {
        let (http, url, status_rid) = (
            http.clone(),
            format!("{}/authorize/wait/{sid}/status", start.base),
            status_rid.clone(),
        );
        tokio::spawn(async move {
            let r = http
                .get(&url)
                .header("x-request-id", status_rid)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let v: Value = r.json().await.unwrap();
            (v, Instant::now())
        })
    };
    eventually(
        &format!("node {} holding the waiting page's long poll", start.name),
        DEADLINE,
        || async {
            start
                .json_log_lines()
                .iter()
                .any(|l| {
                    l["span"]["request_id"] == status_rid.as_str()
                        && l["fields"]["message"] == "started processing request"
                })
                .then_some(())
        },
    )
    .await;
    assert!(!status_poll.is_finished(), "the long poll ended early");

    // The phone asks the other node, sees the challenge the first node created, approves.
    let challenges = phone_challenges(http, &other.base, msisdn, 10)
        .await
        .unwrap();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    let c = &challenges[0];
    assert_eq!(c["id"], sid.as_str(), "{c}");
    assert_eq!(c["binding_message"], "MN-1", "{c}");
    let answered_at = Instant::now();
    let result = phone_answer(http, &other.base, msisdn, &sid, true, Some(rid))
        .await
        .unwrap();
    assert_eq!(result, "approved");
    let second = phone_answer(http, &start.base, msisdn, &sid, true, None)
        .await
        .unwrap();
    assert_eq!(
        second, "not_pending",
        "the first answer wins, whichever node"
    );

    // The long poll on the starting node notices the answer recorded by the other node:
    // nothing in-process tells it, it re-reads the store (every 250 ms) while it holds.
    let (v, done_at) = status_poll.await.unwrap();
    assert_eq!(v["done"], true, "{v}");
    let noticed = done_at.saturating_duration_since(answered_at);
    assert!(
        noticed < Duration::from_secs(5),
        "the waiting URL on {} noticed the answer on {} after {noticed:?} (holds 20 s)",
        start.name,
        other.name
    );

    // The browser, still on the starting node, is sent back with a code.
    let back = wait_for_redirect(http, &start.base, &sid, Some(rid))
        .await
        .unwrap();
    assert!(back.starts_with(&sp.redirect_uri), "{back}");
    let q = query_of(&back);
    assert_eq!(q.get("state"), Some(&state), "{back}");
    let code = q
        .get("code")
        .unwrap_or_else(|| panic!("no code: {back}"))
        .clone();

    // The SP's back end reaches the other node.
    let (status, tokens) = redeem(http, &other.base, sp, &code, Some(rid))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (access, sub) = check_tokens(&tokens, sp, kids);
    assert!(!sub.contains(msisdn), "sub is a PCR");
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["nonce"], format!("n-{state}"), "{claims}");

    // The access token works on the starting node.
    let (status, info) = userinfo(http, &start.base, &access, Some(rid)).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["sub"], sub.as_str(), "{info}");

    // Take-once across nodes: the same code at the starting node is refused, and the replay
    // revokes what the code gave (RFC 6749 §4.1.2) — on every node.
    let (status, v) = redeem(http, &start.base, sp, &code, None).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "invalid_grant", "{v}");
    let (status, info) = userinfo(http, &other.base, &access, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{info}");
    sid
}

/// The log lines of `node` that name `sid` (as a field or in the request span).
fn lines_naming(node: &Node, sid: &str) -> Vec<Value> {
    node.json_log_lines()
        .into_iter()
        .filter(|l| l.to_string().contains(sid))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_login_started_on_one_node_completes_on_the_other() {
    let test = "browser_login_started_on_one_node_completes_on_the_other";
    let Some(base) = pg_server(test) else { return };
    let cluster = Cluster::start(base, "mn_browser", true, "").await;
    let (a, b) = (&cluster.a, &cluster.b);
    let http = client();
    let kids = cluster.shared_kids(&http).await;
    let meta_a = get_json(
        &http,
        &format!("{}/.well-known/openid-configuration", a.base),
    )
    .await;
    let meta_b = get_json(
        &http,
        &format!("{}/.well-known/openid-configuration", b.base),
    )
    .await;
    assert_eq!(meta_a, meta_b, "the nodes are interchangeable");

    // Registered on A, provisioned on B: the registry is the database.
    let sp = register_sp(&http, &a.base, "TwoNodeShop", json!({})).await;
    let (m1, m2) = ("447700900811", "447700900812");
    provision(&http, &b.base, m1).await;
    provision(&http, &b.base, m2).await;

    let rid_ab = "login-a-to-b-7f3c";
    let sid_ab = browser_login_across(&http, a, b, &sp, m1, &kids, rid_ab).await;
    let rid_ba = "login-b-to-a-91d2";
    let sid_ba = browser_login_across(&http, b, a, &sp, m2, &kids, rid_ba).await;

    // The logs follow each login across the nodes: the node where it started logged the
    // challenge, the other one the phone's answer, both under the login's session id and
    // the request id the client sent.
    for (sid, rid, start, other) in [(&sid_ab, rid_ab, a, b), (&sid_ba, rid_ba, b, a)] {
        for (node, message) in [(start, "challenge started"), (other, "challenge answered")] {
            let lines = lines_naming(node, sid);
            let hit = lines.iter().find(|l| l["fields"]["message"] == message);
            let hit = hit.unwrap_or_else(|| {
                panic!(
                    "node {}: no \"{message}\" line for session {sid}: {lines:#?}",
                    node.name
                )
            });
            assert_eq!(hit["fields"]["session"], sid.as_str(), "{hit}");
            assert_eq!(hit["span"]["request_id"], rid, "{hit}");
        }
    }
    for node in [a, b] {
        let logs = node.all_logs();
        assert!(!logs.is_empty(), "node {} logged nothing", node.name);
        for m in [m1, m2] {
            assert!(
                !logs.contains(m),
                "node {} logged the MSISDN {m} unmasked",
                node.name
            );
        }
    }
    cluster.finish().await;
}

// ---------------------------------------------------------------------------------------
// (b) CIBA
// ---------------------------------------------------------------------------------------

/// A CIBA poll request started on `start`, approved through `other`, polled on `start`;
/// with `check_take_once`, polled again on `other` (paced, then refused).
async fn ciba_across(
    http: &reqwest::Client,
    start: &Node,
    other: &Node,
    sp: &Sp,
    msisdn: &str,
    kids: &[String],
    check_take_once: bool,
) {
    let started = bc_authorize(http, &start.base, sp, msisdn, &[])
        .await
        .unwrap();
    let id = started["auth_req_id"].as_str().unwrap().to_owned();
    let interval = Duration::from_secs(started["interval"].as_u64().unwrap());
    let (status, v) = poll(http, &start.base, sp, &id).await.unwrap();
    let polled_at = Instant::now();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "authorization_pending", "{v}");

    let challenges = phone_challenges(http, &other.base, msisdn, 10)
        .await
        .unwrap();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert_eq!(challenges[0]["id"], id.as_str());
    assert_eq!(challenges[0]["binding_message"], "MN-2");
    let result = phone_answer(http, &other.base, msisdn, &id, true, None)
        .await
        .unwrap();
    assert_eq!(result, "approved");

    // CIBA pacing, not a synchronisation: a poll within `interval` of the previous one is
    // answered slow_down (the interval is kept in the database, so on every node).
    let since = polled_at.elapsed();
    if since < interval {
        tokio::time::sleep(interval - since).await;
    }
    let (status, tokens) = poll(http, &start.base, sp, &id).await.unwrap();
    let polled_at = Instant::now();
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (access, sub) = check_tokens(&tokens, sp, kids);
    if check_take_once {
        // The pace is the request's, not the node's: a poll on the other node right away is
        // too fast, and adds 5 s to the interval (CIBA Core §11).
        let (status, v) = poll(http, &other.base, sp, &id).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        // The gateway counts whole seconds: a poll less than `interval - 1 s` after the
        // previous answer is certainly too fast; a slower machine may have let more time
        // pass, and then the take-once refusal is as right.
        if polled_at.elapsed() + Duration::from_secs(1) < interval {
            assert_eq!(v["error"], "slow_down", "{v}");
        } else {
            assert!(
                v["error"] == "slow_down" || v["error"] == "invalid_grant",
                "{v}"
            );
        }
        // Take-once: at the request's pace, the other node has nothing more to give.
        let interval = interval + Duration::from_secs(5);
        let since = polled_at.elapsed();
        if since < interval {
            tokio::time::sleep(interval - since).await;
        }
        let (status, v) = poll(http, &other.base, sp, &id).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"], "invalid_grant", "{v}");
    }
    // The token works on both nodes.
    for node in [start, other] {
        let (status, info) = userinfo(http, &node.base, &access, None).await;
        assert_eq!(status, StatusCode::OK, "{info}");
        assert_eq!(info["sub"], sub.as_str(), "{info}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ciba_request_started_on_one_node_is_approved_on_the_other_and_polled_back() {
    let test = "ciba_request_started_on_one_node_is_approved_on_the_other_and_polled_back";
    let Some(base) = pg_server(test) else { return };
    // Three seconds: room to show that a poll right away on the other node is too fast.
    let cluster = Cluster::start(base, "mn_ciba", false, POLL_EVERY_THREE_SECONDS).await;
    let (a, b) = (&cluster.a, &cluster.b);
    let http = client();
    let kids = cluster.shared_kids(&http).await;
    let receiver = Receiver::start("unused").await;
    let sp = register_sp(
        &http,
        &b.base,
        "CibaShop",
        json!({
            "backchannel_token_delivery_mode": "poll",
            "jwks_uri": format!("{}/jwks.json", receiver.base),
        }),
    )
    .await;
    provision(&http, &a.base, "447700900821").await;
    provision(&http, &a.base, "447700900822").await;
    ciba_across(&http, a, b, &sp, "447700900821", &kids, true).await;
    ciba_across(&http, b, a, &sp, "447700900822", &kids, false).await;
    cluster.finish().await;
}

// ---------------------------------------------------------------------------------------
// (c) the outbox: exactly one notification per request across the nodes
// ---------------------------------------------------------------------------------------

/// The client's side of ping mode: a notification endpoint that counts what it receives per
/// `auth_req_id`, and an (empty) key set for the registration.
struct Receiver {
    base: String,
    received: Arc<Mutex<HashMap<String, u32>>>,
    /// Notifications without the expected bearer token, or without an `auth_req_id`.
    rejected: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    async fn start(token: &str) -> Receiver {
        let received: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let rejected: Arc<Mutex<Vec<String>>> = Arc::default();
        let expected = format!("Bearer {token}");
        let notify = {
            let (received, rejected) = (received.clone(), rejected.clone());
            move |headers: HeaderMap, body: Bytes| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match v["auth_req_id"].as_str() {
                    Some(id) if auth == expected => {
                        *received.lock().unwrap().entry(id.to_owned()).or_default() += 1;
                        StatusCode::NO_CONTENT
                    }
                    _ => {
                        rejected
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&body).into_owned());
                        StatusCode::UNAUTHORIZED
                    }
                }
            }
        };
        let app = Router::new().route("/notify", post(notify)).route(
            "/jwks.json",
            get(|| async { axum::Json(json!({ "keys": [] })) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            base,
            received,
            rejected,
            server,
        }
    }

    fn snapshot(&self) -> HashMap<String, u32> {
        self.received.lock().unwrap().clone()
    }
}

/// Requests in the outbox test.
const PINGS: usize = 200;
const PING_IN_FLIGHT: usize = 16;
const FIRST_PING_MSISDN: u64 = 447_700_920_000;

#[tokio::test(flavor = "multi_thread")]
async fn ping_notifications_are_delivered_exactly_once_across_two_nodes() {
    let test = "ping_notifications_are_delivered_exactly_once_across_two_nodes";
    let Some(base) = pg_server(test) else { return };
    let cluster = Cluster::start(base, "mn_ping", false, POLL_EVERY_SECOND).await;
    let http = client();
    let kids = cluster.shared_kids(&http).await;
    let token = "ping-notification-token-5b1e";
    let receiver = Receiver::start(token).await;
    let sp = register_sp(
        &http,
        &cluster.a.base,
        "PingShop",
        json!({
            "backchannel_token_delivery_mode": "ping",
            "backchannel_client_notification_endpoint": format!("{}/notify", receiver.base),
            "jwks_uri": format!("{}/jwks.json", receiver.base),
        }),
    )
    .await;
    let nodes = Arc::new([cluster.a.base.clone(), cluster.b.base.clone()]);
    let msisdn = |i: usize| (FIRST_PING_MSISDN + i as u64).to_string();

    bounded(0..PINGS, PING_IN_FLIGHT, {
        let (http, nodes) = (http.clone(), nodes.clone());
        move |i| {
            let (http, nodes) = (http.clone(), nodes.clone());
            async move { provision(&http, &nodes[i % 2], &msisdn(i)).await }
        }
    })
    .await;

    // Each request is started on one node and approved through the other: the answering
    // node's worker is woken at once, the other one finds the item on its next tick; both
    // lease from the same outbox.
    let started: Vec<String> = bounded(0..PINGS, PING_IN_FLIGHT, {
        let (http, nodes, sp) = (http.clone(), nodes.clone(), sp.clone());
        move |i| {
            let (http, nodes, sp) = (http.clone(), nodes.clone(), sp.clone());
            async move {
                let m = msisdn(i);
                let v = bc_authorize(
                    &http,
                    &nodes[i % 2],
                    &sp,
                    &m,
                    &[("client_notification_token", "ping-notification-token-5b1e")],
                )
                .await
                .unwrap_or_else(|e| panic!("bc-authorize #{i}: {e:?}"));
                let id = v["auth_req_id"].as_str().unwrap().to_owned();
                let result = phone_answer(&http, &nodes[(i + 1) % 2], &m, &id, true, None)
                    .await
                    .unwrap_or_else(|e| panic!("approve #{i}: {e:?}"));
                assert_eq!(result, "approved", "#{i}");
                id
            }
        }
    })
    .await;

    // Every request notified...
    eventually(
        &format!("{PINGS} distinct ping notifications"),
        DEADLINE,
        || async {
            let got = receiver.snapshot();
            (started.iter().all(|id| got.contains_key(id))).then_some(())
        },
    )
    .await;
    // ...and the outbox drained: every item delivered and completed, none left to retry.
    eventually("an empty outbox", DEADLINE, || async {
        let r = http
            .get(format!("{}/metrics", cluster.b.base))
            .send()
            .await
            .ok()?;
        let text = r.text().await.ok()?;
        (metric(&text, "outbox_depth") == Some(0.0)).then_some(())
    })
    .await;
    let got = receiver.snapshot();
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "notifications delivered more than once: {twice:?}"
    );
    assert_eq!(got.len(), PINGS, "notifications for unknown requests");
    assert!(
        receiver.rejected.lock().unwrap().is_empty(),
        "notifications without the client's token: {:?}",
        receiver.rejected.lock().unwrap()
    );

    // Each node reports its own pool (`database.max_connections`, default 8) and the shared
    // store's gauges.
    for node in [&cluster.a, &cluster.b] {
        let text = http
            .get(format!("{}/metrics", node.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("store_pool_max_connections{pool=\"main\"} 8"),
            "node {}: {text}",
            node.name
        );
        assert!(
            text.contains("store_pool_connections{pool=\"main\",state=\"in_use\"}"),
            "node {}: {text}",
            node.name
        );
        assert_eq!(metric(&text, "backchannel_pending_requests"), Some(0.0));
    }

    // Pinged, the client fetches its tokens, from either node, once.
    let fetched = bounded(0..PINGS, PING_IN_FLIGHT, {
        let (http, nodes, sp, started) = (
            http.clone(),
            nodes.clone(),
            sp.clone(),
            Arc::new(started.clone()),
        );
        move |i| {
            let (http, nodes, sp, started) =
                (http.clone(), nodes.clone(), sp.clone(), started.clone());
            async move { poll(&http, &nodes[i % 2], &sp, &started[i]).await.unwrap() }
        }
    })
    .await;
    for (i, (status, tokens)) in fetched.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "#{i}: {tokens}");
        check_tokens(tokens, &sp, &kids);
    }
    drop(receiver);
    cluster.finish().await;
}
