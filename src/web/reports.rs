//! `GET /reports`: the availability report as a page. A period (a day, a week, a month,
//! or from–to, in the display zone), a grouping, a sort (breaches first, worst
//! availability, most downtime, most outages), and drill-down: a region's row leads to
//! its branches, a branch's to its devices, a device's to the list of its outages, each
//! over the same period. Printable: the print style sheet drops the navigation and the
//! form, so the browser's "save as PDF" gives a clean document. The CSV link is the
//! API's (`/api/v1/reports/availability?…&format=csv`), with the same parameters.
//!
//! A report is a computed document, not live state: the page is not re-fetched on
//! feed events (its `<main>` says `data-static`), as a report of the whole fleet on
//! every transition would be the appliance's heaviest load.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response, StatusCode};
use minijinja::context;
use serde::Serialize;

use super::Pages;
use super::view::{self, v};
use crate::http::{Body, BoxFuture};
use crate::read_model::Rfc3339;
use crate::report::group::{GroupBy, Row};
use crate::report::query::{self, Format, Query, Sort};
use crate::report::run::{Refused, Report};
use crate::report::{Totals, csv};

/// `GET /reports`, as the router runs it.
pub fn route(web: Arc<Pages>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move { get(&web, &req).await })
}

pub async fn get(web: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let ctx = &web.ctx;
    let now = ctx.state.clock().now();
    let mut query = match query::parse(req.uri().query(), now, ctx.web.display_zone) {
        Ok(q) => q,
        Err((parameter, message)) => {
            return view::bad_request(&format!("{parameter}: {message}"), req.uri().path());
        }
    };
    // The page is HTML whatever `format` says; the CSV is the API's link.
    query.format = Format::Json;
    let report = match ctx.report(req, query, now).await {
        Ok(r) => r,
        Err(Refused::Busy) => {
            let why = Refused::Busy.to_string();
            return view::html(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::http::error_page::page(StatusCode::SERVICE_UNAVAILABLE, &why, "/reports"),
            );
        }
        Err(Refused::Store(e)) => {
            let why = format!("the store cannot be read: {e}");
            return view::html(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::http::error_page::page(StatusCode::SERVICE_UNAVAILABLE, &why, "/reports"),
            );
        }
    };
    let view = ctx.view(req);
    let labels: BTreeSet<&str> = view
        .snapshot
        .inventory
        .devices
        .iter()
        .flat_map(|d| d.labels.iter().map(|(k, _)| k))
        .collect();
    let fields = context! {
        report => v(ReportView::of(&report, now)),
        labels => v(labels),
    };
    view::page(
        web,
        "reports",
        &view.snapshot,
        now,
        "/api/v1/events".into(),
        fields,
    )
}

#[derive(Serialize)]
struct ReportView {
    from: Rfc3339,
    to: Rfc3339,
    until: Rfc3339,
    /// `until` is before `to`: the period reaches into the future, counted up to now.
    to_now: bool,
    period: &'static str,
    at: String,
    group_by: String,
    sort: &'static str,
    region: Option<String>,
    branch: Option<String>,
    device: Option<String>,
    totals: Figures,
    devices: u64,
    rows: Vec<RowView>,
    total_rows: usize,
    next: Option<String>,
    csv: String,
    /// Column headers, each a link to the report sorted by it.
    sorts: Vec<(&'static str, String)>,
    /// The way back up: (label, link).
    crumbs: Vec<(String, String)>,
    outages: Vec<OutageView>,
    partial: bool,
}

#[derive(Serialize)]
struct Figures {
    availability: String,
    downtime: String,
    unreachable: String,
    maintenance: String,
    unmonitored: String,
    outages: u64,
    mttr: String,
    mtbf: String,
    longest: String,
    target: String,
    /// `met`, `breached` or empty.
    sla: &'static str,
    breached: u64,
    /// Exact seconds, for the titles.
    downtime_seconds: String,
}

#[derive(Serialize)]
struct RowView {
    key: String,
    url: Option<String>,
    region: String,
    branch: String,
    kind: String,
    devices: u64,
    figures: Figures,
}

#[derive(Serialize)]
struct OutageView {
    started_at: Rfc3339,
    ended_at: Option<Rfc3339>,
    counted: String,
}

/// The report's own parameters as a query string, with `changes` applied (None:
/// removed).
fn link(q: &Query, changes: &[(&str, Option<&str>)]) -> String {
    let from = Rfc3339(q.from).to_string();
    let to = Rfc3339(q.to).to_string();
    let group = q.group_by.name();
    let mut pairs: Vec<(&str, Option<&str>)> = vec![
        ("from", Some(&from)),
        ("to", Some(&to)),
        ("group_by", Some(&group)),
        ("sort", Some(q.sort.name()).filter(|s| *s != "key")),
        ("region", q.region.as_deref()),
        ("branch", q.branch.as_deref()),
        ("device", q.device.as_deref()),
    ];
    for (k, val) in changes {
        match pairs.iter_mut().find(|(name, _)| name == k) {
            Some(p) => p.1 = *val,
            None => pairs.push((k, *val)),
        }
    }
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, val) in pairs {
        if let Some(val) = val {
            s.append_pair(k, val);
        }
    }
    s.finish()
}

impl ReportView {
    fn of(r: &Report, now: DateTime<Utc>) -> ReportView {
        let q = &r.query;
        let rows = r.rows.iter().map(|row| RowView::of(row, q)).collect();
        let end = q.offset + r.rows.len();
        let next = (end < r.total_rows).then(|| {
            format!(
                "/reports?{}",
                link(q, &[("offset", Some(&end.to_string()))])
            )
        });
        let sorts = [
            Sort::Key,
            Sort::Availability,
            Sort::Downtime,
            Sort::Outages,
            Sort::Breach,
        ]
        .into_iter()
        .map(|s| {
            (
                s.name(),
                format!("/reports?{}", link(q, &[("sort", Some(s.name()))])),
            )
        })
        .collect();
        let mut crumbs = vec![(
            "All regions".to_string(),
            format!(
                "/reports?{}",
                link(
                    q,
                    &[
                        ("group_by", Some("region")),
                        ("region", None),
                        ("branch", None),
                        ("device", None)
                    ]
                )
            ),
        )];
        if let Some(region) = &q.region {
            crumbs.push((
                region.clone(),
                format!(
                    "/reports?{}",
                    link(
                        q,
                        &[
                            ("group_by", Some("branch")),
                            ("branch", None),
                            ("device", None)
                        ]
                    )
                ),
            ));
        }
        if let Some(branch) = &q.branch {
            crumbs.push((
                branch.clone(),
                format!(
                    "/reports?{}",
                    link(q, &[("group_by", Some("device")), ("device", None)])
                ),
            ));
        }
        let outages = match (&q.device, r.rows.first()) {
            (Some(_), Some(row)) => row
                .outages
                .iter()
                .map(|o| OutageView {
                    started_at: Rfc3339(o.started_at),
                    ended_at: o.ended_at.map(Rfc3339),
                    counted: exact(o.counted),
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut csv_query = link(q, &[("format", Some("csv"))]);
        csv_query.push_str("&limit=10000");
        ReportView {
            from: Rfc3339(q.from),
            to: Rfc3339(q.to),
            until: Rfc3339(r.until),
            to_now: r.until < q.to && r.until <= now,
            period: q.period,
            at: q.at.to_string(),
            group_by: q.group_by.name(),
            sort: q.sort.name(),
            region: q.region.clone(),
            branch: q.branch.clone(),
            device: q.device.clone(),
            totals: Figures::of(&r.totals, &r.sla),
            devices: r.devices,
            rows,
            total_rows: r.total_rows,
            next,
            csv: format!("/api/v1/reports/availability?{csv_query}"),
            sorts,
            crumbs,
            outages,
            partial: r.partial,
        }
    }
}

impl RowView {
    fn of(row: &Row, q: &Query) -> RowView {
        let drill =
            |changes: &[(&str, Option<&str>)]| Some(format!("/reports?{}", link(q, changes)));
        let url = match &q.group_by {
            GroupBy::Region => drill(&[("group_by", Some("branch")), ("region", Some(&row.key))]),
            GroupBy::Branch => drill(&[
                ("group_by", Some("device")),
                ("region", Some(&row.region)),
                ("branch", Some(&row.key)),
            ]),
            GroupBy::Device if q.device.is_none() => drill(&[
                ("region", Some(&row.region)),
                ("branch", Some(&row.branch)),
                ("device", Some(&row.key)),
            ]),
            _ => None,
        };
        RowView {
            key: row.key.clone(),
            url,
            region: row.region.clone(),
            branch: row.branch.clone(),
            kind: row.kind.clone(),
            devices: row.devices,
            figures: Figures::of(&row.totals, &row.sla),
        }
    }
}

impl Figures {
    fn of(t: &Totals, sla: &crate::report::group::Sla) -> Figures {
        let dash = || "—".to_string();
        Figures {
            availability: t.availability().map_or_else(dash, |a| format!("{a:.3} %")),
            downtime: exact(t.down),
            unreachable: exact(t.unreachable),
            maintenance: exact(t.maintenance),
            unmonitored: exact(t.unmonitored),
            outages: t.outages,
            mttr: t.mttr().map_or_else(dash, exact),
            mtbf: t.mtbf().map_or_else(dash, exact),
            longest: if t.outages > 0 {
                exact(t.longest_outage)
            } else {
                dash()
            },
            target: sla.target.map_or_else(String::new, |t| format!("{t} %")),
            sla: match sla.met() {
                Some(true) => "met",
                Some(false) => "breached",
                None => "",
            },
            breached: sla.breached,
            downtime_seconds: csv::seconds(t.down),
        }
    }
}

/// A duration to the second, as a report reads: `42s`, `5m 07s`, `3h 04m 05s`,
/// `2d 03h 04m 05s` (microseconds dropped; the CSV has them).
pub fn exact(micros: i64) -> String {
    let s = micros.max(0) / 1_000_000;
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m {s:02}s")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}
