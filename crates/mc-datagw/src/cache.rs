//! A small TTL cache of back-end answers, keyed by subscriber id (never by MSISDN), bounded
//! in size: when full, expired entries go first, then the entry closest to expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;

pub struct TtlCache<V: Clone> {
    ttl: Duration,
    max_entries: usize,
    clock: Arc<dyn Clock>,
    map: Mutex<HashMap<String, (Duration, V)>>,
}

impl<V: Clone> TtlCache<V> {
    /// A `ttl` of zero disables the cache.
    pub fn new(ttl: Duration, max_entries: usize, clock: Arc<dyn Clock>) -> Self {
        TtlCache {
            ttl,
            max_entries: max_entries.max(1),
            clock,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Duration, V)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live entry for `key`.
    pub fn get(&self, key: &str) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let now = self.clock.now();
        let mut map = self.lock();
        match map.get(key) {
            Some((expires, v)) if *expires > now => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: &str, v: V) {
        if self.ttl.is_zero() {
            return;
        }
        let now = self.clock.now();
        let mut map = self.lock();
        if map.len() >= self.max_entries && !map.contains_key(key) {
            map.retain(|_, (expires, _)| *expires > now);
            if map.len() >= self.max_entries
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (expires, _))| *expires)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(key.to_owned(), (now + self.ttl, v));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let clock = Arc::new(ManualClock::new());
        let c = TtlCache::new(Duration::from_secs(10), 2, clock.clone());
        c.put("a", 1);
        clock.advance(Duration::from_secs(1));
        c.put("b", 2);
        assert_eq!(c.get("a"), Some(1));
        c.put("c", 3);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a"), None, "the entry closest to expiry made room");
        assert_eq!(c.get("c"), Some(3));
        clock.advance(Duration::from_secs(10));
        assert_eq!(c.get("c"), None, "expired");
        let off = TtlCache::new(Duration::ZERO, 2, clock);
        off.put("a", 1);
        assert_eq!(off.get("a"), None);
    }
}
