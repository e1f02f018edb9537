//! `GET /`: the dashboard. Totals, the devices down now (longest first), counts by
//! region and by kind, open alerts, the prober's health and the last inventory reload.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response};
use minijinja::context;
use serde::Serialize;

use super::Web;
use super::alerts::{AlertView, open_alerts};
use super::view::{self, Common, Counts, DeviceView};
use crate::http::HttpContext;
use crate::http::query::ListQuery;
use crate::http::response::Body;
use crate::schedule::ProberMetrics;
use crate::state::{Snapshot, Status};

/// Down devices listed on the dashboard; the rest are a link to the wall.
pub const DOWN_LISTED: usize = 25;

#[derive(Serialize)]
struct Group<'a> {
    name: &'a str,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
pub struct ProberView {
    pub ready: bool,
    pub reasons: Vec<String>,
    pub probes: u64,
    pub rate: String,
    pub lag_p99: String,
    pub last_probe: String,
}

impl ProberView {
    pub fn of(prober: &ProberMetrics, reasons: Vec<String>) -> ProberView {
        let probes = prober.probes.get();
        let secs = prober.age().as_secs_f64().max(1.0);
        ProberView {
            ready: reasons.is_empty(),
            reasons,
            probes,
            rate: format!("{:.1}", probes as f64 / secs),
            lag_p99: crate::http::dashboard::lag_p99(prober)
                .map_or("—".into(), |s| format!("≤ {:.1} ms", s * 1000.0)),
            last_probe: prober.since_last_probe().map_or("none yet".into(), |d| {
                format!("{:.1} s ago", d.as_secs_f64())
            }),
        }
    }
}

#[derive(Serialize)]
pub struct AlertsBlock {
    pub open: Vec<AlertView>,
    pub more: bool,
    pub error: Option<String>,
}

/// `GET /`
pub fn get(ctx: &HttpContext, _req: &Request<Bytes>) -> Response<Body> {
    let Some(web) = ctx.web.as_deref() else {
        return view::not_enabled();
    };
    let snapshot = ctx.state.snapshot();
    let now = ctx.state.clock().now();
    let prober = ProberView::of(&ctx.prober, (ctx.readiness)());
    let alerts = match open_alerts(web, 50) {
        Ok((open, more)) => AlertsBlock {
            open,
            more,
            error: None,
        },
        Err(e) => AlertsBlock {
            open: Vec::new(),
            more: false,
            error: Some(e),
        },
    };
    render(web, &snapshot, now, prober, alerts)
}

/// The dashboard of `snapshot` as of `now`. Public for the rendering tests and the bench.
pub fn render(
    web: &Web,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    prober: ProberView,
    alerts: AlertsBlock,
) -> Response<Body> {
    let mut totals = Counts::default();
    let mut by_kind: BTreeMap<&str, Counts> = BTreeMap::new();
    let statuses: Vec<Status> = snapshot.status.iter().map(|s| s.status).collect();
    for ((d, _, _), &s) in snapshot.devices().zip(&statuses) {
        totals.add(s);
        by_kind.entry(&d.kind).or_default().add(s);
    }
    let mut by_region: Vec<Group> = snapshot
        .inventory
        .regions
        .iter()
        .map(|r| {
            let mut counts = Counts::default();
            for &i in r.branches.iter().flat_map(|b| &b.devices) {
                counts.add(statuses[i]);
            }
            Group {
                name: &r.name,
                counts,
            }
        })
        .collect();
    by_region.sort_by_key(|g| g.counts.badness());
    let mut by_kind: Vec<Group> = by_kind
        .into_iter()
        .map(|(name, counts)| Group { name, counts })
        .collect();
    by_kind.sort_by_key(|g| g.counts.badness());
    let down_query = ListQuery {
        statuses: vec![Status::Down],
        ..ListQuery::default()
    };
    // Down devices lead the cached order: this reads only the first DOWN_LISTED.
    let down: Vec<DeviceView> =
        crate::http::api::select(snapshot, &down_query, Some(&web.order), 0, DOWN_LISTED)
            .rows
            .into_iter()
            .map(|(d, s, r)| DeviceView::new(d, s, &r.measurements(), now))
            .collect();
    let common = Common::new(
        web,
        "dashboard",
        snapshot,
        now,
        view::events_url(None, None, None),
    );
    let ctx = context! {
        ..view::v(&common),
        ..context! {
            totals => view::v(totals), down => view::v(down), by_region => view::v(by_region),
            by_kind => view::v(by_kind), prober => view::v(prober), alerts => view::v(alerts),
            inventory => view::v(web.hub.last_inventory()),
            streams => web.hub.open_streams(),
        }
    };
    view::render(web, "dashboard.html", ctx)
}
