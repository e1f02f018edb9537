//! Web pages and the live event feed. Server-rendered from one snapshot each (minijinja
//! templates built into the binary, autoescaped), useful without JavaScript; one small
//! hand-written script subscribes to the feed and updates pages in place.
//!
//! Routes (GET):
//! - `/` — dashboard: totals, devices down now, by region and kind, open alerts, prober
//!   health, last inventory reload.
//! - `/monitor` — the NOC wall: down first, longest down first; filters `status`, `region`,
//!   `branch`, `kind`, `q`; `view=grid|table`; `page` (of [`monitor::PAGE_SIZE`]).
//! - `/devices/{name}` — one device: hierarchy, labels, last hour chart, transitions and
//!   alerts from the store, VictoriaMetrics link.
//! - `/alerts` — open and recently resolved alerts; filters `severity`, `device`.
//! - `/infrastructure` — regions → branches with counts, worst first; a map from lat/lon.
//! - `/static/app.js`, `/static/app.css` — the script and the style sheet.
//! - `/api/v1/events` — Server-Sent Events (see [`sse`]).
//!
//! Layout: [`events`] is the feed's hub, [`sse`] one client's stream, [`history`] the
//! bounded RTT/loss history, [`templates`] the environment, [`view`] what pages share,
//! one file per page, [`chart`] the SVG drawings, [`assets`] the static files.

pub mod alert_feed;
pub mod alerts;
pub mod assets;
pub mod chart;
pub mod dashboard;
pub mod device;
pub mod events;
pub mod history;
pub mod infrastructure;
pub mod monitor;
pub mod sse;
pub mod templates;
pub mod view;

use std::sync::Arc;

use crate::config::settings::WebSettings;
use crate::http::StoreHandle;
use crate::http::api::OrderCache;
use crate::state::State;
use crate::store::Db;

pub use events::{FeedConfig, Hub};
pub use history::History;

/// Everything the pages and the feed need besides the state. Built once by the app.
pub struct Web {
    pub settings: WebSettings,
    pub hub: Arc<Hub>,
    pub history: Arc<History>,
    /// Transitions and alerts; None without a store (the pages say so).
    pub store: Option<Arc<Db>>,
    pub templates: templates::Templates,
    /// The device list's order per state version, shared by `/monitor`, the dashboard
    /// and `GET /api/v1/devices`.
    pub order: OrderCache,
}

/// Builds the device list's order as soon as an inventory is replaced, off the request
/// path: sorting 100,000 names takes long enough to show in the first request after a
/// reload. Ends with the web context.
fn prepare_orders(web: &Arc<Web>, state: &State) {
    let (web, state, mut events) = (Arc::downgrade(web), state.clone(), state.subscribe());
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) if matches!(*event, crate::state::Event::InventoryReplaced { .. }) => {}
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
            let Some(web) = web.upgrade() else { return };
            let state = state.clone();
            let _ = tokio::task::spawn_blocking(move || web.order.get(&state.snapshot())).await;
        }
    });
}

impl Web {
    /// Builds the web context and starts its tasks (the feed's hub, the alert feed when
    /// there is a store, the history sampler) on the current tokio runtime.
    pub fn start(state: &State, settings: WebSettings, store: Option<StoreHandle>) -> Arc<Web> {
        Self::start_with(state, settings, store, FeedConfig::default())
    }

    /// [`Web::start`] with the feed tuned (tests use a small client buffer and a short
    /// heartbeat).
    pub fn start_with(
        state: &State,
        settings: WebSettings,
        store: Option<StoreHandle>,
        feed: FeedConfig,
    ) -> Arc<Web> {
        let hub = Hub::start(state, settings.max_event_streams, feed);
        if let Some(s) = &store {
            alert_feed::watch(hub.clone(), state.clone(), &s.health);
        }
        let web = Arc::new(Web {
            hub,
            history: History::start(state),
            store: store.map(|s| s.db),
            templates: templates::Templates::new(),
            order: OrderCache::default(),
            settings,
        });
        prepare_orders(&web, state);
        web
    }

    /// A web context with no background tasks, for tests of rendering.
    pub fn detached(state: &State, settings: WebSettings) -> Web {
        Web {
            hub: Hub::new(
                state.snapshot().version,
                settings.max_event_streams,
                FeedConfig::default(),
            ),
            history: Arc::new(History::default()),
            store: None,
            templates: templates::Templates::new(),
            order: OrderCache::default(),
            settings,
        }
    }

    /// Ends every live stream with a `shutdown` event (call when the server stops).
    pub fn close(&self) {
        self.hub.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::load::{Source, build_inventory};
    use crate::state::SystemClock;

    #[tokio::test]
    async fn the_device_order_is_ready_before_the_first_request_after_a_reload() {
        let state = State::new(Arc::new(SystemClock));
        let web = Web::start(&state, WebSettings::default(), None);
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
            let source = Source {
                path: "t.yaml".into(),
                text,
            };
            Arc::new(build_inventory(&[source], &Default::default()).unwrap())
        };
        for (round, n) in [3, 5].into_iter().enumerate() {
            state.replace_inventory(inventory(n), |_| None);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while web.order.builds() < round as u64 + 1 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no order built for reload {round}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The first request finds it: nothing more is built.
            let order = web.order.get(&state.snapshot());
            assert_eq!(order.indexes.len(), n);
            assert_eq!(web.order.builds(), round as u64 + 1);
        }
    }
}
