//! The client records a backend read recently, so that the endpoints every request goes
//! through (token, userinfo, authorize) do not query and decode the same registration over
//! and over.
//!
//! A change made through the same store (the admin API, the CLI's own process, tests) is
//! seen by the next read: backends run their reads through [`ClientCache::get_or_read`] and
//! their writes through [`ClientCache::changing`]. A change made by another process
//! (another node on the shared PostgreSQL, the CLI on a running node's SQLite file) is seen
//! within [`CLIENT_CACHE_TTL`] (docs/decisions.md, "Client records are cached for one
//! second").

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{ClientRecord, StoreResult};

/// How long a record read from the database is served without reading it again.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(1);

/// Above this many records, the expired ones are dropped, and if that is not enough, all.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug)]
pub struct ClientCache {
    ttl: Duration,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// Bumped by every change, so that a read that started before a change cannot put
    /// the record it read (possibly the old one) back after the change.
    generation: u64,
    records: HashMap<String, (Instant, ClientRecord)>,
}

/// A lookup that found nothing fresh: the generation to hand back to [`ClientCache::fill`]
/// with what the database returned.
#[derive(Debug, Clone, Copy)]
#[must_use]
struct Miss(u64);

impl Default for ClientCache {
    fn default() -> Self {
        ClientCache::new(CLIENT_CACHE_TTL)
    }
}

impl ClientCache {
    pub fn new(ttl: Duration) -> Self {
        ClientCache {
            ttl,
            inner: Mutex::new(Entries::default()),
        }
    }

    /// `get_client` through the cache: `read` (the backend's query) runs only when no fresh
    /// record is held, and what it finds is kept.
    pub async fn get_or_read(
        &self,
        client_id: &str,
        read: impl Future<Output = StoreResult<Option<ClientRecord>>>,
    ) -> StoreResult<Option<ClientRecord>> {
        let miss = match self.lookup(client_id) {
            Ok(cached) => return Ok(Some(cached)),
            Err(miss) => miss,
        };
        let found = read.await?;
        if let Some(c) = &found {
            self.fill(miss, c);
        }
        Ok(found)
    }

    /// A write of `client_id`'s record through the cache: the record is forgotten before
    /// the write and again after it, so that no read in flight keeps the old one.
    pub async fn changing<T>(&self, client_id: &str, write: impl Future<Output = T>) -> T {
        self.changed(client_id);
        let written = write.await;
        self.changed(client_id);
        written
    }

    /// The record of `client_id` if one was read less than the TTL ago and not changed since.
    fn lookup(&self, client_id: &str) -> Result<ClientRecord, Miss> {
        let Ok(entries) = self.inner.lock() else {
            return Err(Miss(u64::MAX));
        };
        match entries.records.get(client_id) {
            Some((read_at, record)) if read_at.elapsed() < self.ttl => Ok(record.clone()),
            _ => Err(Miss(entries.generation)),
        }
    }

    /// Keeps what the database returned after `miss`, unless a change came in between.
    fn fill(&self, miss: Miss, record: &ClientRecord) {
        let Ok(mut entries) = self.inner.lock() else {
            return;
        };
        if entries.generation != miss.0 {
            return;
        }
        if entries.records.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries
                .records
                .retain(|_, (read_at, _)| read_at.elapsed() < ttl);
            if entries.records.len() >= MAX_ENTRIES {
                entries.records.clear();
            }
        }
        entries
            .records
            .insert(record.client_id.clone(), (Instant::now(), record.clone()));
    }

    /// `client_id` is being (or was just) written: forget it, and let no read in flight put
    /// it back.
    fn changed(&self, client_id: &str) {
        if let Ok(mut entries) = self.inner.lock() {
            entries.generation = entries.generation.wrapping_add(1);
            entries.records.remove(client_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientMetadata, ClientStatus};

    fn record(id: &str, name: &str) -> ClientRecord {
        ClientRecord {
            client_id: id.into(),
            secret_hash: String::new(),
            name: name.into(),
            short_name: name.into(),
            redirect_uris: vec![],
            allowed_scopes: vec![],
            grant_types: vec![],
            sector: String::new(),
            status: ClientStatus::Active,
            created_at: 0,
            metadata: ClientMetadata::default(),
        }
    }

    #[test]
    fn a_filled_record_is_served_until_it_changes() {
        let cache = ClientCache::default();
        let miss = cache.lookup("a").unwrap_err();
        cache.fill(miss, &record("a", "first"));
        assert_eq!(cache.lookup("a").unwrap().name, "first");
        cache.changed("a");
        assert!(cache.lookup("a").is_err());
    }

    #[test]
    fn a_read_that_started_before_a_change_is_not_kept() {
        let cache = ClientCache::default();
        let miss = cache.lookup("a").unwrap_err();
        // The write commits and says so while the read is still decoding the old row.
        cache.changed("a");
        cache.fill(miss, &record("a", "old"));
        assert!(cache.lookup("a").is_err(), "the old record was cached");
        let miss = cache.lookup("a").unwrap_err();
        cache.fill(miss, &record("a", "new"));
        assert_eq!(cache.lookup("a").unwrap().name, "new");
    }

    #[test]
    fn records_older_than_the_ttl_are_read_again() {
        let cache = ClientCache::new(Duration::ZERO);
        let miss = cache.lookup("a").unwrap_err();
        cache.fill(miss, &record("a", "first"));
        assert!(cache.lookup("a").is_err());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = ClientCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            let id = format!("c{i}");
            let miss = cache.lookup(&id).unwrap_err();
            cache.fill(miss, &record(&id, "x"));
        }
        let held = cache.inner.lock().unwrap().records.len();
        assert!(held <= MAX_ENTRIES, "{held} records held");
        let last = format!("c{}", MAX_ENTRIES + 9);
        assert!(cache.lookup(&last).is_ok(), "the newest record was dropped");
    }
}
