//! A member's view of the whole fleet (docs/cluster.md, "Take-over keeps the outage" and
//! "Live events"): the devices of the shards it holds it probes itself; every other
//! device shows what its owner said, so any member serves every device on its pages,
//! JSON and SSE.
//!
//! One task does both jobs, so that they never disagree about which shards are this
//! member's:
//!
//! - **Take-over.** The member's loop publishes what it holds ([`Owned`]); this task
//!   passes it on to the scheduler and the writer (`acting`), but a shard newly taken only
//!   once every device of it is loaded from PostgreSQL's `device_state` into the state
//!   (status and `down_since`, [`State::apply_foreign`]): its first verdict then continues
//!   an outage in progress, with its start and its one alert. Withdrawals and the fence's
//!   deadline are passed on at once. A load that fails leaves the shard out until a later
//!   round's load succeeds.
//! - **Other members' words.** Events from the feed ([`super::events::reader::Reader`]) about a
//!   device of a shard this member does not act on are applied to the state; those about
//!   its own are dropped (its own verdicts are the truth). While the feed is in fallback,
//!   and once at every change of the feed's status, of the live members (a member killed
//!   may leave committed events its relay never sent) or loss of a shard, every
//!   device's `device_state` is read instead ([`super::events::fallback`]); and once a
//!   minute anyway, so that nothing missed stays wrong for long.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, watch};

use super::events::fallback::{self, DeviceState};
use super::events::{AlertState, ClusterEvent, EventKind, FeedStatus};
use super::member::{Counters, Owned};
use super::shard_of;
use crate::state::State;
use crate::state::foreign::Word;

/// What the view did, for the cluster metrics.
#[derive(Debug, Default)]
pub struct ViewStats {
    /// Other members' events applied (whether or not they changed a status).
    pub events_applied: AtomicU64,
    /// Events about this member's own devices, dropped.
    pub events_own: AtomicU64,
    /// Shards whose devices were loaded before this member acted on them.
    pub shards_loaded: AtomicU64,
    /// Reads of every device's stored status (take-overs and fallback), and the failed.
    pub reads: AtomicU64,
    pub reads_failed: AtomicU64,
}

/// Told of an alert of a device another member opened (true) or resolved (false).
pub type AlertCounts = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// The view's task; see the module's documentation.
pub struct View {
    pub pool: PgPool,
    pub state: State,
    /// Told of each alert another member opened (true) or resolved (false), by device:
    /// the pages' open alert counts (the store's health keeps them).
    pub alert_counts: AlertCounts,
    /// What the member's loop holds.
    pub held: watch::Receiver<Owned>,
    /// The loop's counters: the live members among them.
    pub counters: Arc<Counters>,
    /// What the scheduler and the writer act on.
    pub acting: watch::Sender<Owned>,
    pub events: mpsc::Receiver<ClusterEvent>,
    pub feed: watch::Receiver<FeedStatus>,
    pub stats: Arc<ViewStats>,
    /// How often every device is read while the feed is in fallback.
    pub fallback_every: Duration,
    /// How long one read of every device may take before it counts as failed.
    pub read_timeout: Duration,
}

/// Every device is read this often even while the feed is live.
const ANTI_ENTROPY: Duration = Duration::from_secs(60);

impl View {
    /// Runs until the member's loop or the feed is gone.
    pub async fn run(mut self) {
        // Once at the start: what happened before the feed was followed.
        let mut refresh = true;
        let mut poll = tokio::time::interval(self.fallback_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut anyway = tokio::time::interval(ANTI_ENTROPY);
        anyway.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut members = self.counters.members_live.load(Ordering::Relaxed);
        loop {
            if std::mem::take(&mut refresh) {
                self.refresh().await;
            }
            let in_fallback = matches!(*self.feed.borrow(), FeedStatus::Fallback { .. });
            tokio::select! {
                changed = self.held.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    refresh = self.follow_held().await;
                    let now = self.counters.members_live.load(Ordering::Relaxed);
                    refresh |= std::mem::replace(&mut members, now) != now;
                }
                event = self.events.recv() => match event {
                    Some(event) => self.apply(event),
                    None => return,
                },
                changed = self.feed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Into fallback: read now; back to live: once more, for the gap.
                    refresh = true;
                }
                _ = poll.tick(), if in_fallback => refresh = true,
                _ = anyway.tick() => refresh = true,
            }
        }
    }

    /// Passes on what the loop holds, the shards newly taken once loaded. Answers whether
    /// a shard was lost (its new owner's words may have been dropped meanwhile).
    async fn follow_held(&mut self) -> bool {
        let held = self.held.borrow_and_update().clone();
        let acting = self.acting.borrow().clone();
        let lost = acting.shards.keys().any(|s| !held.shards.contains_key(s));
        let gained: BTreeSet<u16> = held
            .shards
            .iter()
            .filter(|&(s, e)| acting.shards.get(s) != Some(e))
            .map(|(&s, _)| s)
            .collect();
        if gained.is_empty() {
            self.acting.send_replace(held);
            return lost;
        }
        // Withdrawals and the new deadline first: nothing waits for the load.
        let mut interim = held.clone();
        interim.shards.retain(|s, _| !gained.contains(s));
        self.acting.send_replace(interim.clone());
        let Some(states) = self.read_all().await else {
            return lost;
        };
        // The shards gained, and with the same read every other device this member
        // does not act on: a hand-over is when another member's word is most likely
        // to be in flight past this member's feed (seen in the cluster test: a device
        // decided by its first owner just before this member followed the stream
        // stayed `unknown` here until the next full read, a minute later).
        for s in states
            .iter()
            .filter(|s| !interim.shards.contains_key(&shard_of(&s.device)))
        {
            self.state.apply_foreign(&s.device, word_of(s));
        }
        self.stats
            .shards_loaded
            .fetch_add(gained.len() as u64, Ordering::Relaxed);
        // What the loop holds now, which may have changed while the load ran: a shard
        // taken meanwhile waits for the next load.
        let now = self.held.borrow().clone();
        let mut next = now.clone();
        next.shards
            .retain(|s, e| interim.shards.contains_key(s) || held.shards.get(s) == Some(e));
        tracing::info!(
            shards = gained.len(),
            acting = next.shards.len(),
            "cluster: shards taken over"
        );
        self.acting.send_replace(next);
        lost
    }

    /// Applies another member's event, unless it is about a device this member acts on.
    fn apply(&self, event: ClusterEvent) {
        let shard = shard_of(event.device());
        if self.acting.borrow().shards.contains_key(&shard) {
            self.stats.events_own.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.events_applied.fetch_add(1, Ordering::Relaxed);
        match event.kind {
            EventKind::Transition {
                device,
                to,
                down_since,
                ..
            } => {
                let word = Word {
                    status: to,
                    down_since,
                    at: event.at,
                };
                self.state.apply_foreign(&device, word);
            }
            EventKind::Alert { device, state, .. } => match state {
                AlertState::Opened => (self.alert_counts)(&device, true),
                AlertState::Resolved => (self.alert_counts)(&device, false),
                AlertState::Acknowledged | AlertState::Unacknowledged => {}
            },
        }
    }

    /// Every device this member does not act on, as PostgreSQL has it.
    async fn refresh(&self) {
        let Some(states) = self.read_all().await else {
            return;
        };
        let acting = self.acting.borrow().clone();
        for s in states
            .iter()
            .filter(|s| !acting.shards.contains_key(&shard_of(&s.device)))
        {
            self.state.apply_foreign(&s.device, word_of(s));
        }
    }

    async fn read_all(&self) -> Option<Vec<DeviceState>> {
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        let read = tokio::time::timeout(self.read_timeout, fallback::device_states(&self.pool));
        match read.await {
            Ok(Ok(states)) => Some(states),
            Ok(Err(e)) => {
                self.stats.reads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cluster: reading the devices' stored status failed");
                None
            }
            Err(_) => {
                self.stats.reads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(timeout = ?self.read_timeout, "cluster: reading the devices' stored status timed out");
                None
            }
        }
    }
}

fn word_of(s: &DeviceState) -> Word {
    Word {
        status: s.status,
        down_since: s.down_since,
        at: s.changed_at,
    }
}
