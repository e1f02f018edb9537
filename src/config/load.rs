//! Reading an inventory directory: every `*.yaml`/`*.yml` file under it, merged and
//! validated, with every problem collected as `file:line:column: message`.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, ConfigErrors, Location, Place, Spanned};
use super::inventory::{Branch, Device, FastHash, Inventory, Labels, Region};
use super::probe::ProbeSettings;
use super::raw::{self, RawDevice};

/// One inventory file as read from disk.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// Lists the inventory files under `dir`, sorted, skipping hidden entries (Kubernetes
/// ConfigMaps keep their real files under `..data`; the visible names are symlinks).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            ConfigError::new(
                Place::of_file(&d),
                format!("cannot read inventory directory: {e}"),
            )
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every inventory file under `dir`.
pub fn read_sources(dir: &Path) -> Result<Vec<Source>, ConfigErrors> {
    let files = list_files(dir).map_err(|e| ConfigErrors(vec![e]))?;
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => errors.push(ConfigError::new(
                Place::of_file(&path),
                format!("cannot read: {e}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(sources)
    } else {
        Err(ConfigErrors::sorted(errors))
    }
}

/// A stable hash of the sources' names and contents.
pub fn content_hash(sources: &[Source]) -> String {
    let mut h = DefaultHasher::new();
    for s in sources {
        h.write(s.path.as_os_str().as_encoded_bytes());
        h.write_u8(0);
        h.write(s.text.as_bytes());
        h.write_u8(0);
    }
    format!("{:016x}", h.finish())
}

/// Reads and validates the inventory under `dir`.
pub fn load_inventory(dir: &Path, defaults: &ProbeSettings) -> Result<Inventory, ConfigErrors> {
    let sources = read_sources(dir)?;
    if sources.is_empty() {
        return Err(ConfigErrors(vec![ConfigError::new(
            Place::of_file(dir),
            "no inventory files (*.yaml or *.yml) found",
        )]));
    }
    build_inventory(&sources, defaults)
}

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
    build(sources, defaults, allow_empty, None)
}

/// One file on its own (empty allowed), for a reload: every device that is the same as
/// in `previous`, the last build of this file, is that device (the same `Arc`), so that
/// an unchanged device costs neither memory nor work downstream.
pub fn build_file(
    source: &Source,
    defaults: &ProbeSettings,
    previous: Option<&Inventory>,
) -> Result<Inventory, ConfigErrors> {
    build(std::slice::from_ref(source), defaults, true, previous)
}

fn build(
    sources: &[Source],
    defaults: &ProbeSettings,
    allow_empty: bool,
    previous: Option<&Inventory>,
) -> Result<Inventory, ConfigErrors> {
    let mut b = Builder {
        previous,
        ..Builder::default()
    };
    for source in sources {
        b.add_file(source, defaults);
    }
    if !allow_empty && b.errors.is_empty() && b.devices.is_empty() {
        b.errors.push(ConfigError::new(
            Place::of_file(&sources[0].path),
            "the inventory has no devices",
        ));
    }
    if b.errors.is_empty() {
        Ok(Inventory::new(b.devices, b.regions, content_hash(sources)))
    } else {
        Err(ConfigErrors::sorted(b.errors))
    }
}

/// Nothing but blank lines and comments, which the loader reports as an empty file
/// (serde would say "unexpected end of input").
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

impl Builder<'_> {
    fn add_file(&mut self, source: &Source, defaults: &ProbeSettings) {
        let file = source.path.as_path();
        self.file = Some(Arc::from(file));
        if is_blank(&source.text) {
            self.errors.push(ConfigError::new(
                Place::of_file(file),
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
            let region: Arc<str> = region_name.into();
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
                let branch: Arc<str> = branch_name.into();
                let mut indexes = Vec::new();
                for raw in &raw_branch.devices {
                    if let Some(device) = self.device(file, raw, &region, &branch, branch_probe) {
                        indexes.push(self.devices.len());
                        self.devices.push(device);
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

    fn device(
        &mut self,
        file: &Path,
        raw: &RawDevice,
        region: &Arc<str>,
        branch: &Arc<str>,
        inherited: ProbeSettings,
    ) -> Option<Arc<Device>> {
        let before = self.errors.len();
        let trimmed = raw.name.value.trim();
        let previous = self.previous.and_then(|p| p.device(trimmed)).cloned();
        let name: Arc<str> = match &previous {
            Some(p) => p.name.clone(),
            None => Arc::from(trimmed),
        };
        let place = self.place(file, raw.name.at);
        self.check_name(&name, "device", &place);
        if let Some(first) = seen_before(&mut self.name_places, &name, &place) {
            let message = format!("duplicate device name {name:?}, first defined at {first}");
            self.errors.push(ConfigError::new(place, message));
        }
        let address_place = self.place(file, raw.address.at);
        let address = match raw.address.value.trim().parse::<IpAddr>() {
            Ok(a) => {
                if let Some(first) = seen_before(&mut self.address_places, &a, &address_place) {
                    let message =
                        format!("device {name:?}: duplicate address {a}, first used at {first}");
                    self.errors.push(ConfigError::new(address_place, message));
                }
                Some(a)
            }
            Err(_) => {
                self.errors.push(ConfigError::new(
                    address_place,
                    format!(
                        "device {name:?}: address {:?} is not an IPv4 or IPv6 address",
                        raw.address.value
                    ),
                ));
                None
            }
        };
        let kind = raw.kind.value.trim();
        if kind.is_empty() {
            self.errors.push(ConfigError::new(
                Place::at(file, raw.kind.at),
                format!("device {name:?}: kind is empty"),
            ));
        }
        let probe = raw.probe.apply(inherited, file, &mut self.errors);
        raw.probe.check_consistent(&probe, file, &mut self.errors);
        if self.errors.len() > before {
            return None;
        }
        let address = address?;
        let unchanged = |p: &Device| {
            p.address == address
                && p.region == *region
                && p.branch == *branch
                && &*p.kind == kind
                && p.probe == probe
                && p.labels.len() == raw.labels.len()
                && raw
                    .labels
                    .iter()
                    .all(|(k, v)| p.labels.get(k) == Some(&**v))
        };
        if let Some(previous) = previous.filter(|p| unchanged(p)) {
            return Some(previous);
        }
        Some(Arc::new(Device {
            name,
            address,
            region: region.clone(),
            branch: branch.clone(),
            kind: self.intern(kind),
            labels: Labels::new(
                raw.labels
                    .iter()
                    .map(|(k, v)| (self.intern(k), self.intern(v)))
                    .collect::<Vec<_>>(),
            ),
            probe,
        }))
    }

    /// A place in the file being read, sharing its path.
    fn place(&self, file: &Path, at: Location) -> Place {
        match &self.file {
            Some(shared) => Place::in_file(shared, at),
            None => Place::at(file, at),
        }
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.strings.insert(shared.clone());
        shared
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

#[cfg(test)]
mod tests {
    use super::*;

    fn source(devices: &[(&str, &str, &str)]) -> Source {
        let mut text =
            "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n".to_string();
        for (name, address, tier) in devices {
            text += &format!(
                "          - {{ name: {name}, address: {address}, kind: atm, labels: {{ tier: \"{tier}\" }} }}\n"
            );
        }
        Source {
            path: PathBuf::from("f.yaml"),
            text,
        }
    }

    #[test]
    fn a_rebuilt_file_reuses_exactly_the_devices_that_did_not_change() {
        let defaults = ProbeSettings::default();
        let first = build_file(
            &source(&[
                ("a", "127.0.0.1", "1"),
                ("b", "127.0.0.2", "1"),
                ("c", "127.0.0.3", "1"),
            ]),
            &defaults,
            None,
        )
        .unwrap();
        // A line added above `a` moves every device; `b` is relabelled, `c` re-addressed.
        let edited = source(&[
            ("new", "127.0.0.9", "1"),
            ("a", "127.0.0.1", "1"),
            ("b", "127.0.0.2", "2"),
            ("c", "127.0.0.4", "1"),
        ]);
        let second = build_file(&edited, &defaults, Some(&first)).unwrap();
        let same =
            |name: &str| Arc::ptr_eq(first.device(name).unwrap(), second.device(name).unwrap());
        assert!(same("a"));
        assert!(!same("b") && !same("c"));
        assert_eq!(second.device("b").unwrap().labels.get("tier"), Some("2"));
        assert_eq!(second.device("c").unwrap().address.to_string(), "127.0.0.4");
        // What reuse gives is what a build from scratch gives.
        let scratch = build_file(&edited, &defaults, None).unwrap();
        for (x, y) in second.devices.iter().zip(&scratch.devices) {
            assert_eq!(**x, **y);
        }
    }
}
