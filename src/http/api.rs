//! The device routes of the JSON API: `GET /api/v1/devices` (filtered, sorted, paged)
//! and `GET /api/v1/devices/{name}`. Each response is built from one snapshot and
//! carries its `state_version`.

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::HttpContext;
use super::json::DeviceJson;
use super::query::ListQuery;
use super::response::{self, Body};
use crate::config::{Device, ProbeSettings};
use crate::state::{DeviceRuntime, DeviceStatus, Snapshot, Status};

/// The detail route owns every path under this prefix: the rest, percent-decoded, is
/// the device name (which may itself contain `/`).
pub const DEVICE_PREFIX: &str = "/api/v1/devices/";

/// Rough size of one serialised device, to allocate the body once.
const DEVICE_JSON_BYTES: usize = 320;

type Row<'a> = (&'a Arc<Device>, &'a DeviceStatus, &'a Arc<DeviceRuntime>);

/// `GET /api/v1/devices`
pub fn list(ctx: &HttpContext, req: &Request<Bytes>) -> Response<Body> {
    let query = match ListQuery::parse(req.uri().query()) {
        Ok(q) => q,
        Err((parameter, message)) => return response::bad_parameter(parameter, &message),
    };
    let snapshot = ctx.state.snapshot();
    response::bytes(
        StatusCode::OK,
        response::JSON,
        devices_json(&snapshot, &query),
    )
}

/// The list body for `query`, built from one snapshot. Public for the benchmark.
pub fn devices_json(snapshot: &Snapshot, query: &ListQuery) -> Vec<u8> {
    let mut scratch = String::new();
    let mut rows: Vec<Row> = snapshot
        .devices()
        .filter(|(d, s, _)| query.matches(d, s.status, &mut scratch))
        .collect();
    rows.sort_unstable_by(order);
    let total = rows.len();
    let page = rows
        .iter()
        .skip(query.offset)
        .take(query.limit.unwrap_or(usize::MAX));

    // The envelope is written by hand so that devices stream into one buffer without an
    // intermediate Vec of JSON values.
    let mut out = Vec::with_capacity(64 + page.len() * DEVICE_JSON_BYTES);
    out.extend_from_slice(
        format!(
            r#"{{"state_version":{},"total":{total},"devices":["#,
            snapshot.version
        )
        .as_bytes(),
    );
    for (i, (device, status, runtime)) in page.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // The measurement mutex is held only for this copy, never across serialisation.
        let m = runtime.measurements();
        serde_json::to_writer(&mut out, &DeviceJson::new(device, status, &m))
            .expect("serialising to a Vec cannot fail");
    }
    out.extend_from_slice(b"]}");
    out
}

/// Down devices first, the longest down first; then everything else by name.
fn order(a: &Row, b: &Row) -> Ordering {
    let (sa, sb) = (a.1, b.1);
    let (down_a, down_b) = (sa.status == Status::Down, sb.status == Status::Down);
    down_b
        .cmp(&down_a)
        .then_with(|| {
            if down_a && down_b {
                // A down device without a known start sorts after those with one.
                (sa.down_since.is_none(), sa.down_since)
                    .cmp(&(sb.down_since.is_none(), sb.down_since))
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| a.0.name.cmp(&b.0.name))
}

#[derive(Serialize)]
struct Detail<'a> {
    state_version: u64,
    #[serde(flatten)]
    device: DeviceJson<'a>,
    probe: ProbeJson,
    probes_total: u64,
    successful_probes_total: u64,
    requests_total: u64,
    replies_total: u64,
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
        }
    }
}

/// `GET /api/v1/devices/{name}`
pub fn detail(ctx: &HttpContext, req: &Request<Bytes>) -> Response<Body> {
    let raw = &req.uri().path()[DEVICE_PREFIX.len()..];
    // Not form decoding: in a path `+` is a plus sign.
    let Ok(name) = percent_decode_str(raw).decode_utf8() else {
        return response::error(StatusCode::NOT_FOUND, "no such device (name is not UTF-8)");
    };
    let snapshot = ctx.state.snapshot();
    let Some((device, status, runtime)) = snapshot.device(&name) else {
        return response::error(StatusCode::NOT_FOUND, &format!("no device named {name:?}"));
    };
    let m = runtime.measurements();
    response::json(
        StatusCode::OK,
        &Detail {
            state_version: snapshot.version,
            device: DeviceJson::new(device, status, &m),
            probe: ProbeJson::from(&device.probe),
            probes_total: m.probes,
            successful_probes_total: m.successful_probes,
            requests_total: m.requests,
            replies_total: m.replies,
        },
    )
}
