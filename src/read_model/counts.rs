//! Devices by status — overall, per region and per kind — from one snapshot: the figures
//! the dashboard (page and JSON), `/api/v1/status` and the infrastructure page show; and
//! how many of the `up` ones are `degraded` (not a status: counted beside them).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::state::{DeviceStatus, Snapshot, Status};

/// Devices by status.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub up: usize,
    pub down: usize,
    pub unknown: usize,
    pub unreachable: usize,
    pub total: usize,
    /// Of the `up` ones, those `degraded` (RTT or loss above their thresholds).
    pub degraded: usize,
}

impl Counts {
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Up => self.up += 1,
            Status::Down => self.down += 1,
            Status::Unknown => self.unknown += 1,
            Status::Unreachable => self.unreachable += 1,
        }
        self.total += 1;
    }

    /// [`Counts::add`] for a device's status, counting it `degraded` too when it is.
    pub fn add_device(&mut self, s: &DeviceStatus) {
        self.add_with(s.status, s.degraded.is_some());
    }

    fn add_with(&mut self, status: Status, degraded: bool) {
        self.add(status);
        self.degraded += usize::from(degraded);
    }

    /// Sort key, worst first: most down, then most unreachable (an outage already
    /// alerted on at its parent), then most unknown.
    pub fn badness(&self) -> [std::cmp::Reverse<usize>; 3] {
        [self.down, self.unreachable, self.unknown].map(std::cmp::Reverse)
    }
}

/// The counts of one snapshot, overall and grouped. Derived from the versioned status
/// and the inventory alone, so the surfaces read them once per (state version,
/// inventory) from the list order's cache ([`super::OrderCache::totals`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Totals {
    pub all: Counts,
    /// In inventory order, including regions without devices.
    pub by_region: Vec<(Arc<str>, Counts)>,
    /// By kind name.
    pub by_kind: Vec<(Arc<str>, Counts)>,
}

impl Totals {
    /// Counts every device of `snapshot` (a pass over the fleet: surfaces read the
    /// cached ones instead).
    pub fn of(snapshot: &Snapshot) -> Totals {
        // Two bytes a device, indexed in O(1) below (the persistent vector is not).
        let statuses: Vec<(Status, bool)> = snapshot
            .status
            .iter()
            .map(|s| (s.status, s.degraded.is_some()))
            .collect();
        let mut all = Counts::default();
        let mut by_kind: BTreeMap<&Arc<str>, Counts> = BTreeMap::new();
        for ((device, _, _), &(status, degraded)) in snapshot.devices().zip(&statuses) {
            all.add_with(status, degraded);
            by_kind
                .entry(&device.kind)
                .or_default()
                .add_with(status, degraded);
        }
        let by_region = snapshot
            .inventory
            .regions
            .iter()
            .map(|region| {
                let mut counts = Counts::default();
                for &i in region.branches.iter().flat_map(|b| &b.devices) {
                    let (status, degraded) = statuses[i];
                    counts.add_with(status, degraded);
                }
                (region.name.clone(), counts)
            })
            .collect();
        Totals {
            all,
            by_region,
            by_kind: by_kind
                .into_iter()
                .map(|(kind, counts)| (kind.clone(), counts))
                .collect(),
        }
    }
}
