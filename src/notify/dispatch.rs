//! The dispatcher: reads the outbox in order, routes each notice to its receivers'
//! groups, and stores the messages the groups decide to send together with each
//! receiver's cursor (one transaction per receiver), then wakes its sender.
//!
//! What is durable is the outbox, the cursors and the stored messages; the groups are
//! memory. A crash loses only the waiting: at start each receiver's notices above its
//! cursor that no stored message carries are read again and grouped again, and the
//! alerts still firing that it was told of are restored to their groups for the repeats.
//! A receiver new to the store starts at the end of the outbox (it is not sent history).
//! Acknowledgements reach the groups from the commits' reports (and, at start and after
//! missed reports, from the open alerts): an acknowledged alert is not repeated.
//!
//! Reading "everything above the last id read" is exact only because outbox ids commit in
//! order: the store writer is the outbox's one writer and commits one transaction at a
//! time (a PostgreSQL sequence hands out ids at insert, so two concurrent writers could
//! commit 10 before 9, and 9 would be skipped). Anything else that writes alert changes
//! must go through the writer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::group::{Flush, Groups};
use super::metrics::NotifyMetrics;
use super::outbox::Builder;
use super::route::Router;
use super::sender::encode;
use super::status::ReceiverStatus;
use crate::state::State;
use crate::store::health::AlertReport;
use crate::store::notify::NotifyStore;
use crate::store::{AlertChange, AlertEvent, Db, StoreError};

/// Outbox rows read at once.
const BATCH: i64 = 2_000;
/// The outbox is read this often when no commit wakes the dispatcher (changes found
/// again after a lost commit answer are reported without a wake-up).
const POLL: Duration = Duration::from_secs(1);
const STORE_RETRY: Duration = Duration::from_secs(1);

pub struct Dispatcher {
    pub store: Arc<Db>,
    pub state: State,
    pub router: Router,
    pub external_url: Option<reqwest::Url>,
    pub receivers: Vec<Arc<ReceiverStatus>>,
    pub metrics: Arc<NotifyMetrics>,
}

/// Per receiver: the durable cursor, outbox ids above it already in its messages, its
/// groups, and messages decided but not yet stored.
struct Lane {
    cursor: i64,
    claimed: HashSet<i64>,
    groups: Groups,
    unsent: Vec<Flush>,
}

impl Dispatcher {
    pub async fn run(self, mut commits: broadcast::Receiver<AlertReport>) {
        let mut lanes = loop {
            match self.start().await {
                Ok(lanes) => break lanes,
                Err(e) => {
                    tracing::debug!(error = %e, "notifications: cannot read the outbox yet; retrying");
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
        };
        let mut read = lanes.iter().map(|l| l.cursor).min().unwrap_or(0);
        let mut open = true;
        // Said once per outage of the store (the writer says the rest).
        let mut failing = false;
        loop {
            let more = match self.read(&mut lanes, &mut read).await {
                Ok(more) => {
                    failing = false;
                    more
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, "notifications: cannot read the outbox; retrying");
                    }
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
            };
            self.flush(&mut lanes, read).await;
            if more {
                continue;
            }
            let next = lanes
                .iter()
                .filter_map(|l| l.groups.next_due(|p| self.router.policy(p).clone()))
                .min();
            let retry = lanes.iter().any(|l| !l.unsent.is_empty());
            let wait = match next {
                Some(t) => t.min(Instant::now() + POLL),
                None => Instant::now() + POLL,
            };
            let wait = if retry {
                wait.min(Instant::now() + STORE_RETRY)
            } else {
                wait
            };
            tokio::select! {
                r = commits.recv(), if open => match r {
                    Ok(report) => acknowledgements(&mut lanes, &report),
                    // Reports were missed, acknowledgements among them maybe: read them.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.reread_acks(&mut lanes).await,
                    Err(broadcast::error::RecvError::Closed) => open = false,
                },
                _ = tokio::time::sleep_until(wait) => {}
            }
        }
    }

    async fn start(&self) -> Result<Vec<Lane>, StoreError> {
        let last = self.store.outbox_last().await?;
        let mut lanes = Vec::new();
        let mut fresh = Vec::new();
        for r in &self.receivers {
            // A receiver new to the store was told nothing: no alert of it repeats.
            fresh.push(self.store.cursor(&r.name).await?.is_none());
            let cursor = self.store.init_cursor(&r.name, last).await?;
            let claimed: HashSet<i64> = self
                .store
                .claimed(&r.name, cursor)
                .await?
                .into_iter()
                .collect();
            lanes.push(Lane {
                cursor,
                claimed,
                groups: Groups::default(),
                unsent: Vec::new(),
            });
        }
        // The firing alerts each receiver was told of: their repeats go on.
        let open = self.store.outbox_open().await?;
        let snapshot = self.state.snapshot();
        let mut builder = Builder::new(&snapshot, self.external_url.as_ref());
        let now = Instant::now();
        for row in &open {
            if row.alert.acknowledged_at.is_some() {
                for lane in &mut lanes {
                    lane.groups.acknowledge(row.alert.id, true);
                }
            }
        }
        for row in open.iter().filter(|r| r.id > 0) {
            let notice = builder.notice(row);
            for t in self.router.targets(&notice) {
                let lane = &mut lanes[t.receiver];
                let told = row.id <= lane.cursor || lane.claimed.contains(&row.id);
                if told && !fresh[t.receiver] {
                    let policy = self.router.policy(t.policy);
                    lane.groups.restore(t.policy, policy, notice.clone(), now);
                }
            }
        }
        Ok(lanes)
    }

    /// The acknowledgements of the open alerts as the store has them, after reports were
    /// missed. Best effort: a store that cannot be read leaves them as they were.
    async fn reread_acks(&self, lanes: &mut [Lane]) {
        let open = match self.store.outbox_open().await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "notifications: cannot re-read acknowledgements");
                return;
            }
        };
        for lane in lanes.iter_mut() {
            lane.groups.forget_acknowledgements();
            for row in open.iter().filter(|r| r.alert.acknowledged_at.is_some()) {
                lane.groups.acknowledge(row.alert.id, true);
            }
        }
    }

    /// Routes the next outbox rows into the groups; true if there may be more.
    async fn read(&self, lanes: &mut [Lane], read: &mut i64) -> Result<bool, StoreError> {
        let rows = self.store.outbox_after(*read, BATCH).await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let snapshot = self.state.snapshot();
        let mut builder = Builder::new(&snapshot, self.external_url.as_ref());
        let now = Instant::now();
        for row in &rows {
            *read = row.id;
            let notice = builder.notice(row);
            for t in self.router.targets(&notice) {
                let lane = &mut lanes[t.receiver];
                if row.id <= lane.cursor || lane.claimed.remove(&row.id) {
                    continue; // in a stored message already
                }
                let policy = self.router.policy(t.policy);
                lane.groups.push(t.policy, policy, notice.clone(), now);
            }
        }
        Ok(rows.len() as i64 == BATCH)
    }

    /// Stores what is due, with each receiver's cursor, and wakes the senders.
    async fn flush(&self, lanes: &mut [Lane], read: i64) {
        let now = Instant::now();
        for (lane, status) in lanes.iter_mut().zip(&self.receivers) {
            let due = lane
                .groups
                .flush_due(now, |p| self.router.policy(p).clone());
            lane.unsent.extend(due);
            // Everything read is in a message or was not for this receiver, except what
            // still waits: in a group, or decided and not stored yet.
            let waiting = lane.groups.lowest_waiting();
            let unstored = lane
                .unsent
                .iter()
                .filter(|f| !f.repeat)
                .flat_map(|f| f.notices.iter().map(|n| n.outbox_id))
                .min();
            let low = waiting.into_iter().chain(unstored).min();
            let cursor = low.map_or(read, |id| id - 1).max(lane.cursor);
            status.set_waiting(lane.groups.waiting() as i64, &self.metrics);
            if lane.unsent.is_empty() && cursor == lane.cursor {
                continue;
            }
            let messages: Vec<_> = lane
                .unsent
                .iter()
                .map(|f| encode(&status.name, f.group.clone(), f.notices.clone(), 0, f.since))
                .collect();
            match self.store.enqueue(&status.name, cursor, &messages).await {
                Ok(_) => {
                    lane.cursor = cursor;
                    if !lane.unsent.is_empty() {
                        lane.unsent.clear();
                        status.wake.notify_one();
                    }
                }
                Err(e) => {
                    tracing::warn!(receiver = %status.name, error = %e, "notifications: cannot store messages; retrying");
                }
            }
        }
    }
}

/// Follows a commit's acknowledgements: an acknowledged alert is not repeated. (Its
/// openings and resolutions come from the outbox, in order; the report only wakes the
/// dispatcher for them.)
fn acknowledgements(lanes: &mut [Lane], report: &[AlertEvent]) {
    for e in report {
        let acknowledged = match e.change {
            AlertChange::Updated => e.alert.acknowledged_at.is_some(),
            AlertChange::Resolved => false,
            AlertChange::Opened => continue,
        };
        for lane in lanes.iter_mut() {
            lane.groups.acknowledge(e.alert.id, acknowledged);
        }
    }
}
