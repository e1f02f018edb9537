//! Wires the pieces together: inventory → state → scheduler, the store and the reloader
//! into one [`Context`], and the route tables of the JSON API, `/metrics` and the pages
//! onto the HTTP server; runs them until shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{Config, Inventory};
use crate::context::{Context, StoreHandle};
use crate::feed::FeedConfig;
use crate::http::{self, Route};
use crate::probe::Pinger;
use crate::schedule::{ProberMetrics, Scheduler};
use crate::state::State;

pub mod cluster;
mod prober_thread;
#[cfg(test)]
mod scope_tests;
pub use prober_thread::ProberThread;

/// The durable store of a running appliance (see [`crate::store`]).
pub struct StoreParts {
    pub db: Arc<crate::store::Db>,
    pub health: Arc<crate::store::StoreHealth>,
    /// What handlers write through the writer (acknowledgements, the audit log).
    pub actions: crate::store::Actions,
    /// Status each device starts from (loaded at start-up); used for the first inventory
    /// only, later ones add devices as `unknown`.
    pub restore: HashMap<String, crate::store::StoredStatus>,
    /// The cluster member whose leases fence the writer, if the appliance is one
    /// (`app::cluster`): it also gates the prober and says who sends notifications.
    pub member: Option<Arc<crate::cluster::handle::Handle>>,
}

/// Every route the appliance serves, in one table: the JSON API, `/metrics`, the pages.
pub fn routes(ctx: &Arc<Context>) -> Vec<Route> {
    [
        crate::api::routes(ctx),
        crate::metrics::routes(ctx),
        crate::web::routes(ctx),
    ]
    .concat()
}

/// Runs the appliance on `listener` until `shutdown` completes: probing on `prober` (see
/// [`ProberThread`]), state restored from the durable store, its health in `/readyz` and
/// `/metrics`.
pub async fn run<P: Pinger>(
    config: Config,
    pinger: Arc<P>,
    state: State,
    listener: TcpListener,
    store: StoreParts,
    prober_runtime: &tokio::runtime::Handle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // HTTPS first: a bad certificate or key stops the start before anything runs.
    let tls = match &config.settings.tls_server_config {
        Some(c) => Some(http::Tls::load(c)?),
        None => None,
    };
    let member = store.member.clone();
    let prober = Arc::new(ProberMetrics::default());
    let (inventories, incoming) = mpsc::channel(4);
    let mut registry = Registry::default();
    if let Some(tls) = &tls {
        tls.metrics().register(&mut registry);
    }
    prober.register(&mut registry);
    let poller_metrics = Arc::new(crate::schedule::uplinks::PollerMetrics::default());
    poller_metrics.register(&mut registry);
    pinger.register(&mut registry);
    if let Some(member) = &member {
        registry.register_collector(Box::new(crate::cluster::handle::ClusterMetrics(
            member.clone(),
        )));
    }
    store.health.register(&mut registry);
    // Inventory hot reload: validated inventories go to the supervisor like the first.
    let reload_metrics = Arc::new(crate::reload::ReloadMetrics::default());
    reload_metrics.register(&mut registry);
    let reloader = crate::reload::Reloader::new(
        config.settings.inventory_dir.clone(),
        config.settings.probe,
        config.settings.reload,
        config.inventory.clone(),
        inventories.clone(),
        reload_metrics,
    );
    let longest_interval = Arc::new(AtomicU64::new(0));
    // What is wrong with the prober, if anything: `/readyz` says it, and the systemd
    // watchdog is fed only while it is empty.
    let prober_unhealthy = {
        let (prober, pinger, longest_interval) =
            (prober.clone(), pinger.clone(), longest_interval.clone());
        let member = member.clone();
        Arc::new(move || {
            let mut interval = Duration::from_millis(longest_interval.load(Ordering::Relaxed));
            // A cluster member acting on no shard probes nothing by design: not a stall
            // (`/readyz` says it degraded).
            if member
                .as_ref()
                .is_some_and(|m| m.acting_now().shards.is_empty())
            {
                interval = Duration::ZERO;
            }
            // A degraded store is not among these: `/readyz` grades it from the store.
            not_ready_reasons(pinger.is_healthy(), &prober, interval)
        })
    };
    let readiness = {
        let unhealthy = prober_unhealthy.clone();
        Box::new(move || unhealthy())
    };
    // Notifications: receivers built (or the start fails, as a bad setting would), the
    // engine started over the store's outbox. A failing receiver is not a readiness
    // reason: the appliance still watches, and what it could not tell waits stored.
    let notify_metrics = Arc::new(crate::notify::metrics::NotifyMetrics::default());
    notify_metrics.register(&mut registry);
    let open: Arc<dyn crate::notify::OpenNotices> =
        Arc::new(crate::notify::open::StoreOpenNotices {
            store: store.db.clone(),
            state: state.clone(),
            external_url: config.settings.notifications.external_url.clone(),
        });
    let built = crate::notify::build::build_all(&config.settings.notifications, &open)
        .context("building the notification receivers")?;
    let (notifier, notify_leader) = match &member {
        None => {
            let notifier = crate::notify::Notifier::start(
                store.db.clone(),
                state.clone(),
                &config.settings.notifications,
                built,
                &store.health,
                notify_metrics,
            );
            (notifier, None)
        }
        // One member sends them: the one holding shard 0 (see `cluster`).
        Some(member) => {
            let notifier =
                crate::notify::Notifier::idle(&config.settings.notifications, &notify_metrics);
            let parts = cluster::NotifyParts {
                store: store.db.clone(),
                state: state.clone(),
                settings: config.settings.notifications.clone(),
                open,
                health: store.health.clone(),
                metrics: notify_metrics,
                notifier: notifier.clone(),
            };
            let leader = tokio::spawn(cluster::lead_notifications(member.acting.clone(), parts));
            (notifier, Some(leader))
        }
    };
    let store_handle = StoreHandle {
        db: store.db,
        health: store.health,
        actions: store.actions,
    };
    let gate = gate(&config, &mut registry)?;
    let mut ctx = Context::new(state.clone(), store_handle, reloader.clone());
    ctx.gate = gate.clone();
    if let Some(settings) = &config.settings.access.oidc {
        // Discovered in the background: a provider that is down delays only its own
        // sign-ins, never the start or the password logins.
        let oidc = Arc::new(
            crate::access::oidc::Oidc::new(settings.clone())
                .context("building the OpenID Connect client")?,
        );
        oidc.spawn_discovery();
        ctx.oidc = Some(oidc);
    }
    ctx.prober = prober.clone();
    ctx.registry = registry;
    ctx.readiness = readiness;
    ctx.web = config.settings.web.clone();
    ctx.maintenance = config.settings.maintenance;
    ctx.notifier = notifier.clone();
    ctx.reports = crate::report::run::Reports::new(config.settings.reports.clone());
    ctx.cluster = member.clone();
    let vm = &config.settings.victoriametrics;
    if let Some(url) = &vm.url {
        let client = crate::history::VictoriaMetrics::new(url, vm.timeout)
            .context("building the VictoriaMetrics client")?;
        ctx.victoriametrics = Some(Arc::new(client));
    }
    state.set_maintenance_zone(config.settings.maintenance.zone);
    // Started before the first inventory is applied so the feed sees every version.
    let ctx = ctx.start(FeedConfig::default());
    // Likewise: the restored devices of the first inventory are looked at.
    let held_alerts = tokio::spawn(crate::state::held::release_at_window_ends(state.clone()));
    let (applied_tx, applied) = tokio::sync::watch::channel(0u64);
    let mut scheduler = Scheduler::new(pinger.clone(), state, prober);
    if let Some(member) = &member {
        scheduler = scheduler.in_cluster(member.acting.clone());
    }
    // The SNMP poller follows the same inventories on this runtime, not the prober's.
    let (polled_tx, polled) = tokio::sync::watch::channel(None);
    let poller = tokio::spawn(crate::schedule::uplinks::follow(
        scheduler.state().clone(),
        poller_metrics,
        member.as_ref().map(|m| m.acting.clone()),
        polled,
    ));
    let supervisor = prober_runtime.spawn(supervise(
        scheduler,
        incoming,
        longest_interval,
        store.restore,
        Applied {
            count: applied_tx,
            snapshot: polled_tx,
        },
    ));
    inventories
        .send(config.inventory.clone())
        .await
        .context("starting the scheduler")?;
    reloader.confirm_with(applied);
    let reload_triggers = crate::reload::watch::spawn(reloader);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %listener.local_addr()?, scheme, devices = config.inventory.devices.len(), "serving");
    // The listener is bound, so a connection made from here on waits in its backlog.
    crate::systemd::ready();
    let watchdog = crate::systemd::watchdog_period().map(|period| {
        tracing::info!(
            every_seconds = period.as_secs_f64(),
            "feeding the systemd watchdog while the prober is healthy"
        );
        tokio::spawn(crate::systemd::feed_watchdog(period, move || {
            prober_unhealthy()
        }))
    });
    // Live streams never end by themselves: end them first so the drain can finish.
    let shutdown = {
        let ctx = ctx.clone();
        async move {
            shutdown.await;
            crate::systemd::stopping();
            ctx.close();
        }
    };
    let served = http::serve_with(
        listener,
        routes(&ctx),
        gate,
        config.settings.http,
        tls,
        shutdown,
    )
    .await;
    reload_triggers.abort();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    supervisor.abort();
    poller.abort();
    held_alerts.abort();
    if let Some(leader) = notify_leader {
        leader.abort();
    }
    notifier.stop();
    drop(inventories);
    served.context("HTTP server failed")
}

/// The gate of `config`'s access settings: its users file read (or the start fails, as
/// a bad setting would) and watched for changes.
fn gate(
    config: &Config,
    registry: &mut Registry,
) -> anyhow::Result<Arc<crate::access::gate::Gate>> {
    use crate::access::{gate::Gate, users::Users, watch};
    let access = &config.settings.access;
    let users = match &access.users_file {
        Some(path) => Users::load(path)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("reading the users file {}", path.display()))?,
        None => Users::default(),
    };
    for (who, region) in users.regions() {
        if !config.inventory.regions.iter().any(|r| &*r.name == region) {
            tracing::warn!(
                user = who,
                region,
                "users file: no such region in the inventory; that user sees nothing of it"
            );
        }
    }
    tracing::info!(
        anonymous = access.anonymous.map_or("off", |r| r.as_str()),
        users_file = ?access.users_file,
        "access"
    );
    let gate = Arc::new(Gate::new(access, users));
    if let Some(path) = &access.users_file {
        let metrics = Arc::new(watch::AccessMetrics::default());
        metrics.register(registry);
        watch::spawn(path.clone(), &gate, metrics);
    }
    Ok(gate)
}

/// Who hears of each inventory applied: the reloader counts them, the SNMP poller syncs
/// its tasks to the snapshot.
struct Applied {
    count: tokio::sync::watch::Sender<u64>,
    snapshot: tokio::sync::watch::Sender<Option<Arc<crate::state::Snapshot>>>,
}

/// Owns the scheduler: applies each inventory it is sent, in order.
async fn supervise<P: Pinger>(
    mut scheduler: Scheduler<P>,
    mut incoming: mpsc::Receiver<Arc<Inventory>>,
    longest_interval: Arc<AtomicU64>,
    mut restore: HashMap<String, crate::store::StoredStatus>,
    applied: Applied,
) {
    while let Some(inventory) = incoming.recv().await {
        let started = std::time::Instant::now();
        let stored = std::mem::take(&mut restore);
        let longest = inventory
            .devices
            .iter()
            .map(|d| d.probe.interval + d.probe.probe_duration())
            .max();
        longest_interval.store(
            longest.unwrap_or_default().as_millis() as u64,
            Ordering::Relaxed,
        );
        let snapshot = scheduler.state().replace_inventory(inventory, |d| {
            stored
                .get(&*d.name)
                .map(|s| crate::state::Machine::restored(s.status, s.down_since))
        });
        scheduler.sync(&snapshot);
        applied.snapshot.send_replace(Some(snapshot.clone()));
        applied.count.send_modify(|n| *n += 1);
        tracing::debug!(
            version = snapshot.version,
            devices = snapshot.inventory.devices.len(),
            seconds = started.elapsed().as_secs_f64(),
            "inventory applied to the state and the prober"
        );
    }
}

/// Why `/readyz` should fail, if it should.
fn not_ready_reasons(
    pinger_healthy: bool,
    prober: &ProberMetrics,
    longest_cycle: Duration,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if !pinger_healthy {
        reasons.push("the ICMP socket failed; probes cannot be sent".to_string());
    }
    if longest_cycle > Duration::ZERO {
        // Every device probes at least once per cycle; allow two cycles plus slack.
        let limit = longest_cycle * 2 + Duration::from_secs(5);
        let stalled = match prober.since_last_probe() {
            Some(since) => since > limit,
            None => prober.age() > limit,
        };
        if stalled {
            reasons.push(format!(
                "the prober is stalled: no probe finished in the last {}s",
                limit.as_secs()
            ));
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeOutcome;

    /// The whole route table, as `docs/architecture.md` and the README list it.
    #[tokio::test]
    async fn every_route_in_one_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::startup::start(
            crate::store::startup::StartOptions::local(dir.path()),
            Arc::new(crate::state::SystemClock),
        )
        .await
        .unwrap();
        let state = State::new(Arc::new(crate::state::SystemClock));
        let reloader = crate::reload::Reloader::idle(dir.path().into(), Default::default());
        let ctx = Context::new(state, StoreHandle::of(&store), reloader);
        let routes = routes(&Arc::new(ctx));
        let table: Vec<String> = routes
            .iter()
            .map(|r| {
                let path = match r.path() {
                    http::route::Path::Exact(p) => p.to_string(),
                    http::route::Path::Prefix(p) => format!("{p}…"),
                };
                let who = match r.need() {
                    http::route::Need::Nobody => "anyone",
                    http::route::Need::Role(role) => role.as_str(),
                };
                format!("{} {path}: {who}", r.methods())
            })
            .collect();
        assert_eq!(
            table,
            [
                "GET, HEAD /api/v1/devices: viewer",
                "GET, HEAD /api/v1/devices/…: viewer",
                "POST /api/v1/devices/…: operator",
                "GET, HEAD /api/v1/alerts: viewer",
                "POST /api/v1/alerts/…: operator",
                "GET, HEAD /api/v1/audit: admin",
                "GET, HEAD /api/v1/dashboard: viewer",
                "GET, HEAD /api/v1/status: viewer",
                "GET, HEAD /api/v1/maintenance: viewer",
                "GET, HEAD /api/v1/silences: viewer",
                "POST /api/v1/silences: operator",
                "POST /api/v1/silences/…: operator",
                "GET, HEAD /api/v1/notifications: viewer",
                "GET, HEAD /api/v1/cluster: viewer",
                "GET, HEAD /api/v1/openapi.yaml: viewer",
                "GET, HEAD /api/v1/reports/availability: viewer",
                "GET /api/v1/events: viewer",
                "GET, HEAD /healthz: anyone",
                "GET, HEAD /readyz: anyone",
                "POST /-/reload: admin",
                "GET /metrics: viewer",
                "GET, HEAD /: viewer",
                "GET, HEAD /monitor: viewer",
                "GET, HEAD /devices/…: viewer",
                "GET, HEAD /alerts: viewer",
                "GET, HEAD /infrastructure: viewer",
                "GET, HEAD /wall: viewer",
                "GET, HEAD /reports: viewer",
                "GET, HEAD /login: anyone",
                "POST /login: anyone",
                "GET, HEAD /login/oidc: anyone",
                "GET, HEAD /login/oidc/callback: anyone",
                "POST /logout: anyone",
                "GET, HEAD /static/app.js: anyone",
                "GET, HEAD /static/app.css: anyone",
                "GET, HEAD /static/wall.js: anyone",
                "GET, HEAD /static/filters.js: anyone",
            ]
        );
        // What a monitoring system needs of a busy appliance, and nothing else.
        let reserved: Vec<_> = routes
            .iter()
            .filter(|r| r.is_reserved())
            .map(|r| r.path())
            .collect();
        assert_eq!(
            reserved,
            [
                http::route::Path::Exact("/healthz"),
                http::route::Path::Exact("/readyz"),
                http::route::Path::Exact("/metrics"),
            ]
        );
    }

    const CYCLE: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn ready_while_probes_keep_finishing() {
        let prober = ProberMetrics::default();
        assert!(
            not_ready_reasons(true, &prober, CYCLE).is_empty(),
            "a fresh start has time"
        );
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(10)).await;
            prober.probe_done(&ProbeOutcome::default());
            assert!(not_ready_reasons(true, &prober, CYCLE).is_empty());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_prober_is_not_ready() {
        let prober = ProberMetrics::default();
        tokio::time::advance(Duration::from_secs(26)).await;
        let reasons = not_ready_reasons(true, &prober, CYCLE);
        assert_eq!(reasons.len(), 1, "no probe ever finished: {reasons:?}");
        assert!(reasons[0].contains("stalled"));
        prober.probe_done(&ProbeOutcome::default());
        assert!(not_ready_reasons(true, &prober, CYCLE).is_empty());
        tokio::time::advance(Duration::from_secs(26)).await;
        assert!(not_ready_reasons(true, &prober, CYCLE)[0].contains("stalled"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_socket_is_not_ready() {
        let prober = ProberMetrics::default();
        let reasons = not_ready_reasons(false, &prober, CYCLE);
        assert!(
            reasons.len() == 1 && reasons[0].contains("ICMP socket"),
            "{reasons:?}"
        );
    }
}
