//! The open alerts of `/alerts` grouped by branch: one group per (region, branch) of the
//! device as the inventory has it now (a device no longer in it is grouped apart), in an
//! order the operator picks (`sort`), [`GROUPS_PER_PAGE`] groups to a page. Pure: the
//! page reads the alerts and the snapshot, this shapes them.

use serde::Serialize;

use super::alerts::AlertView;
use crate::read_model::{ParamError, TextFilter};
use crate::state::Snapshot;

/// Groups (branches) per page: a region outage of 40 branches is one page.
pub const GROUPS_PER_PAGE: usize = 50;

/// Where alerts of devices no longer in the inventory are grouped.
pub const REMOVED: (&str, &str) = ("—", "(not in the inventory)");

/// How the groups are ordered (`sort`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupOrder {
    /// Most critical alerts first, then the longest open, then the most alerts.
    #[default]
    Worst,
    /// The oldest open alert first.
    Longest,
    /// The most open alerts first.
    Most,
    /// By region, then branch.
    Place,
}

impl GroupOrder {
    pub const ALL: [GroupOrder; 4] = [
        GroupOrder::Worst,
        GroupOrder::Longest,
        GroupOrder::Most,
        GroupOrder::Place,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupOrder::Worst => "worst",
            GroupOrder::Longest => "longest",
            GroupOrder::Most => "most",
            GroupOrder::Place => "place",
        }
    }

    pub fn parse(value: &str) -> Result<GroupOrder, ParamError> {
        if value.is_empty() {
            return Ok(GroupOrder::default());
        }
        GroupOrder::ALL
            .into_iter()
            .find(|o| o.as_str() == value)
            .ok_or_else(|| {
                (
                    "sort",
                    format!("sort {value:?} is not one of worst, longest, most, place"),
                )
            })
    }
}

/// One branch's open alerts.
#[derive(Debug, Serialize)]
pub struct AlertGroup {
    pub region: String,
    pub branch: String,
    /// `region/branch`: the `<details>` key the script keeps open across re-reads.
    pub key: String,
    pub critical: usize,
    /// The oldest `opened_at` (RFC 3339): the group's "open for".
    pub oldest: String,
    /// Critical first, then the longest open, then by device.
    pub alerts: Vec<AlertView>,
}

/// The place filters of the page (`region` exact, `branch` as the device list matches).
#[derive(Debug, Default)]
pub struct Place {
    pub region: Option<String>,
    pub branch: Option<TextFilter>,
}

impl Place {
    pub fn keeps(&self, region: &str, branch: &str) -> bool {
        self.region.as_deref().is_none_or(|r| r == region)
            && self.branch.as_ref().is_none_or(|b| b.matches(branch))
    }

    pub fn is_empty(&self) -> bool {
        self.region.is_none() && self.branch.is_none()
    }
}

/// Where `snapshot` places device `name`: its (region, branch), or [`REMOVED`].
pub fn place_of<'a>(snapshot: &'a Snapshot, name: &str) -> (&'a str, &'a str) {
    snapshot
        .device(name)
        .map_or(REMOVED, |(d, _, _)| (&*d.region, &*d.branch))
}

/// `alerts` kept by `place`, grouped by the branch `place_of` gives each device, in
/// `order` (ties by region and branch, so the order is the same on every read).
pub fn group(
    alerts: Vec<AlertView>,
    place_of: impl Fn(&str) -> (String, String),
    place: &Place,
    order: GroupOrder,
) -> Vec<AlertGroup> {
    let mut by_place: std::collections::BTreeMap<(String, String), Vec<AlertView>> =
        Default::default();
    for a in alerts {
        let (region, branch) = place_of(&a.device);
        if place.keeps(&region, &branch) {
            by_place.entry((region, branch)).or_default().push(a);
        }
    }
    let mut groups: Vec<AlertGroup> = by_place
        .into_iter()
        .map(|((region, branch), mut alerts)| {
            // RFC 3339 in UTC with a fixed width: text order is time order.
            alerts.sort_by(|a, b| {
                (b.severity == "critical")
                    .cmp(&(a.severity == "critical"))
                    .then_with(|| a.opened_at.cmp(&b.opened_at))
                    .then_with(|| a.device.cmp(&b.device))
                    .then_with(|| a.id.cmp(&b.id))
            });
            let oldest = alerts
                .iter()
                .map(|a| &a.opened_at)
                .min()
                .cloned()
                .unwrap_or_default();
            AlertGroup {
                key: format!("{region}/{branch}"),
                critical: alerts.iter().filter(|a| a.severity == "critical").count(),
                region,
                branch,
                oldest,
                alerts,
            }
        })
        .collect();
    // Stable over the place order the map gave: ties stay by region, branch.
    match order {
        GroupOrder::Worst => groups.sort_by(|a, b| {
            b.critical
                .cmp(&a.critical)
                .then_with(|| a.oldest.cmp(&b.oldest))
                .then_with(|| b.alerts.len().cmp(&a.alerts.len()))
        }),
        GroupOrder::Longest => groups.sort_by(|a, b| a.oldest.cmp(&b.oldest)),
        GroupOrder::Most => groups.sort_by_key(|g| std::cmp::Reverse(g.alerts.len())),
        GroupOrder::Place => {}
    }
    groups
}

/// Page `page` (from 1, clamped to the last) of `groups`, and the number of pages.
pub fn page(mut groups: Vec<AlertGroup>, page: usize) -> (Vec<AlertGroup>, usize, usize) {
    let pages = groups.len().div_ceil(GROUPS_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let start = (page - 1) * GROUPS_PER_PAGE;
    groups.truncate(start + GROUPS_PER_PAGE);
    (groups.split_off(start), page, pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AlertRow;

    fn alert(id: i64, device: &str, severity: &str, opened: i64) -> AlertView {
        AlertView::from(AlertRow {
            id,
            device: device.into(),
            condition: if severity == "critical" {
                "device_down"
            } else {
                "degraded"
            }
            .into(),
            severity: severity.into(),
            message: String::new(),
            opened_at: chrono::DateTime::from_timestamp(1_800_000_000 + opened, 0).unwrap(),
            resolved_at: None,
            resolution: None,
            acknowledged_at: None,
            acknowledged_by: None,
            acknowledged_comment: None,
        })
    }

    /// Devices are named `region.branch.device`.
    fn where_is(name: &str) -> (String, String) {
        let mut parts = name.splitn(3, '.');
        let (r, b) = match (parts.next(), parts.next()) {
            (Some(r), Some(b)) => (r, b),
            _ => REMOVED,
        };
        (r.into(), b.into())
    }

    fn alerts() -> Vec<AlertView> {
        vec![
            alert(1, "r.a.x", "warning", 0),
            alert(2, "r.b.x", "critical", 50),
            alert(3, "r.b.y", "warning", 10),
            alert(4, "r.c.x", "critical", 20),
            alert(5, "s.a.x", "warning", 5),
            alert(6, "s.a.y", "warning", 6),
            alert(7, "gone", "critical", 30),
        ]
    }

    fn keys(groups: &[AlertGroup]) -> Vec<&str> {
        groups.iter().map(|g| &*g.key).collect()
    }

    #[test]
    fn groups_order_worst_longest_most_or_by_place() {
        let all = Place::default();
        let g = group(alerts(), where_is, &all, GroupOrder::Worst);
        // One critical each (r/b, r/c, removed): longest open first; then the rest.
        assert_eq!(
            keys(&g),
            ["r/b", "r/c", "—/(not in the inventory)", "r/a", "s/a"]
        );
        let b = &g[0];
        assert_eq!((b.critical, b.alerts.len()), (1, 2));
        assert_eq!(b.alerts[0].id, 2, "critical before the older warning");
        assert_eq!(b.oldest, "2027-01-15T08:00:10.000Z", "the warning is older");
        let g = group(alerts(), where_is, &all, GroupOrder::Longest);
        assert_eq!(keys(&g)[..3], ["r/a", "s/a", "r/b"]);
        let g = group(alerts(), where_is, &all, GroupOrder::Most);
        assert_eq!(keys(&g)[..2], ["r/b", "s/a"], "two each, ties by place");
        let g = group(alerts(), where_is, &all, GroupOrder::Place);
        assert_eq!(keys(&g)[0], "r/a");
        let only = Place {
            region: Some("r".into()),
            branch: TextFilter::parse("B"),
        };
        let g = group(alerts(), where_is, &only, GroupOrder::Worst);
        assert_eq!(
            keys(&g),
            ["r/b"],
            "the place filters, the branch case-folded"
        );
    }

    #[test]
    fn unknown_orders_are_refused_with_the_known_ones() {
        assert_eq!(GroupOrder::parse(""), Ok(GroupOrder::Worst));
        assert_eq!(GroupOrder::parse("most"), Ok(GroupOrder::Most));
        let (param, message) = GroupOrder::parse("size").unwrap_err();
        assert_eq!(param, "sort");
        assert_eq!(
            message,
            "sort \"size\" is not one of worst, longest, most, place"
        );
    }

    #[test]
    fn pages_hold_fifty_groups_and_clamp() {
        let groups = |n: usize| {
            (0..n)
                .map(|i| AlertGroup {
                    region: "r".into(),
                    branch: format!("b{i:03}"),
                    key: String::new(),
                    critical: 0,
                    oldest: String::new(),
                    alerts: Vec::new(),
                })
                .collect::<Vec<_>>()
        };
        let (p, no, pages) = page(groups(120), 3);
        assert_eq!((p.len(), no, pages), (20, 3, 3));
        assert_eq!(p[0].branch, "b100");
        let (p, no, pages) = page(groups(120), 9);
        assert_eq!((p.len(), no, pages), (20, 3, 3), "past the end: the last");
        let (p, no, pages) = page(Vec::new(), 1);
        assert_eq!((p.len(), no, pages), (0, 1, 1));
    }
}
