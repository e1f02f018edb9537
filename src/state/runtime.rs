//! What the appliance keeps per device between probes: the status machine, the latest
//! measurements and the `degraded` window, each behind its own short-held lock.
//!
//! Measurements change thousands of times a second and are not versioned; the status
//! machine changes rarely and every change goes through [`super::State`].
//!
//! It also carries the device's "probe now" wake-up, which its scheduler task waits on
//! beside its next slot: the state owner asks a stale parent for a fresh verdict
//! before a child is decided, and a recovered parent's unreachable children for theirs.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::degraded::{Degraded, Figures, Tracker};
use super::machine::Machine;
use super::uplinks::{Book, Traffic};
use crate::probe::ProbeOutcome;

/// Latest probe figures of one device.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measurements {
    pub last_rtt: Option<Duration>,
    /// Loss of the last probe, 0.0..=1.0.
    pub last_loss: Option<f64>,
    pub last_probe_at: Option<DateTime<Utc>>,
    /// Probes run and probes that got at least one reply.
    pub probes: u64,
    pub successful_probes: u64,
    /// Echo requests sent and replies received.
    pub requests: u64,
    pub replies: u64,
}

impl Measurements {
    fn record(&mut self, outcome: &ProbeOutcome, started: DateTime<Utc>) {
        self.last_rtt = outcome.rtt;
        self.last_loss = Some(outcome.loss());
        self.last_probe_at = Some(started);
        self.probes += 1;
        self.successful_probes += u64::from(outcome.is_success());
        self.requests += u64::from(outcome.sent);
        self.replies += u64::from(outcome.received);
    }
}

/// Per-device runtime state. Its identity (the `Arc`) is the device's monitoring
/// identity: a reload keeps it for an unchanged address and replaces it otherwise.
#[derive(Debug, Default)]
pub struct DeviceRuntime {
    pub(super) machine: Mutex<Machine>,
    measurements: Mutex<Measurements>,
    /// The `degraded` window and condition, made the first time the device has
    /// thresholds (most devices of a fleet may have none: they pay one pointer); never
    /// locked while `machine` is.
    pub(super) degraded: Mutex<Option<Box<Tracker>>>,
    probe_now: Notify,
    /// A child waits for this device's verdict: tell it once the verdict is in.
    watched: AtomicBool,
    /// The start (Unix microseconds) of the last probe whose outcome is applied to the
    /// status and published: "probe now" waits for it to pass the request.
    applied: AtomicI64,
    /// The status shown is another cluster member's word, not this member's own
    /// decision ([`super::foreign`]).
    pub(super) told: AtomicBool,
    /// Its ISP lines' counters and alert book, made at its first SNMP poll (most
    /// devices are not polled: they pay one pointer).
    pub(super) uplinks: Mutex<Option<Box<Book>>>,
}

impl DeviceRuntime {
    pub fn new(machine: Machine) -> Self {
        Self {
            machine: Mutex::new(machine),
            measurements: Mutex::default(),
            degraded: Mutex::default(),
            probe_now: Notify::new(),
            watched: AtomicBool::new(false),
            applied: AtomicI64::new(i64::MIN),
            told: AtomicBool::new(false),
            uplinks: Mutex::default(),
        }
    }

    /// Asks the device's scheduler task to probe it at once, out of phase. Requests
    /// made before it next waits are kept (as one): none is lost while it probes.
    pub fn request_probe(&self) {
        self.probe_now.notify_one();
    }

    /// Resolves when a probe is requested ([`Self::request_probe`]).
    pub async fn probe_requested(&self) {
        self.probe_now.notified().await;
    }

    pub(super) fn mark_applied(&self, started: DateTime<Utc>) {
        self.applied
            .fetch_max(started.timestamp_micros(), Ordering::Release);
    }

    /// True once a probe that started at or after `t` has its outcome applied to the
    /// device's status (and to its measurements).
    pub fn applied_since(&self, t: DateTime<Utc>) -> bool {
        self.applied.load(Ordering::Acquire) >= t.timestamp_micros()
    }

    /// The device as its children see it.
    pub fn as_parent(&self) -> super::depend::ParentView {
        self.machine.lock().as_parent()
    }

    pub(super) fn watch(&self) {
        self.watched.store(true, Ordering::Relaxed);
    }

    pub(super) fn take_watched(&self) -> bool {
        self.watched.swap(false, Ordering::Relaxed)
    }

    pub fn measurements(&self) -> Measurements {
        *self.measurements.lock()
    }

    pub(super) fn record_measurements(&self, outcome: &ProbeOutcome, started: DateTime<Utc>) {
        self.measurements.lock().record(outcome, started);
    }

    /// The `degraded` condition as the device's own tracker has it (the snapshot's
    /// [`super::DeviceStatus::degraded`] is the versioned copy surfaces read).
    pub fn degraded(&self) -> Option<Degraded> {
        self.degraded.lock().as_ref().and_then(|t| t.current())
    }

    /// RTT and loss over the device's `degraded` window as it stands; None while it is
    /// not evaluated (no thresholds, or not up).
    pub fn window_figures(&self) -> Option<Figures> {
        self.degraded.lock().as_ref().and_then(|t| t.figures())
    }

    /// One ISP line's counters and rates as of the last poll of the device's agent.
    pub fn uplink_traffic(&self, isp: &str) -> Traffic {
        self.uplinks
            .lock()
            .as_ref()
            .map(|b| b.traffic(isp))
            .unwrap_or_default()
    }

    /// Whether the device's agent answered its last poll; None before the first.
    pub fn uplink_agent_answered(&self) -> Option<bool> {
        self.uplinks
            .lock()
            .as_ref()
            .filter(|b| b.polls > 0)
            .map(|b| b.answered)
    }

    /// True while the device's status machine is confirming a change.
    pub fn is_confirming(&self) -> bool {
        self.machine.lock().is_confirming()
    }
}
