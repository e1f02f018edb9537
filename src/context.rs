//! The one context every surface reads: the state, the store, the reloader, the prober's
//! health, and the read models derived from them (the list order, the feed, the RTT
//! history). Built once by [`crate::app`] (and by tests, from the same real parts); the
//! JSON API, `/metrics` and the pages each close their route tables over it.

use std::sync::{Arc, Weak};

use prometheus_client::registry::Registry;

use crate::config::settings::{MaintenanceSettings, WebSettings};
use crate::feed::{self, FeedConfig, Hub};
use crate::read_model::{History, OrderCache, Recovered, ScopedViews, View};
use crate::reload::Reloader;
use crate::schedule::ProberMetrics;
use crate::state::{Event, State};
use crate::store::{Actions, AuditEntry, Db, RecordKind, StoreHealth};

/// Reasons the appliance cannot do its job (prober stalled, socket dead); empty when it
/// can. A degraded store is not one: `/readyz` reads that from the store's health.
pub type Readiness = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// The store as the surfaces see it: the database for history, and the writer's health
/// for what must not cost a query per request or per device (degraded flag, open alert
/// counts).
#[derive(Clone)]
pub struct StoreHandle {
    pub db: Arc<Db>,
    pub health: Arc<StoreHealth>,
    /// What handlers write (acknowledgements, the audit log), through the writer.
    pub actions: Actions,
}

impl StoreHandle {
    pub fn of(started: &crate::store::startup::Started) -> StoreHandle {
        StoreHandle {
            db: started.store.clone(),
            health: started.health.clone(),
            actions: Actions::new(started.sink.clone()),
        }
    }
}

/// Everything the handlers read.
pub struct Context {
    pub state: State,
    pub store: StoreHandle,
    /// The inventory reloader, for `/api/v1/status`, `POST /-/reload` and the dashboard.
    pub reloader: Reloader,
    pub prober: Arc<ProberMetrics>,
    /// The appliance's own metric families (prober, store, reload), encoded at scrape
    /// time after the per-device families. The `process_*` families are added by
    /// `/metrics` itself: do not register a process collector here.
    pub registry: Registry,
    pub readiness: Readiness,
    pub web: WebSettings,
    /// The default zone of maintenance windows.
    pub maintenance: MaintenanceSettings,
    /// The live feed.
    pub hub: Arc<Hub>,
    /// The last hour of RTT and loss per device.
    pub history: Arc<History>,
    /// The devices that recovered in the last 30 minutes, for the monitor and the wall.
    pub recovered: Arc<Recovered>,
    /// The device list's order per state version, shared by `GET /api/v1/devices`, the
    /// wall and the dashboard.
    pub order: OrderCache,
    /// The versioned runs of each device's JSON for the newest version's full list
    /// ([`crate::api::device_json::kept`]).
    pub device_json: crate::api::device_json::kept::KeptCache,
    /// What each region scope sees of the inventory ([`crate::read_model::scope`]).
    pub scoped: ScopedViews,
    /// The notification engine's receivers (none unless configured).
    pub notifier: Arc<crate::notify::Notifier>,
    /// Where device pages read history beyond the last hour (`victoriametrics.url`);
    /// None: the hour in memory only.
    pub victoriametrics: Option<Arc<crate::history::VictoriaMetrics>>,
    /// Who may read and act: the users file, page sessions, the login rate limit.
    pub gate: Arc<crate::access::gate::Gate>,
    /// Sign-in with an OpenID Connect provider (`access.oidc`); None when not set up.
    pub oidc: Option<Arc<crate::access::oidc::Oidc>>,
    /// How often "probe now" may be asked for, per device and per user.
    pub probe_limits: crate::access::probe_limits::ProbeLimits,
    /// Availability reports: their SLA targets, and how many run at once.
    pub reports: crate::report::run::Reports,
    /// The cluster member this appliance runs as (`cluster:`); None: alone.
    pub cluster: Option<Arc<crate::cluster::handle::Handle>>,
}

impl Context {
    /// A context over `state`, `store` and `reloader` with the defaults of everything
    /// else (fresh prober metrics, an empty registry, always ready, default web
    /// settings) and no background tasks: set what differs, then [`Context::start`] it,
    /// or wrap it in an `Arc` as it is to render a fixed state.
    pub fn new(state: State, store: StoreHandle, reloader: Reloader) -> Context {
        let web = WebSettings::default();
        Context {
            hub: Hub::new(
                state.snapshot().version,
                web.max_event_streams,
                FeedConfig::default(),
            ),
            history: Arc::new(History::default()),
            recovered: Arc::new(Recovered::default()),
            order: OrderCache::default(),
            device_json: Default::default(),
            scoped: ScopedViews::default(),
            state,
            store,
            reloader,
            prober: Arc::new(ProberMetrics::default()),
            registry: Registry::default(),
            readiness: Box::new(Vec::new),
            web,
            maintenance: MaintenanceSettings::default(),
            notifier: crate::notify::Notifier::none(),
            victoriametrics: None,
            gate: Arc::new(crate::access::gate::Gate::open()),
            oidc: None,
            probe_limits: Default::default(),
            reports: Default::default(),
            cluster: None,
        }
    }

    /// Starts the context's tasks on the current tokio runtime: the feed (state events
    /// and the store's alert changes), the history sampler, and the list order's
    /// preparation after each inventory swap. Start it before the first inventory is
    /// applied so that the feed sees every version.
    pub fn start(mut self, feed: FeedConfig) -> Arc<Context> {
        self.hub = Hub::start(&self.state, self.web.max_event_streams, feed);
        feed::alerts::watch(
            self.hub.clone(),
            self.state.clone(),
            &self.store.health,
            self.store.db.clone(),
        );
        self.history = History::start(&self.state);
        self.recovered = Recovered::start(&self.state);
        let ctx = Arc::new(self);
        prepare_orders(Arc::downgrade(&ctx));
        ctx
    }

    /// The current snapshot as the asker of `req` sees it (only their regions).
    pub fn view(&self, req: &hyper::Request<bytes::Bytes>) -> View {
        let principal = crate::access::Principal::of(req);
        self.scoped.view(self.state.snapshot(), &principal.scope)
    }

    /// The availability report `query` asks for, as the asker of `req` may see it (their
    /// regions only): what the JSON route, the CSV and the `/reports` page all show.
    pub async fn report(
        &self,
        req: &hyper::Request<bytes::Bytes>,
        query: crate::report::query::Query,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::report::run::Report, crate::report::run::Refused> {
        let principal = crate::access::Principal::of(req);
        let inputs = crate::report::run::Inputs {
            inventory: self.state.snapshot().inventory.clone(),
            now,
            zone: self.maintenance.zone,
            scope: &principal.scope,
            health: &self.store.health,
        };
        self.reports.run(&self.store.db, query, inputs).await
    }

    /// Records a write in the audit log: who (`by`, with their address), what `action`
    /// (`ack`, `silence`, `probe`, `login`, `reload`…), on what `target`, with `detail`.
    /// Durable: the entry goes through the store writer (spooled while the database is
    /// away) into the `audit` table, read by `GET /api/v1/audit`, pruned by the retention.
    pub fn audit(&self, by: &crate::access::Principal, action: &str, target: &str, detail: &str) {
        tracing::info!(user = %by.name, address = %by.address, action, target, detail, "audit");
        let entry = AuditEntry {
            user: by.name.to_string(),
            via: by.via.as_str().into(),
            address: by.address.to_string(),
            action: action.into(),
            target: target.into(),
            detail: detail.into(),
        };
        let at = self.state.clock().now();
        if let Err(e) = self.store.actions.send(at, RecordKind::Audit(entry)) {
            tracing::error!(user = %by.name, action, target, error = %e, "audit entry lost");
        }
    }

    /// Ends every live stream with a `shutdown` event (call when the server stops).
    pub fn close(&self) {
        self.hub.close();
    }
}

/// Builds the device list's order as soon as an inventory is replaced, off the request
/// path: sorting 100,000 names takes long enough to show in the first request after a
/// reload. Ends with the context.
fn prepare_orders(ctx: Weak<Context>) {
    let Some(strong) = ctx.upgrade() else { return };
    let mut events = strong.state.subscribe();
    drop(strong);
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) if matches!(*event, Event::InventoryReplaced { .. }) => {}
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
            let Some(ctx) = ctx.upgrade() else { return };
            let _ = tokio::task::spawn_blocking(move || ctx.order.get(&ctx.state.snapshot())).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::load::inventory_of;
    use crate::state::SystemClock;
    use crate::store::startup::{StartOptions, start};

    #[tokio::test]
    async fn the_device_order_is_ready_before_the_first_request_after_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = start(StartOptions::local(dir.path()), Arc::new(SystemClock))
            .await
            .unwrap();
        let state = State::new(Arc::new(SystemClock));
        let reloader = Reloader::idle(dir.path().into(), state.snapshot().inventory.clone());
        let ctx = Context::new(state.clone(), StoreHandle::of(&store), reloader)
            .start(FeedConfig::default());
        let inventory = |n: usize| {
            let mut text =
                "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n"
                    .to_string();
            for i in 0..n {
                text += &format!(
                    "          - {{ name: d{i}, address: 127.67.0.{}, kind: atm }}\n",
                    i + 1
                );
            }
            Arc::new(inventory_of(&text))
        };
        for (round, n) in [3, 5].into_iter().enumerate() {
            state.replace_inventory(inventory(n), |_| None);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while ctx.order.builds() < round as u64 + 1 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no order built for reload {round}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The first request finds it: nothing more is built.
            let order = ctx.order.get(&state.snapshot());
            assert_eq!(order.indexes.len(), n);
            assert_eq!(ctx.order.builds(), round as u64 + 1);
        }
    }
}
