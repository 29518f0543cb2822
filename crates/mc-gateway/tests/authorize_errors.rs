//! Every row of the authorization error table (digest §4.6, `McError`, docs/decisions.md)
//! over HTTP: the exact `error` and `error_description`, page or redirect, and what is
//! echoed. Each case is one mutation of a valid request; the tables run through GET and POST.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use common::*;
use flows::*;
use mc_gateway::registry::{self, SubscriberSpec};
use mc_store::{ClientStatus, SubscriberStatus};

const MSISDN: &str = "447700900301";
/// Provisioned but suspended (stolen phone).
const SUSPENDED: &str = "447700900304";
/// Provisioned with a capability but no app: no authenticator can reach it.
const NO_APP: &str = "447700900305";
/// Never provisioned.
const UNKNOWN: &str = "447700900999";

const DUPLICATES: &str = "Multiple parameter names in the authorization request. Malformed request, duplicate parameter entries";
const NOT_REGISTERED: &str = "The redirect_uri is not registered for this client";

/// A refusal shown on a page: the client or its redirect URI could not be trusted.
struct PageCase {
    name: &'static str,
    mutate: fn(&mut Q),
    description: &'static str,
}

/// A refusal redirected to the verified redirect URI.
struct RedirectCase {
    name: &'static str,
    mutate: fn(&mut Q),
    error: &'static str,
    description: &'static str,
    state_echoed: bool,
    correlation_id_echoed: bool,
}

const fn redirected(
    name: &'static str,
    mutate: fn(&mut Q),
    error: &'static str,
    description: &'static str,
) -> RedirectCase {
    RedirectCase {
        name,
        mutate,
        error,
        description,
        state_echoed: true,
        correlation_id_echoed: true,
    }
}

fn page_cases() -> Vec<PageCase> {
    let case = |name, mutate, description| PageCase {
        name,
        mutate,
        description,
    };
    vec![
        case(
            "client_id missing",
            |q| {
                q.del("client_id");
            },
            "MANDATORY parameter client_id is missing",
        ),
        case(
            "client_id empty",
            |q| {
                q.set("client_id", "");
            },
            "MANDATORY parameter client_id is missing",
        ),
        case(
            "client_id unknown",
            |q| {
                q.set("client_id", "no-such-client");
            },
            "The client_id is not registered",
        ),
        case(
            "client_id absurdly long",
            |q| {
                q.set("client_id", &"c".repeat(300));
            },
            "The client_id is not registered",
        ),
        case(
            "redirect_uri missing",
            |q| {
                q.del("redirect_uri");
            },
            "MANDATORY parameter redirect_uri is missing",
        ),
        case(
            "redirect_uri of another site",
            |q| {
                q.set("redirect_uri", "https://evil.example/cb");
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri with a trailing slash",
            |q| {
                let r = q.get("redirect_uri") + "/";
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri as a prefix",
            |q| {
                let mut r = q.get("redirect_uri");
                r.pop();
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri with an extra path segment",
            |q| {
                let r = q.get("redirect_uri") + "/more";
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri with an extra query",
            |q| {
                let r = q.get("redirect_uri") + "?x=1";
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri with a fragment",
            |q| {
                let r = q.get("redirect_uri") + "#f";
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri with an upper-case scheme",
            |q| {
                let r = q.get("redirect_uri").replacen("http://", "HTTP://", 1);
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri as https",
            |q| {
                let r = q.get("redirect_uri").replacen("http://", "https://", 1);
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri with localhost for 127.0.0.1",
            |q| {
                let r = q.get("redirect_uri").replacen("127.0.0.1", "localhost", 1);
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri percent-encoded differently",
            |q| {
                let r = q.get("redirect_uri").replacen("/cb/", "/%63b/", 1);
                q.set("redirect_uri", &r);
            },
            NOT_REGISTERED,
        ),
        case(
            "redirect_uri unregistered and everything else wrong too",
            |q| {
                q.set("redirect_uri", "https://evil.example/cb")
                    .del("scope")
                    .del("state")
                    .set("response_type", "token");
            },
            NOT_REGISTERED,
        ),
        case(
            "client_id twice, same value",
            |q| {
                let c = q.get("client_id");
                q.add("client_id", &c);
            },
            DUPLICATES,
        ),
        case(
            "client_id twice, different values",
            |q| {
                q.add("client_id", "other");
            },
            DUPLICATES,
        ),
        case(
            "redirect_uri twice, same value",
            |q| {
                let r = q.get("redirect_uri");
                q.add("redirect_uri", &r);
            },
            DUPLICATES,
        ),
        case(
            "redirect_uri twice, second one foreign",
            |q| {
                q.add("redirect_uri", "https://evil.example/cb");
            },
            DUPLICATES,
        ),
    ]
}

fn redirect_cases() -> Vec<RedirectCase> {
    const INVALID_REQUEST: &str = "invalid_request";
    const ACCESS_DENIED: &str = "access_denied";
    const RESPONSE_TYPE: &str = "MANDATORY parameter response_type is missing or value is invalid";
    const SCOPE_MISSING: &str = "MANDATORY parameter scope is missing";
    const SCOPE_INVALID: &str = "The scope value is invalid";
    const VERSION: &str = "MANDATORY parameter version is missing / invalid.";
    const STATE: &str = "RECOMMENDED parameter state is invalid";
    const ACR: &str = "MANDATORY parameter acr_values are missing or invalid values";
    const HINT: &str = "Invalid value for login_hint or login_hint_token";
    const CLAIMS: &str = "claims value is invalid";
    const MAX_AGE: &str = "max_age value is invalid";
    const CLIENT_NAME: &str =
        "MANDATORY parameter client_name is missing or does not match the registered name";
    const CONTEXT: &str = "MANDATORY parameter context is missing or invalid";
    const PKCE: &str =
        "code_challenge or code_challenge_method is invalid (only S256 is supported)";
    const LOA: &str = "The requested level of assurance cannot be provided for this user";
    const UNKNOWN_USER: &str = "Unknown Mobile Connect User";
    fn authz(q: &mut Q) {
        q.set("scope", "openid mc_authz")
            .set("client_name", "OnlineShopper")
            .set("context", "Pay 10 GBP");
    }
    vec![
        // response_type
        redirected(
            "response_type missing",
            |q| {
                q.del("response_type");
            },
            INVALID_REQUEST,
            RESPONSE_TYPE,
        ),
        redirected(
            "response_type token",
            |q| {
                q.set("response_type", "token");
            },
            INVALID_REQUEST,
            RESPONSE_TYPE,
        ),
        redirected(
            "response_type code id_token",
            |q| {
                q.set("response_type", "code id_token");
            },
            INVALID_REQUEST,
            RESPONSE_TYPE,
        ),
        // scope
        redirected(
            "scope missing",
            |q| {
                q.del("scope");
            },
            "invalid_scope",
            SCOPE_MISSING,
        ),
        redirected(
            "scope without openid",
            |q| {
                q.set("scope", "mc_authn");
            },
            "invalid_scope",
            SCOPE_MISSING,
        ),
        redirected(
            "scope with an unknown value",
            |q| {
                q.set("scope", "openid mc_bogus");
            },
            "invalid_scope",
            SCOPE_INVALID,
        ),
        redirected(
            "scope not registered for the client",
            |q| {
                q.set("scope", "openid mc_kyc_plain");
            },
            "invalid_scope",
            SCOPE_INVALID,
        ),
        redirected(
            "mc_authn and mc_authz together",
            |q| {
                authz(q);
                q.set("scope", "openid mc_authn mc_authz");
            },
            "invalid_scope",
            SCOPE_INVALID,
        ),
        redirected(
            "mc_atp on the front channel",
            |q| {
                q.set("scope", "openid mc_atp");
            },
            "invalid_scope",
            SCOPE_INVALID,
        ),
        // version
        redirected(
            "version missing for an mc_ scope",
            |q| {
                q.del("version");
            },
            INVALID_REQUEST,
            VERSION,
        ),
        redirected(
            "version unknown",
            |q| {
                q.set("version", "mc_v9");
            },
            INVALID_REQUEST,
            VERSION,
        ),
        redirected(
            "version server-initiated on the front channel",
            |q| {
                q.set("version", "mc_si_r2_v1.0");
            },
            INVALID_REQUEST,
            VERSION,
        ),
        // state: never echoed when it is the problem
        RedirectCase {
            state_echoed: false,
            ..redirected(
                "state missing",
                |q| {
                    q.del("state");
                },
                INVALID_REQUEST,
                STATE,
            )
        },
        RedirectCase {
            state_echoed: false,
            ..redirected(
                "state with a newline",
                |q| {
                    q.set("state", "a\nb");
                },
                INVALID_REQUEST,
                STATE,
            )
        },
        RedirectCase {
            state_echoed: false,
            ..redirected(
                "state with a NUL",
                |q| {
                    q.set("state", "a\0b");
                },
                INVALID_REQUEST,
                STATE,
            )
        },
        RedirectCase {
            state_echoed: false,
            ..redirected(
                "state over 512 bytes",
                |q| {
                    q.set("state", &"s".repeat(513));
                },
                INVALID_REQUEST,
                STATE,
            )
        },
        // nonce
        redirected(
            "nonce missing",
            |q| {
                q.del("nonce");
            },
            INVALID_REQUEST,
            "MANDATORY parameter nonce is missing (or) invalid",
        ),
        redirected(
            "nonce with a control character",
            |q| {
                q.set("nonce", "n\x07");
            },
            INVALID_REQUEST,
            "MANDATORY parameter nonce is missing (or) invalid",
        ),
        // acr_values
        redirected(
            "acr_values missing for an mc_ product",
            |q| {
                q.del("acr_values");
            },
            INVALID_REQUEST,
            ACR,
        ),
        redirected(
            "acr_values unsupported (4)",
            |q| {
                q.set("acr_values", "4");
            },
            INVALID_REQUEST,
            ACR,
        ),
        redirected(
            "acr_values garbage",
            |q| {
                q.set("acr_values", "loa-2");
            },
            INVALID_REQUEST,
            ACR,
        ),
        // login hints
        redirected(
            "login_hint MSISDN not a number",
            |q| {
                q.set("login_hint", "MSISDN:xyz");
            },
            INVALID_REQUEST,
            HINT,
        ),
        redirected(
            "login_hint unknown prefix",
            |q| {
                q.set("login_hint", "EMAIL:someone@example.com");
            },
            INVALID_REQUEST,
            HINT,
        ),
        redirected(
            "login_hint without prefix",
            |q| {
                q.set("login_hint", "447700900301");
            },
            INVALID_REQUEST,
            HINT,
        ),
        redirected(
            "login_hint ENCR_MSISDN that decrypts to nothing",
            |q| {
                q.set("login_hint", &format!("ENCR_MSISDN:{}", "ab".repeat(256)));
            },
            INVALID_REQUEST,
            HINT,
        ),
        redirected(
            "login_hint and login_hint_token together",
            |q| {
                q.set("login_hint_token", "a.b.c");
            },
            INVALID_REQUEST,
            HINT,
        ),
        redirected(
            "login_hint_token not a JWT",
            |q| {
                q.del("login_hint").set("login_hint_token", "notajwt");
            },
            INVALID_REQUEST,
            HINT,
        ),
        redirected(
            "login_hint_token not signed by us",
            |q| {
                q.del("login_hint").set(
                    "login_hint_token",
                    "eyJhbGciOiJSUzI1NiJ9.eyJNU0lTRE4iOiI0NDc3MDA5MDAzMDEifQ.c2ln",
                );
            },
            INVALID_REQUEST,
            HINT,
        ),
        // duplicates (other than client_id / redirect_uri): redirected
        redirected(
            "scope twice",
            |q| {
                q.add("scope", "openid");
            },
            INVALID_REQUEST,
            DUPLICATES,
        ),
        redirected(
            "login_hint twice",
            |q| {
                q.add("login_hint", "MSISDN:447700900302");
            },
            INVALID_REQUEST,
            DUPLICATES,
        ),
        redirected(
            "claims twice (the Java SDK's KYC copy)",
            |q| {
                q.add("claims", r#"{"userinfo":{"phone_number":null}}"#)
                    .add("claims", r#"{"premiuminfo":{"name":null}}"#);
            },
            INVALID_REQUEST,
            DUPLICATES,
        ),
        redirected(
            "nonce twice, one empty",
            |q| {
                q.add("nonce", "");
            },
            INVALID_REQUEST,
            DUPLICATES,
        ),
        // prompt / display / claims / max_age
        redirected(
            "prompt unknown",
            |q| {
                q.set("prompt", "bogus");
            },
            INVALID_REQUEST,
            "Prompt value is invalid",
        ),
        redirected(
            "prompt none with login",
            |q| {
                q.set("prompt", "none login");
            },
            INVALID_REQUEST,
            "Prompt value is invalid",
        ),
        redirected(
            "prompt none",
            |q| {
                q.set("prompt", "none");
            },
            "login_required",
            "User interaction is required to authenticate",
        ),
        redirected(
            "display unknown",
            |q| {
                q.set("display", "tv");
            },
            INVALID_REQUEST,
            "Invalid display value (or) not supported.",
        ),
        redirected(
            "claims not JSON",
            |q| {
                q.set("claims", "{not json");
            },
            INVALID_REQUEST,
            CLAIMS,
        ),
        redirected(
            "claims an array",
            |q| {
                q.set("claims", "[]");
            },
            INVALID_REQUEST,
            CLAIMS,
        ),
        redirected(
            "claims with an unknown member",
            |q| {
                q.set("claims", r#"{"foo":{}}"#);
            },
            INVALID_REQUEST,
            CLAIMS,
        ),
        redirected(
            "claims member not an object",
            |q| {
                q.set("claims", r#"{"userinfo":1}"#);
            },
            INVALID_REQUEST,
            CLAIMS,
        ),
        redirected(
            "max_age negative",
            |q| {
                q.set("max_age", "-1");
            },
            INVALID_REQUEST,
            MAX_AGE,
        ),
        redirected(
            "max_age not a number",
            |q| {
                q.set("max_age", "an hour");
            },
            INVALID_REQUEST,
            MAX_AGE,
        ),
        redirected(
            "max-age (Java spelling) not a number",
            |q| {
                q.set("max-age", "1e3");
            },
            INVALID_REQUEST,
            MAX_AGE,
        ),
        redirected(
            "max_age and max-age disagree",
            |q| {
                q.set("max_age", "10").set("max-age", "20");
            },
            INVALID_REQUEST,
            MAX_AGE,
        ),
        // mc_authz transaction text
        redirected(
            "mc_authz without client_name",
            |q| {
                authz(q);
                q.del("client_name");
            },
            INVALID_REQUEST,
            CLIENT_NAME,
        ),
        redirected(
            "mc_authz with the wrong client_name",
            |q| {
                authz(q);
                q.set("client_name", "OnlineShopper Ltd");
            },
            INVALID_REQUEST,
            CLIENT_NAME,
        ),
        redirected(
            "mc_authz with client_name in another case",
            |q| {
                authz(q);
                q.set("client_name", "onlineshopper");
            },
            INVALID_REQUEST,
            CLIENT_NAME,
        ),
        redirected(
            "mc_authz without context",
            |q| {
                authz(q);
                q.del("context");
            },
            INVALID_REQUEST,
            CONTEXT,
        ),
        redirected(
            // 86 euro signs: 86 characters but 258 bytes.
            "context over 256 bytes (multi-byte)",
            |q| {
                authz(q);
                q.set("context", &"€".repeat(86));
            },
            INVALID_REQUEST,
            CONTEXT,
        ),
        redirected(
            "context with a control character",
            |q| {
                authz(q);
                q.set("context", "Pay\r\n10");
            },
            INVALID_REQUEST,
            CONTEXT,
        ),
        redirected(
            // 43 euro signs: 129 bytes.
            "binding_message over 128 bytes (multi-byte)",
            |q| {
                q.set("binding_message", &"€".repeat(43));
            },
            INVALID_REQUEST,
            "binding_message value is invalid",
        ),
        redirected(
            "binding_message over 128 bytes (ASCII)",
            |q| {
                q.set("binding_message", &"b".repeat(129));
            },
            INVALID_REQUEST,
            "binding_message value is invalid",
        ),
        // correlation_id: never echoed when it is the problem
        RedirectCase {
            correlation_id_echoed: false,
            ..redirected(
                "correlation_id with a control character",
                |q| {
                    q.set("correlation_id", "c\x01");
                },
                INVALID_REQUEST,
                "correlation_id value is invalid",
            )
        },
        RedirectCase {
            correlation_id_echoed: false,
            ..redirected(
                "correlation_id over 512 bytes",
                |q| {
                    q.set("correlation_id", &"c".repeat(513));
                },
                INVALID_REQUEST,
                "correlation_id value is invalid",
            )
        },
        // PKCE
        redirected(
            "code_challenge without method",
            |q| {
                q.set(
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                );
            },
            INVALID_REQUEST,
            PKCE,
        ),
        redirected(
            "code_challenge_method plain",
            |q| {
                q.set(
                    "code_challenge",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                )
                .set("code_challenge_method", "plain");
            },
            INVALID_REQUEST,
            PKCE,
        ),
        redirected(
            "code_challenge_method without challenge",
            |q| {
                q.set("code_challenge_method", "S256");
            },
            INVALID_REQUEST,
            PKCE,
        ),
        redirected(
            "code_challenge of the wrong shape",
            |q| {
                q.set("code_challenge", "short")
                    .set("code_challenge_method", "S256");
            },
            INVALID_REQUEST,
            PKCE,
        ),
        // response_mode, request objects
        redirected(
            "response_mode fragment",
            |q| {
                q.set("response_mode", "fragment");
            },
            INVALID_REQUEST,
            "response_mode is not supported",
        ),
        redirected(
            "response_mode form_post",
            |q| {
                q.set("response_mode", "form_post");
            },
            INVALID_REQUEST,
            "response_mode is not supported",
        ),
        redirected(
            "request object",
            |q| {
                q.set("request", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
            },
            "request_not_supported",
            "The request parameter is not supported",
        ),
        redirected(
            "request_uri",
            |q| {
                q.set("request_uri", "https://sp.example/request.jwt");
            },
            "request_uri_not_supported",
            "The request_uri parameter is not supported",
        ),
        // bounded ignored parameters
        redirected(
            "dtbs over 1024 bytes",
            |q| {
                q.set("dtbs", &"d".repeat(1025));
            },
            INVALID_REQUEST,
            "Parameter dtbs is invalid",
        ),
        redirected(
            "ui_locales over 256 bytes",
            |q| {
                q.set("ui_locales", &"en-GB ".repeat(50));
            },
            INVALID_REQUEST,
            "Parameter ui_locales is invalid",
        ),
        // the subscriber
        redirected(
            "unknown MSISDN",
            |q| {
                q.set("login_hint", &format!("MSISDN:{UNKNOWN}"));
            },
            ACCESS_DENIED,
            UNKNOWN_USER,
        ),
        redirected(
            "suspended subscriber",
            |q| {
                q.set("login_hint", &format!("MSISDN:{SUSPENDED}"));
            },
            ACCESS_DENIED,
            UNKNOWN_USER,
        ),
        redirected(
            "unknown PCR",
            |q| {
                q.set("login_hint", "PCR:0B5E4C4A-0000-0000-0000-000000000000");
            },
            ACCESS_DENIED,
            UNKNOWN_USER,
        ),
        redirected(
            "acr_values=3 for a subscriber without PIN",
            |q| {
                q.set("acr_values", "3");
            },
            ACCESS_DENIED,
            LOA,
        ),
        redirected(
            "subscriber without the app_push capability",
            |q| {
                q.set("login_hint", &format!("MSISDN:{NO_APP}"));
            },
            ACCESS_DENIED,
            LOA,
        ),
    ]
}

/// The gateway every table case runs against: the shop, an active subscriber without PIN,
/// a suspended one and one without the app.
async fn table_gateway() -> (Gateway, Sp) {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    g.subscriber(SUSPENDED, None).await;
    registry::update_subscriber(
        g.store(),
        SUSPENDED,
        Some(SubscriberStatus::Suspended),
        None,
    )
    .await
    .unwrap();
    registry::create_subscriber(
        g.store(),
        &SubscriberSpec {
            msisdn: NO_APP.into(),
            pin: None,
            capabilities: vec!["sms".into()],
        },
    )
    .await
    .unwrap();
    (g, sp)
}

/// GET and POST of the same parameters.
async fn send_both(g: &Gateway, q: &Q) -> Vec<(&'static str, reqwest::Response)> {
    let http = g.http();
    let get = http.get(q.url(g)).send().await.unwrap();
    let post = http
        .post(format!("{}/authorize", g.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(q.encode())
        .send()
        .await
        .unwrap();
    vec![("GET", get), ("POST", post)]
}

#[tokio::test]
async fn unverifiable_client_or_redirect_uri_is_a_page_never_a_redirect() {
    let (g, sp) = table_gateway().await;
    let mut failures = Vec::new();
    for case in page_cases() {
        let mut q = Q::valid(&sp, MSISDN);
        (case.mutate)(&mut q);
        for (method, resp) in send_both(&g, &q).await {
            let status = resp.status();
            let has_location = resp.headers().contains_key("location");
            let html = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("text/html"));
            let body = resp.text().await.unwrap();
            if status != 400 || has_location || !html || !body.contains(case.description) {
                failures.push(format!(
                    "{} ({method}): status {status}, Location present: {has_location}, html: {html}, expected description {:?}, body: {}",
                    case.name,
                    case.description,
                    body.chars().take(300).collect::<String>()
                ));
            }
            if body.contains("st-1") || body.contains("corr-1") {
                failures.push(format!(
                    "{} ({method}): the page echoes state/correlation_id",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_redirected_row_has_its_code_description_and_echo() {
    let (g, sp) = table_gateway().await;
    let mut failures = Vec::new();
    for case in redirect_cases() {
        let mut q = Q::valid(&sp, MSISDN);
        (case.mutate)(&mut q);
        for (method, resp) in send_both(&g, &q).await {
            let status = resp.status();
            let Some(loc) = location(&g.base, &resp) else {
                let body = resp.text().await.unwrap_or_default();
                failures.push(format!(
                    "{} ({method}): no redirect, status {status}: {}",
                    case.name,
                    body.chars().take(300).collect::<String>()
                ));
                continue;
            };
            if status != 302 || !loc.starts_with(&format!("{}?", sp.redirect_uri)) {
                failures.push(format!(
                    "{} ({method}): expected 302 to the redirect URI, got {status} to {loc}",
                    case.name
                ));
                continue;
            }
            let p = query_of(&loc);
            let got = |k: &str| p.get(k).map(String::as_str);
            let mut problems = Vec::new();
            if got("error") != Some(case.error) {
                problems.push(format!("error {:?} != {:?}", got("error"), case.error));
            }
            if got("error_description") != Some(case.description) {
                problems.push(format!(
                    "error_description {:?} != {:?}",
                    got("error_description"),
                    case.description
                ));
            }
            let want_state = case.state_echoed.then_some("st-1");
            if got("state") != want_state {
                problems.push(format!("state {:?} != {want_state:?}", got("state")));
            }
            let want_corr = case.correlation_id_echoed.then_some("corr-1");
            if got("correlation_id") != want_corr {
                problems.push(format!(
                    "correlation_id {:?} != {want_corr:?}",
                    got("correlation_id")
                ));
            }
            if p.contains_key("code") {
                problems.push("a code was issued".into());
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{} ({method}): {} — {loc}",
                    case.name,
                    problems.join("; ")
                ));
            }
        }
    }
    // None of the refused requests reached a phone.
    for m in [MSISDN, SUSPENDED, NO_APP] {
        assert!(g.phone(m).pending().await.is_empty(), "{m} was challenged");
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn disabled_client_is_refused_by_redirect() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    registry::set_client_status(g.store(), &sp.client_id, ClientStatus::Disabled)
        .await
        .unwrap();
    for (method, resp) in send_both(&g, &Q::valid(&sp, MSISDN)).await {
        assert_eq!(resp.status(), 302, "{method}");
        let loc = location(&g.base, &resp).unwrap();
        assert!(loc.starts_with(&sp.redirect_uri), "{method}: {loc}");
        let q = query_of(&loc);
        assert_eq!(q["error"], "access_denied", "{method}");
        assert_eq!(
            q["error_description"],
            "The client is not allowed to make MC service requests"
        );
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["correlation_id"], "corr-1");
    }
    assert!(g.phone(MSISDN).pending().await.is_empty());
    // A disabled client's unregistered redirect URI is still only a page.
    let mut q = Q::valid(&sp, MSISDN);
    q.set("redirect_uri", "https://evil.example/cb");
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test]
async fn client_without_the_code_grant_is_refused_by_redirect() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let mut record = g.store().get_client(&sp.client_id).await.unwrap().unwrap();
    record.grant_types.clear();
    g.store().update_client(&record).await.unwrap();
    let resp = g
        .http()
        .get(Q::valid(&sp, MSISDN).url(&g))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let loc = location(&g.base, &resp).unwrap();
    assert_eq!(
        error_of(&loc),
        (
            "invalid_request".into(),
            "The client is not authorized to request an authorization code".into()
        )
    );
    assert_eq!(query_of(&loc)["state"], "st-1");
}

#[tokio::test]
async fn second_login_while_one_is_pending_is_busy_and_the_first_still_completes() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let http = g.http();
    let first = http
        .get(Q::valid(&sp, MSISDN).url(&g))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 302);
    let wait_url = location(&g.base, &first).unwrap();
    assert!(wait_url.contains("/authorize/wait/"), "{wait_url}");
    let challenge = g.phone(MSISDN).next_challenge().await;

    let mut second = Q::valid(&sp, MSISDN);
    second.set("state", "st-2").set("correlation_id", "corr-2");
    let resp = http.get(second.url(&g)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let loc = location(&g.base, &resp).unwrap();
    let q = query_of(&loc);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(
        q["error_description"],
        "The user is busy with another transaction"
    );
    assert_eq!(q["state"], "st-2");
    assert_eq!(q["correlation_id"], "corr-2");
    assert_eq!(
        g.phone(MSISDN).pending().await.len(),
        1,
        "only the first login reached the phone"
    );

    // The first login is untouched by the refused second one.
    let outcome = g
        .phone(MSISDN)
        .answer(
            &challenge.id,
            mc_authn::answer::Answer::Approve { pin: None },
        )
        .await;
    assert_eq!(outcome, mc_authn::answer::AnswerOutcome::Approved);
    let back = follow_to_redirect_uri(&g, &wait_url, &sp.redirect_uri).await;
    let q = query_of(&back);
    assert_eq!(q["state"], "st-1");
    assert!(q.contains_key("code"), "{back}");
}

#[tokio::test]
async fn user_refusal_on_the_phone_is_access_denied() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let phone = g.phone(MSISDN);
    let deny = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        phone.answer(&c.id, mc_authn::answer::Answer::Deny).await
    });
    let back = follow_to_redirect_uri(&g, &Q::valid(&sp, MSISDN).url(&g), &sp.redirect_uri).await;
    assert_eq!(deny.await.unwrap(), mc_authn::answer::AnswerOutcome::Denied);
    let q = query_of(&back);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], "The user denied the request");
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["correlation_id"], "corr-1");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn no_login_hint_asks_for_the_number_or_is_refused_when_the_operator_says_so() {
    // Default: the gateway asks for the number on its own page.
    let g = Gateway::start().await;
    let sp = g.shop().await;
    let mut q = Q::valid(&sp, MSISDN);
    q.del("login_hint");
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let loc = location(&g.base, &resp).unwrap();
    assert!(
        loc.starts_with(&format!("{}/authorize/number/", g.base)),
        "{loc}"
    );

    // login.allow_no_hint = false: the profile's "neither hint" row.
    let g = Gateway::start_with(|c| c.login.allow_no_hint = false).await;
    let sp = g.shop().await;
    let mut q = Q::valid(&sp, MSISDN);
    q.del("login_hint");
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let loc = location(&g.base, &resp).unwrap();
    assert!(loc.starts_with(&sp.redirect_uri), "{loc}");
    let p = query_of(&loc);
    assert_eq!(p["error"], "invalid_request");
    assert_eq!(
        p["error_description"],
        "MANDATORY parameters login_hint_token (or) login_hint does not exist."
    );
    assert_eq!(p["state"], "st-1");
    assert_eq!(p["correlation_id"], "corr-1");
}

#[tokio::test]
async fn plain_oidc_request_defaults_to_mc_v1_1_and_loa2() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let mut q = Q::valid(&sp, MSISDN);
    q.set("scope", "openid")
        .del("version")
        .del("acr_values")
        .del("correlation_id");
    let phone = g.phone(MSISDN);
    let answer = tokio::spawn(async move { phone.approve_next().await });
    let back = follow_to_redirect_uri(&g, &q.url(&g), &sp.redirect_uri).await;
    let challenge = answer.await.unwrap();
    assert_eq!(challenge.loa, "2", "acr_values defaults to 2");
    let p = query_of(&back);
    assert_eq!(p["state"], "st-1");
    assert!(!p.contains_key("correlation_id"));
    let tokens = redeem(&g, &sp, &p["code"]).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(tokens["scope"], "openid");
}

#[tokio::test]
async fn boundary_values_are_accepted() {
    // Exactly at the byte limits, counted in UTF-8 bytes: 85 euro signs + 1 byte = 256,
    // 42 euro signs + 2 bytes = 128; 512-byte state; max_age equal in both spellings.
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let state = "s".repeat(512);
    let mut q = Q::valid(&sp, MSISDN);
    q.set("scope", "openid mc_authz")
        .set("client_name", "OnlineShopper")
        .set("context", &format!("{}a", "€".repeat(85)))
        .set("binding_message", &format!("{}ab", "€".repeat(42)))
        .set("state", &state)
        .set("max_age", "3600")
        .set("max-age", "3600")
        .set("prompt", "login consent")
        .set("display", "touch")
        .set("claims", r#"{"userinfo":{"phone_number":null}}"#);
    let phone = g.phone(MSISDN);
    let answer = tokio::spawn(async move { phone.approve_next().await });
    let back = follow_to_redirect_uri(&g, &q.url(&g), &sp.redirect_uri).await;
    let challenge = answer.await.unwrap();
    assert_eq!(challenge.context.as_deref().map(str::len), Some(256));
    assert_eq!(
        challenge.binding_message.as_deref().map(str::len),
        Some(128)
    );
    let p = query_of(&back);
    assert_eq!(p.get("state"), Some(&state));
    assert!(p.contains_key("code"), "{back}");
}

#[tokio::test]
async fn exhausted_pin_attempts_end_the_login_and_lock_loa3() {
    use mc_authn::answer::{Answer, AnswerOutcome};
    const WITH_PIN: &str = "447700900302";
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(WITH_PIN, Some("1234")).await;
    let mut q = Q::valid(&sp, WITH_PIN);
    q.set("acr_values", "3");
    let phone = g.phone(WITH_PIN);
    let answers = tokio::spawn(async move {
        let c = phone.next_challenge().await;
        assert_eq!(c.loa, "3");
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let pin = Some("0000".to_owned());
            outcomes.push(phone.answer(&c.id, Answer::Approve { pin }).await);
        }
        outcomes
    });
    let back = follow_to_redirect_uri(&g, &q.url(&g), &sp.redirect_uri).await;
    let outcomes = answers.await.unwrap();
    assert!(matches!(outcomes[0], AnswerOutcome::WrongPin { .. }));
    assert!(matches!(outcomes[1], AnswerOutcome::WrongPin { .. }));
    assert_eq!(outcomes[2], AnswerOutcome::Locked);
    let p = query_of(&back);
    assert_eq!(p["error"], "access_denied");
    assert_eq!(
        p["error_description"],
        "The user has run out of PIN attempts"
    );
    assert_eq!(p["state"], "st-1");
    assert_eq!(p["correlation_id"], "corr-1");

    // LoA3 alone is now refused up front; "3 2" falls back to LoA2.
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    let loc = location(&g.base, &resp).unwrap();
    assert_eq!(
        error_of(&loc),
        (
            "access_denied".into(),
            "The user has run out of PIN attempts".into()
        )
    );
    q.set("acr_values", "3 2");
    let challenge = {
        let phone = g.phone(WITH_PIN);
        let answer = tokio::spawn(async move { phone.approve_next().await });
        let back = follow_to_redirect_uri(&g, &q.url(&g), &sp.redirect_uri).await;
        assert!(query_of(&back).contains_key("code"), "{back}");
        answer.await.unwrap()
    };
    assert_eq!(challenge.loa, "2");

    // Only an operator's new PIN unlocks LoA3 (REST `PUT /admin/v1/subscribers/{msisdn}/pin`).
    let resp = g
        .http()
        .put(format!("{}/admin/v1/subscribers/{WITH_PIN}/pin", g.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"pin":"5678"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let view: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(view["pin_locked"], false);
    q.set("acr_values", "3");
    let phone = g.phone(WITH_PIN);
    let answer = tokio::spawn(async move { phone.approve_next_with_pin("5678").await });
    let back = follow_to_redirect_uri(&g, &q.url(&g), &sp.redirect_uri).await;
    let (challenge, outcome) = answer.await.unwrap();
    assert_eq!(
        (challenge.loa.as_str(), outcome),
        ("3", AnswerOutcome::Approved)
    );
    assert!(query_of(&back).contains_key("code"), "{back}");
}

#[tokio::test]
async fn every_login_hint_form_resolves_or_is_refused_with_its_row() {
    use mc_core::msisdn::Msisdn;
    use serde_json::json;
    const HINT: &str = "Invalid value for login_hint or login_hint_token";
    let g = Gateway::start().await;
    let sp = g.shop().await;
    let other = g.sp("Other", &["openid", "mc_authn"]).await;
    g.subscriber(MSISDN, None).await;
    let refused = |g: &Gateway, q: &Q| {
        let url = q.url(g);
        let http = g.http();
        let base = g.base.clone();
        async move {
            let resp = http.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 302);
            let loc = location(&base, &resp).unwrap();
            let p = query_of(&loc);
            assert_eq!(p["state"], "st-1", "{loc}");
            assert_eq!(p["correlation_id"], "corr-1", "{loc}");
            error_of(&loc)
        }
    };
    let ok = |back: String| assert!(query_of(&back).contains_key("code"), "{back}");

    // ENCR_MSISDN / ENCRYPTED_MSISDN made with the published encryption key.
    let msisdn = Msisdn::parse(MSISDN).unwrap();
    let enc = g.state.keys.encrypt_msisdn(&msisdn).unwrap();
    for prefix in ["ENCR_MSISDN", "ENCRYPTED_MSISDN", "encr_msisdn"] {
        let mut q = Q::valid(&sp, MSISDN);
        q.set("login_hint", &format!("{prefix}:{enc}"));
        ok(login(&g, &q, MSISDN, &sp.redirect_uri).await);
    }
    let unknown = g
        .state
        .keys
        .encrypt_msisdn(&Msisdn::parse("447700900999").unwrap())
        .unwrap();
    let mut q = Q::valid(&sp, MSISDN);
    q.set("login_hint", &format!("ENCR_MSISDN:{unknown}"));
    assert_eq!(
        refused(&g, &q).await,
        ("access_denied".into(), "Unknown Mobile Connect User".into())
    );

    // PCR: the SP's own `sub` names the subscriber in its sector only.
    let code = code_for(&g, &sp, MSISDN, |_| {}).await;
    let sub = jwt_claims(redeem(&g, &sp, &code).await["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut q = Q::valid(&sp, MSISDN);
    q.set("login_hint", &format!("PCR:{sub}"));
    ok(login(&g, &q, MSISDN, &sp.redirect_uri).await);
    let mut q = Q::valid(&other, MSISDN);
    q.set("login_hint", &format!("PCR:{sub}"));
    assert_eq!(
        refused(&g, &q).await,
        ("access_denied".into(), "Unknown Mobile Connect User".into()),
        "another sector's PCR"
    );

    // login_hint_token signed by the operator (its own Discovery).
    let now = mc_gateway::state::now();
    let token = |claims: serde_json::Value| g.state.keys.sign_jwt(&claims).unwrap();
    let mut q = Q::valid(&sp, MSISDN);
    q.del("login_hint").set(
        "login_hint_token",
        &token(json!({"aud": g.base, "iat": now, "MSISDN": MSISDN})),
    );
    ok(login(&g, &q, MSISDN, &sp.redirect_uri).await);
    for (what, claims) in [
        (
            "wrong aud",
            json!({"aud": "https://elsewhere.example", "iat": now, "MSISDN": MSISDN}),
        ),
        (
            "issued 11 minutes ago",
            json!({"aud": g.base, "iat": now - 660, "MSISDN": MSISDN}),
        ),
        (
            "issued in the future",
            json!({"aud": g.base, "iat": now + 600, "MSISDN": MSISDN}),
        ),
        (
            "expired",
            json!({"aud": g.base, "iat": now, "exp": now - 1, "MSISDN": MSISDN}),
        ),
        ("no MSISDN", json!({"aud": g.base, "iat": now})),
        (
            "MSISDN not a number",
            json!({"aud": g.base, "iat": now, "MSISDN": "abc"}),
        ),
    ] {
        let mut q = Q::valid(&sp, MSISDN);
        q.del("login_hint").set("login_hint_token", &token(claims));
        assert_eq!(
            refused(&g, &q).await,
            ("invalid_request".into(), HINT.into()),
            "{what}"
        );
    }
}

#[tokio::test]
async fn number_page_asks_again_for_a_malformed_number_and_redirects_refusals() {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    let http = g.http();
    let start = || async {
        let mut q = Q::valid(&sp, MSISDN);
        q.del("login_hint");
        let resp = http.get(q.url(&g)).send().await.unwrap();
        let loc = location(&g.base, &resp).unwrap();
        assert!(loc.contains("/authorize/number/"), "{loc}");
        loc
    };
    let submit = |page: String, typed: &'static str| {
        let http = http.clone();
        async move {
            http.post(&page)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "msisdn={}",
                    url::form_urlencoded::byte_serialize(typed.as_bytes()).collect::<String>()
                ))
                .send()
                .await
                .unwrap()
        }
    };

    // Malformed: the page again, with a message; nothing redirected.
    let page = start().await;
    for typed in ["", "abc", "07700 900301", "+44 7700 900301 999999"] {
        let resp = submit(page.clone(), typed).await;
        assert_eq!(resp.status(), 200, "{typed:?}");
        assert!(resp.headers().get("location").is_none());
        assert!(
            resp.text().await.unwrap().contains("international format"),
            "{typed:?}"
        );
    }
    // A well-formed unknown number: the unknown-user row, by redirect.
    let resp = submit(page.clone(), "+44 7700 900999").await;
    assert_eq!(resp.status(), 302);
    let loc = location(&g.base, &resp).unwrap();
    assert_eq!(
        error_of(&loc),
        ("access_denied".into(), "Unknown Mobile Connect User".into())
    );
    assert_eq!(query_of(&loc)["state"], "st-1");

    // A known number typed with formatting: the phone is asked and the login completes.
    let page = start().await;
    let phone = g.phone(MSISDN);
    let answer = tokio::spawn(async move { phone.approve_next().await });
    let resp = submit(page, "+44 (7700) 900-301").await;
    assert_eq!(resp.status(), 302);
    let wait = location(&g.base, &resp).unwrap();
    assert!(wait.contains("/authorize/wait/"), "{wait}");
    answer.await.unwrap();
    let back = follow_to_redirect_uri(&g, &wait, &sp.redirect_uri).await;
    assert!(query_of(&back).contains_key("code"), "{back}");
}

#[tokio::test]
async fn a_redirect_uri_with_its_own_query_keeps_it_on_errors_and_codes() {
    let g = Gateway::start().await;
    g.subscriber(MSISDN, None).await;
    let redirect_uri = format!("http://127.0.0.1:{}/cb/q?tenant=a%20b&x=1", g.addr.port());
    let (record, secret) = registry::create_client(
        g.store(),
        &registry::ClientSpec {
            client_id: Some("with-query".into()),
            name: "Query Ltd".into(),
            short_name: "Query".into(),
            redirect_uris: vec![redirect_uri.clone()],
            scopes: vec!["openid".into(), "mc_authn".into()],
            sector_identifier_uri: None,
            metadata: Default::default(),
        },
    )
    .await
    .unwrap();
    let sp = Sp {
        client_id: record.client_id,
        secret,
        redirect_uri: redirect_uri.clone(),
        short_name: "Query".into(),
    };
    let mut q = Q::valid(&sp, MSISDN);
    q.set("prompt", "bogus");
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    let loc = location(&g.base, &resp).unwrap();
    assert!(loc.starts_with(&format!("{redirect_uri}&error=")), "{loc}");
    let p = query_of(&loc);
    assert_eq!(p["tenant"], "a b");
    assert_eq!(p["error"], "invalid_request");
    assert_eq!(p["state"], "st-1");

    let back = login(&g, &Q::valid(&sp, MSISDN), MSISDN, &redirect_uri).await;
    assert!(back.starts_with(&format!("{redirect_uri}&code=")), "{back}");
    let p = query_of(&back);
    assert_eq!((p["tenant"].as_str(), p["x"].as_str()), ("a b", "1"));
    let tokens = redeem(&g, &sp, &p["code"]).await;
    assert!(tokens["id_token"].is_string());
}
