//! The store's side of notifications: the outbox the writer fills in the same transaction
//! as each alert change ([`super::apply`]), and what the sender engine keeps durable on
//! top of it: per receiver a cursor into the outbox, and the messages it made (each with
//! the outbox rows it carries, its body decided once, and how its delivery went).
//!
//! [`NotifyStore`] is implemented by both backends (`postgres/notify.rs`,
//! `sqlite/notify.rs`) and by [`super::Db`]; the contract suite runs over both.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AlertRow, DeviceScope, Result};

/// One outbox row with the alert and device it names, as the sender reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// 0 for an open alert that has no outbox row (opened before notifications existed).
    pub id: i64,
    /// `opened` or `resolved`.
    pub change: String,
    /// When the alert changed (its `opened_at` or `resolved_at`).
    pub at: DateTime<Utc>,
    /// Since when its device had not answered (the opening row's, for a resolution).
    pub down_since: Option<DateTime<Utc>>,
    /// The alert as it is now.
    pub alert: AlertRow,
    /// The device's address and scope as the store last knew them.
    pub address: Option<String>,
    pub scope: Option<DeviceScope>,
}

/// A message to store: its body is the receiver's to read back, unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub created_at: DateTime<Utc>,
    /// The earliest alert change it tells of.
    pub since: DateTime<Utc>,
    pub outbox_ids: Vec<i64>,
    pub notices: i32,
    pub body: String,
}

/// A stored message not yet delivered (or given up).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingMessage {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub since: DateTime<Utc>,
    pub attempts: i32,
    pub notices: i32,
    pub body: String,
}

/// What one delivery attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Failed; will be tried again.
    Retry(String),
    /// Failed for good: the message is not tried again.
    Failed(String),
}

/// A message as `GET /api/v1/notifications` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRow {
    pub id: i64,
    pub receiver: String,
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered`, `failed` (given up) or `summarised` (replaced by a summary).
    pub status: String,
    pub attempts: i32,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
    pub notices: i32,
    #[serde(skip)]
    pub body: String,
}

/// The notification side of both backends.
pub trait NotifyStore: Send + Sync + 'static {
    /// Outbox rows with an id above `after`, oldest first, at most `limit`.
    fn outbox_after(
        &self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OutboxRow>>> + Send;
    /// The highest outbox id (0: none).
    fn outbox_last(&self) -> impl Future<Output = Result<i64>> + Send;
    /// Every open alert as its latest `opened` outbox row (id 0 if it has none).
    fn outbox_open(&self) -> impl Future<Output = Result<Vec<OutboxRow>>> + Send;
    /// The receiver's cursor, if it has one.
    fn cursor(&self, receiver: &str) -> impl Future<Output = Result<Option<i64>>> + Send;
    /// Sets the receiver's cursor to `outbox_id` if it has none yet; returns the cursor.
    fn init_cursor(
        &self,
        receiver: &str,
        outbox_id: i64,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// Outbox ids above `after` that are in a message of the receiver already.
    fn claimed(&self, receiver: &str, after: i64) -> impl Future<Output = Result<Vec<i64>>> + Send;
    /// Stores `messages` (pending) and raises the receiver's cursor to `cursor`, in one
    /// transaction; returns the messages' ids, in order.
    fn enqueue(
        &self,
        receiver: &str,
        cursor: i64,
        messages: &[NewMessage],
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    /// The receiver's pending messages, oldest first, at most `limit`.
    fn pending(
        &self,
        receiver: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<PendingMessage>>> + Send;
    /// How many messages of each receiver are pending.
    fn pending_counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>>> + Send;
    /// Records one delivery attempt of message `id` at `at`.
    fn attempted(
        &self,
        id: i64,
        at: DateTime<Utc>,
        attempt: &Attempt,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Records the deliveries of messages `ids` at `at`, in one transaction (a sender
    /// records a run of fast deliveries at once).
    fn delivered(&self, ids: &[i64], at: DateTime<Utc>) -> impl Future<Output = Result<()>> + Send;
    /// Marks the pending messages `old` summarised and stores `summaries` in their place,
    /// in one transaction; returns the summaries' ids.
    fn summarise(
        &self,
        receiver: &str,
        old: &[i64],
        summaries: &[NewMessage],
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    /// The newest messages (of one receiver, if given), newest first.
    fn messages(
        &self,
        receiver: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<MessageRow>>> + Send;
    /// Deletes up to `batch` outbox rows and finished messages older than `cutoff`.
    fn prune_notify(
        &self,
        cutoff: DateTime<Utc>,
        batch: i64,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// The columns [`outbox_row`] reads, in its order: the alert's ([`super::rows::alert`]),
/// then the outbox row's, then the device's. `a`, `o`, `d` are the backends' aliases of
/// `alerts`, `notify_outbox` and `devices`.
macro_rules! outbox_columns {
    () => {
        "a.id, a.device, a.condition, a.severity, a.message, a.opened_at, a.resolved_at, \
         a.resolution, a.acknowledged_at, a.acknowledged_by, a.acknowledged_comment, \
         COALESCE(o.id, 0), COALESCE(o.change, 'opened'), COALESCE(o.at, a.opened_at), \
         COALESCE(o.down_since, (SELECT p.down_since FROM notify_outbox p \
             WHERE p.alert_id = a.id AND p.change = 'opened' ORDER BY p.id DESC LIMIT 1)), \
         d.address, d.region, d.branch, d.kind"
    };
}

/// The open alerts with their latest `opened` outbox row, by alert id.
macro_rules! open_outbox_query {
    () => {
        concat!(
            "SELECT ",
            crate::store::notify::outbox_columns!(),
            " FROM alerts a
              LEFT JOIN notify_outbox o ON o.id = (SELECT max(p.id) FROM notify_outbox p
                                                   WHERE p.alert_id = a.id AND p.change = 'opened')
              LEFT JOIN devices d ON d.name = a.device
              WHERE a.resolved_at IS NULL ORDER BY a.id"
        )
    };
}

/// The columns [`message_row`] reads.
macro_rules! message_columns {
    () => {
        "id, receiver, created_at, status, attempts, last_attempt_at, last_error, done_at, \
         notices, body"
    };
}

pub(super) use {message_columns, open_outbox_query, outbox_columns};

/// A row of [`outbox_columns`].
pub(super) fn outbox_row(row: &impl super::rows::Columns) -> Result<OutboxRow> {
    let alert = super::rows::alert(row)?;
    let scope = match (row.opt_text(16)?, row.opt_text(17)?, row.opt_text(18)?) {
        (Some(region), Some(branch), Some(kind)) => Some(DeviceScope {
            region,
            branch,
            kind,
        }),
        _ => None,
    };
    Ok(OutboxRow {
        id: row.int(11)?,
        change: row.text(12)?,
        at: row.time(13)?,
        down_since: row.opt_time(14)?,
        address: row.opt_text(15)?,
        scope,
        alert,
    })
}

/// A row of [`message_columns`].
pub(super) fn message_row(row: &impl super::rows::Columns) -> Result<MessageRow> {
    Ok(MessageRow {
        id: row.int(0)?,
        receiver: row.text(1)?,
        created_at: row.time(2)?,
        status: row.text(3)?,
        attempts: row.int(4)? as i32,
        last_attempt_at: row.opt_time(5)?,
        last_error: row.opt_text(6)?,
        done_at: row.opt_time(7)?,
        notices: row.int(8)? as i32,
        body: row.text(9)?,
    })
}

/// What an attempt sets: the status, whether it finishes the message, its error.
pub(super) fn attempt_fields(attempt: &Attempt) -> (&'static str, bool, Option<&str>) {
    match attempt {
        Attempt::Delivered => ("delivered", true, None),
        Attempt::Retry(e) => ("pending", false, Some(e.as_str())),
        Attempt::Failed(e) => ("failed", true, Some(e.as_str())),
    }
}

/// Errors are kept short in the table: a receiver's whole HTML error page is no use.
pub(super) fn short_error(e: Option<&str>) -> Option<String> {
    e.map(|e| {
        let mut end = e.len().min(500);
        while !e.is_char_boundary(end) {
            end -= 1;
        }
        e[..end].to_string()
    })
}
