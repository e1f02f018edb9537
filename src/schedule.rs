//! The scheduler: one lightweight task per device, each a deadline loop that probes the
//! device at its stable phase (see [`phase`]) and feeds the result to [`State`].
//!
//! A failed probe of a device that is not yet down is re-checked after
//! `retry_interval` (and a success of a down device likewise), so an outage is confirmed
//! in seconds. A probe that cannot start on time starts late and is observed as lag;
//! slots that pass entirely while the prober is late are skipped and counted, never
//! queued up.
//!
//! A device is also probed at once, out of phase, when the state owner asks
//! ([`DeviceRuntime::request_probe`]: a parent whose word a failing child waits for, a
//! child whose parent's verdict is in); its regular slot stands.
//!
//! [`Scheduler::sync`] makes the running tasks match a snapshot: new devices start at
//! their own phase (no burst on reload), removed ones stop, changed ones get their new
//! settings without losing their streaks.
//!
//! A member of a cluster ([`Scheduler::in_cluster`]) probes only the devices of the shards
//! it owns at that instant (`crate::cluster::member`): every task keeps its slots, and a
//! slot of a shard not owned passes without a probe, so a shard taken over is probed at
//! its devices' next slots, and one lost (or whose fence ran out) is not probed again.
//! A probe that was under way when the shard was lost is not recorded.

pub mod metrics;
pub mod phase;
mod setting;
mod tasks;
pub mod uplinks;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

pub use metrics::ProberMetrics;
use phase::Slots;

use crate::cluster::member::Owned;
use crate::config::Device;
use crate::probe::Pinger;
use crate::state::{DeviceRuntime, Snapshot, State};

struct Shared<P> {
    pinger: Arc<P>,
    state: State,
    metrics: Arc<ProberMetrics>,
    /// Common origin of every device's slots.
    epoch: Instant,
    /// In a cluster: the shards this member may act on now. None: alone, every device.
    owned: Option<watch::Receiver<Owned>>,
}

impl<P> Shared<P> {
    /// Whether a device of `shard` may be probed (and its result recorded) now.
    fn may_probe(&self, shard: u16) -> bool {
        tasks::may_act(&self.owned, shard)
    }
}

/// Owns the device tasks. Dropping it stops them all.
pub struct Scheduler<P: Pinger> {
    shared: Arc<Shared<P>>,
    tasks: tasks::Tasks,
}

impl<P: Pinger> Scheduler<P> {
    pub fn new(pinger: Arc<P>, state: State, metrics: Arc<ProberMetrics>) -> Self {
        Self {
            shared: Arc::new(Shared {
                pinger,
                state,
                metrics,
                epoch: Instant::now(),
                owned: None,
            }),
            tasks: tasks::Tasks::default(),
        }
    }

    /// As a member of a cluster: probes only the devices of the shards `owned` says this
    /// member may act on. Called before the first [`Scheduler::sync`].
    pub fn in_cluster(mut self, owned: watch::Receiver<Owned>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("no device task runs before the first sync")
            .owned = Some(owned);
        self
    }

    pub fn state(&self) -> &State {
        &self.shared.state
    }

    /// Number of device tasks running.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Starts, stops and updates device tasks to match `snapshot`.
    pub fn sync(&mut self, snapshot: &Snapshot) {
        let shared = &self.shared;
        self.tasks.sync(
            snapshot.devices().map(|(d, _, r)| (d, r)),
            |device, runtime| {
                tokio::spawn(run_device(shared.clone(), device, runtime)).abort_handle()
            },
        );
    }
}

async fn run_device<P: Pinger>(
    shared: Arc<Shared<P>>,
    mut updates: setting::Receiver<Arc<Device>>,
    runtime: Arc<DeviceRuntime>,
) {
    let mut device = updates.borrow_and_update().clone();
    // The name, hence the shard, is the task's for life (a renamed device is another).
    let shard = crate::cluster::shard_of(&device.name);
    let mut slots = Slots::new(shared.epoch, &device.name, device.probe.interval);
    let mut due = slots.at_or_after(Instant::now());
    loop {
        tokio::select! {
            _ = sleep_until(due) => {}
            () = runtime.probe_requested() => {}
            changed = updates.changed() => {
                if changed.is_err() {
                    return;
                }
                device = updates.borrow_and_update().clone();
                if device.probe.interval != slots.interval() {
                    slots = Slots::new(shared.epoch, &device.name, device.probe.interval);
                    due = due.min(slots.at_or_after(Instant::now()));
                }
                continue;
            }
        }
        let woke = Instant::now();
        // Asked for out of phase: not late, and the slot it came before still stands.
        let early = woke < due;
        if !shared.may_probe(shard) {
            // Another member's device (or nobody's, while this one's fence is out).
            if !early {
                due = next_slot(&slots, due, woke).0;
            }
            continue;
        }
        if !early {
            shared
                .metrics
                .lag
                .observe(woke.saturating_duration_since(due).as_secs_f64());
        }
        let started = shared.state.clock().now();
        // Boxed: a probe's state lives only while it runs, so the ~100,000 idle device
        // tasks stay small (an inline probe future would triple each task's size).
        let outcome = Box::pin(shared.pinger.probe(device.address, device.probe.spec())).await;
        shared.metrics.probe_done(&outcome);
        // Lost while the probe ran: the new owner decides from its own probes.
        if shared.may_probe(shard) {
            shared
                .state
                .record_probe(&device, &runtime, &outcome, started);
        }
        let now = Instant::now();
        due = if runtime.is_confirming() {
            (woke + device.probe.retry_interval).max(now)
        } else if early && due > now {
            due
        } else {
            let (next, skipped) = next_slot(&slots, due, now);
            shared.metrics.skipped.inc_by(skipped);
            next
        };
    }
}

/// Back on the grid after a probe that was due at `due` and ended at `now`: the next
/// slot, even if it has just passed (a probe as long as its interval, or a brief stall,
/// starts late and shows as lag rather than losing a whole interval); slots that passed
/// entirely are skipped and counted, never queued up. Returns the slot and the count.
fn next_slot(slots: &Slots, due: Instant, now: Instant) -> (Instant, u64) {
    let on_time = slots.after(due);
    let late = now.saturating_duration_since(on_time);
    let skipped = (late.as_nanos() / slots.interval().as_nanos().max(1)) as u32;
    (on_time + slots.interval() * skipped, u64::from(skipped))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn slots(epoch: Instant) -> Slots {
        Slots::new(epoch, "d", SECOND)
    }

    #[test]
    fn an_on_time_probe_waits_for_the_next_slot() {
        let s = slots(Instant::now());
        let due = s.at_or_after(Instant::now());
        assert_eq!(next_slot(&s, due, due + SECOND / 10), (due + SECOND, 0));
        assert_eq!(next_slot(&s, due, due + SECOND), (due + SECOND, 0));
    }

    #[test]
    fn a_probe_that_overruns_its_slot_starts_late_instead_of_losing_an_interval() {
        let s = slots(Instant::now());
        let due = s.at_or_after(Instant::now());
        let ended = due + SECOND + Duration::from_millis(3);
        assert_eq!(
            next_slot(&s, due, ended),
            (due + SECOND, 0),
            "run at once, 3 ms late"
        );
    }

    #[test]
    fn slots_that_passed_entirely_are_skipped_not_queued() {
        let s = slots(Instant::now());
        let due = s.at_or_after(Instant::now());
        let stalled_until = due + SECOND * 3 + Duration::from_millis(500);
        assert_eq!(next_slot(&s, due, stalled_until), (due + SECOND * 3, 2));
    }
}
