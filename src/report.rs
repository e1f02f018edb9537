//! Availability reports, computed exactly from what the appliance stored: transitions,
//! the spans each device was in the inventory, the appliance's own runs, the inventory's
//! maintenance windows and the operators' silences. Not from sampled metrics: every
//! figure is a sum of exact stretches of time, to the microsecond.
//!
//! - [`compute`]: one device's figures for a period (the rules of what counts as what
//!   are there), a pure function of its history.
//! - [`input`]: the stored rows ([`crate::store::report::ReportData`]) and the inventory
//!   turned into each device's history (its maintenance spans found from the windows).
//! - [`group`]: devices summed by device, branch, region, kind or a label; the SLA
//!   target that applies and whether it was met.
//! - [`csv`]: a report as CSV a spreadsheet opens (UTF-8 BOM).
//! - [`query`]: the parameters (period in the display zone, grouping, sort, drill-down,
//!   paging), each bad value an error naming it.
//! - [`run`]: the one entry the surfaces use: the store read, the figures computed off
//!   the async runtime, the asker's regions kept, sorted and paged; two at once.
//!
//! Nothing but [`run`] reads the database, and nothing reads a clock or a request: the
//! caller passes `now`, the rows and the settings, so tests compare the figures with a
//! brute-force count over injected histories.

pub mod compute;
pub mod csv;
pub mod group;
pub mod input;
pub mod query;
pub mod run;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::state::Status;

/// `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Span {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Span {
        Span { start, end }
    }
}

/// Sorts `spans` and merges those that overlap or touch; empty ones are dropped.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| s.end > s.start);
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// A device's status from `at` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub to: Status,
    /// The outage's start, for `down`/`unreachable`.
    pub down_since: Option<DateTime<Utc>>,
}

/// What [`compute::device`] reads of one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceHistory {
    /// When it was in the inventory: sorted, disjoint.
    pub presence: Vec<Span>,
    /// Sorted by time; the last one before the period first, if any.
    pub transitions: Vec<Change>,
    /// When maintenance covered it: sorted, merged.
    pub maintenance: Vec<Span>,
}

/// One outage of a device, as far as the period sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// Since when the device had not answered (may be before the period).
    pub started_at: DateTime<Utc>,
    /// The transition that ended it; None: still going at the period's end.
    pub ended_at: Option<DateTime<Utc>>,
    /// Microseconds of it the report counts (down or unreachable, monitored, outside
    /// maintenance, inside the period).
    pub counted: i64,
}

/// Sums over a period, in microseconds (outages: a count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub up: i64,
    pub down: i64,
    pub unreachable: i64,
    pub maintenance: i64,
    pub unmonitored: i64,
    pub outages: u64,
    /// The longest outage's counted time.
    pub longest_outage: i64,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.up += o.up;
        self.down += o.down;
        self.unreachable += o.unreachable;
        self.maintenance += o.maintenance;
        self.unmonitored += o.unmonitored;
        self.outages += o.outages;
        self.longest_outage = self.longest_outage.max(o.longest_outage);
    }

    /// The time availability is judged over: maintenance and unmonitored time are not
    /// in it. `unreachable` is: the device could not be used, whoever's fault it was.
    pub fn judged(&self) -> i64 {
        self.up + self.down + self.unreachable
    }

    /// Percent of the judged time up; None when nothing was judged.
    pub fn availability(&self) -> Option<f64> {
        let judged = self.judged();
        (judged > 0).then(|| 100.0 * self.up as f64 / judged as f64)
    }

    /// Mean time to repair: the outages' counted time per outage.
    pub fn mttr(&self) -> Option<i64> {
        (self.outages > 0).then(|| (self.down + self.unreachable) / self.outages as i64)
    }

    /// Mean time between failures: the time up per outage.
    pub fn mtbf(&self) -> Option<i64> {
        (self.outages > 0).then(|| self.up / self.outages as i64)
    }
}
