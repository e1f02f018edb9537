//! The dependency rule, pure: what a device's parents say when its own failures call
//! for a verdict (Naemon's rule, without its race against probe phases).
//!
//! A device whose failures reach `down_after` is `unreachable` if it has parents and
//! every one is `down` or `unreachable`, and `down` if any answers. A parent's word
//! counts only if it is fresh: a parent that is `up` (or not yet decided) but whose
//! last probe started before the device's first failed probe, or that is itself
//! building a failure streak, is stale; the device then waits for it (the state owner
//! probes such a parent at once), up to a bound after which it is decided on what is
//! known, and what is known is that the parent was not down.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::machine::Status;
use crate::config::ProbeSettings;

/// One parent, as its status machine stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentView {
    pub status: Status,
    /// When its last probe started (None before its first).
    pub last_probe_at: Option<DateTime<Utc>>,
    /// It is building a failure streak toward a verdict of its own.
    pub failing: bool,
}

/// What the parents say of a failure that began at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parents {
    /// The device has no parents: a failure is its own.
    None,
    /// At least one parent answered since the failure began: the failure is the device's.
    Answering,
    /// Every parent is down or unreachable: the device is unreachable.
    AllDown,
    /// No parent answered since, and some have not been heard from since: wait for them.
    Stale,
}

/// How one parent stands against a failure that began at `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    Down,
    Answering,
    /// Not probed since the failure began: worth probing at once.
    Old,
    /// Building a failure streak: its own verdict is on its way.
    Failing,
}

impl ParentView {
    pub fn word(&self, since: DateTime<Utc>) -> Word {
        match self.status {
            Status::Down | Status::Unreachable => Word::Down,
            Status::Up | Status::Unknown if self.failing => Word::Failing,
            Status::Up | Status::Unknown => match self.last_probe_at {
                Some(at) if at >= since => Word::Answering,
                _ => Word::Old,
            },
        }
    }
}

/// The parents' verdict on a failure that began at `since`.
pub fn judge(parents: &[ParentView], since: DateTime<Utc>) -> Parents {
    if parents.is_empty() {
        return Parents::None;
    }
    let words = || parents.iter().map(|p| p.word(since));
    if words().any(|w| w == Word::Answering) {
        Parents::Answering
    } else if words().all(|w| w == Word::Down) {
        Parents::AllDown
    } else {
        Parents::Stale
    }
}

/// For a device already unreachable whose probe that started at `started` failed:
/// whether a parent that is up (and not failing) was last probed no later than that,
/// so it answered when this device was asked and did not. A probe of the device that
/// began before the parent's recovery proves nothing (it may have been lost on the
/// parent's dead line); the device's next probe, asked for at once, decides.
pub fn answered_before(parents: &[ParentView], started: DateTime<Utc>) -> bool {
    parents.iter().any(|p| {
        p.status == Status::Up && !p.failing && p.last_probe_at.is_some_and(|at| at <= started)
    })
}

/// How long a device waits for a stale parent: long enough for the parent to confirm
/// an outage of its own (`down_after` probes, each followed by a retry) and a second.
pub fn wait_bound(parent: &ProbeSettings) -> Duration {
    (parent.retry_interval + parent.probe_duration()) * parent.down_after + Duration::from_secs(1)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn view(status: Status, last: Option<i64>, failing: bool) -> ParentView {
        ParentView {
            status,
            last_probe_at: last.map(t),
            failing,
        }
    }

    #[test]
    fn a_parent_counts_only_once_heard_from_after_the_failure_began() {
        let since = t(10);
        assert_eq!(view(Status::Up, Some(9), false).word(since), Word::Old);
        assert_eq!(
            view(Status::Up, Some(10), false).word(since),
            Word::Answering
        );
        assert_eq!(view(Status::Up, Some(11), true).word(since), Word::Failing);
        assert_eq!(view(Status::Unknown, None, false).word(since), Word::Old);
        assert_eq!(view(Status::Down, Some(0), false).word(since), Word::Down);
        assert_eq!(
            view(Status::Unreachable, None, true).word(since),
            Word::Down
        );
    }

    #[test]
    fn one_answering_parent_makes_it_down_all_down_makes_it_unreachable() {
        let since = t(10);
        let up = view(Status::Up, Some(12), false);
        let down = view(Status::Down, Some(12), false);
        let unreachable = view(Status::Unreachable, Some(12), false);
        let old = view(Status::Up, Some(1), false);
        assert_eq!(judge(&[], since), Parents::None);
        assert_eq!(judge(&[down, up], since), Parents::Answering);
        assert_eq!(
            judge(&[old, up], since),
            Parents::Answering,
            "no need to wait"
        );
        assert_eq!(judge(&[down, unreachable], since), Parents::AllDown);
        assert_eq!(judge(&[down, old], since), Parents::Stale);
        let failing = view(Status::Up, Some(12), true);
        assert_eq!(judge(&[failing], since), Parents::Stale);
    }

    #[test]
    fn an_unreachable_device_is_down_only_once_a_parent_answered_before_its_probe() {
        let recovered = view(Status::Up, Some(20), false);
        assert!(
            answered_before(&[recovered], t(21)),
            "asked after the recovery"
        );
        assert!(answered_before(&[recovered], t(20)));
        assert!(
            !answered_before(&[recovered], t(19)),
            "asked before it: proves nothing"
        );
        let failing = view(Status::Up, Some(20), true);
        assert!(!answered_before(&[failing], t(21)));
        let down = view(Status::Down, Some(20), false);
        assert!(!answered_before(&[down], t(21)));
        assert!(answered_before(&[down, recovered], t(21)));
    }

    #[test]
    fn the_wait_covers_the_parents_own_confirmation() {
        let s = ProbeSettings {
            down_after: 2,
            retry_interval: Duration::from_secs(1),
            timeout: Duration::from_millis(300),
            packets: 1,
            ..ProbeSettings::default()
        };
        assert_eq!(
            wait_bound(&s),
            s.probe_duration() * 2 + Duration::from_secs(3)
        );
    }
}
