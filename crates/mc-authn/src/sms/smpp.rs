//! An SMPP 3.4 ESME (client) for sending SMS to the operator's SMSC.
//!
//! # Design
//!
//! **One session task.** [`SmppClient::start`] spawns a task that owns the TCP connection:
//! it connects, binds as a transceiver, answers the SMSC's `enquire_link`, `deliver_sm`
//! (delivery receipts) and `unbind`, sends its own `enquire_link` when the link is idle,
//! and reconnects with exponential backoff when the link drops, a response times out or
//! the bind is refused. The link state is published on a `watch` channel
//! ([`SmppClient::state`]) and as the `mc_smpp_link_up` gauge.
//!
//! **Pipelined submits.** [`SmppClient::submit`] runs in the caller's task. It splits the
//! text into parts (GSM 03.38 default alphabet when every character fits, UCS-2
//! otherwise; concatenated with an 8-bit reference UDH, by `rusmpp`), and sends each part
//! through the session task, which assigns the sequence number and routes the
//! `submit_sm_resp` back. Up to [`SmppConfig::window`] parts are in flight at once across
//! all callers.
//!
//! **Retries.** `ESME_RTHROTTLED` and `ESME_RMSGQFUL` (the SMSC asks us to slow down),
//! `ESME_RSYSERR` (transient SMSC fault) and a lost link are retried with doubling
//! waits, up to [`SmppConfig::max_attempts`] per part; any other status is final
//! ([`SmsError::Rejected`]). A part whose response was lost with the link is sent again
//! after the rebind, so a part may reach the SMSC twice — SMPP 3.4 has no idempotency
//! key; exactly-once *requests* are the job of the durable outbox above this client.
//!
//! **Secrets.** The bind password never appears in logs or `Debug` output.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use rusmpp::{
    Command, CommandId, CommandStatus, Pdu,
    extra::{concatenation::SubmitSmMultipartExt, encoding::gsm7bit::Gsm7BitUnpacked},
    pdus::{BindTransceiver, SubmitSm},
    tokio_codec::CommandCodec,
    types::COctetString,
    values::{EsmClass, InterfaceVersion, Npi, RegisteredDelivery, Ton},
};
use tokio::{
    net::TcpStream,
    sync::{Semaphore, broadcast, mpsc, oneshot, watch},
    time::{Instant, sleep, timeout},
};
use tokio_util::codec::Framed;

use super::receipt::{DeliveryReceipt, parse_receipt};

/// How to reach and bind to the SMSC, and how patient to be with it.
#[derive(Clone)]
pub struct SmppConfig {
    /// `host:port` of the SMSC.
    pub address: String,
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    /// The sender shown on the phone: digits (a number or short code) or up to 11
    /// alphanumeric characters.
    pub source_addr: String,
    /// Idle time after which we send `enquire_link`.
    pub enquire_link_interval: Duration,
    /// How long a response (to bind, submit or enquire_link) may take.
    pub response_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// First wait after `ESME_RTHROTTLED`; doubled on each further refusal.
    pub throttle_backoff: Duration,
    /// Sends of one part before giving up (throttling, SMSC faults and lost links count).
    pub max_attempts: u32,
    /// Parts in flight at once over the link.
    pub window: usize,
    /// Longest message accepted, in parts.
    pub max_parts: usize,
    /// Ask the SMSC for delivery receipts.
    pub request_receipts: bool,
}

impl std::fmt::Debug for SmppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppConfig")
            .field("address", &self.address)
            .field("system_id", &self.system_id)
            .field("password", &"<redacted>")
            .field("system_type", &self.system_type)
            .field("source_addr", &self.source_addr)
            .finish_non_exhaustive()
    }
}

impl SmppConfig {
    /// A configuration with the usual timings (30 s enquire_link, 10 s responses, 1–60 s
    /// reconnects, 200 ms first throttling wait, 6 attempts, window 10, 3 parts).
    pub fn new(address: &str, system_id: &str, password: &str) -> SmppConfig {
        SmppConfig {
            address: address.to_owned(),
            system_id: system_id.to_owned(),
            password: password.to_owned(),
            system_type: String::new(),
            source_addr: "MobileConn".to_owned(),
            enquire_link_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            throttle_backoff: Duration::from_millis(200),
            max_attempts: 6,
            window: 10,
            max_parts: 3,
            request_receipts: true,
        }
    }
}

/// Where the link stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Bound,
    /// The TCP connection failed or dropped; a reconnect is scheduled.
    Disconnected,
    /// The SMSC refused the bind with this `command_status` (wrong credentials…); a
    /// reconnect is scheduled with backoff.
    BindRefused(u32),
    /// The client was shut down.
    Closed,
}

/// The SMSC took every part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The SMSC's message id per part, in order.
    pub message_ids: Vec<String>,
    /// `"gsm7"` or `"ucs2"`.
    pub encoding: &'static str,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SmsError {
    #[error("invalid destination address")]
    BadDestination,
    #[error("the text needs {parts} parts, more than the {max} allowed")]
    TooLong { parts: usize, max: usize },
    #[error("the text cannot be encoded: {0}")]
    Encoding(String),
    #[error("the SMSC refused the message with status 0x{0:08x}")]
    Rejected(u32),
    #[error("no bound SMPP link (last state: {0})")]
    LinkDown(String),
    #[error("gave up after {attempts} attempts (last status 0x{last_status:08x})")]
    GaveUp { attempts: u32, last_status: u32 },
    #[error("the SMPP client is shut down")]
    Closed,
}

/// One request for the session task: a PDU to send and where its response goes.
struct Request {
    pdu: Pdu,
    reply: oneshot::Sender<Command>,
}

/// A running SMPP client; cheap to clone.
#[derive(Clone)]
pub struct SmppClient {
    shared: Arc<Shared>,
}

struct Shared {
    tx: mpsc::Sender<Request>,
    state: watch::Receiver<LinkState>,
    receipts: broadcast::Sender<DeliveryReceipt>,
    window: Semaphore,
    reference: AtomicU8,
    config: SmppConfig,
}

impl SmppClient {
    /// Starts the session task; the client connects in the background.
    pub fn start(config: SmppConfig) -> SmppClient {
        let (tx, rx) = mpsc::channel(config.window.max(1) * 4);
        let (state_tx, state) = watch::channel(LinkState::Connecting);
        let (receipts, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            tx,
            state,
            receipts: receipts.clone(),
            window: Semaphore::new(config.window.max(1)),
            reference: AtomicU8::new(0),
            config: config.clone(),
        });
        tokio::spawn(session(config, rx, state_tx, receipts));
        SmppClient { shared }
    }

    /// The link's current state.
    pub fn state(&self) -> LinkState {
        self.shared.state.borrow().clone()
    }

    /// A receiver of every state change (for readiness checks and tests).
    pub fn watch_state(&self) -> watch::Receiver<LinkState> {
        self.shared.state.clone()
    }

    /// Delivery receipts as they arrive.
    pub fn receipts(&self) -> broadcast::Receiver<DeliveryReceipt> {
        self.shared.receipts.subscribe()
    }

    /// Sends `text` to `msisdn` (E.164, with or without `+`), all parts, retrying
    /// throttling and link loss as the module documentation says.
    pub async fn submit(&self, msisdn: &str, text: &str) -> Result<Submitted, SmsError> {
        let reference = self.shared.reference.fetch_add(1, Ordering::Relaxed);
        let (parts, encoding) = build_parts(&self.shared.config, msisdn, text, reference)?;
        let mut message_ids = Vec::with_capacity(parts.len());
        for part in parts {
            message_ids.push(self.submit_part(part).await?);
        }
        metrics::counter!("mc_sms_submitted_total", "encoding" => encoding).increment(1);
        Ok(Submitted {
            message_ids,
            encoding,
        })
    }

    async fn submit_part(&self, part: SubmitSm) -> Result<String, SmsError> {
        let cfg = &self.shared.config;
        let _permit = self
            .shared
            .window
            .acquire()
            .await
            .map_err(|_| SmsError::Closed)?;
        let mut wait = cfg.throttle_backoff;
        let mut last_status = 0u32;
        for _ in 0..cfg.max_attempts {
            self.wait_bound().await?;
            let (reply, answer) = oneshot::channel();
            let request = Request {
                pdu: part.clone().into(),
                reply,
            };
            self.shared
                .tx
                .send(request)
                .await
                .map_err(|_| SmsError::Closed)?;
            // A dropped reply means the link went down (or the response timed out) with
            // the part in flight: send it again on the next link.
            let Ok(answer) = answer.await else {
                metrics::counter!("mc_sms_part_retries_total", "reason" => "link").increment(1);
                continue;
            };
            let status = answer.status();
            match status {
                CommandStatus::EsmeRok => {
                    return Ok(match answer.pdu() {
                        Some(Pdu::SubmitSmResp(resp)) => c_string(resp.message_id().as_ref()),
                        _ => String::new(),
                    });
                }
                CommandStatus::EsmeRthrottled
                | CommandStatus::EsmeRmsgqful
                | CommandStatus::EsmeRsyserr => {
                    last_status = u32::from(status);
                    metrics::counter!("mc_sms_part_retries_total", "reason" => "smsc").increment(1);
                    tracing::debug!(
                        status = last_status,
                        wait_ms = wait.as_millis() as u64,
                        "smpp: SMSC asked to retry"
                    );
                    sleep(wait).await;
                    wait = (wait * 2).min(cfg.reconnect_max);
                }
                other => {
                    metrics::counter!("mc_sms_rejected_total").increment(1);
                    return Err(SmsError::Rejected(u32::from(other)));
                }
            }
        }
        Err(SmsError::GaveUp {
            attempts: cfg.max_attempts,
            last_status,
        })
    }

    /// Waits until the link is bound, at most the response timeout plus one reconnect
    /// delay — long enough for a reconnect, short enough that a caller is not held
    /// while the SMSC is down.
    async fn wait_bound(&self) -> Result<(), SmsError> {
        let cfg = &self.shared.config;
        let mut state = self.shared.state.clone();
        let patience = cfg.response_timeout + cfg.reconnect_min;
        let bound = timeout(
            patience,
            state.wait_for(|s| matches!(s, LinkState::Bound | LinkState::Closed)),
        )
        .await;
        match bound {
            Ok(Ok(s)) if *s == LinkState::Bound => Ok(()),
            Ok(Ok(_)) | Ok(Err(_)) => Err(SmsError::Closed),
            Err(_) => Err(SmsError::LinkDown(format!("{:?}", self.state()))),
        }
    }
}

/// A C-octet string field as text, without its NUL terminator.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes.strip_suffix(&[0]).unwrap_or(bytes)).into_owned()
}

/// The `submit_sm` parts of one message, and the encoding chosen.
fn build_parts(
    cfg: &SmppConfig,
    msisdn: &str,
    text: &str,
    reference: u8,
) -> Result<(Vec<SubmitSm>, &'static str), SmsError> {
    let digits = msisdn.strip_prefix('+').unwrap_or(msisdn);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SmsError::BadDestination);
    }
    let destination = COctetString::from_str(digits).map_err(|_| SmsError::BadDestination)?;
    let (source_ton, source_npi) = source_numbering(&cfg.source_addr);
    let source = COctetString::from_str(&cfg.source_addr)
        .map_err(|e| SmsError::Encoding(format!("source_addr: {e}")))?;
    let registered_delivery = if cfg.request_receipts {
        RegisteredDelivery::from(0x01u8)
    } else {
        RegisteredDelivery::from(0x00u8)
    };
    let base = SubmitSm::builder()
        .source_addr_ton(source_ton)
        .source_addr_npi(source_npi)
        .source_addr(source)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(destination)
        // `EsmClass::default()` asks for a delivery acknowledgement; a plain SMS is 0.
        .esm_class(EsmClass::from(0u8))
        .registered_delivery(registered_delivery)
        .build();
    let (parts, encoding) = split_text(base, text, reference)?;
    if parts.len() > cfg.max_parts {
        return Err(SmsError::TooLong {
            parts: parts.len(),
            max: cfg.max_parts,
        });
    }
    Ok((parts, encoding))
}

/// Septets in one GSM 03.38 SMS, and in one part of a concatenated one: the 6-octet UDH
/// takes 7 septets once the SMSC packs the text (160 − 7 = 153).
const GSM7_SINGLE: usize = 160;
const GSM7_PART_WITH_UDH: usize = 159;

/// The text in as few parts as fit: GSM 03.38 (sent unpacked, one septet per octet; the
/// SMSC packs it) when every character is in the default alphabet or its extension,
/// UCS-2 (140 octets a part) otherwise.
fn split_text(
    base: SubmitSm,
    text: &str,
    reference: u8,
) -> Result<(Vec<SubmitSm>, &'static str), SmsError> {
    let encoding_error = |e: &dyn std::fmt::Display| SmsError::Encoding(e.to_string());
    if Gsm7BitUnpacked::new().encode_to_vec(text).is_ok() {
        let single = base
            .clone()
            .multipart(text)
            .max_short_message_size(GSM7_SINGLE)
            .reference_u8(reference)
            .build()
            .map_err(|e| encoding_error(&e))?;
        if single.len() == 1 {
            return Ok((single, "gsm7"));
        }
        let parts = base
            .multipart(text)
            .max_short_message_size(GSM7_PART_WITH_UDH)
            .reference_u8(reference)
            .build()
            .map_err(|e| encoding_error(&e))?;
        return Ok((parts, "gsm7"));
    }
    let parts = base
        .multipart(text)
        .ucs2()
        .reference_u8(reference)
        .build()
        .map_err(|e| encoding_error(&e))?;
    Ok((parts, "ucs2"))
}

/// TON/NPI of the sender: alphanumeric senders are TON 5; long numbers international
/// E.164; short codes "unknown" (their meaning is the SMSC's).
fn source_numbering(source: &str) -> (Ton, Npi) {
    if !source.bytes().all(|b| b.is_ascii_digit()) {
        (Ton::Alphanumeric, Npi::Unknown)
    } else if source.len() > 8 {
        (Ton::International, Npi::Isdn)
    } else {
        (Ton::Unknown, Npi::Unknown)
    }
}

/// Why a bound session ended.
enum SessionEnd {
    /// Reconnect.
    LinkLost,
    /// Every client handle is gone: unbind and stop.
    Shutdown,
}

async fn session(
    cfg: SmppConfig,
    mut rx: mpsc::Receiver<Request>,
    state: watch::Sender<LinkState>,
    receipts: broadcast::Sender<DeliveryReceipt>,
) {
    let mut delay = cfg.reconnect_min;
    loop {
        state.send_replace(LinkState::Connecting);
        match connect_and_bind(&cfg).await {
            Ok(framed) => {
                tracing::info!(smsc = %cfg.address, "smpp: bound as transceiver");
                metrics::gauge!("mc_smpp_link_up").set(1.0);
                metrics::counter!("mc_smpp_binds_total", "outcome" => "ok").increment(1);
                state.send_replace(LinkState::Bound);
                delay = cfg.reconnect_min;
                let end = serve_bound(&cfg, framed, &mut rx, &receipts).await;
                metrics::gauge!("mc_smpp_link_up").set(0.0);
                if let SessionEnd::Shutdown = end {
                    state.send_replace(LinkState::Closed);
                    return;
                }
                tracing::warn!(smsc = %cfg.address, "smpp: link lost; reconnecting");
                state.send_replace(LinkState::Disconnected);
            }
            Err(BindFailure::Refused(status)) => {
                tracing::warn!(smsc = %cfg.address, status = format_args!("0x{status:08x}"), "smpp: bind refused");
                metrics::counter!("mc_smpp_binds_total", "outcome" => "refused").increment(1);
                state.send_replace(LinkState::BindRefused(status));
            }
            Err(BindFailure::Io(why)) => {
                tracing::warn!(smsc = %cfg.address, %why, "smpp: cannot connect or bind");
                metrics::counter!("mc_smpp_binds_total", "outcome" => "error").increment(1);
                state.send_replace(LinkState::Disconnected);
            }
        }
        // Back off before the next attempt; requests arriving meanwhile are refused at
        // once (their senders wait for `Bound` and retry), and a closed channel means
        // every client is gone.
        let until = Instant::now() + delay;
        delay = (delay * 2).min(cfg.reconnect_max);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                req = rx.recv() => match req {
                    Some(req) => drop(req),
                    None => {
                        state.send_replace(LinkState::Closed);
                        return;
                    }
                },
            }
        }
    }
}

enum BindFailure {
    Refused(u32),
    Io(String),
}

type Link = Framed<TcpStream, CommandCodec>;

/// A bind field, or why it cannot be sent (too long for its SMPP field).
fn bind_field<const MIN: usize, const MAX: usize>(
    s: &str,
    what: &str,
) -> Result<COctetString<MIN, MAX>, BindFailure> {
    COctetString::from_str(s).map_err(|e| BindFailure::Io(format!("{what}: {e}")))
}

/// Sequence number 1 is the bind; the session continues from 2.
async fn connect_and_bind(cfg: &SmppConfig) -> Result<Link, BindFailure> {
    let stream = timeout(cfg.response_timeout, TcpStream::connect(&cfg.address))
        .await
        .map_err(|_| BindFailure::Io("connect timed out".into()))?
        .map_err(|e| BindFailure::Io(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let mut link = Framed::new(stream, CommandCodec::new());
    let bind = BindTransceiver::builder()
        .system_id(bind_field(&cfg.system_id, "system_id")?)
        .password(bind_field(&cfg.password, "password")?)
        .system_type(bind_field(&cfg.system_type, "system_type")?)
        .interface_version(InterfaceVersion::Smpp3_4)
        .addr_ton(Ton::Unknown)
        .addr_npi(Npi::Unknown)
        .address_range(COctetString::empty())
        .build();
    link.send(Command::new(CommandStatus::EsmeRok, 1, bind))
        .await
        .map_err(|e| BindFailure::Io(e.to_string()))?;
    let deadline = Instant::now() + cfg.response_timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, link.next())
            .await
            .map_err(|_| BindFailure::Io("bind response timed out".into()))?;
        let cmd = match next {
            Some(Ok(cmd)) => cmd,
            Some(Err(e)) => return Err(BindFailure::Io(e.to_string())),
            None => return Err(BindFailure::Io("connection closed during bind".into())),
        };
        // Dispatch on the command id: an error response may carry no body at all.
        match cmd.id() {
            CommandId::BindTransceiverResp | CommandId::GenericNack
                if cmd.sequence_number() == 1 =>
            {
                return if cmd.status() == CommandStatus::EsmeRok {
                    Ok(link)
                } else {
                    Err(BindFailure::Refused(u32::from(cmd.status())))
                };
            }
            // Some SMSCs probe with enquire_link before answering the bind.
            CommandId::EnquireLink => {
                let resp = Command::new(
                    CommandStatus::EsmeRok,
                    cmd.sequence_number(),
                    Pdu::EnquireLinkResp,
                );
                link.send(resp)
                    .await
                    .map_err(|e| BindFailure::Io(e.to_string()))?;
            }
            _ => {}
        }
    }
}

/// Runs a bound link until it drops or every client handle is gone.
async fn serve_bound(
    cfg: &SmppConfig,
    mut link: Link,
    rx: &mut mpsc::Receiver<Request>,
    receipts: &broadcast::Sender<DeliveryReceipt>,
) -> SessionEnd {
    let mut pending: HashMap<u32, (Instant, oneshot::Sender<Command>)> = HashMap::new();
    let mut sequence: u32 = 1;
    let mut next_sequence = move || {
        // Sequence numbers run 1..=0x7FFFFFFF (SMPP 3.4 §3.2).
        sequence = if sequence >= 0x7fff_ffff {
            1
        } else {
            sequence + 1
        };
        sequence
    };
    let mut last_heard = Instant::now();
    let mut enquiry: Option<(u32, Instant)> = None;
    let check_every = cfg.response_timeout.min(cfg.enquire_link_interval) / 2;
    let mut ticker = tokio::time::interval(check_every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            frame = link.next() => {
                let cmd = match frame {
                    Some(Ok(cmd)) => cmd,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "smpp: undecodable PDU from the SMSC");
                        return SessionEnd::LinkLost;
                    }
                    None => return SessionEnd::LinkLost,
                };
                last_heard = Instant::now();
                match handle_inbound(cmd, &mut pending, &mut enquiry, receipts) {
                    Inbound::Reply(resp) => {
                        if link.send(resp).await.is_err() {
                            return SessionEnd::LinkLost;
                        }
                    }
                    Inbound::Nothing => {}
                    Inbound::Unbound(resp) => {
                        let _ = link.send(resp).await;
                        return SessionEnd::LinkLost;
                    }
                }
            }
            req = rx.recv() => {
                let Some(req) = req else {
                    let seq = next_sequence();
                    let _ = link.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind)).await;
                    return SessionEnd::Shutdown;
                };
                let seq = next_sequence();
                if link.send(Command::new(CommandStatus::EsmeRok, seq, req.pdu)).await.is_err() {
                    return SessionEnd::LinkLost;
                }
                pending.insert(seq, (Instant::now(), req.reply));
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                if let Some((_, sent)) = enquiry
                    && now.duration_since(sent) > cfg.response_timeout
                {
                    tracing::warn!("smpp: enquire_link unanswered");
                    return SessionEnd::LinkLost;
                }
                // A response that never comes frees its caller, who retries.
                pending.retain(|_, (sent, _)| now.duration_since(*sent) <= cfg.response_timeout);
                if enquiry.is_none() && now.duration_since(last_heard) >= cfg.enquire_link_interval {
                    let seq = next_sequence();
                    if link.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink)).await.is_err() {
                        return SessionEnd::LinkLost;
                    }
                    enquiry = Some((seq, now));
                }
            }
        }
    }
}

enum Inbound {
    Reply(Command),
    Unbound(Command),
    Nothing,
}

/// What to do with one PDU from the SMSC.
fn handle_inbound(
    cmd: Command,
    pending: &mut HashMap<u32, (Instant, oneshot::Sender<Command>)>,
    enquiry: &mut Option<(u32, Instant)>,
    receipts: &broadcast::Sender<DeliveryReceipt>,
) -> Inbound {
    let seq = cmd.sequence_number();
    let reply = |pdu: Pdu, status: CommandStatus| Command::new(status, seq, pdu);
    // Dispatch on the command id: an error response may carry no body at all.
    match cmd.id() {
        CommandId::EnquireLink => {
            Inbound::Reply(reply(Pdu::EnquireLinkResp, CommandStatus::EsmeRok))
        }
        CommandId::EnquireLinkResp => {
            if enquiry.is_some_and(|(s, _)| s == seq) {
                *enquiry = None;
            }
            Inbound::Nothing
        }
        CommandId::Unbind => Inbound::Unbound(reply(Pdu::UnbindResp, CommandStatus::EsmeRok)),
        CommandId::DeliverSm => {
            match cmd.pdu().and_then(|p| match p {
                Pdu::DeliverSm(sm) => parse_receipt(sm),
                _ => None,
            }) {
                Some(receipt) => {
                    metrics::counter!("mc_sms_receipts_total", "state" => receipt.state.as_str())
                        .increment(1);
                    let _ = receipts.send(receipt);
                }
                // Mobile-originated messages are not part of any flow here; they are
                // acknowledged so the SMSC does not redeliver them.
                None => tracing::debug!("smpp: mobile-originated deliver_sm ignored"),
            }
            Inbound::Reply(reply(
                Pdu::DeliverSmResp(Default::default()),
                CommandStatus::EsmeRok,
            ))
        }
        CommandId::SubmitSmResp | CommandId::GenericNack => {
            if let Some((_, tx)) = pending.remove(&seq) {
                let _ = tx.send(cmd);
            }
            Inbound::Nothing
        }
        CommandId::UnbindResp | CommandId::DeliverSmResp => Inbound::Nothing,
        _ => Inbound::Reply(reply(Pdu::GenericNack, CommandStatus::EsmeRinvcmdid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SmppConfig {
        SmppConfig::new("127.0.0.1:1", "id", "pw")
    }

    #[test]
    fn short_latin_text_is_one_gsm7_part() {
        let (parts, enc) = build_parts(&cfg(), "+447700900301", "Your code is 123456", 1).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(enc, "gsm7");
        assert_eq!(parts[0].short_message().as_ref(), b"Your code is 123456");
        assert_eq!(
            c_string(parts[0].destination_addr.as_ref()),
            "447700900301",
            "no plus sign on the wire"
        );
    }

    #[test]
    fn non_gsm_text_falls_back_to_ucs2() {
        let (parts, enc) = build_parts(&cfg(), "447700900301", "Код 123456", 1).unwrap();
        assert_eq!(enc, "ucs2");
        assert_eq!(
            parts[0].short_message().as_ref().len(),
            "Код 123456".chars().count() * 2
        );
    }

    #[test]
    fn long_text_is_concatenated_within_the_part_limit() {
        let parts_for =
            |n: usize| build_parts(&cfg(), "447700900301", &"x".repeat(n), 7).map(|(p, _)| p.len());
        // 160 septets in one SMS, 153 a part once concatenated.
        assert_eq!(parts_for(160), Ok(1));
        assert_eq!(parts_for(161), Ok(2));
        assert_eq!(parts_for(306), Ok(2));
        assert_eq!(parts_for(307), Ok(3));
        let (parts, _) = build_parts(&cfg(), "447700900301", &"x".repeat(300), 7).unwrap();
        assert!(
            parts.iter().all(|p| u8::from(p.esm_class) & 0x40 != 0),
            "UDHI set"
        );
        assert_eq!(parts_for(600), Err(SmsError::TooLong { parts: 4, max: 3 }));
    }

    #[test]
    fn bad_destinations_are_refused() {
        for bad in ["", "+", "44 7700", "abc", "+4477009003011234567890"] {
            assert_eq!(
                build_parts(&cfg(), bad, "hi", 1).unwrap_err(),
                SmsError::BadDestination,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let c = SmppConfig::new("h:1", "id", "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
