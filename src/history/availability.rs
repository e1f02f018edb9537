//! A device's outages and availability over a range, from the store's transitions
//! (not from samples: the store has every change of status, exactly timed).
//!
//! The range is cut into spans of one status each, clipped to it: the status at its
//! start is the last change before it, else what the first change inside it changed
//! from, else (no change at all) the device's status now. Availability is the share of
//! time `up` among the time `up`, `down` or `unreachable` (an unreachable device is out
//! of service as much as a down one); time `unknown` counts for neither.

use chrono::{DateTime, TimeDelta, Utc};

use crate::state::Status;
use crate::store::{Store, TransitionRow};

/// Transitions read per store query, and the most queries per page: 10,000 changes in
/// a range is a device that flapped all month, and the page says it is partial.
const PAGE: i64 = 500;
const PAGES: usize = 20;

/// Time in one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub status: Status,
}

impl Span {
    /// Down or unreachable: an outage band on the chart.
    pub fn is_out(&self) -> bool {
        matches!(self.status, Status::Down | Status::Unreachable)
    }
}

/// A range cut into spans, start to end, without gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub spans: Vec<Span>,
    /// The store held more changes than were read: the oldest part is a guess.
    pub partial: bool,
}

/// One change of status, oldest first, as [`Timeline::of`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub from: Status,
    pub to: Status,
}

impl Change {
    /// A stored transition; None for a status this build does not know.
    pub fn of(row: &TransitionRow) -> Option<Change> {
        Some(Change {
            at: row.at,
            from: Status::parse(&row.from)?,
            to: Status::parse(&row.to)?,
        })
    }
}

impl Timeline {
    /// The spans of `[start, end]` from `changes` (oldest first; those before `start`
    /// only decide the status at `start`) and `current`, the status at `end` when no
    /// change says otherwise.
    pub fn of(
        changes: &[Change],
        current: Status,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Timeline {
        let before = changes.iter().rev().find(|c| c.at <= start);
        let mut status = match (before, changes.iter().find(|c| c.at > start)) {
            (Some(c), _) => c.to,
            (None, Some(first)) => first.from,
            (None, None) => current,
        };
        let mut spans = Vec::new();
        let mut from = start;
        for c in changes.iter().filter(|c| c.at > start && c.at < end) {
            if c.at > from && c.to != status {
                spans.push(Span {
                    from,
                    to: c.at,
                    status,
                });
                from = c.at;
            }
            status = c.to;
        }
        if end > from {
            spans.push(Span {
                from,
                to: end,
                status,
            });
        }
        Timeline {
            start,
            end,
            spans,
            partial: false,
        }
    }

    /// The outage bands: spans down or unreachable.
    pub fn outages(&self) -> impl Iterator<Item = &Span> {
        self.spans.iter().filter(|s| s.is_out())
    }

    pub fn availability(&self) -> Availability {
        let mut a = Availability::default();
        for s in &self.spans {
            let d = s.to - s.from;
            match s.status {
                Status::Up => a.up += d,
                Status::Down | Status::Unreachable => a.out += d,
                Status::Unknown => a.unknown += d,
            }
        }
        a
    }
}

/// Time up, out (down or unreachable) and unknown in a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Availability {
    pub up: TimeDelta,
    pub out: TimeDelta,
    pub unknown: TimeDelta,
}

impl Availability {
    /// Up as a share of up and out, 0 to 100; None when the range is all unknown.
    pub fn percent(&self) -> Option<f64> {
        let known = (self.up + self.out).num_milliseconds();
        (known > 0).then(|| 100.0 * self.up.num_milliseconds() as f64 / known as f64)
    }

    /// `99.95 %`: rounded down, so that any outage reads below 100.
    pub fn text(&self) -> Option<String> {
        self.percent()
            .map(|p| format!("{:.2} %", (p * 100.0).floor() / 100.0))
    }
}

/// The device's changes that decide `[start, end]`, oldest first: every one inside it
/// and the last one before it, read newest first in pages. True as well when it stopped
/// at [`PAGES`] pages before reaching `start`.
pub async fn changes(
    db: &impl Store,
    device: &str,
    start: DateTime<Utc>,
) -> crate::store::Result<(Vec<Change>, bool)> {
    let mut rows: Vec<TransitionRow> = Vec::new();
    let mut cursor = None;
    for _ in 0..PAGES {
        let page = db.transitions_before(device, PAGE, cursor).await?;
        let done = page.len() < PAGE as usize || page.last().is_some_and(|r| r.at <= start);
        cursor = page.last().map(|r| (r.at, r.id));
        rows.extend(page);
        if done {
            rows.reverse();
            return Ok((rows.iter().filter_map(Change::of).collect(), false));
        }
    }
    rows.reverse();
    Ok((rows.iter().filter_map(Change::of).collect(), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
    }

    fn c(minute: i64, from: Status, to: Status) -> Change {
        Change {
            at: t(minute),
            from,
            to,
        }
    }

    use Status::{Down, Unknown, Unreachable, Up};

    /// Availability of minutes 0–100 (minutes 0 to 100).
    fn of(changes: &[Change], current: Status) -> (Timeline, Availability) {
        let tl = Timeline::of(changes, current, t(0), t(100));
        let a = tl.availability();
        (tl, a)
    }

    #[test]
    fn an_outage_inside_the_range_is_its_share_of_the_range() {
        let (tl, a) = of(&[c(-50, Unknown, Up), c(10, Up, Down), c(20, Down, Up)], Up);
        assert_eq!(a.up, TimeDelta::minutes(90));
        assert_eq!(a.out, TimeDelta::minutes(10));
        assert_eq!(a.percent(), Some(90.0));
        assert_eq!(a.text().as_deref(), Some("90.00 %"));
        let bands: Vec<_> = tl.outages().map(|s| (s.from, s.to)).collect();
        assert_eq!(bands, vec![(t(10), t(20))]);
        assert_eq!(tl.spans.len(), 3);
    }

    #[test]
    fn an_outage_open_at_the_start_is_clipped_to_it() {
        // Down since long before the range, up at minute 25.
        let (tl, a) = of(&[c(-500, Up, Down), c(25, Down, Up)], Up);
        assert_eq!(a.out, TimeDelta::minutes(25));
        assert_eq!(a.percent(), Some(75.0));
        assert_eq!(tl.outages().next().unwrap().from, t(0));
        // The same without the change before the range (pruned): the first change inside
        // it says what it changed from.
        let (_, b) = of(&[c(25, Down, Up)], Up);
        assert_eq!(a, b);
    }

    #[test]
    fn an_outage_open_at_the_end_runs_to_it() {
        let (tl, a) = of(&[c(-5, Unknown, Up), c(60, Up, Down)], Down);
        assert_eq!(a.out, TimeDelta::minutes(40));
        assert_eq!(a.percent(), Some(60.0));
        assert_eq!(tl.outages().last().unwrap().to, t(100));
        // Down the whole range: 0, not "no data".
        let (tl, a) = of(&[c(-5, Up, Down)], Down);
        assert_eq!(a.percent(), Some(0.0));
        assert_eq!(tl.spans.len(), 1);
    }

    #[test]
    fn no_change_at_all_is_the_current_status_throughout() {
        assert_eq!(of(&[], Up).1.percent(), Some(100.0));
        assert_eq!(of(&[], Up).1.text().as_deref(), Some("100.00 %"));
        assert_eq!(of(&[], Down).1.percent(), Some(0.0));
        // Never decided: no figure rather than a made-up one.
        assert_eq!(of(&[], Unknown).1.percent(), None);
        assert_eq!(of(&[], Unknown).1.text(), None);
    }

    #[test]
    fn unknown_time_counts_for_neither_and_unreachable_counts_as_out() {
        // Unknown 0–40 (first decided at 40), up to 70, unreachable to 80, down to 90, up.
        let changes = [
            c(40, Unknown, Up),
            c(70, Up, Unreachable),
            c(80, Unreachable, Down),
            c(90, Down, Up),
        ];
        let (tl, a) = of(&changes, Up);
        assert_eq!(a.unknown, TimeDelta::minutes(40));
        assert_eq!(a.out, TimeDelta::minutes(20));
        assert_eq!(a.up, TimeDelta::minutes(40));
        assert_eq!(a.percent(), Some(200.0 / 3.0));
        assert_eq!(a.text().as_deref(), Some("66.66 %"));
        assert_eq!(tl.outages().count(), 2);
    }

    #[test]
    fn a_short_outage_never_reads_as_100_and_changes_after_the_end_are_ignored() {
        let tl = Timeline::of(
            &[c(-1, Unknown, Up), c(50, Up, Down), c(200, Down, Up)],
            Up,
            t(0),
            t(30 * 24 * 60),
        );
        // 150 minutes out of 30 days, but not a second after the change at the end.
        let a = Timeline::of(
            &[
                Change {
                    at: t(50),
                    from: Up,
                    to: Down,
                },
                Change {
                    at: t(50) + TimeDelta::seconds(1),
                    from: Down,
                    to: Up,
                },
                c(99_999, Up, Down),
            ],
            Down,
            t(0),
            t(100),
        )
        .availability();
        assert_eq!(a.out, TimeDelta::seconds(1));
        assert_eq!(a.text().as_deref(), Some("99.98 %"));
        assert!(tl.availability().percent().unwrap() < 100.0);
    }
}
