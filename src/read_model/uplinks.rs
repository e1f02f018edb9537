//! A router's ISP lines as every surface shows them (JSON, the live feed, the pages):
//! each line's ISP, status, since when, why when `unknown`, and its traffic; and the
//! branch-level fact the NOC reads first — "on its backup line" while a line is down and
//! the router still answers ping.

use std::sync::Arc;

use serde::Serialize;

use super::time::Rfc3339;
use crate::config::Device;
use crate::state::uplinks::{LineStatus, Uplinks};
use crate::state::{DeviceRuntime, DeviceStatus, Snapshot};

/// A polled device's lines, as of a snapshot.
#[derive(Debug, Serialize)]
pub struct UplinksView<'a> {
    /// A line is down while the router is up (it answers ping over another).
    pub on_backup_line: bool,
    /// Why no line is known yet (`not polled yet`, the agent's silence, no interface
    /// matching the region's rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<&'a str>,
    pub lines: Vec<LineView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct LineView<'a> {
    pub isp: &'a str,
    pub status: LineStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub since: Option<Rfc3339>,
    pub admin_down: bool,
    pub interface: Option<&'a str>,
    pub if_index: Option<u32>,
    /// Bits per second over the last two polls (absent before the second reading and
    /// after a counter reset); and the counters as last read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_bps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_bps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_octets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_octets: Option<u64>,
}

/// True while the device is up and one of its lines is down: the branch is on its backup
/// line (shown as degraded).
pub fn on_backup_line(status: &DeviceStatus, uplinks: Option<&Uplinks>) -> bool {
    uplinks.is_some_and(|u| u.on_backup_line(status.status))
}

/// The lines of `device` (None if it is not polled); with its traffic when `runtime` is
/// given (the feed's frames carry none: traffic is not versioned).
pub fn view<'a>(
    snapshot: &'a Snapshot,
    device: &'a Device,
    status: &DeviceStatus,
    runtime: Option<&DeviceRuntime>,
) -> Option<UplinksView<'a>> {
    let snmp = device.snmp.as_ref()?;
    let uplinks = snapshot.uplinks.get(&device.name);
    Some(match uplinks {
        Some(u) => lines(u, on_backup_line(status, Some(u)), runtime),
        None => {
            // Not polled yet: the listed lines, each unknown; rules name none yet.
            let lines = match &snmp.uplinks {
                crate::config::snmp::Uplinks::Listed(list) => list
                    .iter()
                    .map(|u| LineView::unknown(&u.isp, "not polled yet"))
                    .collect(),
                crate::config::snmp::Uplinks::ByAlias(_) => Vec::new(),
            };
            UplinksView {
                on_backup_line: false,
                problem: lines.is_empty().then_some("not polled yet"),
                lines,
            }
        }
    })
}

/// `uplinks` as shown, `on_backup_line` decided by the caller.
pub fn lines<'a>(
    uplinks: &'a Arc<Uplinks>,
    on_backup_line: bool,
    runtime: Option<&DeviceRuntime>,
) -> UplinksView<'a> {
    UplinksView {
        on_backup_line,
        problem: uplinks.problem.as_deref(),
        lines: uplinks
            .lines
            .iter()
            .map(|l| {
                let traffic = runtime
                    .map(|r| r.uplink_traffic(&l.isp))
                    .unwrap_or_default();
                LineView {
                    isp: &l.isp,
                    status: l.status,
                    reason: l.reason.as_deref(),
                    since: Some(Rfc3339(l.since)),
                    admin_down: l.admin_down,
                    interface: l.interface.as_deref(),
                    if_index: l.if_index,
                    in_bps: traffic.in_bps,
                    out_bps: traffic.out_bps,
                    in_octets: traffic.in_octets,
                    out_octets: traffic.out_octets,
                }
            })
            .collect(),
    }
}

impl<'a> LineView<'a> {
    fn unknown(isp: &'a str, reason: &'a str) -> LineView<'a> {
        LineView {
            isp,
            status: LineStatus::Unknown,
            reason: Some(reason),
            since: None,
            admin_down: false,
            interface: None,
            if_index: None,
            in_bps: None,
            out_bps: None,
            in_octets: None,
            out_octets: None,
        }
    }
}

/// The routers of `snapshot` on their backup line, the longest first (by when their
/// oldest down line went down), ties by name: as inventory indexes with that time.
pub fn on_backup(snapshot: &Snapshot) -> Vec<(usize, chrono::DateTime<chrono::Utc>)> {
    let mut found: Vec<(usize, chrono::DateTime<chrono::Utc>)> = snapshot
        .uplinks
        .iter()
        .filter_map(|(name, u)| {
            let i = snapshot.inventory.index_of(name)?;
            if !on_backup_line(&snapshot.status[i], Some(u)) {
                return None;
            }
            Some((i, u.down().map(|l| l.since).min()?))
        })
        .collect();
    let inv = &snapshot.inventory;
    found.sort_by(|a, b| (a.1, &inv.devices[a.0].name).cmp(&(b.1, &inv.devices[b.0].name)));
    found
}
