//! What an availability report is computed from, read in one go for a period: the
//! spans each device was in the inventory, the appliance's runs, every transition in the
//! period plus each device's last one before it, and the silences that overlap it.
//! [`crate::report`] turns it into figures; nothing is decided here.
//!
//! Each backend has its SQL beside its other reads (`postgres/report.rs`,
//! `sqlite/report.rs`); the rows map to these types through [`rows`](super::rows)'
//! `Columns`, once for both.
//!
//! A month of a large fleet is a million transitions: they are read in whatever order
//! the database finds cheapest (no `ORDER BY`: sorting a million rows by device was most
//! of a report's time), each device name looked up borrowed from what was read rather
//! than allocated ([`add`]), and put in order here, per device ([`in_order`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::Result;
use super::rows::Columns;
use crate::maintenance::Silence;
use crate::state::Status;

/// Everything stored that a report of `[from, to)` needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportData {
    /// Spans of presence overlapping the period, by device then start.
    pub presence: Vec<PresenceRow>,
    /// Runs overlapping the period (the one going on with its last stored heartbeat).
    pub runs: Vec<RunRow>,
    /// By device: its last transition before the period (if any), then those in it, in
    /// order (`at`, then id).
    pub transitions: Transitions,
    /// Silences whose span overlaps the period.
    pub silences: Vec<Silence>,
}

/// One span a device was in the inventory, with its names as last stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRow {
    pub device: String,
    pub region: String,
    pub branch: String,
    pub kind: String,
    pub added_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// One run of the appliance: it watched from `started_at` to `last_seen_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub boot: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub stopped: bool,
}

/// Each device's transitions, by name.
pub type Transitions = HashMap<String, Vec<ReportTransition>, foldhash::fast::RandomState>;

/// A transition as a report reads it: the status a device had from `at` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTransition {
    /// The row's id: the order of two transitions at the same instant.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub to: Status,
    /// For `down`/`unreachable`: since when the device had not answered (the outage's
    /// start, which may be before a transition between the two).
    pub down_since: Option<DateTime<Utc>>,
}

/// `SELECT` columns of [`presence`], in its order (`p`: device_presence, `d`: devices).
macro_rules! presence_columns {
    () => {
        "d.name, d.region, d.branch, d.kind, p.added_at, p.removed_at"
    };
}
/// Columns of [`run`].
macro_rules! run_columns {
    () => {
        "boot_id, started_at, last_seen_at, stopped_at"
    };
}
/// Columns of the transitions each backend reads (`ReportTransition` and its device).
macro_rules! report_transition_columns {
    () => {
        "device, id, at, to_status, down_since"
    };
}
pub(super) use {presence_columns, report_transition_columns, run_columns};

pub(super) fn presence(row: &impl Columns) -> Result<PresenceRow> {
    Ok(PresenceRow {
        device: row.text(0)?,
        region: row.text(1)?,
        branch: row.text(2)?,
        kind: row.text(3)?,
        added_at: row.time(4)?,
        removed_at: row.opt_time(5)?,
    })
}

pub(super) fn run(row: &impl Columns) -> Result<RunRow> {
    Ok(RunRow {
        boot: row.text(0)?,
        started_at: row.time(1)?,
        last_seen_at: row.time(2)?,
        stopped: row.opt_time(3)?.is_some(),
    })
}

/// A stored status; one this build does not know is not counted as any known one.
pub(super) fn status(text: &str) -> Status {
    Status::parse(text).unwrap_or(Status::Unknown)
}

/// Adds `transition` to `device`'s list; the name (borrowed from a row) is allocated
/// once per device.
pub(super) fn add(devices: &mut Transitions, device: &str, transition: ReportTransition) {
    match devices.get_mut(device) {
        Some(list) => list.push(transition),
        None => {
            devices.insert(device.to_string(), vec![transition]);
        }
    }
}

/// Each device's transitions put in order: time, then id.
pub(super) fn in_order(mut devices: Transitions) -> Transitions {
    for list in devices.values_mut() {
        list.sort_unstable_by_key(|t| (t.at, t.id));
    }
    devices
}
