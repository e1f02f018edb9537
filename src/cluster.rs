//! Several appliances, one truth (issue #18, docs/cluster.md): the parts of a cluster
//! member, which `app::cluster` runs when the settings have a `cluster:` section. The
//! pure ones read no clock of their own; [`leases`] is the lease table in PostgreSQL.
//!
//! - [`shard_of`]: a device's shard, fixed by its name (xxh3, stable across versions):
//!   [`SHARDS`] of them, so that ownership moves in small steps.
//! - [`Assignment`]: which live member should own each shard, by rendezvous hashing:
//!   every member computes the same map from the same member list, and a member joining
//!   or leaving moves only the shards it wins or held (about 1/N).
//! - [`Fence`]: when a member must stop probing and writing for a shard. A lease is
//!   renewed in the database, which decides expiry by its own clock; the member cannot
//!   read that clock, so it counts from the moment it *sent* the renewal that succeeded
//!   (the lease cannot have been extended from any earlier instant) and stops a safety
//!   margin before the TTL runs out. A member cut off from the database thus stops
//!   before any other can take its shards over.
//! - [`leases`]: members, and the shard leases with their epochs, in PostgreSQL.
//! - [`member`]: the loop a member runs over them (renew, heartbeat, acquire what the map
//!   gives, release what it gives to another) and publishes what it may act on.
//! - [`events`]: the live event feed over Redis Streams: an outbox in PostgreSQL, the
//!   relay that publishes it, the reader that follows the stream.
//! - [`view`]: the member's view of every device: shards taken over are loaded before
//!   they are acted on, other members' devices follow their events (or PostgreSQL).
//! - [`handle`]: what the routes see of a running member (`/api/v1/cluster`, `/metrics`).

pub mod events;
pub mod handle;
pub mod leases;
pub mod member;
pub mod view;

use std::time::Duration;

use tokio::time::Instant;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Shards the devices are split into. Fixed: changing it moves every device.
pub const SHARDS: u16 = 1024;

/// The shard whose holder does what one member does for the whole cluster: sending the
/// notifications, resolving `flapping` alerts of devices that calmed down, pruning
/// history. Its lease makes that one member at a time, as for any shard.
pub const LEADER_SHARD: u16 = 0;

/// The shard of the device named `name`.
pub fn shard_of(name: &str) -> u16 {
    (xxh3_64(name.as_bytes()) % u64::from(SHARDS)) as u16
}

/// The owner each shard should have, for one list of live members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Member ids, sorted (the map does not depend on the order they were listed in).
    members: Vec<String>,
    /// Per shard, an index into `members`.
    owner: Vec<u16>,
}

impl Assignment {
    /// The rendezvous map of `members` (ids unique; at most 65,535). None without any.
    pub fn new(members: impl IntoIterator<Item = String>) -> Option<Assignment> {
        let mut members: Vec<String> = members.into_iter().collect();
        members.sort();
        members.dedup();
        if members.is_empty() || members.len() > usize::from(u16::MAX) {
            return None;
        }
        let seeds: Vec<u64> = members.iter().map(|m| xxh3_64(m.as_bytes())).collect();
        let owner = (0..SHARDS)
            .map(|shard| {
                let bytes = shard.to_le_bytes();
                // Highest weight wins; ties (never seen with 64-bit weights) by id order.
                let (best, _) = seeds
                    .iter()
                    .enumerate()
                    .map(|(i, &seed)| (i, xxh3_64_with_seed(&bytes, seed)))
                    .fold(
                        (0, 0u64),
                        |best, (i, w)| if w > best.1 { (i, w) } else { best },
                    );
                best as u16
            })
            .collect();
        Some(Assignment { members, owner })
    }

    /// The member that should own `shard`.
    pub fn owner(&self, shard: u16) -> &str {
        &self.members[usize::from(self.owner[usize::from(shard % SHARDS)])]
    }

    /// The shards `member` should own, ascending.
    pub fn shards_of(&self, member: &str) -> Vec<u16> {
        let Ok(i) = self.members.binary_search_by(|m| m.as_str().cmp(member)) else {
            return Vec::new();
        };
        (0..SHARDS)
            .filter(|&s| usize::from(self.owner[usize::from(s)]) == i)
            .collect()
    }

    /// Shards whose owner differs between `self` and `next`.
    pub fn moved(&self, next: &Assignment) -> usize {
        (0..SHARDS)
            .filter(|&s| self.owner(s) != next.owner(s))
            .count()
    }
}

/// How long a member may go on acting on a lease it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    ttl: Duration,
    margin: Duration,
    /// When the last successful renewal was sent; None: never held.
    renewed_from: Option<Instant>,
}

impl Fence {
    /// For leases of `ttl`, stopping `margin` before it could run out (clock drift
    /// between machines, a pause of this process, the time to stop the probes).
    pub fn new(ttl: Duration, margin: Duration) -> Fence {
        assert!(margin < ttl, "the margin is part of the TTL");
        Fence {
            ttl,
            margin,
            renewed_from: None,
        }
    }

    /// A renewal sent at `sent` was acknowledged by the database. A late answer to an
    /// older request never moves the fence back.
    pub fn renewed(&mut self, sent: Instant) {
        self.renewed_from = Some(self.renewed_from.map_or(sent, |r| r.max(sent)));
    }

    /// The lease was lost or given up: stop at once.
    pub fn released(&mut self) {
        self.renewed_from = None;
    }

    /// Until when probing and writing are allowed.
    pub fn until(&self) -> Option<Instant> {
        self.renewed_from.map(|r| r + (self.ttl - self.margin))
    }

    /// Whether probing and writing are allowed at `now`.
    pub fn allows(&self, now: Instant) -> bool {
        self.until().is_some_and(|u| now < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("wardops-{i}")).collect()
    }

    #[test]
    fn devices_spread_over_every_shard() {
        let mut per = vec![0u32; usize::from(SHARDS)];
        for i in 0..100_000 {
            per[usize::from(shard_of(&format!("tbilisi-b{:05}-atm-{}", i / 4, i % 4)))] += 1;
        }
        let (min, max) = (per.iter().min().unwrap(), per.iter().max().unwrap());
        assert!(*min > 50 && *max < 150, "{min}..{max} devices a shard");
    }

    #[test]
    fn every_member_computes_the_same_map_whatever_the_order() {
        let a = Assignment::new(members(3)).unwrap();
        let mut reversed = members(3);
        reversed.reverse();
        assert_eq!(a, Assignment::new(reversed).unwrap());
        let total: usize = members(3).iter().map(|m| a.shards_of(m).len()).sum();
        assert_eq!(total, usize::from(SHARDS), "each shard has one owner");
        for m in members(3) {
            let n = a.shards_of(&m).len();
            assert!((290..=395).contains(&n), "{m}: {n} shards");
        }
        assert!(Assignment::new(Vec::<String>::new()).is_none());
    }

    #[test]
    fn a_member_joining_takes_about_a_share_and_moves_nothing_else() {
        for n in [1, 2, 3, 7] {
            let before = Assignment::new(members(n)).unwrap();
            let after = Assignment::new(members(n + 1)).unwrap();
            let joined = format!("wardops-{n}");
            // Every shard that moved went to the new member.
            for s in 0..SHARDS {
                if before.owner(s) != after.owner(s) {
                    assert_eq!(after.owner(s), joined);
                }
            }
            let moved = before.moved(&after) as f64;
            let share = f64::from(SHARDS) / (n + 1) as f64;
            assert!(
                (moved - share).abs() < share * 0.2,
                "{n} → {}: {moved} moved, a share is {share}",
                n + 1
            );
        }
    }

    #[test]
    fn a_member_leaving_moves_only_its_own_shards() {
        let before = Assignment::new(members(4)).unwrap();
        let after = Assignment::new(members(4).into_iter().filter(|m| m != "wardops-2")).unwrap();
        let held = before.shards_of("wardops-2");
        assert_eq!(before.moved(&after), held.len());
        assert!(after.shards_of("wardops-2").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_stops_before_its_lease_can_expire_counting_from_the_renewal_it_sent() {
        let ttl = Duration::from_secs(10);
        let mut fence = Fence::new(ttl, Duration::from_secs(2));
        let t0 = Instant::now();
        assert!(!fence.allows(t0), "never held");
        // Sent at t0, acknowledged 3 s later (a slow database): the database may have
        // extended it from any moment after t0, so the count starts at t0.
        tokio::time::advance(Duration::from_secs(3)).await;
        fence.renewed(t0);
        assert_eq!(fence.until(), Some(t0 + Duration::from_secs(8)));
        assert!(fence.allows(t0 + Duration::from_millis(7_999)));
        assert!(!fence.allows(t0 + Duration::from_secs(8)));
        // A late acknowledgement of an older request does not move it back.
        fence.renewed(t0 + Duration::from_secs(4));
        fence.renewed(t0 + Duration::from_secs(1));
        assert_eq!(fence.until(), Some(t0 + Duration::from_secs(12)));
        fence.released();
        assert!(
            !fence.allows(t0 + Duration::from_secs(5)),
            "given up: at once"
        );
    }
}
