//! The per-device families of `/metrics`, all from one snapshot.
//!
//! A device whose status is still `unknown` has no `wardops_device_up` sample at all:
//! a 0 would page someone for a device nobody has probed yet, and absence is what
//! PromQL's `absent()`/`unless` can reason about.
//!
//! An `unreachable` device (every parent down) does not answer either, so its
//! `wardops_device_up` is 0 and it has a `down_since` like a down one; what tells the two
//! apart is `wardops_device_unreachable` (1 while unreachable, 0 while up or down), so that
//! a rule can page on `down` only (docs/metrics.md).
//!
//! `wardops_device_in_maintenance` is 1 while one of the device's maintenance windows is
//! going on (at the state's clock), so that a rule can leave planned work alone.
//!
//! `wardops_device_degraded` is 1 while the device's RTT or loss over its window is above
//! its thresholds (a warning beside the status: the device is `up`), else 0; absent while
//! unknown, like the other 0/1 families.
//!
//! Every per-device family is labelled with `device` alone; what else is known of the
//! device (region, branch, kind, address, inventory labels) is on its
//! `wardops_device_info` series, to join on `device` (the kube-state-metrics pattern).
//! Repeating four labels on nine families made the exposition ~730 bytes a device,
//! past VictoriaMetrics' default scrape size at ~23,000 devices; with one label it is
//! ~630, and a bigger fleet is scraped in slices ([`super::shard`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::exposition::{Kind, Writer, label, label_name};
use super::shard::{self, Shard};
use crate::read_model::Ends;
use crate::state::{DeviceStatus, Measurements, Snapshot, Status};

/// The ISP lines of the polled devices among `rows` (`buf` holds their `device` labels).
/// A line whose status is unknown has no `wardops_uplink_up` sample, as an undecided
/// device has no `wardops_device_up`; `wardops_uplink_agent_up` says whether the last
/// poll was answered.
fn uplinks(w: &mut Writer, snapshot: &Snapshot, rows: &[Row], buf: &[u8]) {
    let polled: Vec<(&Row, Option<&crate::state::uplinks::Uplinks>)> = rows
        .iter()
        .filter(|r| snapshot.inventory.devices[r.index].snmp.is_some())
        .map(|r| {
            let name = &snapshot.inventory.devices[r.index].name;
            (r, snapshot.uplinks.get(name).map(|u| &**u))
        })
        .collect();
    if polled.is_empty() {
        return;
    }
    let device_labels = |row: &Row| &buf[row.labels.0..row.labels.1];
    let agent = "wardops_uplink_agent_up";
    w.family(
        agent,
        "1 if the router's SNMP agent answered its last poll, else 0; absent before the first",
        Kind::Gauge,
    );
    for (row, _) in &polled {
        if let Some(answered) = snapshot.runtime[row.index].uplink_agent_answered() {
            w.sample(agent, device_labels(row), u64::from(answered));
        }
    }
    let backup = "wardops_device_on_backup_line";
    w.family(
        backup,
        "1 while the router is up and one of its ISP lines is down (the branch works on its \
         backup line), else 0",
        Kind::Gauge,
    );
    for (row, lines) in &polled {
        let on = crate::read_model::uplinks::on_backup_line(&row.status, *lines);
        w.sample(backup, device_labels(row), u64::from(on));
    }
    // One label set per line: `device` and `isp`.
    let mut sets: Vec<(usize, Vec<u8>, &crate::state::uplinks::Line)> = Vec::new();
    for (row, lines) in &polled {
        for line in lines.iter().flat_map(|u| u.lines.iter()) {
            let mut set = device_labels(row).to_vec();
            label(&mut set, false, "isp", &line.isp);
            sets.push((row.index, set, line));
        }
    }
    let up = "wardops_uplink_up";
    w.family(
        up,
        "1 if the ISP line's interface is up, 0 if down (also when shut on purpose); absent \
         while unknown",
        Kind::Gauge,
    );
    for (_, set, line) in &sets {
        use crate::state::uplinks::LineStatus;
        match line.status {
            LineStatus::Up => w.sample(up, set, 1u64),
            LineStatus::Down => w.sample(up, set, 0u64),
            LineStatus::Unknown => {}
        }
    }
    type Octets = fn(&crate::state::uplinks::Traffic) -> Option<u64>;
    let counters: [(&str, &str, Octets); 2] = [
        (
            "wardops_uplink_receive_bytes_total",
            "Octets the ISP line's interface received (ifHCInOctets), as last read",
            |t| t.in_octets,
        ),
        (
            "wardops_uplink_transmit_bytes_total",
            "Octets the ISP line's interface sent (ifHCOutOctets), as last read",
            |t| t.out_octets,
        ),
    ];
    for (name, help, octets) in counters {
        w.family(name, help, Kind::Counter);
        for (index, set, line) in &sets {
            let traffic = snapshot.runtime[*index].uplink_traffic(&line.isp);
            if let Some(v) = octets(&traffic) {
                w.sample(name, set, v);
            }
        }
    }
}

/// Rough bytes of exposition per device, to allocate once.
pub const BYTES_PER_DEVICE: usize = 700;

/// What one device contributes, copied once so that every family reads the same
/// measurements and each measurement mutex is held for one copy only.
struct Row {
    status: DeviceStatus,
    m: Measurements,
    in_maintenance: bool,
    /// The `device` label, escaped, in the shared label buffer.
    labels: (usize, usize),
    /// Its index in the inventory.
    index: usize,
}

/// The per-device families of the devices `shard` holds (None: all) that `keep` keeps,
/// and the fleet totals when it is the whole exposition or its first slice.
pub fn encode(
    w: &mut Writer,
    snapshot: &Snapshot,
    mut ends: Ends,
    shard: Option<Shard>,
    keep: &dyn Fn(&str) -> bool,
) {
    let n = snapshot.inventory.devices.len();
    let mut buf = Vec::with_capacity(n * 40);
    let mut rows = Vec::with_capacity(n);
    for (index, (device, status, runtime)) in snapshot.devices().enumerate() {
        if !shard::holds(shard, &device.name) || !keep(&device.name) {
            continue;
        }
        let start = buf.len();
        label(&mut buf, true, "device", &device.name);
        rows.push(Row {
            index,
            status: *status,
            m: runtime.measurements(),
            in_maintenance: ends.of_device(device).is_some(),
            labels: (start, buf.len()),
        });
    }
    let labels = |row: &Row| &buf[row.labels.0..row.labels.1];

    let up = "wardops_device_up";
    w.family(
        up,
        "1 if the device answers pings, 0 if it is down or unreachable; absent while unknown",
        Kind::Gauge,
    );
    // Each 0/1 status family has a sample for every decided device, none while unknown.
    let decided = |row: &Row, is: fn(Status) -> bool| {
        (row.status.status != Status::Unknown).then(|| u64::from(is(row.status.status)))
    };
    for row in &rows {
        if let Some(v) = decided(row, |s| s == Status::Up) {
            w.sample(up, labels(row), v);
        }
    }
    let unreachable = "wardops_device_unreachable";
    w.family(
        unreachable,
        "1 if the device does not answer because every parent it depends on is down or \
         unreachable (no alert of its own), 0 if up or down; absent while unknown",
        Kind::Gauge,
    );
    for row in &rows {
        if let Some(v) = decided(row, |s| s == Status::Unreachable) {
            w.sample(unreachable, labels(row), v);
        }
    }
    let degraded = "wardops_device_degraded";
    w.family(
        degraded,
        "1 while the device is up with RTT or loss over its window above its thresholds \
         (probe.degraded), else 0; absent while unknown",
        Kind::Gauge,
    );
    for row in &rows {
        if let Some(v) = decided(row, |_| true) {
            w.sample(
                degraded,
                labels(row),
                v & u64::from(row.status.degraded.is_some()),
            );
        }
    }
    let maintenance = "wardops_device_in_maintenance";
    w.family(
        maintenance,
        "1 while one of the device's maintenance windows is going on (no alert opens for an \
         outage that begins inside it until it ends), else 0",
        Kind::Gauge,
    );
    for row in &rows {
        w.sample(maintenance, labels(row), u64::from(row.in_maintenance));
    }
    let since = "wardops_device_down_since_timestamp_seconds";
    w.family(
        since,
        "When the current outage began (first failed probe); only for down and unreachable \
         devices",
        Kind::Gauge,
    );
    let out = |s: Status| matches!(s, Status::Down | Status::Unreachable);
    for row in rows.iter().filter(|r| out(r.status.status)) {
        if let Some(t) = row.status.down_since {
            w.sample(since, labels(row), t.timestamp_millis() as f64 / 1000.0);
        }
    }
    let rtt = "wardops_device_rtt_seconds";
    w.family(
        rtt,
        "Round-trip time of the last probe; absent when it got no reply",
        Kind::Gauge,
    );
    for row in &rows {
        if let Some(d) = row.m.last_rtt {
            w.sample(rtt, labels(row), d.as_secs_f64());
        }
    }
    type Counter = (&'static str, &'static str, fn(&Measurements) -> u64);
    let counters: [Counter; 3] = [
        (
            "wardops_device_probes_total",
            "Probes run against the device",
            |m| m.probes,
        ),
        (
            "wardops_device_requests_total",
            "ICMP echo requests sent to the device",
            |m| m.requests,
        ),
        (
            "wardops_device_replies_total",
            "ICMP echo replies received from the device",
            |m| m.replies,
        ),
    ];
    for (name, help, value) in counters {
        w.family(name, help, Kind::Counter);
        for row in &rows {
            w.sample(name, labels(row), value(&row.m));
        }
    }

    let info = "wardops_device_info";
    w.family(
        info,
        "Inventory facts of each device; inventory labels as label_<key>",
        Kind::Info,
    );
    let mut set = Vec::with_capacity(256);
    let mut address = String::new();
    // Label keys repeat across devices: sanitise each once.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut used: Vec<usize> = Vec::new();
    for row in &rows {
        let device = &snapshot.inventory.devices[row.index];
        set.clear();
        set.extend_from_slice(labels(row));
        label(&mut set, false, "region", &device.region);
        label(&mut set, false, "branch", &device.branch);
        label(&mut set, false, "kind", &device.kind);
        address.clear();
        let _ = write!(address, "{}", device.address);
        label(&mut set, false, "address", &address);
        used.clear();
        for (key, value) in &device.labels {
            // Ids are per distinct sanitised name, so colliding keys share one.
            let id = *ids.entry(key).or_insert_with(|| {
                let name = label_name(key);
                names.iter().position(|n| *n == name).unwrap_or_else(|| {
                    names.push(name);
                    names.len() - 1
                })
            });
            // A label name may appear once per sample.
            if !used.contains(&id) {
                label(&mut set, false, &names[id], value);
                used.push(id);
            }
        }
        w.sample(info, &set, 1u64);
    }
    uplinks(w, snapshot, &rows, &buf);

    if !shard::has_totals(shard) {
        return;
    }
    // The totals count the whole fleet, whatever slice carries them.
    let mut counts = [0u64; 4];
    for status in &snapshot.status {
        counts[status.status as usize] += 1;
    }
    let devices = "wardops_devices";
    w.family(devices, "Devices by status", Kind::Gauge);
    for status in Status::ALL {
        let mut l = Vec::new();
        label(&mut l, true, "status", status.as_str());
        w.sample(devices, &l, counts[status as usize]);
    }
    let degraded = "wardops_devices_degraded";
    w.family(
        degraded,
        "Devices that are up and degraded (RTT or loss above their thresholds)",
        Kind::Gauge,
    );
    let n = snapshot
        .status
        .iter()
        .filter(|s| s.degraded.is_some())
        .count();
    w.sample(degraded, b"", n as u64);
    let version = "wardops_state_version";
    w.family(
        version,
        "Version of the device state this scrape was encoded from",
        Kind::Gauge,
    );
    w.sample(version, b"", snapshot.version);
}
