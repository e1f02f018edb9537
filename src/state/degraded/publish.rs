//! The state's side of the `degraded` condition: each probe fed to the device's
//! [`Tracker`](super::Tracker), a raised or cleared condition published as a new
//! version ([`super::DegradedChange`]), and the decision to open or resolve its warning
//! alert in the store.
//!
//! Suppress creation, never resolution (the rule of `device_down`):
//! - **maintenance**: no `degraded` alert opens while one of the device's windows is
//!   going on. The condition is still raised and shown; the alert opens at the first
//!   probe after the window if the device is still degraded (nothing is held: the
//!   figures are measured again, not replayed);
//! - **parents**: a device whose parents are all degraded opens none: its latency is
//!   theirs (a lossy branch line is one alert, the gateway's, not one per device). As
//!   for `down`, the device waits for a parent not heard since it was raised, one probe
//!   of that parent, so that the phases of their probes decide nothing;
//! - **unreachable**: never degraded at all (only `up` devices are evaluated).
//!
//! An alert opened before any of these began stays open until the condition clears.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{AlertChange, Alerted, ClearedWhy, Degraded, DegradedChange, Verdict};
use crate::config::Device;
use crate::probe::ProbeOutcome;
use crate::state::{DeviceRuntime, Event, Snapshot, State, Status, StoreEvent};

impl State {
    /// Feeds one probe of `device` (at `index` of `snapshot`, None if a reload removed
    /// it) to its `degraded` window, `status` being its status after the probe.
    #[allow(clippy::too_many_arguments)] // one call site, each argument a plain fact
    pub(in crate::state) fn judge_degraded(
        &self,
        device: &Arc<Device>,
        runtime: &Arc<DeviceRuntime>,
        snapshot: &Snapshot,
        index: Option<usize>,
        outcome: &ProbeOutcome,
        started: DateTime<Utc>,
        status: Status,
    ) {
        let up = status == Status::Up;
        let settings = &device.probe.degraded;
        let (verdict, current, alerted) = {
            let mut guard = runtime.degraded.lock();
            // The usual case for a device without thresholds: nothing to look at.
            let tracker = match &mut *guard {
                Some(t) => t,
                None if !settings.is_enabled() => return,
                None => guard.insert(Box::default()),
            };
            if !settings.is_enabled()
                && tracker.current().is_none()
                && tracker.alerted != Alerted::Open
            {
                return;
            }
            let verdict = tracker.observe(settings, outcome, started, up);
            (verdict, tracker.current(), tracker.alerted)
        };
        let Some(i) = index else { return };
        let alert = match verdict {
            Some(Verdict::Cleared { why, .. }) if alerted != Alerted::Resolved => {
                Some(AlertChange::Resolve { why })
            }
            // What an earlier process (or address) left open is resolved once: at the
            // first clear verdict, or at once for a device that is down or unreachable.
            Some(Verdict::FirstClear { .. }) if alerted == Alerted::Unknown => {
                Some(AlertChange::Resolve {
                    why: ClearedWhy::Recovered,
                })
            }
            None if alerted == Alerted::Unknown
                && matches!(status, Status::Down | Status::Unreachable) =>
            {
                Some(AlertChange::Resolve {
                    why: ClearedWhy::NotUp,
                })
            }
            _ => match current {
                Some(d)
                    if alerted != Alerted::Open
                        && !self.suppressed(device, snapshot, i, &d, started) =>
                {
                    Some(AlertChange::Open {
                        message: d.message(device, settings),
                    })
                }
                _ => None,
            },
        };
        let condition = match verdict {
            Some(Verdict::Raised(d)) => Some((Some(d), None)),
            Some(Verdict::Cleared { why, .. }) => Some((None, Some(why))),
            _ => None,
        };
        if condition.is_some() || alert.is_some() {
            self.publish_degraded(device, runtime, started, condition, alert);
        }
    }

    /// True while the device's `degraded` alert must not open (see the module doc).
    fn suppressed(
        &self,
        device: &Device,
        snapshot: &Snapshot,
        i: usize,
        d: &Degraded,
        now: DateTime<Utc>,
    ) -> bool {
        if self.maintenance_ends(device, now).is_some() {
            return true;
        }
        let parents = snapshot.inventory.parents(i);
        if parents.is_empty() {
            return false;
        }
        let mut all_degraded = true;
        for &p in parents {
            let parent = &snapshot.runtime[p as usize];
            if parent.degraded().is_some() {
                continue;
            }
            all_degraded = false;
            let settings = &snapshot.inventory.devices[p as usize].probe;
            if !settings.degraded.is_enabled() {
                continue; // never degraded: nothing to wait for
            }
            let heard = parent
                .as_parent()
                .last_probe_at
                .is_some_and(|last| last > d.since);
            let bound = settings.interval + settings.probe_duration() + Duration::from_secs(1);
            let waited = (now - d.since).to_std().unwrap_or_default();
            if !heard && waited < bound {
                return true; // its next probe may find it degraded too
            }
        }
        all_degraded
    }

    /// Sends the alert change to the store and publishes the condition's change, under
    /// the writer lock so that both keep the order of every other change.
    fn publish_degraded(
        &self,
        device: &Arc<Device>,
        runtime: &Arc<DeviceRuntime>,
        at: DateTime<Utc>,
        condition: Option<(Option<Degraded>, Option<ClearedWhy>)>,
        alert: Option<AlertChange>,
    ) {
        let _writer = self.shared.writer.lock();
        let old = self.shared.snapshot.load_full();
        // The device may have been removed or re-addressed by a reload while it was probed.
        let Some(i) = old
            .inventory
            .index_of(&device.name)
            .filter(|&i| Arc::ptr_eq(&old.runtime[i], runtime))
        else {
            return;
        };
        let device = &old.inventory.devices[i];
        if let Some(alert) = alert {
            if let Some(tracker) = &mut *runtime.degraded.lock() {
                tracker.alerted = match alert {
                    AlertChange::Open { .. } => Alerted::Open,
                    AlertChange::Resolve { .. } => Alerted::Resolved,
                };
            }
            if let Some(sink) = &self.shared.sink {
                let _ = sink.send(StoreEvent::Degraded {
                    at,
                    device: device.clone(),
                    alert,
                });
            }
        }
        let Some((degraded, cleared)) = condition else {
            return;
        };
        let mut next = Snapshot::clone(&old);
        next.version += 1;
        let mut status = old.status[i];
        status.degraded = degraded;
        next.status.set(i, status);
        let change = DegradedChange {
            version: next.version,
            device: device.clone(),
            at,
            degraded,
            cleared,
        };
        self.shared.snapshot.store(Arc::new(next));
        log(&change);
        let _ = self.shared.events.send(Arc::new(Event::Degraded(change)));
    }
}

/// `DEGRADED` for the runbooks' grep, beside `DOWN` and `RECOVERED`.
fn log(c: &DegradedChange) {
    let d = &c.device;
    match (&c.degraded, c.cleared) {
        (Some(g), _) => tracing::warn!(
            device = %d.name, address = %d.address, region = %d.region, branch = %d.branch,
            rtt_ms = g.figures.rtt().map(|r| r.as_secs_f64() * 1000.0).unwrap_or(f64::NAN),
            loss_percent = g.figures.loss() * 100.0,
            "DEGRADED"
        ),
        (None, why) => tracing::info!(
            device = %d.name, address = %d.address,
            why = why.map(ClearedWhy::as_str).unwrap_or_default(),
            "degraded cleared"
        ),
    }
}
