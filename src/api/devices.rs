//! The device routes of the JSON API: `GET /api/v1/devices` (filtered, sorted, paged)
//! and `GET /api/v1/devices/{name}`. Each response is built from one snapshot and
//! carries its `state_version`; each device carries its `open_alerts` count (from the writer's in-memory counts, as of its last commit: no query per
//! device). The list order is computed once per state version
//! ([`crate::read_model::order`]).

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::device_json::kept::KeptCache;
use super::{device_json, maintenance, transitions};
use crate::config::{Device, ProbeSettings};
use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::read_model::{
    ListQuery, OrderCache, Row, TimeWriter, select, unreachable_because, uplinks,
};
use crate::state::{DeviceStatus, Snapshot, Status};
use crate::store::StoreHealth;

/// The detail route owns every path under this prefix: the rest, percent-decoded, is
/// the device name (which may itself contain `/`).
pub const DEVICE_PREFIX: &str = "/api/v1/devices/";

/// Rough size of one serialised device (~300 bytes in a typical inventory), to allocate
/// the body once.
const DEVICE_JSON_BYTES: usize = 320;

/// Rough size of what one device writes per request beside its kept runs (measurements,
/// maintenance, the `degraded` constant, open alerts).
const LIVE_JSON_BYTES: usize = 224;

/// `GET /api/v1/devices`
pub fn list(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    let query = match ListQuery::parse(req.uri().query()) {
        Ok(q) => q,
        Err((parameter, message)) => return response::bad_parameter(parameter, &message),
    };
    let view = ctx.view(req);
    let snapshot = &view.snapshot;
    let (order, alerts) = (Some(view.order(&ctx.order)), Some(&*ctx.store.health));
    let ends = maintenance::ends(ctx);
    // The kept runs are the unscoped fleet's; a scoped list writes its devices directly.
    let kept = view.scope().is_all().then_some(&ctx.device_json);
    response::bytes(
        StatusCode::OK,
        response::JSON,
        devices_json_in(snapshot, &query, order, alerts, ends, kept),
    )
}

/// The list body for `query`, built from one snapshot, without alert counts or a cached
/// order. Public for the benchmark.
pub fn devices_json(snapshot: &Snapshot, query: &ListQuery) -> Vec<u8> {
    devices_json_with_alerts(snapshot, query, None, None)
}

/// The list body, along `cache`'s order when given, each device with its `open_alerts`
/// when `alerts` is given.
pub fn devices_json_with_alerts(
    snapshot: &Snapshot,
    query: &ListQuery,
    cache: Option<&OrderCache>,
    alerts: Option<&StoreHealth>,
) -> Vec<u8> {
    // Windows without a zone of their own are read in UTC here (no settings).
    let ends = maintenance::Ends::new(chrono::Utc::now(), chrono_tz::Tz::UTC, Default::default());
    devices_json_in(snapshot, query, cache, alerts, ends, None)
}

/// [`devices_json_with_alerts`] that also keeps and copies the versioned runs of each
/// device in `kept` ([`device_json::kept`]). Public for the benchmark and the tests.
pub fn devices_json_kept(
    snapshot: &Snapshot,
    query: &ListQuery,
    cache: Option<&OrderCache>,
    alerts: Option<&StoreHealth>,
    kept: &KeptCache,
) -> Vec<u8> {
    let ends = maintenance::Ends::new(chrono::Utc::now(), chrono_tz::Tz::UTC, Default::default());
    devices_json_in(snapshot, query, cache, alerts, ends, Some(kept))
}

/// The list body, with each device's maintenance as `ends` sees it.
fn devices_json_in(
    snapshot: &Snapshot,
    query: &ListQuery,
    cache: Option<&OrderCache>,
    alerts: Option<&StoreHealth>,
    mut ends: maintenance::Ends,
    kept: Option<&KeptCache>,
) -> Vec<u8> {
    // One load of the counts for the whole body: every device reads the same commit.
    let counts = alerts.map(|h| h.open_alert_counts());
    let selection = select(
        snapshot,
        query,
        cache,
        query.offset,
        query.limit.unwrap_or(usize::MAX),
    );
    let page = &selection.rows;
    // A body of a quarter of the fleet or more copies the version's kept runs (written
    // by the first such body); a smaller one uses them only if they are there already.
    let kept = kept.and_then(|cache| {
        if page.len() * 4 >= snapshot.inventory.devices.len() {
            cache.get(snapshot)
        } else {
            cache.written(snapshot)
        }
    });
    let runs = kept.as_deref().map(|k| k.runs(snapshot));

    // The envelope is written by hand so that devices stream into one buffer without an
    // intermediate Vec of JSON values.
    // With kept runs the body's size is known but for the live fields: one allocation,
    // not a copy into a doubled buffer halfway.
    let per_device = runs.map_or(DEVICE_JSON_BYTES, |r| {
        r.len() / snapshot.inventory.devices.len().max(1) + LIVE_JSON_BYTES
    });
    let mut out = Vec::with_capacity(64 + page.len() * per_device);
    out.extend_from_slice(
        format!(
            r#"{{"state_version":{},"total":{},"devices":["#,
            snapshot.version, selection.total
        )
        .as_bytes(),
    );
    let mut times = TimeWriter::default();
    for (k, (device, status, runtime)) in page.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        // The measurement mutex is held only for this copy, never across serialisation.
        let m = runtime.measurements();
        let open_alerts = counts
            .as_ref()
            .map(|c| c.get(&*device.name).copied().unwrap_or(0));
        out.push(b'{');
        let until = ends.of_device(device);
        let uplinks = uplinks::view(snapshot, device, status, Some(runtime));
        let mut extras = device_json::Extras {
            unreachable_because: None,
            open_alerts,
            maintenance_ends_at: until,
            uplinks: uplinks.as_ref(),
        };
        if let Some(runs) = runs {
            let i = selection.indexes[k] as usize;
            runs.write_fields(&mut out, &mut times, i, &m, extras);
        } else {
            let because = because(snapshot, device, status);
            extras.unreachable_because = because.as_deref();
            device_json::write_device_fields(&mut out, &mut times, device, status, &m, extras);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// For an unreachable device, the parents that made it so (looked up by name: only
/// unreachable devices pay for it).
fn because<'a>(
    snapshot: &'a Snapshot,
    device: &'a Device,
    status: &DeviceStatus,
) -> Option<Vec<&'a str>> {
    (status.status == Status::Unreachable).then(|| unreachable_because(snapshot, device))
}

/// A device's resolved probe settings, durations in seconds.
#[derive(Serialize)]
struct ProbeJson {
    interval_seconds: f64,
    timeout_seconds: f64,
    packets: u32,
    packet_spacing_seconds: f64,
    retry_interval_seconds: f64,
    down_after: u32,
    up_after: u32,
    /// The `degraded` thresholds; null when neither is set.
    degraded: Option<DegradedJson>,
}

/// `probe.degraded` as resolved for the device: a threshold switched off is null.
#[derive(Serialize)]
struct DegradedJson {
    rtt_above_seconds: Option<f64>,
    /// 0.0..1.0, as the device's `loss`.
    loss_above: Option<f64>,
    window_seconds: f64,
}

impl From<&ProbeSettings> for ProbeJson {
    fn from(p: &ProbeSettings) -> Self {
        Self {
            interval_seconds: p.interval.as_secs_f64(),
            timeout_seconds: p.timeout.as_secs_f64(),
            packets: p.packets,
            packet_spacing_seconds: p.packet_spacing.as_secs_f64(),
            retry_interval_seconds: p.retry_interval.as_secs_f64(),
            down_after: p.down_after,
            up_after: p.up_after,
            degraded: p.degraded.is_enabled().then(|| DegradedJson {
                rtt_above_seconds: p.degraded.rtt_above.map(|d| d.as_secs_f64()),
                loss_above: p.degraded.loss_above.map(|l| l.fraction()),
                window_seconds: p.degraded.window.as_secs_f64(),
            }),
        }
    }
}

/// Everything under `/api/v1/devices/`: one device, or one device's transitions.
///
/// The rest of the path is percent-decoded (a name may contain `/`, encoded or not) and
/// then, in this order:
/// 1. if it is the name of a device in the inventory, that device;
/// 2. else if it ends with `/transitions`, the history of the device named by what comes
///    before (which may be a removed device);
/// 3. else 404.
///
/// So a device literally named `x/transitions` is always reachable as itself, and its
/// own history is `x/transitions/transitions`. The one path that cannot be expressed is
/// the history of `x` while a device `x/transitions` also exists.
pub fn device(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    let raw = &req.uri().path()[DEVICE_PREFIX.len()..];
    // Not form decoding: in a path `+` is a plus sign.
    let Ok(name) = percent_decode_str(raw).decode_utf8() else {
        let response = response::error(StatusCode::NOT_FOUND, "no such device (name is not UTF-8)");
        return Box::pin(std::future::ready(response));
    };
    // Outside the scope a device is as absent as an unknown one (404, not 403).
    let view = ctx.view(&req);
    let snapshot = &view.snapshot;
    if let Some(row) = snapshot.device(&name) {
        return Box::pin(std::future::ready(detail(&ctx, snapshot, row)));
    }
    match name.strip_suffix(transitions::SUFFIX) {
        Some(device) if !device.is_empty() => {
            let device = device.to_string();
            Box::pin(async move { transitions::get(&ctx, &device, &req).await })
        }
        _ => {
            let response =
                response::error(StatusCode::NOT_FOUND, &format!("no device named {name:?}"));
            Box::pin(std::future::ready(response))
        }
    }
}

/// `GET /api/v1/devices/{name}`: the device's list fields between its `state_version`
/// and its probe settings and counters.
fn detail(ctx: &Context, snapshot: &Snapshot, row: Row) -> Response<Body> {
    let (device, status, runtime) = row;
    let m = runtime.measurements();
    let open_alerts = Some(ctx.store.health.open_alerts(&device.name));
    let mut out = Vec::with_capacity(4 * DEVICE_JSON_BYTES);
    let _ = write!(out, r#"{{"state_version":{},"#, snapshot.version);
    let because = because(snapshot, device, status);
    let uplinks = uplinks::view(snapshot, device, status, Some(runtime));
    device_json::write_device_fields(
        &mut out,
        &mut TimeWriter::default(),
        device,
        status,
        &m,
        device_json::Extras {
            unreachable_because: because.as_deref(),
            open_alerts,
            maintenance_ends_at: maintenance::ends(ctx).of_device(device),
            uplinks: uplinks.as_ref(),
        },
    );
    // The acknowledged ones among its open alerts (who, when, what they said).
    out.extend_from_slice(br#","acknowledged":"#);
    serde_json::to_writer(
        &mut out,
        &ctx.store.health.acknowledged.of_device(&device.name),
    )
    .expect("serialising to a Vec cannot fail");
    out.extend_from_slice(br#","probe":"#);
    serde_json::to_writer(&mut out, &ProbeJson::from(&device.probe))
        .expect("serialising to a Vec cannot fail");
    let _ = write!(
        out,
        r#","probes_total":{},"successful_probes_total":{},"requests_total":{},"replies_total":{}}}"#,
        m.probes, m.successful_probes, m.requests, m.replies
    );
    response::bytes(StatusCode::OK, response::JSON, out)
}
