//! What the rest of the appliance may know about the store without touching it: whether
//! writes are failing (`/readyz` says "degraded"), how many records wait in the spool (a
//! metric), how many alerts each device has open (device JSON), and the alerts each
//! commit opened and resolved (the live feed). All of it is updated by the writer and
//! read lock-free.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::broadcast;

use super::{AlertChange, AlertEvent};

/// Commits whose alert reports a subscriber may fall behind by before it misses some
/// (it is told: `Lagged`). A commit is up to 1,000 records, so this is a whole outage.
const ALERT_REPORTS: usize = 1_024;

/// The alerts one commit opened and resolved, in order.
pub type AlertReport = Arc<[AlertEvent]>;

#[derive(Debug)]
pub struct StoreHealth {
    pub backend: &'static str,
    degraded: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Records spooled but not yet committed to the database.
    pub pending: Gauge,
    pub degraded_gauge: Gauge,
    pub applied: Counter,
    pub failures: Counter,
    open_alerts: ArcSwap<HashMap<String, u32>>,
    /// Each commit's alert changes, sent after the commit; nothing is kept when nobody
    /// listens.
    alerts: broadcast::Sender<AlertReport>,
}

impl StoreHealth {
    pub fn new(backend: &'static str) -> Arc<Self> {
        Arc::new(Self {
            backend,
            degraded: AtomicBool::new(false),
            last_error: Mutex::new(None),
            pending: Gauge::default(),
            degraded_gauge: Gauge::default(),
            applied: Counter::default(),
            failures: Counter::default(),
            open_alerts: ArcSwap::from_pointee(HashMap::new()),
            alerts: broadcast::Sender::new(ALERT_REPORTS),
        })
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wardops_store_pending_writes",
            "Records (transitions, inventory changes) spooled but not yet in the database",
            self.pending.clone(),
        );
        registry.register(
            "wardops_store_degraded",
            "1 while writes to the database are failing (records wait in the spool)",
            self.degraded_gauge.clone(),
        );
        registry.register(
            "wardops_store_records_applied",
            "Records committed to the database",
            self.applied.clone(),
        );
        registry.register(
            "wardops_store_write_failures",
            "Failed attempts to write to the database",
            self.failures.clone(),
        );
    }

    /// Why the store is degraded, if it is.
    pub fn degraded_reason(&self) -> Option<String> {
        if !self.degraded.load(Ordering::Relaxed) {
            return None;
        }
        let error = self.last_error.lock().clone().unwrap_or_default();
        Some(format!(
            "store degraded: {} pending write(s) spooled, database unavailable: {error}",
            self.pending.get()
        ))
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    pub(super) fn set_degraded(&self, error: Option<String>) {
        self.degraded.store(error.is_some(), Ordering::Relaxed);
        self.degraded_gauge.set(i64::from(error.is_some()));
        *self.last_error.lock() = error;
    }

    /// Open alerts of `device` as of the last commit.
    pub fn open_alerts(&self, device: &str) -> u32 {
        self.open_alerts.load().get(device).copied().unwrap_or(0)
    }

    /// Open alerts of every device as of the last commit, for a response that lists many
    /// devices: one load, so that all of them read the same commit.
    pub fn open_alert_counts(&self) -> Arc<HashMap<String, u32>> {
        self.open_alerts.load_full()
    }

    pub(super) fn set_open_alerts(&self, counts: HashMap<String, u32>) {
        self.open_alerts.store(Arc::new(counts));
    }

    /// Follows the open alert counts through one commit's changes.
    pub(super) fn count_alerts(&self, events: &[AlertEvent]) {
        if events.is_empty() {
            return;
        }
        let mut counts = HashMap::clone(&self.open_alerts.load());
        for e in events {
            match e.change {
                AlertChange::Opened => *counts.entry(e.alert.device.clone()).or_default() += 1,
                AlertChange::Resolved => {
                    if let Some(n) = counts.get_mut(&e.alert.device) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            counts.remove(&e.alert.device);
                        }
                    }
                }
            }
        }
        self.open_alerts.store(Arc::new(counts));
    }

    /// Sends one commit's alert changes to the subscribers (call after the commit).
    pub(super) fn publish_alerts(&self, events: Vec<AlertEvent>) {
        if !events.is_empty() {
            let _ = self.alerts.send(events.into());
        }
    }

    /// The alerts each commit from now on opens and resolves, one report per commit, in
    /// commit order.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<AlertReport> {
        self.alerts.subscribe()
    }
}
