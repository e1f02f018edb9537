//! A report as a surface asks for it: the store read, the figures computed off the async
//! runtime, the asker's regions kept, the drill-down's filters applied, sorted, paged.
//! The JSON route, the CSV export and the `/reports` page all come through [`Reports::run`],
//! so they cannot disagree.
//!
//! A report of 100,000 devices is seconds of work: at most [`CONCURRENT`] run at once,
//! and one more is refused at once ([`Refused::Busy`]) rather than queued behind them
//! (a queue of reports is what a reload button builds).

use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::Semaphore;

use super::Totals;
use super::group::{self, Row, Sla};
use super::input::{self, CurrentRun};
use super::query::{Query, Sort};
use crate::access::Scope;
use crate::config::Inventory;
use crate::config::settings::ReportSettings;
use crate::store::{Db, Store as _, StoreError, StoreHealth};

/// Reports computed at once, at most.
pub const CONCURRENT: usize = 2;

/// The reports' settings and their admission.
pub struct Reports {
    pub settings: ReportSettings,
    permits: Arc<Semaphore>,
}

impl Default for Reports {
    fn default() -> Self {
        Reports::new(ReportSettings::default())
    }
}

/// Why no report was made.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{CONCURRENT} reports are being computed; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a report says: one page of rows, and the sums over every row.
#[derive(Debug, Clone)]
pub struct Report {
    pub query: Query,
    /// The period's end as counted: `to`, or now if that is earlier (the future is not
    /// counted at all; an open outage counts up to now).
    pub until: DateTime<Utc>,
    pub rows: Vec<Row>,
    /// Rows before paging.
    pub total_rows: usize,
    pub totals: Totals,
    pub sla: Sla,
    pub devices: u64,
    /// Some window list had more occurrences than are looked at.
    pub partial: bool,
}

/// What a report is computed against besides the store.
pub struct Inputs<'a> {
    pub inventory: Arc<Inventory>,
    pub now: DateTime<Utc>,
    /// The zone of the inventory's windows (`maintenance.zone`).
    pub zone: Tz,
    pub scope: &'a Scope,
    pub health: &'a StoreHealth,
}

impl Reports {
    pub fn new(settings: ReportSettings) -> Reports {
        Reports {
            settings,
            permits: Arc::new(Semaphore::new(CONCURRENT)),
        }
    }

    pub async fn run(
        &self,
        db: &Arc<Db>,
        query: Query,
        inputs: Inputs<'_>,
    ) -> Result<Report, Refused> {
        let _permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Busy)?;
        let until = query.to.min(inputs.now).max(query.from);
        let data = db.report_data(query.from, until).await?;
        let current = inputs
            .health
            .run()
            .map(|(boot, started_at)| (boot.to_string(), started_at));
        let rules = self.settings.sla.clone();
        let scope = inputs.scope.clone();
        let (inventory, now, zone) = (inputs.inventory, inputs.now, inputs.zone);
        // Seconds of CPU for a large fleet: off the async workers.
        let report = tokio::task::spawn_blocking(move || {
            let current = current.as_ref().map(|(boot, started_at)| CurrentRun {
                boot,
                started_at: *started_at,
            });
            let mut prepared =
                input::prepare(&data, query.from, until, now, current, &inventory, zone);
            prepared.devices.retain(|e| {
                scope.allows(&e.region)
                    && query.region.as_ref().is_none_or(|r| *r == e.region)
                    && query.branch.as_ref().is_none_or(|b| *b == e.branch)
                    && query.device.as_ref().is_none_or(|d| *d == e.name)
            });
            let mut rows = group::rows(&prepared, query.from, until, &query.group_by, &rules);
            let (totals, sla, devices) = group::overall(&rows);
            sort(&mut rows, query.sort);
            let total_rows = rows.len();
            let rows: Vec<Row> = rows
                .into_iter()
                .skip(query.offset)
                .take(query.limit)
                .collect();
            Report {
                query,
                until,
                rows,
                total_rows,
                totals,
                sla,
                devices,
                partial: prepared.truncated_windows,
            }
        })
        .await
        .expect("the report computation does not panic");
        Ok(report)
    }
}

/// Orders rows by `sort`; ties (and [`Sort::Key`]) by the group's name as grouped.
fn sort(rows: &mut [Row], sort: Sort) {
    let worst_first = |a: &Row, b: &Row| {
        // No judged time sorts last: it is not a bad figure, it is none.
        match (a.totals.availability(), b.totals.availability()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    };
    let down = |r: &Row| r.totals.down + r.totals.unreachable;
    // Stable: rows come in key order, which breaks the ties.
    match sort {
        Sort::Key => {}
        Sort::Availability => rows.sort_by(worst_first),
        Sort::Downtime => rows.sort_by_key(|r| std::cmp::Reverse(down(r))),
        Sort::Outages => rows.sort_by_key(|r| std::cmp::Reverse(r.totals.outages)),
        Sort::Breach => rows.sort_by(|a, b| {
            b.sla
                .breached
                .cmp(&a.sla.breached)
                .then_with(|| worst_first(a, b))
        }),
    }
}
