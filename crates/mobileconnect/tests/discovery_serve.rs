//! Discovery served by `mobileconnect serve` (`[discovery]` of the configuration), next to
//! the gateway on one store: the data set up with the `mobileconnect discovery` CLI while the
//! server runs (another process on the same SQLite file) reaches the running service's
//! lookups, its admin API answers with the configured token, and its OpenAPI document is
//! served under the discovery path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use support::*;

const DISCOVERY_BASE: &str = "https://discovery.operator.example/discovery";
const REDIRECT: &str = "https://shop.example/discovered";

/// `mobileconnect discovery --config FILE ARGS…`; its stdout, or a panic with its stderr.
fn cli(dir: &std::path::Path, config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("discovery")
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "discovery {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn serve_runs_discovery_on_the_gateways_store() {
    let dir = TempDir::new("discovery-serve");
    let spec = NodeSpec {
        database_url: format!("sqlite:{}", dir.join("mc.db").display()),
        kek_file: dir.join("kek.hex"),
        json_logs: false,
        extra_toml: format!(
            "[discovery]\nbase_url = \"{DISCOVERY_BASE}\"\nadmin_token_sha256 = \"{}\"\nrefresh_secs = 1\n",
            mc_gateway::state::sha256_hex(ADMIN_TOKEN)
        ),
    };
    let node = start_serve(dir.path(), "disco", &spec, None).await;
    let config = dir.join("disco.toml");
    let http = client();
    let at = |path: &str| format!("{}/discovery{path}", node.base);

    // The admin API and its document, under the discovery path; the gateway's own admin
    // API is still where it was.
    let doc = get_json(&http, &at("/admin/v1/openapi.json")).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert_eq!(doc["servers"][0]["url"], DISCOVERY_BASE);
    let resp = http.get(at("/admin/v1/status")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let status = admin_get(&http, &at("/admin/v1/status")).await;
    assert_eq!(status["stored"]["operators"], 0, "{status}");
    admin_get(&http, &format!("{}/admin/v1/clients", node.base)).await;

    // The operator (this gateway), a service provider, its credentials there and a range,
    // all through the CLI: another process writing the same database.
    let gw = "https://id.operator.example";
    cli(
        dir.path(),
        &config,
        &[
            "operators",
            "add",
            "--id",
            "op-a",
            "--mcc",
            "234",
            "--mnc",
            "15",
            "--name",
            "Operator A",
            "--country",
            "United Kingdom",
            "--currency",
            "GBP",
            "--issuer",
            gw,
            "--link",
            &format!("authorization={gw}/authorize"),
            "--link",
            &format!("token={gw}/token"),
        ],
    );
    let added = cli(
        dir.path(),
        &config,
        &[
            "apps",
            "add",
            "--client-id",
            "shop",
            "--name",
            "Shop",
            "--short-name",
            "Shop",
            "--redirect-uri",
            REDIRECT,
        ],
    );
    let added: Value = serde_json::from_str(&added).unwrap();
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    cli(
        dir.path(),
        &config,
        &[
            "apps",
            "credentials",
            "shop",
            "op-a",
            "--operator-client-id",
            "shop-at-a",
            "--operator-client-secret",
            "shop-secret-at-a",
        ],
    );
    cli(
        dir.path(),
        &config,
        &["numbers", "set", "range", "447700", "op-a"],
    );

    // The running service sees the other process's writes (its refresher) and answers the
    // SP's lookup with the operator and the SP's credentials there.
    let found: Value = eventually("the lookup finds op-a", Duration::from_secs(30), || {
        let http = http.clone();
        let url = at("/v2/discovery");
        let secret = secret.clone();
        async move {
            let resp = http
                .post(url)
                .basic_auth("shop", Some(secret))
                .form(&[("MSISDN", "+447700123456"), ("Redirect_URL", REDIRECT)])
                .send()
                .await
                .ok()?;
            (resp.status() == StatusCode::OK)
                .then_some(resp)?
                .json::<Value>()
                .await
                .ok()
        }
    })
    .await;
    assert_eq!(found["response"]["serving_operator"], "op-a", "{found}");
    assert_eq!(found["response"]["client_id"], "shop-at-a", "{found}");
    let lookup = admin_get(&http, &at("/admin/v1/numbers/lookup/447700123456")).await;
    assert_eq!(lookup["operator"], "op-a", "{lookup}");

    // Wrong discovery credentials: the documented error, not a lookup.
    let resp = http
        .post(at("/v2/discovery"))
        .basic_auth("shop", Some("wrong"))
        .form(&[("MSISDN", "+447700123456"), ("Redirect_URL", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
