//! Building the inventory from files already read: each file walked into its shapes
//! ([`crate::config::raw`]), probe settings cascaded, names, addresses and coordinates
//! checked, with every problem collected as `file:line:column: message`. One device's
//! checks, and its reuse across a reload, are [`device`]'s.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::Source;
use super::content_hash;
use crate::config::error::{ConfigError, ConfigErrors, Location, Place, Spanned, panic_message};
use crate::config::inventory::{Branch, Device, FastHash, Inventory, Region};
use crate::config::probe::ProbeSettings;
use crate::config::snmp::level::SnmpLevel;
use crate::config::{maintenance, raw};
use crate::maintenance::{Scope, Window, Windows};

mod device;
mod parents;
mod snmp;

pub use device::metric_label_name;

/// Parses and validates already-read sources into an inventory.
pub fn build_inventory(
    sources: &[Source],
    defaults: &ProbeSettings,
) -> Result<Inventory, ConfigErrors> {
    build_inventory_with(sources, defaults, false)
}

/// Like [`build_inventory`]; with `allow_empty`, an inventory without devices is valid
/// (the reload setting of the same name: emptying the inventory is then deliberate).
pub fn build_inventory_with(
    sources: &[Source],
    defaults: &ProbeSettings,
    allow_empty: bool,
) -> Result<Inventory, ConfigErrors> {
    build(sources, defaults, allow_empty, None, true)
}

/// One file on its own (empty allowed), for a reload: every device that is the same as
/// in `previous` (the last build of this file, or the running inventory) is that device
/// (the same `Arc`), so that an unchanged device costs neither memory nor work
/// downstream. Parents may be in other files, so they are checked only when the files
/// are put together: the inventory built here has no dependency graph
/// ([`Inventory::part`]).
pub fn build_file(
    source: &Source,
    defaults: &ProbeSettings,
    previous: Option<&Inventory>,
) -> Result<Inventory, ConfigErrors> {
    build(
        std::slice::from_ref(source),
        defaults,
        true,
        previous,
        false,
    )
}

/// `whole`: the sources are the whole inventory, so the checks across files run.
fn build(
    sources: &[Source],
    defaults: &ProbeSettings,
    allow_empty: bool,
    previous: Option<&Inventory>,
    whole: bool,
) -> Result<Inventory, ConfigErrors> {
    let mut b = Builder {
        previous,
        ..Builder::default()
    };
    for source in sources {
        // Whatever a file holds, a bug it reaches is an error of that file, not the end
        // of `check` or of a reload ("reload panicked"); the build fails with it, so the
        // builder's state after the panic is never used.
        let add = std::panic::AssertUnwindSafe(|| b.add_file(source, defaults));
        if let Err(panic) = std::panic::catch_unwind(add) {
            let message = format!(
                "internal error while reading this file ({}); please report it with the file",
                panic_message(&*panic)
            );
            b.errors
                .push(ConfigError::new(Place::at(&source.path, START), message));
        }
    }
    if whole {
        b.check_parents();
    }
    if !allow_empty && b.errors.is_empty() && b.devices.is_empty() {
        b.errors.push(ConfigError::new(
            Place::at(&sources[0].path, START),
            "the inventory has no devices",
        ));
    }
    if b.errors.is_empty() {
        let hash = content_hash(sources);
        Ok(if whole {
            Inventory::new(b.devices, b.regions, hash)
        } else {
            // One file of several: its parents may be in the others, so its graph
            // would be partial; the merge of all files builds the real one.
            Inventory::part(b.devices, b.regions, hash)
        })
    } else {
        Err(ConfigErrors::sorted(b.errors))
    }
}

/// Nothing but blank lines and comments, which the loader reports as an empty file
/// rather than as a file without `regions`.
pub fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

/// Notes that `key` is written at `place`, unless it was seen before: then returns where
/// (the first place stays the one others are compared with).
fn seen_before<K: Hash + Eq + Clone, S: BuildHasher>(
    places: &mut HashMap<K, Place, S>,
    key: &K,
    place: &Place,
) -> Option<Place> {
    match places.entry(key.clone()) {
        Entry::Occupied(first) => Some(first.get().clone()),
        Entry::Vacant(v) => {
            v.insert(place.clone());
            None
        }
    }
}

#[derive(Default)]
struct Builder<'p> {
    /// Devices that can be reused when unchanged (see [`build_file`]).
    previous: Option<&'p Inventory>,
    devices: Vec<Arc<Device>>,
    /// Beside `devices`: where each of a device's parents is named (its own list's
    /// place, or its branch's or region's), for the checks across files.
    parent_places: Vec<parents::Level>,
    /// The empty list every device without parents shares.
    no_parents: parents::Level,
    regions: Vec<Region>,
    errors: Vec<ConfigError>,
    region_places: HashMap<String, Place>,
    name_places: FastMap<Arc<str>, Place>,
    address_places: FastMap<IpAddr, Place>,
    /// The file being read, shared by the places of all its devices.
    file: Option<Arc<Path>>,
    /// Kinds and label strings repeat across thousands of devices: keep one copy each.
    strings: HashSet<Arc<str>, FastHash>,
}

type FastMap<K, V> = HashMap<K, V, FastHash>;

/// Where a problem of a file's content as a whole is reported: its start.
const START: Location = Location { line: 1, column: 1 };

impl Builder<'_> {
    fn add_file(&mut self, source: &Source, defaults: &ProbeSettings) {
        let file = source.path.as_path();
        self.file = Some(Arc::from(file));
        if is_blank(&source.text) {
            self.errors.push(ConfigError::new(
                Place::at(file, START),
                "inventory file is empty",
            ));
            return;
        }
        let parsed = raw::parse(&source.text, file, &mut self.errors);
        for raw_region in parsed.regions {
            let region_name = raw_region.name.value.trim().to_string();
            let region_place = Place::at(file, raw_region.name.at);
            self.check_name(&region_name, "region", &region_place);
            if let Some(first) = seen_before(&mut self.region_places, &region_name, &region_place) {
                let message = format!("duplicate region {region_name:?}, first defined at {first}");
                self.errors.push(ConfigError::new(region_place, message));
            }
            let region_probe = raw_region.probe.apply(*defaults, file, &mut self.errors);
            raw_region
                .probe
                .check_consistent(&region_probe, file, &mut self.errors);
            let region_parents = self.parent_level(file, &raw_region.parents);
            let region: Arc<str> = region_name.into();
            let region_scope = Scope::Region {
                region: region.clone(),
            };
            let region_windows = maintenance::windows(
                &raw_region.maintenance,
                &region_scope,
                file,
                &mut self.errors,
            );
            let region_snmp = SnmpLevel::resolve(&raw_region.snmp, file, &mut self.errors);
            region_snmp.check_privacy_key(&region_snmp, file, &mut self.errors);
            let region_rules = self.region_rules(file, &region, raw_region.uplinks.as_ref());
            let rules_broken = region_rules.is_err();
            let region_rules = region_rules.unwrap_or_default();
            let mut branches = Vec::new();
            let mut branch_places: HashMap<String, Place> = HashMap::new();
            for raw_branch in raw_region.branches {
                let branch_name = raw_branch.name.value.trim().to_string();
                let branch_place = Place::at(file, raw_branch.name.at);
                self.check_name(&branch_name, "branch", &branch_place);
                if let Some(first) = seen_before(&mut branch_places, &branch_name, &branch_place) {
                    let message = format!(
                        "duplicate branch {branch_name:?} in region {region:?}, first defined at {first}"
                    );
                    self.errors.push(ConfigError::new(branch_place, message));
                }
                let lat = self.coordinate(file, raw_branch.lat.as_ref(), "lat", 90.0);
                let lon = self.coordinate(file, raw_branch.lon.as_ref(), "lon", 180.0);
                let branch_probe = raw_branch.probe.apply(region_probe, file, &mut self.errors);
                raw_branch
                    .probe
                    .check_consistent(&branch_probe, file, &mut self.errors);
                let branch_parents = self.parent_level(file, &raw_branch.parents);
                let branch: Arc<str> = branch_name.into();
                let branch_scope = Scope::Branch {
                    region: region.clone(),
                    branch: branch.clone(),
                };
                // Accumulated down the cascade; shared by the devices without their own.
                let branch_windows: Windows = region_windows
                    .iter()
                    .cloned()
                    .chain(maintenance::windows(
                        &raw_branch.maintenance,
                        &branch_scope,
                        file,
                        &mut self.errors,
                    ))
                    .collect::<Vec<Window>>()
                    .into();
                let own_snmp = SnmpLevel::resolve(&raw_branch.snmp, file, &mut self.errors);
                let branch_snmp = own_snmp.over(&region_snmp);
                branch_snmp.check_privacy_key(&own_snmp, file, &mut self.errors);
                let snmp = snmp::SnmpInherited {
                    level: branch_snmp,
                    rules: region_rules.clone(),
                    rules_broken,
                };
                let mut indexes = Vec::new();
                let inherited = [branch_parents.as_ref(), region_parents.as_ref()];
                for raw in &raw_branch.devices {
                    let place = (&region, &branch, branch_probe);
                    if let Some((device, parents)) =
                        self.device(file, raw, place, inherited, &branch_windows, &snmp)
                    {
                        indexes.push(self.devices.len());
                        self.devices.push(device);
                        self.parent_places.push(parents);
                    }
                }
                branches.push(Branch {
                    name: branch,
                    lat,
                    lon,
                    devices: indexes,
                });
            }
            self.regions.push(Region {
                name: region,
                branches,
            });
        }
    }

    /// Names are free text (they are escaped wherever shown) but must be visible.
    fn check_name(&mut self, name: &str, what: &str, place: &Place) {
        if name.is_empty() {
            self.errors.push(ConfigError::new(
                place.clone(),
                format!("{what} name is empty"),
            ));
        } else if name.chars().any(char::is_control) {
            self.errors.push(ConfigError::new(
                place.clone(),
                format!("{what} name {name:?} contains control characters"),
            ));
        } else if name.chars().count() > 128 {
            self.errors.push(ConfigError::new(
                place.clone(),
                format!("{what} name is longer than 128 characters"),
            ));
        }
    }

    fn coordinate(
        &mut self,
        file: &Path,
        value: Option<&Spanned<f64>>,
        what: &str,
        limit: f64,
    ) -> Option<f64> {
        let v = value?;
        if v.value.is_finite() && v.value.abs() <= limit {
            Some(v.value)
        } else {
            self.errors.push(ConfigError::new(
                Place::at(file, v.at),
                format!("{what} {} is out of range (-{limit} to {limit})", v.value),
            ));
            None
        }
    }
}
