//! What the pages share: the device view model, the common page context,
//! store reads with a deadline, and the HTML response with its security headers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::Pages;
use crate::config::{Device, Labels};
use crate::http::response::{self, Body};
pub use crate::read_model::Counts;
use crate::read_model::uplinks::{self, UplinksView};
use crate::read_model::{Ends, Rfc3339, unreachable_because};
use crate::state::{DeviceRuntime, DeviceStatus, Measurements, Snapshot, Status};

/// Pages load their own script and style only; nothing inline, nothing framed, no
/// third party (the appliance runs offline).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Devices down for less than this are marked as recent on the wall.
pub const RECENT: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// How long a page waits for the store before rendering without it.
pub const STORE_DEADLINE: Duration = Duration::from_secs(2);

/// One device as the pages show it.
#[derive(Debug, Serialize)]
pub struct DeviceView<'a> {
    /// The inventory name: the device's identity (links, the API, the feed).
    pub name: &'a str,
    /// The value of its `web.display_name_label` label, once [`DeviceView::named`] has
    /// looked: shown as its name, with the inventory name beside it.
    pub display_name: Option<&'a str>,
    pub url: String,
    pub address: String,
    pub region: &'a str,
    pub branch: &'a str,
    pub kind: &'a str,
    pub status: &'static str,
    pub down_since: Option<String>,
    pub recent: bool,
    pub rtt: String,
    pub loss: String,
    pub last_probe_at: Option<String>,
    pub labels: &'a Labels,
    /// An unreachable device's parents that are out, once [`DeviceView::in_snapshot`]
    /// has looked them up (empty otherwise).
    pub because: Vec<&'a str>,
    /// While one of its maintenance windows is going on, when that ends (once
    /// [`DeviceView::with_maintenance`] has looked).
    pub maintenance_ends_at: Option<String>,
    /// While degraded: since when, and the window's figures that raised it (the badge).
    pub degraded: Option<DegradedView>,
    /// A polled router's ISP lines (the badges), once [`DeviceView::in_snapshot`] or
    /// [`DeviceView::with_uplinks`] has looked; None for a device without `snmp:`.
    pub uplinks: Option<UplinksView<'a>>,
    #[serde(skip)]
    device: &'a Device,
    #[serde(skip)]
    state: DeviceStatus,
}

impl<'a> DeviceView<'a> {
    pub fn new(d: &'a Device, s: &DeviceStatus, m: &Measurements, now: DateTime<Utc>) -> Self {
        // An unreachable device has not answered since then either; only a down one is
        // "recent" (a new outage of its own), an unreachable one is its parent's.
        let down_since = if matches!(s.status, Status::Down | Status::Unreachable) {
            s.down_since
        } else {
            None
        };
        DeviceView {
            name: &d.name,
            display_name: None,
            url: device_url(&d.name),
            address: d.address.to_string(),
            region: &d.region,
            branch: &d.branch,
            kind: &d.kind,
            status: s.status.as_str(),
            down_since: down_since.map(|t| Rfc3339(t).to_string()),
            recent: s.status == Status::Down && down_since.is_some_and(|t| now - t < RECENT),
            rtt: m.last_rtt.map_or("—".into(), |r| {
                format!("{:.1} ms", r.as_secs_f64() * 1000.0)
            }),
            loss: m
                .last_loss
                .map_or("—".into(), |l| format!("{:.0}%", l * 100.0)),
            last_probe_at: m.last_probe_at.map(|t| Rfc3339(t).to_string()),
            labels: &d.labels,
            because: Vec::new(),
            maintenance_ends_at: None,
            degraded: s.degraded.map(|g| DegradedView {
                since: Rfc3339(g.since).to_string(),
                figures: crate::read_model::degraded::Because::of(&g).summary(),
            }),
            uplinks: None,
            device: d,
            state: *s,
        }
    }

    /// Adds its display name: the value of label `label` (`web.display_name_label`),
    /// if set and the device has it.
    pub fn named(mut self, label: Option<&str>) -> Self {
        self.display_name = display_name(self.device, label);
        self
    }

    /// Adds when the device's maintenance ends, if it is in maintenance as `ends` sees
    /// it (the pages' badge).
    pub fn with_maintenance(mut self, ends: &mut Ends) -> Self {
        self.maintenance_ends_at = ends.of_device(self.device).map(|t| Rfc3339(t).to_string());
        self
    }

    /// Adds what needs the rest of `snapshot`: for an unreachable device, the parents
    /// that made it so (the wall names them on its tile).
    pub fn in_snapshot(mut self, snapshot: &'a Snapshot) -> Self {
        if self.status == Status::Unreachable.as_str() {
            self.because = unreachable_because(snapshot, self.device);
        }
        self.with_uplinks(snapshot, None)
    }

    /// Adds a polled router's ISP lines, with their traffic when `runtime` is given.
    pub fn with_uplinks(mut self, snapshot: &'a Snapshot, runtime: Option<&DeviceRuntime>) -> Self {
        self.uplinks = uplinks::view(snapshot, self.device, &self.state, runtime);
        self
    }
}

/// `device`'s display name under `label` (`web.display_name_label`): its value of that
/// label, unless unset or blank.
pub fn display_name<'a>(device: &'a Device, label: Option<&str>) -> Option<&'a str> {
    label
        .and_then(|l| device.labels.get(l))
        .filter(|v| !v.trim().is_empty())
}

/// A `degraded` condition as the badge shows it.
#[derive(Debug, Serialize)]
pub struct DegradedView {
    pub since: String,
    /// `rtt 250.0 ms, loss 30.0%`.
    pub figures: String,
}

/// `/devices/{name}` with the name percent-encoded (names may hold `/`, `?`, `#`).
pub fn device_url(name: &str) -> String {
    format!(
        "/devices/{}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// The context every page's base template reads.
#[derive(Serialize)]
pub struct Common {
    pub page: &'static str,
    pub version: u64,
    /// The feed id the page is current to: the script resumes from it.
    pub event_id: String,
    pub events_url: String,
    pub asset_version: String,
    pub now: String,
    pub rendered_at: String,
    /// The display time zone (`web.display_zone`): the templates' `time` writes in it,
    /// the script's clock and "data as of" too.
    pub zone: &'static str,
}

impl Common {
    pub fn new(
        web: &Pages,
        page: &'static str,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
        events_url: String,
    ) -> Common {
        // The snapshot may be a version older than the hub's last id, never newer; the
        // page resumes from its own version so nothing between is lost.
        let hub = web.ctx.hub.last_key();
        let key = if hub.0 == snapshot.version {
            hub
        } else {
            (snapshot.version, 0)
        };
        Common {
            page,
            version: snapshot.version,
            event_id: web.ctx.hub.format(key),
            events_url,
            asset_version: super::assets::version(),
            now: Rfc3339(now).to_string(),
            rendered_at: Rfc3339(now).to_string(),
            zone: web.ctx.web.display_zone.name(),
        }
    }
}

/// Runs a store read from a page handler (on the blocking pool) with a deadline; the
/// error is what the page shows instead.
pub fn store_read<T>(
    web: &Pages,
    read: impl AsyncFnOnce(&crate::store::Db) -> crate::store::Result<T>,
) -> Result<T, String>
where
    T: Send,
{
    let db = web.ctx.store.db.clone();
    let handle = tokio::runtime::Handle::try_current().map_err(|_| "no runtime".to_string())?;
    handle.block_on(async move {
        match tokio::time::timeout(STORE_DEADLINE, read(&db)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("store unavailable: {e}")),
            Err(_) => Err("store did not answer in time".to_string()),
        }
    })
}

/// A 400 for a page's query that does not parse: the appliance's HTML error page
/// (`http::error_page`) with `why`, escaped there.
pub fn bad_request(why: &str, path: &str) -> Response<Body> {
    html(
        StatusCode::BAD_REQUEST,
        crate::http::error_page::page(StatusCode::BAD_REQUEST, why, path),
    )
}

/// An HTML page with the page security headers.
pub fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut r = response::bytes(status, "text/html; charset=utf-8", body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// Renders page `name` (its template `name.html`) from `snapshot` as of `now`: the common
/// context ([`Common`]) and the page's own `fields`.
pub fn page(
    web: &Pages,
    name: &'static str,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    events_url: String,
    fields: minijinja::Value,
) -> Response<Body> {
    let common = Common::new(web, name, snapshot, now, events_url);
    let ctx = minijinja::context! { ..v(&common), ..fields };
    render(web, &format!("{name}.html"), ctx)
}

/// Renders `template` with `ctx`, or a plain 500 naming the template.
pub fn render(web: &Pages, template: &str, ctx: minijinja::Value) -> Response<Body> {
    match web.templates.render(template, ctx) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(template, error = %format!("{e:#}"), "cannot render page");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>error</title><p>internal error rendering this page</p>"
                    .into(),
            )
        }
    }
}

/// The events URL of a page scoped by region/branch/kind.
pub fn events_url(region: Option<&str>, branch: Option<&str>, kind: Option<&str>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("region", region), ("branch", branch), ("kind", kind)] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    with_query("/api/v1/events", &q.finish())
}

/// `path`, with `?query` when there is one.
pub fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.into()
    } else {
        format!("{path}?{query}")
    }
}

/// HTML-escapes `s` for markup built outside a template (the SVG drawings, a bare error
/// page), with minijinja's escaper: the one the templates use.
pub fn escape(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

/// A serialisable value for a template context.
pub fn v<T: Serialize>(x: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(x))
}
