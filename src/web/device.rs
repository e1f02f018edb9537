//! `GET /devices/{name}`: one device — status and `down_since`, its place in the
//! hierarchy, the parents it depends on (with their status: an unreachable device names
//! the ones that are out) and how many devices are unreachable behind it, labels, its
//! history over `?range=` ([`super::history`]: RTT and loss from VictoriaMetrics or the
//! hour in memory, outages and availability), its transitions and alerts from the
//! store, the operators' silences that cover it (with the forms to make and end one,
//! for operators), and a vmui link when `victoriametrics.url` is set.

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use minijinja::context;
use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::Pages;
use super::alerts::AlertView;
use super::view::{self, DeviceView};
use crate::http::Body;
use crate::read_model::{Ends, Rfc3339, UnreachableBehind};
use crate::state::Status;
use crate::store::{AlertQuery, Store as _};

pub const PREFIX: &str = "/devices/";
const LISTED: i64 = 20;

#[derive(Serialize)]
struct TransitionView {
    at: String,
    from: String,
    to: String,
    down_since: Option<String>,
    in_maintenance: bool,
}

/// A silence that covers the device, as its page lists it.
#[derive(Serialize)]
struct SilenceView {
    id: String,
    covers: String,
    starts_at: String,
    ends_at: String,
    active: bool,
    created_by: String,
    comment: String,
}

/// A parent of the device, as its page lists it.
#[derive(Serialize)]
struct ParentView<'a> {
    name: &'a str,
    url: String,
    status: &'static str,
}

#[derive(Serialize)]
struct Block<T> {
    rows: Vec<T>,
    error: Option<String>,
}

impl<T> Block<T> {
    fn of(r: Result<Vec<T>, String>) -> Self {
        match r {
            Ok(rows) => Block { rows, error: None },
            Err(e) => Block {
                rows: Vec::new(),
                error: Some(e),
            },
        }
    }
}

/// `GET /devices/{name}`
pub fn get(web: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let ctx = &web.ctx;
    let raw = &req.uri().path()[PREFIX.len()..];
    // Outside the scope a device is as absent as an unknown one: the 404 page.
    let snapshot = ctx.view(req).snapshot;
    let now = ctx.state.clock().now();
    let found = percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .and_then(|name| snapshot.device(&name));
    let Some((device, status, runtime)) = found else {
        return view::html(
            StatusCode::NOT_FOUND,
            "<!doctype html><title>no such device</title><p>No such device. <a href=\"/monitor\">Back to the wall</a></p>".into(),
        );
    };
    let name = device.name.to_string();
    let transitions = view::store_read(web, async |db| db.transitions(&name, LISTED, None).await)
        .map(|rows| {
            rows.into_iter()
                .map(|t| TransitionView {
                    at: Rfc3339(t.at).to_string(),
                    from: t.from,
                    to: t.to,
                    down_since: t.down_since.map(|t| Rfc3339(t).to_string()),
                    in_maintenance: t.in_maintenance,
                })
                .collect()
        });
    let q = AlertQuery {
        device: Some(name.clone()),
        limit: LISTED,
        ..AlertQuery::default()
    };
    let alerts = view::store_read(web, async |db| db.alerts(&q).await)
        .map(|rows| rows.into_iter().map(AlertView::from).collect());
    let (history, chart) =
        super::history::panel(web, &device.name, status.status, req.uri().query(), now);
    let vm_url = web.ctx.web.victoriametrics_url.as_deref().map(|base| {
        let expr = format!(
            "{{device=\"{}\"}}",
            device.name.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("g0.expr", &format!("wardops_device_rtt_seconds{expr}"));
        q.append_pair("g0.range_input", history.range());
        format!("{}/vmui/#/?{}", base.trim_end_matches('/'), q.finish())
    });
    let parents: Vec<ParentView> = device
        .parents
        .iter()
        .map(|name| ParentView {
            name,
            url: view::device_url(name),
            status: snapshot
                .device(name)
                .map_or(Status::Unknown, |(_, s, _)| s.status)
                .as_str(),
        })
        .collect();
    let behind = snapshot
        .inventory
        .index_of(&device.name)
        .map_or(0, |i| UnreachableBehind::new(&snapshot).of(i));
    let silences: Vec<SilenceView> = ctx
        .state
        .silences()
        .covering(device.silence_names())
        .filter(|s| s.phase(now) != crate::maintenance::silence::Phase::Ended)
        .map(|s| SilenceView {
            id: s.id.clone(),
            covers: s.matchers.describe(),
            starts_at: Rfc3339(s.starts_at).to_string(),
            ends_at: Rfc3339(s.end()).to_string(),
            active: s.starts_at <= now,
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
        })
        .collect();
    let m = runtime.measurements();
    let p = &device.probe;
    view::page(
        web,
        "device",
        &snapshot,
        now,
        view::events_url(Some(&device.region), Some(&device.branch), None),
        context! {
            d => context! {
                ..view::v(
                    DeviceView::new(device, status, &m, now)
                        .named(web.ctx.web.display_name_label.as_deref())
                        .with_maintenance(&mut Ends::new(now, web.ctx.maintenance.zone, web.ctx.state.silences()))
                        .with_uplinks(&snapshot, Some(runtime))
                ),
                ..context! {
                    interval => crate::config::duration::format(p.interval),
                    down_after => p.down_after,
                    up_after => p.up_after,
                }
            },
            parents => view::v(parents),
            silences => view::v(silences),
            behind,
            history => view::v(&history),
            chart => chart.map(minijinja::Value::from_safe_string),
            transitions => view::v(Block::of(transitions)),
            alerts => view::v(Block::of(alerts)),
            vm_url,
            act => view::v(super::alerts::Act::of(req)),
        },
    )
}
