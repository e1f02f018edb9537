//! The stored rows of a period turned into each device's [`DeviceHistory`] and the
//! appliance's runs.
//!
//! Maintenance comes from two places: the inventory's windows, as the inventory has
//! them *now* (the inventory's history is in git, not in the database: a window removed
//! since no longer counts, and a device no longer in the inventory has none), and the
//! silences stored in the `silences` table, matched against the device's names as last
//! stored. Windows are evaluated once per shared list (the devices of a branch without
//! windows of their own hold the very same one).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Change, DeviceHistory, Span, merge};
use crate::config::{Device, Inventory};
use crate::maintenance::silence::Names;
use crate::maintenance::{self, Silence, Window};
use crate::store::report::ReportData;

/// Occurrences of one device's windows looked at in a period, at most: a cron pattern
/// every minute for a year is 525,600; past this the rest of the period is not counted
/// as maintenance (said by [`Prepared::truncated_windows`]).
const MAX_OCCURRENCES: usize = 600_000;

/// One device of a report.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub region: String,
    pub branch: String,
    pub kind: String,
    /// The device as the inventory has it now (labels); None once removed.
    pub device: Option<Arc<Device>>,
    pub history: DeviceHistory,
}

/// What [`prepare`] makes of the rows.
pub struct Prepared {
    /// The appliance's runs in the period, sorted and merged.
    pub runs: Vec<Span>,
    /// By name.
    pub devices: Vec<Entry>,
    /// True if some window list had more occurrences than [`MAX_OCCURRENCES`].
    pub truncated_windows: bool,
}

/// The run going on: its stored heartbeat lags, so it counts up to `now`.
#[derive(Debug, Clone, Copy)]
pub struct CurrentRun<'a> {
    pub boot: &'a str,
    pub started_at: DateTime<Utc>,
}

/// The histories of `[from, to)` (`to` at most `now`: the caller clamps it).
pub fn prepare(
    data: &ReportData,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    current: Option<CurrentRun<'_>>,
    inventory: &Inventory,
    zone: Tz,
) -> Prepared {
    let mut runs: Vec<Span> = data
        .runs
        .iter()
        .map(|r| match current {
            Some(c) if c.boot == r.boot => Span::new(r.started_at, now),
            _ => Span::new(r.started_at, r.last_seen_at),
        })
        .collect();
    if let Some(c) = current {
        runs.push(Span::new(c.started_at, now));
    }
    let runs = merge(runs);

    let mut windows = WindowCache::default();
    let mut devices: Vec<Entry> = Vec::new();
    for p in &data.presence {
        let end = p.removed_at.unwrap_or(DateTime::<Utc>::MAX_UTC);
        let span = Span::new(p.added_at, end);
        match devices.last_mut() {
            Some(e) if e.name == p.device => e.history.presence.push(span),
            _ => devices.push(Entry {
                name: p.device.clone(),
                region: p.region.clone(),
                branch: p.branch.clone(),
                kind: p.kind.clone(),
                device: inventory.device(&p.device).cloned(),
                history: DeviceHistory {
                    presence: vec![span],
                    ..DeviceHistory::default()
                },
            }),
        }
    }
    for e in devices.iter_mut() {
        e.history.transitions = data
            .transitions
            .get(&e.name)
            .map(|list| {
                list.iter()
                    .map(|t| Change {
                        at: t.at,
                        to: t.to,
                        down_since: t.down_since,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let names = Names {
            region: &e.region,
            branch: &e.branch,
            device: &e.name,
            kind: &e.kind,
        };
        let mut spans: Vec<Span> = match &e.device {
            Some(d) => windows.spans(&d.maintenance, from, to, zone).to_vec(),
            None => Vec::new(),
        };
        spans.extend(
            data.silences
                .iter()
                .filter(|s| s.matchers.covers(names))
                .map(silence_span),
        );
        e.history.maintenance = merge(spans);
    }
    Prepared {
        runs,
        devices,
        truncated_windows: windows.truncated,
    }
}

fn silence_span(s: &Silence) -> Span {
    Span::new(s.starts_at, s.end())
}

/// Each shared window list's spans in the period, computed once.
#[derive(Default)]
struct WindowCache {
    by_list: HashMap<*const Window, Vec<Span>>,
    truncated: bool,
}

impl WindowCache {
    fn spans(
        &mut self,
        list: &maintenance::Windows,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        zone: Tz,
    ) -> &[Span] {
        if list.is_empty() {
            return &[];
        }
        let key = list.as_ptr();
        if !self.by_list.contains_key(&key) {
            let (spans, truncated) = window_spans(list, from, to, zone);
            self.truncated |= truncated;
            self.by_list.insert(key, spans);
        }
        &self.by_list[&key]
    }
}

/// The maintenance `windows` put in `[from, to)`: what is going on at `from`, and every
/// occurrence starting in the period.
pub fn window_spans(
    windows: &[Window],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zone: Tz,
) -> (Vec<Span>, bool) {
    let mut spans = Vec::new();
    if let Some(end) = maintenance::active_at(windows, from, zone) {
        spans.push(Span::new(from, end));
    }
    let starting = maintenance::starts_in(windows, from, to, zone, MAX_OCCURRENCES);
    let truncated = starting.len() >= MAX_OCCURRENCES;
    spans.extend(starting.into_iter().map(|(_, o)| Span::new(o.start, o.end)));
    (merge(spans), truncated)
}
