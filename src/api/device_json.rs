//! The JSON shape of a device, shared by the list and the detail routes, written by
//! hand straight into the response buffer. The list writes tens of thousands of these
//! per request, and going through serde cost ~0.8 µs a device, most of it in generic
//! per-field machinery; this writer produces the same bytes as serde_json would (a
//! unit test holds it to that) at a fraction of the cost.

use std::io::Write;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::ser::{CompactFormatter, Formatter};

use crate::config::Device;
use crate::read_model::TimeWriter;
use crate::state::{DeviceStatus, Measurements};

pub mod kept;

/// What a device's JSON says beyond its inventory entry, status and measurements.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extras<'a> {
    /// For an unreachable device: its parents that are down or unreachable
    /// ([`crate::read_model::unreachable_because`]).
    pub unreachable_because: Option<&'a [&'a str]>,
    /// What only the store knows; absent when the appliance keeps no store.
    pub open_alerts: Option<u32>,
    /// When the maintenance going on ends, if any is ([`super::maintenance::Ends`]).
    pub maintenance_ends_at: Option<DateTime<Utc>>,
    /// A polled router's ISP lines ([`crate::read_model::uplinks`]); absent for the
    /// devices without `snmp:`.
    pub uplinks: Option<&'a crate::read_model::uplinks::UplinksView<'a>>,
}

/// Writes the fields of one device, `"name":…` to `"degraded_because":…` (with
/// `"unreachable_because":…` and `"open_alerts":…` when given), without the enclosing
/// braces: the list wraps each in `{}`, the detail route adds its own fields around them.
///
/// The fields come in runs that depend on different things, each written by its own
/// function so that the list can keep the versioned runs of a state version ([`kept`]):
/// the head (inventory entry and versioned status), the live measurements, the graph
/// (parents, and why an unreachable device is so), the maintenance (as of now), the
/// `degraded` condition (versioned) and the tail (ISP lines, open alerts: live).
pub fn write_device_fields(
    out: &mut Vec<u8>,
    times: &mut TimeWriter,
    device: &Device,
    status: &DeviceStatus,
    m: &Measurements,
    extras: Extras,
) {
    let Extras {
        unreachable_because,
        open_alerts,
        maintenance_ends_at,
        uplinks,
    } = extras;
    write_head(out, times, device, status);
    write_measurements(out, times, m);
    write_graph(out, device, unreachable_because);
    write_maintenance(out, times, maintenance_ends_at);
    write_degraded(out, times, status.degraded.as_ref());
    write_tail(out, uplinks, open_alerts);
}

/// `"name":…` to `"status_changed_at":…`: the inventory entry and the versioned status.
fn write_head(out: &mut Vec<u8>, times: &mut TimeWriter, device: &Device, status: &DeviceStatus) {
    out.extend_from_slice(b"\"name\":");
    write_str(out, &device.name);
    out.extend_from_slice(b",\"address\":\"");
    write_ip(out, device.address);
    out.extend_from_slice(b"\",\"region\":");
    write_str(out, &device.region);
    out.extend_from_slice(b",\"branch\":");
    write_str(out, &device.branch);
    out.extend_from_slice(b",\"kind\":");
    write_str(out, &device.kind);
    out.extend_from_slice(b",\"labels\":{");
    for (i, (key, value)) in device.labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_str(out, value);
    }
    // The old runbooks' field name, kept (design: compatibility).
    out.extend_from_slice(b"},\"ping_status\":\"");
    out.extend_from_slice(status.status.as_str().as_bytes());
    out.extend_from_slice(b"\",\"down_since\":");
    write_time(out, times, status.down_since);
    out.extend_from_slice(b",\"status_changed_at\":");
    write_time(out, times, status.changed_at);
}

/// `,"last_rtt_ms":…,"loss":…,"last_probe_at":…`: live, not versioned.
fn write_measurements(out: &mut Vec<u8>, times: &mut TimeWriter, m: &Measurements) {
    out.extend_from_slice(b",\"last_rtt_ms\":");
    // Microsecond resolution keeps the figure short ("0.123", not "0.12345678").
    write_f64(out, m.last_rtt.map(|d| d.as_micros() as f64 / 1000.0));
    out.extend_from_slice(b",\"loss\":");
    write_f64(out, m.last_loss);
    out.extend_from_slice(b",\"last_probe_at\":");
    write_time(out, times, m.last_probe_at);
}

/// `,"parents":[…]` and, when given, `,"unreachable_because":[…]`.
fn write_graph(out: &mut Vec<u8>, device: &Device, unreachable_because: Option<&[&str]>) {
    out.extend_from_slice(b",\"parents\":");
    write_strs(out, device.parents.iter().map(|p| &**p));
    if let Some(because) = unreachable_because {
        out.extend_from_slice(b",\"unreachable_because\":");
        write_strs(out, because.iter().copied());
    }
}

/// `,"in_maintenance":…,"maintenance_ends_at":…`
fn write_maintenance(out: &mut Vec<u8>, times: &mut TimeWriter, ends_at: Option<DateTime<Utc>>) {
    out.extend_from_slice(match ends_at {
        Some(_) => b",\"in_maintenance\":true,\"maintenance_ends_at\":",
        None => b",\"in_maintenance\":false,\"maintenance_ends_at\":",
    });
    write_time(out, times, ends_at);
}

/// `,"uplinks":…` for a polled router, `,"open_alerts":…` when the store's counts are given.
fn write_tail(
    out: &mut Vec<u8>,
    uplinks: Option<&crate::read_model::uplinks::UplinksView>,
    open_alerts: Option<u32>,
) {
    if let Some(uplinks) = uplinks {
        // A few routers of a fleet: serde's cost does not matter here.
        out.extend_from_slice(b",\"uplinks\":");
        serde_json::to_writer(&mut *out, uplinks).expect("serialising to a Vec cannot fail");
    }
    // What only the store knows; absent when the appliance keeps no store.
    if let Some(n) = open_alerts {
        out.extend_from_slice(b",\"open_alerts\":");
        let _ = CompactFormatter.write_u32(out, n);
    }
}

/// `"degraded":…,"degraded_since":…,"degraded_because":…` (the last as
/// [`crate::read_model::degraded::Because`] serialises).
fn write_degraded(
    out: &mut Vec<u8>,
    times: &mut TimeWriter,
    degraded: Option<&crate::state::degraded::Degraded>,
) {
    let Some(d) = degraded else {
        out.extend_from_slice(
            b",\"degraded\":false,\"degraded_since\":null,\"degraded_because\":null",
        );
        return;
    };
    out.extend_from_slice(b",\"degraded\":true,\"degraded_since\":");
    write_time(out, times, Some(d.since));
    let because = crate::read_model::degraded::Because::of(d);
    out.extend_from_slice(b",\"degraded_because\":{\"rtt_ms\":");
    write_f64(out, because.rtt_ms);
    out.extend_from_slice(b",\"loss\":");
    write_f64(out, Some(because.loss));
    out.extend_from_slice(b",\"above\":");
    write_strs(out, because.above.iter().copied());
    out.push(b'}');
}

/// A JSON string, escaped as serde_json escapes it. Names and labels almost never need
/// escaping, so they are scanned first and copied whole.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let needs_escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    out.push(b'"');
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| needs_escape(b)) {
        out.extend_from_slice(bytes);
    } else {
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if !needs_escape(b) {
                continue;
            }
            out.extend_from_slice(&bytes[run..i]);
            run = i + 1;
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                0x08 => b'b',
                0x09 => b't',
                0x0a => b'n',
                0x0c => b'f',
                0x0d => b'r',
                _ => 0,
            };
            if short != 0 {
                out.extend_from_slice(&[b'\\', short]);
            } else {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let (hi, lo) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
            }
        }
        out.extend_from_slice(&bytes[run..]);
    }
    out.push(b'"');
}

/// A JSON array of strings.
fn write_strs<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a str>) {
    out.push(b'[');
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, s);
    }
    out.push(b']');
}

/// An address as its `Display` text (what serde writes), IPv4 without the formatter.
fn write_ip(out: &mut Vec<u8>, address: IpAddr) {
    match address {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn write_time(out: &mut Vec<u8>, times: &mut TimeWriter, t: Option<DateTime<Utc>>) {
    match t {
        Some(t) => {
            out.push(b'"');
            times.write(out, t);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// A number with serde_json's own float formatter; `null` when absent or not finite,
/// as serde_json writes NaN and infinities.
fn write_f64(out: &mut Vec<u8>, value: Option<f64>) {
    match value {
        Some(v) if v.is_finite() => {
            let _ = CompactFormatter.write_f64(out, v);
        }
        _ => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;
    use serde::Serialize;

    use super::*;
    use crate::config::Labels;
    use crate::read_model::Rfc3339;
    use crate::state::Status;

    /// The serde definition of a device that the writer replaced: the reference it must
    /// match byte for byte.
    #[derive(Serialize)]
    struct DeviceJson<'a> {
        name: &'a str,
        address: IpAddr,
        region: &'a str,
        branch: &'a str,
        kind: &'a str,
        labels: &'a Labels,
        ping_status: Status,
        down_since: Option<Rfc3339>,
        status_changed_at: Option<Rfc3339>,
        last_rtt_ms: Option<f64>,
        loss: Option<f64>,
        last_probe_at: Option<Rfc3339>,
        parents: Vec<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        unreachable_because: Option<Vec<&'a str>>,
        in_maintenance: bool,
        maintenance_ends_at: Option<Rfc3339>,
        degraded: bool,
        degraded_since: Option<Rfc3339>,
        degraded_because: Option<crate::read_model::degraded::Because>,
        #[serde(skip_serializing_if = "Option::is_none")]
        open_alerts: Option<u32>,
    }

    fn device(name: &str, address: &str, labels: &[(&str, &str)]) -> Device {
        Device {
            name: name.into(),
            address: address.parse().unwrap(),
            region: format!("r-{name}").into(),
            branch: format!("b\\{name}").into(),
            kind: "atm".into(),
            labels: Labels::new(labels.iter().map(|&(k, v)| (k.into(), v.into()))),
            probe: Default::default(),
            parents: Default::default(),
            maintenance: Default::default(),
            snmp: None,
        }
    }

    fn written(
        d: &Device,
        s: &DeviceStatus,
        m: &Measurements,
        because: Option<&[&str]>,
        alerts: Option<u32>,
        ends: Option<DateTime<Utc>>,
    ) -> String {
        let mut out = Vec::new();
        out.push(b'{');
        let extras = Extras {
            unreachable_because: because,
            open_alerts: alerts,
            maintenance_ends_at: ends,
            uplinks: None,
        };
        write_device_fields(&mut out, &mut TimeWriter::default(), d, s, m, extras);
        out.push(b'}');
        String::from_utf8(out).unwrap()
    }

    /// An up device degraded with these window figures.
    fn degraded(
        rtt_us: Option<u32>,
        sent: u32,
        received: u32,
        above: (bool, bool),
    ) -> DeviceStatus {
        use crate::state::degraded::{Above, Degraded, Figures};
        let since = Utc.timestamp_opt(1_800_000_200, 1_000_000).unwrap();
        DeviceStatus {
            status: Status::Up,
            down_since: None,
            changed_at: Some(since),
            degraded: Some(Degraded {
                since,
                figures: Figures {
                    rtt_us,
                    sent,
                    received,
                },
                above: Above {
                    rtt: above.0,
                    loss: above.1,
                },
            }),
        }
    }

    #[test]
    fn the_writer_matches_serde_json_byte_for_byte() {
        let controls: String = (0u8..0x20).map(char::from).chain(['\x7f']).collect();
        let mut devices = [
            device("plain-atm-1", "127.10.0.1", &[("isp", "x"), ("floor", "2")]),
            device("q\"uote\\back\\\"", "255.255.255.0", &[("k\"", "v\\")]),
            device(
                "</script><script>alert(1)</script>",
                "0.0.0.0",
                &[("<b>", "&amp;")],
            ),
            device(
                "тбилиси-банкомат-1 ✓ 𝄞",
                "::1",
                &[("город", "Тбилиси"), ("emoji", "🛰")],
            ),
            device(&controls, "fe80::1:2:3:4", &[(&controls, &controls)]),
            device("", "2001:db8::ffff:1.2.3.4", &[]),
        ];
        // No parents, one, and several that need escaping.
        let parent_lists: [&[&str]; 3] = [&[], &["gw-1"], &["q\"gw\\", "</script>", &controls]];
        for (i, d) in devices.iter_mut().enumerate() {
            d.parents = parent_lists[i % 3].iter().map(|&p| p.into()).collect();
        }
        let t = |secs, nanos| Some(Utc.timestamp_opt(secs, nanos).unwrap());
        let statuses = [
            DeviceStatus::UNKNOWN,
            DeviceStatus {
                status: Status::Down,
                down_since: t(1_800_000_000, 123_456_789),
                changed_at: t(1_800_000_000, 999_999_999),
                degraded: None,
            },
            DeviceStatus {
                status: Status::Up,
                down_since: None,
                changed_at: t(0, 0),
                degraded: None,
            },
            DeviceStatus {
                status: Status::Unreachable,
                down_since: t(1_800_000_000, 5_000),
                changed_at: t(1_800_000_100, 0),
                degraded: None,
            },
            degraded(Some(250_123), 1000, 700, (true, true)),
            degraded(None, 10, 0, (false, true)),
            degraded(Some(u32::MAX), 3, 1, (true, false)),
        ];
        let rtts = [
            0,
            1,
            999,
            1_000,
            1_234,
            123_456,
            10_000_000,
            u32::MAX as u64,
        ];
        let losses = [0.0, 0.5, 1.0, 1.0 / 3.0, f64::NAN, f64::INFINITY];
        for (i, d) in devices.iter().enumerate() {
            for (j, s) in statuses.iter().enumerate() {
                for (k, &rtt) in rtts.iter().enumerate() {
                    let m = Measurements {
                        last_rtt: (k > 0).then(|| Duration::from_micros(rtt)),
                        last_loss: (k > 0).then(|| losses[(i + j + k) % losses.len()]),
                        last_probe_at: s.changed_at,
                        ..Default::default()
                    };
                    // The parents that are out: all, or the first only.
                    let because: Option<Vec<&str>> = (s.status == Status::Unreachable).then(|| {
                        let all = d.parents.iter().map(|p| &**p);
                        all.take(if k % 2 == 0 { usize::MAX } else { 1 }).collect()
                    });
                    for (a, alerts) in [None, Some(0), Some(7), Some(u32::MAX)]
                        .into_iter()
                        .enumerate()
                    {
                        let ends = (a % 2 == 1).then_some(s.changed_at).flatten();
                        let reference = DeviceJson {
                            name: &d.name,
                            address: d.address,
                            region: &d.region,
                            branch: &d.branch,
                            kind: &d.kind,
                            labels: &d.labels,
                            ping_status: s.status,
                            down_since: s.down_since.map(Rfc3339),
                            status_changed_at: s.changed_at.map(Rfc3339),
                            last_rtt_ms: m.last_rtt.map(|d| d.as_micros() as f64 / 1000.0),
                            loss: m.last_loss,
                            last_probe_at: m.last_probe_at.map(Rfc3339),
                            parents: d.parents.iter().map(|p| &**p).collect(),
                            unreachable_because: because.clone(),
                            in_maintenance: ends.is_some(),
                            maintenance_ends_at: ends.map(Rfc3339),
                            degraded: s.degraded.is_some(),
                            degraded_since: s.degraded.map(|g| Rfc3339(g.since)),
                            degraded_because: s
                                .degraded
                                .as_ref()
                                .map(crate::read_model::degraded::Because::of),
                            open_alerts: alerts,
                        };
                        assert_eq!(
                            written(d, s, &m, because.as_deref(), alerts, ends),
                            serde_json::to_string(&reference).unwrap()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_device_serialises_with_null_for_the_unmeasured() {
        let d = device("a\"b", "127.0.0.1", &[("isp", "x")]);
        let text = written(
            &d,
            &DeviceStatus::UNKNOWN,
            &Measurements::default(),
            None,
            None,
            None,
        );
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["name"], "a\"b");
        assert_eq!(json["address"], "127.0.0.1");
        assert_eq!(json["ping_status"], "unknown");
        assert_eq!(json["labels"]["isp"], "x");
        for key in [
            "down_since",
            "status_changed_at",
            "last_rtt_ms",
            "loss",
            "last_probe_at",
            "maintenance_ends_at",
        ] {
            assert!(json[key].is_null(), "{key}");
        }
        assert_eq!(json["in_maintenance"], false);
        assert_eq!(json["degraded"], false);
        assert!(json["degraded_since"].is_null() && json["degraded_because"].is_null());
        assert!(json.get("open_alerts").is_none());
        assert_eq!(
            json["parents"],
            serde_json::json!([]),
            "always there, empty"
        );
        assert!(json.get("unreachable_because").is_none());
    }
}
