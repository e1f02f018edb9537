//! The table of echo requests awaiting replies, and the matching rule.
//!
//! Requests are keyed by sequence number. A reply is credited only if its sequence,
//! payload token and source address all match a request still within its timeout;
//! crediting removes the entry, so a duplicate never counts twice. Each probe's
//! requests share one [`Waiter`], so a probe costs one allocation, not one per packet.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::probe::packet::Echo;

/// A request gives up finding a free sequence number after this many are taken, which
/// only happens with nearly all 65,536 in flight at once.
const SEQUENCE_TRIES: usize = 64;

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
    pub(super) deadline: Instant,
    pub(super) waiter: Arc<Waiter>,
}

pub(super) type Table = Mutex<HashMap<u16, Pending>>;

/// A probe's requests still in the table, removed on drop.
pub(super) struct Outstanding<'a> {
    pub(super) table: &'a Table,
    pub(super) token: u64,
    pub(super) sequences: Vec<u16>,
}

impl Outstanding<'_> {
    pub(super) fn forget(&mut self, sequence: u16) {
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
fn remove_own(table: &mut HashMap<u16, Pending>, sequence: u16, token: u64) {
    if let Entry::Occupied(entry) = table.entry(sequence)
        && entry.get().token == token
    {
        entry.remove();
    }
}

/// Credits a decoded reply from `source` to the request it answers, if any, and
/// returns that request's waiter to wake. A reply with a wrong token or source leaves
/// the entry in place: the genuine reply may still come.
pub(super) fn credit(
    table: &Table,
    echo: Echo,
    source: IpAddr,
    now: Instant,
) -> Option<Arc<Waiter>> {
    let mut table = table.lock();
    let Entry::Occupied(entry) = table.entry(echo.sequence) else {
        return None;
    };
    if entry.get().token != echo.token || entry.get().address != source {
        return None;
    }
    let pending = entry.remove();
    if now > pending.deadline {
        return None;
    }
    // Recorded under the lock so that a probe removing its leftovers sees every credit.
    let rtt = now.duration_since(pending.sent_at).as_nanos() as u64;
    pending.waiter.rtt_nanos.fetch_add(rtt, Relaxed);
    pending.waiter.received.fetch_add(1, Relaxed);
    Some(pending.waiter)
}

/// Files `pending` under the next free sequence number and returns it.
pub(super) fn register(table: &Table, counter: &AtomicU16, pending: Pending) -> Option<u16> {
    let mut table = table.lock();
    for _ in 0..SEQUENCE_TRIES {
        let sequence = counter.fetch_add(1, Relaxed);
        if let Entry::Vacant(slot) = table.entry(sequence) {
            slot.insert(pending);
            return Some(sequence);
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

    fn table_with(sequence: u16, token: u64, timeout: Duration) -> (Table, Arc<Waiter>, Instant) {
        let waiter = Arc::new(Waiter::default());
        let sent_at = Instant::now();
        let pending = Pending {
            token,
            address: HOST,
            sent_at,
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
        let now = sent_at + Duration::from_millis(3);
        assert!(credit(&table, echo, HOST, now).is_some());
        assert_eq!(waiter.received.load(Relaxed), 1);
        assert_eq!(waiter.rtt_nanos.load(Relaxed), 3_000_000);
        assert!(
            credit(&table, echo, HOST, now).is_none(),
            "a duplicate is not a second reply"
        );
    }

    #[test]
    fn wrong_token_or_source_ignored_and_genuine_still_counts() {
        let (table, waiter, sent_at) = table_with(7, 42, Duration::from_secs(1));
        let now = sent_at + Duration::from_millis(1);
        let forged = Echo {
            identifier: 1,
            sequence: 7,
            token: 43,
        };
        assert!(credit(&table, forged, HOST, now).is_none());
        let genuine = Echo {
            token: 42,
            ..forged
        };
        let elsewhere = IpAddr::V4(Ipv4Addr::new(127, 9, 9, 10));
        assert!(credit(&table, genuine, elsewhere, now).is_none());
        assert!(
            credit(
                &table,
                Echo {
                    sequence: 8,
                    ..genuine
                },
                HOST,
                now
            )
            .is_none()
        );
        assert_eq!(waiter.received.load(Relaxed), 0);
        assert!(credit(&table, genuine, HOST, now).is_some());
    }

    #[test]
    fn late_reply_ignored() {
        let (table, waiter, sent_at) = table_with(7, 42, Duration::from_millis(10));
        let echo = Echo {
            identifier: 1,
            sequence: 7,
            token: 42,
        };
        assert!(credit(&table, echo, HOST, sent_at + Duration::from_millis(11)).is_none());
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
        let counter = AtomicU16::new(7);
        let deadline = sent_at;
        let pending = Pending {
            token: 1,
            address: HOST,
            sent_at,
            deadline,
            waiter,
        };
        assert_eq!(
            register(&table, &counter, pending),
            Some(8),
            "7 is still in flight"
        );
        assert_eq!(table.lock().len(), 2);
    }
}
