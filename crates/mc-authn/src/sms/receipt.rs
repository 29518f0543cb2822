//! SMSC delivery receipts (SMPP 3.4 Appendix B): the `receipted_message_id` and
//! `message_state` TLVs when the SMSC sends them, else the `id:… stat:…` text of the
//! short message, which every SMSC sends.

use rusmpp::{
    pdus::DeliverSm,
    tlvs::TlvValue,
    values::{EsmClass, MessageState},
};

/// What happened to a submitted message, as the SMSC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Accepted,
    Rejected,
    Unknown,
}

impl ReceiptState {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptState::Delivered => "delivered",
            ReceiptState::Expired => "expired",
            ReceiptState::Deleted => "deleted",
            ReceiptState::Undeliverable => "undeliverable",
            ReceiptState::Accepted => "accepted",
            ReceiptState::Rejected => "rejected",
            ReceiptState::Unknown => "unknown",
        }
    }

    /// The `stat:` word of a text receipt (SMPP 3.4 Appendix B, table B-2).
    pub fn from_stat(stat: &str) -> ReceiptState {
        match stat.to_ascii_uppercase().as_str() {
            "DELIVRD" => ReceiptState::Delivered,
            "EXPIRED" => ReceiptState::Expired,
            "DELETED" => ReceiptState::Deleted,
            "UNDELIV" => ReceiptState::Undeliverable,
            "ACCEPTD" => ReceiptState::Accepted,
            "REJECTD" => ReceiptState::Rejected,
            _ => ReceiptState::Unknown,
        }
    }

    /// The `stat:` word an SMSC writes for this state.
    pub fn stat(self) -> &'static str {
        match self {
            ReceiptState::Delivered => "DELIVRD",
            ReceiptState::Expired => "EXPIRED",
            ReceiptState::Deleted => "DELETED",
            ReceiptState::Undeliverable => "UNDELIV",
            ReceiptState::Accepted => "ACCEPTD",
            ReceiptState::Rejected => "REJECTD",
            ReceiptState::Unknown => "UNKNOWN",
        }
    }

    fn from_message_state(s: MessageState) -> ReceiptState {
        match s {
            MessageState::Delivered => ReceiptState::Delivered,
            MessageState::Expired => ReceiptState::Expired,
            MessageState::Deleted => ReceiptState::Deleted,
            MessageState::Undeliverable => ReceiptState::Undeliverable,
            MessageState::Accepted => ReceiptState::Accepted,
            MessageState::Rejected => ReceiptState::Rejected,
            _ => ReceiptState::Unknown,
        }
    }
}

/// One delivery receipt: which message (the id the SMSC gave in `submit_sm_resp`) and
/// what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub message_id: String,
    pub state: ReceiptState,
    /// The SMSC's `err:` code, when the text receipt has one.
    pub error_code: Option<String>,
}

/// Bit 2 of `esm_class` set and bits 5–3 clear: "SMSC Delivery Receipt" (SMPP 3.4 §5.2.12).
pub fn is_delivery_receipt(esm_class: EsmClass) -> bool {
    u8::from(esm_class) & 0x3c == 0x04
}

/// The receipt a `deliver_sm` carries, or `None` when it is not a receipt or names no
/// message.
pub fn parse_receipt(sm: &DeliverSm) -> Option<DeliveryReceipt> {
    if !is_delivery_receipt(sm.esm_class) {
        return None;
    }
    let text = String::from_utf8_lossy(sm.short_message().as_ref()).into_owned();
    let fields = text_fields(&text);
    let mut message_id = None;
    let mut state = None;
    for tlv in sm.tlvs() {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => {
                message_id = Some(super::smpp::c_string(id.as_ref()));
            }
            Some(TlvValue::MessageState(s)) => state = Some(ReceiptState::from_message_state(*s)),
            _ => {}
        }
    }
    let message_id = message_id.or_else(|| field(&fields, "id").map(str::to_owned))?;
    let state = state.unwrap_or_else(|| {
        field(&fields, "stat").map_or(ReceiptState::Unknown, ReceiptState::from_stat)
    });
    let error_code = field(&fields, "err").map(str::to_owned);
    Some(DeliveryReceipt {
        message_id,
        state,
        error_code,
    })
}

/// The `key:value` words of a text receipt; `submit date:` and `done date:` have a space
/// in the key, and `text:` runs to the end, so they are read by position.
fn text_fields(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let body = text.split(" text:").next().unwrap_or(text);
    let body = body.replace("submit date:", "submit_date:");
    let body = body.replace("done date:", "done_date:");
    for word in body.split_whitespace() {
        if let Some((k, v)) = word.split_once(':') {
            out.push((k.to_ascii_lowercase(), v.to_owned()));
        }
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The text of a receipt in the Appendix B format, for SMSC simulators.
pub fn receipt_text(message_id: &str, state: ReceiptState, date: &str) -> String {
    let dlvrd = if state == ReceiptState::Delivered {
        "001"
    } else {
        "000"
    };
    format!(
        "id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{date} done date:{date} stat:{} err:000 text:",
        state.stat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_receipt_fields_are_read_by_key() {
        let t = receipt_text("4f2a", ReceiptState::Undeliverable, "2611220930");
        let f = text_fields(&t);
        assert_eq!(field(&f, "id"), Some("4f2a"));
        assert_eq!(field(&f, "stat"), Some("UNDELIV"));
        assert_eq!(field(&f, "err"), Some("000"));
        assert_eq!(field(&f, "submit_date"), Some("2611220930"));
    }

    #[test]
    fn stat_words_map_both_ways() {
        for s in [
            ReceiptState::Delivered,
            ReceiptState::Expired,
            ReceiptState::Deleted,
            ReceiptState::Undeliverable,
            ReceiptState::Accepted,
            ReceiptState::Rejected,
        ] {
            assert_eq!(ReceiptState::from_stat(s.stat()), s);
        }
        assert_eq!(ReceiptState::from_stat("ENROUTE"), ReceiptState::Unknown);
    }

    #[test]
    fn only_receipt_esm_classes_are_receipts() {
        assert!(is_delivery_receipt(EsmClass::from(0x04u8)));
        assert!(!is_delivery_receipt(EsmClass::from(0x00u8)));
        assert!(!is_delivery_receipt(EsmClass::from(0x08u8)));
        assert!(is_delivery_receipt(EsmClass::from(0x44u8)));
    }
}
