//! Maintenance windows: when planned work is going on, as pure functions of time.
//!
//! A [`Window`] is written in the inventory on a region, a branch or a device (its
//! [`Scope`]), as one of three [`Rule`]s: a one-off (from one local time to another), a
//! weekly one (days and a local time range, crossing midnight when it ends before it
//! starts) or a cron pattern with a duration. Each is in an IANA zone, its own or the
//! appliance's default one (`maintenance.zone` in the settings), passed in by the caller.
//!
//! Times are exact across daylight-saving changes: every occurrence is found in local
//! time and then turned into an instant by one rule ([`local`]): a local time that does
//! not exist starts at the next instant that does, one that happens twice takes the
//! first. Starts are inclusive, ends exclusive.
//!
//! An operator's ad-hoc [`silence`] is one more window, a span in UTC, added to those
//! of the devices it covers.
//!
//! Nothing here reads a clock or the configuration: [`active_at`] and [`starts_in`] take
//! the instant and the default zone, so the state machine, the API and the tests ask the
//! same question the same way. This module imports nothing of the appliance.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub mod local;
mod rule;
pub mod silence;

pub use rule::{CronError, Days, Occurrence, Rule};
pub use silence::{Matchers, Silence, Silences};

/// One maintenance window, as the inventory states it.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Where it is written: every device under it is covered.
    pub scope: Scope,
    /// Its place in its scope's list (0 for the first): with the scope, names the window.
    pub ordinal: u32,
    pub rule: Rule,
    /// None: the default zone.
    pub zone: Option<Tz>,
    pub reason: Option<Arc<str>>,
}

/// The level of the inventory a window is written on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Region {
        region: Arc<str>,
    },
    Branch {
        region: Arc<str>,
        branch: Arc<str>,
    },
    Device {
        region: Arc<str>,
        branch: Arc<str>,
        device: Arc<str>,
    },
    /// Not in the inventory: an operator's ad-hoc silence ([`silence`]), by its id.
    Silence {
        id: Arc<str>,
    },
}

impl Scope {
    /// `region`, `branch` or `device`.
    pub fn level(&self) -> &'static str {
        match self {
            Scope::Region { .. } => "region",
            Scope::Branch { .. } => "branch",
            Scope::Device { .. } => "device",
            Scope::Silence { .. } => "silence",
        }
    }

    /// The name of what it is written on.
    pub fn name(&self) -> &str {
        match self {
            Scope::Region { region } => region,
            Scope::Branch { branch, .. } => branch,
            Scope::Device { device, .. } => device,
            Scope::Silence { id } => id,
        }
    }
}

/// The windows that apply to one device: its region's, its branch's and its own, in
/// that order. Shared: the devices of a branch without windows of their own hold the
/// very same list.
pub type Windows = Arc<[Window]>;

/// An unbroken stretch of touching or overlapping occurrences is followed this many
/// links at most. A chain longer than that (a pattern every hour for an hour, say)
/// reports the end of its last link followed; asked again then, it goes on from there.
const MAX_CHAIN: usize = 64;

impl Window {
    pub fn zone_or(&self, default: Tz) -> Tz {
        self.zone.unwrap_or(default)
    }

    /// The occurrence going on at `t`, if any.
    pub fn active_at(&self, t: DateTime<Utc>, default: Tz) -> Option<Occurrence> {
        self.rule
            .latest_start(t, self.zone_or(default))
            .filter(|o| o.end > t)
    }

    /// The occurrences that start in `[from, until)`, in order, at most `limit`.
    pub fn starts_in(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        default: Tz,
        limit: usize,
    ) -> Vec<Occurrence> {
        if from >= until {
            return Vec::new();
        }
        self.rule
            .starts_in(from, until, self.zone_or(default), limit)
    }
}

/// When the maintenance going on at `t` under `windows` ends, if any is: the end of the
/// unbroken stretch of their occurrences around `t` (overlapping or touching ones
/// merge, so the answer is the latest end).
pub fn active_at(windows: &[Window], t: DateTime<Utc>, default: Tz) -> Option<DateTime<Utc>> {
    let mut end = windows
        .iter()
        .filter_map(|w| w.active_at(t, default))
        .map(|o| o.end)
        .max()?;
    for _ in 0..MAX_CHAIN {
        // What started by the current end (touching included) and goes on past it.
        let grown = windows
            .iter()
            .filter_map(|w| w.rule.latest_start(end, w.zone_or(default)))
            .map(|o| o.end)
            .fold(end, DateTime::max);
        if grown == end {
            break;
        }
        end = grown;
    }
    Some(end)
}

/// The occurrences of `windows` that start in `[from, until)`, by start (then by the
/// window's index in `windows`), at most `limit`: (index of the window, occurrence).
pub fn starts_in(
    windows: &[Window],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    default: Tz,
    limit: usize,
) -> Vec<(usize, Occurrence)> {
    let mut all: Vec<(usize, Occurrence)> = windows
        .iter()
        .enumerate()
        .flat_map(|(i, w)| {
            w.starts_in(from, until, default, limit)
                .into_iter()
                .map(move |o| (i, o))
        })
        .collect();
    all.sort_by_key(|&(i, o)| (o.start, i));
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests;
