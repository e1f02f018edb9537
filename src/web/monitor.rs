//! `GET /monitor`: the NOC wall. The device list's own filters and order (down first,
//! longest down first, then unreachable ones, each naming the parents it is behind;
//! [`crate::read_model::select`], along the order cached per state version), one page of [`PAGE_SIZE`] rendered as a grid of tiles or a table; the
//! script keeps it live.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response};
use minijinja::context;
use serde::Serialize;

use super::Pages;
use super::view::{self, Counts, DeviceView};
use crate::http::Body;
use crate::read_model::select;
use crate::read_model::{ListQuery, SortKey};
use crate::state::Snapshot;

/// Devices per page: a wall screen's worth of tiles, a fast page at any inventory size.
pub const PAGE_SIZE: usize = 240;

/// The wall's query: the list filters plus `view` and `page`.
#[derive(Debug, Default)]
pub struct MonitorQuery {
    pub list: ListQuery,
    pub grid: bool,
    /// From 1.
    pub page: usize,
    raw: Vec<(String, String)>,
}

impl MonitorQuery {
    pub fn parse(query: Option<&str>) -> Result<MonitorQuery, String> {
        let list = ListQuery::parse(query).map_err(|(_, m)| m)?;
        let mut out = MonitorQuery {
            list,
            grid: true,
            page: 1,
            raw: Vec::new(),
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "view" => out.grid = v != "table",
                "page" => {
                    out.page = v
                        .parse::<usize>()
                        .map_err(|_| format!("page {v:?} is not a number"))?
                        .max(1)
                }
                "status" | "region" | "branch" | "kind" | "q" | "sort" | "dir" if !v.is_empty() => {
                    out.raw.push((k.into_owned(), v.into_owned()))
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// This view's URL with `view` and `page` replaced.
    fn url(&self, grid: bool, page: usize) -> String {
        self.url_with(grid, page, None)
    }

    /// This view's URL with `view` and `page` replaced, and the order too if `sort` is
    /// given (the default order is written as no `sort` at all).
    fn url_with(&self, grid: bool, page: usize, sort: Option<(SortKey, bool)>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.raw {
            if sort.is_none() || (k != "sort" && k != "dir") {
                q.append_pair(k, v);
            }
        }
        if let Some((key, desc)) = sort {
            if key != SortKey::Status || desc {
                q.append_pair("sort", key.as_str());
            }
            if desc {
                q.append_pair("dir", "desc");
            }
        }
        if !grid {
            q.append_pair("view", "table");
        }
        if page > 1 {
            q.append_pair("page", &page.to_string());
        }
        view::with_query("/monitor", &q.finish())
    }
}

#[derive(Serialize)]
struct FilterView<'a> {
    status: Option<&'static str>,
    region: Option<&'a str>,
    branch: Option<&'a str>,
    kind: Option<&'a str>,
    q: Option<&'a str>,
    /// The order, when not the default (the form carries it along).
    sort: Option<&'static str>,
    dir: Option<&'static str>,
}

/// A sortable column header of the table view.
#[derive(Serialize)]
struct Column {
    label: &'static str,
    /// The view sorted by this column: ascending, or descending if it is sorted
    /// ascending now. None for a column that does not sort.
    url: Option<String>,
    /// `aria-sort` of the column the view is sorted by.
    aria_sort: Option<&'static str>,
}

/// The table's columns: a header and the sort key it stands for (`None`: not sortable).
const COLUMNS: [(&str, Option<SortKey>); 7] = [
    ("Status", Some(SortKey::Status)),
    ("Device", Some(SortKey::Name)),
    ("Address", Some(SortKey::Address)),
    ("Region / branch", Some(SortKey::Region)),
    ("Kind", Some(SortKey::Kind)),
    ("Down for", Some(SortKey::Since)),
    // Measurements change between versions: an order by them would not hold still.
    ("RTT", None),
];

impl MonitorQuery {
    fn columns(&self) -> Vec<Column> {
        let (sort, desc) = (self.list.sort, self.list.desc);
        COLUMNS
            .iter()
            .map(|&(label, key)| {
                let current = key == Some(sort);
                Column {
                    label,
                    url: key.map(|k| self.url_with(false, 1, Some((k, current && !desc)))),
                    aria_sort: current.then_some(if desc { "descending" } else { "ascending" }),
                }
            })
            .collect()
    }
}

/// The query string (with its `?`) that carries a page's place (region, branch) to
/// the other pages that filter by it; empty without one.
pub fn nav_scope(region: Option<&str>, branch: Option<&str>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("region", region), ("branch", branch)] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    let q = q.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

/// `GET /monitor`
pub fn get(web: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let ctx = &web.ctx;
    let query = match MonitorQuery::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return view::bad_request(&e, req.uri().path()),
    };
    render(
        web,
        &ctx.view(req).snapshot,
        ctx.state.clock().now(),
        &query,
    )
}

/// The wall for `query` from `snapshot` as of `now`. Public for the tests and the bench.
pub fn render(
    web: &Pages,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    query: &MonitorQuery,
) -> Response<Body> {
    let scoped = web.ctx.scoped.order_for(snapshot);
    let order = scoped.as_deref().unwrap_or(&web.ctx.order);
    let mut page = query.page;
    let mut selected = select(
        snapshot,
        &query.list,
        Some(order),
        (page - 1) * PAGE_SIZE,
        PAGE_SIZE,
    );
    let pages = selected.total.div_ceil(PAGE_SIZE).max(1);
    if page > pages {
        // A bookmarked page past the end (the list shrank): show the last one.
        page = pages;
        selected = select(
            snapshot,
            &query.list,
            Some(order),
            (page - 1) * PAGE_SIZE,
            PAGE_SIZE,
        );
    }
    let counts = Counts {
        up: selected.up,
        down: selected.down,
        unknown: selected.unknown,
        unreachable: selected.unreachable,
        total: selected.total,
        // Not counted over the selection (the wall's badge says it per device).
        degraded: 0,
    };
    let mut ends =
        crate::read_model::Ends::new(now, web.ctx.maintenance.zone, web.ctx.state.silences());
    let devices: Vec<DeviceView> = selected
        .rows
        .iter()
        .map(|(d, s, r)| {
            DeviceView::new(d, s, &r.measurements(), now)
                .named(web.ctx.web.display_name_label.as_deref())
                .in_snapshot(snapshot)
                .with_maintenance(&mut ends)
        })
        .collect();
    let inv = &snapshot.inventory;
    let mut kinds: Vec<&str> = inv.devices.iter().map(|d| &*d.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let regions: Vec<&str> = inv.regions.iter().map(|r| &*r.name).collect();
    // Branch suggestions only for the chosen region: a whole 100k inventory has thousands.
    let branches: Vec<&str> = inv
        .regions
        .iter()
        .filter(|r| query.list.region.as_deref() == Some(&*r.name))
        .flat_map(|r| r.branches.iter().map(|b| &*b.name))
        .collect();
    let l = &query.list;
    let filter = FilterView {
        // The form offers one status; a bookmarked `status=down,unknown` still filters.
        status: (l.statuses.len() == 1).then(|| l.statuses[0].as_str()),
        region: l.region.as_deref(),
        branch: l.branch.as_ref().map(|b| &*b.written),
        kind: l.kind.as_deref(),
        q: l.q.as_ref().map(|q| &*q.written),
        sort: (l.sort != SortKey::Status || l.desc).then_some(l.sort.as_str()),
        dir: l.desc.then_some("desc"),
    };
    // The feed is scoped as the list is: the same branch filter, matched the same way.
    let events = view::events_url(l.region.as_deref(), filter.branch, l.kind.as_deref());
    let nav = nav_scope(filter.region, filter.branch);
    view::page(
        web,
        "monitor",
        snapshot,
        now,
        events,
        context! {
            devices => view::v(devices), counts => view::v(counts), filter => view::v(filter),
            regions => view::v(regions), kinds => view::v(kinds), branches => view::v(branches),
            view => if query.grid { "grid" } else { "table" },
            columns => view::v(query.columns()),
            nav_scope => nav,
            grid_url => query.url(true, 1),
            table_url => query.url(false, 1),
            prev_url => (page > 1).then(|| query.url(query.grid, page - 1)),
            next_url => (page < pages).then(|| query.url(query.grid, page + 1)),
            total => selected.total,
            inventory_total => inv.devices.len(),
            page_no => page, pages,
            offset => (page - 1) * PAGE_SIZE,
            outages => view::v(super::outage::summary_where(
                snapshot,
                &query.list,
                web.ctx.web.display_name_label.as_deref(),
            )),
            recovered => view::v(super::outage::recovered(
                &web.ctx.recovered, &web.ctx.scoped.scope_of(snapshot), now,
                super::outage::RECOVERED_LISTED,
            )),
        },
    )
}
