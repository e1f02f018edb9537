//! What the dependency graph (`parents:`) means on a surface, read from one snapshot:
//! why a device is unreachable (the parents that are out) and how many devices are
//! unreachable behind a down one (the figure its `device_down` alert carries).
//!
//! Both are computed at read time, never stored: the count follows every transition of
//! every descendant without the store writing anything for it, and the API, the pages
//! and the feed read the same figure from the same snapshot.

use crate::config::Device;
use crate::state::{Snapshot, Status};

/// True for the statuses of a device that does not answer.
fn is_out(s: Status) -> bool {
    matches!(s, Status::Down | Status::Unreachable)
}

/// The parents of `device` that are down or unreachable, in written order: what made it
/// unreachable. Meant for unreachable devices (for others it may be empty or partial).
pub fn unreachable_because<'a>(snapshot: &'a Snapshot, device: &'a Device) -> Vec<&'a str> {
    let inventory = &snapshot.inventory;
    device
        .parents
        .iter()
        .filter(|name| {
            inventory
                .index_of(name)
                .is_some_and(|p| is_out(snapshot.status[p].status))
        })
        .map(|name| &**name)
        .collect()
}

/// Counts the `unreachable` descendants of devices of one snapshot. Keeps its visited
/// marks between calls (a generation stamp per device), so counting for every alert of
/// a page allocates once.
pub struct UnreachableBehind<'a> {
    snapshot: &'a Snapshot,
    /// Per device, the generation that last visited it.
    seen: Vec<u32>,
    generation: u32,
    stack: Vec<u32>,
}

impl<'a> UnreachableBehind<'a> {
    pub fn new(snapshot: &'a Snapshot) -> UnreachableBehind<'a> {
        UnreachableBehind {
            snapshot,
            seen: Vec::new(),
            generation: 0,
            stack: Vec::new(),
        }
    }

    /// The number of `unreachable` devices among the descendants of device `i` (children,
    /// their children, …), each counted once however many paths lead to it.
    pub fn of(&mut self, i: usize) -> usize {
        let inventory = &self.snapshot.inventory;
        if inventory.children(i).is_empty() {
            return 0;
        }
        if self.seen.len() != inventory.devices.len() {
            self.seen = vec![0; inventory.devices.len()];
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: old marks could collide with the new generation.
            self.seen.fill(0);
            self.generation = 1;
        }
        let generation = self.generation;
        self.seen[i] = generation;
        self.stack.clear();
        self.stack.extend_from_slice(inventory.children(i));
        let mut count = 0;
        while let Some(c) = self.stack.pop() {
            let c = c as usize;
            if self.seen[c] == generation {
                continue;
            }
            self.seen[c] = generation;
            if self.snapshot.status[c].status == Status::Unreachable {
                count += 1;
            }
            self.stack.extend_from_slice(inventory.children(c));
        }
        count
    }

    /// [`Self::of`] for the device named `name`; `None` if it is not in the inventory.
    pub fn of_name(&mut self, name: &str) -> Option<usize> {
        let i = self.snapshot.inventory.index_of(name)?;
        Some(self.of(i))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::config::load::inventory_of;
    use crate::state::{Machine, State, SystemClock};

    /// core → gw1 → {a, b}; core → gw2 → c; d has two parents (gw1, gw2); e stands alone.
    fn snapshot(statuses: &[(&str, Status)]) -> Arc<Snapshot> {
        let text = r#"
regions:
  - name: r
    branches:
      - name: b
        devices:
          - { name: core, address: 127.70.0.1, kind: atm }
          - { name: gw1, address: 127.70.0.2, kind: atm, parents: [core] }
          - { name: gw2, address: 127.70.0.3, kind: atm, parents: [core] }
          - { name: a, address: 127.70.0.4, kind: atm, parents: [gw1] }
          - { name: b, address: 127.70.0.5, kind: atm, parents: [gw1] }
          - { name: c, address: 127.70.0.6, kind: atm, parents: [gw2] }
          - { name: d, address: 127.70.0.7, kind: atm, parents: [gw1, gw2] }
          - { name: e, address: 127.70.0.8, kind: atm }
"#;
        let inventory = inventory_of(text);
        let state = State::new(Arc::new(SystemClock));
        let since = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        state.replace_inventory(Arc::new(inventory), |d| {
            let status = statuses
                .iter()
                .find(|(n, _)| **n == *d.name)
                .map_or(Status::Up, |&(_, s)| s);
            Some(Machine::restored(status, Some(since)))
        });
        state.snapshot()
    }

    #[test]
    fn counts_unreachable_descendants_once_each() {
        use Status::*;
        let s = snapshot(&[
            ("core", Down),
            ("gw1", Unreachable),
            ("gw2", Down),
            ("a", Unreachable),
            ("b", Up),
            ("c", Unreachable),
            ("d", Unreachable),
        ]);
        let mut behind = UnreachableBehind::new(&s);
        // gw1, a, c, d (d reached through both gateways, counted once); gw2 and b are not.
        assert_eq!(behind.of_name("core"), Some(4));
        assert_eq!(behind.of_name("gw1"), Some(2), "a and d");
        assert_eq!(behind.of_name("gw2"), Some(2), "c and d");
        assert_eq!(behind.of_name("a"), Some(0), "no children");
        assert_eq!(behind.of_name("e"), Some(0));
        assert_eq!(behind.of_name("nope"), None);
        // The marks of one call do not leak into the next.
        assert_eq!(behind.of_name("core"), Some(4));
    }

    #[test]
    fn because_names_the_parents_that_are_out_in_written_order() {
        use Status::*;
        let s = snapshot(&[("gw1", Down), ("gw2", Unreachable), ("d", Unreachable)]);
        let d = s.inventory.device("d").unwrap();
        assert_eq!(unreachable_because(&s, d), ["gw1", "gw2"]);
        let s = snapshot(&[("gw1", Down), ("d", Unreachable)]);
        let d = s.inventory.device("d").unwrap();
        assert_eq!(unreachable_because(&s, d), ["gw1"], "gw2 is up");
        let e = s.inventory.device("e").unwrap();
        assert!(unreachable_because(&s, e).is_empty());
    }
}
