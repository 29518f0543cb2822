//! In-process wake-ups. Waiters re-read the store when woken *and* on a short timer, so a
//! change made by another node (which cannot wake us) is still seen; the hub only makes the
//! single-node case fast.
//!
//! Two ways to wait: [`Hub::watch`] wakes one waiter for one event (a login's hold, a
//! phone's long poll: publishing costs one map lookup, however many wait), and
//! [`Hub::subscribe`] / [`Hub::wait_for`] see every event (a worker that cares about all).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

/// Something changed that a waiter may care about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// A session was answered (approved or denied).
    SessionResolved(String),
    /// A subscriber got a new challenge.
    Challenged(String),
    /// An answer queued a back-channel notification (the notifier's cue; front-channel
    /// answers queue nothing and do not publish it).
    NotificationQueued,
}

/// Waiters of one event each, keyed by the event.
type Watchers = Arc<Mutex<HashMap<Event, Vec<Arc<Slot>>>>>;

/// One watch's wake-up, and what an answer to its session came to when the publisher knew
/// it ([`Hub::publish_answer`]).
#[derive(Default)]
struct Slot {
    notify: Notify,
    resolution: Mutex<Option<mc_store::Resolution>>,
}

/// A cheap broadcast of [`Event`]s.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
    watchers: Watchers,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(1024).0,
            watchers: Arc::default(),
        }
    }
}

impl Hub {
    pub fn publish(&self, e: Event) {
        self.publish_with(e, None);
    }

    /// Wakes `e`'s watchers, handing each a copy of `resolution` first when there is one.
    fn publish_with(&self, e: Event, resolution: Option<&mc_store::Resolution>) {
        if let Some(list) = self
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&e)
        {
            for w in list {
                if let Some(r) = resolution {
                    *w.resolution.lock().unwrap_or_else(PoisonError::into_inner) = Some(r.clone());
                }
                w.notify.notify_one();
            }
        }
        // No receivers is fine: nobody is waiting.
        let _ = self.tx.send(e);
    }

    /// Publishes what recording an answer to `session_id` did: the session's waiters are
    /// told it was answered (also when it no longer was pending, so they re-read it), and
    /// the notifier when a notification was queued. `resolution`: what was recorded; when
    /// the store took it (the session was pending), watchers get it with the wake-up
    /// ([`Watch::take_resolution`]) and need not read the session back.
    pub fn publish_answer(
        &self,
        session_id: &str,
        answered: mc_store::Answered,
        resolution: &mc_store::Resolution,
    ) {
        if answered == mc_store::Answered::BackChannel {
            self.publish(Event::NotificationQueued);
        }
        let recorded = (answered != mc_store::Answered::NotPending).then_some(resolution);
        self.publish_with(Event::SessionResolved(session_id.to_owned()), recorded);
    }

    /// Watches for `event` from now on: [`Watch::wait`] returns as soon as it has been
    /// published since the watch began (or since the last wait returned). Take the watch
    /// *before* checking the store, so an event between check and wait is not lost. Only
    /// this watch's publisher wakes it: many waiters cost nothing per unrelated event.
    pub fn watch(&self, event: Event) -> Watch {
        let slot = Arc::new(Slot::default());
        self.watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(event.clone())
            .or_default()
            .push(slot.clone());
        Watch {
            watchers: self.watchers.clone(),
            event,
            slot,
        }
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

/// A registration for one event (see [`Hub::watch`]); unregisters on drop.
pub struct Watch {
    watchers: Watchers,
    event: Event,
    slot: Arc<Slot>,
}

impl Watch {
    /// Waits until the event is published or `timeout` passes; true when it was published
    /// (possibly before this call, after the watch began).
    pub async fn wait(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.slot.notify.notified())
            .await
            .is_ok()
    }

    /// What the answer that woke this watch recorded, when its publisher knew
    /// ([`Hub::publish_answer`]); `None`: read the store to learn what happened.
    pub fn take_resolution(&self) -> Option<mc_store::Resolution> {
        self.slot
            .resolution
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut map = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = map.get_mut(&self.event) {
            list.retain(|w| !Arc::ptr_eq(w, &self.slot));
            if list.is_empty() {
                map.remove(&self.event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_sees_its_event_published_before_the_wait_and_only_its_own() {
        let hub = Hub::default();
        let mine = hub.watch(Event::SessionResolved("a".into()));
        let other = hub.watch(Event::SessionResolved("b".into()));
        // Published between the watch and the wait (the store check): not lost.
        hub.publish(Event::SessionResolved("a".into()));
        hub.publish(Event::Challenged("a".into()));
        assert!(mine.wait(Duration::from_secs(5)).await);
        assert!(
            !other.wait(Duration::from_millis(10)).await,
            "not its event"
        );
        assert!(
            !mine.wait(Duration::from_millis(10)).await,
            "one publication, one wake-up"
        );
        drop(mine);
        drop(other);
        assert!(
            hub.watchers.lock().unwrap().is_empty(),
            "dropped watches unregister"
        );
    }

    /// The notifier's cue only when an answer queued a notification; the session's waiters
    /// whatever the answer found.
    #[tokio::test]
    async fn an_answer_cues_the_notifier_only_when_it_queued_a_notification() {
        use mc_store::Answered;
        let hub = Hub::default();
        let mut events = hub.subscribe();
        let denied = mc_store::Resolution::Denied {
            error: "user_denied".into(),
        };
        for (answered, queued) in [
            (Answered::FrontChannel, false),
            (Answered::NotPending, false),
            (Answered::BackChannel, true),
        ] {
            hub.publish_answer("s", answered, &denied);
            let mut seen = vec![];
            while let Ok(e) = events.try_recv() {
                seen.push(e);
            }
            assert_eq!(
                seen.contains(&Event::NotificationQueued),
                queued,
                "{answered:?}: {seen:?}"
            );
            assert!(
                seen.contains(&Event::SessionResolved("s".into())),
                "{answered:?}: {seen:?}"
            );
        }
    }

    /// A recorded answer reaches the session's watchers with the wake-up; an answer that
    /// found the session no longer pending wakes them with nothing (they read the store).
    #[tokio::test]
    async fn a_recorded_answer_is_handed_to_the_watch_and_a_refused_one_is_not() {
        use mc_store::{Answered, Resolution};
        let hub = Hub::default();
        let approved = Resolution::Approved {
            acr: "2".into(),
            amr: vec!["app_push".into()],
            auth_time: 7,
        };
        let watch = hub.watch(Event::SessionResolved("s".into()));
        let other = hub.watch(Event::SessionResolved("t".into()));
        hub.publish_answer("s", Answered::FrontChannel, &approved);
        assert!(watch.wait(Duration::from_secs(5)).await);
        assert_eq!(watch.take_resolution(), Some(approved.clone()));
        assert_eq!(watch.take_resolution(), None, "taken once");
        assert_eq!(other.take_resolution(), None, "not its session");

        hub.publish_answer("s", Answered::NotPending, &approved);
        assert!(
            watch.wait(Duration::from_secs(5)).await,
            "woken all the same"
        );
        assert_eq!(watch.take_resolution(), None);
    }

    #[tokio::test]
    async fn two_watches_of_one_event_both_wake() {
        let hub = Hub::default();
        let first = hub.watch(Event::Challenged("s".into()));
        let second = hub.watch(Event::Challenged("s".into()));
        hub.publish(Event::Challenged("s".into()));
        assert!(first.wait(Duration::from_secs(5)).await);
        assert!(second.wait(Duration::from_secs(5)).await);
        drop(first);
        assert_eq!(hub.watchers.lock().unwrap().len(), 1, "the other stays");
    }

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
