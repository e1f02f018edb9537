//! One device of the inventory: its name, address and kind checked, its probe settings
//! cascaded from its branch (its SNMP polling: [`super::snmp`]), and, on a reload, the previous build's device kept when
//! nothing about it changed.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::parents::Level;
use super::snmp::SnmpInherited;
use super::{Builder, seen_before};
use crate::config::error::{ConfigError, Location, Place};
use crate::config::inventory::{Device, Labels};
use crate::config::maintenance;
use crate::config::probe::ProbeSettings;
use crate::config::raw::{Label, RawDevice};
use crate::maintenance::{Scope, Windows};

/// Kinds, label keys and label values are at most this long (names: 128).
const MAX_TEXT: usize = 256;

/// Why `a` can never answer a probe as a device, if so: ICMP to it goes nowhere or to
/// many (unspecified, multicast, broadcast), or it is an IPv4 address written as IPv6.
fn not_probeable(a: IpAddr) -> Option<String> {
    let canonical = a.to_canonical();
    if canonical != a {
        return Some(format!("is IPv4 written as IPv6; write {canonical}"));
    }
    let broadcast = matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
    if a.is_unspecified() || a.is_multicast() || broadcast {
        return Some("is not a unicast address (unspecified, multicast or broadcast)".into());
    }
    None
}

/// The label name `/metrics` writes for an inventory label key: `label_` and the key
/// with anything outside `[a-zA-Z0-9_]` as `_` (the prefix keeps the first character
/// valid). `/metrics` writes labels by this very function, so the collision check here
/// and the names there cannot disagree.
pub fn metric_label_name(key: &str) -> String {
    let mut name = String::with_capacity(6 + key.len());
    name.push_str("label_");
    name.extend(
        key.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    name
}

impl Builder<'_> {
    /// The device written as `raw` in `region`'s `branch` (whose probe settings it
    /// inherits), with where each of its parents is named; None if it has a problem.
    pub(super) fn device(
        &mut self,
        file: &Path,
        raw: &RawDevice,
        (region, branch, inherited): (&Arc<str>, &Arc<str>, ProbeSettings),
        inherited_parents: [Option<&Level>; 2],
        branch_windows: &Windows,
        inherited_snmp: &SnmpInherited,
    ) -> Option<(Arc<Device>, Level)> {
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
                if let Some(problem) = not_probeable(a) {
                    let message = format!("device {name:?}: address {a} {problem}");
                    self.errors
                        .push(ConfigError::new(address_place.clone(), message));
                }
                // Keyed by the canonical form: ::ffff:127.0.0.1 is 127.0.0.1.
                let key = a.to_canonical();
                if let Some(first) = seen_before(&mut self.address_places, &key, &address_place) {
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
        let kind_place = self.place(file, raw.kind.at);
        self.check_text(
            format_args!("device {name:?}: kind"),
            kind,
            &kind_place,
            false,
        );
        self.check_labels(file, &name, &raw.labels);
        let probe = raw.probe.apply(inherited, file, &mut self.errors);
        raw.probe.check_consistent(&probe, file, &mut self.errors);
        let own_parents = self.parent_level(file, &raw.parents);
        let parent_places = self.cascade(&name, own_parents, inherited_parents);
        let windows = self.device_windows(file, raw, region, branch, &name, branch_windows);
        let snmp = self.device_snmp(file, &name, raw, inherited_snmp);
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
                && p.parents.len() == parent_places.len()
                && p.parents
                    .iter()
                    .zip(parent_places.iter())
                    .all(|(a, (b, _))| a == b)
                && p.maintenance == windows
                && p.snmp == snmp
                && p.labels.len() == raw.labels.len()
                && raw
                    .labels
                    .iter()
                    .all(|(k, v)| p.labels.get(&k.value) == Some(&*v.value))
        };
        if let Some(previous) = previous.filter(|p| unchanged(p)) {
            return Some((previous, parent_places));
        }
        let parents = parent_places.iter().map(|(n, _)| n.clone()).collect();
        let device = Arc::new(Device {
            name,
            address,
            region: region.clone(),
            branch: branch.clone(),
            kind: self.intern(kind),
            labels: Labels::new(
                raw.labels
                    .iter()
                    .map(|(k, v)| (self.intern(&k.value), self.intern(&v.value)))
                    .collect::<Vec<_>>(),
            ),
            probe,
            parents,
            maintenance: windows,
            snmp,
        });
        Some((device, parent_places))
    }

    /// Its branch's windows (the same list, shared) or, when it has its own, those
    /// followed by its own.
    fn device_windows(
        &mut self,
        file: &Path,
        raw: &RawDevice,
        region: &Arc<str>,
        branch: &Arc<str>,
        name: &Arc<str>,
        branch_windows: &Windows,
    ) -> Windows {
        if raw.maintenance.is_empty() {
            return branch_windows.clone();
        }
        let scope = Scope::Device {
            region: region.clone(),
            branch: branch.clone(),
            device: name.clone(),
        };
        let own = maintenance::windows(&raw.maintenance, &scope, file, &mut self.errors);
        branch_windows
            .iter()
            .cloned()
            .chain(own)
            .collect::<Vec<_>>()
            .into()
    }

    /// Label keys and values are shown and exported as they are: visible text, and no
    /// two keys of a device that `/metrics` would write as one label name (`a-b` and
    /// `a_b` are both `label_a_b`; one of them would silently be dropped there).
    fn check_labels(&mut self, file: &Path, name: &str, labels: &[Label<'_>]) {
        let mut exported: Vec<(String, &str)> = Vec::with_capacity(labels.len());
        for (key, value) in labels {
            let key_place = self.place(file, key.at);
            // The subject is written out only for an error (most devices have none).
            let what = format_args!("device {name:?}: label key");
            self.check_text(what, &key.value, &key_place, false);
            let what = format_args!("device {name:?}: label {:?}", key.value);
            let value_place = self.place(file, value.at);
            self.check_text(what, &value.value, &value_place, true);
            let metric = metric_label_name(&key.value);
            if let Some((_, first)) = exported.iter().find(|(m, _)| *m == metric) {
                let message = format!(
                    "device {name:?}: labels {first:?} and {:?} are both {metric} in /metrics; rename one",
                    key.value
                );
                self.errors.push(ConfigError::new(key_place, message));
            } else {
                exported.push((metric, &key.value));
            }
        }
    }

    /// A kind, label key or value: visible, not too long, and unless `may_be_empty`
    /// (a label value) not empty.
    pub(super) fn check_text(
        &mut self,
        what: std::fmt::Arguments<'_>,
        text: &str,
        place: &Place,
        may_be_empty: bool,
    ) {
        let problem = if text.trim().is_empty() && !may_be_empty {
            Some("is empty".to_string())
        } else if text.chars().any(char::is_control) {
            Some(format!("{text:?} contains control characters"))
        } else if text.len() > MAX_TEXT && text.chars().count() > MAX_TEXT {
            // Bytes bound chars from above: counting only when it may matter.
            Some(format!("is longer than {MAX_TEXT} characters"))
        } else {
            None
        };
        if let Some(problem) = problem {
            self.errors
                .push(ConfigError::new(place.clone(), format!("{what} {problem}")));
        }
    }

    /// A place in the file being read, sharing its path.
    pub(super) fn place(&self, file: &Path, at: Location) -> Place {
        match &self.file {
            Some(shared) => Place::in_file(shared, at),
            None => Place::at(file, at),
        }
    }

    pub(super) fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.strings.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::load::{Source, build_file};

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
