//! The JSON shape of a device, shared by the list and the detail routes, serialised
//! straight from the snapshot with borrowed fields: no per-device `String`s.

use std::net::IpAddr;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

use crate::config::{Device, Labels};
use crate::state::{DeviceStatus, Measurements, Status};

/// One device as `GET /api/v1/devices` lists it.
#[derive(Serialize)]
pub struct DeviceJson<'a> {
    pub name: &'a str,
    pub address: IpAddr,
    pub region: &'a str,
    pub branch: &'a str,
    pub kind: &'a str,
    pub labels: &'a Labels,
    /// The old runbooks' field name, kept (design: compatibility).
    pub ping_status: Status,
    pub down_since: Option<Rfc3339>,
    pub status_changed_at: Option<Rfc3339>,
    pub last_rtt_ms: Option<f64>,
    pub loss: Option<f64>,
    pub last_probe_at: Option<Rfc3339>,
    /// What only the store knows; absent when the appliance keeps no store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_alerts: Option<u32>,
}

impl<'a> DeviceJson<'a> {
    pub fn new(device: &'a Device, status: &DeviceStatus, m: &Measurements) -> Self {
        Self {
            name: &device.name,
            address: device.address,
            region: &device.region,
            branch: &device.branch,
            kind: &device.kind,
            labels: &device.labels,
            ping_status: status.status,
            down_since: status.down_since.map(Rfc3339),
            status_changed_at: status.changed_at.map(Rfc3339),
            // Microsecond resolution keeps the figure short ("0.123", not "0.12345678").
            last_rtt_ms: m.last_rtt.map(|d| d.as_micros() as f64 / 1000.0),
            loss: m.last_loss,
            last_probe_at: m.last_probe_at.map(Rfc3339),
            open_alerts: None,
        }
    }

    pub fn with_open_alerts(self, open_alerts: Option<u32>) -> Self {
        Self {
            open_alerts,
            ..self
        }
    }
}

/// A UTC time serialised as RFC 3339 with millisecond precision and a `Z`
/// (`2026-11-28T20:06:10.123Z`), written without allocating: the device list writes
/// tens of thousands of them per request.
#[derive(Clone, Copy)]
pub struct Rfc3339(pub DateTime<Utc>);

impl Rfc3339 {
    pub fn format(&self, out: &mut [u8; 24]) {
        let t = &self.0;
        let year = t.year().clamp(0, 9999) as u32;
        let fields = [
            (0, 4, year),
            (5, 2, t.month()),
            (8, 2, t.day()),
            (11, 2, t.hour()),
            (14, 2, t.minute()),
            // A leap second shows as :60 rather than being rounded away.
            (17, 2, t.second() + t.nanosecond() / 1_000_000_000),
            (20, 3, (t.nanosecond() % 1_000_000_000) / 1_000_000),
        ];
        *out = *b"0000-00-00T00:00:00.000Z";
        for (at, width, mut value) in fields {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 24];
        self.format(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).expect("ascii digits"))
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = [0u8; 24];
        self.format(&mut buf);
        f.write_str(std::str::from_utf8(&buf).expect("ascii digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{SecondsFormat, TimeZone};

    #[test]
    fn rfc3339_matches_chrono() {
        for (secs, nanos) in [
            (0, 0),
            (1_800_000_000, 123_456_789),
            (253_402_300_799, 999_999_999),
            (951_782_400, 5_000_000),
        ] {
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            assert_eq!(
                Rfc3339(t).to_string(),
                t.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
    }

    #[test]
    fn a_device_serialises_with_null_for_the_unmeasured() {
        let device = Device {
            name: "a\"b".into(),
            address: "127.0.0.1".parse().unwrap(),
            region: "r".into(),
            branch: "b".into(),
            kind: "atm".into(),
            labels: Labels::new([("isp".into(), "x".into())]),
            probe: Default::default(),
            place: crate::config::Place::of_file(std::path::Path::new("x.yaml")),
        };
        let json = serde_json::to_value(DeviceJson::new(
            &device,
            &DeviceStatus::UNKNOWN,
            &Measurements::default(),
        ))
        .unwrap();
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
        ] {
            assert!(json[key].is_null(), "{key}");
        }
    }
}
