//! The SMPP client of `mc-authn` against the sandbox SMSC, over loopback TCP: bind,
//! submit in GSM 03.38 and UCS-2, concatenation, receipts, throttling, refused binds,
//! link loss and reconnect, enquire_link, malformed PDUs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::atomic::Ordering, time::Duration};

use mc_authn::sms::{LinkState, ReceiptState, SmppClient, SmppConfig, SmsError};
use mc_sandbox::smsc::{Smsc, SmscConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
    time::timeout,
};

const PATIENCE: Duration = Duration::from_secs(10);

fn client_config(addr: &str, password: &str) -> SmppConfig {
    let mut c = SmppConfig::new(addr, "mc-gw", password);
    c.reconnect_min = Duration::from_millis(20);
    c.reconnect_max = Duration::from_millis(200);
    c.throttle_backoff = Duration::from_millis(5);
    c.response_timeout = Duration::from_secs(2);
    c
}

async fn smsc(config: SmscConfig) -> Smsc {
    Smsc::start("127.0.0.1:0", config).await.unwrap()
}

async fn wait_state(
    rx: &mut watch::Receiver<LinkState>,
    want: impl Fn(&LinkState) -> bool,
) -> LinkState {
    timeout(PATIENCE, rx.wait_for(|s| want(s)))
        .await
        .expect("state reached in time")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn gsm7_message_is_delivered_and_receipted() {
    let smsc = smsc(SmscConfig::new("mc-gw", "pw")).await;
    let mut inbox = smsc.subscribe();
    let client = SmppClient::start(client_config(&smsc.local_addr().to_string(), "pw"));
    let mut receipts = client.receipts();

    let sent = client
        .submit("+447700900301", "Your OnlineShopper code: 123456 {ok}")
        .await
        .unwrap();
    assert_eq!(sent.encoding, "gsm7");
    assert_eq!(sent.message_ids.len(), 1);

    let sms = timeout(PATIENCE, inbox.recv()).await.unwrap().unwrap();
    assert_eq!(sms.to, "+447700900301");
    assert_eq!(sms.text, "Your OnlineShopper code: 123456 {ok}");
    assert_eq!(sms.from, "MobileConn");

    let receipt = timeout(PATIENCE, receipts.recv()).await.unwrap().unwrap();
    assert_eq!(receipt.message_id, sent.message_ids[0]);
    assert_eq!(receipt.state, ReceiptState::Delivered);
    assert_eq!(client.state(), LinkState::Bound);
}

#[tokio::test]
async fn long_ucs2_message_is_concatenated_and_reassembled() {
    let smsc = smsc(SmscConfig::new("mc-gw", "pw")).await;
    let mut inbox = smsc.subscribe();
    let client = SmppClient::start(client_config(&smsc.local_addr().to_string(), "pw"));

    // 80 Cyrillic characters: more than the 70 of one UCS-2 part.
    let text: String = "Подтвердите вход".chars().cycle().take(80).collect();
    let sent = client.submit("447700900302", &text).await.unwrap();
    assert_eq!(sent.encoding, "ucs2");
    assert_eq!(sent.message_ids.len(), 2);

    let sms = timeout(PATIENCE, inbox.recv()).await.unwrap().unwrap();
    assert_eq!(sms.text, text);
    assert_eq!(sms.parts, 2);
    assert_eq!(sms.message_id, sent.message_ids[1]);
}

#[tokio::test]
async fn undeliverable_receipts_are_reported() {
    let mut config = SmscConfig::new("mc-gw", "pw");
    config.receipt_state = ReceiptState::Undeliverable;
    let smsc = smsc(config).await;
    let client = SmppClient::start(client_config(&smsc.local_addr().to_string(), "pw"));
    let mut receipts = client.receipts();
    let sent = client.submit("447700900303", "code 1").await.unwrap();
    let receipt = timeout(PATIENCE, receipts.recv()).await.unwrap().unwrap();
    assert_eq!(receipt.message_id, sent.message_ids[0]);
    assert_eq!(receipt.state, ReceiptState::Undeliverable);
}

#[tokio::test]
async fn throttled_submits_are_retried_until_accepted() {
    let mut config = SmscConfig::new("mc-gw", "pw");
    config.throttle_every = 2;
    let smsc = smsc(config).await;
    let mut inbox = smsc.subscribe();
    let client = SmppClient::start(client_config(&smsc.local_addr().to_string(), "pw"));

    for i in 0..4 {
        client
            .submit("447700900301", &format!("message {i}"))
            .await
            .unwrap();
    }
    let mut texts = Vec::new();
    for _ in 0..4 {
        texts.push(timeout(PATIENCE, inbox.recv()).await.unwrap().unwrap().text);
    }
    texts.sort();
    assert_eq!(texts, ["message 0", "message 1", "message 2", "message 3"]);
    assert!(smsc.stats().throttled.load(Ordering::Relaxed) >= 3);
    assert_eq!(
        smsc.stats().submits.load(Ordering::Relaxed),
        4,
        "each accepted once"
    );
}

#[tokio::test]
async fn throttling_without_end_gives_up_with_the_status() {
    let mut config = SmscConfig::new("mc-gw", "pw");
    config.throttle_every = 1;
    let smsc = smsc(config).await;
    let mut cfg = client_config(&smsc.local_addr().to_string(), "pw");
    cfg.max_attempts = 3;
    let client = SmppClient::start(cfg);
    let err = client.submit("447700900301", "never").await.unwrap_err();
    assert_eq!(
        err,
        SmsError::GaveUp {
            attempts: 3,
            last_status: 0x58
        }
    );
}

#[tokio::test]
async fn refused_bind_is_reported_and_submits_fail_fast() {
    let smsc = smsc(SmscConfig::new("mc-gw", "pw")).await;
    let mut cfg = client_config(&smsc.local_addr().to_string(), "wrong");
    cfg.response_timeout = Duration::from_millis(300);
    let client = SmppClient::start(cfg);
    let mut state = client.watch_state();
    let refused = wait_state(&mut state, |s| matches!(s, LinkState::BindRefused(_))).await;
    assert_eq!(refused, LinkState::BindRefused(0x0e), "ESME_RINVPASWD");
    assert!(matches!(
        client.submit("447700900301", "hi").await,
        Err(SmsError::LinkDown(_))
    ));
    assert!(smsc.stats().binds_refused.load(Ordering::Relaxed) >= 1);
    assert_eq!(smsc.stats().submits.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_dropped_link_is_rebound_and_sending_resumes() {
    let smsc = smsc(SmscConfig::new("mc-gw", "pw")).await;
    let mut inbox = smsc.subscribe();
    let proxy = Proxy::start(smsc.local_addr().to_string()).await;
    let client = SmppClient::start(client_config(&proxy.addr, "pw"));
    let mut state = client.watch_state();

    client.submit("447700900301", "before").await.unwrap();
    assert_eq!(
        timeout(PATIENCE, inbox.recv()).await.unwrap().unwrap().text,
        "before"
    );

    proxy.cut();
    wait_state(&mut state, |s| *s != LinkState::Bound).await;
    wait_state(&mut state, |s| *s == LinkState::Bound).await;

    client.submit("447700900301", "after").await.unwrap();
    assert_eq!(
        timeout(PATIENCE, inbox.recv()).await.unwrap().unwrap().text,
        "after"
    );
    assert!(smsc.stats().binds_accepted.load(Ordering::Relaxed) >= 2);
}

#[tokio::test]
async fn an_unreachable_smsc_is_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = client_config(&addr.to_string(), "pw");
    cfg.response_timeout = Duration::from_millis(200);
    let client = SmppClient::start(cfg);
    let err = client.submit("447700900301", "hi").await.unwrap_err();
    assert!(matches!(err, SmsError::LinkDown(_)), "{err:?}");
}

#[tokio::test]
async fn bad_input_to_the_client_is_refused_before_the_wire() {
    let smsc = smsc(SmscConfig::new("mc-gw", "pw")).await;
    let client = SmppClient::start(client_config(&smsc.local_addr().to_string(), "pw"));
    assert_eq!(
        client.submit("not-a-number", "hi").await.unwrap_err(),
        SmsError::BadDestination
    );
    assert!(matches!(
        client.submit("447700900301", &"y".repeat(1000)).await,
        Err(SmsError::TooLong { .. })
    ));
    assert_eq!(smsc.stats().submits.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn malformed_pdu_gets_generic_nack_and_the_connection_ends() {
    let smsc = smsc(SmscConfig::new("mc-gw", "pw")).await;
    let mut raw = TcpStream::connect(smsc.local_addr()).await.unwrap();
    // command_length 8 is below the 16-byte header.
    raw.write_all(&[0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1])
        .await
        .unwrap();
    let mut answer = Vec::new();
    timeout(PATIENCE, raw.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.len(), 16, "one header-only PDU");
    assert_eq!(&answer[4..8], &[0x80, 0, 0, 0], "generic_nack");
    assert_eq!(smsc.stats().malformed.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn idle_links_are_kept_alive_with_enquire_link() {
    let smsc = smsc(SmscConfig::new("mc-gw", "pw")).await;
    let mut cfg = client_config(&smsc.local_addr().to_string(), "pw");
    cfg.enquire_link_interval = Duration::from_millis(30);
    let client = SmppClient::start(cfg);
    let mut state = client.watch_state();
    wait_state(&mut state, |s| *s == LinkState::Bound).await;
    let seen = timeout(PATIENCE, async {
        while smsc.stats().enquire_links.load(Ordering::Relaxed) < 3 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "three enquire_links answered");
    assert_eq!(client.state(), LinkState::Bound);
}

/// A TCP relay whose connections the test can cut, to simulate a network failure.
struct Proxy {
    addr: String,
    conns: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = conns.clone();
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                held.lock().unwrap().push(task);
            }
        });
        Proxy { addr, conns }
    }

    fn cut(&self) {
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
