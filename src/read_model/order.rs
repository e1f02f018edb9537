//! The device list's order and the selection of one window of it, shared by
//! `GET /api/v1/devices`, the wall (`/monitor`) and the dashboard's down list.
//!
//! The order (down first, the longest down first; then unreachable, the longest first;
//! then everything else by name) depends
//! only on the versioned status, so it is computed once per state version and cached in
//! an [`OrderCache`]; a request then filters along it and stops at its window's end when
//! the total is already known. Computing it is itself cheap after an inventory swap:
//! the name order is kept per inventory, so a new version costs one pass over the
//! statuses plus a sort of the down and unreachable devices, not a sort of the whole
//! inventory.
//!
//! Another `sort` or `dir=desc` sorts the matches per request instead (`sorted`).
//!
//! A [`ListOrder`] names the snapshot it was built from (version and inventory); the
//! cache hands out an order only for that exact snapshot, so a response built from one
//! snapshot never mixes in another version's order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::query::{ListQuery, SortKey};
use super::{Row, Totals};

mod sorted;
use crate::config::Inventory;
use crate::state::{Snapshot, Status};

/// Device indexes of one snapshot in list order, with what filtering along it needs.
pub struct ListOrder {
    version: u64,
    /// Held so that the pointer comparison in [`ListOrder::is_for`] cannot be fooled by a
    /// freed inventory's address being reused.
    inventory: Arc<Inventory>,
    /// Inventory indexes in list order.
    pub indexes: Arc<[u32]>,
    /// Inventory indexes in name order: what another `sort` sorts along, so that its
    /// ties are in name order.
    by_name: Arc<[u32]>,
    /// Status by inventory index, flat: the snapshot's persistent vector is slower to
    /// index, and a filter pass reads every entry.
    status: Box<[Status]>,
    /// Devices by status (`[up, down, unknown, unreachable]`).
    counts: [usize; 4],
    /// The snapshot's counts by status, region and kind, made by the first surface that
    /// asks for them (the dashboards, the wall) and shared by every later request of this
    /// version: they derive from the versioned status and the inventory alone.
    totals: OnceLock<Arc<Totals>>,
}

fn slot(s: Status) -> usize {
    match s {
        Status::Up => 0,
        Status::Down => 1,
        Status::Unknown => 2,
        Status::Unreachable => 3,
    }
}

impl ListOrder {
    /// The order of `snapshot`, given its inventory's name order `by_name`.
    fn build(snapshot: &Snapshot, by_name: &Arc<[u32]>) -> ListOrder {
        let status: Box<[Status]> = snapshot.status.iter().map(|s| s.status).collect();
        let mut counts = [0; 4];
        for &s in &*status {
            counts[slot(s)] += 1;
        }
        let mut indexes = Vec::with_capacity(by_name.len());
        // Down devices, then unreachable ones (the outage of each is its parent's, whose
        // own tile is among the down ones above), each group in name order and then
        // stably by start: ties keep the name order. A device without a known start
        // sorts after those with one.
        for group in [Status::Down, Status::Unreachable] {
            let start = indexes.len();
            indexes.extend(
                by_name
                    .iter()
                    .copied()
                    .filter(|&i| status[i as usize] == group),
            );
            indexes[start..].sort_by_cached_key(|&i| {
                let since = snapshot.status[i as usize].down_since;
                (since.is_none(), since)
            });
        }
        indexes.extend(by_name.iter().copied().filter(|&i| {
            let s = status[i as usize];
            s != Status::Down && s != Status::Unreachable
        }));
        ListOrder {
            version: snapshot.version,
            inventory: snapshot.inventory.clone(),
            indexes: indexes.into(),
            by_name: by_name.clone(),
            status,
            counts,
            totals: OnceLock::new(),
        }
    }

    /// The counts of `snapshot` (which this order must be for), computed once per order.
    pub fn totals(&self, snapshot: &Snapshot) -> Arc<Totals> {
        debug_assert!(self.is_for(snapshot), "an order used with another snapshot");
        self.totals
            .get_or_init(|| Arc::new(Totals::of(snapshot)))
            .clone()
    }

    /// True if this is the order of `snapshot` (same version of the same state).
    pub fn is_for(&self, snapshot: &Snapshot) -> bool {
        self.version == snapshot.version && Arc::ptr_eq(&self.inventory, &snapshot.inventory)
    }

    /// Filters `snapshot` (which this order must be for) along the order and keeps the
    /// matches from `offset` to `offset + limit`. Stops at the window's end when the
    /// total follows from the cached counts (no filter but status).
    pub fn select<'a>(
        &self,
        snapshot: &'a Snapshot,
        query: &ListQuery,
        offset: usize,
        limit: usize,
    ) -> Selection<'a> {
        debug_assert!(self.is_for(snapshot), "an order used with another snapshot");
        let devices = &snapshot.inventory.devices;
        let end = offset.saturating_add(limit);
        let wanted = |s: Status| query.statuses.is_empty() || query.statuses.contains(&s);
        let status_only = query.status_only();
        if query.sort != SortKey::Status || query.desc {
            return self.select_sorted(snapshot, query, offset, limit);
        }
        let mut counts = [0; 4];
        if status_only {
            for s in Status::ALL {
                if wanted(s) {
                    counts[slot(s)] = self.counts[slot(s)];
                }
            }
        }
        let mut rows = Vec::with_capacity(limit.min(1024));
        let mut picked = Vec::with_capacity(limit.min(1024));
        let mut matched = 0;
        let mut scratch = String::new();
        for &i in self.indexes.iter() {
            if status_only && matched >= end {
                break;
            }
            let i = i as usize;
            let s = self.status[i];
            if !query.matches(&devices[i], s, &mut scratch) {
                continue;
            }
            if !status_only {
                counts[slot(s)] += 1;
            }
            if matched >= offset && matched < end {
                rows.push((&devices[i], &snapshot.status[i], &snapshot.runtime[i]));
                picked.push(i as u32);
            }
            matched += 1;
        }
        Selection::of(rows, picked, counts)
    }
}

/// One window of the devices that pass a query, with the totals of all of them.
pub struct Selection<'a> {
    /// The window, in list order.
    pub rows: Vec<Row<'a>>,
    /// The inventory index of each row.
    pub indexes: Vec<u32>,
    /// Matches before paging, and of them by status.
    pub total: usize,
    pub up: usize,
    pub down: usize,
    pub unknown: usize,
    pub unreachable: usize,
}

impl<'a> Selection<'a> {
    /// A window and the matches by status, counted in [`slot`] order.
    fn of(rows: Vec<Row<'a>>, indexes: Vec<u32>, counts: [usize; 4]) -> Selection<'a> {
        debug_assert_eq!(rows.len(), indexes.len());
        Selection {
            rows,
            indexes,
            total: counts.iter().sum(),
            up: counts[0],
            down: counts[1],
            unknown: counts[2],
            unreachable: counts[3],
        }
    }
}

/// An inventory and its device indexes sorted by name.
type NameOrder = (Arc<Inventory>, Arc<[u32]>);

/// The list order of the newest version read so far, and the name order of its
/// inventory. One per state (the web context owns it).
#[derive(Default)]
pub struct OrderCache {
    by_name: Mutex<Option<NameOrder>>,
    current: Mutex<Option<Arc<ListOrder>>>,
    /// Orders built (misses), for tests and the bench.
    builds: AtomicU64,
}

impl OrderCache {
    /// The order of `snapshot`: cached when it is the newest version seen, built (and
    /// cached unless an even newer one is) otherwise. Locks are held only to clone an
    /// `Arc`, never while building.
    pub fn get(&self, snapshot: &Snapshot) -> Arc<ListOrder> {
        if let Some(order) = &*self.current.lock()
            && order.is_for(snapshot)
        {
            return order.clone();
        }
        let by_name = self.by_name(&snapshot.inventory);
        let built = Arc::new(ListOrder::build(snapshot, &by_name));
        self.builds.fetch_add(1, Ordering::Relaxed);
        let mut current = self.current.lock();
        // A request still holding an older snapshot must not evict the newer order.
        if current.as_ref().is_none_or(|o| o.version <= built.version) {
            *current = Some(built.clone());
        }
        built
    }

    /// The counts of `snapshot` by status, region and kind, from its order's cache:
    /// computed once per (state version, inventory) and shared.
    pub fn totals(&self, snapshot: &Snapshot) -> Arc<Totals> {
        self.get(snapshot).totals(snapshot)
    }

    /// Orders built so far (cache misses).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    fn by_name(&self, inventory: &Arc<Inventory>) -> Arc<[u32]> {
        if let Some((inv, order)) = &*self.by_name.lock()
            && Arc::ptr_eq(inv, inventory)
        {
            return order.clone();
        }
        let order = name_order(inventory);
        *self.by_name.lock() = Some((inventory.clone(), order.clone()));
        order
    }
}

fn name_order(inventory: &Inventory) -> Arc<[u32]> {
    let devices = &inventory.devices;
    let mut order: Vec<u32> = (0..devices.len() as u32).collect();
    // Names are unique: an unstable sort gives the one order.
    order.sort_unstable_by(|&a, &b| devices[a as usize].name.cmp(&devices[b as usize].name));
    order.into()
}

/// One window of `snapshot`'s devices that pass `query`, with the order from `cache`
/// (or computed for this request only, without one).
pub fn select<'a>(
    snapshot: &'a Snapshot,
    query: &ListQuery,
    cache: Option<&OrderCache>,
    offset: usize,
    limit: usize,
) -> Selection<'a> {
    let order = match cache {
        Some(cache) => cache.get(snapshot),
        None => Arc::new(ListOrder::build(snapshot, &name_order(&snapshot.inventory))),
    };
    order.select(snapshot, query, offset, limit)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::config::load::inventory_of;
    use crate::probe::ProbeOutcome;
    use crate::state::{State, SystemClock};

    pub(super) fn state(n: usize) -> State {
        let mut text = String::from(
            "regions:\n  - name: r\n    probe: { down_after: 1, up_after: 1 }\n    branches:\n      - name: b\n        devices:\n",
        );
        // Inventory order differs from name order.
        for i in (0..n).rev() {
            let kind = if i % 3 == 0 { "atm" } else { "router" };
            text.push_str(&format!(
                "          - {{ name: d{i:02}, address: 127.66.0.{}, kind: {kind} }}\n",
                i + 1
            ));
        }
        let state = State::new(Arc::new(SystemClock));
        state.replace_inventory(Arc::new(inventory_of(&text)), |_| None);
        state
    }

    pub(super) fn probe(state: &State, name: &str, ok: bool, at: i64) {
        let snapshot = state.snapshot();
        let (d, _, rt) = snapshot.device(name).unwrap();
        let outcome = ProbeOutcome {
            sent: 1,
            received: u32::from(ok),
            rtt: ok.then_some(Duration::from_micros(500)),
        };
        state.record_probe(
            d,
            rt,
            &outcome,
            Utc.timestamp_opt(1_800_000_000 + at, 0).unwrap(),
        );
    }

    pub(super) fn names(s: &Selection) -> Vec<String> {
        s.rows.iter().map(|(d, _, _)| d.name.to_string()).collect()
    }

    #[test]
    fn down_first_oldest_first_then_by_name_with_windows_and_filters() {
        let state = state(12);
        for i in 0..12 {
            // d05 goes down last, d02 first; d08 and d04 at the same instant; d00 stays unknown.
            if i > 0 {
                probe(&state, &format!("d{i:02}"), true, 0);
            }
        }
        for (name, at) in [("d05", 30), ("d02", 10), ("d08", 20), ("d04", 20)] {
            probe(&state, name, false, at);
        }
        let snapshot = state.snapshot();
        let cache = OrderCache::default();
        let all = select(
            &snapshot,
            &ListQuery::default(),
            Some(&cache),
            0,
            usize::MAX,
        );
        assert_eq!(
            names(&all),
            [
                "d02", "d04", "d08", "d05", "d00", "d01", "d03", "d06", "d07", "d09", "d10", "d11"
            ]
        );
        assert_eq!((all.total, all.up, all.down, all.unknown), (12, 7, 4, 1));

        let window = select(&snapshot, &ListQuery::default(), Some(&cache), 3, 2);
        assert_eq!(names(&window), ["d05", "d00"]);
        assert_eq!(
            window.total, 12,
            "the total counts every match, not the window"
        );

        let q = ListQuery::parse(Some("status=down,unknown&limit=2")).unwrap();
        let s = select(&snapshot, &q, Some(&cache), 0, 2);
        assert_eq!(
            (names(&s), s.total, s.down, s.unknown, s.up),
            (vec!["d02".into(), "d04".into()], 5, 4, 1, 0)
        );

        let q = ListQuery::parse(Some("kind=atm")).unwrap();
        let s = select(&snapshot, &q, Some(&cache), 1, 10);
        assert_eq!(names(&s), ["d03", "d06", "d09"], "from offset 1");
        assert_eq!((s.total, s.up, s.unknown), (4, 3, 1));

        assert_eq!(
            names(&select(&snapshot, &ListQuery::default(), None, 0, 4)),
            names(&window_of(&all, 4))
        );
        assert_eq!(cache.builds(), 1, "one version, one order");
    }

    fn window_of<'a>(s: &Selection<'a>, n: usize) -> Selection<'a> {
        Selection {
            rows: s.rows[..n].to_vec(),
            indexes: s.indexes[..n].to_vec(),
            total: s.total,
            up: s.up,
            down: s.down,
            unknown: s.unknown,
            unreachable: s.unreachable,
        }
    }

    #[test]
    fn kept_totals_are_those_of_their_version_and_the_next_version_counts_again() {
        let state = state(6);
        for i in 0..6 {
            probe(&state, &format!("d{i:02}"), true, 0);
        }
        let cache = OrderCache::default();
        let old = state.snapshot();
        let kept = cache.totals(&old);
        assert_eq!(*kept, Totals::of(&old));
        assert_eq!((kept.all.up, kept.all.down), (6, 0));
        assert!(
            Arc::ptr_eq(&kept, &cache.totals(&old)),
            "one computation per version, shared"
        );

        probe(&state, "d03", false, 5);
        let new = state.snapshot();
        assert!(new.version > old.version);
        let next = cache.totals(&new);
        assert_eq!(
            *next,
            Totals::of(&new),
            "the new version's, not the kept one"
        );
        assert_eq!((next.all.up, next.all.down), (5, 1));
        let atm = next.by_kind.iter().find(|(k, _)| &**k == "atm").unwrap().1;
        assert_eq!((atm.up, atm.down), (1, 1), "d00 and d03 are the atms");
        assert_eq!(next.by_region[0].1.down, 1);
        // A request still holding the old snapshot reads the old version's figures.
        assert_eq!(cache.totals(&old).all.down, 0);
    }

    #[test]
    fn the_cache_serves_an_order_only_for_its_own_version() {
        let state = state(4);
        for i in 0..4 {
            probe(&state, &format!("d{i:02}"), true, 0);
        }
        let cache = OrderCache::default();
        let old = state.snapshot();
        assert_eq!(
            names(&select(&old, &ListQuery::default(), Some(&cache), 0, 1)),
            ["d00"]
        );
        probe(&state, "d03", false, 5);
        let new = state.snapshot();
        assert_eq!(
            names(&select(&new, &ListQuery::default(), Some(&cache), 0, 1)),
            ["d03"]
        );
        assert_eq!(cache.builds(), 2);
        // A request still holding the old snapshot gets the old order, built for it, and
        // does not evict the newer one.
        assert_eq!(
            names(&select(&old, &ListQuery::default(), Some(&cache), 0, 1)),
            ["d00"]
        );
        assert_eq!(
            names(&select(&new, &ListQuery::default(), Some(&cache), 0, 1)),
            ["d03"]
        );
        assert_eq!(cache.builds(), 3);
        // A new inventory with the same version number elsewhere is not this order.
        let other = super::tests::state(4);
        assert!(!cache.get(&new).is_for(&other.snapshot()));
    }
}
