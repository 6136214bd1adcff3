//! A small per-process cache with a time limit and a size bound: what a warm function
//! may remember between invocations (partners by token, opened data keys, origins).
//! Entries older than the limit are never answered; when the bound is reached the
//! expired entries go, and if it is still full, everything does (a warm function rarely
//! sees that many keys within the limit, and starting over is always correct).
//! Ages are on the hub's clock: a stand-in whose clock moved a day on has forgotten
//! what it remembered, as a function would have.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};

use time::OffsetDateTime;

/// Whether an entry stored `at` is younger than `ttl` (one taken in the future, which
/// only a clock set back could make, counts as old).
fn fresh(at: OffsetDateTime, ttl: Duration) -> bool {
    let age = crate::clock::now() - at;
    !age.is_negative() && age < ttl
}

#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Arc<Mutex<HashMap<K, (V, OffsetDateTime)>>>,
    ttl: Duration,
    capacity: usize,
}

impl<K, V> Clone for TtlCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            ttl: self.ttl,
            capacity: self.capacity,
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A zero `ttl` caches nothing.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Arc::default(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| fresh(*at, self.ttl))
            .map(|(value, _)| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, at)| fresh(*at, self.ttl));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, crate::clock::now()));
    }

    /// The value remembered for `key`, else what `fetch` finds (remembered when found;
    /// what is not found is never remembered, so it is looked up again next time).
    pub async fn get_or_fetch<E, Fut>(
        &self,
        key: K,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<Option<V>, E>
    where
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        if let Some(value) = self.get(&key) {
            return Ok(Some(value));
        }
        let found = fetch().await?;
        if let Some(value) = &found {
            self.insert(key, value.clone());
        }
        Ok(found)
    }

    /// Forgets a key (a change this process made itself).
    pub fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_on_the_hubs_clock_and_the_bound_holds() {
        let clock = crate::clock::Clock::new();
        let moved = clock.clone();
        clock
            .scope(async move {
                let cache = TtlCache::new(Duration::from_secs(30), 2);
                cache.insert("a", 1);
                cache.insert("b", 2);
                assert_eq!(cache.get("a"), Some(1));
                cache.insert("c", 3);
                assert!(cache.entries.lock().unwrap().len() <= 2);
                assert_eq!(cache.get("c"), Some(3));
                // Days pass on the stand-in's clock, not in this process: no sleep.
                moved
                    .set(moved.now() + time::Duration::seconds(31))
                    .unwrap();
                assert_eq!(cache.get("c"), None, "expired");
                cache.remove("c");
            })
            .await;

        let off = TtlCache::new(Duration::ZERO, 10);
        off.insert("a", 1);
        assert_eq!(off.get("a"), None, "a zero limit caches nothing");
    }
}
