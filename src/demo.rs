//! Generates a complete example configuration of loopback devices (`wardops demo`).
//!
//! The shape imitates a real customer: ten Georgian regions, branches of eight devices
//! (router, switch, two to four ATMs, payment terminals, a camera, an access point),
//! coordinates around each city, ISP and tier labels. Every address is in 127.0.0.0/8,
//! so the demo can be pinged for real on any Linux machine.
//!
//! Dependencies as a bank has them: a branch's first device (its router) is its
//! gateway, and the branch's other devices name it as their parent; a region's first
//! branch is its hub, whose gateway is the region's core router, and every other
//! gateway of the region names the core (written once, as the region's `parents:`,
//! and as each branch's: the cascade skips a level that names the device itself).
//!
//! Device `i` is a pure function of `i` ([`device`]), its parent included: `demo --devices N` writes exactly
//! the first N devices of any larger run, with the same names, addresses and places, so
//! benchmarks at different sizes compare like with like and a grown demo keeps history.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::config::duration;
use crate::config::{Env, ProbeSettings, Settings};

/// Regions and their city centres (lat, lon).
pub const REGIONS: [(&str, f64, f64); 10] = [
    ("tbilisi", 41.7151, 44.8271),
    ("batumi", 41.6168, 41.6367),
    ("kutaisi", 42.2679, 42.6946),
    ("rustavi", 41.5495, 44.9930),
    ("zugdidi", 42.5088, 41.8709),
    ("gori", 41.9842, 44.1158),
    ("poti", 42.1462, 41.6715),
    ("telavi", 41.9198, 45.4731),
    ("zestaponi", 42.1102, 43.0425),
    ("akhaltsikhe", 41.6390, 42.9826),
];

pub const DEVICES_PER_BRANCH: usize = 8;

/// Branches per /24: each takes a block of eight host addresses, starting at .1, so
/// 31 blocks end at .248 and no device is ever a .0 or .255.
const BRANCHES_PER_SUBNET: usize = 31;

/// Second octets 1..=255 (127.0.x.x is left alone: the appliance itself and local
/// resolvers live there), 256 third octets, 31 branches of 8 devices in each /24.
pub const MAX_DEVICES: usize = 255 * 256 * BRANCHES_PER_SUBNET * DEVICES_PER_BRANCH;

/// The eight slots of a branch. The last four vary between three layouts so that
/// branches have two to four ATMs, like real ones.
const LAYOUTS: [[&str; DEVICES_PER_BRANCH]; 3] = [
    [
        "router", "switch", "atm", "atm", "atm", "pos", "camera", "ap",
    ],
    [
        "router", "switch", "atm", "atm", "pos", "pos", "camera", "ap",
    ],
    [
        "router", "switch", "atm", "atm", "atm", "atm", "pos", "camera",
    ],
];

const ISPS: [&str; 3] = ["magti", "silknet", "beeline"];

/// One generated device, as written to the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoDevice {
    pub name: String,
    pub address: Ipv4Addr,
    pub region: &'static str,
    pub branch: String,
    pub kind: &'static str,
    pub isp: &'static str,
    pub tier: &'static str,
    /// The device it depends on: its branch's gateway, or for a gateway its region's
    /// core router; None for a core router.
    pub parent: Option<String>,
}

/// The branch that device `i` belongs to (global number) and its number inside its region.
fn branch_of(i: usize) -> (usize, usize) {
    let b = i / DEVICES_PER_BRANCH;
    (b, b / REGIONS.len())
}

fn branch_name(region: &str, local: usize) -> String {
    format!("{region}-b{local:04}")
}

/// Device number `i` (from 0). Panics if `i >= MAX_DEVICES`.
pub fn device(i: usize) -> DemoDevice {
    assert!(i < MAX_DEVICES, "demo device {i} is beyond {MAX_DEVICES}");
    let (b, local) = branch_of(i);
    let slot = i % DEVICES_PER_BRANCH;
    let region = REGIONS[b % REGIONS.len()].0;
    let layout = &LAYOUTS[b % LAYOUTS.len()];
    let kind = layout[slot];
    // Numbered within its kind: the second ATM is atm-2 whatever its slot.
    let number = layout[..slot].iter().filter(|k| **k == kind).count() + 1;
    let branch = branch_name(region, local);
    let host = 1 + (b % BRANCHES_PER_SUBNET) * DEVICES_PER_BRANCH + slot;
    let subnet = b / BRANCHES_PER_SUBNET;
    let address = Ipv4Addr::new(
        127,
        (1 + subnet / 256) as u8,
        (subnet % 256) as u8,
        host as u8,
    );
    let parent = if slot > 0 {
        Some(gateway_of(b))
    } else if local > 0 {
        Some(gateway_of(b % REGIONS.len()))
    } else {
        None
    };
    DemoDevice {
        parent,
        name: format!("{branch}-{kind}-{number}"),
        address,
        region,
        branch,
        kind,
        isp: ISPS[(local + b) % ISPS.len()],
        tier: match local % 10 {
            0 => "1",
            1..=3 => "2",
            _ => "3",
        },
    }
}

/// The name of branch `b`'s gateway, its first device (a router in every layout).
fn gateway_of(b: usize) -> String {
    let region = REGIONS[b % REGIONS.len()].0;
    format!(
        "{}-{}-1",
        branch_name(region, b / REGIONS.len()),
        LAYOUTS[0][0]
    )
}

/// Coordinates of a branch: a golden-angle spiral around its city, so branches spread
/// evenly, never coincide, and stay within about 0.3° of the centre.
pub fn branch_position(region: usize, local: usize) -> (f64, f64) {
    let (_, lat, lon) = REGIONS[region];
    let k = local as f64;
    let radius = 0.3 * (k / (k + 40.0)).sqrt();
    let angle = k * 2.399_963;
    let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
    (
        round(lat + radius * angle.sin()),
        round(lon + radius * angle.cos()),
    )
}

/// What was written, as `Inventory::summary` would put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    pub devices: usize,
    pub branches: usize,
    pub regions: usize,
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} devices in {} branches of {} regions",
            self.devices, self.branches, self.regions
        )
    }
}

/// The settings file of the demo; validated before anything is written.
fn settings_text(interval: Option<Duration>) -> String {
    let mut probe = ProbeSettings::default();
    if let Some(i) = interval {
        // A short interval takes the retry and timeout down with it: a probe and its
        // retry each fit in half an interval, so `--interval 1s` is valid and confirms
        // an outage within ~2 s of the first failed probe's slot.
        probe.interval = i;
        probe.retry_interval = probe.retry_interval.min(i / 2);
        let spacing = probe.packet_spacing * probe.packets.saturating_sub(1);
        probe.timeout = probe.timeout.min((i / 2).saturating_sub(spacing));
    }
    let d = duration::format;
    format!(
        "# Generated by `wardops demo`. Every device is a loopback address (127.0.0.0/8).\n\
         listen: 127.0.0.1:5001\n\
         database_url: sqlite://data/wardops.db\n\
         inventory: inventory\n\
         probe:\n  \
           interval: {}\n  timeout: {}\n  packets: {}\n  packet_spacing: {}\n  \
           down_after: {}\n  up_after: {}\n  retry_interval: {}\n",
        d(probe.interval),
        d(probe.timeout),
        probe.packets,
        d(probe.packet_spacing),
        probe.down_after,
        probe.up_after,
        d(probe.retry_interval),
    )
}

/// Writes `out/wardops.yaml` and `out/inventory/<region>.yaml` for the first `devices`
/// demo devices. Region files of a previous, larger run that this one does not need are
/// removed; other files are left alone.
pub fn write(out: &Path, devices: usize, interval: Option<Duration>) -> io::Result<DemoSummary> {
    write_demo(out, devices, interval, true)
}

/// [`write`] without `parents:`: every device on its own, for the tests and benchmarks
/// that drive one device at a time and expect each failure to be its own `down`.
pub fn write_flat(
    out: &Path,
    devices: usize,
    interval: Option<Duration>,
) -> io::Result<DemoSummary> {
    write_demo(out, devices, interval, false)
}

fn write_demo(
    out: &Path,
    devices: usize,
    interval: Option<Duration>,
    parents: bool,
) -> io::Result<DemoSummary> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    if devices == 0 || devices > MAX_DEVICES {
        return Err(invalid(format!(
            "--devices must be 1 to {MAX_DEVICES}, not {devices}"
        )));
    }
    let settings = settings_text(interval);
    let settings_path = out.join("wardops.yaml");
    let none = Env {
        listen: None,
        database_url: None,
        users_file: None,
        data_dir: None,
        cluster: Default::default(),
    };
    Settings::parse(&settings_path, &settings, &none).map_err(|e| invalid(e.to_string()))?;

    let inventory = out.join("inventory");
    fs::create_dir_all(&inventory)?;
    fs::write(&settings_path, settings)?;
    let branches = devices.div_ceil(DEVICES_PER_BRANCH);
    let mut regions = 0;
    for (r, (region, _, _)) in REGIONS.iter().enumerate() {
        let path = inventory.join(format!("{region}.yaml"));
        // Branch b belongs to region b % 10; this region's first branch is b = r.
        if r >= branches {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => continue,
            }
        }
        regions += 1;
        let mut w = BufWriter::new(File::create(&path)?);
        write_region(&mut w, r, devices, parents)?;
        w.flush()?;
    }
    Ok(DemoSummary {
        devices,
        branches,
        regions,
    })
}

/// One region's file: its branches in order, each with its devices.
fn write_region(
    w: &mut impl Write,
    region: usize,
    devices: usize,
    parents: bool,
) -> io::Result<()> {
    let name = REGIONS[region].0;
    writeln!(w, "# Generated by `wardops demo`: region {name}.")?;
    writeln!(w, "regions:\n  - name: {name}")?;
    if parents {
        // The hub's gateway is the core; it skips this level, as it names itself.
        writeln!(w, "    parents: [{}]", gateway_of(region))?;
    }
    writeln!(w, "    branches:")?;
    let mut b = region;
    while b * DEVICES_PER_BRANCH < devices {
        let local = b / REGIONS.len();
        let (lat, lon) = branch_position(region, local);
        writeln!(w, "      - name: {}", branch_name(name, local))?;
        writeln!(w, "        lat: {lat}\n        lon: {lon}")?;
        if parents {
            writeln!(w, "        parents: [{}]", gateway_of(b))?;
        }
        writeln!(w, "        devices:")?;
        let first = b * DEVICES_PER_BRANCH;
        for i in first..devices.min(first + DEVICES_PER_BRANCH) {
            let d = device(i);
            writeln!(
                w,
                "          - {{ name: {}, address: {}, kind: {}, labels: {{ isp: {}, tier: \"{}\" }} }}",
                d.name, d.address, d.kind, d.isp, d.tier
            )?;
        }
        b += REGIONS.len();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
