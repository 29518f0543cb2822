//! `serve` with `database.url = "postgres://…"`: two gateway processes ("nodes") on one
//! PostgreSQL database share the signing keys and see each other's registry and
//! provisioning writes.
//!
//! Needs `MC_TEST_POSTGRES_URL` (e.g. `postgres://user:pass@127.0.0.1:5432/db`); the test
//! works in a fresh schema of that database. Without it the test prints "skipped:
//! MC_TEST_POSTGRES_URL not set" and passes, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const BIN: &str = env!("CARGO_BIN_EXE_mobileconnect");
const URL_VAR: &str = "MC_TEST_POSTGRES_URL";
/// How long a child may take to answer `/healthz` (a debug build generates RSA keys on the
/// first start, on a shared machine).
const READY_WITHIN: Duration = Duration::from_secs(120);
const ADMIN_TOKEN: &str = "test-admin-token-for-two-nodes";

fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{test}: {URL_VAR} is not set and CI=true: the PostgreSQL tests must run in CI"
            );
            let _ = writeln!(std::io::stderr(), "{test}: skipped: {URL_VAR} not set");
            None
        }
    }
}

/// A temporary folder (removed on drop) and a schema (dropped by `drop_schema`).
struct Scratch {
    dir: PathBuf,
    base: String,
    schema: String,
}

impl Scratch {
    async fn new(base: String) -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let tag = format!("{}_{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(format!("mc-bin-pg-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let schema = format!("mc_bin_{tag}");
        let mut conn = PgConnection::connect(&base).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        Scratch { dir, base, schema }
    }

    /// The database URL of the gateway: the test's schema first on the search path.
    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={}", self.base, self.schema)
    }

    async fn drop_schema(&self) {
        let mut conn = PgConnection::connect(&self.base).await.unwrap();
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running gateway; killed (and reaped) on drop.
struct Node {
    child: Child,
    base: String,
    stderr: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

/// `serve --config` of node `name`: its own port, the shared database and KEK.
async fn start_node(scratch: &Scratch, name: &str) -> Node {
    let http = client();
    for attempt in 0..5 {
        let port = free_port();
        let config = scratch.dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:{port}"

[database]
url = "{url}"

[keys]
kek_file = "{kek}"

[log]
filter = "warn"

[gateway]
issuer = "https://id.operator.example"

[gateway.admin]
token_sha256 = "{token_sha256}"
"#,
                url = scratch.url(),
                kek = scratch.dir.join("kek.hex").display(),
                token_sha256 = mc_gateway::state::sha256_hex(ADMIN_TOKEN),
            ),
        )
        .unwrap();
        let stderr = scratch.dir.join(format!("{name}-{attempt}.err"));
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MC_") {
                cmd.env_remove(&k);
            }
        }
        cmd.arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .current_dir(&scratch.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let mut node = Node {
            child: cmd.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            stderr,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = node.child.try_wait().unwrap() {
                let e = std::fs::read_to_string(&node.stderr).unwrap_or_default();
                if e.contains("listen") && e.to_lowercase().contains("in use") {
                    break; // the port was taken meanwhile: another one
                }
                panic!("node {name} exited with {status} before it was ready: {e}");
            }
            let healthy = http
                .get(format!("{}/healthz", node.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if healthy {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "node {name} not ready within {READY_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("could not bind a free loopback port in 5 attempts");
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    r.json().await.unwrap()
}

fn sig_kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "sig")
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_serve_nodes_share_one_postgres_database() {
    let Some(base) = server_url("two_serve_nodes_share_one_postgres_database") else {
        return;
    };
    let scratch = Scratch::new(base).await;
    let http = client();

    // The first node creates the schema and the keys; the second finds both.
    let a = start_node(&scratch, "a").await;
    let b = start_node(&scratch, "b").await;
    let kids_a = sig_kids(&get_json(&http, &format!("{}/jwks", a.base)).await);
    let kids_b = sig_kids(&get_json(&http, &format!("{}/jwks", b.base)).await);
    assert!(!kids_a.is_empty());
    assert_eq!(
        kids_a, kids_b,
        "both nodes sign with the keys in the database"
    );

    // A client registered on A is served by B.
    let r = http
        .post(format!("{}/admin/v1/clients", a.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "Two node shop",
            "short_name": "TwoNodeShop",
            "redirect_uris": ["https://shop.example/cb"],
            "scopes": ["openid", "mc_authn"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let client_id = created["client_id"].as_str().unwrap();
    let on_b = get_json(&http, &format!("{}/admin/v1/clients/{client_id}", b.base)).await;
    assert_eq!(on_b["short_name"], "TwoNodeShop", "{on_b}");

    // A subscriber provisioned on B is found on A, and its number is taken for both.
    let subscriber = json!({"msisdn": "+447700900777", "capabilities": ["app_push"]});
    let r = http
        .post(format!("{}/admin/v1/subscribers", b.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&subscriber)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let on_a = get_json(
        &http,
        &format!("{}/admin/v1/subscribers/+447700900777", a.base),
    )
    .await;
    assert_eq!(on_a["msisdn"], "447700900777", "{on_a}");
    let r = http
        .post(format!("{}/admin/v1/subscribers", a.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&subscriber)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    drop(a);
    drop(b);
    scratch.drop_schema().await;
}

/// The binary refuses a PostgreSQL it cannot reach with one line that does not repeat
/// the password of the URL. No server needed.
#[test]
fn serve_reports_an_unreachable_postgres_without_the_password() {
    let dir = std::env::temp_dir().join(format!(
        "mc-bin-pg-refused-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("mc.toml");
    std::fs::write(
        &config,
        "[database]\nurl = \"postgres://mc:s3cr3t-pw@127.0.0.1:1/mc\"\n\
         [keys]\nkek_file = \"kek.hex\"\n[gateway]\nissuer = \"https://id.example\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env_remove("MC_DATABASE__URL")
        .env("RUST_LOG", "warn")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert!(stderr.contains("database"), "{stderr}");
    assert!(!stderr.contains("s3cr3t-pw"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
