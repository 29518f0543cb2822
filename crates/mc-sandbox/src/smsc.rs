//! The sandbox's SMSC: the server side of SMPP 3.4, so that `mobileconnect sandbox` sends
//! its SMS through the same SMPP client an operator deployment uses.
//!
//! It accepts `bind_transceiver`/`bind_transmitter` with configured credentials, answers
//! `enquire_link` and `unbind`, takes `submit_sm` (GSM 03.38 unpacked or UCS-2,
//! concatenated with 8- or 16-bit reference UDHs), puts each complete message in the
//! inbox the virtual phones read, and sends a delivery receipt when one was asked for.
//! For tests it can refuse every n-th submit with `ESME_RTHROTTLED`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    str::FromStr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
};

use futures_util::{SinkExt, StreamExt};
use mc_authn::sms::{ReceiptState, receipt::receipt_text};
use rusmpp::{
    Command, CommandStatus, Pdu,
    extra::encoding::gsm7bit::Gsm7BitUnpacked,
    pdus::{BindTransceiverResp, BindTransmitterResp, DeliverSm, SubmitSm, SubmitSmResp},
    tlvs::MessageDeliveryRequestTlvValue,
    tokio_codec::CommandCodec,
    types::{COctetString, OctetString},
    values::{DataCoding, EsmClass, MessageState, Npi, Ton},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::broadcast,
};
use tokio_util::codec::Framed;

/// Who may bind, and how the simulated network behaves.
#[derive(Clone)]
pub struct SmscConfig {
    pub system_id: String,
    pub password: String,
    /// Refuse every n-th `submit_sm` with `ESME_RTHROTTLED` (0: never).
    pub throttle_every: u32,
    /// The state reported in delivery receipts.
    pub receipt_state: ReceiptState,
}

impl SmscConfig {
    pub fn new(system_id: &str, password: &str) -> SmscConfig {
        SmscConfig {
            system_id: system_id.to_owned(),
            password: password.to_owned(),
            throttle_every: 0,
            receipt_state: ReceiptState::Delivered,
        }
    }
}

/// One complete message as the handset receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredSms {
    /// The destination, E.164 with `+`.
    pub to: String,
    pub from: String,
    pub text: String,
    /// The message id of the last part (the one whose receipt completes the message).
    pub message_id: String,
    pub parts: usize,
}

/// Counters a test can read.
#[derive(Debug, Default)]
pub struct SmscStats {
    pub binds_accepted: AtomicU64,
    pub binds_refused: AtomicU64,
    pub submits: AtomicU64,
    pub throttled: AtomicU64,
    pub receipts_sent: AtomicU64,
    pub malformed: AtomicU64,
    pub enquire_links: AtomicU64,
}

/// A running SMSC.
#[derive(Clone)]
pub struct Smsc {
    addr: SocketAddr,
    inbox: broadcast::Sender<DeliveredSms>,
    stats: Arc<SmscStats>,
}

impl Smsc {
    /// Listens on `addr` (e.g. `127.0.0.1:0`) and serves connections in the background.
    pub async fn start(addr: &str, config: SmscConfig) -> std::io::Result<Smsc> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (inbox, _) = broadcast::channel(1024);
        let stats = Arc::new(SmscStats::default());
        let smsc = Smsc { addr, inbox, stats };
        let server = Server {
            config: Arc::new(config),
            inbox: smsc.inbox.clone(),
            stats: smsc.stats.clone(),
            message_ids: Arc::new(AtomicU64::new(0x5a00)),
            submits: Arc::new(AtomicU32::new(0)),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        Ok(smsc)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages as they are delivered.
    pub fn subscribe(&self) -> broadcast::Receiver<DeliveredSms> {
        self.inbox.subscribe()
    }

    pub fn stats(&self) -> &SmscStats {
        &self.stats
    }
}

#[derive(Clone)]
struct Server {
    config: Arc<SmscConfig>,
    inbox: broadcast::Sender<DeliveredSms>,
    stats: Arc<SmscStats>,
    message_ids: Arc<AtomicU64>,
    submits: Arc<AtomicU32>,
}

/// Parts of concatenated messages waiting for their siblings, by (destination,
/// reference, total).
type Reassembly = HashMap<(String, u16, u8), Vec<Option<String>>>;

impl Server {
    async fn serve(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut link = Framed::new(stream, CommandCodec::new());
        let mut bound = false;
        let mut parts: Reassembly = HashMap::new();
        let mut own_sequence: u32 = 0;
        while let Some(frame) = link.next().await {
            let cmd = match frame {
                Ok(cmd) => cmd,
                Err(_) => {
                    // SMPP 3.4 §2.9: an undecodable PDU gets generic_nack; the framing is
                    // lost with it, so the connection ends.
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    let nack = Command::new(CommandStatus::EsmeRinvcmdlen, 0, Pdu::GenericNack);
                    let _ = link.send(nack).await;
                    return;
                }
            };
            let seq = cmd.sequence_number();
            let answer = |status: CommandStatus, pdu: Pdu| Command::new(status, seq, pdu);
            let mut receipt = None;
            let reply = match cmd.pdu() {
                Some(Pdu::BindTransceiver(b)) => {
                    let ok = self.credentials_match(b.system_id.as_ref(), b.password.as_ref());
                    bound = ok;
                    let resp = BindTransceiverResp::builder()
                        .system_id(cstr("sandbox-smsc"))
                        .build();
                    answer(self.bind_status(ok), Pdu::BindTransceiverResp(resp))
                }
                Some(Pdu::BindTransmitter(b)) => {
                    let ok = self.credentials_match(b.system_id.as_ref(), b.password.as_ref());
                    bound = ok;
                    let resp = BindTransmitterResp::builder()
                        .system_id(cstr("sandbox-smsc"))
                        .build();
                    answer(self.bind_status(ok), Pdu::BindTransmitterResp(resp))
                }
                Some(Pdu::EnquireLink) => {
                    self.stats.enquire_links.fetch_add(1, Ordering::Relaxed);
                    answer(CommandStatus::EsmeRok, Pdu::EnquireLinkResp)
                }
                Some(Pdu::Unbind) => {
                    let _ = link
                        .send(answer(CommandStatus::EsmeRok, Pdu::UnbindResp))
                        .await;
                    return;
                }
                Some(Pdu::SubmitSm(_)) if !bound => answer(
                    CommandStatus::EsmeRinvbndsts,
                    Pdu::SubmitSmResp(SubmitSmResp::default()),
                ),
                Some(Pdu::SubmitSm(sm)) => {
                    let (status, resp, wants_receipt) = self.submit(sm, &mut parts);
                    if wants_receipt && let Some(id) = resp.message_id_text() {
                        receipt = Some((sm.clone(), id));
                    }
                    answer(status, Pdu::SubmitSmResp(resp.into_resp()))
                }
                Some(Pdu::DeliverSmResp(_)) | Some(Pdu::EnquireLinkResp) => continue,
                _ => answer(CommandStatus::EsmeRinvcmdid, Pdu::GenericNack),
            };
            if link.send(reply).await.is_err() {
                return;
            }
            if let Some((sm, message_id)) = receipt {
                own_sequence += 1;
                let deliver = self.receipt_for(&sm, &message_id);
                if link
                    .send(Command::new(CommandStatus::EsmeRok, own_sequence, deliver))
                    .await
                    .is_err()
                {
                    return;
                }
                self.stats.receipts_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn credentials_match(&self, system_id: &[u8], password: &[u8]) -> bool {
        c_text(system_id) == self.config.system_id.as_bytes()
            && c_text(password) == self.config.password.as_bytes()
    }

    fn bind_status(&self, ok: bool) -> CommandStatus {
        if ok {
            self.stats.binds_accepted.fetch_add(1, Ordering::Relaxed);
            CommandStatus::EsmeRok
        } else {
            self.stats.binds_refused.fetch_add(1, Ordering::Relaxed);
            CommandStatus::EsmeRinvpaswd
        }
    }

    /// Takes one part: throttles, validates, stores, and delivers the message when its
    /// last part is in.
    fn submit(&self, sm: &SubmitSm, parts: &mut Reassembly) -> (CommandStatus, Accepted, bool) {
        let n = self.submits.fetch_add(1, Ordering::Relaxed) + 1;
        let every = self.config.throttle_every;
        if every > 0 && n.is_multiple_of(every) {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            return (CommandStatus::EsmeRthrottled, Accepted::Refused, false);
        }
        let to = c_string(sm.destination_addr.as_ref());
        if to.is_empty() || !to.bytes().all(|b| b.is_ascii_digit()) {
            return (CommandStatus::EsmeRinvdstadr, Accepted::Refused, false);
        }
        let Some((udh, payload)) = split_udh(sm) else {
            return (CommandStatus::EsmeRinvesmclass, Accepted::Refused, false);
        };
        let Some(text) = decode_text(sm.data_coding, payload) else {
            return (CommandStatus::EsmeRinvdcs, Accepted::Refused, false);
        };
        self.stats.submits.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:x}", self.message_ids.fetch_add(1, Ordering::Relaxed));
        let from = c_string(sm.source_addr.as_ref());
        let whole = match udh {
            None => Some((text, 1)),
            Some(Concat {
                reference,
                total,
                seq,
            }) => {
                let slot = parts
                    .entry((to.clone(), reference, total))
                    .or_insert_with(|| vec![None; usize::from(total)]);
                if let Some(s) = slot.get_mut(usize::from(seq) - 1) {
                    *s = Some(text);
                }
                if slot.iter().all(Option::is_some) {
                    let joined: String = slot.iter().flatten().map(String::as_str).collect();
                    parts.remove(&(to.clone(), reference, total));
                    Some((joined, usize::from(total)))
                } else {
                    None
                }
            }
        };
        if let Some((text, count)) = whole {
            let _ = self.inbox.send(DeliveredSms {
                to: format!("+{to}"),
                from,
                text,
                message_id: id.clone(),
                parts: count,
            });
        }
        let wants_receipt = u8::from(sm.registered_delivery) & 0x03 != 0;
        (CommandStatus::EsmeRok, Accepted::Id(id), wants_receipt)
    }

    fn receipt_for(&self, sm: &SubmitSm, message_id: &str) -> DeliverSm {
        let state = self.config.receipt_state;
        let text = receipt_text(message_id, state, "2611220000");
        let message_state = match state {
            ReceiptState::Delivered => MessageState::Delivered,
            ReceiptState::Expired => MessageState::Expired,
            ReceiptState::Deleted => MessageState::Deleted,
            ReceiptState::Undeliverable => MessageState::Undeliverable,
            ReceiptState::Accepted => MessageState::Accepted,
            ReceiptState::Rejected => MessageState::Rejected,
            ReceiptState::Unknown => MessageState::Unknown,
        };
        let source = COctetString::from_str(&c_string(sm.destination_addr.as_ref()))
            .unwrap_or_else(|_| cstr("0"));
        let destination = COctetString::from_str(&c_string(sm.source_addr.as_ref()))
            .unwrap_or_else(|_| cstr("0"));
        DeliverSm::builder()
            .source_addr_ton(Ton::International)
            .source_addr_npi(Npi::Isdn)
            .source_addr(source)
            .dest_addr_ton(sm.source_addr_ton)
            .dest_addr_npi(sm.source_addr_npi)
            .destination_addr(destination)
            .esm_class(EsmClass::from(0x04u8))
            .short_message(OctetString::from_slice(text.as_bytes()).unwrap_or_default())
            .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(cstr(
                message_id,
            )))
            .push_tlv(MessageDeliveryRequestTlvValue::MessageState(message_state))
            .build()
    }
}

/// A `submit_sm` the SMSC took (with its id) or refused.
enum Accepted {
    Id(String),
    Refused,
}

impl Accepted {
    fn message_id_text(&self) -> Option<String> {
        match self {
            Accepted::Id(id) => Some(id.clone()),
            Accepted::Refused => None,
        }
    }

    fn into_resp(self) -> SubmitSmResp {
        match self {
            Accepted::Id(id) => SubmitSmResp::builder().message_id(cstr(&id)).build(),
            Accepted::Refused => SubmitSmResp::default(),
        }
    }
}

fn cstr<const MIN: usize, const MAX: usize>(s: &str) -> COctetString<MIN, MAX> {
    COctetString::from_str(s).unwrap_or_else(|_| COctetString::empty())
}

/// The bytes of a C-octet string without its NUL terminator.
fn c_text(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(&[0]).unwrap_or(bytes)
}

/// A C-octet string field as text.
fn c_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(c_text(bytes)).into_owned()
}

struct Concat {
    reference: u16,
    total: u8,
    seq: u8,
}

/// The concatenation header (if UDHI is set) and the text bytes after it; `None` for a
/// header that is malformed or describes an impossible part.
fn split_udh(sm: &SubmitSm) -> Option<(Option<Concat>, &[u8])> {
    let bytes = sm.short_message().as_ref();
    if u8::from(sm.esm_class) & 0x40 == 0 {
        return Some((None, bytes));
    }
    let udhl = usize::from(*bytes.first()?);
    let header = bytes.get(1..1 + udhl)?;
    let payload = bytes.get(1 + udhl..)?;
    let mut i = 0;
    let mut concat = None;
    while i + 2 <= header.len() {
        let (iei, len) = (header[i], usize::from(header[i + 1]));
        let ie = header.get(i + 2..i + 2 + len)?;
        concat = match (iei, ie) {
            (0x00, [r, t, s]) => Some(Concat {
                reference: u16::from(*r),
                total: *t,
                seq: *s,
            }),
            (0x08, [r1, r2, t, s]) => Some(Concat {
                reference: u16::from_be_bytes([*r1, *r2]),
                total: *t,
                seq: *s,
            }),
            _ => concat,
        };
        i += 2 + len;
    }
    match concat {
        Some(c) if c.total == 0 || c.seq == 0 || c.seq > c.total => None,
        other => Some((other, payload)),
    }
}

/// The text of a part: GSM 03.38 unpacked septets (data coding 0 or 1) or UCS-2 (8).
fn decode_text(coding: DataCoding, bytes: &[u8]) -> Option<String> {
    match coding {
        DataCoding::Ucs2 => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        DataCoding::McSpecific | DataCoding::Ia5 => decode_gsm7_unpacked(bytes),
        _ => None,
    }
}

/// Decodes unpacked GSM 03.38 septets with the escape table.
fn decode_gsm7_unpacked(bytes: &[u8]) -> Option<String> {
    let (basic, extended) = gsm7_tables();
    let mut out = String::with_capacity(bytes.len());
    let mut escaped = false;
    for &b in bytes {
        if b > 0x7f {
            return None;
        }
        if escaped {
            out.push(extended.get(&b).copied()?);
            escaped = false;
        } else if b == 0x1b {
            escaped = true;
        } else {
            out.push(basic[usize::from(b)]?);
        }
    }
    Some(out)
}

/// The basic table (by septet) and the escape table (by the septet after ESC).
type Gsm7Tables = ([Option<char>; 128], HashMap<u8, char>);

/// The GSM 03.38 tables, derived from `rusmpp`'s encoder (the inverse of what the client
/// sends, by construction) rather than copied by hand.
fn gsm7_tables() -> &'static Gsm7Tables {
    static TABLES: OnceLock<Gsm7Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let encoder = Gsm7BitUnpacked::new();
        let mut basic = [None; 128];
        let mut extended = HashMap::new();
        let candidates = (0u32..0x0400).chain([0x20ac]).filter_map(char::from_u32);
        for ch in candidates {
            let mut buf = [0u8; 4];
            match encoder.encode_to_vec(ch.encode_utf8(&mut buf)).as_deref() {
                Ok([b]) if basic[usize::from(*b & 0x7f)].is_none() => {
                    basic[usize::from(*b & 0x7f)] = Some(ch);
                }
                Ok([0x1b, b]) => {
                    extended.entry(*b).or_insert(ch);
                }
                _ => {}
            }
        }
        (basic, extended)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_tables_cover_the_alphabet() {
        let (basic, extended) = gsm7_tables();
        assert_eq!(
            basic.iter().filter(|c| c.is_some()).count(),
            127,
            "all but ESC"
        );
        assert_eq!(basic[0x00], Some('@'));
        assert_eq!(basic[0x41], Some('A'));
        assert_eq!(extended.get(&0x65), Some(&'€'));
        assert_eq!(
            decode_gsm7_unpacked(&[0x48, 0x69, 0x1b, 0x65]).as_deref(),
            Some("Hi€")
        );
        assert_eq!(decode_gsm7_unpacked(&[0x80]), None);
    }

    #[test]
    fn ucs2_odd_length_is_refused() {
        assert_eq!(decode_text(DataCoding::Ucs2, &[0x04]), None);
        assert_eq!(
            decode_text(DataCoding::Ucs2, &[0x04, 0x1a]).as_deref(),
            Some("К")
        );
    }
}
