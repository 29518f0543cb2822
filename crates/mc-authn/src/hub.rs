//! In-process wake-ups. Waiters re-read the store when woken *and* on a short timer, so a
//! change made by another node (which cannot wake us) is still seen; the hub only makes the
//! single-node case fast.

use std::time::Duration;

use tokio::sync::broadcast;

/// Something changed that a waiter may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A session was answered (approved or denied).
    SessionResolved(String),
    /// A subscriber got a new challenge.
    Challenged(String),
}

/// A cheap broadcast of [`Event`]s.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Hub {
    pub fn publish(&self, e: Event) {
        // No receivers is fine: nobody is waiting.
        let _ = self.tx.send(e);
    }

    /// Waits until `matches` accepts an event or `timeout` passes. Returns true when woken by
    /// a matching event. Lagging (missed events) counts as a wake-up: the caller re-reads the
    /// store anyway.
    pub async fn wait_for(&self, timeout: Duration, matches: impl Fn(&Event) -> bool) -> bool {
        let mut rx = self.tx.subscribe();
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(e) if matches(&e) => return true,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// A receiver for callers that must subscribe before they check the store (so an event
    /// between check and wait is not lost).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_on_matching_event_and_times_out_otherwise() {
        let hub = Hub::default();
        let h2 = hub.clone();
        let waiter = tokio::spawn(async move {
            h2.wait_for(Duration::from_secs(5), |e| {
                *e == Event::SessionResolved("a".into())
            })
            .await
        });
        // Publish until the waiter has subscribed and seen it (no sleeps: retry on a yield).
        while !waiter.is_finished() {
            hub.publish(Event::SessionResolved("b".into()));
            hub.publish(Event::SessionResolved("a".into()));
            tokio::task::yield_now().await;
        }
        assert!(waiter.await.unwrap());
        assert!(!hub.wait_for(Duration::from_millis(10), |_| true).await);
    }
}
