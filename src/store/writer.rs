//! The one ordered writer: `State`'s lossless feed → spool (fsync) → database.
//!
//! Two halves share a [`queue`] whose contents always equal the log's uncommitted tail:
//! - the **spooler**, a plain thread (fsync blocks; it must not block a tokio worker the
//!   prober runs on), turns [`StoreEvent`]s into sequenced [`Record`]s, appends them to the
//!   spool and queues them. It never waits for the database, so an outage costs nothing
//!   but disk. When the spool cannot be written (a full disk) the records are held in
//!   memory only — said in `/readyz` and the metrics — and spooled again, before anything
//!   newer, as soon as the disk takes them.
//! - the **applier**, a task, commits the queue's head in batches (one transaction each)
//!   and pops what committed. On an outage it marks the store degraded and retries with
//!   backoff; records stay queued and spooled, in order. Replays after a crash are
//!   skipped by the store (`boot`, `seq`). A batch the database rejects for good is
//!   applied one record per transaction, the rejected ones set aside ([`dead_letter`]),
//!   so one poison record holds nobody's history. While nothing is written it pings the
//!   database, so that an outage shows in `/readyz` before the next write fails.
//!
//! After each commit the applier publishes the alerts it opened and resolved
//! ([`StoreHealth::subscribe_alerts`], [`alerts`]): whenever the records are finally
//! committed, so a spool replayed after an outage reports its alerts then. Between commits
//! it resolves `flapping` alerts of devices that calmed down (reported the same way) and
//! prunes history past the retention, in small batches.
//!
//! A cluster member's writer ([`WriterConfig::cluster`]) also stamps device records with
//! their shard's lease, drops those of shards it does not hold, and commits through the
//! fence that refuses stale epochs ([`cluster`]).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

mod alerts;
mod cluster;
mod dead_letter;
mod queue;
mod upkeep;

use super::{AlertEvent, DeviceRow, Record, RecordKind, Store, StoreHealth};
use crate::state::{Clock, StoreEvent};
use alerts::OpenAlerts;
pub use cluster::WriterCluster;
pub use dead_letter::DEAD_LETTER_FILE;
use dead_letter::DeadLetters;
use queue::Pushed;
pub(super) use queue::Queue;
use upkeep::maintain;

/// Records per database transaction: large enough that a 10,000-device outage commits in
/// a handful of round trips, small enough that a transaction stays short.
const BATCH: usize = 1_000;
/// Records the queue keeps in memory (about 300 bytes each): a whole 100,000-device fleet
/// changing at once. Past it, spooled records wait in the spool only and are read back as
/// the queue drains; records the spool cannot take either are dropped (and counted).
pub const QUEUE_LIMIT: usize = 100_000;
/// A write that takes longer than this is treated as a failed one (a cut connection can
/// hang instead of failing); the records are still spooled and are retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// While nothing is written the database is pinged this often, each ping allowed this
/// long: an outage of an idle appliance shows in `/readyz` within seconds.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How often records held in memory only are offered to the spool again when no new
/// records come to carry them.
const RESPOOL_EVERY: Duration = Duration::from_secs(1);
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The writer's configuration.
pub struct WriterConfig {
    pub boot: String,
    pub retention: Duration,
    pub clock: Arc<dyn Clock>,
    /// Where the dead-letter file goes (beside the spool).
    pub data_dir: PathBuf,
    /// Set when the appliance is a cluster member: device records are stamped with
    /// their shard's lease and fenced at commit ([`cluster`]). None: as before.
    pub cluster: Option<WriterCluster>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    health: Arc<StoreHealth>,
}

/// Handles on a running writer.
pub struct WriterHandle {
    applier: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
    /// This run's heartbeat (set by start-up): its last mark goes in before the end.
    pub(super) heartbeat: Option<super::runs::Heartbeat>,
}

impl WriterHandle {
    /// Waits up to `grace` for everything queued so far to be committed (at shutdown).
    /// What is left stays in the spool for the next start.
    pub async fn finish(mut self, grace: Duration) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
            // The mark reaches the queue through the spool thread: let it get there.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = Instant::now() + grace;
        loop {
            let left = self.shared.queue.lock().len();
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

/// Starts the writer over `queue` (what start-up found in the spool, applied first, in
/// order, and the state it leads to). `open_alerts` are the open alerts the snapshot
/// knew, when start-up took its state from there.
pub(super) fn spawn<S: Store>(
    store: Arc<S>,
    queue: Queue,
    open_alerts: Option<HashMap<i64, String>>,
    feed: mpsc::UnboundedReceiver<StoreEvent>,
    health: Arc<StoreHealth>,
    config: WriterConfig,
) -> WriterHandle {
    health.set_queue(queue.len(), 0, queue.on_disk());
    if config.cluster.is_some() {
        health.set_clustered();
    }
    let alerts = OpenAlerts::new(open_alerts, &health);
    let shared = Arc::new(Shared {
        queue: Mutex::new(queue),
        wake: Notify::new(),
        health,
    });
    let spooler = Spooler {
        shared: shared.clone(),
        boot: config.boot.clone(),
        next_seq: 1,
        cluster: config.cluster.clone(),
    };
    std::thread::Builder::new()
        .name("wardops-spool".into())
        .spawn(move || spooler.run(feed))
        .expect("cannot start the spool thread");
    let applier = tokio::spawn(apply_loop(store, shared.clone(), config, alerts));
    WriterHandle {
        applier,
        shared,
        heartbeat: None,
    }
}

struct Spooler {
    shared: Arc<Shared>,
    boot: String,
    next_seq: u64,
    cluster: Option<WriterCluster>,
}

impl Spooler {
    fn run(mut self, mut feed: mpsc::UnboundedReceiver<StoreEvent>) {
        loop {
            let holding = self.shared.queue.lock().memory_only() > 0;
            let first = if holding {
                match feed.try_recv() {
                    Ok(event) => event,
                    Err(TryRecvError::Empty) => {
                        std::thread::sleep(RESPOOL_EVERY);
                        self.retry();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match feed.blocking_recv() {
                    Some(event) => event,
                    None => break,
                }
            };
            let mut events = vec![first];
            // Everything already waiting goes into the same fsync.
            while events.len() < BATCH * 4 {
                match feed.try_recv() {
                    Ok(event) => events.push(event),
                    Err(_) => break,
                }
            }
            let shared = self.shared.clone();
            let mut queue = shared.queue.lock();
            let mut records = Vec::new();
            for event in events {
                self.convert(event, &mut queue, &mut records);
            }
            if records.is_empty() {
                continue;
            }
            let pushed = queue.push(records);
            self.report(&queue, pushed);
            drop(queue);
            shared.wake.notify_one();
        }
        self.shared.queue.lock().closed = true;
        self.shared.wake.notify_one();
    }

    /// Offers what is held in memory only to the spool again.
    fn retry(&self) {
        let mut queue = self.shared.queue.lock();
        let pushed = match queue.retry_spool() {
            Ok(()) => Pushed::Spooled,
            Err(error) => Pushed::Failed { error, dropped: 0 },
        };
        self.report(&queue, pushed);
    }

    fn report(&self, queue: &Queue, pushed: Pushed) {
        let health = &self.shared.health;
        let spool = queue.spool.path().display();
        match pushed {
            Pushed::Spooled => {
                if health.spool_error().is_some() {
                    tracing::info!(%spool, "the spool takes writes again; records held in memory are spooled");
                    health.set_spool_error(None);
                }
            }
            Pushed::Failed { error, dropped } => {
                health.spool_errors.inc();
                let error = error.to_string();
                if health.spool_error().as_ref() != Some(&error) {
                    tracing::error!(%spool, %error, held = queue.memory_only(), "cannot write the spool: records are held in memory only until it takes them");
                }
                if dropped > 0 {
                    health.dropped.inc_by(dropped as u64);
                    tracing::error!(%spool, %error, dropped, "records lost: the spool fails and the in-memory queue is full");
                }
                health.set_spool_error(Some(error));
            }
        }
        health.set_queue(queue.len(), queue.memory_only(), queue.on_disk());
    }

    fn convert(&mut self, event: StoreEvent, queue: &mut Queue, out: &mut Vec<Record>) {
        let (at, kind) = match event {
            StoreEvent::Transition(t) => (t.change.at, RecordKind::transition(&t)),
            StoreEvent::HeldAlert {
                at,
                device,
                down_since,
            } => (
                at,
                RecordKind::HeldAlert {
                    device: device.name.to_string(),
                    address: device.address.to_string(),
                    down_since,
                },
            ),
            StoreEvent::Degraded { at, device, alert } => {
                (at, RecordKind::degraded(&device, &alert))
            }
            StoreEvent::Uplink { at, device, alert } => (at, RecordKind::uplink(&device, &alert)),
            StoreEvent::Action { at, kind } => (at, kind),
            StoreEvent::Inventory { at, inventory, .. } => {
                let known = &queue.latest.devices;
                let mut upsert = Vec::new();
                let mut live = HashSet::with_capacity(inventory.devices.len());
                for d in &inventory.devices {
                    let row = DeviceRow::of(d);
                    if known.get(&row.name) != Some(&row) {
                        upsert.push(row.clone());
                    }
                    live.insert(row.name.clone());
                }
                let mut removed: Vec<String> = known
                    .keys()
                    .filter(|n| !live.contains(*n))
                    .cloned()
                    .collect();
                removed.sort();
                if upsert.is_empty() && removed.is_empty() {
                    return;
                }
                (at, RecordKind::Devices { upsert, removed })
            }
        };
        // Stamped now, not at commit: the lease it is checked against is the one held
        // when the verdict was made.
        let stamp = match (&self.cluster, kind.device()) {
            (Some(cluster), Some(device)) => match cluster.stamp(device) {
                Some(stamp) => Some(stamp),
                None => {
                    self.shared.health.stale_dropped.inc();
                    tracing::debug!(
                        device,
                        "record of a shard this member does not hold now: dropped"
                    );
                    return;
                }
            },
            _ => None,
        };
        let record = Record {
            boot: self.boot.clone(),
            stamp,
            seq: self.next_seq,
            at,
            kind,
        };
        self.next_seq += 1;
        queue.follow(&record);
        out.push(record);
    }
}

async fn apply_loop<S: Store>(
    store: Arc<S>,
    shared: Arc<Shared>,
    config: WriterConfig,
    mut alerts: OpenAlerts,
) {
    let health = shared.health.clone();
    let dead = DeadLetters::in_dir(&config.data_dir);
    let mut backoff = MIN_BACKOFF;
    let mut retry_at = Instant::now();
    let mut ping_at = Instant::now() + PING_EVERY;
    let mut maintenance_at = Instant::now() + MAINTENANCE_EVERY;
    let mut prune_at = Instant::now() + Duration::from_secs(60);
    // Read now: a restart may commit nothing for a while, yet alerts are open.
    alerts.resync(&*store, &health).await;
    loop {
        let (batch, closed) = {
            let mut q = shared.queue.lock();
            (q.batch(BATCH), q.closed)
        };
        if batch.is_empty() && closed {
            return;
        }
        if !batch.is_empty() && Instant::now() >= retry_at {
            let cluster = config.cluster.as_ref();
            let outcome = match commit(&*store, &batch, cluster, &health).await {
                Ok(done) => {
                    // Reported first, so that the snapshot saved once the queue is empty
                    // has this commit's alerts.
                    alerts.report(&*store, &health, done.alerts).await;
                    finish(&shared, batch.len(), batch.len() - done.refused, &alerts);
                    Ok(())
                }
                // One of them is poison: find it, one record per transaction.
                Err(Failed::Rejected(_)) => {
                    isolate(&*store, &shared, &batch, cluster, &mut alerts, &dead).await
                }
                Err(failed) => Err(failed),
            };
            match outcome {
                Ok(()) => {
                    backoff = MIN_BACKOFF;
                    reachable(&health);
                    continue;
                }
                Err(failed) => {
                    health.failures.inc();
                    if let Failed::Unavailable {
                        ambiguous: true, ..
                    } = failed
                    {
                        alerts.distrust();
                    }
                    unavailable(&health, failed.to_string());
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let has_work = !batch.is_empty();
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(retry_at), if has_work => {}
            _ = tokio::time::sleep_until(ping_at), if !has_work => {
                ping_at = Instant::now() + PING_EVERY;
                match tokio::time::timeout(PING_TIMEOUT, store.ping()).await {
                    Ok(Ok(())) => {
                        reachable(&health);
                        alerts.resync(&*store, &health).await;
                    }
                    Ok(Err(e)) => unavailable(&health, e.to_string()),
                    Err(_) => unavailable(
                        &health,
                        format!("no answer to a ping within {}s", PING_TIMEOUT.as_secs()),
                    ),
                }
            }
            _ = tokio::time::sleep_until(maintenance_at) => {
                maintenance_at = Instant::now() + MAINTENANCE_EVERY;
                if !health.db_down() {
                    let prune = Instant::now() >= prune_at;
                    if prune {
                        prune_at = Instant::now() + PRUNE_EVERY;
                    }
                    maintain(&*store, &health, &mut alerts, &config, prune).await;
                }
                shared.queue.lock().compact(alerts.known());
            }
        }
    }
}

/// Why a write failed, as the applier acts on it.
enum Failed {
    /// The database rejected the data (see [`StoreError::is_permanent`](super::StoreError)).
    Rejected(String),
    /// Anything else: retried. `ambiguous` when the commit may have happened.
    Unavailable { error: String, ambiguous: bool },
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Rejected(e) | Failed::Unavailable { error: e, .. } => f.write_str(e),
        }
    }
}

/// What a commit did.
struct Committed {
    alerts: Vec<AlertEvent>,
    /// Records of the batch a cluster member's fence left out (popped all the same).
    refused: usize,
}

async fn commit<S: Store>(
    store: &S,
    batch: &[Record],
    cluster: Option<&WriterCluster>,
    health: &StoreHealth,
) -> Result<Committed, Failed> {
    let write = async {
        match cluster {
            None => store
                .apply(batch)
                .await
                .map(|alerts| Committed { alerts, refused: 0 }),
            Some(c) => store
                .apply_fenced(batch, &c.member)
                .await
                .map(|fenced| c.committed(fenced, health)),
        }
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) if e.is_permanent() => Err(Failed::Rejected(e.to_string())),
        Ok(Err(e)) => Err(Failed::Unavailable {
            ambiguous: e.is_ambiguous(),
            error: e.to_string(),
        }),
        // The timeout may have struck while COMMIT was on its way.
        Err(_) => Err(Failed::Unavailable {
            error: format!("no answer within {}s", WRITE_TIMEOUT.as_secs()),
            ambiguous: true,
        }),
    }
}

/// Commits `batch` one record per transaction, setting aside those the database rejects;
/// stops at the first failure of another kind (the caller retries from there).
async fn isolate<S: Store>(
    store: &S,
    shared: &Shared,
    batch: &[Record],
    cluster: Option<&WriterCluster>,
    alerts: &mut OpenAlerts,
    dead: &DeadLetters,
) -> Result<(), Failed> {
    for record in batch {
        match commit(store, std::slice::from_ref(record), cluster, &shared.health).await {
            Ok(done) => {
                alerts.report(store, &shared.health, done.alerts).await;
                finish(shared, 1, 1 - done.refused, alerts);
            }
            Err(Failed::Rejected(error)) => {
                dead.set_aside(record, &error);
                shared.health.dead_lettered.inc();
                finish(shared, 1, 0, alerts);
            }
            Err(failed) => return Err(failed),
        }
    }
    Ok(())
}

/// Drops the first `n` records of the queue (committed, refused by a cluster's fence, or
/// set aside), `applied` of them committed; saves the state and empties the spool once
/// nothing is left.
fn finish(shared: &Shared, n: usize, applied: usize, alerts: &OpenAlerts) {
    let mut q = shared.queue.lock();
    q.pop(n);
    if applied > 0 {
        shared.health.applied.inc_by(applied as u64);
    }
    q.compact(alerts.known());
    shared
        .health
        .set_queue(q.len(), q.memory_only(), q.on_disk());
}

fn unavailable(health: &StoreHealth, error: String) {
    if !health.db_down() {
        tracing::warn!(backend = health.backend, %error, "store unavailable; spooling writes and retrying");
    }
    health.set_db_error(Some(error));
}

fn reachable(health: &StoreHealth) {
    if health.db_down() {
        tracing::info!(
            backend = health.backend,
            "store reachable again; spooled writes applied"
        );
        health.set_db_error(None);
    }
}
