//! One receiver's deliveries: its stored messages in id order, one at a time (a
//! receiver sees its messages in the order they were decided), each retried with
//! exponential backoff until the receiver takes it or refuses it for good. The attempt
//! is recorded after the receiver answered, so a crash in between delivers the message
//! again — with the same idempotency key, which is how the receiver tells.
//!
//! A backlog whose oldest message is older than `max_replay_age` (the receiver was away
//! that long) is summarised first: per group, one message with the latest notice of each
//! alert and the count of those left out, in place of the whole backlog of that group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::metrics::NotifyMetrics;
use super::status::ReceiverStatus;
use super::{Deliver, DeliveryError, Message, Notice};
use crate::store::Db;
use crate::store::notify::{Attempt, NewMessage, NotifyStore, PendingMessage};

/// Messages read from the store at once.
const CHUNK: i64 = 200;
/// Backlog read at once when it is summarised.
const SUMMARY_CHUNK: i64 = 100_000;
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// How often an idle sender looks for messages it was not told of.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// A receiver's own timeout bounds each attempt; this bounds a receiver that forgot one.
const HARD_TIMEOUT: Duration = Duration::from_secs(600);
const STORE_RETRY: Duration = Duration::from_secs(1);

/// The pause before each retry: from half a second, doubling, up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff {
            next: MIN_BACKOFF.min(max),
            max,
        }
    }

    /// The pause after a failure.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    pub fn reset(&mut self) {
        self.next = MIN_BACKOFF.min(self.max);
    }
}

/// The key of message `id` of `receiver`: the same for every delivery of it.
pub fn idempotency_key(receiver: &str, id: i64) -> String {
    format!("wardops-{receiver}-{id}")
}

/// A stored message as the receiver is given it.
pub fn decode(receiver: &str, stored: &PendingMessage) -> Result<Message, String> {
    let mut m: Message = serde_json::from_str(&stored.body)
        .map_err(|e| format!("stored message {} cannot be read: {e}", stored.id))?;
    m.receiver = receiver.to_string();
    m.idempotency_key = idempotency_key(receiver, stored.id);
    Ok(m)
}

/// A message to store (its key is given when it is read back).
pub fn encode(
    receiver: &str,
    group: BTreeMap<String, String>,
    notices: Vec<Notice>,
    summarised: u32,
    since: chrono::DateTime<Utc>,
) -> NewMessage {
    let mut outbox_ids: Vec<i64> = notices.iter().map(|n| n.outbox_id).collect();
    outbox_ids.sort_unstable();
    outbox_ids.dedup();
    outbox_ids.retain(|id| *id > 0);
    let m = Message {
        receiver: receiver.to_string(),
        idempotency_key: String::new(),
        group,
        notices,
        summarised,
        test: false,
    };
    NewMessage {
        created_at: Utc::now(),
        since,
        outbox_ids,
        notices: m.notices.len() as i32,
        body: serde_json::to_string(&m).expect("a message encodes"),
    }
}

/// What one attempt came to.
enum Sent {
    Delivered,
    /// Refused for good (recorded).
    Refused,
    /// Failed (recorded): try again after the pause.
    Retry(Duration),
}

pub struct Sender {
    pub store: Arc<Db>,
    pub receiver: Arc<dyn Deliver>,
    pub status: Arc<ReceiverStatus>,
    pub metrics: Arc<NotifyMetrics>,
    pub max_replay_age: Duration,
    pub max_backoff: Duration,
}

impl Sender {
    pub async fn run(self) {
        let name = self.status.name.clone();
        let mut backoff = Backoff::new(self.max_backoff);
        loop {
            let chunk = match self.store.pending(&name, CHUNK).await {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::warn!(receiver = %name, error = %e, "cannot read the messages to send; retrying");
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
            };
            self.count_pending(&name, chunk.len()).await;
            let Some(head) = chunk.first() else {
                tokio::select! {
                    _ = self.status.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
                continue;
            };
            let age =
                chrono::Duration::from_std(self.max_replay_age).unwrap_or(chrono::Duration::MAX);
            if head.created_at < Utc::now() - age {
                self.summarise(&name).await;
                continue;
            }
            // Deliveries are recorded a run at a time (one transaction each): a crash
            // before the record delivers them again, under their keys.
            let mut delivered = Vec::new();
            let mut pause = None;
            for stored in &chunk {
                match self.send(&name, stored, &mut backoff).await {
                    Sent::Delivered => delivered.push(stored.id),
                    Sent::Refused => {}
                    Sent::Retry(p) => {
                        pause = Some(p);
                        break; // retried from the top: the chunk is read again
                    }
                }
            }
            self.record_delivered(&delivered).await;
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Records deliveries, waiting out a store outage (as [`Self::record`]).
    async fn record_delivered(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let at = Utc::now();
        while let Err(e) = self.store.delivered(ids, at).await {
            tracing::warn!(messages = ids.len(), error = %e, "cannot record deliveries; retrying");
            tokio::time::sleep(STORE_RETRY).await;
        }
    }

    /// Delivers one message; a failure is recorded at once, a delivery by the caller.
    async fn send(&self, name: &str, stored: &PendingMessage, backoff: &mut Backoff) -> Sent {
        let outcome = match decode(name, stored) {
            Ok(message) => {
                match tokio::time::timeout(HARD_TIMEOUT, self.receiver.deliver(&message)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(DeliveryError::Retry(format!(
                        "no answer within {}s",
                        HARD_TIMEOUT.as_secs()
                    ))),
                }
            }
            Err(e) => Err(DeliveryError::Permanent(e)),
        };
        let now = Utc::now();
        match outcome {
            Ok(()) => {
                backoff.reset();
                self.status.succeeded(now, &self.metrics);
                let latency = (now - stored.since).to_std().unwrap_or_default();
                self.metrics
                    .latency
                    .get_or_create(&NotifyMetrics::label(name))
                    .observe(latency.as_secs_f64());
                Sent::Delivered
            }
            Err(DeliveryError::Retry(e)) => {
                self.record(stored.id, &Attempt::Retry(e.clone())).await;
                let pause = backoff.failed();
                tracing::warn!(receiver = %name, message = stored.id, error = %e, retry_in = ?pause, "delivery failed; retrying");
                self.status.failed(now, e, true, &self.metrics);
                Sent::Retry(pause)
            }
            Err(DeliveryError::Permanent(e)) => {
                self.record(stored.id, &Attempt::Failed(e.clone())).await;
                tracing::error!(receiver = %name, message = stored.id, error = %e, "the receiver refused the message; not retried");
                self.status.failed(now, e, false, &self.metrics);
                Sent::Refused
            }
        }
    }

    /// Records an attempt, waiting out a store outage: delivering again before it is
    /// recorded would only send a duplicate.
    async fn record(&self, id: i64, attempt: &Attempt) {
        let at = Utc::now();
        while let Err(e) = self.store.attempted(id, at, attempt).await {
            tracing::warn!(message = id, error = %e, "cannot record a delivery attempt; retrying");
            tokio::time::sleep(STORE_RETRY).await;
        }
    }

    async fn count_pending(&self, name: &str, read: usize) {
        let n = if (read as i64) < CHUNK {
            read as i64
        } else {
            match self.store.pending_counts().await {
                Ok(counts) => counts
                    .into_iter()
                    .find(|(r, _)| r == name)
                    .map_or(0, |(_, n)| n),
                Err(_) => read as i64,
            }
        };
        self.status.set_pending(n, &self.metrics);
    }

    /// Replaces the whole backlog by one message per group (see the module's doc).
    async fn summarise(&self, name: &str) {
        let backlog = match self.store.pending(name, SUMMARY_CHUNK).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(receiver = %name, error = %e, "cannot read the backlog to summarise");
                tokio::time::sleep(STORE_RETRY).await;
                return;
            }
        };
        let (old, summaries) = summaries(name, &backlog);
        tracing::warn!(
            receiver = %name,
            messages = old.len(),
            summaries = summaries.len(),
            "undelivered for longer than max_replay_age: the backlog is summarised per group"
        );
        if let Err(e) = self.store.summarise(name, &old, &summaries).await {
            tracing::warn!(receiver = %name, error = %e, "cannot summarise the backlog; retrying");
            tokio::time::sleep(STORE_RETRY).await;
        }
    }
}

/// One group's summary as it is built: the latest notice per alert, how many were left
/// out, and the earliest change told of.
type Summary = (BTreeMap<i64, Notice>, u32, chrono::DateTime<Utc>);

/// The ids of `backlog` and what replaces them: per group (in the order groups first
/// appear), the latest notice of each alert, in outbox order, and how many were left out.
pub fn summaries(name: &str, backlog: &[PendingMessage]) -> (Vec<i64>, Vec<NewMessage>) {
    let mut order: Vec<BTreeMap<String, String>> = Vec::new();
    let mut groups: BTreeMap<BTreeMap<String, String>, Summary> = BTreeMap::new();
    let mut ids = Vec::new();
    for stored in backlog {
        ids.push(stored.id);
        let Ok(m) = decode(name, stored) else {
            continue;
        };
        if !groups.contains_key(&m.group) {
            order.push(m.group.clone());
        }
        let entry = groups
            .entry(m.group.clone())
            .or_insert_with(|| (BTreeMap::new(), 0, stored.since));
        entry.2 = entry.2.min(stored.since);
        entry.1 += m.summarised;
        for n in m.notices {
            if entry.0.insert(n.alert_id, n).is_some() {
                entry.1 += 1;
            }
        }
    }
    let messages = order
        .into_iter()
        .filter_map(|group| {
            let (latest, left_out, since) = groups.remove(&group)?;
            let mut notices: Vec<Notice> = latest.into_values().collect();
            notices.sort_by_key(|n| n.outbox_id);
            Some(encode(name, group, notices, left_out, since))
        })
        .collect();
    (ids, messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{NoticeState, test_notice};

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_to_its_limit_and_a_success_resets_it() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let pauses: Vec<_> = (0..6).map(|_| b.failed().as_millis()).collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000, 5000, 5000]);
        let start = tokio::time::Instant::now();
        tokio::time::sleep(b.failed()).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5), "on tokio's clock");
        b.reset();
        assert_eq!(b.failed(), Duration::from_millis(500));
    }

    fn stored(id: i64, group: &str, notices: Vec<Notice>) -> PendingMessage {
        let m = encode(
            "hook",
            [("branch".to_string(), group.to_string())].into(),
            notices,
            0,
            Utc::now(),
        );
        PendingMessage {
            id,
            created_at: m.created_at,
            since: m.since,
            attempts: 3,
            notices: m.notices,
            body: m.body,
        }
    }

    #[test]
    fn a_stored_message_reads_back_with_its_key() {
        let s = stored(42, "e-01", vec![test_notice(7, "a")]);
        let m = decode("hook", &s).unwrap();
        assert_eq!(m.idempotency_key, "wardops-hook-42");
        assert_eq!(m.notices, [test_notice(7, "a")]);
        assert_eq!(decode("hook", &s).unwrap(), m, "the same every time");
    }

    #[test]
    fn a_summary_keeps_the_latest_notice_of_each_alert_per_group() {
        let mut up = test_notice(3, "a");
        up.state = NoticeState::Resolved;
        let backlog = [
            stored(1, "e-01", vec![test_notice(1, "a"), test_notice(2, "b")]),
            stored(2, "e-02", vec![test_notice(4, "x")]),
            stored(3, "e-01", vec![up.clone()]),
        ];
        let (ids, out) = summaries("hook", &backlog);
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(out.len(), 2);
        let first: Message = serde_json::from_str(&out[0].body).unwrap();
        assert_eq!(first.group["branch"], "e-01");
        let states: Vec<_> = first
            .notices
            .iter()
            .map(|n| (n.device.as_str(), n.state))
            .collect();
        assert_eq!(
            states,
            [("b", NoticeState::Firing), ("a", NoticeState::Resolved)]
        );
        assert_eq!(first.summarised, 1, "a's opening was left out");
        assert_eq!(out[0].outbox_ids, [2, 3]);
    }
}
