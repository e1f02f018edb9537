//! The relay: publishes this member's outbox rows to the stream, in id order, then marks
//! them sent. One task per member, woken by the writer after each commit (a `Notify`)
//! and by a poll every second (a wake-up lost to a restart, rows of a previous run).
//!
//! At least once: a crash or a failed mark between `XADD` and [`outbox::mark_sent`]
//! publishes the rows again, and readers drop the repeats by `outbox_id`. While Redis is
//! away the rows wait in the table and the relay retries with a backoff; none is lost.
//!
//! Only the member's own rows: its writer commits one transaction after the other, so
//! their ids increase in commit order and one relay publishing them in id order keeps
//! that order in the stream, which is what lets a reader keep only the highest
//! `outbox_id` seen per member. A member that dies leaves its unsent rows until it runs
//! again; the readers read PostgreSQL when the live members change, which covers them
//! (`crate::cluster::view`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamMaxlen;
use sqlx::postgres::PgPool;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::outbox::{self, Pending};
use super::{FIELD, FeedError, FeedSettings, connect, timed};

/// Publishes the outbox rows of one member.
pub struct Relay {
    pool: PgPool,
    settings: FeedSettings,
    member: String,
    wake: Arc<Notify>,
    relayed: Arc<AtomicU64>,
    /// Rows read and published at a time.
    pub batch: i64,
    /// How often the table is looked at without a wake-up.
    pub poll: Duration,
    /// How long sent rows are kept (for a look at what was published) before deletion.
    pub keep_sent: Duration,
    /// First and longest wait after a failure.
    pub backoff: (Duration, Duration),
}

impl Relay {
    pub fn new(pool: PgPool, settings: FeedSettings, member: impl Into<String>) -> Relay {
        Relay {
            pool,
            settings,
            member: member.into(),
            wake: Arc::new(Notify::new()),
            relayed: Arc::default(),
            batch: 500,
            poll: Duration::from_secs(1),
            keep_sent: Duration::from_secs(300),
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
        }
    }

    /// Rows published so far (for the cluster metrics).
    pub fn relayed(&self) -> Arc<AtomicU64> {
        self.relayed.clone()
    }

    /// What the writer pokes (`notify_one`) after a commit that inserted events. A poke
    /// while the relay is busy is kept for its next wait, so none is lost.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs until dropped (abort the task to stop it; dropping it between `XADD` and the
    /// mark only repeats those rows).
    pub async fn run(self) {
        let mut conn: Option<MultiplexedConnection> = None;
        let mut backoff = self.backoff.0;
        let mut pruned = Instant::now();
        loop {
            match self.step(&mut conn).await {
                Ok(n) => {
                    backoff = self.backoff.0;
                    if pruned.elapsed() >= self.poll * 30 {
                        pruned = Instant::now();
                        if let Err(e) = outbox::prune(&self.pool, self.keep_sent).await {
                            tracing::warn!(error = %e, "cluster outbox: pruning sent rows failed");
                        }
                    }
                    // A full batch: more are probably waiting.
                    if n as i64 >= self.batch {
                        continue;
                    }
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.poll) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cluster relay: rows wait");
                    // A connection that failed once is not trusted again.
                    conn = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.backoff.1);
                }
            }
        }
    }

    /// Publishes one batch of unsent rows and marks it sent; answers how many.
    pub async fn step(&self, conn: &mut Option<MultiplexedConnection>) -> Result<usize, FeedError> {
        let rows = outbox::pending(&self.pool, &self.member, self.batch).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let c = match conn {
            Some(c) => c,
            None => conn.insert(connect(&self.settings, self.settings.timeout).await?),
        };
        publish(c, &self.settings, &rows).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        outbox::mark_sent(&self.pool, &ids).await?;
        self.relayed.fetch_add(rows.len() as u64, Ordering::Relaxed);
        Ok(rows.len())
    }
}

/// `XADD`s `rows` to the stream in their order, in one pipeline, trimming it to about
/// `maxlen`. The rows are not marked sent (that is [`Relay::step`]'s next statement).
pub async fn publish(
    conn: &mut MultiplexedConnection,
    settings: &FeedSettings,
    rows: &[Pending],
) -> Result<(), FeedError> {
    let mut pipe = redis::pipe();
    for row in rows {
        pipe.xadd_maxlen(
            &settings.stream,
            StreamMaxlen::Approx(settings.maxlen),
            "*",
            &[(FIELD, row.event.as_str())],
        )
        .ignore();
    }
    timed("xadd", settings.timeout, pipe.query_async::<()>(conn)).await
}
