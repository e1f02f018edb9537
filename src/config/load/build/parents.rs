//! `parents:` in the build: each level's list checked (no name twice), the cascade
//! device → branch → region (a device never inherits itself: a level naming it is
//! skipped), and, once every file is read, the checks that span files: every name is
//! a device of the inventory, and the parents form no cycle.

use std::collections::HashMap;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::Builder;
use crate::config::error::{ConfigError, Place};
use crate::config::graph::Graph;
use crate::config::inventory::FastHash;
use crate::config::raw::Parents;

/// One level's `parents:` list: names trimmed, each with its place. Shared (an `Arc`)
/// because every device of a branch that inherits it holds it: a clone per device is
/// a count, not a copy.
pub(super) type Level = Arc<[(Arc<str>, Place)]>;

impl Builder<'_> {
    /// The list written at one level (None where `parents:` is absent), its names
    /// checked like device names and none twice.
    pub(super) fn parent_level(&mut self, file: &Path, raw: &Parents<'_>) -> Option<Level> {
        let raw = raw.as_ref()?;
        let mut level: Vec<(Arc<str>, Place)> = Vec::with_capacity(raw.len());
        for name in raw {
            let place = self.place(file, name.at);
            let trimmed = name.value.trim();
            self.check_name(trimmed, "parent", &place);
            if let Some((_, first)) = level.iter().find(|(n, _)| &**n == trimmed) {
                let message = format!("parents: {trimmed:?} is named twice, first at {first}");
                self.errors.push(ConfigError::new(place, message));
                continue;
            }
            // Not interned: a parent's name is mostly written once (a branch names its
            // own router), and the devices that inherit the list share it already.
            level.push((Arc::from(trimmed), place));
        }
        Some(level.into())
    }

    /// The parents of the device called `name`: the first of its own, its branch's and
    /// its region's lists that is written and does not name it. Its own list naming it
    /// is an error (a device cannot depend on itself); an inherited one is just skipped
    /// (a branch's gateway, named by its branch, takes the region's parents).
    pub(super) fn cascade(
        &mut self,
        name: &str,
        own: Option<Level>,
        inherited: [Option<&Level>; 2],
    ) -> Level {
        if let Some(own) = own {
            if let Some((_, place)) = own.iter().find(|(n, _)| &**n == name) {
                let message = format!(
                    "parents: a cycle: {name} -> {name} (a device cannot be its own parent)"
                );
                self.errors.push(ConfigError::new(place.clone(), message));
            }
            return own;
        }
        inherited
            .into_iter()
            .flatten()
            .find(|level| level.iter().all(|(n, _)| &**n != name))
            .unwrap_or(&self.no_parents)
            .clone()
    }

    /// The checks across files, once all are read: each parent is a device written
    /// somewhere in the inventory, and following parents never leads back. An inherited
    /// name is reported once, at its place, not once per device that inherits it.
    pub(super) fn check_parents(&mut self) {
        let mut reported: HashSet<Place> = HashSet::new();
        for places in &self.parent_places {
            for (name, place) in places.iter() {
                if !self.name_places.contains_key(name) && reported.insert(place.clone()) {
                    let message = format!("parents: no device is named {name:?}");
                    self.errors.push(ConfigError::new(place.clone(), message));
                }
            }
        }
        let index: HashMap<&str, usize, FastHash> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (&*d.name, i))
            .collect();
        let graph = Graph::build(&self.devices, |name| index.get(name).copied());
        for cycle in graph.cycles() {
            let first = cycle[0] as usize;
            // A device naming itself is reported where its list is read.
            if cycle.len() == 1 {
                continue;
            }
            let second_name = &self.devices[cycle[1] as usize].name;
            let Some((_, place)) = self.parent_places[first]
                .iter()
                .find(|(n, _)| n == second_name)
            else {
                continue;
            };
            if !reported.insert(place.clone()) {
                continue;
            }
            let mut members: Vec<&str> = cycle
                .iter()
                .map(|&i| &*self.devices[i as usize].name)
                .collect();
            members.push(&self.devices[first].name);
            let message = format!("parents: a cycle: {}", members.join(" -> "));
            self.errors.push(ConfigError::new(place.clone(), message));
        }
    }
}
