//! The per-device status machine: pure logic, no I/O, no clocks of its own.
//!
//! `unknown` → `up` after `up_after` consecutive successful probes, → `down` after
//! `down_after` consecutive failed ones; `down_since` is the start of the first failed
//! probe of the outage, so it says when the outage began, not when we became sure.
//!
//! A device with parents is judged with them when its failures reach `down_after`
//! ([`super::depend`]): `unreachable` when every parent is down or unreachable, `down`
//! when one answers, and no verdict yet while a parent's word is stale (the device is
//! then *deciding*, and probed again until the parents are heard or the wait ends). An
//! `unreachable` device that goes on failing while a parent answers becomes `down`,
//! keeping its `down_since`; one already `down` stays `down` whatever its parents do.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::depend::{self, ParentView, Parents};
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

/// What the device's parents look like as one of its probes is fed in: their views and
/// how long the device may wait for a stale one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub parents: &'a [ParentView],
    pub wait: Duration,
}

/// `down` and `unreachable` both mean "not answering": `down_since` is kept for both.
fn is_out(status: Status) -> bool {
    matches!(status, Status::Down | Status::Unreachable)
}

/// Status plus the streaks that lead to the next decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    status: Status,
    down_since: Option<DateTime<Utc>>,
    failures: u32,
    successes: u32,
    first_failure_at: Option<DateTime<Utc>>,
    /// When the last probe fed in started: what a child compares its failure with.
    last_probe_at: Option<DateTime<Utc>>,
    /// Since when the failure streak, long enough for a verdict, waits for parents.
    deciding_since: Option<DateTime<Utc>>,
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
            last_probe_at: None,
            deciding_since: None,
        }
    }

    /// A machine restored from the store: a device that was down or unreachable stays
    /// so, with its original `down_since`, until probes prove otherwise.
    pub fn restored(status: Status, down_since: Option<DateTime<Utc>>) -> Self {
        let down_since = if is_out(status) { down_since } else { None };
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

    /// True while a streak is building toward a different status (a verdict waiting
    /// for parents included): the scheduler then probes again after `retry_interval`
    /// instead of a full interval.
    pub fn is_confirming(&self) -> bool {
        (self.failures > 0 && !is_out(self.status))
            || (self.successes > 0 && self.status != Status::Up)
    }

    /// True while failures are building toward a verdict the device does not have yet.
    pub fn is_failing(&self) -> bool {
        self.failures > 0 && !is_out(self.status)
    }

    /// True while the device's failures call for a verdict that waits for its parents.
    pub fn is_deciding(&self) -> bool {
        self.deciding_since.is_some()
    }

    /// The start of the first failed probe of the current failure streak.
    pub fn first_failure_at(&self) -> Option<DateTime<Utc>> {
        self.first_failure_at
    }

    /// How this device looks to a child of its.
    pub fn as_parent(&self) -> ParentView {
        ParentView {
            status: self.status,
            last_probe_at: self.last_probe_at,
            failing: self.is_failing(),
        }
    }

    /// Feeds one probe result (`started` is when the probe began) of a device without
    /// parents.
    pub fn observe(
        &mut self,
        success: bool,
        started: DateTime<Utc>,
        settings: &ProbeSettings,
    ) -> Option<Change> {
        self.observe_with(success, started, settings, Context::default())
    }

    /// Feeds one probe result, judging a failure with the device's parents as `context`
    /// has them.
    pub fn observe_with(
        &mut self,
        success: bool,
        started: DateTime<Utc>,
        settings: &ProbeSettings,
        context: Context<'_>,
    ) -> Option<Change> {
        self.last_probe_at = Some(started);
        if success {
            self.failures = 0;
            self.first_failure_at = None;
            self.deciding_since = None;
            self.successes = self.successes.saturating_add(1);
            if self.status != Status::Up && self.successes >= settings.up_after {
                return Some(self.change_to(Status::Up, started));
            }
            return None;
        }
        self.successes = 0;
        if self.failures == 0 {
            self.first_failure_at = Some(started);
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < settings.down_after || self.status == Status::Down {
            return None;
        }
        if self.status == Status::Unreachable {
            // Unreachable until a parent answers (or none is left after a reload).
            let own =
                context.parents.is_empty() || depend::answered_before(context.parents, started);
            return own.then(|| self.change_to(Status::Down, started));
        }
        let since = self.first_failure_at.unwrap_or(started);
        let to = match (self.status, depend::judge(context.parents, since)) {
            (_, Parents::None | Parents::Answering) => Status::Down,
            (_, Parents::AllDown) => Status::Unreachable,
            (_, Parents::Stale) => {
                let waiting = *self.deciding_since.get_or_insert(started);
                let waited = (started - waiting).to_std().unwrap_or_default();
                if waited < context.wait {
                    return None;
                }
                // The wait is over: what is known is that a parent was not down.
                Status::Down
            }
        };
        Some(self.change_to(to, started))
    }

    fn change_to(&mut self, to: Status, at: DateTime<Utc>) -> Change {
        let from = self.status;
        let was_down_since = self.down_since;
        self.status = to;
        self.deciding_since = None;
        self.down_since = match to {
            // From unreachable to down the outage goes on: it began when it began.
            Status::Down | Status::Unreachable => self
                .down_since
                .filter(|_| is_out(from))
                .or(self.first_failure_at)
                .or(Some(at)),
            _ => None,
        };
        Change {
            from,
            to,
            at,
            down_since: self.down_since,
            was_down_since: was_down_since.filter(|_| is_out(from)),
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

    fn parent(status: Status, last: i64, failing: bool) -> ParentView {
        ParentView {
            status,
            last_probe_at: Some(t(last)),
            failing,
        }
    }

    fn with<'a>(parents: &'a [ParentView], wait_secs: u64) -> Context<'a> {
        Context {
            parents,
            wait: Duration::from_secs(wait_secs),
        }
    }

    #[test]
    fn a_failure_is_unreachable_when_every_parent_is_out_and_down_when_one_answers() {
        let s = settings(2, 1);
        let out = [
            parent(Status::Down, 0, false),
            parent(Status::Unreachable, 0, false),
        ];
        let mut m = Machine::restored(Status::Up, None);
        assert_eq!(m.observe_with(false, t(10), &s, with(&out, 5)), None);
        let c = m.observe_with(false, t(11), &s, with(&out, 5)).unwrap();
        assert_eq!(
            (c.from, c.to, c.down_since),
            (Status::Up, Status::Unreachable, Some(t(10)))
        );
        assert!(
            !m.is_confirming(),
            "probed at its interval, as a down device is"
        );
        // Still failing, still behind its parents: no change.
        assert_eq!(m.observe_with(false, t(20), &s, with(&out, 5)), None);
        // A parent answered, but this probe began before it did: it proves nothing.
        let back = [parent(Status::Up, 25, false), out[0]];
        assert_eq!(m.observe_with(false, t(24), &s, with(&back, 5)), None);
        // Asked after the parent answered, and failing: the outage is its own now.
        let c = m.observe_with(false, t(30), &s, with(&back, 5)).unwrap();
        assert_eq!(
            (c.from, c.to, c.down_since, c.was_down_since),
            (Status::Unreachable, Status::Down, Some(t(10)), Some(t(10)))
        );
        // Down stays down whatever the parents do.
        assert_eq!(m.observe_with(false, t(40), &s, with(&out, 5)), None);
        assert_eq!(m.status(), Status::Down);
    }

    #[test]
    fn a_stale_parent_defers_the_verdict_until_heard_or_the_wait_ends() {
        let s = settings(1, 1);
        let mut m = Machine::restored(Status::Up, None);
        // The parent's last probe predates the failure: wait for it.
        let old = [parent(Status::Up, 5, false)];
        assert_eq!(m.observe_with(false, t(10), &s, with(&old, 5)), None);
        assert!(m.is_deciding() && m.is_confirming());
        // Now failing itself: still wait.
        let failing = [parent(Status::Up, 11, true)];
        assert_eq!(m.observe_with(false, t(12), &s, with(&failing, 5)), None);
        // The parent's verdict is in: down, so this one is unreachable.
        let down = [parent(Status::Down, 13, false)];
        let c = m.observe_with(false, t(14), &s, with(&down, 5)).unwrap();
        assert_eq!((c.to, c.down_since), (Status::Unreachable, Some(t(10))));
        assert!(!m.is_deciding());

        // The wait is bounded: past it, a parent not known down makes it down.
        let mut m = Machine::restored(Status::Up, None);
        assert_eq!(m.observe_with(false, t(10), &s, with(&old, 5)), None);
        assert_eq!(m.observe_with(false, t(14), &s, with(&old, 5)), None);
        let c = m.observe_with(false, t(15), &s, with(&old, 5)).unwrap();
        assert_eq!((c.to, c.down_since), (Status::Down, Some(t(10))));
    }

    #[test]
    fn unreachable_is_restored_with_its_down_since_and_recovers_like_down() {
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
