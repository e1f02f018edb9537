//! The HTTP server: JSON API, Prometheus metrics and health endpoints, all read from
//! the one [`State`].
//!
//! Routes:
//! - `GET /api/v1/devices` — devices with status, filters `status`, `region`, `branch`,
//!   `kind`, `q`, paging `limit`/`offset`; down first (longest down first), then by name.
//! - `GET /api/v1/devices/{name}` — one device (404 as JSON when unknown).
//! - `GET /api/v1/dashboard` — totals by status, by region and by kind.
//! - `GET /metrics` — Prometheus text (OpenMetrics on Accept), gzip when asked.
//! - `GET /healthz` — liveness; `GET /readyz` — fails while the prober is stalled or its
//!   socket is dead.

use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::config::settings::HttpSettings;
use crate::schedule::ProberMetrics;
use crate::state::State;

/// Everything the handlers read. Built once by the app.
pub struct HttpContext {
    pub state: State,
    pub prober: Arc<ProberMetrics>,
    /// The appliance's own metric families (prober, process, ...), encoded at scrape time
    /// after the per-device families.
    pub registry: Registry,
    /// Reasons the appliance is not ready; empty when ready.
    pub readiness: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    pub limits: HttpSettings,
}
