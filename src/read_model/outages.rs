//! The outage summary: every device that is `down` or `unreachable` in one snapshot,
//! grouped region → branch, worst first, so that a region outage of 40 branches is 40
//! rows and not hundreds of identical tiles. Within a branch the `down` devices come
//! first (longest down first), each followed by the branch's devices unreachable behind
//! it; the unreachable devices whose out parents are all elsewhere (a region core) follow.
//!
//! The pages (`/`, `/monitor`, `/wall`) render it; every figure in it is counted from
//! the same snapshot as the JSON API's, so they cannot disagree.

use chrono::{DateTime, Utc};

use crate::read_model::Counts;
use crate::state::{Snapshot, Status};

/// The outage summary of one snapshot.
#[derive(Debug, Default)]
pub struct Outages<'a> {
    /// Regions with at least one device out, worst first (most down, then most
    /// unreachable), then in inventory order.
    pub regions: Vec<RegionOutage<'a>>,
    /// Devices down, over all regions.
    pub down: usize,
    /// Devices unreachable, over all regions.
    pub unreachable: usize,
    /// Branches with a device out, over all regions.
    pub branches: usize,
}

/// One region with devices out.
#[derive(Debug)]
pub struct RegionOutage<'a> {
    pub name: &'a str,
    /// The whole region's counts (its devices that are up too).
    pub counts: Counts,
    /// The earliest `down_since` of its down devices.
    pub since: Option<DateTime<Utc>>,
    /// Its branches with a device out, worst first, then in inventory order.
    pub branches: Vec<BranchOutage<'a>>,
}

/// One branch with devices out.
#[derive(Debug)]
pub struct BranchOutage<'a> {
    pub name: &'a str,
    /// The whole branch's counts.
    pub counts: Counts,
    /// The earliest `down_since` of its down devices.
    pub since: Option<DateTime<Utc>>,
    /// Its devices out, as groups: each down device with the branch's devices
    /// unreachable behind it, then one group (`parent: None`) of those unreachable
    /// only behind devices of other branches.
    pub groups: Vec<OutageGroup>,
}

/// A down device and what of its branch is unreachable behind it; or, with no parent,
/// the branch's devices unreachable behind devices elsewhere.
#[derive(Debug, PartialEq, Eq)]
pub struct OutageGroup {
    /// Index into `inventory.devices` of the down device.
    pub parent: Option<usize>,
    /// Indexes of its unreachable devices in this branch, in inventory order.
    pub behind: Vec<usize>,
}

impl<'a> Outages<'a> {
    pub fn of(snapshot: &'a Snapshot) -> Outages<'a> {
        let status = |i: usize| &snapshot.status[i];
        let mut out = Outages::default();
        for region in &snapshot.inventory.regions {
            let mut counts = Counts::default();
            let mut branches = Vec::new();
            for branch in &region.branches {
                let mut b = BranchOutage {
                    name: &branch.name,
                    counts: Counts::default(),
                    since: None,
                    groups: Vec::new(),
                };
                let mut unreachable = Vec::new();
                for &i in &branch.devices {
                    let s = status(i);
                    b.counts.add_device(s);
                    counts.add_device(s);
                    match s.status {
                        Status::Down => {
                            b.since = earliest(b.since, s.down_since);
                            b.groups.push(OutageGroup {
                                parent: Some(i),
                                behind: Vec::new(),
                            });
                        }
                        Status::Unreachable => unreachable.push(i),
                        Status::Up | Status::Unknown => {}
                    }
                }
                if b.counts.down + b.counts.unreachable == 0 {
                    continue;
                }
                // Longest down first; ties in inventory order (the sort is stable).
                b.groups
                    .sort_by_key(|g| g.parent.map(|p| status(p).down_since));
                place_unreachable(snapshot, &mut b.groups, unreachable);
                branches.push(b);
            }
            if branches.is_empty() {
                continue;
            }
            branches.sort_by_key(|b| b.counts.badness());
            out.down += counts.down;
            out.unreachable += counts.unreachable;
            out.branches += branches.len();
            out.regions.push(RegionOutage {
                name: &region.name,
                counts,
                since: branches.iter().filter_map(|b| b.since).min(),
                branches,
            });
        }
        out.regions.sort_by_key(|r| r.counts.badness());
        out
    }
}

/// Puts each unreachable device under the first of its branch's down groups that it is
/// behind (a parent, or a parent's parent, that is down), or in the trailing group.
fn place_unreachable(snapshot: &Snapshot, groups: &mut Vec<OutageGroup>, unreachable: Vec<usize>) {
    let mut elsewhere = Vec::new();
    for i in unreachable {
        let root = groups
            .iter()
            .position(|g| g.parent.is_some_and(|p| is_behind(snapshot, i, p)));
        match root {
            Some(g) => groups[g].behind.push(i),
            None => elsewhere.push(i),
        }
    }
    if !elsewhere.is_empty() {
        groups.push(OutageGroup {
            parent: None,
            behind: elsewhere,
        });
    }
}

/// True when `root` is among the ancestors of device `i` through parents that are out.
fn is_behind(snapshot: &Snapshot, i: usize, root: usize) -> bool {
    let inventory = &snapshot.inventory;
    let mut stack = vec![i];
    let mut seen = vec![i];
    while let Some(d) = stack.pop() {
        for &p in inventory.parents(d) {
            let p = p as usize;
            if p == root {
                return true;
            }
            let out = matches!(snapshot.status[p].status, Status::Unreachable);
            if out && !seen.contains(&p) {
                seen.push(p);
                stack.push(p);
            }
        }
    }
    false
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::config::load::inventory_of;
    use crate::state::{Machine, State, SystemClock};

    /// Region `core` holds the router every branch of region `east` hangs from; branch
    /// e-1 has its own gateway behind it.
    fn snapshot(statuses: &[(&str, Status, i64)]) -> Arc<Snapshot> {
        let text = r#"
regions:
  - name: core
    branches:
      - name: dc
        devices:
          - { name: core, address: 127.71.0.1, kind: router }
  - name: east
    branches:
      - name: e-1
        devices:
          - { name: gw1, address: 127.71.1.1, kind: router, parents: [core] }
          - { name: a1, address: 127.71.1.2, kind: atm, parents: [gw1] }
          - { name: a2, address: 127.71.1.3, kind: atm, parents: [gw1] }
          - { name: a3, address: 127.71.1.4, kind: atm, parents: [core] }
      - name: e-2
        devices:
          - { name: b1, address: 127.71.2.1, kind: atm, parents: [core] }
          - { name: b2, address: 127.71.2.2, kind: atm }
  - name: west
    branches:
      - name: w-1
        devices:
          - { name: w1, address: 127.71.3.1, kind: atm }
"#;
        let inventory = inventory_of(text);
        let state = State::new(Arc::new(SystemClock));
        state.replace_inventory(Arc::new(inventory), |d| {
            let (status, at) = statuses
                .iter()
                .find(|(n, ..)| **n == *d.name)
                .map_or((Status::Up, 0), |&(_, s, at)| (s, at));
            let since = Utc.timestamp_opt(1_800_000_000 + at, 0).unwrap();
            Some(Machine::restored(status, Some(since)))
        });
        state.snapshot()
    }

    fn index(s: &Snapshot, name: &str) -> usize {
        s.inventory.index_of(name).unwrap()
    }

    #[test]
    fn nothing_out_is_an_empty_summary() {
        let s = snapshot(&[]);
        let o = Outages::of(&s);
        assert!(o.regions.is_empty());
        assert_eq!((o.down, o.unreachable, o.branches), (0, 0, 0));
    }

    #[test]
    fn a_branch_gateway_down_is_one_group_with_its_devices_behind_it() {
        use Status::*;
        let s = snapshot(&[
            ("gw1", Down, 10),
            ("a1", Unreachable, 11),
            ("a2", Unreachable, 11),
        ]);
        let o = Outages::of(&s);
        assert_eq!((o.down, o.unreachable, o.branches), (1, 2, 1));
        let [east] = &o.regions[..] else {
            panic!("{o:?}")
        };
        assert_eq!(east.name, "east");
        assert_eq!(
            (east.counts.down, east.counts.up, east.counts.total),
            (1, 3, 6)
        );
        let [b] = &east.branches[..] else { panic!() };
        assert_eq!((b.name, b.counts.down, b.counts.unreachable), ("e-1", 1, 2));
        assert_eq!(b.since, Some(Utc.timestamp_opt(1_800_000_010, 0).unwrap()));
        let group = OutageGroup {
            parent: Some(index(&s, "gw1")),
            behind: vec![index(&s, "a1"), index(&s, "a2")],
        };
        assert_eq!(b.groups, [group]);
    }

    #[test]
    fn the_core_down_shows_every_branch_behind_it_and_worst_first() {
        use Status::*;
        let s = snapshot(&[
            ("core", Down, 5),
            ("gw1", Unreachable, 6),
            ("a1", Unreachable, 6),
            ("a2", Unreachable, 6),
            ("a3", Unreachable, 6),
            ("b1", Unreachable, 6),
            ("b2", Down, 20),
            ("w1", Down, 1),
        ]);
        let o = Outages::of(&s);
        assert_eq!((o.down, o.unreachable, o.branches), (3, 5, 4));
        let names: Vec<_> = o.regions.iter().map(|r| r.name).collect();
        // One down each for core and west, but east has the down and the unreachable.
        assert_eq!(names, ["east", "core", "west"]);
        let east = &o.regions[0];
        let branches: Vec<_> = east.branches.iter().map(|b| b.name).collect();
        assert_eq!(branches, ["e-2", "e-1"], "e-2 has a device down");
        // e-1's devices are all behind the core, which is elsewhere: one trailing group.
        let e1 = &east.branches[1];
        let all: Vec<_> = ["gw1", "a1", "a2", "a3"]
            .iter()
            .map(|n| index(&s, n))
            .collect();
        assert_eq!(
            e1.groups,
            [OutageGroup {
                parent: None,
                behind: all
            }]
        );
        assert_eq!(e1.since, None, "nothing of its own is down");
        let e2 = &east.branches[0];
        let groups = [
            OutageGroup {
                parent: Some(index(&s, "b2")),
                behind: vec![],
            },
            OutageGroup {
                parent: None,
                behind: vec![index(&s, "b1")],
            },
        ];
        assert_eq!(e2.groups, groups);
        assert_eq!(
            east.since,
            Some(Utc.timestamp_opt(1_800_000_020, 0).unwrap())
        );
        // Every device out appears exactly once.
        let placed: usize = o
            .regions
            .iter()
            .flat_map(|r| &r.branches)
            .flat_map(|b| &b.groups)
            .map(|g| g.behind.len() + usize::from(g.parent.is_some()))
            .sum();
        assert_eq!(placed, o.down + o.unreachable);
    }

    #[test]
    fn down_devices_of_a_branch_are_longest_down_first() {
        use Status::*;
        let s = snapshot(&[("b1", Down, 30), ("b2", Down, 3)]);
        let o = Outages::of(&s);
        let parents: Vec<_> = o.regions[0].branches[0]
            .groups
            .iter()
            .map(|g| g.parent)
            .collect();
        assert_eq!(parents, [Some(index(&s, "b2")), Some(index(&s, "b1"))]);
    }
}
