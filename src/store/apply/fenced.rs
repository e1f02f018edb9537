//! Applying a cluster member's records (docs/cluster.md, "Fencing every write"), once
//! for any backend that holds the lease table (PostgreSQL only, today): in the one
//! transaction of a batch,
//!
//! 1. every distinct lease the batch's device records were stamped with is checked in
//!    one statement, locked for the rest of the transaction ([`Fencing::leases_held`]), so
//!    no other member can take a shard between the check and the commit;
//! 2. the device records whose lease does not hold — or that carry no stamp at all, such
//!    as a spool of the appliance before it joined a cluster — are left out: never applied
//!    and never retried (the shard's new owner decides from its own probes);
//! 3. the rest is applied as [`super::apply`] would, and the [`ClusterEvent`]s of its
//!    transitions and alert changes go into the cluster outbox before the commit, so that
//!    an event is published if and only if its change committed.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{Sql, write};
use crate::cluster::events::ClusterEvent;
use crate::store::{AlertRules, Record, Result, Stamp, StoreError};

/// The lease primitives of a backend whose database holds `shard_leases`.
pub(in crate::store) trait Fencing: Sql {
    /// Of `stamps` (distinct), those whose lease is held now: the shard owned by the
    /// stamp's member at its epoch and not expired. The rows stay locked until the
    /// transaction ends (a take-over waits for this commit).
    async fn leases_held(&mut self, stamps: &[&Stamp]) -> Result<Vec<Stamp>>;
    /// Appends the events to the cluster outbox, in order.
    async fn write_cluster_events(&mut self, events: &[ClusterEvent]) -> Result<()>;
}

/// What a fenced commit did.
#[derive(Debug, Default)]
pub struct Fenced {
    /// The alerts the commit opened and resolved, as [`crate::store::Store::apply`]
    /// reports them.
    pub alerts: Vec<crate::store::AlertEvent>,
    /// Device records refused: stamped with a lease that no longer holds, or unstamped.
    pub refused: usize,
    /// The shards of the refused stamped records, ascending.
    pub refused_shards: Vec<u16>,
    /// Refused records that carried no stamp (included in `refused`).
    pub unstamped: usize,
    /// Events written to the cluster outbox (the relay has something to send).
    pub events: usize,
}

/// Applies `records` as cluster member `member` in the transaction `sql` (see the
/// module doc), and commits.
pub(in crate::store) async fn apply<S: Fencing>(
    mut sql: S,
    rules: &AlertRules,
    records: &[Record],
    member: &str,
) -> Result<Fenced> {
    let mut stamps: Vec<&Stamp> = records.iter().filter_map(|r| r.stamp.as_ref()).collect();
    stamps.sort();
    stamps.dedup();
    // One round trip, and only for a batch with device records.
    let held: HashSet<Stamp> = if stamps.is_empty() {
        HashSet::new()
    } else {
        sql.leases_held(&stamps).await?.into_iter().collect()
    };
    let mut out = Fenced::default();
    let mut shards = BTreeSet::new();
    let mut kept: Vec<&Record> = Vec::with_capacity(records.len());
    for r in records {
        match (&r.stamp, r.kind.device()) {
            (Some(stamp), _) if !held.contains(stamp) => {
                out.refused += 1;
                shards.insert(stamp.shard);
            }
            (None, Some(_)) => {
                out.refused += 1;
                out.unstamped += 1;
            }
            _ => kept.push(r),
        }
    }
    out.refused_shards = shards.into_iter().collect();
    let written = write(&mut sql, rules, &kept).await?;
    let events = events(&written.applied, &written.alerts, member);
    sql.write_cluster_events(&events).await?;
    sql.commit().await.map_err(StoreError::of_commit)?;
    out.events = events.len();
    out.alerts = written.alerts;
    Ok(out)
}

/// The cluster events of a commit: each applied transition, then each alert change, in
/// the commit's order. An alert change carries the lease of the batch's last record of
/// its device; one no device record of the batch caused (an acknowledgement, a device
/// removed from the inventory) is written under epoch 0 by `member`, at the time of the
/// batch's last record (an un-acknowledgement keeps no time of its own).
fn events(
    applied: &[&Record],
    alerts: &[crate::store::AlertEvent],
    member: &str,
) -> Vec<ClusterEvent> {
    let mut out: Vec<ClusterEvent> = applied
        .iter()
        .filter_map(|r| {
            let stamp = r.stamp.as_ref()?;
            ClusterEvent::of_record(r, &stamp.member, stamp.epoch)
        })
        .collect();
    if alerts.is_empty() {
        return out;
    }
    let mut lease: HashMap<&str, (&Record, &Stamp)> = HashMap::new();
    for r in applied {
        if let (Some(device), Some(stamp)) = (r.kind.device(), r.stamp.as_ref()) {
            lease.insert(device, (r, stamp));
        }
    }
    let last_at = applied
        .last()
        .map(|r| r.at)
        .unwrap_or_else(chrono::Utc::now);
    out.extend(
        alerts
            .iter()
            .map(|a| match lease.get(a.alert.device.as_str()) {
                Some((r, stamp)) => ClusterEvent::of_alert(a, r.at, &stamp.member, stamp.epoch),
                None => ClusterEvent::of_alert(a, last_at, member, 0),
            }),
    );
    out
}
