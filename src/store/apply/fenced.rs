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
use chrono::{DateTime, Utc};

use crate::cluster::events::{self, AlertState, ClusterEvent, EventKind};
use crate::state::Status;
use crate::store::{
    AlertChange, AlertEvent, AlertRules, Record, RecordKind, Result, Stamp, StoreError,
};

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
            transition_event(r, &stamp.member, stamp.epoch)
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
                Some((r, stamp)) => alert_event(a, r.at, &stamp.member, stamp.epoch),
                None => alert_event(a, last_at, member, 0),
            }),
    );
    out
}

/// The event of a transition record the writer applied, or None for any other record
/// (or a status this build does not know).
pub(in crate::store) fn transition_event(
    record: &Record,
    member: &str,
    epoch: i64,
) -> Option<ClusterEvent> {
    let RecordKind::Transition {
        device,
        from,
        to,
        down_since,
        ..
    } = &record.kind
    else {
        return None;
    };
    Some(ClusterEvent {
        v: events::VERSION,
        outbox_id: 0,
        member: member.into(),
        epoch,
        at: record.at,
        kind: EventKind::Transition {
            device: device.clone(),
            from: Status::parse(from)?,
            to: Status::parse(to)?,
            down_since: *down_since,
        },
    })
}

/// The event of an alert change a commit reported; `record_at` is the time of the
/// record that made it, for the change the row keeps no time of (an
/// un-acknowledgement).
pub(in crate::store) fn alert_event(
    change: &AlertEvent,
    record_at: DateTime<Utc>,
    member: &str,
    epoch: i64,
) -> ClusterEvent {
    let a = &change.alert;
    let (state, at) = match change.change {
        AlertChange::Opened => (AlertState::Opened, a.opened_at),
        AlertChange::Resolved => (AlertState::Resolved, a.resolved_at.unwrap_or(a.opened_at)),
        AlertChange::Updated => match a.acknowledged_at {
            Some(at) => (AlertState::Acknowledged, at),
            None => (AlertState::Unacknowledged, record_at),
        },
    };
    ClusterEvent {
        v: events::VERSION,
        outbox_id: 0,
        member: member.into(),
        epoch,
        at,
        kind: EventKind::Alert {
            device: a.device.clone(),
            alert_id: a.id,
            condition: a.condition.clone(),
            state,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transition_record_and_an_acknowledgement_make_their_events() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let record = Record {
            boot: "b".into(),
            stamp: None,
            seq: 1,
            at,
            kind: RecordKind::Transition {
                device: "atm-1".into(),
                address: "127.0.0.1".into(),
                from: "up".into(),
                to: "down".into(),
                down_since: Some(at),
                version: 3,
                in_maintenance: false,
                alert_held: false,
            },
        };
        let e = transition_event(&record, "a", 2).unwrap();
        assert_eq!((e.member.as_str(), e.epoch, e.at), ("a", 2, at));
        assert_eq!(
            e.kind,
            EventKind::Transition {
                device: "atm-1".into(),
                from: Status::Up,
                to: Status::Down,
                down_since: Some(at),
            }
        );
        let alert = crate::store::AlertRow {
            id: 9,
            device: "atm-1".into(),
            condition: "device_down".into(),
            severity: "critical".into(),
            message: "down".into(),
            opened_at: at,
            resolved_at: None,
            resolution: None,
            acknowledged_at: Some(at + chrono::Duration::seconds(60)),
            acknowledged_by: Some("ana".into()),
            acknowledged_comment: None,
        };
        let change = AlertEvent {
            change: AlertChange::Updated,
            alert,
            scope: None,
        };
        let e = alert_event(&change, at, "a", 2);
        assert_eq!(e.at, at + chrono::Duration::seconds(60));
        assert!(matches!(
            e.kind,
            EventKind::Alert {
                alert_id: 9,
                state: AlertState::Acknowledged,
                ..
            }
        ));
    }
}
