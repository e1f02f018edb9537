//! GitOps hot reload of the inventory.
//!
//! The inventory directory is a git checkout, an editor's working copy or a Kubernetes
//! ConfigMap; each replaces files in its own way, so nothing here trusts an event to say
//! what changed. Every trigger — a filesystem event ([`watch`], debounced), the periodic
//! hash check, SIGHUP, `POST /-/reload` — runs the same [`Reloader::reload`]: re-read the
//! whole directory by path, skip if the content hash is unchanged, parse and validate
//! aside, and only then hand the new inventory to the app, which diffs it into the state
//! and the scheduler. An invalid inventory keeps the last good one running, and so does
//! one that would remove more than `reload.max_removed_share` of the devices ([`guard`]).
//!
//! [`Reloader::status`] is what `GET /api/v1/status` shows; [`ReloadMetrics`] the
//! `wardops_config_*` families.

mod cache;
mod guard;
pub mod metrics;
pub mod outcome;
pub mod read;
pub mod watch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::mpsc;

pub use metrics::{ReloadMetrics, ReloadResult};
pub use outcome::{Outcome, ReloadStatus, Trigger};
pub use read::Diff;

use crate::config::settings::ReloadSettings;
use crate::config::{Inventory, ProbeSettings};

/// Cheap-to-clone handle; every trigger shares one.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    defaults: ProbeSettings,
    settings: ReloadSettings,
    /// The app's inventory channel: applied in the order sent.
    sink: mpsc::Sender<Arc<Inventory>>,
    metrics: Arc<ReloadMetrics>,
    /// Serialises reloads so two triggers never send inventories out of order. A tokio
    /// mutex because it is held across the validation and the send.
    running: tokio::sync::Mutex<()>,
    /// Inventories handed to `sink` so far, the first (start-up) one included.
    sent: AtomicU64,
    /// How many inventories the app has applied, when it says so: a reload is reported
    /// only once the state runs it, not when it is merely queued.
    applied: OnceLock<tokio::sync::watch::Receiver<u64>>,
    /// Held only to read or write the fields, never across an await.
    book: Mutex<Book>,
    /// Per-file parse results; used only by the reload holding `running`.
    cache: Mutex<cache::FileCache>,
}

struct Book {
    running: Arc<Inventory>,
    revision: u64,
    applied_at: DateTime<Utc>,
    /// Hash of the last content that failed validation, so that automatic triggers do
    /// not re-parse and re-log it every time.
    failed_hash: Option<String>,
    /// The last attempt that found new content (or healed a failure).
    last: Option<Outcome>,
    last_check_at: Option<DateTime<Utc>>,
}

/// The longest a reload waits for the app to confirm it applied an inventory.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Reloader {
    /// Report reloads only once `applied` (a count of inventories the app has applied,
    /// the first included) says the new one runs.
    pub fn confirm_with(&self, applied: tokio::sync::watch::Receiver<u64>) {
        let _ = self.inner.applied.set(applied);
    }

    /// `running` is the inventory the app started with (already sent to `sink`).
    pub fn new(
        dir: PathBuf,
        defaults: ProbeSettings,
        settings: ReloadSettings,
        running: Arc<Inventory>,
        sink: mpsc::Sender<Arc<Inventory>>,
        metrics: Arc<ReloadMetrics>,
    ) -> Self {
        let now = Utc::now();
        metrics.loaded(unix_seconds(now));
        let book = Book {
            running,
            revision: 0,
            applied_at: now,
            failed_hash: None,
            last: None,
            last_check_at: None,
        };
        Self {
            inner: Arc::new(Inner {
                dir,
                defaults,
                settings,
                sink,
                metrics,
                running: tokio::sync::Mutex::new(()),
                sent: AtomicU64::new(1),
                applied: OnceLock::new(),
                book: Mutex::new(book),
                cache: Mutex::new(cache::FileCache::default()),
            }),
        }
    }

    /// A reloader of `running` from `dir` with default settings whose reloads nothing
    /// applies (no app receives them): the reloader of a test or a bench.
    pub fn idle(dir: PathBuf, running: Arc<Inventory>) -> Self {
        let (sink, _) = mpsc::channel(1);
        Self::new(
            dir,
            ProbeSettings::default(),
            ReloadSettings::default(),
            running,
            sink,
            Arc::new(ReloadMetrics::default()),
        )
    }

    pub fn settings(&self) -> &ReloadSettings {
        &self.inner.settings
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.inner.dir
    }

    pub fn status(&self) -> ReloadStatus {
        let book = self.inner.book.lock();
        ReloadStatus {
            revision: book.revision,
            hash: book.running.hash.clone(),
            devices: book.running.devices.len(),
            applied_at: book.applied_at,
            last_reload_successful: self.inner.metrics.last_successful(),
            last_reload: book.last.clone(),
            last_check_at: book.last_check_at,
            check_interval_seconds: self.inner.settings.check_interval.as_secs_f64(),
            http_endpoint: self.inner.settings.http_endpoint,
        }
    }

    /// Parses the running inventory's files into the per-file cache, so that the first
    /// reload is as fast as the next ones. Costs one more parse of the inventory, on the
    /// blocking pool, once.
    pub async fn warm(&self) {
        let _one_at_a_time = self.inner.running.lock().await;
        let inner = self.inner.clone();
        let running = inner.book.lock().running.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let candidate = read::read(&inner.dir, inner.settings.allow_empty);
            if let (Ok(sources), true) = (candidate.sources, candidate.hash == running.hash) {
                let mut cache = inner.cache.lock();
                // Built of the running devices themselves: the cache holds no second copy.
                let _ = read::validate(
                    &inner.dir,
                    &sources,
                    &inner.defaults,
                    inner.settings.allow_empty,
                    &mut cache,
                    Some(&running),
                );
            }
        })
        .await;
    }

    /// Re-reads the inventory and applies it if it changed and is valid.
    pub async fn reload(&self, trigger: Trigger) -> Outcome {
        let _one_at_a_time = self.inner.running.lock().await;
        let started = Instant::now();
        let inner = self.inner.clone();
        let (running, failed_hash) = {
            let book = inner.book.lock();
            (book.running.clone(), book.failed_hash.clone())
        };
        // Reading and parsing a large inventory takes long enough to stall a runtime
        // thread the device tasks need.
        let checked = tokio::task::spawn_blocking(move || {
            let s = &inner.settings;
            let candidate = read::read(&inner.dir, s.allow_empty);
            if candidate.hash == running.hash {
                return Checked::Unchanged {
                    hash: candidate.hash,
                    disk_matches_running: true,
                };
            }
            if !trigger.is_explicit() && failed_hash.as_deref() == Some(candidate.hash.as_str()) {
                return Checked::Unchanged {
                    hash: candidate.hash,
                    disk_matches_running: false,
                };
            }
            let validated = candidate.sources.and_then(|sources| {
                let mut cache = inner.cache.lock();
                read::validate(
                    &inner.dir,
                    &sources,
                    &inner.defaults,
                    s.allow_empty,
                    &mut cache,
                    Some(&running),
                )
            });
            match validated {
                Ok(inventory) => {
                    let diff = Diff::between(&running, &inventory);
                    let share = s.max_removed_share;
                    match guard::mass_removal(&inner.dir, &diff, running.devices.len(), share) {
                        Some(refused) => Checked::Invalid {
                            hash: candidate.hash,
                            errors: vec![refused.to_string()],
                        },
                        None => Checked::Valid {
                            inventory: Arc::new(inventory),
                            diff,
                        },
                    }
                }
                Err(errors) => Checked::Invalid {
                    hash: candidate.hash,
                    errors: errors.0.iter().map(|e| e.to_string()).collect(),
                },
            }
        })
        .await
        .unwrap_or_else(|e| Checked::Invalid {
            hash: String::new(),
            errors: vec![format!("reload panicked: {e}")],
        });
        let duration_seconds = started.elapsed().as_secs_f64();
        self.conclude(trigger, checked, duration_seconds).await
    }

    async fn conclude(&self, trigger: Trigger, checked: Checked, duration_seconds: f64) -> Outcome {
        let at = Utc::now();
        let (result, hash, diff, errors, disk_matches_running) = match checked {
            Checked::Unchanged {
                hash,
                disk_matches_running,
            } => (
                ReloadResult::Unchanged,
                hash,
                None,
                Vec::new(),
                disk_matches_running,
            ),
            Checked::Invalid { hash, errors } => (ReloadResult::Failure, hash, None, errors, false),
            Checked::Valid { inventory, diff } => {
                let hash = inventory.hash.clone();
                if self.inner.sink.send(inventory.clone()).await.is_err() {
                    // The app is shutting down; nothing will run this inventory.
                    let errors = vec!["the appliance is shutting down".to_string()];
                    (ReloadResult::Failure, hash, None, errors, false)
                } else {
                    let sent = self.inner.sent.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(applied) = self.inner.applied.get() {
                        let mut applied = applied.clone();
                        let wait = applied.wait_for(|&n| n >= sent);
                        // Bounded: a wedged supervisor must not wedge reloads as well.
                        let _ = tokio::time::timeout(APPLY_WAIT, wait).await;
                    }
                    let replaced = {
                        let mut book = self.inner.book.lock();
                        book.revision += 1;
                        book.applied_at = at;
                        std::mem::replace(&mut book.running, inventory)
                    };
                    // Freeing 100,000 devices takes ~0.1 s: not under the lock that
                    // `GET /api/v1/status` takes, and not on a runtime worker.
                    tokio::task::spawn_blocking(move || drop(replaced));
                    (ReloadResult::Success, hash, Some(diff), Vec::new(), true)
                }
            }
        };
        self.inner
            .metrics
            .record(result, unix_seconds(at), disk_matches_running);
        let mut book = self.inner.book.lock();
        match result {
            ReloadResult::Failure => book.failed_hash = Some(hash.clone()),
            _ if disk_matches_running => book.failed_hash = None,
            _ => {}
        }
        let outcome = Outcome {
            result,
            trigger,
            at,
            hash,
            revision: book.revision,
            devices: book.running.devices.len(),
            diff,
            errors,
            duration_seconds,
        };
        log(&outcome);
        book.last_check_at = Some(at);
        // "Unchanged" keeps the last real attempt (and a failure's errors) on show, unless
        // it is the disk going back to the running content after a failure.
        let healed = result == ReloadResult::Unchanged
            && disk_matches_running
            && book
                .last
                .as_ref()
                .is_some_and(|l| l.result == ReloadResult::Failure);
        if result != ReloadResult::Unchanged || healed {
            book.last = Some(outcome.clone());
        }
        outcome
    }
}

enum Checked {
    Unchanged {
        hash: String,
        disk_matches_running: bool,
    },
    Valid {
        inventory: Arc<Inventory>,
        diff: Diff,
    },
    Invalid {
        hash: String,
        errors: Vec<String>,
    },
}

fn log(o: &Outcome) {
    match o.result {
        ReloadResult::Success => {
            let d = o.diff.unwrap_or_default();
            tracing::info!(
                trigger = ?o.trigger, revision = o.revision, hash = %o.hash, devices = o.devices,
                added = d.added, removed = d.removed, readdressed = d.readdressed, modified = d.modified,
                seconds = o.duration_seconds, "inventory reloaded"
            );
        }
        ReloadResult::Failure => {
            for e in &o.errors {
                tracing::error!(trigger = ?o.trigger, "{e}");
            }
            tracing::error!(
                trigger = ?o.trigger, errors = o.errors.len(), running_revision = o.revision,
                "inventory reload rejected; the last good inventory keeps running"
            );
        }
        ReloadResult::Unchanged => {
            tracing::debug!(trigger = ?o.trigger, hash = %o.hash, "inventory unchanged")
        }
    }
}

fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}
