//! A Mobile Connect login against `mobileconnect sandbox`, the way a service provider's
//! back end does it — configured with nothing but the operator's issuer URL and the
//! demo SP's credentials, both read from the sandbox's `sandbox.json`.
//!
//! ```text
//! mobileconnect sandbox &                       # writes ./data/sandbox.json
//! cargo run -p mc-client --example login        # approves on the virtual phone itself
//! cargo run -p mc-client --example login -- --manual +447700900302   # you tap (PIN 1234)
//! ```
//!
//! Options: `--sandbox <path to sandbox.json>` (default `./data/sandbox.json`),
//! `--manual` (you approve on the phone page instead), `--authz` (a payment approval with
//! `mc_authz` and a binding message), and the MSISDN (default the first test number).
//!
//! The browser's part (following the operator's redirects until the SP's redirect URI) is
//! played by this program through the gateway's headless mode (digest §4.7); a real SP
//! redirects the browser to `start.url` and receives the callback on its redirect URI.

use std::time::Duration;

use mc_client::authorize::{AuthorizationRequest, LoginHint};
use mc_client::{ClientCredentials, MobileConnect};
use mc_core::msisdn::Msisdn;
use serde_json::Value;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let sandbox_path = args
        .windows(2)
        .find(|w| w[0] == "--sandbox")
        .map(|w| w[1].clone())
        .unwrap_or_else(|| "./data/sandbox.json".into());
    let info: Value = serde_json::from_slice(&std::fs::read(&sandbox_path).map_err(|e| {
        format!("{sandbox_path}: {e} (start `mobileconnect sandbox` first, or pass --sandbox)")
    })?)?;
    let issuer = info["operators"][0]["issuer"]
        .as_str()
        .ok_or("no operator")?;
    let sp = &info["service_providers"][0];
    let (client_id, secret) = (
        sp["client_id"].as_str().ok_or("no client_id")?,
        sp["client_secret"].as_str().ok_or("no client_secret")?,
    );
    let redirect_uri = sp["redirect_uris"][0].as_str().ok_or("no redirect URI")?;
    let msisdn_arg = args
        .iter()
        .find(|a| a.starts_with('+') || a.chars().all(|c| c.is_ascii_digit()))
        .cloned()
        .or_else(|| info["subscribers"][0]["msisdn"].as_str().map(str::to_owned))
        .ok_or("no test number")?;
    let msisdn = Msisdn::parse(&msisdn_arg).ok_or("not an MSISDN")?;
    let pin = info["subscribers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["msisdn"].as_str().and_then(Msisdn::parse).as_ref() == Some(&msisdn))
        .and_then(|s| s["pin"].as_str().map(str::to_owned));

    // 1. The operator, from its issuer URL (OpenID Connect Discovery).
    let mc = MobileConnect::new(Default::default());
    let credentials = ClientCredentials::secret_basic(client_id, secret)
        .with_client_name(sp["short_name"].as_str().unwrap_or("OnlineShopper"));
    let operator = mc.operator_from_issuer(issuer, credentials).await?;
    println!(
        "operator {} (versions {:?})",
        operator.issuer(),
        operator.metadata().mc_version
    );

    // 2. The authorization request: state, nonce, PKCE and version are the SDK's job.
    let req = if flag("--authz") {
        AuthorizationRequest::authz(redirect_uri, "Pay GBP 25.00 to OnlineShopper")
            .binding_message("ORDER-1001")
    } else {
        AuthorizationRequest::authn(redirect_uri)
    };
    let start = operator.authorize(req.login_hint(LoginHint::Msisdn(msisdn.clone())))?;
    println!("authorization URL: {}", start.url);

    // 3. The phone: approve it yourself on the page, or let this program tap OK.
    let phone = format!("{}/phone/{}", issuer.trim_end_matches('/'), msisdn.as_str());
    let tap = if flag("--manual") {
        println!("approve on {phone}");
        None
    } else {
        Some(tokio::spawn(approve(phone.clone(), pin)))
    };

    // 4. The browser's part: follow redirects back to the redirect URI.
    let callback = follow(&start.url, redirect_uri).await?;
    if let Some(t) = tap {
        t.await??;
    }

    // 5. Back at the SP: state, code exchange, id_token validation (digest §6.3).
    let login = operator.complete(&start.pending, &callback).await?;
    let t = &login.id_token;
    println!("logged in: PCR {} acr {:?} amr {:?}", t.pcr(), t.acr, t.amr);
    if let Some(shown) = &t.displayed_data {
        println!("the phone showed: {shown}");
    }
    let info = operator
        .userinfo(&login.tokens.access_token, Some(t))
        .await?;
    println!("userinfo: {}", Value::Object(info));
    Ok(())
}

/// Taps OK (with the PIN for LoA3 subscribers) through the virtual phone's JSON API.
async fn approve(phone: String, pin: Option<String>) -> Res<()> {
    let http = reqwest::Client::new();
    for _ in 0..6 {
        let list: Value = http
            .get(format!("{phone}/challenges?wait=10"))
            .send()
            .await?
            .json()
            .await?;
        if let Some(c) = list["challenges"].as_array().and_then(|a| a.first()) {
            let id = c["id"].as_str().ok_or("challenge without id")?;
            println!("phone shows: {} {}", c["client_name"], c["context"]);
            let mut body = serde_json::json!({"decision": "approve"});
            if c["loa"] == "3" {
                body["pin"] = pin.clone().ok_or("LoA3 without a known PIN")?.into();
            }
            let r: Value = http
                .post(format!("{phone}/challenges/{id}"))
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            println!("phone: {}", r["result"]);
            return Ok(());
        }
    }
    Err("no challenge reached the phone".into())
}

/// Follows the gateway's redirects (`/authorize` and its waiting URL are held and answer
/// 302s while the phone has not answered) until one leaves for `redirect_uri`.
async fn follow(url: &str, redirect_uri: &str) -> Res<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut url = url::Url::parse(url)?;
    for _ in 0..120 {
        let resp = http.get(url.clone()).send().await?;
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("{url} answered {} without a redirect", resp.status()))?;
        let next = url.join(loc)?;
        if next.as_str().starts_with(redirect_uri) {
            return Ok(next.into());
        }
        url = next;
    }
    Err("the login did not come back to the redirect URI".into())
}
