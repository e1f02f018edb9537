//! The dependency graph of an inventory: each device's parents and children as indexes
//! into its devices, resolved once from the names when the inventory is built.
//!
//! Stored as two compressed adjacency lists (one offset per device, one `u32` per edge),
//! so 100,000 devices with a parent each cost under 2 MB and a lookup is two reads.
//! Resolution is lenient (a name that names no device has no edge): the checks that
//! make such a name an error, with its place, are the loader's (`load/build`), which
//! uses [`Graph::unresolved`] and [`Graph::cycles`].

use std::sync::Arc;

use super::inventory::Device;

/// Parents and children by device index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    parents: Adjacency,
    children: Adjacency,
    unresolved: usize,
}

/// Edges of device `i`: `edges[start[i]..start[i + 1]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Adjacency {
    start: Box<[u32]>,
    edges: Box<[u32]>,
}

impl Adjacency {
    fn of(&self, i: usize) -> &[u32] {
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.edges[a as usize..b as usize],
            _ => &[],
        }
    }
}

impl Graph {
    /// The graph of `devices`, each parent name looked up with `index_of`; a name that
    /// is not found adds no edge, nor does a second mention of one parent in a list.
    pub fn build(devices: &[Arc<Device>], index_of: impl Fn(&str) -> Option<usize>) -> Self {
        let mut start = Vec::with_capacity(devices.len() + 1);
        let mut edges = Vec::new();
        let mut unresolved = 0;
        let mut children_count = vec![0u32; devices.len()];
        // The devices of a branch share their parents' names (one `Arc` each), so runs of
        // the same name are looked up once: a pointer compare instead of a hash.
        let mut last: Option<(&Arc<str>, Option<usize>)> = None;
        for device in devices {
            start.push(edges.len() as u32);
            let first = edges.len();
            for name in &device.parents {
                let found = match last {
                    Some((n, found)) if Arc::ptr_eq(n, name) => found,
                    _ => {
                        let found = index_of(name);
                        last = Some((name, found));
                        found
                    }
                };
                match found {
                    Some(p) if !edges[first..].contains(&(p as u32)) => {
                        edges.push(p as u32);
                        children_count[p] += 1;
                    }
                    Some(_) => {}
                    None => unresolved += 1,
                }
            }
        }
        start.push(edges.len() as u32);
        // Children: a counting sort of the edges by parent, children in index order.
        let mut child_start = Vec::with_capacity(devices.len() + 1);
        let mut total = 0u32;
        for &count in &children_count {
            child_start.push(total);
            total += count;
        }
        child_start.push(total);
        let mut child_edges = vec![0u32; total as usize];
        let mut next: Vec<u32> = child_start[..devices.len()].to_vec();
        for child in 0..devices.len() {
            for &p in &edges[start[child] as usize..start[child + 1] as usize] {
                child_edges[next[p as usize] as usize] = child as u32;
                next[p as usize] += 1;
            }
        }
        Self {
            parents: Adjacency {
                start: start.into(),
                edges: edges.into(),
            },
            children: Adjacency {
                start: child_start.into(),
                edges: child_edges.into(),
            },
            unresolved,
        }
    }

    /// The parents of device `i`, in written order (empty for an index out of range).
    pub fn parents(&self, i: usize) -> &[u32] {
        self.parents.of(i)
    }

    /// The devices that name `i` as a parent, in inventory order.
    pub fn children(&self, i: usize) -> &[u32] {
        self.children.of(i)
    }

    /// How many parent names named no device.
    pub fn unresolved(&self) -> usize {
        self.unresolved
    }

    /// Cycles among the parents: for each back edge of a depth-first walk (devices in
    /// order, parents in written order), the members from the one named back to the
    /// one that names it, e.g. `[a, b, c]` for `a -> b -> c -> a`. Empty when the
    /// graph has none, which a loaded inventory never has. Iterative: a chain of
    /// 100,000 parents is no deeper for it than one of two.
    pub fn cycles(&self) -> Vec<Vec<u32>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let n = self.parents.start.len().saturating_sub(1);
        let mut mark = vec![Mark::New; n];
        let mut cycles = Vec::new();
        // The path being walked: (device, index of the next parent to look at).
        let mut path: Vec<(u32, usize)> = Vec::new();
        for root in 0..n {
            if mark[root] != Mark::New {
                continue;
            }
            mark[root] = Mark::OnPath;
            path.push((root as u32, 0));
            while let Some(&mut (device, ref mut next)) = path.last_mut() {
                let parents = self.parents(device as usize);
                let Some(&parent) = parents.get(*next) else {
                    mark[device as usize] = Mark::Done;
                    path.pop();
                    continue;
                };
                *next += 1;
                match mark[parent as usize] {
                    Mark::New => {
                        mark[parent as usize] = Mark::OnPath;
                        path.push((parent, 0));
                    }
                    Mark::OnPath => {
                        let from = path
                            .iter()
                            .position(|&(d, _)| d == parent)
                            .expect("a device marked on the path is on it");
                        cycles.push(path[from..].iter().map(|&(d, _)| d).collect());
                    }
                    Mark::Done => {}
                }
            }
        }
        cycles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(parents: &[&[&str]]) -> Vec<Arc<Device>> {
        parents
            .iter()
            .enumerate()
            .map(|(i, names)| {
                Arc::new(Device {
                    name: format!("d{i}").into(),
                    address: [127, 0, 0, 1].into(),
                    region: "r".into(),
                    branch: "b".into(),
                    kind: "atm".into(),
                    labels: Default::default(),
                    probe: Default::default(),
                    parents: names.iter().map(|n| Arc::from(*n)).collect(),
                    maintenance: Default::default(),
                    snmp: None,
                })
            })
            .collect()
    }

    fn graph(parents: &[&[&str]]) -> Graph {
        let devices = devices(parents);
        Graph::build(&devices, |name| {
            name.strip_prefix('d')?
                .parse()
                .ok()
                .filter(|&i| i < devices.len())
        })
    }

    #[test]
    fn parents_and_children_are_resolved_both_ways() {
        // d0 core; d1 gateway behind d0; d2, d3 behind d1; d3 also behind d0.
        let g = graph(&[&[], &["d0"], &["d1"], &["d1", "d0"]]);
        assert_eq!(g.parents(3), [1, 0], "in written order");
        assert_eq!(g.children(0), [1, 3]);
        assert_eq!(g.children(1), [2, 3]);
        assert_eq!(g.children(2), [] as [u32; 0]);
        assert_eq!(g.parents(99), [] as [u32; 0], "out of range is empty");
        assert_eq!(g.unresolved(), 0);
        assert!(g.cycles().is_empty());
    }

    #[test]
    fn a_name_shared_by_consecutive_devices_is_looked_up_once() {
        // A branch: its router, then devices that all hold the same `Arc` of its name
        // (as the loader gives them an inherited list); then one naming it on its own.
        let router: Arc<str> = Arc::from("d0");
        let mut devices = devices(&[&[], &[], &[], &[], &["d0"]]);
        for d in &mut devices[1..4] {
            Arc::get_mut(d).unwrap().parents = vec![router.clone()].into();
        }
        let lookups = std::cell::Cell::new(0);
        let g = Graph::build(&devices, |name| {
            lookups.set(lookups.get() + 1);
            (name == "d0").then_some(0)
        });
        assert_eq!(g.children(0), [1, 2, 3, 4]);
        assert_eq!(
            lookups.get(),
            2,
            "one for the shared name, one for the other copy"
        );
    }

    #[test]
    fn an_unknown_name_has_no_edge_and_is_counted() {
        let g = graph(&[&["nowhere"], &["d0", "d7"]]);
        assert_eq!(g.parents(0), [] as [u32; 0]);
        assert_eq!(g.parents(1), [0]);
        assert_eq!(g.unresolved(), 2);
    }

    #[test]
    fn cycles_name_their_members_in_order() {
        let g = graph(&[&["d1"], &["d2"], &["d0"], &["d3"], &[]]);
        assert_eq!(g.cycles(), vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn a_long_chain_is_walked_without_recursion() {
        let names: Vec<String> = (0..200_000).map(|i| format!("d{}", i + 1)).collect();
        let mut lists: Vec<Vec<&str>> = names.iter().map(|n| vec![n.as_str()]).collect();
        lists.last_mut().unwrap().clear();
        let refs: Vec<&[&str]> = lists.iter().map(|l| l.as_slice()).collect();
        let g = graph(&refs);
        assert!(g.cycles().is_empty());
        lists.last_mut().unwrap().push("d0");
        let refs: Vec<&[&str]> = lists.iter().map(|l| l.as_slice()).collect();
        assert_eq!(graph(&refs).cycles()[0].len(), 200_000);
    }
}
