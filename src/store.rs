//! Durable state: devices, their current status, transitions and alerts, in PostgreSQL
//! (production) or SQLite (the embedded default), behind one [`Store`] trait.
//!
//! Nothing reads status from here while the appliance runs: [`crate::state::State`] owns
//! it. The store is written by one ordered [`writer`] from `State`'s lossless feed, and
//! read back once at start-up ([`startup`]) so that a device that was down stays down with
//! its original `down_since`.
//!
//! - [`acks`]: the acknowledged open alerts, kept in memory for device JSON and the wall.
//! - [`actions`]: how a handler writes (acknowledgements, the audit log): through the
//!   writer like everything else.
//! - [`record`]: what the writer applies (a spooled, sequenced record) and what it reads.
//! - `apply`: what applying records means (replays skipped, alerts opened and resolved,
//!   flapping), once for both backends, over each backend's SQL primitives.
//! - [`postgres`], [`sqlite`]: the two implementations, their SQL only; schema only via
//!   `migrations/`. `rows` maps their result rows to the types above.
//! - [`spool`]: the fsync'd append-only file records wait in while the database is away.
//! - [`snapshot`]: the state the spool leads to, saved beside it when it is emptied, so
//!   that a restart without the database restores the same state as one with it.
//! - `error`: which failures are an outage, which a rejected record, which an unknown
//!   commit outcome.
//! - [`writer`]: the one task that applies records in order, exactly once.
//! - [`notify`]: the notification outbox (written by `apply` with each alert change) and
//!   the senders' durable cursors and messages.
//! - [`health`]: degraded flag, pending writes and open alert counts for HTTP and metrics.
//! - [`startup`]: open, migrate and load with retries; the restore map for `State`.
//! - [`runs`]: this run's heartbeat (the `runs` table), what reports tell unmonitored
//!   time by; [`Store::report_data`] reads what a report is computed from.

pub mod acks;
pub mod actions;
mod apply;
mod error;
pub mod health;
pub mod notify;
pub mod postgres;
pub mod record;
pub mod report;
mod rows;
pub mod runs;
pub mod snapshot;
pub mod spool;
pub mod sqlite;
pub mod startup;
pub mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use actions::Actions;
pub use apply::fenced::Fenced;
pub use error::StoreError;
pub use health::StoreHealth;
pub use notify::NotifyStore;
pub use record::{
    AlertChange, AlertEvent, AlertQuery, AlertRow, AuditEntry, AuditQuery, AuditRow, DeviceRow,
    DeviceScope, Loaded, Record, RecordKind, Stamp, StoredStatus, TransitionRow,
};

/// Alert rules the store applies inside each write transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRules {
    /// A device that changes status this many times within `flapping_window` is flapping.
    pub flapping_transitions: u32,
    pub flapping_window: Duration,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            flapping_transitions: 3,
            flapping_window: Duration::from_secs(300),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What both backends do. Every write goes through [`Store::apply`], one transaction per
/// call, idempotent per record (`boot`, `seq`). Writes report the alerts their committed
/// transaction opened and resolved, in order, for the live feed.
pub trait Store: Send + Sync + 'static {
    /// Applies the embedded migrations; a no-op when they are applied already.
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send;
    /// Live devices with their last stored status.
    fn load(&self) -> impl Future<Output = Result<Loaded>> + Send;
    /// Applies records in order in one transaction, skipping those applied before.
    /// Returns the alerts it opened and resolved, in the order of their records.
    fn apply(&self, records: &[Record]) -> impl Future<Output = Result<Vec<AlertEvent>>> + Send;
    /// [`Store::apply`] as cluster member `member`: device records whose stamped lease
    /// does not hold in the database are left out (never applied), and the cluster events
    /// of what was applied go into the cluster outbox, all in one transaction. Only a
    /// store that holds the lease table can; the others answer an error.
    fn apply_fenced(
        &self,
        records: &[Record],
        member: &str,
    ) -> impl Future<Output = Result<Fenced>> + Send;
    /// Resolves `flapping` alerts of devices that have had no transition for the window;
    /// returns them.
    fn resolve_stable_flapping(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<AlertEvent>>> + Send;
    /// Deletes up to `batch` transitions, resolved alerts and audit entries older than
    /// `cutoff` (each).
    fn prune(&self, cutoff: DateTime<Utc>, batch: i64) -> impl Future<Output = Result<u64>> + Send;
    fn alerts(&self, query: &AlertQuery) -> impl Future<Output = Result<Vec<AlertRow>>> + Send;
    /// The audit log, newest first (by `at`, then id).
    fn audit(&self, query: &AuditQuery) -> impl Future<Output = Result<Vec<AuditRow>>> + Send;
    /// Newest first.
    fn transitions(
        &self,
        device: &str,
        limit: i64,
        before: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Vec<TransitionRow>>> + Send;
    /// Newest first, strictly before the cursor (`at`, `id`) of the last row of a previous
    /// page: rows at the same instant are neither skipped nor repeated.
    fn transitions_before(
        &self,
        device: &str,
        limit: i64,
        before: Option<(DateTime<Utc>, i64)>,
    ) -> impl Future<Output = Result<Vec<TransitionRow>>> + Send;
    /// True if `name` was ever in the inventory (removed devices included).
    fn device_known(&self, name: &str) -> impl Future<Output = Result<bool>> + Send;
    /// The region `name` was last in (removed devices included): what a region scope
    /// decides a removed device's history by.
    fn device_region(&self, name: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    fn open_alert_counts(&self) -> impl Future<Output = Result<HashMap<String, u32>>> + Send;
    /// Id and device of every open alert.
    fn open_alert_ids(&self) -> impl Future<Output = Result<Vec<(i64, String)>>> + Send;
    /// The open alerts someone acknowledged.
    fn acknowledged_alerts(&self) -> impl Future<Output = Result<Vec<AlertRow>>> + Send;
    /// The alerts with these ids as they are now, each as the change it last went through
    /// (`opened` while open, `resolved` once resolved), with its device's scope; by id.
    fn alert_events(&self, ids: &[i64]) -> impl Future<Output = Result<Vec<AlertEvent>>> + Send;
    /// What a report of `[from, to)` is computed from ([`report::ReportData`]), read
    /// in one transaction.
    fn report_data(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<report::ReportData>> + Send;
    /// One cheap round trip: is the database there and answering?
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;
}

/// The backend the database URL picks.
pub enum Db {
    Postgres(postgres::PgStore),
    Sqlite(sqlite::SqliteStore),
}

impl Db {
    /// Opens the store `url` names without waiting for the database: connections are made
    /// on first use, so start-up can retry and the writer can outlive an outage.
    /// Relative SQLite paths are resolved against `base_dir` (the settings file's directory).
    pub fn open(url: &str, base_dir: &Path, rules: AlertRules) -> Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Db::Postgres(postgres::PgStore::open(url, rules)?))
        } else if url.starts_with("sqlite:") {
            Ok(Db::Sqlite(sqlite::SqliteStore::open(url, base_dir, rules)?))
        } else {
            Err(StoreError::Url {
                url: url.into(),
                reason: "expected postgres://… or sqlite://…".into(),
            })
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }
}

/// Why a cluster member cannot use any other backend: the leases are PostgreSQL rows.
pub(crate) const CLUSTER_NEEDS_POSTGRES: &str =
    "a cluster member needs PostgreSQL (the shard leases are in it)";

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Db::Postgres($s) => $e,
            Db::Sqlite($s) => $e,
        }
    };
}

impl Store for Db {
    async fn migrate(&self) -> Result<()> {
        dispatch!(self, s => s.migrate().await)
    }
    async fn load(&self) -> Result<Loaded> {
        dispatch!(self, s => s.load().await)
    }
    async fn apply(&self, records: &[Record]) -> Result<Vec<AlertEvent>> {
        dispatch!(self, s => s.apply(records).await)
    }
    async fn apply_fenced(&self, records: &[Record], member: &str) -> Result<Fenced> {
        match self {
            Db::Postgres(s) => s.apply_fenced(records, member).await,
            Db::Sqlite(_) => Err(StoreError::Url {
                url: "sqlite:".into(),
                reason: CLUSTER_NEEDS_POSTGRES.into(),
            }),
        }
    }
    async fn resolve_stable_flapping(&self, now: DateTime<Utc>) -> Result<Vec<AlertEvent>> {
        dispatch!(self, s => s.resolve_stable_flapping(now).await)
    }
    async fn prune(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        dispatch!(self, s => s.prune(cutoff, batch).await)
    }
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRow>> {
        dispatch!(self, s => s.alerts(query).await)
    }
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>> {
        dispatch!(self, s => s.audit(query).await)
    }
    async fn transitions(
        &self,
        device: &str,
        limit: i64,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<TransitionRow>> {
        // Id 0 is below every row's: the cursor is then just "strictly before `before`".
        let before = before.map(|t| (t, 0));
        dispatch!(self, s => s.transitions_before(device, limit, before).await)
    }
    async fn transitions_before(
        &self,
        device: &str,
        limit: i64,
        before: Option<(DateTime<Utc>, i64)>,
    ) -> Result<Vec<TransitionRow>> {
        dispatch!(self, s => s.transitions_before(device, limit, before).await)
    }
    async fn device_known(&self, name: &str) -> Result<bool> {
        dispatch!(self, s => s.device_known(name).await)
    }
    async fn device_region(&self, name: &str) -> Result<Option<String>> {
        dispatch!(self, s => s.device_region(name).await)
    }
    async fn open_alert_counts(&self) -> Result<HashMap<String, u32>> {
        dispatch!(self, s => s.open_alert_counts().await)
    }
    async fn open_alert_ids(&self) -> Result<Vec<(i64, String)>> {
        dispatch!(self, s => s.open_alert_ids().await)
    }
    async fn acknowledged_alerts(&self) -> Result<Vec<AlertRow>> {
        dispatch!(self, s => s.acknowledged_alerts().await)
    }
    async fn alert_events(&self, ids: &[i64]) -> Result<Vec<AlertEvent>> {
        dispatch!(self, s => s.alert_events(ids).await)
    }
    async fn report_data(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<report::ReportData> {
        dispatch!(self, s => s.report_data(from, to).await)
    }
    async fn ping(&self) -> Result<()> {
        dispatch!(self, s => s.ping().await)
    }
}

/// The message of a `device_down` alert.
pub(crate) fn down_message(
    device: &str,
    address: &str,
    down_since: Option<DateTime<Utc>>,
) -> String {
    match down_since {
        Some(t) => format!(
            "device {device} ({address}) is down since {}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => format!("device {device} ({address}) is down"),
    }
}

pub(crate) fn flapping_message(device: &str, transitions: i64, window: Duration) -> String {
    format!(
        "device {device} changed status at least {transitions} times in {}",
        crate::config::duration::format(window)
    )
}

impl NotifyStore for Db {
    async fn outbox_after(&self, after: i64, limit: i64) -> Result<Vec<notify::OutboxRow>> {
        dispatch!(self, s => s.outbox_after(after, limit).await)
    }
    async fn outbox_last(&self) -> Result<i64> {
        dispatch!(self, s => s.outbox_last().await)
    }
    async fn outbox_open(&self) -> Result<Vec<notify::OutboxRow>> {
        dispatch!(self, s => s.outbox_open().await)
    }
    async fn cursor(&self, receiver: &str) -> Result<Option<i64>> {
        dispatch!(self, s => s.cursor(receiver).await)
    }
    async fn init_cursor(&self, receiver: &str, outbox_id: i64) -> Result<i64> {
        dispatch!(self, s => s.init_cursor(receiver, outbox_id).await)
    }
    async fn claimed(&self, receiver: &str, after: i64) -> Result<Vec<i64>> {
        dispatch!(self, s => s.claimed(receiver, after).await)
    }
    async fn enqueue(
        &self,
        receiver: &str,
        cursor: i64,
        messages: &[notify::NewMessage],
    ) -> Result<Vec<i64>> {
        dispatch!(self, s => s.enqueue(receiver, cursor, messages).await)
    }
    async fn pending(&self, receiver: &str, limit: i64) -> Result<Vec<notify::PendingMessage>> {
        dispatch!(self, s => s.pending(receiver, limit).await)
    }
    async fn pending_counts(&self) -> Result<Vec<(String, i64)>> {
        dispatch!(self, s => s.pending_counts().await)
    }
    async fn attempted(&self, id: i64, at: DateTime<Utc>, attempt: &notify::Attempt) -> Result<()> {
        dispatch!(self, s => s.attempted(id, at, attempt).await)
    }
    async fn delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<()> {
        dispatch!(self, s => s.delivered(ids, at).await)
    }
    async fn summarise(
        &self,
        receiver: &str,
        old: &[i64],
        summaries: &[notify::NewMessage],
    ) -> Result<Vec<i64>> {
        dispatch!(self, s => s.summarise(receiver, old, summaries).await)
    }
    async fn messages(
        &self,
        receiver: Option<&str>,
        limit: i64,
    ) -> Result<Vec<notify::MessageRow>> {
        dispatch!(self, s => s.messages(receiver, limit).await)
    }
    async fn prune_notify(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        dispatch!(self, s => s.prune_notify(cutoff, batch).await)
    }
}
