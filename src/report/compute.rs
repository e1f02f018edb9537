//! One device's figures for a period, exactly: a sweep over the instants where anything
//! changes (a transition, a span of presence, a run, a maintenance span), each stretch
//! between two of them put whole into one category.
//!
//! The rules, in order, for each instant `t` of the period:
//! 1. the device was not in the inventory at `t`, or the appliance was not running:
//!    **unmonitored**;
//! 2. a maintenance window or a silence covered the device: **maintenance**;
//! 3. else by the status the device had at `t`: the last transition at or before `t`
//!    since the device (last) entered the inventory — a device added (back) is `unknown`
//!    until its first transition. `up`, `down`, `unreachable` count as such; `unknown`
//!    (not decided yet) is **unmonitored**.
//!
//! A change to `down` or `unreachable` from any other status counts from the outage's
//! `down_since` (the first probe that failed), not from when the state machine decided
//! it (`down_after` probes later): the device was not answering since then. Never from
//! before the previous transition or the device's entry into the inventory, which
//! bound what that status can be said of.
//!
//! An **outage** is a stretch in which the device is in the inventory and its status is
//! `down` or `unreachable` (one outage across both, as the store keeps one `down_since`);
//! it ends with any other status or the device's removal. A restart of the appliance or
//! a maintenance window in the middle does not end it. Its duration is the time of it
//! the report counts (rule 3: down or unreachable), so that the durations of a device's
//! outages add up to its downtime plus unreachable time; an outage of which nothing
//! counts (all in maintenance, say) is not one of the report's.

use chrono::{DateTime, Utc};

use super::{Change, DeviceHistory, Outage, Span, Totals};
use crate::state::Status;

/// What happened in `[from, to)`. `runs` are the appliance's, sorted and merged;
/// `history`'s presence, transitions and maintenance are sorted (maintenance merged).
pub fn device(from: DateTime<Utc>, to: DateTime<Utc>, runs: &[Span], h: &DeviceHistory) -> Figures {
    let mut figures = Figures::default();
    if from >= to {
        return figures;
    }
    let transitions = effective(&h.transitions, &h.presence);
    let mut cuts: Vec<DateTime<Utc>> = Vec::with_capacity(
        2 + transitions.len() + 2 * (h.presence.len() + runs.len() + h.maintenance.len()),
    );
    cuts.push(from);
    cuts.push(to);
    let inside = |t: DateTime<Utc>| t > from && t < to;
    cuts.extend(transitions.iter().map(|c| c.at).filter(|&t| inside(t)));
    for s in h.presence.iter().chain(runs).chain(&h.maintenance) {
        cuts.extend([s.start, s.end].into_iter().filter(|&t| inside(t)));
    }
    cuts.sort_unstable();
    cuts.dedup();

    let mut presence = Cursor::new(&h.presence);
    let mut running = Cursor::new(runs);
    let mut maintenance = Cursor::new(&h.maintenance);
    // Index of the first transition after the current instant.
    let mut next = 0;
    let mut open: Option<Outage> = None;
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let len = (b - a).num_microseconds().unwrap_or(i64::MAX);
        while next < transitions.len() && transitions[next].at <= a {
            next += 1;
        }
        let span = presence.at(a);
        // The last transition since the device entered the inventory, if any.
        let last: Option<&Change> = next
            .checked_sub(1)
            .map(|i| &transitions[i])
            .filter(|c| span.is_some_and(|s| c.at >= s.start));
        let status = last.map_or(Status::Unknown, |c| c.to);
        let outage_status = span.is_some() && matches!(status, Status::Down | Status::Unreachable);
        // The outage's own stretch: it starts and ends by status alone.
        match (&mut open, outage_status) {
            (None, true) => {
                let c = last.expect("an outage status comes from a transition");
                open = Some(Outage {
                    started_at: c.down_since.unwrap_or(c.at).min(c.at),
                    ended_at: None,
                    counted: 0,
                });
            }
            (Some(_), false) => {
                let mut o = open.take().expect("matched Some");
                o.ended_at = Some(a);
                figures.close(o);
            }
            _ => {}
        }
        let monitored = span.is_some() && running.at(a).is_some();
        let totals = &mut figures.totals;
        if !monitored {
            totals.unmonitored += len;
        } else if maintenance.at(a).is_some() {
            totals.maintenance += len;
        } else {
            match status {
                Status::Up => totals.up += len,
                Status::Down => totals.down += len,
                Status::Unreachable => totals.unreachable += len,
                Status::Unknown => totals.unmonitored += len,
            }
            if let Some(o) = &mut open
                && matches!(status, Status::Down | Status::Unreachable)
            {
                o.counted += len;
            }
        }
    }
    if let Some(o) = open {
        // Going on at the period's end: counted up to it (a report up to now counts the
        // open outage up to now).
        figures.close(o);
    }
    figures
}

/// The transitions with each outage's start moved back to its `down_since`, bounded
/// by the previous transition and the start of the device's stay in the inventory.
fn effective(transitions: &[Change], presence: &[Span]) -> Vec<Change> {
    let outage = |s: Status| matches!(s, Status::Down | Status::Unreachable);
    let mut out: Vec<Change> = Vec::with_capacity(transitions.len());
    for (i, c) in transitions.iter().enumerate() {
        let mut c = *c;
        let before = i.checked_sub(1).map(|j| transitions[j]);
        let was_out = before.is_some_and(|b| outage(b.to))
            && presence
                .iter()
                .any(|s| s.start <= before.map_or(c.at, |b| b.at) && c.at < s.end);
        if outage(c.to)
            && !was_out
            && let Some(since) = c.down_since.filter(|d| *d < c.at)
        {
            let stay = presence
                .iter()
                .find(|s| s.start <= c.at && c.at < s.end)
                .map(|s| s.start);
            let floor = [before.map(|b| b.at), stay].into_iter().flatten().max();
            c.at = floor.map_or(since, |f| since.max(f));
        }
        out.push(c);
    }
    out
}

/// One device's figures: the totals and the outages that count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub totals: Totals,
    pub outages: Vec<Outage>,
}

impl Figures {
    fn close(&mut self, o: Outage) {
        if o.counted > 0 {
            self.totals.outages += 1;
            self.totals.longest_outage = self.totals.longest_outage.max(o.counted);
            self.outages.push(o);
        }
    }
}

/// Walks sorted, disjoint spans with instants that only grow.
struct Cursor<'a> {
    spans: &'a [Span],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(spans: &'a [Span]) -> Self {
        Cursor { spans, i: 0 }
    }

    /// The span holding `t`, if any.
    fn at(&mut self, t: DateTime<Utc>) -> Option<&'a Span> {
        while self.i < self.spans.len() && self.spans[self.i].end <= t {
            self.i += 1;
        }
        self.spans.get(self.i).filter(|s| s.start <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn span(a: i64, b: i64) -> Span {
        Span::new(t(a), t(b))
    }

    fn change(at: i64, to: Status, since: Option<i64>) -> Change {
        Change {
            at: t(at),
            to,
            down_since: since.map(t),
        }
    }

    const S: i64 = 1_000_000;

    #[test]
    fn an_outage_across_a_restart_is_one_outage_and_the_gap_is_unmonitored() {
        let h = DeviceHistory {
            presence: vec![span(0, 1000)],
            transitions: vec![
                change(0, Status::Up, None),
                // Decided at 110, not answering since 100.
                change(110, Status::Down, Some(100)),
                change(400, Status::Up, None),
            ],
            maintenance: vec![span(300, 350)],
        };
        // The appliance away from 200 to 250.
        let runs = [span(0, 200), span(250, 1000)];
        let f = device(t(0), t(1000), &runs, &h);
        let tt = f.totals;
        assert_eq!(tt.unmonitored, 50 * S);
        assert_eq!(tt.maintenance, 50 * S);
        // 100..400 less the gap and the window.
        assert_eq!(tt.down, 200 * S);
        assert_eq!(tt.up, 700 * S);
        assert_eq!(tt.outages, 1);
        assert_eq!(f.outages[0].started_at, t(100));
        assert_eq!(f.outages[0].ended_at, Some(t(400)));
        assert_eq!(tt.mttr(), Some(200 * S));
        assert_eq!(tt.mtbf(), Some(700 * S));
    }

    #[test]
    fn a_device_added_back_is_unknown_until_decided_and_absent_between() {
        let h = DeviceHistory {
            presence: vec![span(0, 100), span(200, 1000)],
            transitions: vec![change(0, Status::Down, None), change(300, Status::Up, None)],
            maintenance: vec![],
        };
        let f = device(t(0), t(1000), &[span(0, 1000)], &h);
        // Down 0..100 (removal ends it), absent 100..200, unknown 200..300, up after.
        assert_eq!(f.totals.down, 100 * S);
        assert_eq!(f.totals.unmonitored, 200 * S);
        assert_eq!(f.totals.up, 700 * S);
        assert_eq!(f.outages.len(), 1);
        assert_eq!(f.outages[0].ended_at, Some(t(100)));
        assert_eq!(f.totals.availability(), Some(87.5));
    }

    #[test]
    fn an_outage_wholly_in_maintenance_is_not_one_of_the_reports() {
        let h = DeviceHistory {
            presence: vec![span(0, 1000)],
            transitions: vec![
                change(0, Status::Up, None),
                change(100, Status::Down, None),
                change(150, Status::Up, None),
            ],
            maintenance: vec![span(90, 160)],
        };
        let f = device(t(0), t(1000), &[span(0, 1000)], &h);
        assert_eq!((f.totals.outages, f.totals.down), (0, 0));
        assert_eq!(f.totals.availability(), Some(100.0));
    }
}
