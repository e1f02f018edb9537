//! Start-up of the store: open, migrate and load with retries (a database that is down
//! must not hang the appliance, and the log says what it is waiting for), then read the
//! spool, start the writer, and build the restore map `State` starts from.
//!
//! The restore map is the database's last status of each device with the spooled
//! records (written while the database was away, maybe by a process killed -9) applied
//! on top, so a device that was down comes back down with its original `down_since`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::record::StoredStatus;
use super::spool::Spool;
use super::writer::{self, WriterConfig, WriterHandle};
use super::{
    AlertRules, Db, DeviceRow, Loaded, Record, RecordKind, Store, StoreError, StoreHealth,
};
use crate::config::Settings;
use crate::state::{Clock, Status, StoreEvent};

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
    /// Give this to `State::with_sink`.
    pub sink: mpsc::UnboundedSender<StoreEvent>,
    pub writer: WriterHandle,
}

/// Opens the store named by `options` and starts its writer.
pub async fn start(options: StartOptions, clock: Arc<dyn Clock>) -> Result<Started, StoreError> {
    let store = Arc::new(Db::open(
        &options.database_url,
        &options.base_dir,
        options.rules,
    )?);
    let health = StoreHealth::new(store.backend());
    let spool_path = options.data_dir.join(SPOOL_FILE);
    let (spool, spooled) = Spool::open(&spool_path).map_err(|source| StoreError::Io {
        context: format!("cannot open the spool {}", spool_path.display()),
        source,
    })?;
    if !spooled.is_empty() {
        tracing::info!(records = spooled.len(), spool = %spool_path.display(), "found writes spooled by a previous run; applying them first");
    }
    let loaded = match load_with_retry(&*store, options.wait).await? {
        Some(loaded) => loaded,
        None => {
            tracing::warn!(
                backend = store.backend(),
                "starting without stored state: devices start unknown; writes are spooled until the database returns"
            );
            health.set_degraded(Some("unreachable at start-up".into()));
            Loaded::default()
        }
    };
    let devices = loaded.devices.len();
    let (restore, known) = restore_map(loaded, &spooled);
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
    };
    let writer = writer::spawn(
        store.clone(),
        spool,
        spooled,
        known,
        feed,
        health.clone(),
        config,
    );
    Ok(Started {
        store,
        health,
        restore,
        sink,
        writer,
    })
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

/// The database's state with the spooled records applied on top: the status to restore
/// per device, and the live devices the writer diffs the first inventory against.
fn restore_map(
    loaded: Loaded,
    spooled: &[Record],
) -> (HashMap<String, StoredStatus>, HashMap<String, DeviceRow>) {
    let mut status = loaded.status;
    let mut known: HashMap<String, DeviceRow> = loaded
        .devices
        .into_iter()
        .map(|d| (d.name.clone(), d))
        .collect();
    for r in spooled {
        match &r.kind {
            RecordKind::Transition {
                device,
                to,
                down_since,
                ..
            } => {
                let to = Status::parse(to).unwrap_or(Status::Unknown);
                let previous = status.get(device).copied();
                // Same rule as the stores: re-deciding an outage keeps its first down_since.
                let down_since = match previous {
                    Some(p) if p.status == Status::Down && to == Status::Down => p.down_since,
                    _ if to == Status::Down => *down_since,
                    _ => None,
                };
                status.insert(
                    device.clone(),
                    StoredStatus {
                        status: to,
                        down_since,
                    },
                );
            }
            RecordKind::Devices { upsert, removed } => {
                for name in removed {
                    known.remove(name);
                    status.remove(name);
                }
                for d in upsert {
                    known.insert(d.name.clone(), d.clone());
                }
            }
        }
    }
    (status, known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn transition(seq: u64, device: &str, to: &str, down_since: Option<i64>) -> Record {
        Record {
            boot: "b".into(),
            seq,
            at: DateTime::from_timestamp(1_800_000_000 + seq as i64, 0).unwrap(),
            kind: RecordKind::Transition {
                device: device.into(),
                address: "127.0.0.1".into(),
                from: "up".into(),
                to: to.into(),
                down_since: down_since.and_then(|s| DateTime::from_timestamp(s, 0)),
                version: seq,
            },
        }
    }

    #[test]
    fn spooled_transitions_override_the_database() {
        let mut loaded = Loaded::default();
        let t0 = DateTime::from_timestamp(1_000, 0);
        loaded.status.insert(
            "a".into(),
            StoredStatus {
                status: Status::Down,
                down_since: t0,
            },
        );
        loaded.status.insert(
            "b".into(),
            StoredStatus {
                status: Status::Up,
                down_since: None,
            },
        );
        let spooled = vec![
            transition(1, "a", "down", Some(2_000)),
            transition(2, "b", "down", Some(3_000)),
        ];
        let (status, _) = restore_map(loaded, &spooled);
        assert_eq!(
            status["a"].down_since, t0,
            "an outage re-decided keeps its first down_since"
        );
        assert_eq!(
            status["b"],
            StoredStatus {
                status: Status::Down,
                down_since: DateTime::from_timestamp(3_000, 0)
            }
        );
    }
}
