//! `GET /api/v1/status` and `POST /-/reload`: what the appliance is running and how its
//! last inventory reload went.
//!
//! The reload endpoint is off unless `reload.http_endpoint: true` (as Prometheus gates
//! its lifecycle API): anyone who can reach the port could otherwise make it re-read
//! the disk. When on, it reloads and answers with the outcome, including every
//! validation error, so a CI job can fail on a bad commit.
//!
//! The reload runs in a task of its own and the request only waits for it: a reload
//! cannot be cancelled halfway (an inventory sent to the app but not recorded as the
//! running revision) by a client that hangs up or by the request timeout.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::read_model::Counts;
use crate::reload::{ReloadResult, ReloadStatus, Trigger};

/// Devices by status, total first (this body's order since its first release).
#[derive(Serialize)]
struct DeviceCounts {
    total: usize,
    up: usize,
    down: usize,
    unreachable: usize,
    unknown: usize,
    /// Of the `up` ones, those `degraded`.
    degraded: usize,
}

impl From<Counts> for DeviceCounts {
    fn from(c: Counts) -> Self {
        DeviceCounts {
            total: c.total,
            up: c.up,
            down: c.down,
            unreachable: c.unreachable,
            unknown: c.unknown,
            degraded: c.degraded,
        }
    }
}

#[derive(Serialize)]
struct StatusBody {
    /// The wardops release.
    version: &'static str,
    started_at: DateTime<Utc>,
    uptime_seconds: f64,
    state_version: u64,
    devices: DeviceCounts,
    /// The running inventory and the last reload.
    inventory: ReloadStatus,
    /// The notification receivers in one line each: queued, failing, last success.
    notifications: Notifications,
}

#[derive(Serialize)]
struct Notifications {
    receivers: usize,
    /// Messages waiting for delivery plus notices waiting in their groups, all receivers.
    queued: i64,
    /// Receivers whose last delivery attempt failed (retried with backoff).
    failing: Vec<String>,
    summary: String,
    each: Vec<crate::notify::status::ReceiverView>,
}

fn notifications(ctx: &Context) -> Notifications {
    let each: Vec<_> = ctx.notifier.receivers.iter().map(|r| r.view()).collect();
    let queued = ctx.notifier.receivers.iter().map(|r| r.queued()).sum();
    let failing: Vec<String> = each
        .iter()
        .filter(|r| r.failing)
        .map(|r| r.name.clone())
        .collect();
    let summary = if each.is_empty() {
        "no receivers configured".to_string()
    } else if failing.is_empty() {
        format!("{} receiver(s) delivering, {queued} queued", each.len())
    } else {
        format!(
            "{} receiver(s), failing: {}; {queued} queued (retried with backoff)",
            each.len(),
            failing.join(", ")
        )
    };
    Notifications {
        receivers: each.len(),
        queued,
        failing,
        summary,
        each,
    }
}

/// `GET /api/v1/status`
pub fn get(ctx: &Context, _req: &Request<Bytes>) -> Response<Body> {
    let snapshot = ctx.state.snapshot();
    let mut devices = Counts::default();
    for status in snapshot.status.iter() {
        devices.add_device(status);
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
            devices: devices.into(),
            inventory: ctx.reloader.status(),
            notifications: notifications(ctx),
        },
    )
}

/// `POST /-/reload`: 200 when applied or unchanged, 422 with the errors when the
/// inventory on disk is invalid (the last good one keeps running), 403 when disabled.
pub fn post(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        let reloader = ctx.reloader.clone();
        if !reloader.settings().http_endpoint {
            return response::error(
                StatusCode::FORBIDDEN,
                "the reload endpoint is disabled: set `reload: { http_endpoint: true }` in the \
                 settings file to enable it, or send SIGHUP to reload",
            );
        }
        let reload = tokio::spawn(async move { reloader.reload(Trigger::Http).await });
        let outcome = match reload.await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "the reload task failed");
                return response::error(StatusCode::INTERNAL_SERVER_ERROR, "the reload failed");
            }
        };
        let status = match outcome.result {
            ReloadResult::Failure => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::OK,
        };
        let detail = format!(
            "{}: revision {}, {} devices, {} errors",
            outcome.result.as_str(),
            outcome.revision,
            outcome.devices,
            outcome.errors.len()
        );
        let by = crate::access::Principal::of(&req);
        ctx.audit(&by, "reload", "inventory", &detail);
        response::json(status, &outcome)
    })
}
