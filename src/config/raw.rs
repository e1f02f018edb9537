//! The shapes of an inventory file exactly as written, before validation.
//!
//! The YAML events ([`super::yaml`]) are walked straight into these shapes. Unknown,
//! repeated and missing keys and values of the wrong type are reported with their
//! places, and the walk goes on past them, so one run shows every problem of a file;
//! only malformed YAML stops it. Values that need checking beyond their type
//! (addresses, durations, ranges) stay as written, with their place.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;

use super::error::{ConfigError, Location, Place, Spanned, unknown_key};
use super::probe::ProbeOverrides;
use super::yaml::{Event, Reader, Scalar};

/// One inventory file: a list of regions.
#[derive(Debug, Default)]
pub struct InventoryFile<'a> {
    pub regions: Vec<RawRegion<'a>>,
}

#[derive(Debug)]
pub struct RawRegion<'a> {
    pub name: Spanned<Text<'a>>,
    pub probe: ProbeOverrides,
    pub branches: Vec<RawBranch<'a>>,
}

#[derive(Debug)]
pub struct RawBranch<'a> {
    pub name: Spanned<Text<'a>>,
    pub lat: Option<Spanned<f64>>,
    pub lon: Option<Spanned<f64>>,
    pub probe: ProbeOverrides,
    pub devices: Vec<RawDevice<'a>>,
}

#[derive(Debug)]
pub struct RawDevice<'a> {
    pub name: Spanned<Text<'a>>,
    pub address: Spanned<Text<'a>>,
    pub kind: Spanned<Text<'a>>,
    /// In the order written; keys are unique.
    pub labels: Vec<(Text<'a>, Text<'a>)>,
    pub probe: ProbeOverrides,
}

/// Text as written: borrowed from the file whenever the YAML reader could.
pub type Text<'a> = Cow<'a, str>;

const FILE_KEYS: &[&str] = &["regions"];
const REGION_KEYS: &[&str] = &["name", "probe", "branches"];
const BRANCH_KEYS: &[&str] = &["name", "lat", "lon", "probe", "devices"];
const DEVICE_KEYS: &[&str] = &["name", "address", "kind", "labels", "probe"];
const PROBE_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "packets",
    "packet_spacing",
    "down_after",
    "up_after",
    "retry_interval",
];

/// Walks `text` (the content of `file`), adding every problem found to `errors`. What
/// could be read is returned even when there were problems, so that the checks after
/// parsing report theirs as well.
pub fn parse<'a>(text: &'a str, file: &Path, errors: &mut Vec<ConfigError>) -> InventoryFile<'a> {
    let mut walker = Walker {
        events: Reader::new(text),
        file,
        errors,
    };
    walker.file().unwrap_or_default()
}

struct Walker<'a, 'e> {
    events: Reader<'a>,
    file: &'e Path,
    errors: &'e mut Vec<ConfigError>,
}

/// The YAML is malformed (already reported): nothing after it can be read.
struct Malformed;

type Walk<T> = Result<T, Malformed>;

impl<'a> Walker<'a, '_> {
    fn file(&mut self) -> Walk<InventoryFile<'a>> {
        let first = self.next()?;
        let mut file = InventoryFile::default();
        if let Some(at) = self.open_mapping(None, first)? {
            let seen = self.mapping("inventory file", FILE_KEYS, |w, _| {
                w.list("regions", |w, item| {
                    if let Some(region) = w.region(item)? {
                        file.regions.push(region);
                    }
                    Ok(())
                })
            })?;
            self.require(at, seen, FILE_KEYS, &["regions"]);
        }
        // Reads past the document's end, where a second document would be an error.
        self.next()?;
        Ok(file)
    }

    fn region(&mut self, first: Event<'a>) -> Walk<Option<RawRegion<'a>>> {
        let Some(at) = self.open_mapping(None, first)? else {
            return Ok(None);
        };
        let (mut name, mut probe, mut branches) = (None, ProbeOverrides::default(), Vec::new());
        let seen = self.mapping("region", REGION_KEYS, |w, key| {
            match key {
                0 => name = w.text("name")?,
                1 => probe = w.probe()?,
                _ => w.list("branches", |w, item| {
                    branches.extend(w.branch(item)?);
                    Ok(())
                })?,
            }
            Ok(())
        })?;
        self.require(at, seen, REGION_KEYS, &["name"]);
        Ok(name.map(|name| RawRegion {
            name,
            probe,
            branches,
        }))
    }

    fn branch(&mut self, first: Event<'a>) -> Walk<Option<RawBranch<'a>>> {
        let Some(at) = self.open_mapping(None, first)? else {
            return Ok(None);
        };
        let (mut name, mut lat, mut lon) = (None, None, None);
        let (mut probe, mut devices) = (ProbeOverrides::default(), Vec::new());
        let seen = self.mapping("branch", BRANCH_KEYS, |w, key| {
            match key {
                0 => name = w.text("name")?,
                1 => lat = w.number("lat", "a number")?,
                2 => lon = w.number("lon", "a number")?,
                3 => probe = w.probe()?,
                _ => w.list("devices", |w, item| {
                    devices.extend(w.device(item)?);
                    Ok(())
                })?,
            }
            Ok(())
        })?;
        self.require(at, seen, BRANCH_KEYS, &["name"]);
        Ok(name.map(|name| RawBranch {
            name,
            lat,
            lon,
            probe,
            devices,
        }))
    }

    fn device(&mut self, first: Event<'a>) -> Walk<Option<RawDevice<'a>>> {
        let Some(at) = self.open_mapping(None, first)? else {
            return Ok(None);
        };
        let (mut name, mut address, mut kind) = (None, None, None);
        let (mut labels, mut probe) = (Vec::new(), ProbeOverrides::default());
        let seen = self.mapping("device", DEVICE_KEYS, |w, key| {
            match key {
                0 => name = w.text("name")?,
                1 => address = w.text("address")?,
                2 => kind = w.text("kind")?,
                3 => labels = w.labels()?,
                _ => probe = w.probe()?,
            }
            Ok(())
        })?;
        self.require(at, seen, DEVICE_KEYS, &["name", "address", "kind"]);
        Ok(match (name, address, kind) {
            (Some(name), Some(address), Some(kind)) => Some(RawDevice {
                name,
                address,
                kind,
                labels,
                probe,
            }),
            _ => None,
        })
    }

    fn probe(&mut self) -> Walk<ProbeOverrides> {
        let mut probe = ProbeOverrides::default();
        let first = self.next()?;
        if matches!(&first, Event::Scalar(s) if s.is_null()) {
            return Ok(probe);
        }
        if self.open_mapping(Some("probe"), first)?.is_none() {
            return Ok(probe);
        }
        self.mapping("probe", PROBE_KEYS, |w, key| {
            let (name, p) = (PROBE_KEYS[key], &mut probe);
            // Owned: probe overrides are shared with the settings file, read by serde.
            let owned = |t: Spanned<Text>| Spanned {
                value: t.value.into_owned(),
                at: t.at,
            };
            match key {
                0 => p.interval = w.optional_text(name)?.map(owned),
                1 => p.timeout = w.optional_text(name)?.map(owned),
                2 => p.packets = w.number(name, "a whole number")?,
                3 => p.packet_spacing = w.optional_text(name)?.map(owned),
                4 => p.down_after = w.number(name, "a whole number")?,
                5 => p.up_after = w.number(name, "a whole number")?,
                _ => p.retry_interval = w.optional_text(name)?.map(owned),
            }
            Ok(())
        })?;
        Ok(probe)
    }

    /// Free-form `key: value` text pairs.
    fn labels(&mut self) -> Walk<Vec<(Text<'a>, Text<'a>)>> {
        let mut labels: Vec<(Text<'a>, Text<'a>)> = Vec::new();
        let first = self.next()?;
        if matches!(&first, Event::Scalar(s) if s.is_null()) {
            return Ok(labels);
        }
        if self.open_mapping(Some("labels"), first)?.is_none() {
            return Ok(labels);
        }
        loop {
            let key = match self.next()? {
                Event::MappingEnd => return Ok(labels),
                Event::Scalar(key) => key,
                collection => {
                    self.collection_as_key(collection)?;
                    continue;
                }
            };
            if labels.iter().any(|(k, _)| *k == key.value) {
                self.error(key.at, format!("duplicate key {:?}", key.value));
                self.skip_value()?;
            } else if key.is_null() || key.value.trim().is_empty() {
                self.error(key.at, "labels: a label name is empty");
                self.skip_value()?;
            } else if let Some(value) = self.text(&format!("labels.{}", key.value))? {
                labels.push((key.value, value.value));
            }
        }
    }

    /// Walks the keys of a mapping whose start was read, up to its end: `value(walker,
    /// index of the key in known)` reads the value of each known key; unknown
    /// and repeated keys are reported and their values skipped. Returns the keys seen, as
    /// bits by index, with every bit set after an unknown key: that key is most likely
    /// the missing one misspelt, and is reported as such already.
    fn mapping(
        &mut self,
        section: &str,
        known: &[&str],
        mut value: impl FnMut(&mut Self, usize) -> Walk<()>,
    ) -> Walk<u32> {
        debug_assert!(known.len() <= 32);
        let (mut seen, mut unknown) = (0u32, false);
        loop {
            let key = match self.next()? {
                Event::MappingEnd if unknown => return Ok(u32::MAX),
                Event::MappingEnd => return Ok(seen),
                Event::Scalar(key) => key,
                collection => {
                    self.collection_as_key(collection)?;
                    continue;
                }
            };
            match known.iter().position(|k| *k == key.value) {
                Some(i) if seen & (1 << i) != 0 => {
                    self.error(key.at, format!("duplicate key {:?}", key.value));
                    self.skip_value()?;
                }
                Some(i) => {
                    seen |= 1 << i;
                    value(self, i)?;
                }
                None => {
                    self.error(key.at, unknown_key(Some(section), &key.value, known));
                    self.skip_value()?;
                    unknown = true;
                }
            }
        }
    }

    /// Reports every key of `required` that `seen` lacks, at the mapping's start.
    fn require(&mut self, at: Location, seen: u32, known: &[&str], required: &[&str]) {
        for name in required {
            let i = known.iter().position(|k| k == name).expect("a known key");
            if seen & (1 << i) == 0 {
                self.error(at, format!("missing required key {name:?}"));
            }
        }
    }

    /// A list under `key`: `item(walker, first event of the item)` reads each item.
    fn list(
        &mut self,
        key: &str,
        mut item: impl FnMut(&mut Self, Event<'a>) -> Walk<()>,
    ) -> Walk<()> {
        match self.next()? {
            Event::SequenceStart(_) => loop {
                match self.next()? {
                    Event::SequenceEnd => return Ok(()),
                    first => item(self, first)?,
                }
            },
            other => {
                self.error(start_of(&other), format!("{key}: expected a list"));
                self.skip(other)
            }
        }
    }

    /// The place of a mapping that starts with `first`; otherwise reports the node as
    /// not a mapping, skips it and returns None.
    fn open_mapping(&mut self, key: Option<&str>, first: Event<'a>) -> Walk<Option<Location>> {
        if let Event::MappingStart(at) = first {
            return Ok(Some(at));
        }
        let message = match key {
            Some(key) => format!("{key}: expected a mapping (key: value)"),
            None => "expected a mapping (key: value)".to_string(),
        };
        self.error(start_of(&first), message);
        self.skip(first)?;
        Ok(None)
    }

    /// A required single value; null is an error.
    fn text(&mut self, key: &str) -> Walk<Option<Spanned<Text<'a>>>> {
        match self.scalar(key)? {
            Some(s) if s.is_null() => {
                self.error(s.at, format!("{key}: expected a value, found nothing"));
                Ok(None)
            }
            other => Ok(other.map(spanned)),
        }
    }

    /// An optional single value; null reads as absent.
    fn optional_text(&mut self, key: &str) -> Walk<Option<Spanned<Text<'a>>>> {
        Ok(self.scalar(key)?.filter(|s| !s.is_null()).map(spanned))
    }

    /// An optional number, written plain or quoted; null reads as absent.
    fn number<T: FromStr>(&mut self, key: &str, what: &str) -> Walk<Option<Spanned<T>>> {
        let Some(text) = self.optional_text(key)? else {
            return Ok(None);
        };
        match text.value.trim().parse() {
            Ok(value) => Ok(Some(Spanned { value, at: text.at })),
            Err(_) => {
                let message = format!("{key}: expected {what}, found {:?}", text.value);
                self.error(text.at, message);
                Ok(None)
            }
        }
    }

    /// The next node if it is a single value; otherwise reports and skips it.
    fn scalar(&mut self, key: &str) -> Walk<Option<Scalar<'a>>> {
        match self.next()? {
            Event::Scalar(s) => Ok(Some(s)),
            other => {
                let message = format!("{key}: expected a single value, not a list or mapping");
                self.error(start_of(&other), message);
                self.skip(other)?;
                Ok(None)
            }
        }
    }

    /// A list or mapping where a key belongs: reported, then skipped with its value.
    fn collection_as_key(&mut self, key: Event<'a>) -> Walk<()> {
        self.error(
            start_of(&key),
            "a key must be a single value, not a list or mapping",
        );
        self.skip(key)?;
        self.skip_value()
    }

    fn skip_value(&mut self) -> Walk<()> {
        let first = self.next()?;
        self.skip(first)
    }

    /// Reads to the end of the node that starts with `first`.
    fn skip(&mut self, first: Event<'a>) -> Walk<()> {
        let mut open = usize::from(matches!(
            first,
            Event::MappingStart(_) | Event::SequenceStart(_)
        ));
        while open > 0 {
            match self.next()? {
                Event::MappingStart(_) | Event::SequenceStart(_) => open += 1,
                Event::MappingEnd | Event::SequenceEnd => open -= 1,
                Event::Scalar(_) | Event::End => {}
            }
        }
        Ok(())
    }

    fn next(&mut self) -> Walk<Event<'a>> {
        self.events.next().map_err(|e| {
            let place = match e.at.line {
                0 => Place::of_file(self.file),
                _ => Place::at(self.file, e.at),
            };
            self.errors.push(ConfigError::new(place, e.message));
            Malformed
        })
    }

    fn error(&mut self, at: Location, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(Place::at(self.file, at), message));
    }
}

fn spanned(s: Scalar<'_>) -> Spanned<Text<'_>> {
    Spanned {
        value: s.value,
        at: s.at,
    }
}

/// Where a node starts (an empty document "starts" at its top).
fn start_of(event: &Event<'_>) -> Location {
    match event {
        Event::MappingStart(at) | Event::SequenceStart(at) => *at,
        Event::Scalar(s) => s.at,
        Event::MappingEnd | Event::SequenceEnd | Event::End => Location { line: 1, column: 1 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            d.labels,
            [("isp".into(), "magti".into()), ("tier".into(), "1".into())]
        );
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
                "f.yaml:3:5: region: unknown key \"colour\" (known keys: name, probe, branches)",
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
        assert_eq!(devices[1].labels, [("isp".into(), "magti".into())]);
    }
}
