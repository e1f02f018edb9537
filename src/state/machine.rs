//! The per-device status machine: pure logic, no I/O, no clocks of its own.
//!
//! `unknown` → `up` after `up_after` consecutive successful probes, → `down` after
//! `down_after` consecutive failed ones; `down_since` is the start of the first failed
//! probe of the outage, so it says when the outage began, not when we became sure.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::ProbeSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not decided yet since start or since the device appeared.
    Unknown,
    Up,
    Down,
    /// Not answering while every parent it depends on is down or unreachable: the outage
    /// is the parent's, so no alert of its own is opened.
    Unreachable,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Up,
        Status::Down,
        Status::Unknown,
        Status::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Up => "up",
            Status::Down => "down",
            Status::Unreachable => "unreachable",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "unknown" => Some(Status::Unknown),
            "up" => Some(Status::Up),
            "down" => Some(Status::Down),
            "unreachable" => Some(Status::Unreachable),
            _ => None,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decided change of status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: Status,
    pub to: Status,
    /// When the deciding probe started.
    pub at: DateTime<Utc>,
    /// Set when `to` is `down` or `unreachable`: the start of the first failed probe of
    /// this outage.
    pub down_since: Option<DateTime<Utc>>,
    /// Set when `from` is `down` or `unreachable`: when that outage began.
    pub was_down_since: Option<DateTime<Utc>>,
}

/// Status plus the streaks that lead to the next decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    status: Status,
    down_since: Option<DateTime<Utc>>,
    failures: u32,
    successes: u32,
    first_failure_at: Option<DateTime<Utc>>,
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

impl Machine {
    pub fn new() -> Self {
        Self {
            status: Status::Unknown,
            down_since: None,
            failures: 0,
            successes: 0,
            first_failure_at: None,
        }
    }

    /// A machine restored from the store: a device that was down stays down, with its
    /// original `down_since`, until probes prove otherwise.
    pub fn restored(status: Status, down_since: Option<DateTime<Utc>>) -> Self {
        let down_since = if matches!(status, Status::Down | Status::Unreachable) {
            down_since
        } else {
            None
        };
        Self {
            status,
            down_since,
            ..Self::new()
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn down_since(&self) -> Option<DateTime<Utc>> {
        self.down_since
    }

    /// True while a streak is building toward a different status: the scheduler then
    /// probes again after `retry_interval` instead of a full interval.
    pub fn is_confirming(&self) -> bool {
        (self.failures > 0 && self.status != Status::Down)
            || (self.successes > 0 && self.status != Status::Up)
    }

    /// Feeds one probe result (`started` is when the probe began).
    pub fn observe(
        &mut self,
        success: bool,
        started: DateTime<Utc>,
        settings: &ProbeSettings,
    ) -> Option<Change> {
        if success {
            self.failures = 0;
            self.first_failure_at = None;
            self.successes = self.successes.saturating_add(1);
            if self.status != Status::Up && self.successes >= settings.up_after {
                return Some(self.change_to(Status::Up, started));
            }
        } else {
            self.successes = 0;
            if self.failures == 0 {
                self.first_failure_at = Some(started);
            }
            self.failures = self.failures.saturating_add(1);
            if self.status != Status::Down && self.failures >= settings.down_after {
                return Some(self.change_to(Status::Down, started));
            }
        }
        None
    }

    fn change_to(&mut self, to: Status, at: DateTime<Utc>) -> Change {
        let from = self.status;
        let was_down_since = self.down_since;
        self.status = to;
        let outage = |s| matches!(s, Status::Down | Status::Unreachable);
        self.down_since = if outage(from) && outage(to) && self.down_since.is_some() {
            // Unreachable then down (or the reverse) is one outage: it keeps its start.
            self.down_since
        } else if outage(to) {
            self.first_failure_at.or(Some(at))
        } else {
            None
        };
        Change {
            from,
            to,
            at,
            down_since: self.down_since,
            was_down_since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn settings(down_after: u32, up_after: u32) -> ProbeSettings {
        ProbeSettings {
            down_after,
            up_after,
            ..ProbeSettings::default()
        }
    }

    #[test]
    fn unknown_goes_up_after_up_after_successes() {
        let s = settings(2, 2);
        let mut m = Machine::new();
        assert_eq!(m.observe(true, t(0), &s), None);
        assert!(m.is_confirming());
        let c = m.observe(true, t(10), &s).unwrap();
        assert_eq!((c.from, c.to, c.at), (Status::Unknown, Status::Up, t(10)));
        assert!(!m.is_confirming());
    }

    #[test]
    fn down_since_is_the_first_failed_probe() {
        let s = settings(3, 1);
        let mut m = Machine::new();
        m.observe(true, t(0), &s).unwrap();
        assert_eq!(m.observe(false, t(10), &s), None);
        assert_eq!(m.observe(false, t(11), &s), None);
        let c = m.observe(false, t(12), &s).unwrap();
        assert_eq!(
            (c.from, c.to, c.down_since),
            (Status::Up, Status::Down, Some(t(10)))
        );
        assert_eq!(m.down_since(), Some(t(10)));
    }

    #[test]
    fn a_success_breaks_the_failure_streak() {
        let s = settings(2, 1);
        let mut m = Machine::restored(Status::Up, None);
        assert_eq!(m.observe(false, t(0), &s), None);
        assert_eq!(m.observe(true, t(1), &s), None);
        assert_eq!(m.observe(false, t(10), &s), None);
        let c = m.observe(false, t(11), &s).unwrap();
        assert_eq!(c.down_since, Some(t(10)), "the streak restarted at t(10)");
    }

    #[test]
    fn recovery_clears_down_since_and_reports_how_long() {
        let s = settings(1, 1);
        let mut m = Machine::restored(Status::Down, Some(t(-100)));
        let c = m.observe(true, t(0), &s).unwrap();
        assert_eq!(
            (c.to, c.down_since, c.was_down_since),
            (Status::Up, None, Some(t(-100)))
        );
        assert_eq!(m.down_since(), None);
    }

    #[test]
    fn flaps_produce_one_change_each_way() {
        let s = settings(1, 1);
        let mut m = Machine::new();
        let statuses: Vec<_> = [true, false, true, false, false, true]
            .iter()
            .enumerate()
            .filter_map(|(i, ok)| m.observe(*ok, t(i as i64), &s).map(|c| c.to))
            .collect();
        use Status::*;
        assert_eq!(statuses, vec![Up, Down, Up, Down, Up]);
    }

    #[test]
    fn restored_unreachable_keeps_down_since_and_reports_it_on_recovery() {
        let s = settings(1, 1);
        let mut m = Machine::restored(Status::Unreachable, Some(t(-50)));
        assert_eq!(m.down_since(), Some(t(-50)));
        let c = m.observe(true, t(0), &s).unwrap();
        assert_eq!(
            (c.from, c.to, c.down_since, c.was_down_since),
            (Status::Unreachable, Status::Up, None, Some(t(-50)))
        );
    }

    #[test]
    fn restored_up_ignores_a_stale_down_since() {
        let m = Machine::restored(Status::Up, Some(t(0)));
        assert_eq!(m.down_since(), None);
    }
}
