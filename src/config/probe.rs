//! Probe settings and how they cascade: defaults → region → branch → device.

use std::path::Path;
use std::time::Duration;

use super::degraded::{self, DegradedOverrides, DegradedSettings};
use super::duration;
use super::error::{ConfigError, Place, Spanned};
use super::walk::{Walk, Walker};
use crate::probe::ProbeSpec;

/// Fully resolved probe settings of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Time between the starts of two probes while the device answers.
    pub interval: Duration,
    /// How long each echo request waits for its reply.
    pub timeout: Duration,
    /// Echo requests per probe; the probe succeeds if any is answered.
    pub packets: u32,
    /// Gap between the echo requests of one probe.
    pub packet_spacing: Duration,
    /// Consecutive failed probes before the device is `down`.
    pub down_after: u32,
    /// Consecutive successful probes before the device is `up`.
    pub up_after: u32,
    /// After a failed probe the next comes this soon, so an outage is confirmed in
    /// seconds rather than intervals.
    pub retry_interval: Duration,
    /// RTT and loss thresholds that make an `up` device `degraded` (off by default).
    pub degraded: DegradedSettings,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            packets: 2,
            packet_spacing: Duration::from_millis(200),
            down_after: 2,
            up_after: 1,
            retry_interval: Duration::from_secs(1),
            degraded: DegradedSettings::default(),
        }
    }
}

impl ProbeSettings {
    pub fn spec(&self) -> ProbeSpec {
        ProbeSpec {
            packets: self.packets,
            spacing: self.packet_spacing,
            timeout: self.timeout,
        }
    }

    /// How long one probe can take from its first request to its last possible reply.
    pub fn probe_duration(&self) -> Duration {
        self.packet_spacing * self.packets.saturating_sub(1) + self.timeout
    }
}

/// Probe overrides as written at one level of the cascade; every key optional.
#[derive(Debug, Clone, Default)]
pub struct ProbeOverrides {
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub packets: Option<Spanned<u32>>,
    pub packet_spacing: Option<Spanned<String>>,
    pub down_after: Option<Spanned<u32>>,
    pub up_after: Option<Spanned<u32>>,
    pub retry_interval: Option<Spanned<String>>,
    pub degraded: DegradedOverrides,
}

/// The keys of a `probe:` section, in the order the hints list them.
pub(in crate::config) const PROBE_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "packets",
    "packet_spacing",
    "down_after",
    "up_after",
    "retry_interval",
    "degraded",
];

const INTERVAL: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));
const TIMEOUT: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(60));
const SPACING: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(10));
const PACKETS: (u32, u32) = (1, 10);
const STREAK: (u32, u32) = (1, 100);

impl ProbeOverrides {
    /// Reads a `probe:` section, written the same way in the settings and at every level
    /// of the inventory; left empty (`probe:` alone), it overrides nothing.
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<ProbeOverrides> {
        let mut p = ProbeOverrides::default();
        w.section("probe", PROBE_KEYS, |w, key, name| {
            match key {
                0 => p.interval = w.optional_string(name)?,
                1 => p.timeout = w.optional_string(name)?,
                2 => p.packets = w.number(name, "a whole number")?,
                3 => p.packet_spacing = w.optional_string(name)?,
                4 => p.down_after = w.number(name, "a whole number")?,
                5 => p.up_after = w.number(name, "a whole number")?,
                6 => p.retry_interval = w.optional_string(name)?,
                _ => p.degraded = DegradedOverrides::read(w)?,
            }
            Ok(())
        })?;
        Ok(p)
    }

    /// Lays these overrides over `base`, collecting every bad value into `errors`.
    pub fn apply(
        &self,
        base: ProbeSettings,
        file: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> ProbeSettings {
        if self.is_empty() {
            return base; // the usual case, for every device
        }
        let mut s = base;
        let mut dur = |field: &Option<Spanned<String>>,
                       name: &str,
                       range: (Duration, Duration),
                       target: &mut Duration| {
            if let Some(v) = field {
                let place = Place::at(file, v.at);
                match duration::parse(&v.value) {
                    Ok(d) if d < range.0 || d > range.1 => errors.push(ConfigError::new(
                        place,
                        format!(
                            "{name} {} is out of range ({} to {})",
                            v.value,
                            duration::format(range.0),
                            duration::format(range.1)
                        ),
                    )),
                    Ok(d) => *target = d,
                    Err(e) => errors.push(ConfigError::new(place, format!("{name}: {e}"))),
                }
            }
        };
        dur(&self.interval, "interval", INTERVAL, &mut s.interval);
        dur(&self.timeout, "timeout", TIMEOUT, &mut s.timeout);
        dur(
            &self.packet_spacing,
            "packet_spacing",
            SPACING,
            &mut s.packet_spacing,
        );
        dur(
            &self.retry_interval,
            "retry_interval",
            INTERVAL,
            &mut s.retry_interval,
        );
        let mut count =
            |field: &Option<Spanned<u32>>, name: &str, range: (u32, u32), target: &mut u32| {
                if let Some(v) = field {
                    if v.value < range.0 || v.value > range.1 {
                        errors.push(ConfigError::new(
                            Place::at(file, v.at),
                            format!(
                                "{name} {} is out of range ({} to {})",
                                v.value, range.0, range.1
                            ),
                        ));
                    } else {
                        *target = v.value;
                    }
                }
            };
        count(&self.packets, "packets", PACKETS, &mut s.packets);
        count(&self.down_after, "down_after", STREAK, &mut s.down_after);
        count(&self.up_after, "up_after", STREAK, &mut s.up_after);
        s.degraded = self.degraded.apply(s.degraded, file, errors);
        s
    }

    /// Nothing is overridden at this level.
    fn is_empty(&self) -> bool {
        let Self {
            interval,
            timeout,
            packets,
            packet_spacing,
            down_after,
            up_after,
            retry_interval,
            degraded,
        } = self;
        [interval, timeout, packet_spacing, retry_interval]
            .iter()
            .all(|v| v.is_none())
            && [packets, down_after, up_after].iter().all(|v| v.is_none())
            && degraded.is_empty()
    }

    /// Where these overrides are written, for errors about their combination.
    pub(crate) fn first_place(&self, file: &Path) -> Option<Place> {
        [
            &self.interval,
            &self.timeout,
            &self.packet_spacing,
            &self.retry_interval,
        ]
        .into_iter()
        .flatten()
        .map(|v| Place::at(file, v.at))
        .chain(
            [&self.packets, &self.down_after, &self.up_after]
                .into_iter()
                .flatten()
                .map(|v| Place::at(file, v.at)),
        )
        .chain(self.degraded.places(file))
        .min()
    }

    /// Checks that the settings resolved at this level fit together; reported once, at
    /// the level that introduced the problem.
    pub fn check_consistent(
        &self,
        resolved: &ProbeSettings,
        file: &Path,
        errors: &mut Vec<ConfigError>,
    ) {
        let Some(place) = self.first_place(file) else {
            return;
        };
        for message in inconsistencies(resolved) {
            errors.push(ConfigError::new(place.clone(), message));
        }
    }
}

/// Combinations that cannot work, whatever their individual ranges.
pub fn inconsistencies(s: &ProbeSettings) -> Vec<String> {
    let mut out = Vec::new();
    if s.probe_duration() > s.interval {
        out.push(format!(
            "a probe takes up to {} ({} packets, {} apart, {} timeout), longer than its interval {}",
            duration::format(s.probe_duration()),
            s.packets,
            duration::format(s.packet_spacing),
            duration::format(s.timeout),
            duration::format(s.interval)
        ));
    }
    if s.retry_interval > s.interval {
        out.push(format!(
            "retry_interval {} is longer than interval {}",
            duration::format(s.retry_interval),
            duration::format(s.interval)
        ));
    }
    out.extend(degraded::inconsistencies(
        &s.degraded,
        s.interval,
        s.timeout,
    ));
    out
}
