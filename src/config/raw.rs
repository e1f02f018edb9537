//! The shapes of an inventory file exactly as written, before validation, and the
//! grammar that walks its YAML events into them ([`super::walk`]).
//!
//! Values that need checking beyond their type (addresses, durations, ranges) stay as
//! written, with their place; [`super::load`] checks them.

use std::path::Path;

use super::error::{ConfigError, Spanned};
use super::maintenance::{self, RawWindow};
use super::probe::ProbeOverrides;
use super::snmp::read::{self as snmp, RawRule, RawUplink, RawUplinks, SnmpOverrides};
use super::walk::{Text, Walk, Walker};
use super::yaml::Event;

mod parents;

pub use parents::Parents;

/// One inventory file: a list of regions.
#[derive(Debug, Default)]
pub struct InventoryFile<'a> {
    pub regions: Vec<RawRegion<'a>>,
}

#[derive(Debug)]
pub struct RawRegion<'a> {
    pub name: Spanned<Text<'a>>,
    pub probe: ProbeOverrides,
    pub parents: Parents<'a>,
    pub branches: Vec<RawBranch<'a>>,
    pub maintenance: Vec<RawWindow<'a>>,
    pub snmp: SnmpOverrides,
    /// Its ifAlias rules, for the devices without a list of their own.
    pub uplinks: Option<RawUplinks<RawRule>>,
}

#[derive(Debug)]
pub struct RawBranch<'a> {
    pub name: Spanned<Text<'a>>,
    pub lat: Option<Spanned<f64>>,
    pub lon: Option<Spanned<f64>>,
    pub probe: ProbeOverrides,
    pub parents: Parents<'a>,
    pub devices: Vec<RawDevice<'a>>,
    pub maintenance: Vec<RawWindow<'a>>,
    pub snmp: SnmpOverrides,
}

#[derive(Debug)]
pub struct RawDevice<'a> {
    pub name: Spanned<Text<'a>>,
    pub address: Spanned<Text<'a>>,
    pub kind: Spanned<Text<'a>>,
    /// In the order written, with their places; keys are unique.
    pub labels: Vec<Label<'a>>,
    pub probe: ProbeOverrides,
    pub parents: Parents<'a>,
    pub maintenance: Vec<RawWindow<'a>>,
    pub snmp: SnmpOverrides,
    pub uplinks: Option<RawUplinks<RawUplink>>,
}

/// A label's key and value as written.
pub type Label<'a> = (Spanned<Text<'a>>, Spanned<Text<'a>>);

pub(in crate::config) const FILE_KEYS: &[&str] = &["regions"];
pub(in crate::config) const REGION_KEYS: &[&str] = &[
    "name",
    "probe",
    "branches",
    "parents",
    "maintenance",
    "snmp",
    "uplinks",
];
pub(in crate::config) const BRANCH_KEYS: &[&str] = &[
    "name",
    "lat",
    "lon",
    "probe",
    "devices",
    "parents",
    "maintenance",
    "snmp",
    // Known only to say where it belongs instead.
    "uplinks",
];
pub(in crate::config) const DEVICE_KEYS: &[&str] = &[
    "name",
    "address",
    "kind",
    "labels",
    "probe",
    "parents",
    "maintenance",
    "snmp",
    "uplinks",
];

/// Walks `text` (the content of `file`), adding every problem found to `errors`. What
/// could be read is returned even when there were problems, so that the checks after
/// parsing report theirs as well.
pub fn parse<'a>(text: &'a str, file: &Path, errors: &mut Vec<ConfigError>) -> InventoryFile<'a> {
    Walker::new(text, file, errors)
        .document(inventory_file)
        .unwrap_or_default()
}

fn inventory_file<'a>(w: &mut Walker<'a, '_>, first: Event<'a>) -> Walk<InventoryFile<'a>> {
    let mut file = InventoryFile::default();
    if let Some(at) = w.open_mapping(None, first)? {
        let seen = w.mapping("inventory file", FILE_KEYS, |w, _| {
            w.list("regions", |w, item| {
                if let Some(region) = region(w, item)? {
                    file.regions.push(region);
                }
                Ok(())
            })
        })?;
        w.require(at, seen, FILE_KEYS, &["regions"]);
    }
    Ok(file)
}

fn region<'a>(w: &mut Walker<'a, '_>, first: Event<'a>) -> Walk<Option<RawRegion<'a>>> {
    let Some(at) = w.open_mapping(None, first)? else {
        return Ok(None);
    };
    let (mut name, mut probe, mut branches) = (None, ProbeOverrides::default(), Vec::new());
    let mut parents = None;
    let mut windows = Vec::new();
    let (mut snmp_, mut uplinks) = (SnmpOverrides::default(), None);
    let seen = w.mapping("region", REGION_KEYS, |w, key| {
        match key {
            0 => name = w.text("name")?,
            1 => probe = ProbeOverrides::read(w)?,
            3 => parents = parents::read(w)?,
            // By name, not index: other keys may be added to the list before it.
            k if REGION_KEYS[k] == "maintenance" => windows = maintenance::read(w)?,
            k if REGION_KEYS[k] == "snmp" => snmp_ = SnmpOverrides::read(w)?,
            k if REGION_KEYS[k] == "uplinks" => uplinks = snmp::rules(w)?,
            _ => w.list("branches", |w, item| {
                branches.extend(branch(w, item)?);
                Ok(())
            })?,
        }
        Ok(())
    })?;
    w.require(at, seen, REGION_KEYS, &["name"]);
    Ok(name.map(|name| RawRegion {
        name,
        probe,
        parents,
        branches,
        maintenance: windows,
        snmp: snmp_,
        uplinks,
    }))
}

fn branch<'a>(w: &mut Walker<'a, '_>, first: Event<'a>) -> Walk<Option<RawBranch<'a>>> {
    let Some(at) = w.open_mapping(None, first)? else {
        return Ok(None);
    };
    let (mut name, mut lat, mut lon) = (None, None, None);
    let (mut probe, mut devices, mut parents) = (ProbeOverrides::default(), Vec::new(), None);
    let mut windows = Vec::new();
    let mut snmp_ = SnmpOverrides::default();
    let seen = w.mapping("branch", BRANCH_KEYS, |w, key| {
        match key {
            0 => name = w.text("name")?,
            1 => lat = w.number("lat", "a number")?,
            2 => lon = w.number("lon", "a number")?,
            3 => probe = ProbeOverrides::read(w)?,
            5 => parents = parents::read(w)?,
            k if BRANCH_KEYS[k] == "maintenance" => windows = maintenance::read(w)?,
            k if BRANCH_KEYS[k] == "snmp" => snmp_ = SnmpOverrides::read(w)?,
            k if BRANCH_KEYS[k] == "uplinks" => {
                let first = w.next()?;
                w.error(
                    super::walk::start_of(&first),
                    "uplinks: not on a branch: alias rules belong on its region, a device's own list on the device",
                );
                w.skip(first)?;
            }
            _ => w.list("devices", |w, item| {
                devices.extend(device(w, item)?);
                Ok(())
            })?,
        }
        Ok(())
    })?;
    w.require(at, seen, BRANCH_KEYS, &["name"]);
    Ok(name.map(|name| RawBranch {
        name,
        lat,
        lon,
        probe,
        parents,
        devices,
        maintenance: windows,
        snmp: snmp_,
    }))
}

fn device<'a>(w: &mut Walker<'a, '_>, first: Event<'a>) -> Walk<Option<RawDevice<'a>>> {
    let Some(at) = w.open_mapping(None, first)? else {
        return Ok(None);
    };
    let (mut name, mut address, mut kind) = (None, None, None);
    let (mut labels, mut probe, mut parents) = (Vec::new(), ProbeOverrides::default(), None);
    let mut windows = Vec::new();
    let (mut snmp_, mut uplinks) = (SnmpOverrides::default(), None);
    let seen = w.mapping("device", DEVICE_KEYS, |w, key| {
        match key {
            0 => name = w.text("name")?,
            1 => address = w.text("address")?,
            2 => kind = w.text("kind")?,
            3 => labels = self::labels(w)?,
            5 => parents = parents::read(w)?,
            k if DEVICE_KEYS[k] == "maintenance" => windows = maintenance::read(w)?,
            k if DEVICE_KEYS[k] == "snmp" => snmp_ = SnmpOverrides::read(w)?,
            k if DEVICE_KEYS[k] == "uplinks" => uplinks = snmp::uplinks(w)?,
            _ => probe = ProbeOverrides::read(w)?,
        }
        Ok(())
    })?;
    w.require(at, seen, DEVICE_KEYS, &["name", "address", "kind"]);
    Ok(match (name, address, kind) {
        (Some(name), Some(address), Some(kind)) => Some(RawDevice {
            name,
            address,
            kind,
            labels,
            probe,
            parents,
            maintenance: windows,
            snmp: snmp_,
            uplinks,
        }),
        _ => None,
    })
}

/// Free-form `key: value` text pairs.
fn labels<'a>(w: &mut Walker<'a, '_>) -> Walk<Vec<Label<'a>>> {
    let mut labels: Vec<Label<'a>> = Vec::new();
    if !w.optional_mapping("labels")? {
        return Ok(labels);
    }
    loop {
        let key = match w.next()? {
            Event::MappingEnd => return Ok(labels),
            Event::Scalar(key) => key,
            collection => {
                w.collection_as_key(collection)?;
                continue;
            }
        };
        if labels.iter().any(|(k, _)| k.value == key.value) {
            w.error(key.at, format!("duplicate key {:?}", key.value));
            w.skip_value()?;
        } else if key.is_null() || key.value.trim().is_empty() {
            w.error(key.at, "labels: a label name is empty");
            w.skip_value()?;
        } else if let Some(value) = w.text(&format!("labels.{}", key.value))? {
            let key = Spanned {
                value: key.value,
                at: key.at,
            };
            labels.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(labels: &'a [Label<'_>]) -> Vec<(&'a str, &'a str)> {
        labels.iter().map(|(k, v)| (&*k.value, &*v.value)).collect()
    }

    fn walk(text: &str) -> (InventoryFile<'_>, Vec<String>) {
        let mut errors = Vec::new();
        let file = parse(text, Path::new("f.yaml"), &mut errors);
        (file, errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn a_device_is_read_with_its_places_labels_and_probe() {
        let text = "regions:\n  - name: r\n    branches:\n      - name: b\n        lat: 41.7\n        devices:\n          - { name: d, address: 127.0.0.1, kind: atm, labels: { isp: magti, tier: 1 }, probe: { packets: 3, interval: 5s } }\n";
        let (file, errors) = walk(text);
        assert_eq!(errors, Vec::<String>::new());
        let branch = &file.regions[0].branches[0];
        assert_eq!(branch.lat.as_ref().map(|l| l.value), Some(41.7));
        let d = &branch.devices[0];
        assert_eq!(
            (&*d.name.value, d.name.at.line, d.name.at.column),
            ("d", 7, 21)
        );
        assert_eq!(texts(&d.labels), [("isp", "magti"), ("tier", "1")]);
        assert_eq!(d.probe.packets.as_ref().map(|p| p.value), Some(3));
        assert_eq!(
            d.probe.interval.as_ref().map(|p| p.value.as_str()),
            Some("5s")
        );
    }

    #[test]
    fn every_shape_problem_of_a_file_is_reported_and_the_rest_still_read() {
        let text = "regions:\n  - name: r\n    colour: red\n    branches:\n      - name: b\n        devices:\n          - { name: a, address: 127.0.0.1 }\n          - { name: b, address: 127.0.0.2, kind: atm, kind: pos }\n          - { name: c, address: 127.0.0.3, kind: atm, labels: [x] }\n          - { name: d, address: 127.0.0.4, kind: atm, probe: { packets: two } }\n          - { name: e, address: 127.0.0.5, kind: atm }\n          - { name: f, adress: 127.0.0.6, kind: atm }\n";
        let (file, errors) = walk(text);
        assert_eq!(
            errors,
            [
                "f.yaml:3:5: region: unknown key \"colour\" (known keys: name, probe, branches, parents, maintenance, snmp, uplinks)",
                "f.yaml:7:13: missing required key \"kind\"",
                "f.yaml:8:55: duplicate key \"kind\"",
                "f.yaml:9:63: labels: expected a mapping (key: value)",
                "f.yaml:10:73: packets: expected a whole number, found \"two\"",
                // A misspelt key is not reported a second time as missing.
                "f.yaml:12:24: device: unknown key \"adress\" (did you mean \"address\"?)",
            ]
        );
        let names: Vec<_> = file.regions[0].branches[0]
            .devices
            .iter()
            .map(|d| &*d.name.value)
            .collect();
        assert_eq!(names, ["b", "c", "d", "e"]);
    }

    #[test]
    fn malformed_yaml_stops_the_file_with_one_error() {
        let (_, errors) = walk("regions:\n  - name: r\n    branches: [\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn anchors_share_a_label_set() {
        let text = "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n          - { name: a, address: 127.0.0.1, kind: atm, labels: &std { isp: magti } }\n          - { name: b, address: 127.0.0.2, kind: atm, labels: *std }\n";
        let (file, errors) = walk(text);
        assert!(errors.is_empty(), "{errors:?}");
        let devices = &file.regions[0].branches[0].devices;
        assert_eq!(texts(&devices[1].labels), [("isp", "magti")]);
    }
}
