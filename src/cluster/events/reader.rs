//! The reader: follows the stream on its own connection (`XREAD BLOCK` from the last id
//! read), drops repeats and the member's own events, hands the others' to a channel, and
//! publishes whether the feed can be trusted ([`FeedStatus`], a `watch`).
//!
//! - **Repeats.** The relay publishes at least once, each member's rows in increasing
//!   `outbox_id` ([`super::relay`]), so the highest id seen per member is all it keeps:
//!   an event at or below it is a repeat.
//! - **Fallback.** From the start until the first read succeeds, whenever a Redis call
//!   fails or times out, and when the stream was trimmed past the last id read before it
//!   was read: `XINFO STREAM` (Redis 7) says how many entries were ever added and which
//!   is the first still there, which against the count read tells a gap. It is looked at
//!   after each reconnect, after each full batch (the reader is behind) and every few
//!   seconds. Live again at the next read that finds no gap. An event lost with a Redis
//!   that died was committed before the reader noticed, so the consumer's read of
//!   `device_state` on entering fallback has it: a consumer reads it on every switch to
//!   fallback and every few seconds while it lasts. [`ReaderStats::fallbacks`] counts the switches, for a consumer that
//!   might see a short one coalesced by the `watch`.
//! - **A new stream.** After a reconnect, a stream that is gone or whose last generated
//!   id is below the last id read (a Redis restarted empty) is read from its start:
//!   its ids need not follow the old ones, and repeats are dropped anyway.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use tokio::sync::{mpsc, watch};

use super::{ClusterEvent, DecodeError, EntryId, FIELD, FeedError, FeedSettings, FeedStatus};
use super::{connect, timed};

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the stream's last entry now (`$`): only what comes next.
    Now,
    /// After this id (a consumer resuming).
    After(EntryId),
}

/// What a reader did, for the cluster metrics.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Events handed on.
    pub delivered: AtomicU64,
    /// Events dropped as repeats.
    pub repeats: AtomicU64,
    /// Entries that were not an event of this version (logged and skipped).
    pub undecodable: AtomicU64,
    /// Switches to [`FeedStatus::Fallback`].
    pub fallbacks: AtomicU64,
}

/// Follows the stream for one member.
pub struct Reader {
    settings: FeedSettings,
    member: String,
    stats: Arc<ReaderStats>,
    pub start: Start,
    /// How long one `XREAD` blocks.
    pub block: Duration,
    /// Entries read at a time.
    pub count: usize,
    /// First and longest wait between reconnections.
    pub backoff: (Duration, Duration),
    /// How often the stream is looked at for a gap while reading (besides after each
    /// reconnect and each full batch).
    pub check_every: Duration,
}

impl Reader {
    pub fn new(settings: FeedSettings, member: impl Into<String>) -> Reader {
        Reader {
            settings,
            member: member.into(),
            stats: Arc::default(),
            start: Start::Now,
            block: Duration::from_secs(1),
            count: 500,
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            check_every: Duration::from_secs(5),
        }
    }

    pub fn stats(&self) -> Arc<ReaderStats> {
        self.stats.clone()
    }

    /// Spawns [`Reader::run`]; the status starts in fallback (`connecting`).
    pub fn spawn(
        self,
        events: mpsc::Sender<ClusterEvent>,
    ) -> (watch::Receiver<FeedStatus>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(FeedStatus::Fallback {
            reason: "connecting".into(),
        });
        (rx, tokio::spawn(self.run(events, tx)))
    }

    /// Reads until `events` is closed (or the task is dropped).
    pub async fn run(self, events: mpsc::Sender<ClusterEvent>, status: watch::Sender<FeedStatus>) {
        let mut state = Follow {
            last: match self.start {
                Start::Now => None,
                Start::After(id) => Some(id),
            },
            seen: HashMap::new(),
            position: None,
            reached_live: false,
        };
        let mut backoff = self.backoff.0;
        loop {
            let why = match self.follow(&mut state, &events, &status).await {
                Ok(()) => return, // the consumer is gone
                Err(e) => e,
            };
            tracing::warn!(error = %why, retry_in = ?backoff, "cluster feed: fallback");
            self.set(&status, fallback(format!("{why}")));
            // A connection that worked for a while starts the backoff over.
            if std::mem::take(&mut state.reached_live) {
                backoff = self.backoff.0;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.backoff.1);
        }
    }

    /// One connection's worth of reading: Ok when the consumer is gone.
    async fn follow(
        &self,
        state: &mut Follow,
        events: &mpsc::Sender<ClusterEvent>,
        status: &watch::Sender<FeedStatus>,
    ) -> Result<(), FeedError> {
        let t = self.settings.timeout;
        let mut conn = connect(&self.settings, self.block + t).await?;
        let mut gap = match state.last {
            None => {
                self.tail(&mut conn, state).await?;
                None
            }
            Some(last) => self.resync(&mut conn, state, last).await?,
        };
        let mut checked = tokio::time::Instant::now();
        let key = [self.settings.stream.as_str()];
        let opts = StreamReadOptions::default()
            .block(self.block.as_millis() as usize)
            .count(self.count);
        loop {
            let last = state.last.unwrap_or(EntryId(0, 0)).to_string();
            let reply: Option<StreamReadReply> = timed(
                "xread",
                self.block + t,
                conn.xread_options(&key, &[last.as_str()], &opts),
            )
            .await?;
            let entries: Vec<StreamId> = reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect();
            let full = entries.len() >= self.count;
            match gap.take() {
                Some(reason) => self.set(status, fallback(reason)),
                None => {
                    state.reached_live = true;
                    self.set(status, FeedStatus::Live);
                }
            }
            for entry in entries {
                if let Some(id) = EntryId::parse(&entry.id) {
                    state.last = Some(id);
                }
                state.position = state.position.map(|p| p + 1);
                let Some(event) = self.accept(state, &entry) else {
                    continue;
                };
                if events.send(event).await.is_err() {
                    return Ok(());
                }
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            // Behind by a batch or more, or a while since the last look (a reader whose
            // consumer was slow can fall behind in partial batches): the stream may have
            // been trimmed past us.
            if (full || checked.elapsed() >= self.check_every)
                && let Some(last) = state.last
            {
                checked = tokio::time::Instant::now();
                gap = match self.info(&mut conn).await? {
                    Some(info) => info.gap(state, last),
                    None => None,
                };
            }
        }
    }

    /// The event of `entry` if it is another member's and not a repeat.
    fn accept(&self, state: &mut Follow, entry: &StreamId) -> Option<ClusterEvent> {
        let event = match decode(entry) {
            Ok(event) => event,
            Err(e) => {
                self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stream = %self.settings.stream, id = %entry.id, error = %e,
                    "cluster feed: entry skipped");
                return None;
            }
        };
        if event.member == self.member {
            return None;
        }
        let max = state.seen.entry(event.member.clone()).or_insert(0);
        if event.outbox_id <= *max {
            self.stats.repeats.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *max = event.outbox_id;
        Some(event)
    }

    /// Starts after the stream's last entry now (`$`; 0-0 without a stream), knowing
    /// how many entries were added up to it.
    async fn tail(
        &self,
        conn: &mut MultiplexedConnection,
        state: &mut Follow,
    ) -> Result<(), FeedError> {
        let info = self.info(conn).await?;
        state.last = Some(
            info.as_ref()
                .and_then(|i| i.last_generated)
                .unwrap_or(EntryId(0, 0)),
        );
        state.position = info.map_or(Some(0), |i| i.entries_added);
        Ok(())
    }

    /// Where to go on from `last` on a new connection, and a gap if one is known.
    async fn resync(
        &self,
        conn: &mut MultiplexedConnection,
        state: &mut Follow,
        last: EntryId,
    ) -> Result<Option<String>, FeedError> {
        let Some(info) = self.info(conn).await? else {
            // Gone: whatever comes is new.
            state.last = Some(EntryId(0, 0));
            state.position = Some(0);
            return Ok(None);
        };
        if info.last_generated.is_some_and(|g| g < last) {
            // A new stream under the same key: read it from its start.
            state.last = Some(EntryId(0, 0));
            state.position = Some(0);
            return Ok(info.gap(state, EntryId(0, 0)));
        }
        Ok(info.gap(state, last))
    }

    /// `XINFO STREAM`'s ids, or None when the stream does not exist.
    async fn info(&self, conn: &mut MultiplexedConnection) -> Result<Option<Info>, FeedError> {
        let t = self.settings.timeout;
        let stream = self.settings.stream.as_str();
        let exists: bool = timed("exists", t, conn.exists(stream)).await?;
        if !exists {
            return Ok(None);
        }
        let cmd = redis::cmd("XINFO").arg("STREAM").arg(stream).clone();
        let map: HashMap<String, redis::Value> = timed("xinfo", t, cmd.query_async(conn)).await?;
        let id = |field: &str| {
            map.get(field)
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                .and_then(|s| EntryId::parse(&s))
        };
        let count = |field: &str| {
            map.get(field)
                .and_then(|v| redis::from_redis_value_ref::<u64>(v).ok())
        };
        Ok(Some(Info {
            last_generated: id("last-generated-id"),
            // 0-0 in an empty stream.
            first: id("recorded-first-entry-id").filter(|&f| f > EntryId(0, 0)),
            length: count("length").unwrap_or(0),
            entries_added: count("entries-added"),
        }))
    }

    /// Publishes `new` if it differs; a switch from live to fallback is counted first, so
    /// whoever sees the switch sees it counted.
    fn set(&self, status: &watch::Sender<FeedStatus>, new: FeedStatus) {
        status.send_if_modified(|s| {
            if *s == new {
                return false;
            }
            if *s == FeedStatus::Live {
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
            }
            *s = new;
            true
        });
    }
}

/// What a reader keeps between connections.
struct Follow {
    /// The last id read (None: not resolved from `$` yet).
    last: Option<EntryId>,
    /// Per member, the highest `outbox_id` handed on or skipped.
    seen: HashMap<String, i64>,
    /// How many entries the stream had had added up to `last` (None: unknown, a reader
    /// resuming from an id of its consumer's).
    position: Option<u64>,
    /// The current connection has read with no gap.
    reached_live: bool,
}

/// What `XINFO STREAM` says (Redis 7: a field it lacks is None).
struct Info {
    last_generated: Option<EntryId>,
    /// The first entry still in the stream; None when it is empty.
    first: Option<EntryId>,
    length: u64,
    /// Entries ever added.
    entries_added: Option<u64>,
}

impl Info {
    /// A gap after `last`: entries added after it that are gone unread (trimming removes
    /// from the front). Counted when the reader knows its position; otherwise, resuming
    /// from an id alone, assumed as soon as anything was trimmed and the stream now starts
    /// after `last` (fallback is the safe side). A gap found moves the position to what
    /// the stream still holds after `last`.
    fn gap(&self, state: &mut Follow, last: EntryId) -> Option<String> {
        let kept_after = match self.first {
            Some(first) if first > last => self.length,
            Some(_) => return None, // the front of the stream is not past `last`
            None => 0,
        };
        let added = self.entries_added?;
        let gone = match state.position {
            Some(p) => added.saturating_sub(p) > kept_after,
            None => added > self.length && self.last_generated.is_some_and(|g| g > last),
        };
        if !gone {
            return None;
        }
        state.position = Some(added - kept_after.min(added));
        Some(format!("stream trimmed past {last} unread"))
    }
}

fn fallback(reason: impl Into<String>) -> FeedStatus {
    FeedStatus::Fallback {
        reason: reason.into(),
    }
}

fn decode(entry: &StreamId) -> Result<ClusterEvent, DecodeError> {
    let text = entry
        .map
        .get(FIELD)
        .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
        .ok_or(DecodeError::NoField)?;
    ClusterEvent::from_json(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(position: Option<u64>) -> Follow {
        Follow {
            last: Some(EntryId(10, 0)),
            seen: HashMap::new(),
            position,
            reached_live: false,
        }
    }

    fn info(first: Option<u64>, length: u64, added: u64) -> Info {
        Info {
            last_generated: Some(EntryId(100, 0)),
            first: first.map(|ms| EntryId(ms, 0)),
            length,
            entries_added: Some(added),
        }
    }

    #[test]
    fn a_gap_is_entries_added_after_the_last_read_that_are_gone() {
        let last = EntryId(10, 0);
        // Read 10 of 20; the stream still starts before the last read: no gap.
        assert_eq!(info(Some(5), 15, 20).gap(&mut at(Some(10)), last), None);
        // It starts after it and holds all 10 unread: no gap.
        assert_eq!(info(Some(11), 10, 20).gap(&mut at(Some(10)), last), None);
        // It holds 4 of the 10 unread: a gap, and the position moves past the lost 6.
        let mut state = at(Some(10));
        assert!(info(Some(50), 4, 20).gap(&mut state, last).is_some());
        assert_eq!(state.position, Some(16));
        // Emptied by a trim with entries unread.
        assert!(info(None, 0, 20).gap(&mut at(Some(10)), last).is_some());
        // Resuming from an id alone: anything trimmed with the front past it is a gap.
        assert!(info(Some(50), 4, 20).gap(&mut at(None), last).is_some());
        assert_eq!(info(Some(50), 20, 20).gap(&mut at(None), last), None);
    }
}
