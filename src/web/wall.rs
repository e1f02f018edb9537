//! `GET /wall`: the NOC wall for a 4K screen read from a few metres. Full width, type
//! that grows with the screen, the headline counts, the outage summary
//! ([`Outages::of`]) and every device of the inventory as one small tile, grouped by
//! region and branch, so that 875 devices fit one 3840×2160 screen. A clock in the
//! display time zone (`web.display_zone`) and the devices recovered in the last 30 minutes
//! ([`crate::read_model::recovered`]). A device whose alert someone acknowledged is
//! hatched (the store's in-memory acknowledgements: no query).
//!
//! Everything on it comes from one snapshot, as the JSON API's figures do; the script
//! keeps it live the way it keeps the other pages (it re-fetches the page's `<main>` on
//! every feed event, debounced), so no count is arithmetic done in the browser.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response};
use minijinja::context;
use serde::Serialize;

use super::Pages;
use super::view::{self, device_url};
use crate::http::Body;
use crate::read_model::outages::Outages;
use crate::read_model::{Counts, Rfc3339};
use crate::state::{Snapshot, Status};

/// Outage summary rows shown before "and N more branches": a region outage of 40
/// branches still fits beside the grid.
pub const OUTAGE_ROWS: usize = 60;

/// Up to this many devices the wall draws one tile a device; above it, one tile a
/// branch (coloured by its worst device, counts in its title), so that the page of a
/// 100,000-device inventory stays a page a browser lays out in a moment.
pub const DEVICE_TILES: usize = 12_000;

/// Recoveries listed on the wall (newest first) before "and N more".
pub const RECOVERED_ROWS: usize = 20;

/// One recently recovered device: where it is, how long it was out, when it came back.
#[derive(Serialize)]
struct RecoveredRow {
    device: String,
    url: String,
    region: String,
    branch: String,
    recovered_at: String,
    /// `5m 07s`.
    out_for: String,
}

/// One device tile: as small as a status square with its name on hover.
#[derive(Serialize)]
struct Tile<'a> {
    name: &'a str,
    url: String,
    status: &'static str,
    degraded: bool,
    /// A router up with one of its ISP lines down.
    backup: bool,
    /// An open alert of it is acknowledged: someone is on it.
    acked: bool,
    /// What the hover says: name, address, kind, status and since when.
    title: String,
}

#[derive(Serialize)]
struct BranchTiles<'a> {
    name: &'a str,
    counts: Counts,
    /// The worst status of its devices (the branch tile's colour).
    worst: &'static str,
    /// Empty when the wall draws one tile a branch.
    tiles: Vec<Tile<'a>>,
}

#[derive(Serialize)]
struct RegionTiles<'a> {
    name: &'a str,
    counts: Counts,
    branches: Vec<BranchTiles<'a>>,
}

/// One row of the outage summary: a branch with devices out.
#[derive(Serialize)]
struct OutageRow<'a> {
    region: &'a str,
    branch: &'a str,
    down: usize,
    unreachable: usize,
    total: usize,
    since: Option<String>,
    /// The down devices' names, longest down first (the first few).
    devices: Vec<&'a str>,
}

/// `GET /wall`
pub fn get(web: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let snapshot = web.ctx.view(req).snapshot;
    let now = web.ctx.state.clock().now();
    render(web, &snapshot, now)
}

/// The wall of `snapshot` as of `now`. Public for the rendering tests and the bench.
pub fn render(web: &Pages, snapshot: &Snapshot, now: DateTime<Utc>) -> Response<Body> {
    let scoped = web.ctx.scoped.order_for(snapshot);
    let totals = scoped
        .as_deref()
        .unwrap_or(&web.ctx.order)
        .totals(snapshot)
        .all;
    let outages = Outages::of(snapshot);
    let inventory = &snapshot.inventory;
    let mut rows = Vec::new();
    for r in &outages.regions {
        for b in &r.branches {
            rows.push(OutageRow {
                region: r.name,
                branch: b.name,
                down: b.counts.down,
                unreachable: b.counts.unreachable,
                total: b.counts.total,
                since: b.since.map(|t| Rfc3339(t).to_string()),
                devices: b
                    .groups
                    .iter()
                    .filter_map(|g| g.parent)
                    .take(4)
                    .filter_map(|i| inventory.devices.get(i).map(|d| &*d.name))
                    .collect(),
            });
        }
    }
    let more = rows.len().saturating_sub(OUTAGE_ROWS);
    rows.truncate(OUTAGE_ROWS);
    let per_device = inventory.devices.len() <= DEVICE_TILES;
    let acked = web.ctx.store.health.acknowledged.devices();
    let label = web.ctx.web.display_name_label.as_deref();
    let regions: Vec<RegionTiles> = inventory
        .regions
        .iter()
        .map(|r| {
            let mut counts = Counts::default();
            let branches = r
                .branches
                .iter()
                .map(|b| {
                    let mut bc = Counts::default();
                    let tiles = b
                        .devices
                        .iter()
                        .filter_map(|&i| {
                            let d = inventory.devices.get(i)?;
                            let s = snapshot.status.get(i)?;
                            bc.add_device(s);
                            counts.add_device(s);
                            per_device.then(|| {
                                let backup = crate::read_model::uplinks::on_backup_line(
                                    s,
                                    snapshot.uplinks.get(&d.name).map(|u| &**u),
                                );
                                tile(d, s, label, acked.contains(&*d.name), backup)
                            })
                        })
                        .collect();
                    BranchTiles {
                        name: &b.name,
                        worst: worst(&bc),
                        counts: bc,
                        tiles,
                    }
                })
                .collect();
            RegionTiles {
                name: &r.name,
                counts,
                branches,
            }
        })
        .collect();
    let scope = web.ctx.scoped.scope_of(snapshot);
    let mut recent = web.ctx.recovered.recent(now);
    recent.retain(|r| scope.allows(&r.region));
    let more_recovered = recent.len().saturating_sub(RECOVERED_ROWS);
    let recovered: Vec<RecoveredRow> = recent
        .iter()
        .take(RECOVERED_ROWS)
        .map(|r| RecoveredRow {
            device: r.device.to_string(),
            url: device_url(&r.device),
            region: r.region.to_string(),
            branch: r.branch.to_string(),
            recovered_at: Rfc3339(r.recovered_at).to_string(),
            out_for: super::templates::duration(r.duration().num_seconds()),
        })
        .collect();
    let (backup, backup_total) = super::outage::backup_rows(snapshot, label, |_| true);
    let zone = web.ctx.web.display_zone;
    let local = now.with_timezone(&zone);
    view::page(
        web,
        "wall",
        snapshot,
        now,
        view::events_url(None, None, None),
        context! {
            totals => view::v(totals),
            outages => view::v(rows),
            outage_branches => outages.branches,
            more_outages => more,
            backup => view::v(backup),
            backup_total,
            regions => view::v(regions),
            per_device => per_device,
            recovered => view::v(recovered),
            more_recovered => more_recovered,
            zone => zone.name(),
            clock => local.format("%H:%M:%S").to_string(),
            clock_date => local.format("%a %Y-%m-%d").to_string(),
            clock_offset => local.format("%:z").to_string(),
        },
    )
}

fn worst(c: &Counts) -> &'static str {
    if c.down > 0 {
        "down"
    } else if c.unreachable > 0 {
        "unreachable"
    } else if c.unknown > 0 {
        "unknown"
    } else {
        "up"
    }
}

fn tile<'a>(
    d: &'a crate::config::Device,
    s: &crate::state::DeviceStatus,
    label: Option<&str>,
    acked: bool,
    backup: bool,
) -> Tile<'a> {
    let since = match s.status {
        Status::Down | Status::Unreachable => s
            .down_since
            .map(|t| format!(" since {}", Rfc3339(t)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    Tile {
        name: &d.name,
        url: device_url(&d.name),
        status: s.status.as_str(),
        degraded: s.degraded.is_some(),
        backup,
        acked,
        title: format!(
            "{}{} · {} · {} · {}{}{}{}{}",
            // The display name first, where there is one: a tile is too small for text.
            super::view::display_name(d, label)
                .map(|n| format!("{n} · "))
                .unwrap_or_default(),
            d.name,
            d.address,
            d.kind,
            s.status.as_str(),
            if s.degraded.is_some() {
                " (degraded)"
            } else {
                ""
            },
            since,
            if backup { " · on backup line" } else { "" },
            if acked { " · acknowledged" } else { "" }
        ),
    }
}
