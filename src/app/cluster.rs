//! Runs this appliance as a cluster member when the settings have a `cluster:` section
//! (docs/cluster.md). In order:
//!
//! 1. [`prepare`], before the store starts: the member's own small pool (its renewals
//!    never wait behind the writer's batches), its loop, the relay of its outbox, and the
//!    channel of what it acts on, which the writer stamps its records from
//!    ([`WriterCluster`]);
//! 2. [`Prepared::start`], once the store has migrated the database and the state
//!    exists: the member's loop, the relay, the reader of the others' events and the
//!    [`View`] that passes taken-over shards on once loaded;
//! 3. [`Running::stop`], after the writer has flushed its last records: releases every
//!    lease and leaves, so the others take over at their next round instead of after a
//!    TTL.
//!
//! Exactly one member sends the notifications: the one acting on shard 0
//! ([`lead_notifications`]). Its engine starts when the shard comes and stops when it
//! goes; what was not delivered stays stored, and the next sender delivers it (with the
//! same idempotency keys, so a receiver can drop a repeat of a message in flight).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::cluster::LEADER_SHARD;
use crate::cluster::events::FeedSettings;
use crate::cluster::events::reader::Reader;
use crate::cluster::events::relay::Relay;
use crate::cluster::handle::Handle;
use crate::cluster::leases::Leases;
use crate::cluster::member::{self, Member, Owned};
use crate::cluster::view::View;
use crate::config::settings::ClusterSettings;
use crate::state::State;
use crate::store::StoreHealth;
use crate::store::writer::WriterCluster;

/// How often every device is read from PostgreSQL while the event feed is away.
const FALLBACK_EVERY: Duration = Duration::from_secs(5);
/// Events waiting for the view: a burst of a region going dark fits.
const EVENTS_QUEUED: usize = 16_384;

/// A member set up, not yet running.
pub struct Prepared {
    settings: ClusterSettings,
    pool: sqlx::PgPool,
    member: Member,
    relay: Relay,
    acting: watch::Sender<Owned>,
    /// What the store's writer needs (`store::startup::start_member`).
    pub writer: WriterCluster,
}

/// Sets up the member of `settings` on the database at `database_url`; its URL is the
/// settings' or `http(s)://listen`.
pub fn prepare(
    settings: &ClusterSettings,
    database_url: &str,
    listen: SocketAddr,
    https: bool,
) -> anyhow::Result<Prepared> {
    let options: PgConnectOptions = database_url.parse().context("the cluster's database_url")?;
    // A lease statement that waits on a row lock (a stalled member's open write holds
    // one) gives up within a round rather than hold the round past its fence.
    let round = settings.lease_ttl / 3;
    let options = options.options([
        ("lock_timeout", format!("{}ms", round.as_millis())),
        (
            "statement_timeout",
            format!("{}ms", (round * 2).as_millis()),
        ),
    ]);
    // One connection each for the loop, the relay and the view, one for the API.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(settings.lease_ttl / 3)
        .connect_lazy_with(options);
    let scheme = if https { "https" } else { "http" };
    let url = settings
        .url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{listen}"));
    let id = settings.member_id.clone();
    let member = Member::new(
        pool.clone(),
        member::Config {
            id: id.clone(),
            url,
            ttl: settings.lease_ttl,
            margin: settings.fence_margin,
        },
    );
    let relay = Relay::new(
        pool.clone(),
        FeedSettings::new(settings.redis_url.clone()),
        id.clone(),
    );
    let (acting, owned) = watch::channel(Owned::default());
    let writer = WriterCluster {
        member: id,
        owned,
        relay: Some(relay.waker()),
    };
    Ok(Prepared {
        settings: settings.clone(),
        pool,
        member,
        relay,
        acting,
        writer,
    })
}

/// A running member's tasks.
pub struct Running {
    handle: Arc<Handle>,
    leave: oneshot::Sender<()>,
    member: JoinHandle<()>,
    others: Vec<JoinHandle<()>>,
}

impl Prepared {
    /// Starts the member's tasks over `state` (the store has migrated the database).
    pub fn start(self, state: State, health: Arc<StoreHealth>) -> Running {
        let s = &self.settings;
        let held = self.member.owned();
        let counters = self.member.counters();
        let (leave, left) = oneshot::channel::<()>();
        let member = tokio::spawn(self.member.run(async move {
            let _ = left.await;
        }));
        let relayed = self.relay.relayed();
        let relay = tokio::spawn(self.relay.run());
        let reader = Reader::new(FeedSettings::new(s.redis_url.clone()), s.member_id.clone());
        let reader_stats = reader.stats();
        let (events, queued) = mpsc::channel(EVENTS_QUEUED);
        let (feed, reader) = reader.spawn(events);
        let acting = self.acting.subscribe();
        let view_stats = Arc::default();
        let view = tokio::spawn(
            View {
                pool: self.pool.clone(),
                state,
                alert_counts: Arc::new(move |device, opened| {
                    health.count_foreign_alert(device, opened)
                }),
                held,
                counters: counters.clone(),
                acting: self.acting,
                events: queued,
                feed: feed.clone(),
                stats: Arc::clone(&view_stats),
                fallback_every: FALLBACK_EVERY,
                read_timeout: s.lease_ttl,
            }
            .run(),
        );
        tracing::info!(
            member = %s.member_id,
            lease_ttl = ?s.lease_ttl,
            fence_margin = ?s.fence_margin,
            "cluster member starting"
        );
        let handle = Arc::new(Handle {
            member_id: s.member_id.clone(),
            ttl: s.lease_ttl,
            leases: Leases::new(self.pool, s.member_id.clone(), s.lease_ttl),
            acting,
            feed,
            counters,
            view: view_stats,
            reader: reader_stats,
            relayed,
        });
        Running {
            handle,
            leave,
            member,
            others: vec![relay, reader, view],
        }
    }
}

impl Running {
    pub fn handle(&self) -> &Arc<Handle> {
        &self.handle
    }

    /// Releases every lease and leaves the member list (waiting at most `wait`), then
    /// stops the relay, the reader and the view. Call after the writer has flushed:
    /// records written after the release would be refused.
    pub async fn stop(self, wait: Duration) {
        let _ = self.leave.send(());
        if tokio::time::timeout(wait, self.member).await.is_err() {
            tracing::warn!("cluster: leaving timed out; the leases expire instead");
        }
        for task in self.others {
            task.abort();
        }
    }
}

/// The notification engine's parts, to start it whenever this member leads.
pub struct NotifyParts {
    pub store: Arc<crate::store::Db>,
    pub state: State,
    pub settings: crate::config::settings::NotifySettings,
    pub open: Arc<dyn crate::notify::OpenNotices>,
    pub health: Arc<StoreHealth>,
    pub metrics: Arc<crate::notify::metrics::NotifyMetrics>,
    pub notifier: Arc<crate::notify::Notifier>,
}

/// Runs `parts`' engine while this member acts on [`LEADER_SHARD`], and stops it when it
/// no longer does (lost, released, or its fence ran out). Never returns.
pub async fn lead_notifications(mut acting: watch::Receiver<Owned>, parts: NotifyParts) {
    loop {
        let (leads, until) = {
            let owned = acting.borrow_and_update();
            let now = tokio::time::Instant::now();
            (owned.epoch(LEADER_SHARD, now).is_some(), owned.until)
        };
        if leads && !parts.notifier.is_running() {
            match crate::notify::build::build_all(&parts.settings, &parts.open) {
                Ok(built) => {
                    tracing::info!(
                        "cluster: this member sends the notifications (it holds shard 0)"
                    );
                    parts.notifier.run(
                        parts.store.clone(),
                        parts.state.clone(),
                        &parts.settings,
                        built,
                        &parts.health,
                        parts.metrics.clone(),
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "cluster: cannot build the notification receivers")
                }
            }
        } else if !leads && parts.notifier.is_running() {
            tracing::info!("cluster: another member sends the notifications now");
            parts.notifier.stop();
        }
        let fence = async {
            match until.filter(|_| leads) {
                Some(until) => tokio::time::sleep_until(until).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = acting.changed() => if changed.is_err() {
                parts.notifier.stop();
                return std::future::pending().await;
            },
            () = fence => {}
        }
    }
}
