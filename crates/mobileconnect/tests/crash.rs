//! Crash safety: `mobileconnect serve` is killed with SIGKILL in the middle of a stream of
//! logins, started again on the same data, and everything that was committed is there.
//!
//! Before the stream, logins are parked in every intermediate state (front channel: waiting
//! for the phone, approved without a code, code issued but not redeemed; CIBA: pending,
//! approved but not polled, pending with a 3-second expiry). Then [`WORKERS`] tasks run
//! logins back to back (front channel and CIBA in turn, each task on subscribers of its own)
//! and record every token they obtain and the step their current login has reached. Once
//! [`KILL_AFTER`] logins have completed the process is killed (`kill -9`: no shutdown code
//! runs), then started again on the same database and key-encryption key. After the restart:
//!
//! * the signing keys (`kid`s), the service provider (and its secret) and every subscriber
//!   are intact;
//! * every access token obtained before the kill works at `/userinfo`, with the same `sub`;
//! * every login that was in flight or parked at the kill ends cleanly: a pending one is
//!   answered on the phone and completes (or is denied and reaches the SP as an error), an
//!   approved one yields its code or tokens, a code issued before the kill is redeemed once
//!   (or, if its redemption had committed when the answer was lost, is refused as
//!   `invalid_grant`), the short-lived CIBA request is reported `expired_token`; no answer is
//!   a server error, and no open challenge is left that the test cannot account for;
//! * no MSISDN is left locked: every subscriber completes a new login;
//! * consent given before the kill is intact: a subscriber approved a login of a second
//!   service provider asking for `mc_identity_phonenumber` on the phone (the consent
//!   question on the challenge, approved and shared) before the stream started. After the
//!   restart the token obtained then still releases the phone number, the subscriber's
//!   self-service page (`/account`, logged in with the phone) lists that provider with "Your
//!   phone number", and a new login of that provider for the same attribute asks no consent
//!   and is granted it.
//!
//! Runs on SQLite (always) and on PostgreSQL (with `MC_TEST_POSTGRES_URL`, see
//! `multinode.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use support::*;

/// Tasks running logins at the same time.
const WORKERS: usize = 6;
/// Subscribers of each task (used in turn: one login at a time per subscriber).
const SUBS_PER_WORKER: usize = 3;
/// Completed logins before the kill.
const KILL_AFTER: usize = 40;
const FIRST_STREAM_MSISDN: u64 = 447_700_930_000;

/// The parked logins (one subscriber each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parked {
    /// Front channel, waiting for the phone: approved after the restart.
    FrontPendingApprove,
    /// Front channel, waiting for the phone: denied after the restart.
    FrontPendingDeny,
    /// Front channel, approved; the browser has not come back for the code.
    FrontApproved,
    /// Front channel, the code delivered to the SP, not redeemed.
    FrontCodeIssued,
    /// CIBA, pending: approved after the restart.
    CibaPending,
    /// CIBA, approved, not polled.
    CibaApproved,
    /// CIBA with `requested_expiry=3`, never answered.
    CibaExpiring,
}

const PARKED: [Parked; 7] = [
    Parked::FrontPendingApprove,
    Parked::FrontPendingDeny,
    Parked::FrontApproved,
    Parked::FrontCodeIssued,
    Parked::CibaPending,
    Parked::CibaApproved,
    Parked::CibaExpiring,
];
const FIRST_PARKED_MSISDN: u64 = 447_700_939_000;
/// The subscriber who consents, before the kill, to share the phone number with
/// [`CONSENT_SCOPE`]'s service provider.
const CONSENT_MSISDN: &str = "447700938001";
/// What the consenting service provider asks for (an identity product: the phone shows the
/// consent question, approving shares it).
const CONSENT_SCOPE: &str = "openid mc_identity_phonenumber";

/// How far a login has come, as the SP and the phone know it.
#[derive(Clone, Debug)]
enum Step {
    /// The first request was sent; its answer (the login's id) may never have arrived.
    Starting { msisdn: String },
    /// A front-channel login with this session; `code` once the redirect came back.
    Front {
        msisdn: String,
        sid: String,
        code: Option<String>,
    },
    /// A CIBA request.
    Ciba { msisdn: String, id: String },
}

impl Step {
    fn msisdn(&self) -> &str {
        match self {
            Step::Starting { msisdn } | Step::Front { msisdn, .. } | Step::Ciba { msisdn, .. } => {
                msisdn
            }
        }
    }
}

/// A token obtained before the kill.
#[derive(Clone, Debug)]
struct Issued {
    access_token: String,
    sub: String,
}

/// What the stream shares with the test.
#[derive(Default)]
struct Stream {
    completed: AtomicUsize,
    issued: Mutex<Vec<Issued>>,
    /// The current step of each task.
    steps: Mutex<HashMap<usize, Step>>,
    /// Set just before the kill: a failure before it is a bug.
    killing: AtomicBool,
    early_failures: Mutex<Vec<String>>,
}

/// One front-channel login on `base`, recording its steps in `stream` under `task`.
async fn front_login(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    msisdn: &str,
    task: usize,
    stream: &Stream,
    kids: &[String],
) -> Result<Issued, Failure> {
    let set = |s: Step| {
        stream.steps.lock().unwrap().insert(task, s);
    };
    set(Step::Starting {
        msisdn: msisdn.to_owned(),
    });
    let sid = authorize(http, base, sp, msisdn, &format!("w{task}"), None).await?;
    set(Step::Front {
        msisdn: msisdn.to_owned(),
        sid: sid.clone(),
        code: None,
    });
    let result = phone_answer(http, base, msisdn, &sid, true, None).await?;
    if result != "approved" {
        return Err(("phone".into(), result));
    }
    let back = wait_for_redirect(http, base, &sid, None).await?;
    let code = query_of(&back)
        .get("code")
        .cloned()
        .ok_or_else(|| ("redirect".to_owned(), back.clone()))?;
    set(Step::Front {
        msisdn: msisdn.to_owned(),
        sid,
        code: Some(code.clone()),
    });
    let (status, tokens) = redeem(http, base, sp, &code, None).await?;
    if status != StatusCode::OK {
        return Err((status.to_string(), tokens.to_string()));
    }
    let (access_token, sub) = check_tokens(&tokens, sp, kids);
    Ok(Issued { access_token, sub })
}

/// One CIBA poll login on `base` (approved at once, then polled once).
async fn ciba_login(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    msisdn: &str,
    task: usize,
    stream: &Stream,
    kids: &[String],
) -> Result<Issued, Failure> {
    let set = |s: Step| {
        stream.steps.lock().unwrap().insert(task, s);
    };
    set(Step::Starting {
        msisdn: msisdn.to_owned(),
    });
    let v = bc_authorize(http, base, sp, msisdn, &[]).await?;
    let id = v["auth_req_id"].as_str().unwrap().to_owned();
    set(Step::Ciba {
        msisdn: msisdn.to_owned(),
        id: id.clone(),
    });
    let result = phone_answer(http, base, msisdn, &id, true, None).await?;
    if result != "approved" {
        return Err(("phone".into(), result));
    }
    let (status, tokens) = poll(http, base, sp, &id).await?;
    if status != StatusCode::OK {
        return Err((status.to_string(), tokens.to_string()));
    }
    let (access_token, sub) = check_tokens(&tokens, sp, kids);
    Ok(Issued { access_token, sub })
}

/// A task of the stream: logins back to back until one fails (the kill).
async fn worker(
    http: reqwest::Client,
    base: String,
    sp: Sp,
    task: usize,
    stream: Arc<Stream>,
    kids: Vec<String>,
) {
    for round in 0usize.. {
        let msisdn = stream_msisdn(task, round % SUBS_PER_WORKER);
        let done = if round % 2 == 0 {
            front_login(&http, &base, &sp, &msisdn, task, &stream, &kids).await
        } else {
            ciba_login(&http, &base, &sp, &msisdn, task, &stream, &kids).await
        };
        match done {
            Ok(issued) => {
                stream.issued.lock().unwrap().push(issued);
                stream.steps.lock().unwrap().remove(&task);
                stream.completed.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                if !stream.killing.load(Ordering::SeqCst) {
                    stream
                        .early_failures
                        .lock()
                        .unwrap()
                        .push(format!("task {task} round {round}: {e:?}"));
                }
                return;
            }
        }
    }
}

fn stream_msisdn(task: usize, i: usize) -> String {
    (FIRST_STREAM_MSISDN + (task * SUBS_PER_WORKER + i) as u64).to_string()
}

fn parked_msisdn(i: usize) -> String {
    (FIRST_PARKED_MSISDN + i as u64).to_string()
}

/// Parks one login in the state `p` names.
async fn park(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    p: Parked,
    msisdn: &str,
) -> (Parked, Step) {
    let front = |sid: &str, code: Option<String>| Step::Front {
        msisdn: msisdn.to_owned(),
        sid: sid.to_owned(),
        code,
    };
    let step = match p {
        Parked::FrontPendingApprove | Parked::FrontPendingDeny => {
            let sid = authorize(http, base, sp, msisdn, "parked", None)
                .await
                .unwrap();
            front(&sid, None)
        }
        Parked::FrontApproved | Parked::FrontCodeIssued => {
            let sid = authorize(http, base, sp, msisdn, "parked", None)
                .await
                .unwrap();
            let r = phone_answer(http, base, msisdn, &sid, true, None)
                .await
                .unwrap();
            assert_eq!(r, "approved");
            if p == Parked::FrontApproved {
                front(&sid, None)
            } else {
                let back = wait_for_redirect(http, base, &sid, None).await.unwrap();
                let code = query_of(&back).get("code").cloned().unwrap();
                front(&sid, Some(code))
            }
        }
        Parked::CibaPending | Parked::CibaApproved | Parked::CibaExpiring => {
            let extra: &[(&str, &str)] = if p == Parked::CibaExpiring {
                &[("requested_expiry", "3")]
            } else {
                &[]
            };
            let v = bc_authorize(http, base, sp, msisdn, extra).await.unwrap();
            let id = v["auth_req_id"].as_str().unwrap().to_owned();
            if p == Parked::CibaApproved {
                let r = phone_answer(http, base, msisdn, &id, true, None)
                    .await
                    .unwrap();
                assert_eq!(r, "approved");
            }
            Step::Ciba {
                msisdn: msisdn.to_owned(),
                id,
            }
        }
    };
    (p, step)
}

/// Polls a CIBA request at the pace the protocol sets until the answer is final (not
/// `authorization_pending`, not `slow_down`). The interval starts at the configured second
/// and grows by 5 s with each `slow_down` (CIBA Core §11; kept in the database, so a poll
/// made just before the kill counts). The sleeps are that pacing, bounded by [`DEADLINE`].
async fn poll_paced(http: &reqwest::Client, base: &str, sp: &Sp, id: &str) -> (StatusCode, Value) {
    let deadline = Instant::now() + DEADLINE;
    let mut interval = Duration::from_secs(1);
    loop {
        let (status, v) = poll(http, base, sp, id).await.unwrap();
        if v["error"] == "slow_down" {
            interval += Duration::from_secs(5);
        } else if v["error"] != "authorization_pending" {
            return (status, v);
        }
        assert!(
            Instant::now() < deadline,
            "CIBA request {id} still open: {v}"
        );
        tokio::time::sleep(interval).await;
    }
}

/// How a login that was in flight at the kill ended after the restart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum End {
    /// Tokens, checked at userinfo.
    Completed,
    /// Refused to the SP with this error (a redirect with `error`, or a token error).
    Failed(String),
}

/// Drives a login of before the kill to its end on the restarted node. `approve` decides
/// the answer to a challenge still open on the phone.
async fn finish(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    step: &Step,
    approve: bool,
    kids: &[String],
) -> End {
    let answer_if_open = |msisdn: String, id: String| async move {
        let open = phone_challenges(http, base, &msisdn, 0).await.unwrap();
        if open.iter().any(|c| c["id"] == id.as_str()) {
            let r = phone_answer(http, base, &msisdn, &id, approve, None)
                .await
                .unwrap();
            assert_eq!(r, if approve { "approved" } else { "denied" });
        }
    };
    let tokens_end = |status: StatusCode, tokens: Value| {
        if status == StatusCode::OK {
            let (access, sub) = check_tokens(&tokens, sp, kids);
            Some((access, sub))
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{tokens}");
            None
        }
    };
    let redeemed = |status: StatusCode, tokens: Value| async move {
        match tokens_end(status, tokens.clone()) {
            Some((access, sub)) => {
                let (status, info) = userinfo(http, base, &access, None).await;
                assert_eq!(status, StatusCode::OK, "{info}");
                assert_eq!(info["sub"], sub.as_str());
                End::Completed
            }
            None => End::Failed(tokens["error"].as_str().unwrap_or_default().to_owned()),
        }
    };
    match step {
        Step::Starting { .. } => unreachable!("no id to finish"),
        Step::Front {
            code: Some(code), ..
        } => {
            let (status, tokens) = redeem(http, base, sp, code, None).await.unwrap();
            redeemed(status, tokens).await
        }
        Step::Front { msisdn, sid, .. } => {
            answer_if_open(msisdn.clone(), sid.clone()).await;
            match wait_for_redirect(http, base, sid, None).await {
                Ok(back) => {
                    assert!(back.starts_with(&sp.redirect_uri), "{back}");
                    let q = query_of(&back);
                    match (q.get("code"), q.get("error")) {
                        (Some(code), _) => {
                            let (status, tokens) =
                                redeem(http, base, sp, code, None).await.unwrap();
                            redeemed(status, tokens).await
                        }
                        (None, Some(e)) => End::Failed(e.clone()),
                        _ => panic!("neither code nor error: {back}"),
                    }
                }
                // The code was minted before the kill and its redirect lost: the waiting URL
                // answers with an error page, never a second code.
                Err((status, body)) => {
                    assert!(
                        status.starts_with('4'),
                        "waiting URL of {sid}: {status} {body}"
                    );
                    End::Failed(format!("waiting URL {status}"))
                }
            }
        }
        Step::Ciba { msisdn, id } => {
            answer_if_open(msisdn.clone(), id.clone()).await;
            let (status, tokens) = poll_paced(http, base, sp, id).await;
            redeemed(status, tokens).await
        }
    }
}

// ---------------------------------------------------------------------------------------
// Consent
// ---------------------------------------------------------------------------------------

/// A service provider that may ask for the phone number (`mc_identity_phonenumber`).
async fn register_consent_sp(http: &reqwest::Client, base: &str) -> Sp {
    let r = http
        .post(format!("{base}/admin/v1/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "ConsentShop (test)",
            "short_name": "ConsentShop",
            "redirect_uris": [REDIRECT_URI],
            "scopes": ["openid", "mc_authn", "mc_identity_phonenumber"],
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v}");
    Sp {
        client_id: v["client_id"].as_str().unwrap().to_owned(),
        secret: v["client_secret"].as_str().unwrap().to_owned(),
        redirect_uri: REDIRECT_URI.to_owned(),
    }
}

/// A front-channel login of `sp` for [`CONSENT_SCOPE`], approved on the phone (sharing what
/// it asks): the consent question the challenge carried (`Null` when none), and the tokens.
async fn consent_login(
    http: &reqwest::Client,
    base: &str,
    sp: &Sp,
    state: &str,
    kids: &[String],
) -> (Value, Value) {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/authorize"),
        [
            ("client_id", sp.client_id.as_str()),
            ("redirect_uri", &sp.redirect_uri),
            ("response_type", "code"),
            ("scope", CONSENT_SCOPE),
            ("acr_values", "2"),
            ("version", "mc_di_r2_v2.3"),
            ("state", state),
            ("nonce", &format!("n-{state}")),
            ("login_hint", &format!("MSISDN:{CONSENT_MSISDN}")),
        ],
    )
    .unwrap();
    // As a browser: the waiting URL at once (a headless client is held at /authorize).
    let r = http
        .get(url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let sid = loc
        .strip_prefix("/authorize/wait/")
        .unwrap_or_else(|| panic!("not the waiting page: {loc}"))
        .to_owned();
    let challenge = phone_challenges(http, base, CONSENT_MSISDN, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c["id"] == sid.as_str())
        .expect("the phone is asked");
    let r = phone_answer(http, base, CONSENT_MSISDN, &sid, true, None)
        .await
        .unwrap();
    assert_eq!(r, "approved");
    let back = wait_for_redirect(http, base, &sid, None).await.unwrap();
    let code = query_of(&back)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code: {back}"));
    let (status, tokens) = redeem(http, base, sp, &code, None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{tokens}");
    check_tokens(&tokens, sp, kids);
    (challenge["consent"].clone(), tokens)
}

/// What `/userinfo` releases with `tokens`' access token (which must work).
async fn released(http: &reqwest::Client, base: &str, tokens: &Value) -> Value {
    let (status, info) = userinfo(http, base, tokens["access_token"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    info
}

/// The first `name=value` of a `Set-Cookie` header named `name`.
fn cookie_of(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// The subscriber's self-service page, after logging in to it with the phone (the login of
/// the gateway's built-in client: waiting page, OK on the phone, callback with the code).
async fn account_page(http: &reqwest::Client, base: &str, msisdn: &str) -> String {
    let r = http
        .post(format!("{base}/account/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("msisdn", &format!("+{msisdn}"))]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let state_cookie = cookie_of(&r, "mc_account_login");
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let sid = loc.strip_prefix("/authorize/wait/").unwrap().to_owned();
    let r = phone_answer(http, base, msisdn, &sid, true, None)
        .await
        .unwrap();
    assert_eq!(r, "approved");
    // The callback is the issuer's; the node serves it on its loopback address.
    let back = wait_for_redirect(http, base, &sid, None).await.unwrap();
    let back = reqwest::Url::parse(&back).unwrap();
    assert_eq!(back.path(), "/account/callback");
    let r = http
        .get(format!("{base}/account/callback?{}", back.query().unwrap()))
        .header("cookie", state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = cookie_of(&r, "mc_account");
    let r = http
        .get(format!("{base}/account"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// The whole scenario on one kind of store.
async fn crash_and_restart(dir: &TempDir, database_url: String) {
    let spec = NodeSpec {
        database_url,
        kek_file: dir.join("kek.hex"),
        json_logs: false,
        extra_toml: "[gateway.backchannel]\npoll_interval_secs = 1\n".into(),
    };
    let mut node = start_serve(dir.path(), "before", &spec, None).await;
    let base = node.base.clone();
    let http = client();
    let kids = sig_kids(&get_json(&http, &format!("{base}/jwks")).await);
    let sp = register_sp(
        &http,
        &base,
        "CrashShop",
        json!({
            "backchannel_token_delivery_mode": "poll",
            "jwks_uri": format!("{base}/demo-sp/jwks.json"),
        }),
    )
    .await;
    let sp_before = admin_get(&http, &format!("{base}/admin/v1/clients/{}", sp.client_id)).await;
    let mut msisdns: Vec<String> = (0..WORKERS)
        .flat_map(|t| (0..SUBS_PER_WORKER).map(move |i| stream_msisdn(t, i)))
        .collect();
    msisdns.extend((0..PARKED.len()).map(parked_msisdn));
    msisdns.push(CONSENT_MSISDN.to_owned());
    for m in &msisdns {
        provision(&http, &base, m).await;
    }

    // ----- consent given on the phone -------------------------------------------------------
    let consent_sp = register_consent_sp(&http, &base).await;
    let (asked, consent_tokens) = consent_login(&http, &base, &consent_sp, "consent", &kids).await;
    assert_eq!(
        asked["items"],
        json!(["mc_identity_phonenumber"]),
        "{asked}"
    );
    assert_eq!(
        released(&http, &base, &consent_tokens).await["phone_number"],
        format!("+{CONSENT_MSISDN}")
    );

    // ----- parked logins, then the stream, then kill -9 ---------------------------------
    let mut parked = Vec::new();
    for (i, p) in PARKED.iter().enumerate() {
        parked.push(park(&http, &base, &sp, *p, &parked_msisdn(i)).await);
    }
    let stream = Arc::new(Stream::default());
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..WORKERS {
        tasks.spawn(worker(
            http.clone(),
            base.clone(),
            sp.clone(),
            task,
            stream.clone(),
            kids.clone(),
        ));
    }
    eventually(
        &format!("{KILL_AFTER} completed logins"),
        DEADLINE * 2,
        || async {
            let failures = stream.early_failures.lock().unwrap().clone();
            assert!(
                failures.is_empty(),
                "logins failed before the kill: {failures:#?}"
            );
            (stream.completed.load(Ordering::SeqCst) >= KILL_AFTER).then_some(())
        },
    )
    .await;
    stream.killing.store(true, Ordering::SeqCst);
    let port = node.port;
    node.kill9();
    let killed_at = Instant::now();
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    let failures = stream.early_failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "logins failed before the kill: {failures:#?}"
    );
    let issued = stream.issued.lock().unwrap().clone();
    let in_flight: Vec<Step> = stream.steps.lock().unwrap().values().cloned().collect();
    drop(node);

    // ----- restart on the same data ------------------------------------------------------
    let node = start_serve(dir.path(), "after", &spec, Some(port)).await;
    let base = node.base.clone();
    eprintln!(
        "killed after {} completed logins ({} in flight); restarted in {:.1} s",
        issued.len(),
        in_flight.len(),
        killed_at.elapsed().as_secs_f64()
    );
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("store_pool_max_connections{pool=\"write\"} 1")
            || text.contains("store_pool_max_connections{pool=\"main\"}"),
        "{text}"
    );
    assert_eq!(
        sig_kids(&get_json(&http, &format!("{base}/jwks")).await),
        kids,
        "the signing keys survive"
    );
    let sp_after = admin_get(&http, &format!("{base}/admin/v1/clients/{}", sp.client_id)).await;
    assert_eq!(sp_after, sp_before, "the service provider is intact");
    for m in &msisdns {
        let v = admin_get(&http, &format!("{base}/admin/v1/subscribers/+{m}")).await;
        assert_eq!(v["msisdn"], m.as_str(), "{v}");
        assert_eq!(v["status"], "active", "{v}");
    }
    // The consent of before the kill: its token still releases the number, the subscriber's
    // self-service page lists it, and the provider's next login for it asks nothing.
    assert_eq!(
        released(&http, &base, &consent_tokens).await["phone_number"],
        format!("+{CONSENT_MSISDN}"),
        "the token issued with consent before the kill"
    );
    let page = account_page(&http, &base, CONSENT_MSISDN).await;
    assert!(
        page.contains("ConsentShop (test)") && page.contains("Your phone number"),
        "the self-service page lists the consent: {page}"
    );
    assert!(
        !page.contains("You withdrew your consent"),
        "the consent is not withdrawn: {page}"
    );
    let (asked, tokens) = consent_login(&http, &base, &consent_sp, "consent-again", &kids).await;
    assert_eq!(
        asked,
        Value::Null,
        "consent given before the kill is not asked again"
    );
    assert!(
        tokens["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .any(|s| s == "mc_identity_phonenumber"),
        "{tokens}"
    );
    assert_eq!(
        released(&http, &base, &tokens).await["phone_number"],
        format!("+{CONSENT_MSISDN}")
    );

    // Every token of before the kill.
    assert!(issued.len() >= KILL_AFTER);
    for t in &issued {
        let (status, info) = userinfo(&http, &base, &t.access_token, None).await;
        assert_eq!(status, StatusCode::OK, "{info}");
        assert_eq!(info["sub"], t.sub.as_str(), "{info}");
    }

    // ----- every login of before the kill ends ------------------------------------------
    // Open challenges now: each must belong to a login the test knows, or to one whose
    // first request was on its way at the kill (its id never reached the SP).
    let starting: HashSet<&str> = in_flight
        .iter()
        .filter(|s| matches!(s, Step::Starting { .. }))
        .map(Step::msisdn)
        .collect();
    let known: HashSet<String> = in_flight
        .iter()
        .chain(parked.iter().map(|(_, s)| s))
        .filter_map(|s| match s {
            Step::Front { sid, .. } => Some(sid.clone()),
            Step::Ciba { id, .. } => Some(id.clone()),
            Step::Starting { .. } => None,
        })
        .collect();
    let mut orphans = 0;
    for m in &msisdns {
        for c in phone_challenges(&http, &base, m, 0).await.unwrap() {
            let id = c["id"].as_str().unwrap();
            if known.contains(id) {
                continue;
            }
            assert!(
                starting.contains(m.as_str()),
                "an open challenge for {m} that no login accounts for: {c}"
            );
            // Nobody can finish it (the SP never learned its id): the phone declines it.
            let r = phone_answer(&http, &base, m, id, false, None)
                .await
                .unwrap();
            assert_eq!(r, "denied");
            orphans += 1;
        }
    }

    let mut ends: HashMap<End, usize> = HashMap::new();
    for step in &in_flight {
        if matches!(step, Step::Starting { .. }) {
            continue;
        }
        let end = finish(&http, &base, &sp, step, true, &kids).await;
        match &end {
            End::Completed => {}
            // The code's redemption had committed before the kill, or the redirect with the
            // code was delivered and lost.
            End::Failed(e) => assert!(
                e == "invalid_grant" || e.starts_with("waiting URL"),
                "{step:?}: {e}"
            ),
        }
        *ends.entry(end).or_default() += 1;
    }
    for (p, step) in &parked {
        let approve = *p != Parked::FrontPendingDeny;
        let end = if *p == Parked::CibaExpiring {
            // Nobody answers: the worker ends it when its 3 seconds are up.
            let id = match step {
                Step::Ciba { id, .. } => id.clone(),
                _ => unreachable!(),
            };
            let (status, v) = poll_paced(&http, &base, &sp, &id).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
            End::Failed(v["error"].as_str().unwrap_or_default().to_owned())
        } else {
            finish(&http, &base, &sp, step, approve, &kids).await
        };
        let expected = match p {
            Parked::FrontPendingDeny => End::Failed("access_denied".into()),
            Parked::CibaExpiring => End::Failed("expired_token".into()),
            _ => End::Completed,
        };
        assert_eq!(end, expected, "parked {p:?}");
    }
    eprintln!("in-flight logins after the restart: {ends:?}; orphaned challenges: {orphans}");

    // ----- no MSISDN left locked ----------------------------------------------------------
    let fresh = Stream::default();
    for (i, m) in msisdns.iter().enumerate() {
        let done = if i % 2 == 0 {
            front_login(&http, &base, &sp, m, i, &fresh, &kids).await
        } else {
            ciba_login(&http, &base, &sp, m, i, &fresh, &kids).await
        };
        let t = done.unwrap_or_else(|e| panic!("{m} cannot log in after the restart: {e:?}"));
        let (status, _) = userinfo(&http, &base, &t.access_token, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    drop(node);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_survives_kill_9_during_a_stream_of_logins() {
    let dir = TempDir::new("crash-sqlite");
    let url = format!("sqlite:{}", dir.join("data/mobileconnect.db").display());
    crash_and_restart(&dir, url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_survives_kill_9_during_a_stream_of_logins() {
    let Some(server) = pg_server("postgres_survives_kill_9_during_a_stream_of_logins") else {
        return;
    };
    let dir = TempDir::new("crash-pg");
    let schema = PgSchema::create(server, "crash").await;
    crash_and_restart(&dir, schema.url()).await;
    schema.drop_schema().await;
}
