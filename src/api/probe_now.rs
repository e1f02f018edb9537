//! `POST /api/v1/devices/{name}/probe` (operator): "probe now", the old system's most
//! used button. The device's scheduler task probes it at once, out of phase
//! ([`crate::state::DeviceRuntime::request_probe`]); its next slot stands, so the
//! fleet's spread is untouched. The answer waits for that probe — the first to start
//! after the request — and says what it saw and the device's status after it, or 504
//! if no probe finished in time (the prober is stalled).
//!
//! The probe is an ordinary one: its outcome counts toward the device's thresholds like
//! any other (one failed probe of a device that is up starts confirming an outage; it
//! does not make it down by itself).
//!
//! Limited per device and per user ([`crate::access::probe_limits`]): 429 with
//! `Retry-After`. A region-limited user's device outside their regions is 404. Every
//! probe now is in the audit log. A page's form (`back`) is answered with a 303 back to
//! it, where the new last probe shows.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::devices::DEVICE_PREFIX;
use super::form;
use crate::access::Principal;
use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::read_model::Rfc3339;

pub const SUFFIX: &str = "/probe";
/// How often the handler looks whether the probe has finished.
const POLL: Duration = Duration::from_millis(20);
/// Beyond the probe's own longest duration, time for the task to wake and record it.
const SLACK: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Answer<'a> {
    device: &'a str,
    /// When the probe started.
    probed_at: Rfc3339,
    answered: bool,
    /// Mean round trip of its replies, milliseconds; null without a reply.
    rtt_ms: Option<f64>,
    /// Share of its echo requests unanswered, 0..1.
    loss: Option<f64>,
    /// The device's status after it.
    ping_status: &'a str,
    down_since: Option<Rfc3339>,
}

/// `POST /api/v1/devices/{name}/probe`, as the router runs it.
pub fn post(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        probe_now(&ctx, &req)
            .await
            .unwrap_or_else(|(status, message)| response::error(status, &message))
    })
}

/// The answer, or a refusal's status and message.
async fn probe_now(
    ctx: &Context,
    req: &Request<Bytes>,
) -> Result<Response<Body>, (StatusCode, String)> {
    let path = req.uri().path();
    let name = path
        .strip_prefix(DEVICE_PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
        .filter(|name| !name.is_empty())
        .and_then(|raw| percent_decode_str(raw).decode_utf8().ok())
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("no such route: {path} (…/devices/{{name}}/probe)"),
            )
        })?;
    let back = back(req)?;
    let by = Principal::of(req);
    let not_found = || (StatusCode::NOT_FOUND, format!("no device named {name:?}"));
    let snapshot = ctx.state.snapshot();
    let Some((device, _, runtime)) = snapshot.device(&name) else {
        return Err(not_found());
    };
    if !by.scope.allows(&device.region) {
        return Err(not_found());
    }
    let (device, runtime) = (device.clone(), runtime.clone());
    drop(snapshot);
    // An answer, not a refusal of the request: it carries when to ask again.
    if let Err(limited) = ctx.probe_limits.take(&by.name, &device.name) {
        let mut r = response::error(StatusCode::TOO_MANY_REQUESTS, &limited.to_string());
        let secs = limited.retry_after().as_secs_f64().ceil().max(1.0) as u64;
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(r);
    }
    let asked = ctx.state.clock().now();
    runtime.request_probe();
    let wait = device.probe.probe_duration() + SLACK;
    let deadline = tokio::time::Instant::now() + wait;
    let m = loop {
        tokio::time::sleep(POLL).await;
        if runtime.applied_since(asked) {
            break runtime.measurements();
        }
        if tokio::time::Instant::now() >= deadline {
            ctx.audit(
                &by,
                "probe_now",
                &format!("device {}", device.name),
                "no probe ran",
            );
            return Err((
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "no probe of {} finished within {} ms: is the prober running? (/readyz)",
                    device.name,
                    wait.as_millis()
                ),
            ));
        }
    };
    let answered = m.last_rtt.is_some();
    let rtt_ms = m.last_rtt.map(|d| d.as_secs_f64() * 1000.0);
    let said = match rtt_ms {
        Some(ms) => format!("answered in {ms:.2} ms"),
        None => "no reply".to_string(),
    };
    ctx.audit(&by, "probe_now", &format!("device {}", device.name), &said);
    tracing::info!(device = %device.name, by = %by.name, result = %said, "probe now");
    if let Some(back) = back {
        return Ok(form::see_other(&back));
    }
    let snapshot = ctx.state.snapshot();
    let status = snapshot.device(&device.name).map(|(_, s, _)| *s);
    Ok(response::json(
        StatusCode::OK,
        &Answer {
            device: &device.name,
            probed_at: Rfc3339(m.last_probe_at.unwrap_or(asked)),
            answered,
            rtt_ms,
            loss: m.last_loss,
            ping_status: status.map_or("unknown", |s| s.status.as_str()),
            down_since: status.and_then(|s| s.down_since).map(Rfc3339),
        },
    ))
}

/// A page form's `back` (a local path), if the body is one; nothing else is read.
fn back(req: &Request<Bytes>) -> Result<Option<String>, (StatusCode, String)> {
    match form::kind(req).map_err(|m| (StatusCode::BAD_REQUEST, m))? {
        form::Kind::Form => Ok(form_urlencoded::parse(req.body())
            .find(|(k, _)| k == "back")
            .map(|(_, v)| v.into_owned())
            .filter(|b| form::is_local_path(b))),
        form::Kind::Empty | form::Kind::Json => Ok(None),
    }
}
