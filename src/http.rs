//! The HTTP server: JSON API, Prometheus metrics and health endpoints, all read from
//! the one [`State`]. Every response that reports status is built from one snapshot
//! and carries its `state_version`.
//!
//! Routes (GET; HEAD too except on `/metrics`):
//! - `GET /api/v1/devices` — devices with status, filters `status` (comma-separated),
//!   `region`, `branch`, `kind`, `q` (substring of name or address, any case), paging
//!   `limit`/`offset` (`total` counts matches before paging); down first (longest down
//!   first), then by name. A bad value is a 400 naming the parameter.
//! - `GET /api/v1/devices/{name}` — one device (name percent-decoded, may contain `/`)
//!   with its probe settings and counters; 404 as JSON when unknown. Device JSON (list
//!   and detail) carries `open_alerts` when the appliance has a store.
//! - `GET /api/v1/devices/{name}/transitions` — the device's stored status changes,
//!   newest first, paged with `limit`/`before`; a removed device's history too. The
//!   whole path is tried as a device name first (see [`api::device`]).
//! - `GET /api/v1/alerts` — stored alerts, newest first: `status` (active, resolved),
//!   `device`, `severity`, paged with `limit`/`before` (cursor `next_before`).
//! - `GET /api/v1/dashboard` — totals by status, by region and by kind; prober health.
//! - `GET /metrics` — Prometheus text (OpenMetrics on Accept), gzip when asked.
//! - `GET /healthz` — liveness; `GET /readyz` — 503 with reasons while not ready
//!   (prober stalled, socket dead), 200 `degraded` while the store is (state is still
//!   served from memory).
//! - `GET /api/v1/status` — version, uptime, inventory revision and hash, last reload
//!   (time, result, errors), devices by status.
//! - `POST /-/reload` — reload the inventory now (403 unless `reload.http_endpoint`).
//!
//! Errors are JSON `{"error": ...}`. Limits: `limits.max_connections` connections,
//! `limits.header_timeout` to read a request head of at most 16 KiB, request bodies
//! of at most 64 KiB, `limits.request_timeout` per response (503 after it) except for
//! streaming routes. Layout: [`server`] accepts, [`router`] dispatches, one file per
//! route group.

pub mod api;
pub mod api_alerts;
pub mod api_order;
pub mod api_page;
pub mod api_transitions;
pub mod dashboard;
mod health;
pub mod json;
pub mod metrics;
pub mod query;
pub mod response;
pub mod router;
mod server;
pub mod status;

use std::sync::Arc;

use prometheus_client::registry::Registry;

pub use server::{GRACE, MAX_HEADER_BYTES, serve};

use crate::config::settings::HttpSettings;
use crate::schedule::ProberMetrics;
use crate::state::State;

/// Everything the handlers read. Built once by the app.
pub struct HttpContext {
    pub state: State,
    pub prober: Arc<ProberMetrics>,
    /// The appliance's own metric families (prober, ...), encoded at scrape time after
    /// the per-device families. The `process_*` families are added by `/metrics`
    /// itself: do not register a process collector here.
    pub registry: Registry,
    /// Reasons the appliance cannot do its job (prober stalled, socket dead); empty when
    /// it can. A degraded store is not one: `/readyz` reads that from `store`.
    pub readiness: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    pub limits: HttpSettings,
    /// The durable store, for alerts, transitions and open alert counts; None where the
    /// appliance keeps no history (tests of other routes).
    pub store: Option<StoreHandle>,
    /// The inventory reloader, for `/api/v1/status` and `POST /-/reload`; None where
    /// the inventory is fixed (tests of other routes).
    pub reload: Option<crate::reload::Reloader>,
    /// Web pages and the live feed (`crate::web`); None where only the API is served
    /// (tests of other routes).
    pub web: Option<Arc<crate::web::Web>>,
}

/// The store as the HTTP side sees it: the database for history, and the writer's health
/// for what must not cost a query per request or per device (degraded flag, open alert
/// counts).
#[derive(Clone)]
pub struct StoreHandle {
    pub db: Arc<crate::store::Db>,
    pub health: Arc<crate::store::StoreHealth>,
}
