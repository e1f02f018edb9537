//! One exposition for every scrape that arrives while it is being encoded.
//!
//! At 20,000 devices a body is megabytes; fifty scrapers each encoding their own took
//! the appliance from 93 MB to almost 1 GB. Scrapes asking for the same variant (format,
//! gzip) join the encoding in flight, if there is one, and all answer with the same
//! `Bytes`; the first to arrive encodes. The flight ends when its body is ready: a scrape
//! arriving after that encodes anew, so nothing older than a scrape's own arrival is
//! ever served (no cache in front of state). Memory is thus bounded by the variants —
//! at most one encoding each at a time — not by the scrapers.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;

/// The encodings in flight, by variant.
pub struct Flights<K> {
    /// Held only to find or end a flight, never while encoding.
    in_flight: Mutex<HashMap<K, Arc<OnceLock<Bytes>>>>,
    scrapes: AtomicU64,
    encodings: AtomicU64,
}

impl<K> Default for Flights<K> {
    fn default() -> Self {
        Flights {
            in_flight: Mutex::new(HashMap::new()),
            scrapes: AtomicU64::new(0),
            encodings: AtomicU64::new(0),
        }
    }
}

impl<K: Hash + Eq + Copy> Flights<K> {
    /// The body of variant `key`: the one being encoded now, or a new one from `encode`.
    /// Blocks (it runs on the blocking pool) until that body is ready.
    pub fn get(&self, key: K, encode: impl FnOnce() -> Vec<u8>) -> Bytes {
        let flight = self.in_flight.lock().entry(key).or_default().clone();
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        // `OnceLock` runs one initialiser and makes every other caller wait for it. If
        // it panics the flight stays empty and the next scrape on it encodes instead.
        flight
            .get_or_init(|| {
                self.encodings.fetch_add(1, Ordering::Relaxed);
                let body = Bytes::from(encode());
                // Ended before the body is published: whoever finds the map without
                // this flight from now on arrived after the encoding and starts anew.
                let mut in_flight = self.in_flight.lock();
                if in_flight.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                    in_flight.remove(&key);
                }
                body
            })
            .clone()
    }

    /// Scrapes that asked for a body (each has joined or started an encoding).
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::Relaxed)
    }

    /// Bodies encoded.
    pub fn encodings(&self) -> u64 {
        self.encodings.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    #[test]
    fn scrapes_in_flight_share_one_body_and_later_ones_encode_anew() {
        let flights = Arc::new(Flights::<u8>::default());
        // The encoder waits until every scraper has joined, so they all overlap.
        let joined = Arc::new(Barrier::new(2));
        let leader = {
            let (flights, joined) = (flights.clone(), joined.clone());
            std::thread::spawn(move || {
                flights.get(0, || {
                    joined.wait();
                    joined.wait();
                    b"first".to_vec()
                })
            })
        };
        joined.wait();
        let follower = {
            let flights = flights.clone();
            std::thread::spawn(move || flights.get(0, || b"second".to_vec()))
        };
        while flights.scrapes() < 2 {
            std::thread::yield_now();
        }
        joined.wait();
        let (a, b) = (leader.join().unwrap(), follower.join().unwrap());
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"first"[..]));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one buffer, not a copy");
        assert_eq!(flights.encodings(), 1);
        assert_eq!(&flights.get(0, || b"later".to_vec())[..], b"later");
        assert_eq!(&flights.get(1, || b"other".to_vec())[..], b"other");
        assert_eq!(flights.encodings(), 3);
    }
}
