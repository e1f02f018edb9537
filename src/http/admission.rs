//! Who gets a connection, and on which lane.
//!
//! Three limits, checked when a connection is accepted:
//! - **the public share**, `max_connections`: connections for any route;
//! - **the reserve**, [`reserve`] more slots, kept for the routes a monitoring system
//!   needs to see a busy appliance (the routes marked `reserved`: `/healthz`,
//!   `/readyz`, `/metrics`). A connection accepted while the public share is full goes
//!   on the [`Lane::Reserve`]: it carries one request, must send its head within
//!   [`RESERVE_HEADER_TIMEOUT`], and any other route gets a 503. With both full, the
//!   accept loop waits: new connections wait in the kernel's backlog;
//! - **the per-client cap**, `max_connections_per_client`, counted per source address
//!   over both: a client at its cap has its next connection closed at once, before
//!   anything is read, so one address (a slowloris, a runaway script) can take neither
//!   the reserve nor a place in the backlog in front of everyone else.
//!
//! The route is only known once the head is read, so the reserve is bounded by time (a
//! short head timeout, one request) rather than by route: a slow client in the reserve
//! holds its slot for two seconds, not ten. A client sharing an address with an abuser
//! (behind the same proxy) shares its cap: such a proxy should apply its own per-client
//! limits, and health checks and scrapes should reach the appliance directly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Time a connection on the reserve lane has to send its request head: health checkers
/// and scrapers send theirs in one write.
pub const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Slots kept for reserved routes on top of `max_connections`: a sixteenth of it, 1 to
/// 64 (health checks and scrapes are few and short).
pub fn reserve(max_connections: usize) -> usize {
    (max_connections / 16).clamp(1, 64)
}

/// Which requests a connection may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Any route.
    Public,
    /// Reserved routes only, one request.
    Reserve,
}

/// The connection limits of one server.
pub struct Admission {
    slots: Arc<Semaphore>,
    public_share: usize,
    per_client: usize,
    /// Held only to count, never across an await.
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    public: usize,
    /// Open connections per client; an address leaves the map with its last one.
    clients: HashMap<IpAddr, usize>,
}

/// An admitted connection: its lane and its slots, given back when dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    client: IpAddr,
    pub lane: Lane,
    _slot: OwnedSemaphorePermit,
}

impl Admission {
    /// `max_connections` public slots and their [`reserve`]; at most `per_client` of all
    /// of them for one client address.
    pub fn new(max_connections: usize, per_client: usize) -> Arc<Admission> {
        let max_connections = max_connections.max(1);
        Arc::new(Admission {
            slots: Arc::new(Semaphore::new(max_connections + reserve(max_connections))),
            public_share: max_connections,
            per_client: per_client.max(1),
            book: Mutex::default(),
        })
    }

    /// Waits for a free slot, public or reserved (take it before accepting).
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Admits a connection from `client` into `slot`, or None when the client is at its
    /// cap (the caller closes the connection).
    pub fn admit(self: &Arc<Self>, slot: OwnedSemaphorePermit, client: IpAddr) -> Option<Ticket> {
        // An IPv4 client reaching an IPv6 socket is the same client.
        let client = client.to_canonical();
        let mut book = self.book.lock();
        let held = book.clients.get(&client).copied().unwrap_or(0);
        if held >= self.per_client {
            return None;
        }
        book.clients.insert(client, held + 1);
        let lane = if book.public < self.public_share {
            book.public += 1;
            Lane::Public
        } else {
            Lane::Reserve
        };
        Some(Ticket {
            admission: self.clone(),
            client,
            lane,
            _slot: slot,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut book = self.admission.book.lock();
        if self.lane == Lane::Public {
            book.public -= 1;
        }
        if let Some(held) = book.clients.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                book.clients.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn the_reserve_is_a_sixteenth_within_bounds() {
        assert_eq!(reserve(1024), 64);
        assert_eq!(reserve(4096), 64);
        assert_eq!(reserve(64), 4);
        assert_eq!(reserve(10), 1);
        assert_eq!(reserve(1), 1);
    }

    #[tokio::test]
    async fn beyond_the_public_share_connections_go_to_the_reserve() {
        let a = Admission::new(16, 100);
        let mut tickets = Vec::new();
        for i in 0..16 {
            let t = a.admit(a.slot().await, ip(i)).unwrap();
            assert_eq!(t.lane, Lane::Public);
            tickets.push(t);
        }
        let reserved = a.admit(a.slot().await, ip(99)).unwrap();
        assert_eq!(reserved.lane, Lane::Reserve);
        assert_eq!(
            a.slots.available_permits(),
            0,
            "public share and reserve are full"
        );
        drop(tickets.pop());
        let again = a.admit(a.slot().await, ip(98)).unwrap();
        assert_eq!(
            again.lane,
            Lane::Public,
            "a freed public slot is public again"
        );
    }

    #[tokio::test]
    async fn a_client_at_its_cap_is_refused_and_others_are_not() {
        let a = Admission::new(96, 2);
        let one = a.admit(a.slot().await, ip(1)).unwrap();
        let _two = a.admit(a.slot().await, ip(1)).unwrap();
        assert!(a.admit(a.slot().await, ip(1)).is_none());
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(
            a.admit(a.slot().await, mapped).is_none(),
            "the same client over IPv6"
        );
        assert!(a.admit(a.slot().await, ip(2)).is_some());
        drop(one);
        assert!(a.admit(a.slot().await, ip(1)).is_some());
        assert_eq!(
            a.slots.available_permits(),
            96 + 6 - 1,
            "refused slots are given back"
        );
    }
}
