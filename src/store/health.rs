//! What the rest of the appliance may know about the store without touching it: whether
//! it is degraded and why (`/readyz`: the database failing, the spool failing so that
//! records are held in memory only, the in-memory queue full), how many records are
//! pending and where (metrics), how many alerts each device has open and which of them are
//! acknowledged (device JSON, the wall), and
//! the alerts each commit opened and resolved (the live feed). All of it is updated by the
//! writer and read without waiting on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
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
    /// Why the database is failing, while it is.
    db_error: Mutex<Option<String>>,
    /// Why the spool cannot be written, while it cannot: durability is off.
    spool_error: Mutex<Option<String>>,
    degraded: AtomicBool,
    /// Records not yet committed to the database (in memory, in the spool, or both).
    pub pending: Gauge,
    /// Records the spool could not take: a crash now would lose them.
    pub memory_only: Gauge,
    /// Records that wait in the spool only, the in-memory queue being full.
    pub disk_only: Gauge,
    pub degraded_gauge: Gauge,
    pub applied: Counter,
    pub failures: Counter,
    /// Failed spool appends (each one's records stay in memory and are spooled again).
    pub spool_errors: Counter,
    /// Unreadable pieces skipped reading the spool (a fragment, a failed checksum).
    pub spool_skipped: Counter,
    /// Records the database rejected for good, set aside in the dead-letter file.
    pub dead_lettered: Counter,
    /// Records lost because neither the spool nor the full in-memory queue could take them.
    pub dropped: Counter,
    /// A cluster member's device records its transaction refused: their lease no longer
    /// held (another member took the shard), or they carried none. Never retried.
    pub epoch_conflicts: Counter,
    /// A cluster member's device records not spooled at all: the shard was not this
    /// member's when they were made.
    pub stale_dropped: Counter,
    /// Set when the writer runs as a cluster member: only then are the two counters above
    /// registered (an appliance outside a cluster exposes what it did before).
    clustered: AtomicBool,
    open_alerts: ArcSwap<HashMap<String, u32>>,
    /// Id → device of every open alert as of the last commit; None until the writer has
    /// read them (the acknowledge route checks an alert here without a query).
    open_ids: ArcSwapOption<HashMap<i64, String>>,
    /// The acknowledged open alerts as of the last commit.
    pub acknowledged: super::acks::Acknowledged,
    /// Each commit's alert changes, sent after the commit; nothing is kept when nobody
    /// listens.
    alerts: broadcast::Sender<AlertReport>,
    /// This run of the appliance (boot id, start), once start-up has begun it: reports
    /// count it as running up to now, not only to its last stored heartbeat.
    run: std::sync::OnceLock<(String, chrono::DateTime<chrono::Utc>)>,
}

impl StoreHealth {
    pub fn new(backend: &'static str) -> Arc<Self> {
        Arc::new(Self {
            backend,
            db_error: Mutex::new(None),
            spool_error: Mutex::new(None),
            degraded: AtomicBool::new(false),
            pending: Gauge::default(),
            memory_only: Gauge::default(),
            disk_only: Gauge::default(),
            degraded_gauge: Gauge::default(),
            applied: Counter::default(),
            failures: Counter::default(),
            spool_errors: Counter::default(),
            spool_skipped: Counter::default(),
            dead_lettered: Counter::default(),
            dropped: Counter::default(),
            epoch_conflicts: Counter::default(),
            stale_dropped: Counter::default(),
            clustered: AtomicBool::new(false),
            open_alerts: ArcSwap::from_pointee(HashMap::new()),
            open_ids: ArcSwapOption::empty(),
            acknowledged: Default::default(),
            alerts: broadcast::Sender::new(ALERT_REPORTS),
            run: std::sync::OnceLock::new(),
        })
    }

    /// Says which run this is (once; later calls are ignored).
    pub fn set_run(&self, boot: String, started_at: chrono::DateTime<chrono::Utc>) {
        let _ = self.run.set((boot, started_at));
    }

    /// This run's boot id and start, if the writer has started.
    pub fn run(&self) -> Option<(&str, chrono::DateTime<chrono::Utc>)> {
        self.run.get().map(|(b, t)| (b.as_str(), *t))
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wardops_store_pending_writes",
            "Records (transitions, inventory changes) not yet in the database",
            self.pending.clone(),
        );
        registry.register(
            "wardops_store_records_memory_only",
            "Pending records the spool could not take (its disk failing): a crash would lose them",
            self.memory_only.clone(),
        );
        registry.register(
            "wardops_store_records_disk_only",
            "Pending records kept in the spool only, the in-memory queue being full",
            self.disk_only.clone(),
        );
        registry.register(
            "wardops_store_degraded",
            "1 while the store is degraded (database failing, spool failing or queue full)",
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
        registry.register(
            "wardops_store_spool_errors",
            "Failed appends to the spool (their records stay in memory and are spooled again)",
            self.spool_errors.clone(),
        );
        registry.register(
            "wardops_store_spool_skipped",
            "Unreadable pieces of the spool skipped at start-up (every verified record is kept)",
            self.spool_skipped.clone(),
        );
        registry.register(
            "wardops_store_records_dead_lettered",
            "Records the database rejected for good, set aside in the dead-letter file",
            self.dead_lettered.clone(),
        );
        registry.register(
            "wardops_store_records_dropped",
            "Records lost: the spool failing and the in-memory queue full",
            self.dropped.clone(),
        );
        if self.clustered.load(Ordering::Relaxed) {
            registry.register(
                "wardops_cluster_epoch_conflicts",
                "Device records refused at commit: their shard's lease no longer held at their epoch",
                self.epoch_conflicts.clone(),
            );
            registry.register(
                "wardops_cluster_stale_dropped",
                "Device records not spooled: their shard was not this member's when they were made",
                self.stale_dropped.clone(),
            );
        }
    }

    /// The writer runs as a cluster member (before [`StoreHealth::register`]).
    pub(super) fn set_clustered(&self) {
        self.clustered.store(true, Ordering::Relaxed);
    }

    /// Why the store is degraded, if it is: what is pending and where, then each cause.
    pub fn degraded_reason(&self) -> Option<String> {
        let db = self.db_error.lock().clone();
        let spool = self.spool_error.lock().clone();
        let disk_only = self.disk_only.get();
        if db.is_none() && spool.is_none() && disk_only == 0 {
            return None;
        }
        let pending = self.pending.get();
        let memory_only = self.memory_only.get();
        let mut reason = format!(
            "store degraded: {pending} pending write(s), {} spooled, {memory_only} in memory only",
            pending - memory_only
        );
        if let Some(e) = spool {
            reason.push_str(&format!("; spool failing, durability off: {e}"));
        }
        if disk_only > 0 {
            reason.push_str(&format!(
                "; in-memory queue full: {disk_only} record(s) wait in the spool only"
            ));
        }
        if let Some(e) = db {
            reason.push_str(&format!("; database unavailable: {e}"));
        }
        Some(reason)
    }

    /// True while any part of the store is degraded.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Why the spool cannot be written, while it cannot.
    pub fn spool_error(&self) -> Option<String> {
        self.spool_error.lock().clone()
    }

    /// True while the database is failing.
    pub fn db_down(&self) -> bool {
        self.db_error.lock().is_some()
    }

    pub(super) fn set_db_error(&self, error: Option<String>) {
        *self.db_error.lock() = error;
        self.update_degraded();
    }

    pub(super) fn set_spool_error(&self, error: Option<String>) {
        *self.spool_error.lock() = error;
        self.update_degraded();
    }

    /// Where the pending records are.
    pub(super) fn set_queue(&self, pending: usize, memory_only: usize, disk_only: u64) {
        self.pending.set(pending as i64);
        self.memory_only.set(memory_only as i64);
        self.disk_only.set(disk_only as i64);
        self.update_degraded();
    }

    fn update_degraded(&self) {
        let degraded = self.db_error.lock().is_some()
            || self.spool_error.lock().is_some()
            || self.disk_only.get() > 0;
        self.degraded.store(degraded, Ordering::Relaxed);
        self.degraded_gauge.set(i64::from(degraded));
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

    /// The device of alert `id` if it is open as of the last commit; None if it is not,
    /// or if the writer has not read the open alerts yet.
    pub fn open_alert_device(&self, id: i64) -> Option<String> {
        self.open_ids.load().as_ref()?.get(&id).cloned()
    }

    pub(super) fn set_open_ids(&self, ids: &HashMap<i64, String>) {
        self.open_ids.store(Some(Arc::new(ids.clone())));
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
                AlertChange::Opened => count(&mut counts, &e.alert.device, true),
                AlertChange::Resolved => count(&mut counts, &e.alert.device, false),
                AlertChange::Updated => {}
            }
        }
        self.open_alerts.store(Arc::new(counts));
    }

    /// Follows an alert of `device` that another cluster member (the device's owner)
    /// opened or resolved.
    pub fn count_foreign_alert(&self, device: &str, opened: bool) {
        let mut counts = HashMap::clone(&self.open_alerts.load());
        count(&mut counts, device, opened);
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

/// One alert of `device` opened (or resolved) in `counts`.
fn count(counts: &mut HashMap<String, u32>, device: &str, opened: bool) {
    if opened {
        *counts.entry(device.to_string()).or_default() += 1;
    } else if let Some(n) = counts.get_mut(device) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(device);
        }
    }
}
