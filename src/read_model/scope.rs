//! Region scope: the one way a surface narrows what it shows to a principal's regions.
//!
//! A scoped principal reads a [`View`]: a [`Snapshot`] of the same version that holds only
//! the devices of its regions, as if the inventory had only those. Every read model that
//! takes a snapshot (the list and its order, counts, outages, the dashboard, maintenance
//! counts, dependencies) therefore cannot tell an out-of-scope device exists, so pages and
//! JSON cannot disagree, and no out-of-scope name can leak through a field a surface
//! forgets to filter: a device's `parents` outside the scope are dropped from it (its
//! status stays `unreachable`, but the parent is not named).
//!
//! Cost: [`Scope::all`] is the fast path, the snapshot itself (an `Arc` clone, no
//! per-request work). For a limited scope the filtered inventory (names, graph, regions)
//! is built once per (inventory, scope) and cached in [`ScopedViews`]; a request then
//! copies only the statuses and runtime handles of its devices, and the list order is
//! cached per scope like the global one.

use std::sync::Arc;

use parking_lot::Mutex;

use super::OrderCache;
use crate::access::Scope;
use crate::config::{Branch, Device, Inventory, Region};
use crate::state::Snapshot;

/// Distinct (inventory, scope) pairs kept: a deployment has a handful of region lists;
/// past this the oldest is rebuilt when asked again.
const KEPT: usize = 32;

/// What one scope sees of one inventory.
pub struct Entry {
    base: Arc<Inventory>,
    scope: Scope,
    inventory: Arc<Inventory>,
    /// The base index of each scoped device, in scoped order.
    indexes: Box<[u32]>,
    /// The scoped list's order per version (its inventory is this entry's).
    order: Arc<OrderCache>,
}

/// The scoped inventories built so far. One per state (the context owns it).
#[derive(Default)]
pub struct ScopedViews {
    entries: Mutex<Vec<Arc<Entry>>>,
}

/// A snapshot as one principal sees it, and the list order to read it with.
pub struct View {
    pub snapshot: Arc<Snapshot>,
    scope: Scope,
    entry: Option<Arc<Entry>>,
}

impl View {
    /// The order cache for this view's snapshot: the global one when unscoped.
    pub fn order<'a>(&'a self, global: &'a OrderCache) -> &'a OrderCache {
        self.entry.as_ref().map_or(global, |e| &e.order)
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// True if a device of `region` is in this view.
    pub fn allows(&self, region: &str) -> bool {
        self.scope.allows(region)
    }
}

impl ScopedViews {
    /// The order cache of a scoped snapshot this made, or None for any other (the
    /// global cache serves those): so a page handed a snapshot can find its order.
    pub fn order_for(&self, snapshot: &Snapshot) -> Option<Arc<OrderCache>> {
        self.entries
            .lock()
            .iter()
            .find(|e| Arc::ptr_eq(&e.inventory, &snapshot.inventory))
            .map(|e| e.order.clone())
    }

    /// The scope a snapshot this made was narrowed to; all for any other.
    pub fn scope_of(&self, snapshot: &Snapshot) -> Scope {
        self.entries
            .lock()
            .iter()
            .find(|e| Arc::ptr_eq(&e.inventory, &snapshot.inventory))
            .map_or_else(Scope::all, |e| e.scope.clone())
    }

    /// `snapshot` as `scope` sees it.
    pub fn view(&self, snapshot: Arc<Snapshot>, scope: &Scope) -> View {
        if scope.is_all() {
            return View {
                snapshot,
                scope: Scope::all(),
                entry: None,
            };
        }
        let entry = self.entry(&snapshot.inventory, scope);
        let scoped = Snapshot {
            version: snapshot.version,
            inventory: entry.inventory.clone(),
            status: entry
                .indexes
                .iter()
                .map(|&i| snapshot.status[i as usize])
                .collect(),
            runtime: entry
                .indexes
                .iter()
                .map(|&i| snapshot.runtime[i as usize].clone())
                .collect(),
            // By name: a scoped reader looks up only its own devices.
            uplinks: snapshot.uplinks.clone(),
        };
        View {
            snapshot: Arc::new(scoped),
            scope: scope.clone(),
            entry: Some(entry),
        }
    }

    fn entry(&self, base: &Arc<Inventory>, scope: &Scope) -> Arc<Entry> {
        if let Some(e) = self
            .entries
            .lock()
            .iter()
            .find(|e| Arc::ptr_eq(&e.base, base) && &e.scope == scope)
        {
            return e.clone();
        }
        // Built outside the lock: another request may build the same one meanwhile,
        // which costs a build, never a wrong answer.
        let (inventory, indexes) = narrow(base, scope);
        let entry = Arc::new(Entry {
            base: base.clone(),
            scope: scope.clone(),
            inventory: Arc::new(inventory),
            indexes,
            order: Arc::default(),
        });
        let mut entries = self.entries.lock();
        // Entries of a replaced inventory go first; then the oldest.
        entries.retain(|e| Arc::ptr_eq(&e.base, base));
        if entries.len() >= KEPT {
            entries.remove(0);
        }
        entries.push(entry.clone());
        entry
    }
}

/// The inventory of `base` that `scope` sees, and the base index of each of its devices.
pub fn narrow(base: &Inventory, scope: &Scope) -> (Inventory, Box<[u32]>) {
    let in_scope = |name: &str| base.device(name).is_some_and(|d| scope.allows(&d.region));
    let mut indexes = Vec::new();
    let mut new_index = vec![u32::MAX; base.devices.len()];
    let mut devices = Vec::new();
    for (i, d) in base.devices.iter().enumerate() {
        if !scope.allows(&d.region) {
            continue;
        }
        new_index[i] = devices.len() as u32;
        indexes.push(i as u32);
        if d.parents.iter().all(|p| in_scope(p)) {
            devices.push(d.clone());
        } else {
            // A parent in another region is not named to this scope.
            let mut own = Device::clone(d);
            own.parents = d.parents.iter().filter(|p| in_scope(p)).cloned().collect();
            devices.push(Arc::new(own));
        }
    }
    let regions = base
        .regions
        .iter()
        .filter(|r| scope.allows(&r.name))
        .map(|r| Region {
            name: r.name.clone(),
            branches: r
                .branches
                .iter()
                .map(|b| Branch {
                    name: b.name.clone(),
                    lat: b.lat,
                    lon: b.lon,
                    devices: b
                        .devices
                        .iter()
                        .map(|&i| new_index[i] as usize)
                        .filter(|&i| i != u32::MAX as usize)
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let inventory = Inventory::new(devices, regions, base.hash.clone());
    (inventory, indexes.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::inventory_of;
    use crate::state::{State, SystemClock};

    pub(crate) const TWO_REGIONS: &str = "regions:
  - name: east
    branches:
      - name: e1
        devices:
          - { name: east-core, address: 127.70.0.1, kind: router }
  - name: west
    branches:
      - name: w1
        devices:
          - { name: west-router, address: 127.70.1.1, kind: router, parents: [east-core] }
          - { name: west-atm, address: 127.70.1.2, kind: atm, parents: [west-router] }
";

    fn state() -> State {
        let state = State::new(Arc::new(SystemClock));
        state.replace_inventory(Arc::new(inventory_of(TWO_REGIONS)), |_| None);
        state
    }

    #[test]
    fn all_is_the_snapshot_itself() {
        let state = state();
        let views = ScopedViews::default();
        let snap = state.snapshot();
        let view = views.view(snap.clone(), &Scope::all());
        assert!(Arc::ptr_eq(&view.snapshot, &snap));
        assert!(views.entries.lock().is_empty(), "no work for the fast path");
    }

    #[test]
    fn a_scope_sees_only_its_regions_and_no_parent_outside() {
        let state = state();
        let views = ScopedViews::default();
        let snap = state.snapshot();
        let view = views.view(snap.clone(), &Scope::regions(["west"]));
        let inv = &view.snapshot.inventory;
        let names: Vec<_> = inv.devices.iter().map(|d| &*d.name).collect();
        assert_eq!(names, ["west-router", "west-atm"]);
        assert!(inv.device("west-router").unwrap().parents.is_empty());
        assert_eq!(
            &*inv.device("west-atm").unwrap().parents,
            [Arc::from("west-router")]
        );
        assert_eq!(inv.regions.len(), 1);
        assert_eq!(inv.regions[0].branches[0].devices, [0, 1]);
        assert_eq!(view.snapshot.version, snap.version);
        assert_eq!(view.snapshot.status.len(), 2);
        // The parent graph is the scoped one: west-atm's parent is index 0.
        assert_eq!(inv.parents(1), [0]);
        // Built once per (inventory, scope).
        let again = views.view(snap, &Scope::regions(["west"]));
        assert!(Arc::ptr_eq(&again.snapshot.inventory, inv));
        let none = views.view(state.snapshot(), &Scope::regions(Vec::<String>::new()));
        assert!(none.snapshot.inventory.devices.is_empty());
    }

    /// 10,000 devices in 10 regions: the first scoped view builds the narrowed
    /// inventory, later ones of the same inventory only copy the scope's statuses.
    /// Prints the figures (`--nocapture`); asserts only what cannot be flaky.
    #[test]
    fn a_scoped_view_of_ten_thousand_devices() {
        let mut text = String::from("regions:\n");
        for r in 0..10 {
            text.push_str(&format!(
                "  - name: r{r}\n    branches:\n      - name: b{r}\n        devices:\n"
            ));
            for d in 0..1000 {
                text.push_str(&format!(
                    "          - {{ name: d{r}-{d}, address: 127.72.{}.{}, kind: atm }}\n",
                    r * 4 + d / 250,
                    d % 250 + 1
                ));
            }
        }
        let state = State::new(Arc::new(SystemClock));
        state.replace_inventory(Arc::new(inventory_of(&text)), |_| None);
        let views = ScopedViews::default();
        let scope = Scope::regions(["r3"]);
        let t = std::time::Instant::now();
        let first = views.view(state.snapshot(), &scope);
        let built = t.elapsed();
        let t = std::time::Instant::now();
        for _ in 0..100 {
            let v = views.view(state.snapshot(), &scope);
            assert!(Arc::ptr_eq(
                &v.snapshot.inventory,
                &first.snapshot.inventory
            ));
        }
        let cached = t.elapsed() / 100;
        let t = std::time::Instant::now();
        for _ in 0..100 {
            let _ = views.view(state.snapshot(), &Scope::all());
        }
        let all = t.elapsed() / 100;
        eprintln!(
            "10k devices, 1k in scope: first view {built:?}, later views {cached:?}, all {all:?}"
        );
        assert_eq!(first.snapshot.inventory.devices.len(), 1000);
        assert_eq!(views.entries.lock().len(), 1);
    }
}
