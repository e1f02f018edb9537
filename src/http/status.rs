//! `GET /api/v1/status` and `POST /-/reload`: what the appliance is running and how its
//! last inventory reload went.
//!
//! The reload endpoint is off unless `reload.http_endpoint: true` (as Prometheus gates
//! its lifecycle API): anyone who can reach the port could otherwise make it re-read
//! the disk. When on, it reloads synchronously and answers with the outcome, including
//! every validation error, so a CI job can fail on a bad commit.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::HttpContext;
use super::response::{self, Body};
use super::router::BoxFuture;
use crate::reload::{ReloadResult, ReloadStatus, Trigger};
use crate::state::Status;

#[derive(Serialize, Default)]
struct Counts {
    total: usize,
    up: usize,
    down: usize,
    unknown: usize,
}

#[derive(Serialize)]
struct StatusBody {
    /// The wardops release.
    version: &'static str,
    started_at: DateTime<Utc>,
    uptime_seconds: f64,
    state_version: u64,
    devices: Counts,
    /// The running inventory and the last reload; null when reloading is not wired
    /// (embedded uses without a reloader).
    inventory: Option<ReloadStatus>,
}

/// `GET /api/v1/status`
pub fn get(ctx: &HttpContext, _req: &Request<Bytes>) -> Response<Body> {
    let snapshot = ctx.state.snapshot();
    let mut devices = Counts::default();
    for status in snapshot.status.iter() {
        devices.total += 1;
        match status.status {
            Status::Up => devices.up += 1,
            Status::Down => devices.down += 1,
            Status::Unknown => devices.unknown += 1,
        }
    }
    let uptime = ctx.prober.age();
    let started_at = Utc::now() - chrono::Duration::from_std(uptime).unwrap_or_default();
    response::json(
        StatusCode::OK,
        &StatusBody {
            version: env!("CARGO_PKG_VERSION"),
            started_at,
            uptime_seconds: uptime.as_secs_f64(),
            state_version: snapshot.version,
            devices,
            inventory: ctx.reload.as_ref().map(|r| r.status()),
        },
    )
}

/// `POST /-/reload`: 200 when applied or unchanged, 422 with the errors when the
/// inventory on disk is invalid (the last good one keeps running), 403 when disabled.
pub fn post(ctx: Arc<HttpContext>, _req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        let Some(reloader) = ctx.reload.clone().filter(|r| r.settings().http_endpoint) else {
            return response::error(
                StatusCode::FORBIDDEN,
                "the reload endpoint is disabled: set `reload: { http_endpoint: true }` in the \
                 settings file to enable it, or send SIGHUP to reload",
            );
        };
        let outcome = reloader.reload(Trigger::Http).await;
        let status = match outcome.result {
            ReloadResult::Failure => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::OK,
        };
        response::json(status, &outcome)
    })
}
