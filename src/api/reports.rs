//! `GET /api/v1/reports/availability` (viewer): availability, downtime, unreachable,
//! maintenance and unmonitored time, outages, MTTR, MTBF, the longest outage and the SLA
//! per device, branch, region, kind or label, over a period; JSON or CSV.
//!
//! Parameters ([`crate::report::query`]): `period` (`day`, `week`, `month`) with `at`,
//! or `from` and `to`; `group_by`; `format` (`json`, `csv`); `sort`; `region`, `branch`,
//! `device` (drill-down, exact names); `limit` (default 1000, at most 10,000) and
//! `offset`. A region-scoped user's report holds their regions' devices only. A device
//! row carries its outages when the report is of one device (`device=`).

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{CONTENT_DISPOSITION, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::store_error;
use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::read_model::Rfc3339;
use crate::report::group::Row;
use crate::report::query::{self, Format};
use crate::report::run::{Refused, Report};
use crate::report::{Outage, Totals, csv};

pub const PATH: &str = "/api/v1/reports/availability";

/// `GET /api/v1/reports/availability`, as the router runs it.
pub fn route(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move { get(&ctx, &req).await })
}

pub async fn get(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    let now = ctx.state.clock().now();
    let query = match query::parse(req.uri().query(), now, ctx.web.display_zone) {
        Ok(q) => q,
        Err((parameter, message)) => return response::bad_parameter(parameter, &message),
    };
    let report = match make(ctx, req, query, now).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    match report.query.format {
        Format::Json => response::json(StatusCode::OK, &Json::of(&report)),
        Format::Csv => {
            let body = csv::write(&report.query.group_by, &report.rows);
            let mut r = response::bytes(StatusCode::OK, "text/csv; charset=utf-8", body);
            let name = format!(
                "attachment; filename=\"availability-{}-{}.csv\"",
                report.query.from.format("%Y%m%dT%H%MZ"),
                report.query.to.format("%Y%m%dT%H%MZ")
            );
            if let Ok(v) = HeaderValue::from_str(&name) {
                r.headers_mut().insert(CONTENT_DISPOSITION, v);
            }
            r
        }
    }
}

/// The report `query` asks for, as the asker of `req` may see it; an error response
/// otherwise.
async fn make(
    ctx: &Context,
    req: &Request<Bytes>,
    query: query::Query,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Report, Response<Body>> {
    ctx.report(req, query, now).await.map_err(|e| match e {
        Refused::Busy => response::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Refused::Store(e) => store_error(e),
    })
}

#[derive(Serialize)]
struct Json<'a> {
    from: Rfc3339,
    to: Rfc3339,
    /// The end as counted: `to`, or now when that is earlier.
    until: Rfc3339,
    group_by: String,
    sort: &'static str,
    devices: u64,
    totals: Figures,
    total_rows: usize,
    offset: usize,
    /// `offset` of the next page; null on the last one.
    next_offset: Option<usize>,
    rows: Vec<JsonRow<'a>>,
    /// Some maintenance window had more occurrences in the period than are looked at.
    partial: bool,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    key: &'a str,
    region: &'a str,
    branch: &'a str,
    kind: &'a str,
    devices: u64,
    #[serde(flatten)]
    figures: Figures,
    #[serde(skip_serializing_if = "Option::is_none")]
    outage_list: Option<Vec<JsonOutage>>,
}

/// The figures of a row (durations in seconds, to the microsecond).
#[derive(Serialize)]
struct Figures {
    availability_percent: Option<f64>,
    up_seconds: f64,
    downtime_seconds: f64,
    unreachable_seconds: f64,
    maintenance_seconds: f64,
    unmonitored_seconds: f64,
    outages: u64,
    mttr_seconds: Option<f64>,
    mtbf_seconds: Option<f64>,
    longest_outage_seconds: f64,
    sla_target_percent: Option<f64>,
    sla_met: Option<bool>,
    devices_breached: u64,
}

#[derive(Serialize)]
struct JsonOutage {
    started_at: Rfc3339,
    /// Null: still going at the period's end.
    ended_at: Option<Rfc3339>,
    counted_seconds: f64,
}

fn secs(micros: i64) -> f64 {
    micros as f64 / 1e6
}

impl Figures {
    fn of(t: &Totals, sla: &crate::report::group::Sla) -> Figures {
        Figures {
            availability_percent: t.availability(),
            up_seconds: secs(t.up),
            downtime_seconds: secs(t.down),
            unreachable_seconds: secs(t.unreachable),
            maintenance_seconds: secs(t.maintenance),
            unmonitored_seconds: secs(t.unmonitored),
            outages: t.outages,
            mttr_seconds: t.mttr().map(secs),
            mtbf_seconds: t.mtbf().map(secs),
            longest_outage_seconds: secs(t.longest_outage),
            sla_target_percent: sla.target,
            sla_met: sla.met(),
            devices_breached: sla.breached,
        }
    }
}

impl<'a> Json<'a> {
    fn of(r: &'a Report) -> Json<'a> {
        let q = &r.query;
        let end = q.offset + r.rows.len();
        Json {
            from: Rfc3339(q.from),
            to: Rfc3339(q.to),
            until: Rfc3339(r.until),
            group_by: q.group_by.name(),
            sort: q.sort.name(),
            devices: r.devices,
            totals: Figures::of(&r.totals, &r.sla),
            total_rows: r.total_rows,
            offset: q.offset,
            next_offset: (end < r.total_rows).then_some(end),
            rows: r
                .rows
                .iter()
                .map(|row| JsonRow::of(row, q.device.is_some()))
                .collect(),
            partial: r.partial,
        }
    }
}

impl<'a> JsonRow<'a> {
    fn of(r: &'a Row, with_outages: bool) -> JsonRow<'a> {
        JsonRow {
            key: &r.key,
            region: &r.region,
            branch: &r.branch,
            kind: &r.kind,
            devices: r.devices,
            figures: Figures::of(&r.totals, &r.sla),
            outage_list: with_outages.then(|| r.outages.iter().map(JsonOutage::of).collect()),
        }
    }
}

impl JsonOutage {
    fn of(o: &Outage) -> JsonOutage {
        JsonOutage {
            started_at: Rfc3339(o.started_at),
            ended_at: o.ended_at.map(Rfc3339),
            counted_seconds: secs(o.counted),
        }
    }
}
