//! Fixed-window counters per key, bounded in memory: how many times each key (a user
//! name, an address, a device) did something in the window that began with its first
//! time. Failed logins ([`crate::access::attempts`]) and "probe now" requests
//! ([`crate::api::probe_now`]) are limited with them.
//!
//! Time is tokio's, so tests run on paused time.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Most keys remembered; a flood of made-up keys beyond it forgets the expired ones
/// first, then starts over (a limit on a coarser key, such as the address, still holds).
pub const MAX_TRACKED: usize = 65_536;

#[derive(Debug)]
pub struct Counter<K> {
    map: Mutex<HashMap<K, (u32, Instant)>>,
    limit: u32,
    window: Duration,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    /// At most `limit` times per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Counter {
            map: Mutex::new(HashMap::new()),
            limit,
            window,
        }
    }

    /// How long until `key` may again, when it is at its limit now.
    pub fn blocked<Q>(&self, key: &Q, now: Instant) -> Option<Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.lock();
        let &(count, since) = map.get(key)?;
        let ends = since + self.window;
        (count >= self.limit && now < ends).then(|| ends - now)
    }

    /// Counts one more of `key`.
    pub fn add(&self, key: K, now: Instant) {
        let mut map = self.map.lock();
        self.count(&mut map, key, now);
    }

    /// Counts one more of `key` if it is under its limit; else how long until it may.
    pub fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut map = self.map.lock();
        if let Some(&(count, since)) = map.get(&key) {
            let ends = since + self.window;
            if count >= self.limit && now < ends {
                return Err(ends - now);
            }
        }
        self.count(&mut map, key, now);
        Ok(())
    }

    /// Forgets `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lock().remove(key);
    }

    fn count(&self, map: &mut HashMap<K, (u32, Instant)>, key: K, now: Instant) {
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            map.retain(|_, (_, since)| now < *since + self.window);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(key).or_insert((0, now));
        if now >= entry.1 + self.window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn take_counts_to_the_limit_then_says_how_long_to_wait() {
        let c = Counter::new(2, Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(c.take("a", now), Ok(()));
        assert_eq!(c.take("a", now + Duration::from_secs(10)), Ok(()));
        assert_eq!(
            c.take("a", now + Duration::from_secs(20)),
            Err(Duration::from_secs(40)),
            "the window began with the first"
        );
        assert_eq!(c.take("b", now), Ok(()), "each key its own");
        assert_eq!(c.take("a", now + Duration::from_secs(60)), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_under_a_flood_of_keys() {
        let c = Counter::new(1, Duration::from_secs(5));
        let now = Instant::now();
        for i in 0..MAX_TRACKED + 10 {
            let _ = c.take(i, now);
        }
        assert!(c.len() <= MAX_TRACKED);
        assert_eq!(c.take(MAX_TRACKED + 9, now).map_err(|_| ()), Err(()));
    }
}
