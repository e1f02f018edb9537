//! The writer of a cluster member (docs/cluster.md, "Fencing every write"). The member's
//! loop says which shards it holds and at which epoch ([`Owned`]); the writer
//!
//! - stamps every device record with that lease as it spools it, and drops a record whose
//!   shard it does not hold at that instant before it reaches the spool (`stale_dropped`):
//!   the shard's owner writes that device's history from its own probes;
//! - commits through [`Store::apply_fenced`](crate::store::Store::apply_fenced), which
//!   refuses in the transaction the records whose lease no longer holds
//!   (`epoch_conflicts`). They leave the queue like committed ones: a lost epoch never
//!   comes back, so retrying them could only fail again or, worse, wait in the spool;
//! - pokes the event relay after a commit that wrote to the cluster outbox.
//!
//! Records of the whole appliance (inventory, silences, acknowledgements, audit, runs)
//! are not stamped: every member writes them, and each of their writes is idempotent or
//! its own (see docs/cluster.md).

use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::Committed;
use crate::cluster::member::Owned;
use crate::cluster::shard_of;
use crate::store::{Fenced, Stamp, StoreHealth};

/// What the writer of a cluster member needs: who it is, what it holds, and whom to tell
/// of new events. `app` builds it from the member it runs (`Member::owned`) and the relay
/// (`Relay::waker`).
#[derive(Debug, Clone)]
pub struct WriterCluster {
    /// The member's id, as in `cluster_members` and `shard_leases.owner`.
    pub member: String,
    /// What the member holds, as its loop publishes it.
    pub owned: watch::Receiver<Owned>,
    /// Poked after every commit that wrote cluster events; None: no relay runs.
    pub relay: Option<Arc<Notify>>,
}

impl WriterCluster {
    /// The stamp of a record about `device` made now, or None if the member may not write
    /// for its shard now.
    pub(super) fn stamp(&self, device: &str) -> Option<Stamp> {
        let shard = shard_of(device);
        let epoch = self.owned.borrow().epoch(shard, Instant::now())?;
        Some(Stamp {
            member: self.member.clone(),
            shard,
            epoch,
        })
    }

    /// Whether this member does the cluster's upkeep now (it acts on
    /// [`crate::cluster::LEADER_SHARD`]).
    pub(super) fn leads(&self) -> bool {
        let shard = crate::cluster::LEADER_SHARD;
        self.owned.borrow().epoch(shard, Instant::now()).is_some()
    }

    /// Counts and says what a fenced commit refused, and wakes the relay.
    pub(super) fn committed(&self, fenced: Fenced, health: &StoreHealth) -> Committed {
        if fenced.refused > 0 {
            health.epoch_conflicts.inc_by(fenced.refused as u64);
            tracing::warn!(
                member = %self.member,
                refused = fenced.refused,
                unstamped = fenced.unstamped,
                shards = ?fenced.refused_shards,
                "device records refused: their shard's lease no longer holds (stale epoch); dropped, never retried"
            );
        }
        if fenced.events > 0
            && let Some(relay) = &self.relay
        {
            relay.notify_one();
        }
        Committed {
            alerts: fenced.alerts,
            refused: fenced.refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    fn cluster(shards: &[u16], for_: Duration) -> WriterCluster {
        let owned = Owned {
            shards: shards.iter().map(|&s| (s, 7)).collect::<BTreeMap<_, _>>(),
            until: Some(Instant::now() + for_),
        };
        WriterCluster {
            member: "a".into(),
            owned: watch::channel(owned).1,
            relay: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_upkeep_is_the_leader_shards_holders_while_its_fence_allows() {
        let leader = crate::cluster::LEADER_SHARD;
        assert!(cluster(&[leader, 9], Duration::from_secs(5)).leads());
        assert!(!cluster(&[9], Duration::from_secs(5)).leads());
        let fenced = cluster(&[leader], Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!fenced.leads(), "its fence ran out");
    }
}
