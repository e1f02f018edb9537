//! The device list in another order than the cached one (`sort` other than `status`,
//! or `dir=desc`): every match collected along the name order (the list order for
//! `status`), sorted stably by the key so that ties are by name, then windowed. A sort
//! of the matches per request, which a table view can afford; the default order stays
//! the one cached per state version.

use super::{ListOrder, Selection, slot};
use crate::read_model::query::{ListQuery, SortKey};
use crate::state::Snapshot;

impl ListOrder {
    /// [`ListOrder::select`] for another `sort` or `dir`: every match is collected
    /// (along the name order, or the list order for `status`), sorted stably by the key,
    /// and windowed. Costs a sort of the matches per request, which a table view can
    /// afford; the default order stays the cached one.
    pub(super) fn select_sorted<'a>(
        &self,
        snapshot: &'a Snapshot,
        query: &ListQuery,
        offset: usize,
        limit: usize,
    ) -> Selection<'a> {
        let devices = &snapshot.inventory.devices;
        let along = if query.sort == SortKey::Status {
            &self.indexes
        } else {
            &self.by_name
        };
        let mut counts = [0; 4];
        let mut scratch = String::new();
        let mut matched: Vec<u32> = Vec::new();
        for &i in along.iter() {
            let s = self.status[i as usize];
            if query.matches(&devices[i as usize], s, &mut scratch) {
                counts[slot(s)] += 1;
                matched.push(i);
            }
        }
        match query.sort {
            SortKey::Status | SortKey::Name if query.desc => matched.reverse(),
            SortKey::Status | SortKey::Name => {}
            key => matched.sort_by(|&a, &b| {
                let (a, b) = (a as usize, b as usize);
                key.compare(
                    query.desc,
                    (&devices[a], &snapshot.status[a]),
                    (&devices[b], &snapshot.status[b]),
                )
            }),
        }
        let picked: Vec<u32> = matched.iter().skip(offset).take(limit).copied().collect();
        let rows = picked
            .iter()
            .map(|&i| {
                let i = i as usize;
                (&devices[i], &snapshot.status[i], &snapshot.runtime[i])
            })
            .collect();
        Selection::of(rows, picked, counts)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{names, probe, state};
    use super::super::{OrderCache, select};
    use crate::read_model::ListQuery;

    #[test]
    fn other_sorts_are_stable_with_ties_by_name_and_keep_the_totals() {
        let state = state(12);
        for i in 1..12 {
            probe(&state, &format!("d{i:02}"), true, 0);
        }
        for (name, at) in [("d05", 30), ("d02", 10), ("d08", 20), ("d04", 20)] {
            probe(&state, name, false, at);
        }
        let snapshot = state.snapshot();
        let cache = OrderCache::default();
        let run = |q: &str, offset, limit| {
            let q = ListQuery::parse(Some(q)).unwrap();
            let s = select(&snapshot, &q, Some(&cache), offset, limit);
            (names(&s), s.total, s.down)
        };
        let (by_name, total, down) = run("sort=name", 0, 3);
        assert_eq!(
            (by_name, total, down),
            (vec!["d00".into(), "d01".into(), "d02".into()], 12, 4)
        );
        assert_eq!(run("sort=name&dir=desc", 0, 2).0, ["d11", "d10"]);
        // Kind: atm (d00, d03, d06, d09) before router, each in name order; reversed,
        // the routers first and still in name order within a kind.
        assert_eq!(
            run("sort=kind", 0, 5).0,
            ["d00", "d03", "d06", "d09", "d01"]
        );
        assert_eq!(run("sort=kind&dir=desc", 0, 3).0, ["d01", "d02", "d04"]);
        // Addresses are 127.66.0.(i+1): numeric, not text (d09 .10 after d08 .9).
        assert_eq!(run("sort=address", 8, 2).0, ["d08", "d09"]);
        // Since: oldest outage first, d04/d08 tied at 20 by name; devices without one
        // last in both directions.
        assert_eq!(
            run("sort=since", 0, 5).0,
            ["d02", "d04", "d08", "d05", "d00"]
        );
        assert_eq!(
            run("sort=since&dir=desc", 0, 5).0,
            ["d05", "d04", "d08", "d02", "d00"]
        );
        // The default order reversed; a window of a filtered sort keeps its totals.
        assert_eq!(run("dir=desc", 0, 1).0, ["d11"]);
        let (rows, total, down) = run("status=down&sort=name", 1, 2);
        assert_eq!(
            (rows, total, down),
            (vec!["d04".into(), "d05".into()], 4, 4)
        );
    }
}
