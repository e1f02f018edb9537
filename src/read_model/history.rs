//! The last hour of each device's RTT and loss, for the device page's chart.
//!
//! Bounded by construction: one [`Point`] (4 bytes) per device per minute for
//! [`MINUTES`] minutes — 24 MB for 100,000 devices — in one flat ring shared by all
//! devices. A sampler reads each device's counters every [`SAMPLE_EVERY`] and folds
//! the deltas into the current minute; raw samples go to VictoriaMetrics, not here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::state::{DeviceRuntime, State};

pub const MINUTES: usize = 60;
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// One device-minute. `rtt` in units of 0.1 ms (saturating); `loss` in percent; 255 for
/// "no data" in either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub rtt: u16,
    pub loss: u8,
    _pad: u8,
}

impl Point {
    pub const NONE: Point = Point {
        rtt: u16::MAX,
        loss: u8::MAX,
        _pad: 0,
    };

    pub fn rtt_ms(&self) -> Option<f64> {
        (self.rtt != u16::MAX).then(|| f64::from(self.rtt) / 10.0)
    }

    pub fn loss_percent(&self) -> Option<u8> {
        (self.loss != u8::MAX).then_some(self.loss)
    }
}

/// Per-device accumulator of the minute in progress.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    requests: u64,
    replies: u64,
    /// Counter values at the last sample, to take deltas.
    seen_requests: u64,
    seen_replies: u64,
    rtt_sum_ms: f64,
    rtt_n: u32,
}

struct Ring {
    /// Epoch minute of `current`.
    minute: i64,
    devices: Vec<Arc<DeviceRuntime>>,
    names: HashMap<Arc<str>, usize>,
    acc: Vec<Acc>,
    /// `devices.len() * MINUTES`; slot of minute `m` for device `i` is `i*MINUTES + m % MINUTES`.
    points: Vec<Point>,
    /// Passes over the ring that closed minutes, for tests: bounded whatever the clock does.
    closed: u64,
}

#[derive(Default)]
pub struct History {
    ring: Mutex<Option<Ring>>,
}

impl History {
    /// Starts the sampler on `state`.
    pub fn start(state: &State) -> Arc<History> {
        let history = Arc::new(History::default());
        let h = history.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let state = state.clone();
                let h = h.clone();
                // 100k mutex reads: off the async workers.
                let _ = tokio::task::spawn_blocking(move || h.sample(&state)).await;
            }
        });
        history
    }

    /// Folds every device's counters into the current minute.
    pub fn sample(&self, state: &State) {
        let snapshot = state.snapshot();
        let now = state.clock().now();
        let minute = now.timestamp().div_euclid(60);
        let mut guard = self.ring.lock();
        let same_devices = guard.as_ref().is_some_and(|r| {
            r.devices.len() == snapshot.runtime.len()
                && r.devices
                    .iter()
                    .zip(snapshot.runtime.iter())
                    .all(|(a, b)| Arc::ptr_eq(a, b))
        });
        if !same_devices {
            *guard = Some(remap(
                guard.take(),
                &snapshot.inventory.devices,
                &snapshot.runtime,
                minute,
            ));
        }
        let ring = guard.as_mut().expect("built above");
        ring.advance_to(minute);
        for (i, rt) in ring.devices.iter().enumerate() {
            let m = rt.measurements();
            let a = &mut ring.acc[i];
            let new_requests = m.requests.saturating_sub(a.seen_requests);
            if new_requests > 0 {
                a.requests += new_requests;
                a.replies += m.replies.saturating_sub(a.seen_replies);
                if let Some(rtt) = m.last_rtt {
                    a.rtt_sum_ms += rtt.as_secs_f64() * 1000.0;
                    a.rtt_n += 1;
                }
            }
            a.seen_requests = m.requests;
            a.seen_replies = m.replies;
        }
    }

    /// The last hour of `device`, oldest first, each with its minute's start; None if
    /// the device is unknown to the sampler.
    pub fn series(&self, device: &str) -> Option<Vec<(DateTime<Utc>, Point)>> {
        let guard = self.ring.lock();
        let ring = guard.as_ref()?;
        let i = *ring.names.get(device)?;
        let first = ring.minute - MINUTES as i64 + 1;
        Some(
            (first..=ring.minute)
                .map(|m| {
                    let at = DateTime::from_timestamp(m * 60, 0).unwrap_or_default();
                    let p = if m == ring.minute {
                        ring.acc[i].point()
                    } else {
                        ring.points[slot(i, m)]
                    };
                    (at, p)
                })
                .collect(),
        )
    }
}

fn slot(i: usize, minute: i64) -> usize {
    i * MINUTES + minute.rem_euclid(MINUTES as i64) as usize
}

impl Acc {
    fn point(&self) -> Point {
        if self.requests == 0 {
            return Point::NONE;
        }
        let loss = 100 - (self.replies.min(self.requests) * 100 / self.requests);
        let rtt = (self.rtt_n > 0).then(|| {
            (self.rtt_sum_ms / f64::from(self.rtt_n) * 10.0)
                .round()
                .min(65_534.0) as u16
        });
        Point {
            rtt: rtt.unwrap_or(u16::MAX),
            loss: loss as u8,
            _pad: 0,
        }
    }
}

impl Ring {
    /// Closes every minute up to `minute`. A clock that jumped forward by more than the
    /// window leaves nothing of the hour to keep: the ring is cleared once instead of
    /// closing each missed minute under the lock (a year is 525,600 of them). A clock
    /// that jumped back keeps the ring where it is until it catches up.
    fn advance_to(&mut self, minute: i64) {
        if minute - self.minute > MINUTES as i64 {
            self.points.fill(Point::NONE);
            for a in &mut self.acc {
                *a = Acc {
                    seen_requests: a.seen_requests,
                    seen_replies: a.seen_replies,
                    ..Acc::default()
                };
            }
            self.minute = minute;
            self.closed += 1;
            return;
        }
        while self.minute < minute {
            self.close_minute();
        }
    }

    fn close_minute(&mut self) {
        let m = self.minute;
        for i in 0..self.devices.len() {
            self.points[slot(i, m)] = self.acc[i].point();
            let a = &mut self.acc[i];
            *a = Acc {
                seen_requests: a.seen_requests,
                seen_replies: a.seen_replies,
                ..Acc::default()
            };
        }
        self.minute += 1;
        self.closed += 1;
        // The slot the new minute will close into still holds the minute an hour ago.
        for i in 0..self.devices.len() {
            self.points[slot(i, self.minute)] = Point::NONE;
        }
    }
}

/// A ring for a new device list, keeping the history of devices whose runtime is kept.
fn remap(
    old: Option<Ring>,
    devices: &[Arc<crate::config::Device>],
    runtime: &[Arc<DeviceRuntime>],
    minute: i64,
) -> Ring {
    let n = runtime.len();
    let mut ring = Ring {
        minute: old.as_ref().map_or(minute, |r| r.minute),
        devices: runtime.to_vec(),
        names: devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), i))
            .collect(),
        acc: vec![Acc::default(); n],
        points: vec![Point::NONE; n * MINUTES],
        closed: old.as_ref().map_or(0, |r| r.closed),
    };
    if let Some(old) = old {
        for (i, d) in devices.iter().enumerate() {
            if let Some(&j) = old.names.get(&d.name)
                && Arc::ptr_eq(&old.devices[j], &runtime[i])
            {
                ring.acc[i] = old.acc[j];
                ring.points[i * MINUTES..(i + 1) * MINUTES]
                    .copy_from_slice(&old.points[j * MINUTES..(j + 1) * MINUTES]);
            }
        }
    }
    for (i, rt) in runtime.iter().enumerate() {
        if ring.acc[i].seen_requests == 0 {
            // Start deltas from now, not from the device's whole life.
            let m = rt.measurements();
            ring.acc[i].seen_requests = m.requests;
            ring.acc[i].seen_replies = m.replies;
        }
    }
    ring
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use parking_lot::Mutex as PlMutex;

    use super::*;
    use crate::config::load::inventory_of;
    use crate::state::Clock;

    /// A wall clock the test sets.
    struct Settable(PlMutex<DateTime<Utc>>);

    impl Clock for Settable {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock()
        }
    }

    #[test]
    fn a_clock_jump_clears_the_hour_instead_of_closing_every_missed_minute() {
        let start = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let clock = Arc::new(Settable(PlMutex::new(start)));
        let state = State::new(clock.clone());
        state.replace_inventory(
            Arc::new(inventory_of("regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n          - { name: d, address: 127.68.0.1, kind: atm }\n")),
            |_| None,
        );
        let history = History::default();
        history.sample(&state);
        *clock.0.lock() = start + chrono::Duration::minutes(3);
        history.sample(&state);
        let closed = |h: &History| h.ring.lock().as_ref().unwrap().closed;
        assert_eq!(
            closed(&history),
            3,
            "a minute at a time while the clock runs"
        );

        // The NTP daemon steps the clock a year ahead.
        let later = start + chrono::Duration::days(365);
        *clock.0.lock() = later;
        history.sample(&state);
        assert_eq!(closed(&history), 4, "one pass, not 525,600");
        let series = history.series("d").unwrap();
        assert_eq!(series.len(), MINUTES);
        assert_eq!(
            series.last().unwrap().0.timestamp(),
            later.timestamp() / 60 * 60
        );
        assert!(
            series.iter().all(|(_, p)| *p == Point::NONE),
            "nothing of the old hour"
        );
    }
}
