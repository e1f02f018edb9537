//! The appliance's own running time, for reports: time it was not running is
//! unmonitored, never counted as up.
//!
//! Each boot writes `run` records through the writer like everything else (so a run
//! while the database is away is spooled, not lost): one at start, one every
//! [`HEARTBEAT_EVERY`], and one marked `stopped` at a clean stop. The `runs` table keeps
//! per boot its start and last heartbeat. A run that crashed is known to have watched up
//! to its last heartbeat only; the time after it (at most one period) is unmonitored.
//! The run going on is counted up to now by the report itself ([`super::StoreHealth::run`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Actions, RecordKind};
use crate::state::Clock;

/// How often a run says it is still going: the most a crash can cost a report of
/// monitored time. Short enough to be exact to half a minute, long enough to cost
/// nothing (a row update every 30 s).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// The heartbeat task of this run.
pub struct Heartbeat {
    actions: Actions,
    clock: Arc<dyn Clock>,
    started_at: DateTime<Utc>,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    /// Marks the run started at `clock`'s now and keeps marking it every
    /// [`HEARTBEAT_EVERY`] (on tokio's clock, so tests can pause it).
    pub fn start(actions: Actions, clock: Arc<dyn Clock>) -> Heartbeat {
        let started_at = clock.now();
        let task = {
            let (actions, clock) = (actions.clone(), clock.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(HEARTBEAT_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    // The first tick is at once: the run is stored as it starts.
                    every.tick().await;
                    let mark = RecordKind::Run {
                        started_at,
                        stopped: false,
                    };
                    if actions.send(clock.now(), mark).is_err() {
                        return; // the writer is gone: the appliance is stopping
                    }
                }
            })
        };
        Heartbeat {
            actions,
            clock,
            started_at,
            task,
        }
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// A clean stop: the last mark, `stopped`. Sent before the writer's last commit.
    pub fn stop(self) {
        self.task.abort();
        let mark = RecordKind::Run {
            started_at: self.started_at,
            stopped: true,
        };
        // The writer gone already is a crash as far as the runs table knows.
        let _ = self.actions.send(self.clock.now(), mark);
    }
}
