//! Per-file parse results, so that a reload re-parses only the files that changed.
//!
//! Parsing dominates a reload: ~2 s of CPU for 100,000 devices, against a target of
//! one second from write to applied. A commit touches a few files, so each file is
//! built on its own (every check that stays within a file), kept while its text is
//! unchanged, and the files are then merged with the checks that span files:
//! duplicate region names, device names and addresses, and the parents graph (rebuilt
//! from the names on every merge: a parent may be in any file). Whenever anything is invalid
//! the caller runs the full build instead, so errors read exactly as `wardops check`
//! prints them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::inventory::FastHash;
use crate::config::load::{self, Source};
use crate::config::{Inventory, ProbeSettings, Region};

/// One valid file, as last read.
struct Cached {
    text: String,
    inventory: Arc<Inventory>,
}

#[derive(Default)]
pub struct FileCache {
    files: HashMap<PathBuf, Cached>,
}

impl FileCache {
    /// The inventory of `sources`, or None if a file is invalid, the files conflict, or
    /// (without `allow_empty`) there are no devices. Unchanged files are not re-parsed;
    /// changed ones are parsed in parallel, each reusing the unchanged devices of
    /// `running` (the inventory the candidate will be compared with and replace).
    pub fn build(
        &mut self,
        sources: &[Source],
        defaults: &ProbeSettings,
        allow_empty: bool,
        running: Option<&Inventory>,
    ) -> Option<Inventory> {
        let stale: Vec<&Source> = sources
            .iter()
            .filter(|s| self.files.get(&s.path).is_none_or(|c| c.text != s.text))
            .collect();
        let parsed = parse_all(&stale, defaults, &self.files, running);
        let keep: HashSet<&PathBuf> = sources.iter().map(|s| &s.path).collect();
        self.files.retain(|path, _| keep.contains(path));
        let mut valid = true;
        for (source, result) in stale.iter().zip(parsed) {
            match result {
                Some(inventory) => {
                    let cached = Cached {
                        text: source.text.clone(),
                        inventory: Arc::new(inventory),
                    };
                    self.files.insert(source.path.clone(), cached);
                }
                None => {
                    self.files.remove(&source.path);
                    valid = false;
                }
            }
        }
        if !valid {
            return None;
        }
        let parts: Vec<&Inventory> = sources
            .iter()
            .map(|s| &*self.files[&s.path].inventory)
            .collect();
        let merged = merge(&parts, load::content_hash(sources))?;
        (allow_empty || !merged.devices.is_empty()).then_some(merged)
    }
}

/// Builds each file on its own, spread over the available cores, reusing the unchanged
/// devices of the running inventory, or else of the file's last build. The running
/// ones first: a device that is the running one (the same `Arc`) is known unchanged by
/// the diff at a pointer's cost, and its memory is not held twice — also after the
/// cache's first fill, a parse of its own.
fn parse_all(
    sources: &[&Source],
    defaults: &ProbeSettings,
    cached: &HashMap<PathBuf, Cached>,
    running: Option<&Inventory>,
) -> Vec<Option<Inventory>> {
    let build = |s: &Source| {
        let previous = running.or_else(|| cached.get(&s.path).map(|c| &*c.inventory));
        load::build_file(s, defaults, previous).ok()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(sources.len());
    if threads <= 1 {
        return sources.iter().map(|s| build(s)).collect();
    }
    let chunk = sources.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|s| build(s)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("parsing an inventory file panicked"))
            .collect()
    })
}

/// Concatenates per-file inventories in file order, as the full build would; None on a
/// conflict between files (a name or address twice, a parent that is no device, a cycle).
fn merge(parts: &[&Inventory], hash: String) -> Option<Inventory> {
    let total: usize = parts.iter().map(|p| p.devices.len()).sum();
    let mut devices = Vec::with_capacity(total);
    let mut regions = Vec::new();
    let mut region_names = HashSet::new();
    let mut names: HashSet<&str, FastHash> =
        HashSet::with_capacity_and_hasher(total, FastHash::default());
    let mut addresses: HashSet<IpAddr, FastHash> =
        HashSet::with_capacity_and_hasher(total, FastHash::default());
    for part in parts {
        let offset = devices.len();
        for device in &part.devices {
            // Canonical, as the full build compares them (::ffff:a.b.c.d is a.b.c.d).
            if !names.insert(&device.name) || !addresses.insert(device.address.to_canonical()) {
                return None;
            }
            devices.push(device.clone());
        }
        for region in &part.regions {
            if !region_names.insert(region.name.clone()) {
                return None;
            }
            let mut region = Region::clone(region);
            for branch in &mut region.branches {
                for i in &mut branch.devices {
                    *i += offset;
                }
            }
            regions.push(region);
        }
    }
    let merged = Inventory::new(devices, regions, hash);
    // Parents may name devices of any file: checked on the whole, every time.
    let graph = merged.graph();
    (graph.unresolved() == 0 && graph.cycles().is_empty()).then_some(merged)
}
