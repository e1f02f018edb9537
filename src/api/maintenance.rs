//! `GET /api/v1/maintenance`: the maintenance windows going on now and those starting
//! in the next 7 days, and [`ends`], when each device's maintenance ends (the device
//! JSON's `in_maintenance` and `maintenance_ends_at`).
//!
//! Every answer is over one snapshot's inventory and the state's clock, in the zone of
//! each window (its own, or the settings' `maintenance.zone`). The list is sorted by
//! start and bounded ([`MAX_ITEMS`]; `truncated` says when more were left out): a
//! pattern that matches every minute does not make it unbounded.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::context::Context;
use crate::http::response::{self, Body};
use crate::maintenance::{Occurrence, Rule, Scope, Silence, Window, Windows};
use crate::read_model::Rfc3339;

/// How far ahead upcoming windows are listed.
pub const AHEAD: TimeDelta = TimeDelta::days(7);
/// Occurrences listed at most.
pub const MAX_ITEMS: usize = 1000;

pub use crate::read_model::Ends;

/// At the state's clock, in the settings' zone.
pub fn ends(ctx: &Context) -> Ends {
    Ends::of(&ctx.state, ctx.maintenance.zone)
}

#[derive(Serialize)]
struct Answer<'a> {
    state_version: u64,
    now: Rfc3339,
    until: Rfc3339,
    /// The zone of windows that name none.
    default_zone: &'static str,
    windows: Vec<Item<'a>>,
    truncated: bool,
}

#[derive(Serialize)]
struct Item<'a> {
    scope: &'static str,
    /// A silence's id (`scope: silence`), to expire it by.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    region: &'a str,
    branch: Option<&'a str>,
    device: Option<&'a str>,
    reason: Option<&'a str>,
    kind: &'static str,
    active: bool,
    start: Rfc3339,
    end: Rfc3339,
    start_local: String,
    end_local: String,
    zone: &'static str,
    /// Devices it covers in the running inventory.
    devices: u32,
}

/// `GET /api/v1/maintenance`
pub fn get(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    let view = ctx.view(req);
    let snapshot = &view.snapshot;
    let now = ctx.state.clock().now();
    let default = ctx.maintenance.zone;
    let until = now + AHEAD;
    let covered = covered(&snapshot.inventory.devices);
    let mut items = Vec::new();
    for (window, devices) in covered.values() {
        let active = window.active_at(now, default);
        let upcoming = window
            .starts_in(now, until, default, MAX_ITEMS + 1)
            .into_iter()
            .filter(|o| Some(o.start) != active.map(|a| a.start));
        for (o, is_active) in active
            .map(|a| (a, true))
            .into_iter()
            .chain(upcoming.map(|o| (o, false)))
        {
            items.push(item(window, o, is_active, *devices, default));
        }
    }
    let silences = ctx.state.silences();
    let shown =
        super::silences::visible(&silences, &snapshot.inventory, view.scope().is_all(), now);
    for (s, devices) in shown {
        if s.starts_at < until {
            items.push(silence_item(s, now, devices, default));
        }
    }
    items.sort_by(|a, b| {
        (a.start.0, a.scope, a.region, a.branch, a.device)
            .cmp(&(b.start.0, b.scope, b.region, b.branch, b.device))
    });
    let truncated = items.len() > MAX_ITEMS;
    items.truncate(MAX_ITEMS);
    response::json(
        StatusCode::OK,
        &Answer {
            state_version: snapshot.version,
            now: Rfc3339(now),
            until: Rfc3339(until),
            default_zone: default.name(),
            windows: items,
            truncated,
        },
    )
}

/// Every distinct window of the inventory (named by its scope and place in its list)
/// with the number of devices it covers. Devices are grouped by the list they share
/// first, so a branch's windows are counted once per branch, not once per device.
fn covered(
    devices: &[std::sync::Arc<crate::config::Device>],
) -> HashMap<(&Scope, u32), (&Window, u32)> {
    let mut lists: HashMap<usize, (&Windows, u32)> = HashMap::new();
    for d in devices.iter().filter(|d| !d.maintenance.is_empty()) {
        lists
            .entry(d.maintenance.as_ptr() as usize)
            .or_insert((&d.maintenance, 0))
            .1 += 1;
    }
    let mut windows: HashMap<(&Scope, u32), (&Window, u32)> = HashMap::new();
    for (list, n) in lists.into_values() {
        for w in list.iter() {
            windows.entry((&w.scope, w.ordinal)).or_insert((w, 0)).1 += n;
        }
    }
    windows
}

fn item(window: &Window, o: Occurrence, active: bool, devices: u32, default: Tz) -> Item<'_> {
    let zone = window.zone_or(default);
    let local = |t: DateTime<Utc>| {
        t.with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Millis, false)
    };
    let (region, branch, device) = match &window.scope {
        Scope::Region { region } => (&**region, None, None),
        Scope::Branch { region, branch } => (&**region, Some(&**branch), None),
        Scope::Device {
            region,
            branch,
            device,
        } => (&**region, Some(&**branch), Some(&**device)),
        // Silences are not in the inventory's lists this walks (see `silence_item`).
        Scope::Silence { .. } => ("", None, None),
    };
    Item {
        scope: window.scope.level(),
        id: None,
        region,
        branch,
        device,
        reason: window.reason.as_deref(),
        kind: match window.rule {
            Rule::Once { .. } => "once",
            Rule::Weekly { .. } => "weekly",
            Rule::Cron { .. } => "cron",
        },
        active,
        start: Rfc3339(o.start),
        end: Rfc3339(o.end),
        start_local: local(o.start),
        end_local: local(o.end),
        zone: zone.name(),
        devices,
    }
}

/// An operator's silence as an item of the list: its matchers for its scope, its
/// comment for a reason, shown in the default zone.
fn silence_item(s: &Silence, now: DateTime<Utc>, devices: usize, zone: Tz) -> Item<'_> {
    let local = |t: DateTime<Utc>| {
        t.with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Millis, false)
    };
    let m = &s.matchers;
    Item {
        scope: "silence",
        id: Some(&s.id),
        region: m.region.as_deref().unwrap_or(""),
        branch: m.branch.as_deref(),
        device: m.device.as_deref(),
        reason: Some(&s.comment),
        kind: "silence",
        active: s.starts_at <= now,
        start: Rfc3339(s.starts_at),
        end: Rfc3339(s.end()),
        start_local: local(s.starts_at),
        end_local: local(s.end()),
        zone: zone.name(),
        devices: devices as u32,
    }
}
