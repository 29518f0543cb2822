//! The virtual phones' SMS inbox: every message the sandbox SMSC delivers is kept per
//! number (the last [`KEEP`]), and `GET /phone/{msisdn}/sms` lists them as JSON, newest
//! first, for the virtual phone page (the code to type, the link to open).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::smsc::Smsc;

/// Messages kept per number.
pub const KEEP: usize = 20;

/// One SMS as the phone shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InboxMessage {
    pub from: String,
    pub text: String,
    pub parts: usize,
    /// Arrival order across the inbox (a stable key for the page).
    pub seq: u64,
}

/// The inbox of every virtual phone; cheap to clone.
#[derive(Clone, Default)]
pub struct SmsInbox {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    by_number: HashMap<String, VecDeque<InboxMessage>>,
    seq: u64,
}

/// `+447…` and `447…` name the same phone.
fn key(msisdn: &str) -> String {
    msisdn.trim().trim_start_matches('+').to_owned()
}

impl SmsInbox {
    /// An inbox filled from `smsc`'s deliveries (a background task).
    pub fn attach(smsc: &Smsc) -> SmsInbox {
        let inbox = SmsInbox::default();
        let mut rx = smsc.subscribe();
        let filler = inbox.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(m) => filler.push(&m.to, &m.from, &m.text, m.parts),
                    // A burst beyond the channel's buffer: the oldest are lost to the page
                    // (the SMSC delivered them; only the sandbox view misses them).
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "sandbox SMS inbox lagged");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        inbox
    }

    fn push(&self, to: &str, from: &str, text: &str, parts: usize) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.seq += 1;
        let seq = inner.seq;
        let list = inner.by_number.entry(key(to)).or_default();
        list.push_front(InboxMessage {
            from: from.to_owned(),
            text: text.to_owned(),
            parts,
            seq,
        });
        list.truncate(KEEP);
    }

    /// The messages of a number, newest first.
    pub fn messages(&self, msisdn: &str) -> Vec<InboxMessage> {
        self.inner
            .lock()
            .map(|i| {
                i.by_number
                    .get(&key(msisdn))
                    .map(|l| l.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }
}

/// `GET /phone/{msisdn}/sms`.
pub fn router<S: Clone + Send + Sync + 'static>(inbox: SmsInbox) -> Router<S> {
    Router::new().route(
        "/phone/{msisdn}/sms",
        get(move |Path(msisdn): Path<String>| {
            let inbox = inbox.clone();
            async move { axum::Json(serde_json::json!({ "messages": inbox.messages(&msisdn) })) }
        }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_per_number() {
        let inbox = SmsInbox::default();
        for i in 0..(KEEP + 5) {
            inbox.push("+447700900001", "MobileConn", &format!("m{i}"), 1);
        }
        inbox.push("447700900002", "MobileConn", "other", 1);
        let got = inbox.messages("447700900001");
        assert_eq!(got.len(), KEEP);
        assert_eq!(got[0].text, format!("m{}", KEEP + 4));
        assert_eq!(inbox.messages("+447700900002")[0].text, "other");
        assert!(inbox.messages("447700900003").is_empty());
    }
}
