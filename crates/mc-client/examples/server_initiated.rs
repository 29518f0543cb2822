//! A server-initiated ("premium") login against `mobileconnect sandbox`: the SP's back end
//! starts the login by phone number with a signed request object and polls for the result
//! — no browser involved. The example registers its own SI client (with its public key)
//! through the sandbox's admin API, so it needs nothing but `sandbox.json`.
//!
//! ```text
//! mobileconnect sandbox &
//! cargo run -p mc-client --example server_initiated            # taps OK itself
//! cargo run -p mc-client --example server_initiated -- --manual  # you tap on the phone page
//! ```
//!
//! For the notification variant, start with `SiRequest::authn(hint).notify(uri)` and mount
//! `mc_client::si::SiNotifications::handle` at that URI (see the crate docs).

use std::time::Duration;

use mc_client::authorize::LoginHint;
use mc_client::jose::{Algorithm, SigningKey};
use mc_client::si::SiRequest;
use mc_client::{ClientCredentials, MobileConnect};
use mc_core::msisdn::Msisdn;
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
        .ok_or("no operator")?
        .trim_end_matches('/')
        .to_owned();
    let admin = info["admin_token"].as_str().ok_or("no admin_token")?;
    let msisdn = Msisdn::parse(
        info["subscribers"][0]["msisdn"]
            .as_str()
            .ok_or("no number")?,
    )
    .ok_or("not an MSISDN")?;

    // The SP's signing key; its public half is registered with the operator.
    let key = SigningKey::generate_rsa("si-example-1", Algorithm::RS256)?;
    let http = reqwest::Client::new();
    let registered: Value = http
        .post(format!("{issuer}/admin/v1/clients"))
        .bearer_auth(admin)
        .json(&json!({
            "name": "SI example Ltd",
            "short_name": "SiExample",
            "redirect_uris": [format!("{issuer}/demo-sp/callback")],
            "scopes": ["openid", "mc_authn", "mc_authz"],
            "sector_identifier_uri": "https://si-example.example/sector.json",
            "metadata": {"jwks": key.public_jwks()},
        }))
        .send()
        .await?
        .json()
        .await?;
    let client_id = registered["client"]["client_id"]
        .as_str()
        .or_else(|| registered["client_id"].as_str())
        .ok_or_else(|| format!("registration failed: {registered}"))?;
    let secret = registered["client_secret"]
        .as_str()
        .ok_or_else(|| format!("registration failed: {registered}"))?;

    let mc = MobileConnect::new(Default::default());
    let operator = mc
        .operator_from_issuer(&issuer, ClientCredentials::secret_basic(client_id, secret))
        .await?;
    let pending = operator
        .si_start(
            SiRequest::authn(LoginHint::Msisdn(msisdn.clone())).binding_message("SI-EXAMPLE"),
            &key,
        )
        .await?;
    println!(
        "started {} (expires in {} s)",
        pending.auth_req_id,
        pending.expires_at - mc.now()
    );

    let phone = format!("{issuer}/phone/{}", msisdn.as_str());
    if args.iter().any(|a| a == "--manual") {
        println!("approve on {phone}");
    } else {
        let phone = phone.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let list: Value = http
                .get(format!("{phone}/challenges?wait=15"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let id = list["challenges"][0]["id"].as_str()?.to_owned();
            http.post(format!("{phone}/challenges/{id}"))
                .json(&json!({"decision": "approve"}))
                .send()
                .await
                .ok()?;
            Some(())
        });
    }
    let login = operator.si_wait(&pending, Duration::from_secs(1)).await?;
    println!(
        "logged in: PCR {} acr {:?}; the phone showed {:?}",
        login.id_token.pcr(),
        login.id_token.acr,
        login.id_token.displayed_data
    );
    Ok(())
}
