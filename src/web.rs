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
        Arc::new(Web {
            hub,
            history: History::start(state),
            store: store.map(|s| s.db),
            templates: templates::Templates::new(),
            order: OrderCache::default(),
            settings,
        })
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
