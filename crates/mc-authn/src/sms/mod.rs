//! SMS: the text a subscriber receives and the SMPP 3.4 link that carries it to the
//! operator's SMSC.
//!
//! [`smpp::SmppClient`] owns one transceiver session (bind, enquire_link, reconnect with
//! backoff) and pipelines `submit_sm` requests over it; [`receipt`] reads the delivery
//! receipts the SMSC sends back. Text encoding (GSM 03.38 default alphabet when every
//! character fits, UCS-2 otherwise) and concatenation are `rusmpp`'s.

pub mod receipt;
pub mod smpp;

pub use receipt::{DeliveryReceipt, ReceiptState};
pub use smpp::{LinkState, SmppClient, SmppConfig, SmsError, Submitted};
