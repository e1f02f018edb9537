//! The live event hub: keeps the last [`BACKLOG`] events for `Last-Event-ID` resumes
//! and fans them out through one broadcast ring.
//!
//! Each client is a cursor in that ring, so its buffer is bounded by the ring's size and
//! a stalled client costs nobody anything: it only finds out, when it is next polled,
//! that it fell behind (`Lagged`) and is dropped with a final event saying so.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::FeedConfig;
use super::item::{Boot, EventId, Item, Key, Scope, format_id};

/// Events kept for resumes: at tens of transitions a minute, hours of history.
pub const BACKLOG: usize = 10_000;
/// The last inventory swap the hub saw, for the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryInfo {
    pub state_version: u64,
    pub at: DateTime<Utc>,
    pub devices: usize,
    pub hash: String,
}

struct Backlog {
    items: VecDeque<Arc<Item>>,
    /// Every event with a key above this is in `items` (or still to come).
    floor: Key,
    last: Key,
}

pub struct Hub {
    /// Written into every id, so that ids of another process are told apart.
    pub boot: Boot,
    backlog: Mutex<Backlog>,
    tx: broadcast::Sender<Arc<Item>>,
    streams: AtomicUsize,
    pub max_streams: usize,
    pub heartbeat: Duration,
    closing: watch::Sender<bool>,
    pub(super) last_inventory: Mutex<Option<InventoryInfo>>,
    /// The last state version whose event the hub has published (or skipped in a
    /// discontinuity), for [`Hub::caught_up`].
    pub(super) state_version: watch::Sender<u64>,
}

/// A client's place in the feed: what it missed, then the live ring.
pub struct Subscription {
    pub replay: Vec<Arc<Item>>,
    /// Set when the client asked to resume from before the backlog, or from an id this
    /// process never issued (another boot's, a future one): it must reload rather than
    /// trust its page.
    pub reset: bool,
    pub rx: broadcast::Receiver<Arc<Item>>,
    pub current: Key,
}

/// Held by each open stream; frees its slot when dropped.
pub struct StreamSlot(Arc<Hub>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    pub fn new(start: u64, max_streams: usize, feed: FeedConfig) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(feed.client_buffer.max(1));
        Arc::new(Hub {
            boot: rand::random(),
            backlog: Mutex::new(Backlog {
                items: VecDeque::new(),
                floor: (start, 0),
                last: (start, 0),
            }),
            tx,
            streams: AtomicUsize::new(0),
            max_streams,
            heartbeat: feed.heartbeat,
            closing: watch::Sender::new(false),
            last_inventory: Mutex::new(None),
            state_version: watch::Sender::new(start),
        })
    }

    /// Waits until the hub has published the state's events up to `version`, so that an
    /// event caused by that version (an alert) follows it in the feed.
    pub async fn caught_up(&self, version: u64) {
        let mut published = self.state_version.subscribe();
        // Never fails: `self` holds the sender.
        let _ = published.wait_for(|&v| v >= version).await;
    }

    /// Appends `item` (its key must be above every earlier one) and sends it live.
    pub fn publish(&self, item: Item) {
        let mut b = self.backlog.lock();
        self.push(&mut b, item);
    }

    /// Publishes an event that is not a state change (an alert), keyed after the last
    /// id under the same lock so that ids keep increasing.
    pub fn publish_alert(&self, name: &'static str, scope: Option<Scope>, data: &impl Serialize) {
        let mut b = self.backlog.lock();
        let key = (b.last.0, b.last.1 + 1);
        self.push(&mut b, Item::new(self.boot, key, name, scope, data));
    }

    fn push(&self, b: &mut Backlog, item: Item) {
        let item = Arc::new(item);
        if item.key <= b.last {
            // Only a bug can get here; a client would otherwise skip the event on resume.
            tracing::error!(id = %self.format(item.key), last = %self.format(b.last), "event id out of order; dropped");
            return;
        }
        b.last = item.key;
        if b.items.len() == BACKLOG
            && let Some(old) = b.items.pop_front()
        {
            b.floor = old.key;
        }
        b.items.push_back(item.clone());
        // Sent under the lock so that a subscriber's replay and live feed meet exactly.
        let _ = self.tx.send(item);
    }

    /// Forgets the backlog: events were lost, so every resume point resets.
    pub fn discontinuity(&self) {
        let mut b = self.backlog.lock();
        b.items.clear();
        b.floor = (u64::MAX, 0);
    }

    /// Subscribes a client that has seen everything up to `since` (None: a new client,
    /// interested in what happens from now on).
    pub fn subscribe(&self, since: Option<EventId>) -> Subscription {
        let b = self.backlog.lock();
        let rx = self.tx.subscribe();
        let current = b.last;
        let (replay, reset) = match since {
            None => (Vec::new(), false),
            // Its versions are not ours, however alike the numbers.
            Some(id) if id.boot != Some(self.boot) => (Vec::new(), true),
            Some(EventId { key, .. }) if key > b.last || key < b.floor => (Vec::new(), true),
            Some(EventId { key, .. }) => (
                b.items.iter().filter(|i| i.key > key).cloned().collect(),
                false,
            ),
        };
        Subscription {
            replay,
            reset,
            rx,
            current,
        }
    }

    /// Takes a stream slot, or None at the cap.
    pub fn open_stream(self: &Arc<Self>) -> Option<StreamSlot> {
        let taken = self.streams.fetch_add(1, Ordering::Relaxed);
        let slot = StreamSlot(self.clone());
        (taken < self.max_streams).then_some(slot)
    }

    pub fn open_streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    pub fn last_key(&self) -> Key {
        self.backlog.lock().last
    }

    /// `key` as an id of this hub, as clients see it.
    pub fn format(&self, key: Key) -> String {
        format_id(self.boot, key)
    }

    /// `key` as an id of this hub, as clients send it back.
    pub fn id(&self, key: Key) -> EventId {
        EventId {
            boot: Some(self.boot),
            key,
        }
    }

    pub fn last_inventory(&self) -> Option<InventoryInfo> {
        self.last_inventory.lock().clone()
    }

    /// Ends every stream (server shutdown); new ones end at once.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(hub: &Hub, v: u64) -> Item {
        Item::new(hub.boot, (v, 0), "transition", None, &v)
    }

    #[test]
    fn resume_replays_what_was_missed_or_resets() {
        let hub = Hub::new(
            0,
            10,
            FeedConfig {
                client_buffer: 16,
                ..FeedConfig::default()
            },
        );
        for v in 1..=BACKLOG as u64 + 5 {
            hub.publish(item(&hub, v));
        }
        let s = hub.subscribe(Some(hub.id((BACKLOG as u64, 0))));
        assert!(!s.reset);
        assert_eq!(
            s.replay.iter().map(|i| i.key.0).collect::<Vec<_>>(),
            (BACKLOG as u64 + 1..=BACKLOG as u64 + 5).collect::<Vec<_>>()
        );
        // Events 1..=5 fell out of the backlog: a client that saw 5 misses nothing, one
        // that saw only 4 missed event 5.
        let at_floor = hub.subscribe(Some(hub.id((5, 0))));
        assert!(!at_floor.reset, "everything after 5 is still there");
        assert_eq!(at_floor.replay.first().map(|i| i.key.0), Some(6));
        assert!(
            hub.subscribe(Some(hub.id((4, 0)))).reset,
            "before the backlog"
        );
        assert!(
            hub.subscribe(Some(hub.id((1_000_000, 0)))).reset,
            "an id never issued"
        );
        assert!(hub.subscribe(None).replay.is_empty());
    }

    #[test]
    fn an_id_of_another_process_resets_even_when_its_key_is_in_the_backlog() {
        let hub = Hub::new(0, 10, FeedConfig::default());
        for v in 1..=5 {
            hub.publish(item(&hub, v));
        }
        let ours = hub.subscribe(Some(hub.id((2, 0))));
        assert!(!ours.reset && ours.replay.len() == 3);
        let other = EventId {
            boot: Some(hub.boot.wrapping_add(1)),
            key: (2, 0),
        };
        let theirs = hub.subscribe(Some(other));
        assert!(theirs.reset && theirs.replay.is_empty());
        let older_form = EventId {
            boot: None,
            key: (2, 0),
        };
        assert!(hub.subscribe(Some(older_form)).reset);
    }

    #[test]
    fn the_stream_cap_frees_slots() {
        let hub = Hub::new(
            0,
            2,
            FeedConfig {
                client_buffer: 16,
                ..FeedConfig::default()
            },
        );
        let a = hub.open_stream().unwrap();
        let _b = hub.open_stream().unwrap();
        assert!(hub.open_stream().is_none());
        drop(a);
        assert!(hub.open_stream().is_some());
    }
}
