//! `GET /`: the dashboard. Totals, the devices down now (longest first), counts by
//! region and by kind, open alerts, the prober's health and the last inventory reload.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response};
use minijinja::context;
use serde::Serialize;

use super::Pages;
use super::alerts::{AlertView, open_alerts};
use super::view::{self, DeviceView};
use crate::http::Body;
use crate::read_model::{Counts, ListQuery};
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
            lag_p99: prober
                .lag_p99()
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
    /// Open alerts in all: the figure the alerts page shows ([`super::alerts::open_alerts`]).
    pub total: usize,
    pub error: Option<String>,
}

fn worst_first(groups: &[(Arc<str>, Counts)]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group> = groups
        .iter()
        .map(|(name, counts)| Group {
            name,
            counts: *counts,
        })
        .collect();
    groups.sort_by_key(|g| g.counts.badness());
    groups
}

/// `GET /`
pub fn get(web: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let ctx = &web.ctx;
    let view = ctx.view(req);
    let snapshot = view.snapshot.clone();
    let now = ctx.state.clock().now();
    let prober = ProberView::of(&ctx.prober, (ctx.readiness)());
    let alerts = match open_alerts(web, &snapshot, !view.scope().is_all(), 50) {
        Ok((open, more, total)) => AlertsBlock {
            open,
            more,
            total,
            error: None,
        },
        Err(e) => AlertsBlock {
            open: Vec::new(),
            more: false,
            total: 0,
            error: Some(e),
        },
    };
    render(web, &snapshot, now, prober, alerts)
}

/// The dashboard of `snapshot` as of `now`. Public for the rendering tests and the bench.
pub fn render(
    web: &Pages,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    prober: ProberView,
    mut alerts: AlertsBlock,
) -> Response<Body> {
    super::alerts::count_behind(&mut alerts.open, snapshot);
    let scoped = web.ctx.scoped.order_for(snapshot);
    let order = scoped.as_deref().unwrap_or(&web.ctx.order);
    let label = web.ctx.web.display_name_label.as_deref();
    for a in &mut alerts.open {
        a.display_name = snapshot
            .device(&a.device)
            .and_then(|(d, _, _)| view::display_name(d, label))
            .map(str::to_string);
    }
    let all = order.totals(snapshot);
    let (totals, by_region, by_kind) = (
        all.all,
        worst_first(&all.by_region),
        worst_first(&all.by_kind),
    );
    let down_query = ListQuery {
        statuses: vec![Status::Down],
        ..ListQuery::default()
    };
    // Down devices lead the cached order: this reads only the first DOWN_LISTED.
    let down: Vec<DeviceView> =
        crate::read_model::select(snapshot, &down_query, Some(order), 0, DOWN_LISTED)
            .rows
            .into_iter()
            .map(|(d, s, r)| {
                DeviceView::new(d, s, &r.measurements(), now)
                    .named(web.ctx.web.display_name_label.as_deref())
            })
            .collect();
    view::page(
        web,
        "dashboard",
        snapshot,
        now,
        view::events_url(None, None, None),
        context! {
            totals => view::v(totals), down => view::v(down), by_region => view::v(by_region),
            by_kind => view::v(by_kind), prober => view::v(prober), alerts => view::v(alerts),
            inventory => view::v(web.ctx.hub.last_inventory()),
            streams => web.ctx.hub.open_streams(),
            outages => view::v(super::outage::summary(
                snapshot,
                web.ctx.web.display_name_label.as_deref(),
            )),
        },
    )
}
