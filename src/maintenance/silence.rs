//! Silences: maintenance windows an operator opens from the UI or the API, beside the
//! inventory's. A silence names the devices it covers by matchers (region, branch,
//! device, kind; each one set must equal the device's) and one span of real time, from
//! `starts_at` to `ends_at` or to when it was expired early.
//!
//! A silence has the same effect as a window in the inventory because it *is* one to
//! the code that judges maintenance: [`Silences::windows_for`] adds a [`Rule::Once`] in
//! UTC per covering silence to the device's own windows, and [`super::active_at`]
//! answers over the lot (touching or overlapping spans merge, as windows do).
//!
//! Nothing here reads a clock or knows the appliance's types: the callers pass the
//! instant and the device's names.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Rule, Scope, Window};

/// Which devices a silence covers: each matcher set must equal the device's; at least
/// one is set (an empty set would silence the whole fleet by accident).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The names of one device that matchers are compared with.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub region: &'a str,
    pub branch: &'a str,
    pub device: &'a str,
    pub kind: &'a str,
}

impl Matchers {
    pub fn is_empty(&self) -> bool {
        self.pairs().next().is_none()
    }

    pub fn covers(&self, d: Names<'_>) -> bool {
        let ok = |m: &Option<String>, v: &str| m.as_deref().is_none_or(|m| m == v);
        ok(&self.region, d.region)
            && ok(&self.branch, d.branch)
            && ok(&self.device, d.device)
            && ok(&self.kind, d.kind)
    }

    /// The matchers set, as `(name, value)`, in a fixed order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("region", &self.region),
            ("branch", &self.branch),
            ("device", &self.device),
            ("kind", &self.kind),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }

    /// `region=west device=atm-1`, for the audit log and the logs.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self.pairs().map(|(k, v)| format!("{k}={v}")).collect();
        parts.join(" ")
    }
}

/// One silence, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Random, made by the appliance (the silence exists before the database has seen
    /// it: it may be away).
    pub id: String,
    #[serde(flatten)]
    pub matchers: Matchers,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_by: Option<String>,
}

/// Where a silence stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pending,
    Active,
    Ended,
}

impl Silence {
    /// When it stops covering: its planned end, or the moment it was expired early.
    pub fn end(&self) -> DateTime<Utc> {
        self.expired_at
            .map_or(self.ends_at, |e| e.min(self.ends_at))
    }

    pub fn phase(&self, t: DateTime<Utc>) -> Phase {
        if t >= self.end() {
            Phase::Ended
        } else if t < self.starts_at {
            Phase::Pending
        } else {
            Phase::Active
        }
    }

    /// The silence as a window: one span in UTC. Empty (ends at its start) once
    /// expired before it started.
    pub fn window(&self) -> Window {
        let end = self.end().max(self.starts_at);
        Window {
            scope: Scope::Silence {
                id: Arc::from(self.id.as_str()),
            },
            ordinal: 0,
            rule: Rule::Once {
                start: self.starts_at.naive_utc(),
                end: end.naive_utc(),
            },
            zone: Some(chrono_tz::UTC),
            reason: Some(Arc::from(self.comment.as_str())),
        }
    }
}

/// The silences that have not ended (as of the last change), in the order they were
/// made. Few: an operator's, not a machine's ([`MAX_CURRENT`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Silences {
    current: Vec<Silence>,
}

/// Silences that may be pending or active at once: every device judged against each
/// one is a comparison per silence, so they are bounded.
pub const MAX_CURRENT: usize = 1000;

/// Why a silence cannot be added or expired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{MAX_CURRENT} silences are pending or active already: expire some first")]
    TooMany,
    #[error("no silence {0}")]
    Unknown(String),
    #[error("silence {0} has ended already")]
    Ended(String),
}

impl Silences {
    /// Those of `all` not ended at `now`.
    pub fn new(all: impl IntoIterator<Item = Silence>, now: DateTime<Utc>) -> Silences {
        let mut current: Vec<Silence> = all.into_iter().filter(|s| s.end() > now).collect();
        current.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Silences { current }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.current.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.current.iter().find(|s| s.id == id)
    }

    /// These and `silence`, without those ended at `now`.
    pub fn with(&self, silence: Silence, now: DateTime<Utc>) -> Result<Silences, Refused> {
        let mut next = Silences::new(self.current.iter().cloned(), now);
        if next.current.len() >= MAX_CURRENT {
            return Err(Refused::TooMany);
        }
        next.current.push(silence);
        Ok(next)
    }

    /// These with silence `id` ended at `at` by `by`: it no longer covers from then on.
    pub fn expired(&self, id: &str, at: DateTime<Utc>, by: &str) -> Result<Silences, Refused> {
        let Some(s) = self.get(id) else {
            return Err(Refused::Unknown(id.into()));
        };
        if s.phase(at) == Phase::Ended {
            return Err(Refused::Ended(id.into()));
        }
        let mut next = self.clone();
        for s in next.current.iter_mut().filter(|s| s.id == id) {
            s.expired_at = Some(at);
            s.expired_by = Some(by.into());
        }
        next.current.retain(|s| s.end() > at);
        Ok(next)
    }

    /// The silences that cover the device named `d`.
    pub fn covering<'a>(&'a self, d: Names<'a>) -> impl Iterator<Item = &'a Silence> + 'a {
        self.current.iter().filter(move |s| s.matchers.covers(d))
    }

    /// The windows a device is judged by: its own (`base`) and one per silence that
    /// covers it. Borrowed when none does, the usual case.
    pub fn windows_for<'a>(&self, base: &'a [Window], d: Names<'_>) -> Cow<'a, [Window]> {
        let mut covering = self.covering(d).peekable();
        if covering.peek().is_none() {
            return Cow::Borrowed(base);
        }
        let mut all = base.to_vec();
        all.extend(covering.map(Silence::window));
        Cow::Owned(all)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    fn silence(id: &str, matchers: Matchers, from: i64, to: i64) -> Silence {
        Silence {
            id: id.into(),
            matchers,
            starts_at: t(from),
            ends_at: t(to),
            comment: "works".into(),
            created_by: "ana".into(),
            created_at: t(0),
            expired_at: None,
            expired_by: None,
        }
    }

    fn device<'a>(region: &'a str, branch: &'a str, device: &'a str, kind: &'a str) -> Names<'a> {
        Names {
            region,
            branch,
            device,
            kind,
        }
    }

    #[test]
    fn every_matcher_set_must_equal_the_devices() {
        let m = Matchers {
            region: Some("west".into()),
            kind: Some("atm".into()),
            ..Matchers::default()
        };
        assert!(m.covers(device("west", "b1", "atm-1", "atm")));
        assert!(!m.covers(device("west", "b1", "r-1", "router")));
        assert!(!m.covers(device("east", "b1", "atm-2", "atm")));
        assert!(!m.covers(device("West", "b1", "atm-3", "atm")), "exact");
        assert_eq!(m.describe(), "region=west kind=atm");
        assert!(Matchers::default().is_empty());
        assert!(!m.is_empty());
    }

    #[test]
    fn a_silence_is_a_window_of_the_devices_it_covers() {
        let s = Silences::new(
            [silence(
                "s1",
                Matchers {
                    device: Some("a".into()),
                    ..Matchers::default()
                },
                10,
                70,
            )],
            t(0),
        );
        let a = device("r", "b", "a", "router");
        let windows = s.windows_for(&[], a);
        assert_eq!(windows.len(), 1);
        assert_eq!(
            super::super::active_at(&windows, t(9), chrono_tz::UTC),
            None
        );
        assert_eq!(
            super::super::active_at(&windows, t(10), chrono_tz::UTC),
            Some(t(70)),
            "starts inclusive"
        );
        assert_eq!(
            super::super::active_at(&windows, t(70), chrono_tz::UTC),
            None
        );
        let other = device("r", "b", "b", "router");
        assert!(matches!(s.windows_for(&[], other), Cow::Borrowed(_)));
    }

    #[test]
    fn touching_silences_merge_with_the_inventorys_windows() {
        let base = [silence("inv", Matchers::default(), 0, 30).window()];
        let s = Silences::new(
            [silence(
                "s1",
                Matchers {
                    region: Some("r".into()),
                    ..Matchers::default()
                },
                30,
                90,
            )],
            t(0),
        );
        let windows = s.windows_for(&base, device("r", "b", "a", "router"));
        assert_eq!(
            super::super::active_at(&windows, t(5), chrono_tz::UTC),
            Some(t(90)),
            "one unbroken stretch"
        );
    }

    #[test]
    fn expiring_early_ends_the_cover_then_and_drops_it() {
        let m = Matchers {
            kind: Some("atm".into()),
            ..Matchers::default()
        };
        let s = Silences::new([silence("s1", m, 0, 120)], t(0));
        let atm = device("r", "b", "atm-1", "atm");
        assert_eq!(s.covering(atm).count(), 1);
        let ended = s.expired("s1", t(30), "ben").unwrap();
        assert!(ended.is_empty(), "an ended silence is no longer current");
        assert_eq!(
            s.expired("s2", t(30), "ben"),
            Err(Refused::Unknown("s2".into()))
        );
        assert_eq!(
            s.expired("s1", t(120), "ben"),
            Err(Refused::Ended("s1".into()))
        );
        // Expired before it started: a window that covers no instant.
        let mut pending = silence("p", Matchers::default(), 60, 120);
        pending.expired_at = Some(t(10));
        assert_eq!(pending.phase(t(10)), Phase::Ended);
        assert_eq!(
            super::super::active_at(&[pending.window()], t(60), chrono_tz::UTC),
            None
        );
    }

    #[test]
    fn phases_follow_the_span() {
        let s = silence("s", Matchers::default(), 10, 20);
        assert_eq!(s.phase(t(9)), Phase::Pending);
        assert_eq!(s.phase(t(10)), Phase::Active);
        assert_eq!(s.phase(t(20)), Phase::Ended);
    }

    #[test]
    fn current_silences_are_bounded() {
        let mut s = Silences::default();
        for i in 0..MAX_CURRENT {
            s = s
                .with(silence(&i.to_string(), Matchers::default(), 0, 60), t(0))
                .unwrap();
        }
        let more = silence("x", Matchers::default(), 0, 60);
        assert_eq!(s.with(more.clone(), t(0)), Err(Refused::TooMany));
        // Ended ones make room.
        assert!(s.with(more, t(60)).is_ok());
    }

    #[test]
    fn silences_round_trip_through_json() {
        let mut s = silence(
            "s1",
            Matchers {
                branch: Some("თბილისი".into()),
                ..Matchers::default()
            },
            0,
            60,
        );
        s.expired_at = Some(t(5));
        s.expired_by = Some("ben".into());
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""branch":"თბილისი""#), "{text}");
        assert!(
            !text.contains("region"),
            "unset matchers are left out: {text}"
        );
        assert_eq!(serde_json::from_str::<Silence>(&text).unwrap(), s);
    }
}
