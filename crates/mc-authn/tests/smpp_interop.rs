//! The SMPP client against an independent SMPP implementation: the npm `smpp` package's
//! server (tests/interop/node/smsc.mjs). Needs `node` and `npm ci` in tests/interop/node;
//! without them the tests skip with a message, except under `CI=true`, where a missing
//! tool is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, process::Stdio, time::Duration};

use mc_authn::sms::{LinkState, ReceiptState, SmppClient, SmppConfig};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
    time::timeout,
};

const PATIENCE: Duration = Duration::from_secs(15);

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/node")
}

/// `None` (after saying why) when node or the npm package is missing outside CI.
fn available() -> Option<()> {
    let has_node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let has_pkg = node_dir().join("node_modules/smpp/package.json").exists();
    if has_node && has_pkg {
        return Some(());
    }
    let why = "node and tests/interop/node/node_modules/smpp (run `npm ci` there)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the SMPP interop peer is missing: {why}");
    }
    eprintln!("skipping the npm smpp interop test: needs {why}");
    None
}

/// The npm SMSC, and the events it prints.
struct NpmSmsc {
    _child: Child,
    port: u16,
    events: mpsc::UnboundedReceiver<Value>,
}

impl NpmSmsc {
    async fn start(extra: &[&str]) -> NpmSmsc {
        let mut child = Command::new("node")
            .arg("smsc.mjs")
            .args(["--system-id", "mc-gw", "--password", "pw"])
            .args(extra)
            .current_dir(node_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, mut events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let listening = timeout(PATIENCE, events.recv()).await.unwrap().unwrap();
        assert_eq!(listening["event"], "listening");
        let port = listening["port"].as_u64().unwrap() as u16;
        NpmSmsc {
            _child: child,
            port,
            events,
        }
    }

    async fn next(&mut self, event: &str) -> Value {
        timeout(PATIENCE, async {
            loop {
                let v = self.events.recv().await.expect("smsc still running");
                if v["event"] == event {
                    return v;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {event} event in time"))
    }

    fn client(&self, password: &str) -> SmppClient {
        let mut c = SmppConfig::new(&format!("127.0.0.1:{}", self.port), "mc-gw", password);
        c.reconnect_min = Duration::from_millis(20);
        c.reconnect_max = Duration::from_millis(200);
        c.throttle_backoff = Duration::from_millis(5);
        c.response_timeout = Duration::from_secs(3);
        SmppClient::start(c)
    }
}

#[tokio::test]
async fn npm_smsc_receives_gsm7_and_sends_a_text_receipt() {
    let Some(()) = available() else { return };
    let mut smsc = NpmSmsc::start(&[]).await;
    let client = smsc.client("pw");
    let mut receipts = client.receipts();
    let sent = client
        .submit("+447700900301", "Your code: 482913")
        .await
        .unwrap();
    let msg = smsc.next("message").await;
    assert_eq!(msg["to"], "447700900301");
    assert_eq!(msg["text"], "Your code: 482913");
    assert_eq!(msg["message_id"], sent.message_ids[0].as_str());
    // The npm server's receipt is text only (no TLVs): parsed from `id:… stat:…`.
    let receipt = timeout(PATIENCE, receipts.recv()).await.unwrap().unwrap();
    assert_eq!(receipt.message_id, sent.message_ids[0]);
    assert_eq!(receipt.state, ReceiptState::Delivered);
}

#[tokio::test]
async fn npm_smsc_reassembles_our_concatenated_ucs2() {
    let Some(()) = available() else { return };
    let mut smsc = NpmSmsc::start(&["--receipt", "UNDELIV"]).await;
    let client = smsc.client("pw");
    let mut receipts = client.receipts();
    let text: String = "Подтвердите оплату 49,99 €. "
        .chars()
        .cycle()
        .take(120)
        .collect();
    let sent = client.submit("447700900302", &text).await.unwrap();
    assert_eq!(sent.encoding, "ucs2");
    assert_eq!(sent.message_ids.len(), 2);
    let msg = smsc.next("message").await;
    assert_eq!(msg["text"], text.as_str());
    assert_eq!(msg["parts"], 2);
    let mut states = Vec::new();
    for _ in 0..2 {
        states.push(
            timeout(PATIENCE, receipts.recv())
                .await
                .unwrap()
                .unwrap()
                .state,
        );
    }
    assert_eq!(states, [ReceiptState::Undeliverable; 2]);
}

#[tokio::test]
async fn npm_smsc_throttling_is_retried() {
    let Some(()) = available() else { return };
    let mut smsc = NpmSmsc::start(&["--throttle-every", "2"]).await;
    let client = smsc.client("pw");
    for i in 0..3 {
        client
            .submit("447700900301", &format!("n{i}"))
            .await
            .unwrap();
    }
    let mut texts = Vec::new();
    for _ in 0..3 {
        texts.push(
            smsc.next("message").await["text"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(texts, ["n0", "n1", "n2"]);
}

#[tokio::test]
async fn npm_smsc_refuses_a_wrong_password() {
    let Some(()) = available() else { return };
    let mut smsc = NpmSmsc::start(&[]).await;
    let client = smsc.client("nope");
    let mut state = client.watch_state();
    let refused = timeout(
        PATIENCE,
        state.wait_for(|s| matches!(s, LinkState::BindRefused(_))),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert_eq!(refused, LinkState::BindRefused(0x0e));
    assert_eq!(smsc.next("bind").await["ok"], false);
}
