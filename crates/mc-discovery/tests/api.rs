//! The Discovery API over HTTP (digest §2): every request form, the 200/202/302 answers,
//! `subscriber_id` decrypting to the MSISDN with the serving operator's private key, and
//! bad input answered with the documented errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{APP_ID, APP_SECRET, REDIRECT, client, links, query_of, start, start_at};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

/// `POST` form `MSISDN=…&Redirect_URL=…` (the Java SDK's request): the serving operator by
/// number range, its endpoints, the application's credentials there, `ttl` in epoch
/// milliseconds, `correlation_id` echoed, and `subscriber_id` that the operator decrypts.
#[tokio::test]
async fn post_form_with_msisdn_answers_the_operator_and_an_encrypted_msisdn() {
    let svc = start().await;
    let before = now_ms();
    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .form(&[
            ("MSISDN", "+447700900301"),
            ("Redirect_URL", REDIRECT),
            ("correlation_id", "corr-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["cache-control"].to_str().unwrap(),
        "no-store"
    );
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ttl = body["ttl"].as_u64().unwrap();
    let day = 24 * 3600 * 1000;
    assert!(
        ttl >= before + day && ttl <= now_ms() + day,
        "ttl is now + 1 day in epoch ms: {ttl}"
    );
    assert_eq!(body["correlation_id"], "corr-1");
    let r = &body["response"];
    assert_eq!(r["serving_operator"], "op-a");
    assert_eq!(r["client_id"], "client-at-op-a");
    assert_eq!(r["client_secret"], "secret-at-op-a");
    assert_eq!(r["client_name"], "Shop at A");
    assert_eq!(r["country"], "United Kingdom");
    assert_eq!(r["currency"], "GBP");
    let sub = body["subscriber_id"].as_str().unwrap();
    assert_eq!(sub.len(), 512, "an RSA-2048 ciphertext in hex");
    assert_eq!(r["subscriber_id"], sub);
    assert_eq!(svc.op("op-a").decrypt(sub), "447700900301");

    let l = links(&body);
    let base = "https://op-a.example";
    for (rel, href) in [
        ("authorization", format!("{base}/authorize")),
        ("token", format!("{base}/token")),
        ("userinfo", format!("{base}/userinfo")),
        ("premiuminfo", format!("{base}/premiuminfo")),
        ("jwks", format!("{base}/jwks")),
        ("tokenrevoke", format!("{base}/revoke")),
        ("tokenrefresh", format!("{base}/token")),
        (
            "openid-configuration",
            format!("{base}/.well-known/openid-configuration"),
        ),
        ("issuer", base.to_string()),
        ("scope", "openid mc_authn mc_authz".to_string()),
        ("applicationShortName", "Shop at A".to_string()),
    ] {
        assert_eq!(l.get(rel), Some(&href), "rel {rel}");
    }
    assert!(!l.contains_key("operatorSelection"));
}

/// `POST` JSON (the aggregator client's form); a ported number goes to its new operator,
/// and without an operator-specific name the application's short name is used.
#[tokio::test]
async fn post_json_with_a_ported_number_answers_the_new_operator() {
    let svc = start().await;
    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .json(&json!({"MSISDN": "447700900399", "Redirect_URL": REDIRECT}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["serving_operator"], "op-b");
    assert_eq!(body["response"]["client_name"], "OnlineShop");
    let sub = body["subscriber_id"].as_str().unwrap();
    assert_eq!(svc.op("op-b").decrypt(sub), "447700900399");
    let l = links(&body);
    assert!(
        !l.contains_key("premiuminfo"),
        "a rel the operator lacks is left out"
    );
    assert_eq!(l["applicationShortName"], "OnlineShop");
    assert!(body.get("correlation_id").is_none());

    // A neighbour of the ported number stays with the longest matching range (op-a's
    // 9-digit prefix beats op-b's 7-digit one).
    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .json(&json!({"MSISDN": 447700900398u64, "Redirect_URL": REDIRECT}))
        .send()
        .await
        .unwrap();
    let (_, body) = json_of(resp).await;
    assert_eq!(body["response"]["serving_operator"], "op-a");
    // A number only op-b's shorter range covers.
    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .form(&[("MSISDN", "447700912345"), ("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    let (_, body) = json_of(resp).await;
    assert_eq!(body["response"]["serving_operator"], "op-b");
}

/// `GET` with `Selected-MCC`/`MNC` (the call after operator selection) and with
/// `Identified-MCC`/`MNC` (a native app reading the SIM): 200 without `subscriber_id`.
#[tokio::test]
async fn get_with_mcc_mnc_answers_without_subscriber_id() {
    let svc = start().await;
    for (mcc, mnc, want) in [
        ("Selected-MCC", "Selected-MNC", "op-b"),
        ("Identified-MCC", "Identified-MNC", "op-b"),
    ] {
        let resp = client()
            .get(svc.discovery_url())
            .basic_auth(APP_ID, Some(APP_SECRET))
            .query(&[
                ("Redirect_URL", REDIRECT),
                (mcc, "234"),
                (mnc, "30"),
                ("correlation_id", "c-2"),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK, "{mcc}: {body}");
        assert_eq!(body["response"]["serving_operator"], want);
        assert!(body.get("subscriber_id").is_none());
        assert_eq!(body["correlation_id"], "c-2");
    }
    // The trailing-slash URL the older sandbox used answers too; parameter names are
    // case-insensitive.
    let resp = client()
        .get(format!("{}/", svc.discovery_url()))
        .basic_auth(APP_ID, Some(APP_SECRET))
        .query(&[
            ("redirect_url", REDIRECT),
            ("selected-mcc", "234"),
            ("selected-mnc", "15"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["serving_operator"], "op-a");
}

/// `X-Source-IP` inside an operator's mobile-data range identifies it; outside every
/// range, or with `Using-Mobile-Data=0`, the answer is operator selection.
#[tokio::test]
async fn x_source_ip_identifies_the_operator_by_mobile_data_range() {
    let svc = start().await;
    let ask = |ip: &'static str, mobile: &'static str| {
        client()
            .get(svc.discovery_url())
            .basic_auth(APP_ID, Some(APP_SECRET))
            .header("X-Source-IP", ip)
            .query(&[("Redirect_URL", REDIRECT), ("Using-Mobile-Data", mobile)])
            .send()
    };
    let (status, body) = json_of(ask("10.70.1.2", "1").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["serving_operator"], "op-b");
    let (status, body) = json_of(ask("192.0.2.1", "1").await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, _) = json_of(ask("10.70.1.2", "0").await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// No hint: 202 with an `operatorSelection` link (JSON clients), or 302 to the page for
/// `Accept: text/html`; `Manually-Select` forces selection even with an MSISDN.
#[tokio::test]
async fn no_hint_answers_operator_selection_as_202_or_302() {
    let svc = start_at("/discovery").await;
    assert!(svc.base.ends_with("/discovery"));
    let resp = client()
        .get(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .query(&[("Redirect_URL", REDIRECT), ("correlation_id", "c-3")])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["correlation_id"], "c-3");
    let link = &body["links"][0];
    assert_eq!(link["rel"], "operatorSelection");
    let href = link["href"].as_str().unwrap();
    assert!(
        href.starts_with(&format!(
            "{}/v2/discovery/users/operator-selection?session_id=",
            svc.base
        )),
        "{href}"
    );
    let page = client().get(href).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    let resp = client()
        .get(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .header("Accept", "text/html")
        .query(&[("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(location.contains("/v2/discovery/users/operator-selection?session_id="));

    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .form(&[
            ("MSISDN", "447700900301"),
            ("Redirect_URL", REDIRECT),
            ("Manually-Select", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, String, String, Value) {
    let (status, body) = json_of(resp).await;
    let error = body["error"].as_str().unwrap_or_default().to_string();
    let description = body["description"].as_str().unwrap_or_default().to_string();
    assert!(
        !description.is_empty(),
        "errors carry a description: {body}"
    );
    assert_eq!(body["error_description"], body["description"]);
    (status, error, description, body)
}

/// Malformed MSISDN, missing or unregistered `Redirect_URL`, MSISDN in a URL, broken
/// MCC/MNC, bad `X-Source-IP`, an unsupported body: 400 `invalid_request` with a
/// description, `correlation_id` echoed.
#[tokio::test]
async fn bad_input_is_invalid_request_with_a_description() {
    let svc = start().await;
    let post = |form: Vec<(&'static str, &'static str)>| {
        client()
            .post(svc.discovery_url())
            .basic_auth(APP_ID, Some(APP_SECRET))
            .form(&form)
            .send()
    };
    for (form, want) in [
        (
            vec![
                ("MSISDN", "07700 900301"),
                ("Redirect_URL", REDIRECT),
                ("correlation_id", "c-bad"),
            ],
            "MSISDN",
        ),
        (
            vec![("MSISDN", "44770090030a"), ("Redirect_URL", REDIRECT)],
            "MSISDN",
        ),
        (vec![("MSISDN", "447700900301")], "Redirect_URL is required"),
        (
            vec![
                ("MSISDN", "447700900301"),
                ("Redirect_URL", "https://evil.example/cb"),
            ],
            "not registered",
        ),
        (
            vec![("Redirect_URL", REDIRECT), ("Selected-MCC", "234")],
            "go together",
        ),
        (
            vec![
                ("Redirect_URL", REDIRECT),
                ("Identified-MCC", "2345"),
                ("Identified-MNC", "15"),
            ],
            "3 digits",
        ),
    ] {
        let (status, error, description, body) = error_of(post(form.clone()).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {body}");
        assert_eq!(error, "invalid_request", "{form:?}");
        assert!(description.contains(want), "{form:?}: {description}");
        if form.iter().any(|(k, _)| *k == "correlation_id") {
            assert_eq!(body["correlation_id"], "c-bad");
        }
    }

    // MSISDN in the query string (it would land in access logs).
    let resp = client()
        .get(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .query(&[("MSISDN", "447700900301"), ("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    let (status, _, description, _) = error_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(description.contains("POST"), "{description}");

    let resp = client()
        .get(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .header("X-Source-IP", "not-an-ip")
        .query(&[("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, StatusCode::BAD_REQUEST);

    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .header("Content-Type", "text/plain")
        .body("MSISDN=447700900301")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, StatusCode::BAD_REQUEST);

    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, StatusCode::BAD_REQUEST);

    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .form(&[
            ("Redirect_URL", REDIRECT),
            ("Redirect_URL", "https://other.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, StatusCode::BAD_REQUEST);
}

/// Wrong, missing or malformed credentials, an unknown client, and the SP's *operator*
/// credentials used at Discovery: 401 `invalid_client` with `WWW-Authenticate`.
#[tokio::test]
async fn wrong_credentials_are_invalid_client() {
    let svc = start().await;
    let form = [("MSISDN", "447700900301"), ("Redirect_URL", REDIRECT)];
    let attempts = vec![
        client()
            .post(svc.discovery_url())
            .basic_auth(APP_ID, Some("wrong-secret")),
        client()
            .post(svc.discovery_url())
            .basic_auth("nobody", Some(APP_SECRET)),
        client()
            .post(svc.discovery_url())
            .basic_auth("client-at-op-a", Some("secret-at-op-a")),
        client().post(svc.discovery_url()),
        client()
            .post(svc.discovery_url())
            .header("Authorization", "Bearer abc"),
        client()
            .post(svc.discovery_url())
            .header("Authorization", "Basic !!!"),
    ];
    for (i, req) in attempts.into_iter().enumerate() {
        let resp = req
            .form(&form)
            .query(&[("correlation_id", "c-401")])
            .send()
            .await
            .unwrap();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let (status, error, _, body) = error_of(resp).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}: {body}");
        assert_eq!(error, "invalid_client");
        assert_eq!(body["correlation_id"], "c-401");
        assert!(challenge.unwrap().starts_with("Basic"));
        assert!(body.get("response").is_none(), "no data on a failed login");
    }
}

/// Unknown MSISDN, unknown MCC/MNC, a disabled operator, an operator where the
/// application has no credentials: 404 `Not_Found_Entity` "Operator Not Found".
#[tokio::test]
async fn unknown_operator_is_not_found_entity() {
    let svc = start().await;
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("unknown number", vec![("MSISDN", "12025550100")]),
        ("disabled operator", vec![("MSISDN", "447900123456")]),
        (
            "unknown mcc/mnc",
            vec![("Selected-MCC", "999"), ("Selected-MNC", "99")],
        ),
        (
            "disabled by mcc/mnc",
            vec![("Identified-MCC", "234"), ("Identified-MNC", "99")],
        ),
        ("no credentials there", vec![("MSISDN", "33612345678")]),
    ];
    for (what, mut form) in cases {
        form.push(("Redirect_URL", REDIRECT));
        form.push(("correlation_id", "c-404"));
        let resp = client()
            .post(svc.discovery_url())
            .basic_auth(APP_ID, Some(APP_SECRET))
            .form(&form)
            .send()
            .await
            .unwrap();
        let (status, error, description, body) = error_of(resp).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
        assert_eq!(error, "Not_Found_Entity", "{what}");
        assert!(description.starts_with("Operator Not Found"), "{what}");
        assert_eq!(body["correlation_id"], "c-404");
    }
}

/// A disabled application cannot use Discovery.
#[tokio::test]
async fn a_disabled_application_is_refused() {
    let svc = start().await;
    let store: &dyn mc_store::DiscoveryStore = &*svc.store;
    let mut app = store.get_discovery_app(APP_ID).await.unwrap().unwrap();
    app.enabled = false;
    store.update_discovery_app(&app).await.unwrap();
    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .form(&[("MSISDN", "447700900301"), ("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// The operator-selection page: typing a number returns to `Redirect_URL` with `mcc_mnc`
/// and a `subscriber_id` the operator decrypts; picking an operator returns `mcc_mnc`;
/// the SP's second call with `Selected-MCC`/`MNC` then gets that operator.
#[tokio::test]
async fn operator_selection_page_redirects_back_with_mcc_mnc_and_subscriber_id() {
    let svc = start().await;
    let resp = client()
        .get(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .query(&[("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    let (_, body) = json_of(resp).await;
    let href = body["links"][0]["href"].as_str().unwrap().to_string();
    let session_id = query_of(&href)["session_id"].clone();

    let page = client().get(&href).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("Online Shop"));
    assert!(html.contains("Operator A") && html.contains("Operator B"));
    assert!(
        !html.contains("Opérateur C") && !html.contains("Operator Off"),
        "only operators where the application has credentials (and enabled) are offered"
    );
    assert!(html.contains("name=\"msisdn\""));

    let form_url = svc.url("/v2/discovery/users/operator-selection");
    let resp = client()
        .post(&form_url)
        .form(&[
            ("session_id", session_id.as_str()),
            ("msisdn", "+44 7700 900399"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let q = query_of(&location);
    assert_eq!(q["mcc_mnc"], "234_30");
    assert_eq!(svc.op("op-b").decrypt(&q["subscriber_id"]), "447700900399");

    let resp = client()
        .post(&form_url)
        .form(&[("session_id", session_id.as_str()), ("mcc_mnc", "234_15")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let q = query_of(&location);
    assert_eq!(q.get("mcc_mnc").map(String::as_str), Some("234_15"));
    assert!(!q.contains_key("subscriber_id"));

    // The SP's second discovery call.
    let (mcc, mnc) = q["mcc_mnc"].split_once('_').unwrap();
    let resp = client()
        .get(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .query(&[
            ("Redirect_URL", REDIRECT),
            ("Selected-MCC", mcc),
            ("Selected-MNC", mnc),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"]["serving_operator"], "op-a");

    // Cancel goes back with an error the SDKs read.
    let resp = client()
        .post(&form_url)
        .form(&[("session_id", session_id.as_str()), ("cancel", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "access_denied");
}

/// Bad input on the page re-renders it with a clear message (no redirect); a forged or
/// missing session gets an error page and never a redirect.
#[tokio::test]
async fn operator_selection_page_explains_bad_input() {
    let svc = start().await;
    let href = mc_discovery::api::selection_url(&svc.state, APP_ID, REDIRECT, None).unwrap();
    let session_id = query_of(&href)["session_id"].clone();
    let form_url = svc.url("/v2/discovery/users/operator-selection");
    for (msisdn, status, want) in [
        (
            "07700 900301",
            StatusCode::BAD_REQUEST,
            "international format",
        ),
        ("hello", StatusCode::BAD_REQUEST, "international format"),
        ("+1 202 555 0100", StatusCode::NOT_FOUND, "could not find"),
        ("+33 6 12 34 56 78", StatusCode::NOT_FOUND, "not available"),
    ] {
        let resp = client()
            .post(&form_url)
            .form(&[("session_id", session_id.as_str()), ("msisdn", msisdn)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{msisdn}");
        let html = resp.text().await.unwrap();
        assert!(html.contains(want), "{msisdn}: {html}");
        assert!(html.contains("role=\"alert\""));
    }
    // Markup typed into the form is escaped when echoed.
    let resp = client()
        .post(&form_url)
        .form(&[
            ("session_id", session_id.as_str()),
            ("msisdn", "<script>x</script>"),
        ])
        .send()
        .await
        .unwrap();
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script>x"));
    // An operator that is not offered.
    let resp = client()
        .post(&form_url)
        .form(&[("session_id", session_id.as_str()), ("mcc_mnc", "208_01")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let mut forged = session_id.clone();
    forged.pop();
    forged.push(if session_id.ends_with('A') { 'B' } else { 'A' });
    for s in [forged.as_str(), "", "a.b.c"] {
        let resp = client()
            .post(&form_url)
            .form(&[("session_id", s), ("msisdn", "447700900301")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{s}");
        assert!(resp.headers().get("location").is_none());
        assert!(resp.text().await.unwrap().contains("expired"));
        let page = client()
            .get(&form_url)
            .query(&[("session_id", s)])
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    }
}

/// The `subscriber_id` is exactly what the operator's Identity Gateway decrypts from a
/// `login_hint=ENCR_MSISDN:…`: the gateway's own key ring, its JWKS registered as the
/// operator's key, and `mc-core`'s hint parser.
#[tokio::test]
async fn subscriber_id_is_an_encr_msisdn_login_hint_the_gateway_decrypts() {
    use mc_core::login_hint::LoginHint;
    use mc_discovery::registry::{self, OperatorSpec};
    let svc = start().await;
    let gw_store = mc_store_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let kek = mc_gateway::keys::Kek::new(&[3u8; 32]).unwrap();
    let ring = mc_gateway::keys::KeyRing::load_or_create(&gw_store, &kek, 1_700_000_000)
        .await
        .unwrap();
    let store: &dyn mc_store::DiscoveryStore = &*svc.store;
    let mut spec: OperatorSpec = svc.op("op-a").spec("Operator A", "United Kingdom", "GBP");
    spec.encryption_jwk = Some(ring.jwks());
    registry::update_operator(store, "op-a", &spec)
        .await
        .unwrap();
    svc.state.reload().await.unwrap();

    let resp = client()
        .post(svc.discovery_url())
        .basic_auth(APP_ID, Some(APP_SECRET))
        .form(&[("MSISDN", "447700900301"), ("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sub = body["subscriber_id"].as_str().unwrap();
    let Some(LoginHint::EncryptedMsisdn(candidates)) =
        LoginHint::parse(&format!("ENCR_MSISDN:{sub}"))
    else {
        panic!("not an ENCR_MSISDN hint");
    };
    assert_eq!(
        ring.decrypt_msisdn(&candidates)
            .map(|m| m.as_str().to_string()),
        Some("447700900301".to_string())
    );
}
