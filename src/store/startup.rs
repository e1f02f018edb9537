//! Start-up of the store: open, migrate and load with retries (a database that is down
//! must not hang the appliance, and the log says what it is waiting for), then read the
//! spool, start the writer, and build the restore map `State` starts from.
//!
//! The restore map is the database's last status of each device — or, when the database
//! is away, the [`snapshot`]'s — with the spooled records (written while the database was
//! away, maybe by a process killed -9) applied on top, so a device that was down comes
//! back down with its original `down_since` whichever of the two comes up first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::record::StoredStatus;
use super::snapshot::{self, Latest, SNAPSHOT_FILE};
use super::spool::Spool;
use super::writer::{self, Queue, WriterCluster, WriterConfig, WriterHandle};
use super::{AlertRules, Db, Loaded, Store, StoreError, StoreHealth};
use crate::config::Settings;
use crate::state::{Clock, StoreEvent};

/// The spool's file name inside the data directory.
pub const SPOOL_FILE: &str = "store-spool.jsonl";

pub struct StartOptions {
    pub database_url: String,
    /// Relative SQLite paths are resolved against this (the settings file's directory).
    pub base_dir: PathBuf,
    /// Where the spool lives.
    pub data_dir: PathBuf,
    pub rules: AlertRules,
    pub retention: Duration,
    /// How long to retry an unreachable database before starting without stored state
    /// (the writer keeps retrying; nothing is lost, but devices start `unknown`).
    pub wait: Duration,
}

impl StartOptions {
    /// The options the settings give; start-up waits up to 30 s for the database.
    pub fn from_settings(settings: &Settings) -> StartOptions {
        StartOptions {
            database_url: settings.database_url.clone(),
            base_dir: settings.base_dir().to_path_buf(),
            data_dir: settings.store.data_dir.clone(),
            rules: AlertRules {
                flapping_transitions: settings.store.flapping_transitions,
                flapping_window: settings.store.flapping_window,
            },
            retention: settings.store.retention,
            wait: Duration::from_secs(30),
        }
    }
}

impl StartOptions {
    /// An SQLite database and the spool in `dir`, default rules, no wait: the store of a
    /// test or a bench.
    pub fn local(dir: &std::path::Path) -> StartOptions {
        StartOptions {
            database_url: format!("sqlite://{}", dir.join("wardops.db").display()),
            base_dir: dir.into(),
            data_dir: dir.into(),
            rules: AlertRules::default(),
            retention: Duration::from_secs(400 * 86_400),
            wait: Duration::ZERO,
        }
    }
}

/// `wardops migrate`: applies the migrations and returns the backend's name.
pub async fn migrate(settings: &Settings) -> Result<&'static str, StoreError> {
    let options = StartOptions::from_settings(settings);
    let store = Db::open(&options.database_url, &options.base_dir, options.rules)?;
    store.migrate().await?;
    Ok(store.backend())
}

pub struct Started {
    pub store: Arc<Db>,
    pub health: Arc<StoreHealth>,
    /// Last known status per device name.
    pub restore: HashMap<String, StoredStatus>,
    /// The operators' silences not known to have ended (give them to `State`).
    pub silences: Vec<crate::maintenance::Silence>,
    /// Give this to `State::with_sink`.
    pub sink: mpsc::UnboundedSender<StoreEvent>,
    pub writer: WriterHandle,
}

/// Bounds of the writer; the defaults suit production, tests make them small.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Records the writer keeps in memory ([`writer::QUEUE_LIMIT`]).
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            queue: writer::QUEUE_LIMIT,
        }
    }
}

/// How long start-up waits for the database when the snapshot already says what the
/// state is: the appliance need not stay dark for it.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(3);

/// Opens the store named by `options` and starts its writer.
pub async fn start(options: StartOptions, clock: Arc<dyn Clock>) -> Result<Started, StoreError> {
    start_with(options, clock, Limits::default()).await
}

/// [`start`] with bounds of its own.
pub async fn start_with(
    options: StartOptions,
    clock: Arc<dyn Clock>,
    limits: Limits,
) -> Result<Started, StoreError> {
    start_member(options, clock, limits, None).await
}

/// [`start_with`] for a cluster member when `cluster` is set: its writer stamps and
/// fences device records ([`WriterCluster`]). A member needs PostgreSQL.
pub async fn start_member(
    options: StartOptions,
    clock: Arc<dyn Clock>,
    limits: Limits,
    cluster: Option<WriterCluster>,
) -> Result<Started, StoreError> {
    let store = Arc::new(Db::open(
        &options.database_url,
        &options.base_dir,
        options.rules,
    )?);
    if cluster.is_some() && !matches!(*store, Db::Postgres(_)) {
        return Err(StoreError::Url {
            url: options.database_url.clone(),
            reason: super::CLUSTER_NEEDS_POSTGRES.into(),
        });
    }
    let health = StoreHealth::new(store.backend());
    std::fs::create_dir_all(&options.data_dir).map_err(|source| StoreError::Io {
        context: format!(
            "cannot create the data directory {}",
            options.data_dir.display()
        ),
        source,
    })?;
    let spool_path = options.data_dir.join(SPOOL_FILE);
    let snapshot_path = options.data_dir.join(SNAPSHOT_FILE);
    let saved = snapshot::load(&snapshot_path);
    let wait = match saved {
        Some(_) => options.wait.min(SNAPSHOT_WAIT),
        None => options.wait,
    };
    // The state the log leads to: the database's (it has every commit, also those the
    // spool could not take), else the snapshot's; the spool's records go on top.
    let (mut latest, open_alerts) = match (load_with_retry(&*store, wait).await?, saved) {
        (Some(loaded), saved) => {
            let latest = Latest::from_loaded(loaded);
            // The database may know more than the snapshot (commits of records the spool
            // could not take): the next start without it must not restore less.
            if saved.is_none_or(|s| s.latest != latest) {
                refresh_snapshot(&snapshot_path, &latest);
            }
            (latest, None)
        }
        (None, Some(saved)) => {
            tracing::warn!(
                backend = store.backend(),
                snapshot = %snapshot_path.display(),
                "database unreachable: state restored from the snapshot and the spool; writes are spooled until the database returns"
            );
            health.set_db_error(Some("unreachable at start-up".into()));
            (saved.latest, saved.open_alerts)
        }
        (None, None) => {
            tracing::warn!(
                backend = store.backend(),
                "starting without stored state: devices start unknown; writes are spooled until the database returns"
            );
            health.set_db_error(Some("unreachable at start-up".into()));
            (Latest::default(), None)
        }
    };
    let devices = latest.devices.len();
    // The queue keeps the first records in memory, the rest wait in the spool.
    let (mut head, mut on_disk, mut cursor) = (Vec::new(), 0u64, 0u64);
    let (spool, scan) = Spool::open_with(&spool_path, |offset, record| {
        latest.apply(&record);
        if head.len() < limits.queue {
            head.push(record);
        } else {
            if on_disk == 0 {
                cursor = offset;
            }
            on_disk += 1;
        }
    })
    .map_err(|source| StoreError::Io {
        context: format!("cannot open the spool {}", spool_path.display()),
        source,
    })?;
    health.spool_skipped.inc_by(scan.skipped);
    let spooled = head.len() as u64 + on_disk;
    if spooled > 0 {
        tracing::info!(records = spooled, spool = %spool_path.display(), "found writes spooled by a previous run; applying them first");
    }
    let restore = latest.status.clone();
    let silences = latest.silences.values().cloned().collect();
    tracing::info!(
        backend = store.backend(),
        devices,
        restored = restore.len(),
        "store loaded"
    );
    let (sink, feed) = mpsc::unbounded_channel();
    let boot = format!("{:016x}", rand::random::<u64>());
    let config = WriterConfig {
        boot,
        retention: options.retention,
        clock,
        data_dir: options.data_dir.clone(),
        cluster,
    };
    let queue = Queue::new(
        spool,
        (head, on_disk, cursor),
        limits.queue,
        latest,
        snapshot_path,
    );
    let boot = config.boot.clone();
    let clock = config.clock.clone();
    let mut writer = writer::spawn(
        store.clone(),
        queue,
        open_alerts,
        feed,
        health.clone(),
        config,
    );
    let heartbeat = super::runs::Heartbeat::start(super::Actions::new(sink.clone()), clock);
    health.set_run(boot, heartbeat.started_at());
    writer.heartbeat = Some(heartbeat);
    Ok(Started {
        store,
        health,
        restore,
        silences,
        sink,
        writer,
    })
}

/// Saves the database's state as the snapshot (the spool's records go on top of it as
/// they go on top of the database). A snapshot that cannot be replaced is removed: a
/// stale one would restore the wrong state, none restores `unknown`.
fn refresh_snapshot(path: &std::path::Path, latest: &Latest) {
    if let Err(e) = snapshot::save(path, latest, None) {
        tracing::warn!(snapshot = %path.display(), error = %e, "cannot save the state snapshot; removing the old one");
        if let Err(e) = snapshot::remove(path) {
            tracing::warn!(snapshot = %path.display(), error = %e, "cannot remove the old state snapshot");
        }
    }
}

/// Migrates and loads, retrying while the database is unreachable for up to `wait`.
/// `Ok(None)` when it stayed unreachable; an error for anything retrying cannot fix.
pub async fn load_with_retry<S: Store>(
    store: &S,
    wait: Duration,
) -> Result<Option<Loaded>, StoreError> {
    let deadline = Instant::now() + wait;
    let mut backoff = Duration::from_millis(500);
    for attempt in 1.. {
        let result = async {
            store.migrate().await?;
            store.load().await
        }
        .await;
        match result {
            Ok(loaded) => return Ok(Some(loaded)),
            Err(e) if e.is_unavailable() => {
                let now = Instant::now();
                if now >= deadline {
                    tracing::warn!(error = %e, attempt, "database still unreachable after {}s", wait.as_secs());
                    return Ok(None);
                }
                let pause = backoff.min(deadline - now);
                tracing::warn!(error = %e, attempt, "database unreachable at start-up; retrying in {:.1}s", pause.as_secs_f64());
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the retry loop returns")
}
