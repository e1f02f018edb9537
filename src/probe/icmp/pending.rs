//! The table of echo requests awaiting replies, and the matching rule.
//!
//! Requests are keyed by a [`Slot`]: an identifier of the socket's range and a sequence
//! number, so one socket has 65,536 slots per identifier it owns (a raw socket owns
//! several: 100,000 devices at 1 s with 2 packets and a 1 s timeout keep ~200,000
//! requests in flight). A reply is credited only if its slot, payload token and source
//! address all match a request still within its timeout; crediting removes the entry, so
//! a duplicate never counts twice. Each probe's requests share one [`Waiter`], so a probe
//! costs one allocation, not one per packet.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::probe::packet::Echo;

/// A request gives up finding a free slot after this many are taken, which only happens
/// with nearly every slot of the socket in flight at once.
const SEQUENCE_TRIES: usize = 64;

/// A request's place in the table: the offset of its identifier in the socket's range
/// (high 16 bits) and its sequence number (low 16 bits).
pub(super) type Slot = u32;

/// One probe's mailbox, shared by its pending requests: an allocation per probe, not
/// per packet.
#[derive(Default)]
pub(super) struct Waiter {
    pub(super) received: AtomicU32,
    pub(super) rtt_nanos: AtomicU64,
    pub(super) notify: Notify,
}

/// A request awaiting its reply.
pub(super) struct Pending {
    pub(super) token: u64,
    pub(super) address: IpAddr,
    pub(super) sent_at: Instant,
    /// The send time on the wall clock, which the kernel's receive timestamps use.
    pub(super) sent_wall: SystemTime,
    pub(super) deadline: Instant,
    pub(super) waiter: Arc<Waiter>,
}

pub(super) type Table = Mutex<HashMap<Slot, Pending>>;

/// A probe's requests still in the table, removed on drop.
pub(super) struct Outstanding<'a> {
    pub(super) table: &'a Table,
    pub(super) token: u64,
    pub(super) sequences: Vec<Slot>,
}

impl Outstanding<'_> {
    pub(super) fn forget(&mut self, sequence: Slot) {
        self.sequences.retain(|s| *s != sequence);
        remove_own(&mut self.table.lock(), sequence, self.token);
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        if self.sequences.is_empty() {
            return;
        }
        let mut table = self.table.lock();
        for sequence in &self.sequences {
            remove_own(&mut table, *sequence, self.token);
        }
    }
}

/// Removes the entry only if it is still ours: once answered, the sequence number may
/// already belong to another probe.
fn remove_own(table: &mut HashMap<Slot, Pending>, sequence: Slot, token: u64) {
    if let Entry::Occupied(entry) = table.entry(sequence)
        && entry.get().token == token
    {
        entry.remove();
    }
}

/// When and how a reply arrived.
#[derive(Clone, Copy, Debug)]
pub(super) struct Arrival {
    /// Read by the receiver task.
    pub(super) now: Instant,
    /// The kernel's receive timestamp (`SO_TIMESTAMPNS`), when it gave one.
    pub(super) kernel: Option<SystemTime>,
}

/// Credits a decoded reply in `slot` from `source` to the request it answers, if any,
/// and returns that request's waiter to wake. A reply with a wrong token or source
/// leaves the entry in place: the genuine reply may still come.
pub(super) fn credit(
    table: &Table,
    slot: Slot,
    echo: Echo,
    source: IpAddr,
    arrival: Arrival,
) -> Option<Arc<Waiter>> {
    let now = arrival.now;
    let mut table = table.lock();
    let Entry::Occupied(entry) = table.entry(slot) else {
        return None;
    };
    if entry.get().token != echo.token || entry.get().address != source {
        return None;
    }
    let pending = entry.remove();
    if now > pending.deadline {
        return None;
    }
    // From the kernel's timestamp, so the receiver task's wake-up delay is not part of
    // the RTT; the monotonic clock when there is none or the wall clock stepped between.
    let waited = now.duration_since(pending.sent_at);
    let rtt = arrival
        .kernel
        .and_then(|at| at.duration_since(pending.sent_wall).ok())
        .filter(|rtt| *rtt <= waited)
        .unwrap_or(waited);
    // Recorded under the lock so that a probe removing its leftovers sees every credit.
    let rtt = rtt.as_nanos() as u64;
    pending.waiter.rtt_nanos.fetch_add(rtt, Relaxed);
    pending.waiter.received.fetch_add(1, Relaxed);
    Some(pending.waiter)
}

/// Files `pending` under the next free slot of `slots` (a power of two) and returns it;
/// None when the slots tried were all in flight.
pub(super) fn register(
    table: &Table,
    counter: &AtomicU32,
    slots: u32,
    pending: Pending,
) -> Option<Slot> {
    debug_assert!(slots.is_power_of_two());
    let mut table = table.lock();
    for _ in 0..SEQUENCE_TRIES {
        // The counter wraps at 2^32, a multiple of `slots`: no slot is skipped.
        let slot = counter.fetch_add(1, Relaxed) & (slots - 1);
        if let Entry::Vacant(entry) = table.entry(slot) {
            entry.insert(pending);
            return Some(slot);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 9, 9, 9));

    fn table_with(sequence: Slot, token: u64, timeout: Duration) -> (Table, Arc<Waiter>, Instant) {
        let waiter = Arc::new(Waiter::default());
        let sent_at = Instant::now();
        let pending = Pending {
            token,
            address: HOST,
            sent_at,
            sent_wall: SystemTime::now(),
            deadline: sent_at + timeout,
            waiter: Arc::clone(&waiter),
        };
        (
            Mutex::new(HashMap::from([(sequence, pending)])),
            waiter,
            sent_at,
        )
    }

    #[test]
    fn reply_credited_once() {
        let (table, waiter, sent_at) = table_with(7, 42, Duration::from_secs(1));
        let echo = Echo {
            identifier: 1,
            sequence: 7,
            token: 42,
        };
        let now = at(sent_at + Duration::from_millis(3));
        assert!(credit(&table, 7, echo, HOST, now).is_some());
        assert_eq!(waiter.received.load(Relaxed), 1);
        assert_eq!(waiter.rtt_nanos.load(Relaxed), 3_000_000);
        assert!(
            credit(&table, 7, echo, HOST, now).is_none(),
            "a duplicate is not a second reply"
        );
    }

    #[test]
    fn wrong_token_or_source_ignored_and_genuine_still_counts() {
        let (table, waiter, sent_at) = table_with(7, 42, Duration::from_secs(1));
        let now = at(sent_at + Duration::from_millis(1));
        let forged = Echo {
            identifier: 1,
            sequence: 7,
            token: 43,
        };
        assert!(credit(&table, 7, forged, HOST, now).is_none());
        let genuine = Echo {
            token: 42,
            ..forged
        };
        let elsewhere = IpAddr::V4(Ipv4Addr::new(127, 9, 9, 10));
        assert!(credit(&table, 7, genuine, elsewhere, now).is_none());
        assert!(credit(&table, 8, genuine, HOST, now).is_none());
        assert_eq!(waiter.received.load(Relaxed), 0);
        assert!(credit(&table, 7, genuine, HOST, now).is_some());
    }

    #[test]
    fn late_reply_ignored() {
        let (table, waiter, sent_at) = table_with(7, 42, Duration::from_millis(10));
        let echo = Echo {
            identifier: 1,
            sequence: 7,
            token: 42,
        };
        assert!(
            credit(
                &table,
                7,
                echo,
                HOST,
                at(sent_at + Duration::from_millis(11))
            )
            .is_none()
        );
        assert_eq!(waiter.received.load(Relaxed), 0);
        assert!(
            table.lock().is_empty(),
            "a late reply frees its sequence number"
        );
    }

    #[test]
    fn leftovers_removed_only_if_still_ours() {
        let (table, _, _) = table_with(7, 42, Duration::from_secs(1));
        drop(Outstanding {
            table: &table,
            token: 41,
            sequences: vec![7],
        });
        assert_eq!(
            table.lock().len(),
            1,
            "sequence 7 was reused by another probe"
        );
        drop(Outstanding {
            table: &table,
            token: 42,
            sequences: vec![7],
        });
        assert!(table.lock().is_empty());
    }

    #[test]
    fn register_skips_sequences_in_use() {
        let (table, waiter, sent_at) = table_with(7, 42, Duration::from_secs(1));
        let counter = AtomicU32::new(7);
        let pending = || Pending {
            token: 1,
            address: HOST,
            sent_at,
            sent_wall: SystemTime::now(),
            deadline: sent_at,
            waiter: Arc::clone(&waiter),
        };
        assert_eq!(
            register(&table, &counter, 1 << 16, pending()),
            Some(8),
            "7 is still in flight"
        );
        assert_eq!(table.lock().len(), 2);
        // Past the end of the slots the counter wraps to the first.
        counter.store((1 << 16) - 1, Relaxed);
        assert_eq!(register(&table, &counter, 1 << 16, pending()), Some(0xffff));
        assert_eq!(register(&table, &counter, 1 << 16, pending()), Some(0));
    }

    #[test]
    fn every_slot_of_several_identifiers_is_used_before_any_is_refused() {
        let table: Table = Mutex::new(HashMap::new());
        let counter = AtomicU32::new(0);
        let slots = 4 << 16;
        let waiter = Arc::new(Waiter::default());
        let sent_at = Instant::now();
        for n in 0..slots {
            let pending = Pending {
                token: u64::from(n),
                address: HOST,
                sent_at,
                sent_wall: SystemTime::now(),
                deadline: sent_at,
                waiter: Arc::clone(&waiter),
            };
            assert_eq!(register(&table, &counter, slots, pending), Some(n));
        }
        let one_more = Pending {
            token: 0,
            address: HOST,
            sent_at,
            sent_wall: SystemTime::now(),
            deadline: sent_at,
            waiter,
        };
        assert_eq!(
            register(&table, &counter, slots, one_more),
            None,
            "all in flight"
        );
    }

    #[test]
    fn the_kernel_timestamp_gives_the_rtt_unless_the_wall_clock_stepped() {
        let (table, waiter, sent_at) = table_with(7, 42, Duration::from_secs(1));
        let sent_wall = table.lock()[&7].sent_wall;
        let echo = Echo {
            identifier: 1,
            sequence: 7,
            token: 42,
        };
        // The receiver task woke 5 ms after the kernel took the reply in at 2 ms.
        let arrival = Arrival {
            now: sent_at + Duration::from_millis(7),
            kernel: Some(sent_wall + Duration::from_millis(2)),
        };
        assert!(credit(&table, 7, echo, HOST, arrival).is_some());
        assert_eq!(waiter.rtt_nanos.load(Relaxed), 2_000_000);

        // A kernel time before the send or beyond the wait: the wall clock stepped.
        for backwards in [true, false] {
            let (table, waiter, sent_at) = table_with(7, 42, Duration::from_secs(1));
            let sent_wall = table.lock()[&7].sent_wall;
            let minute = Duration::from_secs(60);
            let kernel = if backwards {
                sent_wall - minute
            } else {
                sent_wall + minute
            };
            let arrival = Arrival {
                now: sent_at + Duration::from_millis(7),
                kernel: Some(kernel),
            };
            assert!(credit(&table, 7, echo, HOST, arrival).is_some());
            assert_eq!(
                waiter.rtt_nanos.load(Relaxed),
                7_000_000,
                "monotonic fallback"
            );
        }
    }

    /// An arrival at `now` without a kernel timestamp.
    fn at(now: Instant) -> Arrival {
        Arrival { now, kernel: None }
    }
}
