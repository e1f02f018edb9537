//! `GET /api/v1/dashboard`: totals by status, region and kind from one snapshot, plus
//! the prober's own health so the UI can say when the figures are going stale.

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::context::Context;
use crate::http::response::{self, Body};
use crate::read_model::Counts;

#[derive(Serialize)]
struct Group<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
struct Prober {
    probes_total: u64,
    /// Upper bound of the lag bucket holding the 99th percentile; null before any probe.
    lag_p99_seconds: Option<f64>,
    last_probe_seconds_ago: Option<f64>,
}

#[derive(Serialize)]
struct Dashboard<'a> {
    state_version: u64,
    total: usize,
    by_status: Counts,
    by_region: Vec<Group<'a>>,
    by_kind: Vec<Group<'a>>,
    prober: Prober,
}

/// `GET /api/v1/dashboard`
pub fn get(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    let view = ctx.view(req);
    let snapshot = &view.snapshot;
    // Kept per (state version, inventory); the prober figures below are read live.
    let totals = view.order(&ctx.order).totals(snapshot);
    let group = |region, kind, counts| Group {
        region,
        kind,
        counts,
    };
    let body = Dashboard {
        state_version: snapshot.version,
        total: totals.all.total,
        by_status: totals.all,
        by_region: totals
            .by_region
            .iter()
            .map(|(name, counts)| group(Some(name), None, *counts))
            .collect(),
        by_kind: totals
            .by_kind
            .iter()
            .map(|(name, counts)| group(None, Some(name), *counts))
            .collect(),
        prober: Prober {
            probes_total: ctx.prober.probes.get(),
            lag_p99_seconds: ctx.prober.lag_p99(),
            last_probe_seconds_ago: ctx.prober.since_last_probe().map(|d| d.as_secs_f64()),
        },
    };
    response::json(StatusCode::OK, &body)
}
