//! The one ordered writer: `State`'s lossless feed → spool (fsync) → database.
//!
//! Two halves share a queue whose contents always equal the spool file's unapplied tail:
//! - the **spooler**, a plain thread (fsync blocks; it must not block a tokio worker the
//!   prober runs on), turns [`StoreEvent`]s into sequenced [`Record`]s, appends them to the
//!   spool and queues them. It never waits for the database, so an outage costs nothing
//!   but disk.
//! - the **applier**, a task, commits the queue's head in batches (one transaction each),
//!   pops what committed, and empties the spool file when the queue is empty. On failure
//!   it marks the store degraded and retries with backoff; records stay queued and
//!   spooled, in order. Replays after a crash are skipped by the store (`boot`, `seq`).
//!
//! After each commit the applier publishes the alerts it opened and resolved
//! ([`StoreHealth::subscribe_alerts`]): whenever the records are finally committed, so a
//! spool replayed after an outage reports its alerts then. Between commits it resolves
//! `flapping` alerts of devices that calmed down (reported the same way) and prunes
//! history past the retention, in small batches.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

mod upkeep;

use super::spool::Spool;
use super::{AlertEvent, DeviceRow, Record, RecordKind, Store, StoreHealth};
use crate::state::{Clock, StoreEvent};
use upkeep::{maintain, report_alerts};

/// Records per database transaction: large enough that a 10,000-device outage commits in
/// a handful of round trips, small enough that a transaction stays short.
const BATCH: usize = 1_000;
/// A write that takes longer than this is treated as a failed one (a cut connection can
/// hang instead of failing); the records are still spooled and are retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The writer's configuration.
pub struct WriterConfig {
    pub boot: String,
    pub retention: Duration,
    pub clock: Arc<dyn Clock>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    health: Arc<StoreHealth>,
}

struct Queue {
    spool: Spool,
    records: VecDeque<Record>,
    /// The spooler has ended (the feed closed).
    closed: bool,
}

/// Handles on a running writer.
pub struct WriterHandle {
    applier: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl WriterHandle {
    /// Waits up to `grace` for everything queued so far to be committed (at shutdown).
    /// What is left stays in the spool for the next start.
    pub async fn finish(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        loop {
            let left = self.shared.queue.lock().records.len();
            if left == 0 || self.applier.is_finished() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pending = left,
                    "stopping with writes pending; they stay in the spool for the next start"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts the writer. `spooled` are the records found in the spool at start-up (applied
/// first, in order); `known` the live devices the database (plus those records) holds, so
/// that an inventory is written as a difference.
pub fn spawn<S: Store>(
    store: Arc<S>,
    spool: Spool,
    spooled: Vec<Record>,
    known: HashMap<String, DeviceRow>,
    feed: mpsc::UnboundedReceiver<StoreEvent>,
    health: Arc<StoreHealth>,
    config: WriterConfig,
) -> WriterHandle {
    health.pending.set(spooled.len() as i64);
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            spool,
            records: spooled.into(),
            closed: false,
        }),
        wake: Notify::new(),
        health,
    });
    let spooler = Spooler {
        shared: shared.clone(),
        boot: config.boot.clone(),
        next_seq: 1,
        known,
    };
    std::thread::Builder::new()
        .name("wardops-spool".into())
        .spawn(move || spooler.run(feed))
        .expect("cannot start the spool thread");
    let applier = tokio::spawn(apply_loop(store, shared.clone(), config));
    WriterHandle { applier, shared }
}

struct Spooler {
    shared: Arc<Shared>,
    boot: String,
    next_seq: u64,
    known: HashMap<String, DeviceRow>,
}

impl Spooler {
    fn run(mut self, mut feed: mpsc::UnboundedReceiver<StoreEvent>) {
        while let Some(first) = feed.blocking_recv() {
            let mut records = Vec::new();
            self.convert(first, &mut records);
            // Everything already waiting goes into the same fsync.
            while records.len() < BATCH * 4 {
                match feed.try_recv() {
                    Ok(event) => self.convert(event, &mut records),
                    Err(_) => break,
                }
            }
            if records.is_empty() {
                continue;
            }
            let mut queue = self.shared.queue.lock();
            if let Err(e) = queue.spool.append(&records) {
                // Still queued in memory: only a crash before the database returns loses them.
                tracing::error!(spool = %queue.spool.path().display(), error = %e, "cannot write the spool");
            }
            queue.records.extend(records);
            self.shared.health.pending.set(queue.records.len() as i64);
            drop(queue);
            self.shared.wake.notify_one();
        }
        self.shared.queue.lock().closed = true;
        self.shared.wake.notify_one();
    }

    fn convert(&mut self, event: StoreEvent, out: &mut Vec<Record>) {
        let (at, kind) = match event {
            StoreEvent::Transition(t) => (t.change.at, RecordKind::transition(&t)),
            StoreEvent::Inventory { at, inventory, .. } => {
                let mut upsert = Vec::new();
                let mut live = HashMap::with_capacity(inventory.devices.len());
                for d in &inventory.devices {
                    let row = DeviceRow::of(d);
                    if self.known.get(&row.name) != Some(&row) {
                        upsert.push(row.clone());
                    }
                    live.insert(row.name.clone(), row);
                }
                let mut removed: Vec<String> = self
                    .known
                    .keys()
                    .filter(|n| !live.contains_key(*n))
                    .cloned()
                    .collect();
                removed.sort();
                self.known = live;
                if upsert.is_empty() && removed.is_empty() {
                    return;
                }
                (at, RecordKind::Devices { upsert, removed })
            }
        };
        out.push(Record {
            boot: self.boot.clone(),
            seq: self.next_seq,
            at,
            kind,
        });
        self.next_seq += 1;
    }
}

async fn apply_loop<S: Store>(store: Arc<S>, shared: Arc<Shared>, config: WriterConfig) {
    let health = shared.health.clone();
    let mut backoff = MIN_BACKOFF;
    let mut retry_at = Instant::now();
    let mut maintenance_at = Instant::now() + MAINTENANCE_EVERY;
    let mut prune_at = Instant::now() + Duration::from_secs(60);
    // Whether the open alert counts have been read in full yet (see `report_alerts`).
    // Read now: a restart may commit nothing for a while, yet alerts are open.
    let mut counted = false;
    report_alerts(&*store, &health, &mut counted, Vec::new()).await;
    loop {
        let (batch, closed) = {
            let q = shared.queue.lock();
            (
                q.records.iter().take(BATCH).cloned().collect::<Vec<_>>(),
                q.closed,
            )
        };
        if batch.is_empty() && closed {
            return;
        }
        if !batch.is_empty() && Instant::now() >= retry_at {
            match commit(&*store, &batch).await {
                Ok(alerts) => {
                    backoff = MIN_BACKOFF;
                    finish_batch(&shared, batch.len());
                    if health.is_degraded() {
                        tracing::info!(
                            backend = health.backend,
                            "store reachable again; spooled writes applied"
                        );
                        health.set_degraded(None);
                    }
                    report_alerts(&*store, &health, &mut counted, alerts).await;
                    continue;
                }
                Err(e) => {
                    if !health.is_degraded() {
                        tracing::warn!(backend = health.backend, error = %e, "store unavailable; spooling writes and retrying");
                    }
                    health.failures.inc();
                    health.set_degraded(Some(e));
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let has_work = !batch.is_empty();
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(retry_at), if has_work => {}
            _ = tokio::time::sleep_until(maintenance_at) => {
                maintenance_at = Instant::now() + MAINTENANCE_EVERY;
                if !health.is_degraded() {
                    let prune = Instant::now() >= prune_at;
                    if prune {
                        prune_at = Instant::now() + PRUNE_EVERY;
                    }
                    maintain(&*store, &health, &mut counted, &config, prune).await;
                }
            }
        }
    }
}

async fn commit<S: Store>(store: &S, batch: &[Record]) -> Result<Vec<AlertEvent>, String> {
    match tokio::time::timeout(WRITE_TIMEOUT, store.apply(batch)).await {
        Ok(Ok(alerts)) => Ok(alerts),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", WRITE_TIMEOUT.as_secs())),
    }
}

/// Drops the committed head of the queue; empties the spool file once nothing is left.
fn finish_batch(shared: &Shared, n: usize) {
    let mut q = shared.queue.lock();
    q.records.drain(..n);
    shared.health.applied.inc_by(n as u64);
    shared.health.pending.set(q.records.len() as i64);
    if q.records.is_empty()
        && let Err(e) = q.spool.clear()
    {
        // Harmless: the records are replayed and skipped at the next start.
        tracing::warn!(spool = %q.spool.path().display(), error = %e, "cannot empty the spool");
    }
}
