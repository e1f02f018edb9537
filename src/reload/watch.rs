//! What starts a reload: filesystem events (debounced), the periodic hash check, SIGHUP.
//!
//! The directory is watched, never single files: editors save by writing a temporary
//! file and renaming it over the old one, git replaces files, and a Kubernetes ConfigMap
//! swaps a `..data` symlink so that no event names the file that changed. Any event is
//! only a hint that something may have changed; the reload re-reads everything.
//!
//! The parent directory is watched too (not recursively), so a deleted and recreated
//! inventory directory, or a symlink to it that is repointed, is seen: before every
//! reload the watch is re-established if the directory's identity changed. The re-watch
//! happens before the re-read, so a change made in between is read, not lost.
//!
//! A change is applied once it has settled: no event for [`QUIET`] and no file still
//! open for writing ([`writing`]). A complete write is one closed by its writer, so a
//! write that pauses is not read half-way, and the reload still starts at most
//! [`QUIET`] after the close (100,000 devices then land in about half a second).
//! Whatever did land half-way (a writer that died) is caught by the mass-removal guard
//! when it removes many devices.

mod writing;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use super::{Reloader, Trigger};

/// A burst (a `git checkout` touching many files) is over after this much quiet...
pub const QUIET: Duration = Duration::from_millis(150);
/// ...but a steady trickle of events never delays a reload longer than this, so a change
/// applies within a second of being written.
pub const MAX_DELAY: Duration = Duration::from_millis(500);
/// A file still open for writing delays the reload until it is closed, up to this long
/// after the first event (a writer holding an inventory file open longer is not
/// writing one).
pub const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Runs the triggers until the returned task is aborted.
pub fn spawn(reloader: Reloader) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let warm = {
            let reloader = reloader.clone();
            tokio::spawn(async move { reloader.warm().await })
        };
        let periodic = tokio::spawn(periodic(reloader.clone()));
        let hangup = tokio::spawn(hangup(reloader.clone()));
        // Aborting this task drops the guard, which stops the others.
        let _guard = AbortOnDrop(vec![
            warm.abort_handle(),
            periodic.abort_handle(),
            hangup.abort_handle(),
        ]);
        watch(reloader).await;
    })
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Reloads after every burst of filesystem events.
pub async fn watch(reloader: Reloader) {
    let poke = Arc::new(Notify::new());
    let writing = Arc::new(writing::Writing::default());
    let mut dir = match DirWatch::new(reloader.dir(), poke.clone(), writing.clone()) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(
                error = %e, dir = %reloader.dir().display(),
                "cannot watch the inventory directory; changes apply only on the periodic check, SIGHUP or POST /-/reload"
            );
            return std::future::pending().await;
        }
    };
    loop {
        poke.notified().await;
        debounce(&poke, &writing).await;
        writing.clear();
        dir.ensure_watched();
        reloader.reload(Trigger::Watch).await;
    }
}

/// Waits until events stop for [`QUIET`], or [`MAX_DELAY`] after the first; while a
/// file is still open for writing, until it is closed (then at once if [`MAX_DELAY`]
/// has passed) or [`SETTLE_LIMIT`] after the first event.
async fn debounce(poke: &Notify, writing: &writing::Writing) {
    let first = Instant::now();
    let (latest, limit) = (first + MAX_DELAY, first + SETTLE_LIMIT);
    loop {
        let cap = if writing.any() { limit } else { latest };
        let quiet = (Instant::now() + QUIET).min(cap);
        tokio::select! {
            _ = poke.notified() => {}
            _ = sleep_until(quiet) => {
                if !writing.any() || Instant::now() >= limit {
                    return;
                }
                continue;
            }
        }
        if Instant::now() >= if writing.any() { limit } else { latest } {
            return;
        }
    }
}

/// The notify watcher on the inventory directory and its parent.
struct DirWatch {
    dir: PathBuf,
    watcher: notify::RecommendedWatcher,
    /// (device, inode) of the directory as last watched; None while it is missing.
    watched: Option<(u64, u64)>,
}

impl DirWatch {
    fn new(dir: &Path, poke: Arc<Notify>, writing: Arc<writing::Writing>) -> notify::Result<Self> {
        // notify reports absolute paths (joined to the working directory, as here), and
        // events are matched against this one.
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(notify::Error::io)?
                .join(dir)
        };
        let dir = dir.as_path();
        let scope = dir.to_path_buf();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if matters(&event, &scope) {
                if let Ok(e) = &event {
                    writing.note(e);
                }
                poke.notify_one();
            }
        })?;
        if let Some(parent) = dir.parent()
            && let Err(e) = watcher.watch(parent, RecursiveMode::NonRecursive)
        {
            tracing::warn!(
                error = %e, dir = %parent.display(),
                "cannot watch the inventory's parent directory; a recreated inventory directory is seen by the periodic check only"
            );
        }
        let mut w = Self {
            dir: dir.to_path_buf(),
            watcher,
            watched: None,
        };
        w.ensure_watched();
        Ok(w)
    }

    /// (Re-)watches the directory if it appeared or was replaced since last watched.
    fn ensure_watched(&mut self) {
        let now = std::fs::metadata(&self.dir)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if now == self.watched {
            return;
        }
        let _ = self.watcher.unwatch(&self.dir);
        self.watched = None;
        if now.is_some() {
            match self.watcher.watch(&self.dir, RecursiveMode::Recursive) {
                Ok(()) => self.watched = now,
                Err(e) => {
                    tracing::warn!(error = %e, dir = %self.dir.display(), "cannot watch the inventory directory")
                }
            }
        }
    }
}

/// Whether an event may mean the inventory changed. Reading the files (our own reloads
/// included) opens them: noise. The parent directory's watch also reports its other
/// entries (the settings file, an SQLite database written on every transition): only
/// events naming the inventory directory or something under it count. Errors (such as
/// an overflowed event queue) and events without paths might hide a change, so they do.
fn matters(event: &notify::Result<Event>, dir: &Path) -> bool {
    let Ok(e) = event else { return true };
    let relevant_kind = match e.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    relevant_kind && (e.paths.is_empty() || e.paths.iter().any(|p| p.starts_with(dir)))
}

/// The backstop for anything the watcher missed (network filesystems, full queues).
pub async fn periodic(reloader: Reloader) {
    let every = reloader.settings().check_interval;
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        reloader.reload(Trigger::Periodic).await;
    }
}

/// SIGHUP reloads, as with every Unix daemon.
async fn hangup(reloader: Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            return tracing::warn!(error = %e, "cannot install the SIGHUP handler; reload by SIGHUP is off");
        }
    };
    while hups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the inventory");
        // `systemctl reload` waits between these two (ExecReload sends the SIGHUP).
        crate::systemd::reloading();
        reloader.reload(Trigger::Signal).await;
        crate::systemd::reloaded();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};

    fn event(kind: EventKind, path: &str) -> notify::Result<Event> {
        Ok(Event::new(kind).add_path(PathBuf::from(path)))
    }

    #[test]
    fn only_events_under_the_inventory_count() {
        let dir = Path::new("/srv/config/inventory");
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(matters(&event(modify, "/srv/config/inventory/a.yaml"), dir));
        assert!(matters(
            &event(
                EventKind::Create(CreateKind::Folder),
                "/srv/config/inventory"
            ),
            dir
        ));
        assert!(
            !matters(&event(modify, "/srv/config/wardops.db-wal"), dir),
            "the parent's other entries"
        );
        assert!(!matters(
            &event(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "/srv/config/inventory/a.yaml"
            ),
            dir
        ));
        assert!(matters(
            &event(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/srv/config/inventory/a.yaml"
            ),
            dir
        ));
        assert!(matters(&Err(notify::Error::generic("queue overflow")), dir));
        assert!(
            matters(&Ok(Event::new(EventKind::Other)), dir),
            "no paths: maybe anything"
        );
    }
}
