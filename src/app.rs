//! Wires the pieces together: inventory → state → scheduler → HTTP, and runs them until
//! shutdown.

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
use crate::http::{self, HttpContext};
use crate::probe::Pinger;
use crate::schedule::{ProberMetrics, Scheduler};
use crate::state::State;

mod prober_thread;
pub use prober_thread::ProberThread;

/// A running appliance's handles, for whoever needs to act on it (reloads, tests).
#[derive(Clone)]
pub struct Handles {
    pub state: State,
    pub prober: Arc<ProberMetrics>,
    /// Send a new, validated inventory here to apply it.
    pub inventories: mpsc::Sender<Arc<Inventory>>,
}

/// The durable store of a running appliance (see [`crate::store`]).
pub struct StoreParts {
    pub db: Arc<crate::store::Db>,
    pub health: Arc<crate::store::StoreHealth>,
    /// Status each device starts from (loaded at start-up); used for the first inventory
    /// only, later ones add devices as `unknown`.
    pub restore: HashMap<String, crate::store::StoredStatus>,
}

/// Runs the appliance on `listener` until `shutdown` completes: probing on `prober` (see
/// [`ProberThread`]), state restored from the durable store when there is one, its health
/// in `/readyz` and `/metrics`.
pub async fn run<P: Pinger>(
    config: Config,
    pinger: Arc<P>,
    state: State,
    listener: TcpListener,
    store: Option<StoreParts>,
    prober_runtime: &tokio::runtime::Handle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let http_store = store.as_ref().map(|s| http::StoreHandle {
        db: s.db.clone(),
        health: s.health.clone(),
    });
    let (store_health, restore) = match store {
        Some(s) => (Some(s.health), s.restore),
        None => (None, HashMap::new()),
    };
    // Started before the first inventory is applied so the feed sees every version.
    let web = crate::web::Web::start(&state, config.settings.web.clone(), http_store.clone());
    let prober = Arc::new(ProberMetrics::default());
    let (inventories, incoming) = mpsc::channel(4);
    let handles = Handles {
        state: state.clone(),
        prober: prober.clone(),
        inventories,
    };
    let longest_interval = Arc::new(AtomicU64::new(0));
    let (applied_tx, applied) = tokio::sync::watch::channel(0u64);
    let supervisor = prober_runtime.spawn(supervise(
        Scheduler::new(pinger.clone(), state.clone(), prober.clone()),
        incoming,
        longest_interval.clone(),
        restore,
        applied_tx,
    ));
    handles
        .inventories
        .send(config.inventory.clone())
        .await
        .context("starting the scheduler")?;

    let mut registry = Registry::default();
    prober.register(&mut registry);
    if let Some(health) = &store_health {
        health.register(&mut registry);
    }
    // Inventory hot reload: validated inventories go to the supervisor like the first.
    let reload_metrics = Arc::new(crate::reload::ReloadMetrics::default());
    reload_metrics.register(&mut registry);
    let reloader = crate::reload::Reloader::new(
        config.settings.inventory_dir.clone(),
        config.settings.probe,
        config.settings.reload,
        config.inventory.clone(),
        handles.inventories.clone(),
        reload_metrics,
    );
    reloader.confirm_with(applied);
    let reload_triggers = crate::reload::watch::spawn(reloader.clone());
    let readiness = {
        let prober = prober.clone();
        Box::new(move || {
            let interval = Duration::from_millis(longest_interval.load(Ordering::Relaxed));
            // A degraded store is not among these: `/readyz` grades it from `store`.
            not_ready_reasons(pinger.is_healthy(), &prober, interval)
        })
    };
    let ctx = Arc::new(HttpContext {
        state,
        prober,
        registry,
        readiness,
        limits: config.settings.http,
        store: http_store,
        reload: Some(reloader),
        web: Some(web.clone()),
    });
    tracing::info!(listen = %listener.local_addr()?, devices = config.inventory.devices.len(), "serving");
    // Live streams never end by themselves: end them first so the drain can finish.
    let shutdown = {
        let web = web.clone();
        async move {
            shutdown.await;
            web.close();
        }
    };
    let served = http::serve(listener, ctx, shutdown).await;
    reload_triggers.abort();
    supervisor.abort();
    drop(handles);
    served.context("HTTP server failed")
}

/// Owns the scheduler: applies each inventory it is sent, in order.
async fn supervise<P: Pinger>(
    mut scheduler: Scheduler<P>,
    mut incoming: mpsc::Receiver<Arc<Inventory>>,
    longest_interval: Arc<AtomicU64>,
    mut restore: HashMap<String, crate::store::StoredStatus>,
    applied: tokio::sync::watch::Sender<u64>,
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
        applied.send_modify(|n| *n += 1);
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
