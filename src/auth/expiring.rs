//! A small map whose entries expire, bounded in size: what the authenticator remembers for a
//! short time (tokens it verified, what the database said about an API token ID, who keeps
//! failing).

use std::hash::Hash;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Entries live `ttl`; past `capacity` entries, expired ones are swept, and if none expired the
/// new entry is not remembered (memory stays bounded under any flood; the cost is a miss).
pub(super) struct ExpiringMap<K, V> {
    // DashMap because every worker thread reads it on every request; shards keep readers from
    // queueing behind each other. No guard is held across an `.await`.
    entries: DashMap<K, (V, Instant)>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> ExpiringMap<K, V> {
    pub(super) fn new(ttl: Duration, capacity: usize) -> Self {
        ExpiringMap {
            entries: DashMap::new(),
            ttl,
            capacity,
        }
    }

    /// The live value for `key`.
    pub(super) fn get(&self, key: &K, now: Instant) -> Option<V> {
        self.entries
            .get(key)
            .filter(|entry| entry.1 > now)
            .map(|entry| entry.0.clone())
    }

    /// Remembers `value` for `key` until `now + ttl`, if there is room.
    pub(super) fn insert(&self, key: K, value: V, now: Instant) {
        self.insert_until(key, value, now, None);
    }

    /// Like [`ExpiringMap::insert`], but the entry expires at `until` if that comes first (a
    /// value that stops being true on its own, like a token's validity).
    pub(super) fn insert_until(&self, key: K, value: V, now: Instant, until: Option<Instant>) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, entry| entry.1 > now);
            if self.entries.len() >= self.capacity {
                return;
            }
        }
        let expiry = until.map_or(now + self.ttl, |until| until.min(now + self.ttl));
        self.entries.insert(key, (value, expiry));
    }

    /// Changes the live value for `key` in place, or starts it from `V::default()`; returns the
    /// new value. The entry keeps its expiry once started.
    pub(super) fn update(&self, key: K, now: Instant, change: impl FnOnce(&mut V)) -> V
    where
        V: Default,
    {
        if let Some(mut entry) = self.entries.get_mut(&key)
            && entry.1 > now
        {
            change(&mut entry.0);
            return entry.0.clone();
        }
        let mut value = V::default();
        change(&mut value);
        self.insert(key, value.clone(), now);
        value
    }

    /// When the live entry for `key` expires.
    pub(super) fn expires_at(&self, key: &K, now: Instant) -> Option<Instant> {
        self.entries
            .get(key)
            .map(|entry| entry.1)
            .filter(|expiry| *expiry > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let now = Instant::now();
        let map = ExpiringMap::new(Duration::from_secs(10), 2);
        map.insert(1, "a", now);
        map.insert(2, "b", now);
        map.insert(3, "c", now);
        assert_eq!((map.get(&1, now), map.get(&3, now)), (Some("a"), None));
        let later = now + Duration::from_secs(11);
        assert_eq!(map.get(&1, later), None);
        map.insert(3, "c", later);
        assert_eq!(map.get(&3, later), Some("c"));
    }

    #[test]
    fn an_entry_may_expire_before_the_ttl() {
        let now = Instant::now();
        let map = ExpiringMap::new(Duration::from_secs(10), 4);
        map.insert_until(1, "a", now, Some(now + Duration::from_secs(2)));
        map.insert_until(2, "b", now, Some(now + Duration::from_secs(60)));
        let later = now + Duration::from_secs(3);
        assert_eq!((map.get(&1, later), map.get(&2, later)), (None, Some("b")));
        assert_eq!(
            map.get(&2, now + Duration::from_secs(11)),
            None,
            "never past the TTL"
        );
    }
}
