//! The JSON API, health and lifecycle routes. Every response that reports status is
//! built from one snapshot and carries its `state_version`.
//!
//! Routes (GET; HEAD too except on the event stream):
//! - `GET /api/v1/devices` — devices with status, filters `status` (comma-separated),
//!   `region`, `branch`, `kind`, `q` (substring of name or address, any case), paging
//!   `limit`/`offset` (`total` counts matches before paging); down first (longest down
//!   first), then by name. A bad value is a 400 naming the parameter.
//! - `GET /api/v1/devices/{name}` — one device (name percent-decoded, may contain `/`)
//!   with its probe settings and counters; 404 as JSON when unknown. Device JSON (list
//!   and detail) carries `open_alerts`.
//! - `GET /api/v1/devices/{name}/transitions` — the device's stored status changes,
//!   newest first, paged with `limit`/`before`; a removed device's history too. The
//!   whole path is tried as a device name first (see [`devices::device`]).
//! - `GET /api/v1/alerts` — stored alerts, newest first: `status` (active, resolved),
//!   `device`, `severity`, paged with `limit`/`before` (cursor `next_before`).
//! - `POST /api/v1/devices/{name}/probe` (operator) — probe the device now, out of
//!   phase, and answer with what the probe saw ([`probe_now`]; rate-limited).
//! - `POST /api/v1/alerts/{id}/ack` (operator) — acknowledge an open alert, with a
//!   `comment` (JSON or form); `POST /api/v1/alerts/{id}/unack` takes it back
//!   ([`acknowledge`]). Alert JSON carries `acknowledged_by`, `_at`, `_comment`.
//! - `GET /api/v1/audit` (admin) — the audit log, newest first: `user`, `action`, paged
//!   with `limit`/`before` ([`audit`]).
//! - `GET /api/v1/dashboard` — totals by status, by region and by kind; prober health.
//! - `GET /api/v1/status` — version, uptime, inventory revision and hash, last reload
//!   (time, result, errors), devices by status.
//! - `GET /api/v1/maintenance` — maintenance windows going on and starting in the next
//!   7 days, each with its scope, reason, start and end (UTC and local), zone and the
//!   number of devices it covers ([`maintenance`]). Device JSON carries
//!   `in_maintenance` and `maintenance_ends_at`. The operators' silences are listed
//!   there too (`scope: silence`).
//! - `GET /api/v1/silences` — silences pending or active; `POST /api/v1/silences`
//!   (operator) makes one (matchers `region`, `branch`, `device`, `kind`; `starts_at`,
//!   `duration` or `ends_at`, `comment`); `POST /api/v1/silences/{id}/expire`
//!   (operator) ends one early ([`silences`]).
//! - `GET /api/v1/openapi.yaml` — the OpenAPI 3.1 description of these routes
//!   ([`openapi`]).
//! - `GET /api/v1/reports/availability` — availability, downtime, unreachable,
//!   maintenance and unmonitored time, outages, MTTR, MTBF and SLA per device, branch,
//!   region, kind or label over a period, JSON or CSV ([`reports`]).
//! - `GET /api/v1/cluster` — a cluster member's members, shard leases and own view
//!   (404 for an appliance alone; [`cluster`]).
//! - `GET /api/v1/events` — the live feed as Server-Sent Events ([`events`]).
//! - `GET /healthz` — liveness; `GET /readyz` — 503 with reasons while not ready
//!   (prober stalled, socket dead), 200 `degraded` while the store is (state is still
//!   served from memory). Both are reserved routes: served on the connections kept for
//!   a busy server (see [`crate::http::admission`]).
//! - `POST /-/reload` — reload the inventory now (403 unless `reload.http_endpoint`);
//!   the reload runs in its own task, so a dropped request does not cancel it.
//!
//! Layout: one file per route group; [`device_json`] is the device's JSON shape.

pub mod acknowledge;
pub mod alerts;
pub mod audit;
pub mod cluster;
pub mod dashboard;
pub mod device_json;
pub mod devices;
pub mod events;
pub mod form;
pub mod health;
pub mod maintenance;
pub mod notifications;
pub mod openapi;
pub mod probe_now;
pub mod reports;
pub mod silences;
pub mod status;
pub mod transitions;

use std::sync::Arc;

use hyper::{Response, StatusCode};

use crate::access::Role;
use crate::context::Context;
use crate::http::response::{self, Body};
use crate::http::route::{Route, Run, Wait};
use crate::store::StoreError;

/// The API's route table.
pub fn routes(ctx: &Arc<Context>) -> Vec<Route> {
    vec![
        Route::exact("/api/v1/devices").sync(Run::Blocking, ctx, devices::list),
        // A device from the snapshot, or its transitions from the store.
        Route::prefix(devices::DEVICE_PREFIX).task(Wait::Io, ctx, devices::device),
        // `{name}/probe`.
        Route::prefix(devices::DEVICE_PREFIX)
            .needs(Role::Operator)
            .task(Wait::Post, ctx, probe_now::post),
        Route::exact("/api/v1/alerts").task(Wait::Io, ctx, alerts::route),
        // `{id}/ack` and `{id}/unack`.
        Route::prefix(acknowledge::PREFIX)
            .needs(Role::Operator)
            .task(Wait::Post, ctx, acknowledge::post),
        Route::exact("/api/v1/audit")
            .needs(Role::Admin)
            .task(Wait::Io, ctx, audit::route),
        Route::exact("/api/v1/dashboard").sync(Run::Blocking, ctx, dashboard::get),
        Route::exact("/api/v1/status").sync(Run::Blocking, ctx, status::get),
        Route::exact("/api/v1/maintenance").sync(Run::Blocking, ctx, maintenance::get),
        // Counting the devices each covers is proportional to the inventory.
        Route::exact(silences::PATH).sync(Run::Blocking, ctx, silences::list),
        Route::exact(silences::PATH)
            .needs(Role::Operator)
            .task(Wait::Post, ctx, silences::post),
        // `{id}/expire`.
        Route::prefix(silences::PREFIX).needs(Role::Operator).task(
            Wait::Post,
            ctx,
            silences::expire,
        ),
        Route::exact("/api/v1/notifications").task(Wait::Io, ctx, notifications::route),
        Route::exact(cluster::PATH).task(Wait::Io, ctx, cluster::route),
        Route::exact(openapi::PATH).sync(Run::Inline, ctx, openapi::get),
        // A store read, then the figures off the runtime (`report::run`).
        Route::exact(reports::PATH).task(Wait::Io, ctx, reports::route),
        Route::exact("/api/v1/events")
            .no_head()
            .task(Wait::Streaming, ctx, events::get),
        // Reserved: a load balancer must see a busy appliance as alive, not as gone.
        Route::exact("/healthz")
            .public()
            .reserved()
            .sync(Run::Inline, ctx, health::healthz),
        // The readiness check is the app's closure, of unknown cost: keep it off the runtime.
        Route::exact("/readyz")
            .public()
            .reserved()
            .sync(Run::Blocking, ctx, health::readyz),
        Route::exact("/-/reload").task(Wait::Post, ctx, status::post),
    ]
}

/// A failed history read. An unreachable database is a 503 (the appliance still serves
/// live state from memory, and the read works again once the database is back);
/// anything else is a bug or a schema problem, logged in full.
pub fn store_error(e: StoreError) -> Response<Body> {
    if e.is_unavailable() {
        response::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("store unavailable, history cannot be read: {e}"),
        )
    } else {
        tracing::error!(error = %e, "reading history from the store failed");
        response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading history from the store failed",
        )
    }
}
