//! `GET /alerts`: open alerts grouped by branch ([`super::alert_groups`]: worst first,
//! [`super::alert_groups::GROUPS_PER_PAGE`] branches a page, each with its count and how
//! long its oldest alert has been open) and recently resolved ones with how long each
//! lasted, paged by the history cursor ([`crate::read_model::paging`]). Read from the
//! store (the alert truth lives there: opened and resolved in the same transaction as
//! the state change); the open count is the dashboard's ([`open_alerts`]). Filters:
//! `severity`, `device` (exact), `region` (exact), `branch` (as the device list matches
//! it); `sort` (`worst`, `longest`, `most`, `place`), `page`, `before`.

use bytes::Bytes;
use hyper::{Request, Response};
use minijinja::context;
use serde::Serialize;

use super::Pages;
use super::alert_groups::{GroupOrder, Place, group, page, place_of};
use super::view::{self, device_url};
use crate::http::Body;
use crate::read_model::paging::{Cursor, paginate};
use crate::read_model::{Rfc3339, TextFilter, UnreachableBehind};
use crate::state::Snapshot;
use crate::store::{AlertQuery, AlertRow, Store as _};

/// Resolved alerts a page lists.
pub const RESOLVED_LISTED: i64 = 50;
/// Open alerts read to group (they are rare; with dependencies a region outage is one
/// alert a branch). Past this the page says that it groups only the newest.
pub const OPEN_READ: i64 = 20_000;

#[derive(Debug, Serialize)]
pub struct AlertView {
    pub id: i64,
    pub device: String,
    pub device_url: String,
    pub condition: String,
    pub severity: String,
    pub message: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    /// A resolved alert: how long it was open (`5m 07s`).
    pub lasted: Option<String>,
    /// The device's display name (`web.display_name_label`), once the page has looked.
    pub display_name: Option<String>,
    /// Open `device_down` alerts: devices unreachable behind this one now.
    pub unreachable_behind: Option<usize>,
    /// Who acknowledged it, when, saying what (all None while nobody has).
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
    pub acknowledged_comment: Option<String>,
    #[serde(skip)]
    resolved: bool,
}

impl From<AlertRow> for AlertView {
    fn from(a: AlertRow) -> Self {
        AlertView {
            id: a.id,
            device_url: device_url(&a.device),
            device: a.device,
            condition: a.condition,
            severity: a.severity,
            message: a.message,
            opened_at: Rfc3339(a.opened_at).to_string(),
            resolved: a.resolved_at.is_some(),
            lasted: a
                .resolved_at
                .map(|t| super::templates::duration((t - a.opened_at).num_seconds())),
            display_name: None,
            resolved_at: a.resolved_at.map(|t| Rfc3339(t).to_string()),
            unreachable_behind: None,
            acknowledged_by: a.acknowledged_by,
            acknowledged_at: a.acknowledged_at.map(|t| Rfc3339(t).to_string()),
            acknowledged_comment: a.acknowledged_comment,
        }
    }
}

/// What a page's acknowledgement forms need (`act` in the templates' `ack` macro):
/// whether the asker may act at all (the buttons are shown to operators only; the route
/// checks again), the page to come back to, and the session's CSRF token.
#[derive(Debug, Serialize)]
pub struct Act {
    pub can: bool,
    pub back: String,
    pub csrf: Option<String>,
}

impl Act {
    pub fn of(req: &Request<Bytes>) -> Act {
        Act {
            can: crate::access::Principal::of(req).may(crate::access::Role::Operator),
            back: req
                .uri()
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string()),
            csrf: req
                .extensions()
                .get::<crate::access::gate::SessionToken>()
                .map(|s| s.csrf.to_string()),
        }
    }
}

/// Sets `unreachable_behind` on the open `device_down` alerts among `alerts`, counted in
/// `snapshot` (the one the page renders).
pub fn count_behind(alerts: &mut [AlertView], snapshot: &Snapshot) {
    let mut behind = UnreachableBehind::new(snapshot);
    for a in alerts {
        if !a.resolved && a.condition == "device_down" {
            a.unreachable_behind = behind.of_name(&a.device);
        }
    }
}

/// Up to `limit` open alerts, whether there are more, and how many are open: the
/// count both the dashboard and this page show, read from the store in the same read
/// (a `count(*)` of the open ones, not the length of a capped list, which is why the
/// two pages once disagreed during an outage).
pub fn open_alerts(web: &Pages, limit: i64) -> Result<(Vec<AlertView>, bool, usize), String> {
    let q = AlertQuery {
        active: Some(true),
        limit: limit + 1,
        ..AlertQuery::default()
    };
    let (rows, total) = view::store_read(web, async |db| {
        Ok((db.alerts(&q).await?, open_total(db).await?))
    })?;
    let more = rows.len() as i64 > limit;
    Ok((
        rows.into_iter()
            .take(limit as usize)
            .map(AlertView::from)
            .collect(),
        more,
        total,
    ))
}

/// How many alerts are open, over every device.
async fn open_total(db: &crate::store::Db) -> crate::store::Result<usize> {
    Ok(db
        .open_alert_counts()
        .await?
        .values()
        .map(|&n| n as usize)
        .sum())
}

/// What `/alerts` was asked for.
struct AlertsQuery {
    severity: Option<String>,
    device: Option<String>,
    place: Place,
    order: GroupOrder,
    page: usize,
    before: Option<Cursor>,
}

impl AlertsQuery {
    fn parse(query: Option<&str>) -> Result<AlertsQuery, String> {
        let mut out = AlertsQuery {
            severity: None,
            device: None,
            place: Place::default(),
            order: GroupOrder::default(),
            page: 1,
            before: None,
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let text = Some(v.to_string()).filter(|v| !v.is_empty());
            match &*k {
                "severity" => out.severity = text,
                "device" => out.device = text,
                "region" => out.place.region = text,
                "branch" => out.place.branch = TextFilter::parse(&v),
                "sort" => out.order = GroupOrder::parse(&v).map_err(|(_, m)| m)?,
                "page" if !v.is_empty() => {
                    out.page = v
                        .parse::<usize>()
                        .map_err(|_| format!("page {v:?} is not a number"))?
                        .max(1)
                }
                "before" if !v.is_empty() => {
                    out.before = Some(Cursor::parse(&v).map_err(|(_, m)| m)?)
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// This page's URL with the order, the group page and the resolved cursor given.
    fn url(&self, order: GroupOrder, page: usize, before: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        let branch = self.place.branch.as_ref().map(|b| b.written.as_str());
        for (k, v) in [
            ("severity", self.severity.as_deref()),
            ("device", self.device.as_deref()),
            ("region", self.place.region.as_deref()),
            ("branch", branch),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        if order != GroupOrder::default() {
            q.append_pair("sort", order.as_str());
        }
        if page > 1 {
            q.append_pair("page", &page.to_string());
        }
        if let Some(b) = before {
            q.append_pair("before", b);
        }
        view::with_query("/alerts", &q.finish())
    }
}

#[derive(Serialize)]
struct OrderLink {
    label: &'static str,
    url: String,
    current: bool,
}

/// `GET /alerts`
pub fn get(web: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let ctx = &web.ctx;
    let query = match AlertsQuery::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return view::bad_request(&e, req.uri().path()),
    };
    let base = AlertQuery {
        device: query.device.clone(),
        severity: query.severity.clone(),
        ..AlertQuery::default()
    };
    let open_q = AlertQuery {
        active: Some(true),
        limit: OPEN_READ + 1,
        ..base.clone()
    };
    let resolved_q = AlertQuery {
        active: Some(false),
        limit: RESOLVED_LISTED + 1,
        before: query.before.map(|c| c.at),
        before_id: query.before.and_then(|c| c.id),
        ..base
    };
    let read = view::store_read(web, async |db| {
        Ok((
            db.alerts(&open_q).await?,
            db.alerts(&resolved_q).await?,
            open_total(db).await?,
        ))
    });
    let (mut open, resolved, open_total, error) = match read {
        Ok((o, r, n)) => (o, r, n, None),
        Err(e) => (Vec::new(), Vec::new(), 0, Some(e)),
    };
    let capped = open.len() as i64 > OPEN_READ;
    open.truncate(OPEN_READ as usize);
    let snapshot = ctx.state.snapshot();
    let now = ctx.state.clock().now();
    let label = ctx.web.display_name_label.as_deref();
    let named = |a: AlertRow| {
        let mut v = AlertView::from(a);
        v.display_name = snapshot
            .device(&v.device)
            .and_then(|(d, _, _)| view::display_name(d, label))
            .map(str::to_string);
        v
    };
    let mut open: Vec<AlertView> = open.into_iter().map(named).collect();
    count_behind(&mut open, &snapshot);
    let groups = group(
        open,
        |name| {
            let (r, b) = place_of(&snapshot, name);
            (r.to_string(), b.to_string())
        },
        &query.place,
        query.order,
    );
    let matching: usize = groups.iter().map(|g| g.alerts.len()).sum();
    let groups_total = groups.len();
    let (groups, page_no, pages) = page(groups, query.page);
    // The resolved list: one page of the store's history; the place filter then keeps
    // what it keeps of it (a page may list fewer, never skip one).
    let (resolved, next_before) = paginate(resolved, RESOLVED_LISTED, |a| (a.opened_at, a.id));
    let resolved: Vec<AlertView> = resolved
        .into_iter()
        .filter(|a| {
            let (region, branch) = place_of(&snapshot, &a.device);
            query.place.keeps(region, branch)
        })
        .map(named)
        .collect();
    let orders: Vec<OrderLink> = GroupOrder::ALL
        .into_iter()
        .map(|o| OrderLink {
            label: match o {
                GroupOrder::Worst => "worst first",
                GroupOrder::Longest => "longest open",
                GroupOrder::Most => "most alerts",
                GroupOrder::Place => "by place",
            },
            url: query.url(o, 1, None),
            current: o == query.order,
        })
        .collect();
    let regions: Vec<&str> = snapshot
        .inventory
        .regions
        .iter()
        .map(|r| &*r.name)
        .collect();
    let branch = query.place.branch.as_ref().map(|b| b.written.as_str());
    let region = query.place.region.as_deref();
    view::page(
        web,
        "alerts",
        &snapshot,
        now,
        view::events_url(region, branch, None),
        context! {
            groups => view::v(groups),
            // Few enough to read at once: opened; more: closed, each a line.
            open_groups => groups_total <= 10,
            groups_total, matching, capped, open_read => OPEN_READ,
            filtered => !query.place.is_empty() || query.severity.is_some() || query.device.is_some(),
            open_total,
            page_no, pages,
            prev_url => (page_no > 1).then(|| query.url(query.order, page_no - 1, None)),
            next_url => (page_no < pages).then(|| query.url(query.order, page_no + 1, None)),
            orders => view::v(orders),
            sort => (query.order != GroupOrder::default()).then_some(query.order.as_str()),
            resolved => view::v(resolved),
            older_url => next_before.map(|b| query.url(query.order, page_no, Some(&b))),
            newest_url => query.before.is_some().then(|| query.url(query.order, page_no, None)),
            error,
            regions => view::v(regions),
            filter => context! { severity => query.severity, device => query.device, region, branch },
            nav_scope => super::monitor::nav_scope(region, branch),
            act => view::v(Act::of(req)),
        },
    )
}
