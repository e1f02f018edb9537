//! What the dashboard and the monitor show first: the outage summary
//! ([`crate::read_model::Outages`]) as rows, region → branch, each branch expandable to
//! its down devices and what is unreachable behind them; and the recently-recovered list
//! ([`crate::read_model::Recovered`]).
//!
//! A region outage of 40 branches is thus 40 short rows (laid out in columns by the
//! style sheet), not hundreds of identical tiles; the device grid comes after it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::view::{device_url, display_name};
use crate::read_model::recovered::Recovery;
use crate::read_model::{Counts, ListQuery, Outages, Rfc3339, TextFilter};
use crate::state::Snapshot;

/// A branch lists at most this many devices when expanded; the rest are a link to the
/// monitor filtered on the branch (a branch of thousands must not make the page huge).
pub const DEVICES_LISTED: usize = 50;
/// The summary lists at most this many branch rows, worst first (a region outage of 40
/// branches is 40 rows); past them each region says how many more it has, with a link,
/// so a nationwide outage of thousands of branches keeps the page small and fast.
pub const BRANCHES_LISTED: usize = 200;
/// The monitor's recently-recovered list shows at most this many rows (its count is
/// exact): the device grid follows it.
pub const RECOVERED_LISTED: usize = 20;

#[derive(Debug, Serialize)]
pub struct SummaryView<'a> {
    pub down: usize,
    pub unreachable: usize,
    pub branches: usize,
    pub regions: Vec<RegionRow<'a>>,
    /// The routers up on their backup line (one ISP line down), longest first; at most
    /// [`BACKUP_LISTED`] of `backup_total`.
    pub backup: Vec<BackupRow<'a>>,
    pub backup_total: usize,
}

/// The "on backup line" rows listed before "and N more".
pub const BACKUP_LISTED: usize = 50;

/// A router working on its backup line: where, which line is down since when, and its
/// lines as badges.
#[derive(Debug, Serialize)]
pub struct BackupRow<'a> {
    pub region: &'a str,
    pub branch: &'a str,
    pub device: DeviceRef<'a>,
    pub since: String,
    pub down: Vec<&'a str>,
    pub up: Vec<&'a str>,
    pub uplinks: crate::read_model::uplinks::UplinksView<'a>,
}

/// The routers of `snapshot` on their backup line that `keep` keeps.
pub fn backup_rows<'a>(
    snapshot: &'a Snapshot,
    label: Option<&str>,
    mut keep: impl FnMut(usize) -> bool,
) -> (Vec<BackupRow<'a>>, usize) {
    use crate::read_model::uplinks;
    use crate::state::uplinks::LineStatus;
    let found: Vec<_> = uplinks::on_backup(snapshot)
        .into_iter()
        .filter(|(i, _)| keep(*i))
        .collect();
    let total = found.len();
    let rows = found
        .into_iter()
        .take(BACKUP_LISTED)
        .filter_map(|(i, since)| {
            let d = &snapshot.inventory.devices[i];
            let s = &snapshot.status[i];
            let lines = snapshot.uplinks.get(&d.name)?;
            let isps = |status| {
                lines
                    .lines
                    .iter()
                    .filter(move |l| l.status == status)
                    .map(|l| &*l.isp)
                    .collect()
            };
            Some(BackupRow {
                region: &d.region,
                branch: &d.branch,
                device: DeviceRef {
                    name: &d.name,
                    display_name: display_name(d, label),
                    url: device_url(&d.name),
                    status: s.status.as_str(),
                    down_since: None,
                },
                since: Rfc3339(since).to_string(),
                down: isps(LineStatus::Down),
                up: isps(LineStatus::Up),
                uplinks: uplinks::lines(lines, true, None),
            })
        })
        .collect();
    (rows, total)
}

#[derive(Debug, Serialize)]
pub struct RegionRow<'a> {
    pub name: &'a str,
    pub url: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub since: Option<String>,
    pub branches: Vec<BranchRow<'a>>,
    /// Branches out in the region not listed (past [`BRANCHES_LISTED`]).
    pub more: usize,
}

#[derive(Debug, Serialize)]
pub struct BranchRow<'a> {
    pub name: &'a str,
    /// `region/branch`: keeps a `<details>` open across the script's re-render.
    pub key: String,
    pub url: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub since: Option<String>,
    pub groups: Vec<GroupRow<'a>>,
    /// Devices out in the branch not listed (past [`DEVICES_LISTED`]).
    pub more: usize,
}

#[derive(Debug, Serialize)]
pub struct GroupRow<'a> {
    /// The down device; None for the devices behind devices of other branches.
    pub parent: Option<DeviceRef<'a>>,
    pub behind: Vec<DeviceRef<'a>>,
}

#[derive(Debug, Serialize)]
pub struct DeviceRef<'a> {
    pub name: &'a str,
    /// Its `web.display_name_label` value, shown in place of the name when set.
    pub display_name: Option<&'a str>,
    pub url: String,
    pub status: &'static str,
    pub down_since: Option<String>,
}

fn monitor_url(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    format!("/monitor?{}", q.finish())
}

fn time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| Rfc3339(t).to_string())
}

/// The summary rows of `snapshot`; `label` is `web.display_name_label`.
pub fn summary<'a>(snapshot: &'a Snapshot, label: Option<&str>) -> SummaryView<'a> {
    summary_where(snapshot, &ListQuery::default(), label)
}

/// The summary rows of `snapshot` for the branches `query`'s `region` and `branch`
/// filters keep (its status, kind and name filters narrow the device list, not the
/// summary: a down-only view still shows what is unreachable behind the down devices).
/// The totals are those of the rows kept.
pub fn summary_where<'a>(
    snapshot: &'a Snapshot,
    query: &ListQuery,
    label: Option<&str>,
) -> SummaryView<'a> {
    let place = ListQuery {
        region: query.region.clone(),
        branch: query.branch.clone(),
        ..ListQuery::default()
    };
    let mut scratch = String::new();
    let mut outages = Outages::of(snapshot);
    for r in &mut outages.regions {
        r.branches.retain(|b| {
            // Every device of a branch has the branch's region and name: any one of
            // those listed tells whether the filters keep the branch.
            let any = b
                .groups
                .iter()
                .find_map(|g| g.parent.or_else(|| g.behind.first().copied()));
            any.is_some_and(|i| {
                let d = &snapshot.inventory.devices[i];
                place.matches(d, snapshot.status[i].status, &mut scratch)
            })
        });
    }
    outages.regions.retain(|r| !r.branches.is_empty());
    let (mut down, mut unreachable, mut branches) = (0, 0, 0);
    for b in outages.regions.iter().flat_map(|r| &r.branches) {
        down += b.counts.down;
        unreachable += b.counts.unreachable;
        branches += 1;
    }
    let inv = &snapshot.inventory;
    let device = |i: usize| {
        let d = &inv.devices[i];
        let s = &snapshot.status[i];
        DeviceRef {
            name: &d.name,
            display_name: display_name(d, label),
            url: device_url(&d.name),
            status: s.status.as_str(),
            down_since: time(s.down_since),
        }
    };
    let (backup, backup_total) = backup_rows(snapshot, label, |i| {
        place.matches(&inv.devices[i], snapshot.status[i].status, &mut scratch)
    });
    let mut rows_left = BRANCHES_LISTED;
    let regions = outages
        .regions
        .into_iter()
        .map(|r| {
            let listed = r.branches.len().min(rows_left);
            rows_left -= listed;
            RegionRow {
                name: r.name,
                url: monitor_url(&[("region", r.name)]),
                counts: r.counts,
                since: time(r.since),
                more: r.branches.len() - listed,
                branches: r
                    .branches
                    .into_iter()
                    .take(listed)
                    .map(|b| {
                        let mut budget = DEVICES_LISTED;
                        let mut more = 0;
                        let groups = b
                            .groups
                            .iter()
                            .map(|g| {
                                let parent = g.parent.map(|p| {
                                    budget = budget.saturating_sub(1);
                                    device(p)
                                });
                                let take = g.behind.len().min(budget);
                                budget -= take;
                                more += g.behind.len() - take;
                                GroupRow {
                                    parent,
                                    behind: g.behind[..take].iter().map(|&i| device(i)).collect(),
                                }
                            })
                            .collect();
                        BranchRow {
                            name: b.name,
                            key: format!("{}/{}", r.name, b.name),
                            url: monitor_url(&[
                                ("region", r.name),
                                ("branch", &TextFilter::exact(b.name).written),
                            ]),
                            counts: b.counts,
                            since: time(b.since),
                            groups,
                            more,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    SummaryView {
        down,
        unreachable,
        branches,
        regions,
        backup,
        backup_total,
    }
}

/// One recovery as the list shows it.
#[derive(Debug, Serialize)]
pub struct RecoveredRow {
    pub device: String,
    pub url: String,
    pub region: String,
    pub branch: String,
    pub down_since: String,
    pub recovered_at: String,
    pub duration: String,
}

#[derive(Debug, Serialize)]
pub struct RecoveredView {
    /// Every recovery of the window (the rows are the newest `limit`).
    pub total: usize,
    pub rows: Vec<RecoveredRow>,
}

/// The recently-recovered list as of `now`, its newest `limit` rows.
pub fn recovered(
    list: &crate::read_model::Recovered,
    scope: &crate::access::Scope,
    now: DateTime<Utc>,
    limit: usize,
) -> RecoveredView {
    let mut all: Vec<Recovery> = list.recent(now);
    all.retain(|r| scope.allows(&r.region));
    RecoveredView {
        total: all.len(),
        rows: all
            .iter()
            .take(limit)
            .map(|r| RecoveredRow {
                device: r.device.to_string(),
                url: device_url(&r.device),
                region: r.region.to_string(),
                branch: r.branch.to_string(),
                down_since: Rfc3339(r.down_since).to_string(),
                recovered_at: Rfc3339(r.recovered_at).to_string(),
                duration: super::templates::duration(r.duration().num_seconds()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::load::inventory_of;
    use crate::state::{Machine, State, Status, SystemClock};

    /// `regions` regions of `branches` one-device branches each, every device down.
    fn all_down(regions: usize, branches: usize) -> Arc<Snapshot> {
        let mut text = String::from("regions:\n");
        for r in 0..regions {
            text += &format!("  - name: r{r}\n    branches:\n");
            for b in 0..branches {
                text += &format!(
                    "      - name: r{r}-b{b}\n        devices:\n          - {{ name: d{r}-{b}, address: 127.73.{r}.{}, kind: atm }}\n",
                    b + 1
                );
            }
        }
        let state = State::new(Arc::new(SystemClock));
        state.replace_inventory(Arc::new(inventory_of(&text)), |_| {
            Some(Machine::restored(Status::Down, Some(Utc::now())))
        });
        state.snapshot()
    }

    #[test]
    fn a_region_outage_lists_every_branch() {
        let s = all_down(1, 40);
        let v = summary(&s, None);
        assert_eq!(v.regions[0].branches.len(), 40);
        assert_eq!(v.regions[0].more, 0);
    }

    #[test]
    fn a_nationwide_outage_lists_the_first_branches_and_counts_the_rest() {
        let s = all_down(3, 90);
        let v = summary(&s, None);
        let listed: Vec<usize> = v.regions.iter().map(|r| r.branches.len()).collect();
        let more: Vec<usize> = v.regions.iter().map(|r| r.more).collect();
        assert_eq!(listed, [90, 90, 20]);
        assert_eq!(more, [0, 0, 70]);
        // The counts stay those of every branch, listed or not.
        assert_eq!((v.down, v.branches), (270, 270));
        assert_eq!(v.regions[2].counts.down, 90);
    }
}
