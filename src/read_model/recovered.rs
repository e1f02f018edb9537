//! The devices that recovered recently: device, since when it had been out, when it came
//! back and how long it was out, newest first, for the last [`WINDOW`].
//!
//! A NOC wall shows an outage while it lasts; once the device is back it would vanish
//! from every list, and the operator who looked away misses that it happened. This list
//! keeps it in sight for half an hour. It is fed from the state's transitions (an
//! outage, `down` or `unreachable`, ending in `up`), so it is exact for the process's
//! lifetime and survives page reloads; it is bounded ([`CAPACITY`]) so that a flapping
//! network cannot grow it without limit. A device that goes out again leaves the list:
//! it is then an outage again, not a recovery, and the two must not be shown at once.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::Rfc3339;
use crate::state::{Event, State, Status, Transition};

/// How long a recovery stays listed.
pub const WINDOW: TimeDelta = TimeDelta::minutes(30);
/// At most this many recoveries are kept (the oldest go first).
pub const CAPACITY: usize = 10_000;

/// One recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub device: Arc<str>,
    pub region: Arc<str>,
    pub branch: Arc<str>,
    /// When the outage began (its first failed probe).
    pub down_since: DateTime<Utc>,
    /// When the recovery was decided.
    pub recovered_at: DateTime<Utc>,
    /// The state version of the recovery.
    pub version: u64,
}

impl Recovery {
    /// How long the device was out (never negative, even across a clock step).
    pub fn duration(&self) -> TimeDelta {
        (self.recovered_at - self.down_since).max(TimeDelta::zero())
    }
}

/// A recovery as the JSON of a page or of the wall writes it (times in UTC).
#[derive(Debug, Serialize)]
pub struct RecoveryView {
    pub device: Arc<str>,
    pub region: Arc<str>,
    pub branch: Arc<str>,
    pub down_since: Rfc3339,
    pub recovered_at: Rfc3339,
    pub duration_seconds: i64,
}

impl From<&Recovery> for RecoveryView {
    fn from(r: &Recovery) -> Self {
        RecoveryView {
            device: r.device.clone(),
            region: r.region.clone(),
            branch: r.branch.clone(),
            down_since: Rfc3339(r.down_since),
            recovered_at: Rfc3339(r.recovered_at),
            duration_seconds: r.duration().num_seconds(),
        }
    }
}

/// The bounded list of recent recoveries, oldest at the front.
#[derive(Debug, Default)]
pub struct Recovered {
    ring: Mutex<VecDeque<Recovery>>,
}

fn is_out(s: Status) -> bool {
    matches!(s, Status::Down | Status::Unreachable)
}

impl Recovered {
    /// A list fed by a task reading `state`'s events until the state is dropped.
    pub fn start(state: &State) -> Arc<Recovered> {
        let recovered = Arc::new(Recovered::default());
        let r = recovered.clone();
        let mut rx = state.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(event) => r.observe(&event),
                    // Missed events cannot be recovered from the broadcast; the list may
                    // then lack a recovery, which the log says.
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "recently-recovered list missed events");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        recovered
    }

    /// Applies one state event.
    pub fn observe(&self, event: &Event) {
        match event {
            Event::Transition(t) => self.transition(t),
            // An inventory swap keeps the list: a device removed from the inventory did
            // still recover, and the wall may show it until it ages out.
            Event::InventoryReplaced { .. } | Event::Degraded(_) | Event::Uplinks(_) => {}
        }
    }

    /// Applies one transition: an outage ending in `up` is listed; a device going out
    /// again is unlisted.
    pub fn transition(&self, t: &Transition) {
        let c = &t.change;
        let mut ring = self.ring.lock();
        if is_out(c.to) {
            ring.retain(|r| *r.device != *t.device.name);
            return;
        }
        if c.to != Status::Up || !is_out(c.from) {
            return;
        }
        let Some(down_since) = c.was_down_since else {
            return;
        };
        ring.retain(|r| *r.device != *t.device.name);
        if ring.len() >= CAPACITY {
            ring.pop_front();
        }
        ring.push_back(Recovery {
            device: t.device.name.clone(),
            region: t.device.region.clone(),
            branch: t.device.branch.clone(),
            down_since,
            recovered_at: c.at,
            version: t.version,
        });
    }

    /// The recoveries of the last [`WINDOW`] before `now`, newest first (drops the
    /// older ones).
    pub fn recent(&self, now: DateTime<Utc>) -> Vec<Recovery> {
        let mut ring = self.ring.lock();
        let from = now - WINDOW;
        // Recoveries arrive in version order, and their times follow it but for clock
        // steps: drop from the front while old, then filter what is left.
        while ring.front().is_some_and(|r| r.recovered_at < from) {
            ring.pop_front();
        }
        ring.iter()
            .rev()
            .filter(|r| r.recovered_at >= from)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Change;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    /// A device named `name` (built once from a one-device inventory, then renamed).
    fn device(name: &str) -> Arc<crate::config::inventory::Device> {
        use std::sync::OnceLock;

        use crate::config::load::inventory_of;
        static ONE: OnceLock<crate::config::inventory::Device> = OnceLock::new();
        let one = ONE.get_or_init(|| {
            let text = "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n          - { name: x, address: 127.72.0.1, kind: atm }\n";
            let inventory = inventory_of(text);
            (*inventory.devices[0]).clone()
        });
        let mut d = one.clone();
        d.name = name.into();
        Arc::new(d)
    }

    fn tr(name: &str, v: u64, from: Status, to: Status, at_s: i64, was: Option<i64>) -> Transition {
        Transition {
            version: v,
            device: device(name),
            change: Change {
                from,
                to,
                at: at(at_s),
                down_since: if is_out(to) { Some(at(at_s)) } else { None },
                was_down_since: was.map(at),
            },
            maintenance_ends_at: None,
            alert_held: false,
        }
    }

    #[test]
    fn lists_recoveries_newest_first_with_duration() {
        let r = Recovered::default();
        r.transition(&tr("a", 1, Status::Down, Status::Up, 100, Some(40)));
        r.transition(&tr("b", 2, Status::Unreachable, Status::Up, 130, Some(100)));
        let got = r.recent(at(200));
        assert_eq!(got.len(), 2);
        assert_eq!(&*got[0].device, "b");
        assert_eq!(got[0].duration(), TimeDelta::seconds(30));
        assert_eq!(&*got[1].device, "a");
        assert_eq!(got[1].duration(), TimeDelta::seconds(60));
        assert_eq!(got[1].down_since, at(40));
        assert_eq!(got[1].recovered_at, at(100));
    }

    #[test]
    fn ignores_what_is_not_the_end_of_an_outage() {
        let r = Recovered::default();
        r.transition(&tr("a", 1, Status::Unknown, Status::Up, 100, None));
        r.transition(&tr("b", 2, Status::Up, Status::Down, 110, None));
        r.transition(&tr(
            "c",
            3,
            Status::Down,
            Status::Unreachable,
            120,
            Some(110),
        ));
        assert!(r.recent(at(200)).is_empty());
    }

    #[test]
    fn a_device_out_again_is_no_longer_recovered_and_lists_once() {
        let r = Recovered::default();
        r.transition(&tr("a", 1, Status::Down, Status::Up, 100, Some(40)));
        r.transition(&tr("a", 2, Status::Up, Status::Down, 150, None));
        assert!(r.recent(at(200)).is_empty());
        r.transition(&tr("a", 3, Status::Down, Status::Up, 170, Some(150)));
        let got = r.recent(at(200));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].version, 3);
    }

    #[test]
    fn ages_out_after_the_window_and_stays_bounded() {
        let r = Recovered::default();
        r.transition(&tr("a", 1, Status::Down, Status::Up, 0, Some(-10)));
        r.transition(&tr("b", 2, Status::Down, Status::Up, 60, Some(0)));
        let window = WINDOW.num_seconds();
        assert_eq!(r.recent(at(window)).len(), 2);
        let got = r.recent(at(window + 1));
        assert_eq!(got.len(), 1);
        assert_eq!(&*got[0].device, "b");

        let r = Recovered::default();
        for i in 0..CAPACITY as u64 + 5 {
            r.transition(&tr(
                &format!("d{i}"),
                i + 1,
                Status::Down,
                Status::Up,
                100,
                Some(0),
            ));
        }
        let got = r.recent(at(100));
        assert_eq!(got.len(), CAPACITY);
        assert_eq!(&*got[0].device, format!("d{}", CAPACITY + 4));
    }

    #[test]
    fn duration_is_never_negative() {
        let r = Recovered::default();
        r.transition(&tr("a", 1, Status::Down, Status::Up, 100, Some(150)));
        assert_eq!(r.recent(at(100))[0].duration(), TimeDelta::zero());
    }
}
