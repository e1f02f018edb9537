//! The validated device inventory: regions → branches → devices, immutable once built.
//!
//! A device's region and branch come from where it stands in the YAML, never from its
//! name or address. An [`Inventory`] is shared as `Arc<Inventory>`; a reload builds a
//! new one beside it and swaps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::graph::Graph;
use super::probe::ProbeSettings;
use super::snmp::DeviceSnmp;
use crate::maintenance::Windows;

/// One monitored device, with everything resolved (probe settings cascaded).
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub name: Arc<str>,
    pub address: IpAddr,
    pub region: Arc<str>,
    pub branch: Arc<str>,
    pub kind: Arc<str>,
    pub labels: Labels,
    pub probe: ProbeSettings,
    /// The devices this one depends on (`parents:`, cascaded device → branch → region,
    /// never itself), in written order; [`Inventory::parents`] has them as indexes.
    pub parents: Box<[Arc<str>]>,
    /// The maintenance windows that cover it: its region's, its branch's and its own.
    pub maintenance: Windows,
    /// Its SNMP polling of ISP uplinks, when it carries `snmp:` or `uplinks:`.
    pub snmp: Option<Arc<DeviceSnmp>>,
}

impl Device {
    /// The names a silence's matchers are compared with.
    pub fn silence_names(&self) -> crate::maintenance::silence::Names<'_> {
        crate::maintenance::silence::Names {
            region: &self.region,
            branch: &self.branch,
            device: &self.name,
            kind: &self.kind,
        }
    }
}

/// A device's labels, sorted by key. Compact on purpose: a `BTreeMap` costs ~1 KiB per
/// device even for two labels, and the strings repeat across thousands of devices, so
/// they are shared (interned when the inventory is built).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Box<[Pair]>);

impl Labels {
    /// Labels from key/value pairs; a later duplicate key replaces an earlier one.
    pub fn new(pairs: impl IntoIterator<Item = Pair>) -> Self {
        let mut v: Vec<Pair> = pairs.into_iter().collect();
        // Reversed, then sorted stably: of equal keys the last written comes first, and
        // dedup keeps the first of each run.
        v.reverse();
        v.sort_by(|(a, _), (b, _)| a.cmp(b));
        v.dedup_by(|(a, _), (b, _)| a == b);
        Self(v.into_boxed_slice())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.into_iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

type Pair = (Arc<str>, Arc<str>);

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, Pair>, fn(&'a Pair) -> (&'a str, &'a str)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }
}

impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// A branch (site) and its optional coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub name: Arc<str>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Indexes into [`Inventory::devices`].
    pub devices: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub name: Arc<str>,
    pub branches: Vec<Branch>,
}

/// The hasher for the inventory's own names and addresses: fast, and not exposed to
/// flooding, as they come from a reviewed repository, not from the network.
pub type FastHash = foldhash::fast::RandomState;

/// The whole inventory. Devices are kept in the order they are written.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub devices: Vec<Arc<Device>>,
    pub regions: Vec<Region>,
    /// Hash of the files' names and contents: a reload with the same hash changes nothing.
    pub hash: String,
    by_name: HashMap<Arc<str>, usize, FastHash>,
    graph: Graph,
}

impl Inventory {
    pub fn new(devices: Vec<Arc<Device>>, regions: Vec<Region>, hash: String) -> Self {
        let part = Self::part(devices, regions, hash);
        let graph = Graph::build(&part.devices, |name| part.by_name.get(name).copied());
        Self { graph, ..part }
    }

    /// A piece of an inventory (one file of several, on a reload): devices, regions and
    /// names, but no dependency graph (its parents may be in the other pieces), so
    /// [`Self::parents`] and [`Self::children`] are empty. Only [`Self::new`] over the
    /// whole makes an inventory to run.
    pub fn part(devices: Vec<Arc<Device>>, regions: Vec<Region>, hash: String) -> Self {
        let by_name = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), i))
            .collect::<HashMap<_, _, FastHash>>();
        Self {
            devices,
            regions,
            hash,
            by_name,
            graph: Graph::default(),
        }
    }

    /// The same inventory under another hash (the graph is not rebuilt).
    pub fn with_hash(self, hash: String) -> Self {
        Self { hash, ..self }
    }

    /// Indexes of the parents of device `i`, in written order.
    pub fn parents(&self, i: usize) -> &[u32] {
        self.graph.parents(i)
    }

    /// Indexes of the devices that name device `i` as a parent, in inventory order.
    pub fn children(&self, i: usize) -> &[u32] {
        self.graph.children(i)
    }

    /// The resolved dependency graph (its checks are the loader's).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Index of the device called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn device(&self, name: &str) -> Option<&Arc<Device>> {
        self.index_of(name).map(|i| &self.devices[i])
    }

    pub fn branch_count(&self) -> usize {
        self.regions.iter().map(|r| r.branches.len()).sum()
    }

    /// "12 devices in 4 branches of 2 regions".
    pub fn summary(&self) -> String {
        let polled = self.devices.iter().filter(|d| d.snmp.is_some()).count();
        let snmp = match polled {
            0 => String::new(),
            n => format!(", {n} with ISP uplinks polled over SNMP"),
        };
        format!(
            "{} devices in {} branches of {} regions{snmp}",
            self.devices.len(),
            self.branch_count(),
            self.regions.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_by_key_and_a_later_duplicate_wins() {
        let pair = |k: &str, v: &str| (Arc::from(k), Arc::from(v));
        let labels = Labels::new([
            pair("tier", "1"),
            pair("isp", "a"),
            pair("tier", "2"),
            pair("floor", "3"),
        ]);
        let all: Vec<_> = labels.iter().collect();
        assert_eq!(all, [("floor", "3"), ("isp", "a"), ("tier", "2")]);
        assert_eq!(labels.get("tier"), Some("2"));
        assert_eq!(labels.get("rack"), None);
    }
}
