//! The `degraded` thresholds of a `probe:` section: RTT and loss over a window that make
//! an `up` device `degraded` (a warning, not a status). Written like the other probe
//! keys at every level of the cascade (settings → region → branch → device), each key
//! on its own; `off` switches a threshold off below a level that set it.
//!
//! Off by default: a default threshold would alert on devices nobody chose to watch
//! for latency (the shipped example settings turn on the old system's 200 ms / 10 %).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::duration;
use super::error::{ConfigError, Place, Spanned};
use super::walk::{Walk, Walker};

/// A loss threshold in tenths of a percent (`12.5%` is 125), so that settings stay
/// `Eq` and compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loss(u16);

impl Loss {
    /// The threshold as a fraction, 0.0..1.0, as probe loss is measured.
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// The threshold in percent.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 10.0
    }

    /// `10%`, `12.5%`, `0%`, or `off`; None for `off`.
    pub fn parse(text: &str) -> Result<Option<Loss>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || format!("expected a percentage such as 10% or 2.5%, or off, found {text:?}");
        let number = text.strip_suffix('%').ok_or_else(bad)?.trim();
        let (whole, tenth) = match number.split_once('.') {
            Some((w, t)) if t.len() == 1 => (w, t),
            Some((_, t)) if t.len() > 1 && t.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(format!("{text}: at most one decimal"));
            }
            Some(_) => return Err(bad()),
            None => (number, "0"),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(tenth) {
            return Err(bad());
        }
        let whole: u32 = whole.parse().map_err(|_| bad())?;
        let tenth: u32 = tenth.parse().map_err(|_| bad())?;
        let tenths = whole.saturating_mul(10).saturating_add(tenth);
        if tenths >= 1000 {
            return Err(format!(
                "{text} is out of range (0% to 99.9%: loss can never be above 100%)"
            ));
        }
        Ok(Some(Loss(tenths as u16)))
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 % 10 {
            0 => write!(f, "{}%", self.0 / 10),
            t => write!(f, "{}.{t}%", self.0 / 10),
        }
    }
}

/// Resolved `degraded` thresholds of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DegradedSettings {
    /// Degraded while the mean RTT of the window's replies is above this.
    pub rtt_above: Option<Duration>,
    /// Degraded while the share of the window's echo requests left unanswered is above this.
    pub loss_above: Option<Loss>,
    /// The span the figures are taken over; also how long they must stay at or below the
    /// thresholds before the condition clears (hysteresis).
    pub window: Duration,
}

impl Default for DegradedSettings {
    fn default() -> Self {
        Self {
            rtt_above: None,
            loss_above: None,
            window: Duration::from_secs(300),
        }
    }
}

impl DegradedSettings {
    /// True when some threshold is set: only then is the device evaluated.
    pub fn is_enabled(&self) -> bool {
        self.rtt_above.is_some() || self.loss_above.is_some()
    }
}

/// `degraded:` as written at one level of the cascade; every key optional.
#[derive(Debug, Clone, Default)]
pub struct DegradedOverrides {
    pub rtt_above: Option<Spanned<String>>,
    pub loss_above: Option<Spanned<String>>,
    pub window: Option<Spanned<String>>,
}

pub(in crate::config) const KEYS: &[&str] = &["rtt_above", "loss_above", "window"];
const RTT: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(60));
const WINDOW: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));

impl DegradedOverrides {
    /// Reads the `degraded:` key of a `probe:` section.
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<DegradedOverrides> {
        let mut d = DegradedOverrides::default();
        w.section("degraded", KEYS, |w, key, name| {
            let name = format!("degraded.{name}");
            match key {
                0 => d.rtt_above = w.optional_string(&name)?,
                1 => d.loss_above = w.optional_string(&name)?,
                _ => d.window = w.optional_string(&name)?,
            }
            Ok(())
        })?;
        Ok(d)
    }

    /// Lays these overrides over `base`, collecting every bad value into `errors`.
    pub fn apply(
        &self,
        base: DegradedSettings,
        file: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> DegradedSettings {
        let mut s = base;
        if let Some(v) = &self.rtt_above {
            let place = Place::at(file, v.at);
            if v.value.trim().eq_ignore_ascii_case("off") {
                s.rtt_above = None;
            } else {
                match duration::parse(&v.value) {
                    Ok(d) if d < RTT.0 || d > RTT.1 => {
                        errors.push(out_of_range(place, "rtt_above", &v.value, RTT))
                    }
                    Ok(d) => s.rtt_above = Some(d),
                    Err(e) => errors.push(ConfigError::new(
                        place,
                        format!("degraded.rtt_above: {e} (or off)"),
                    )),
                }
            }
        }
        if let Some(v) = &self.loss_above {
            match Loss::parse(&v.value) {
                Ok(loss) => s.loss_above = loss,
                Err(e) => errors.push(ConfigError::new(
                    Place::at(file, v.at),
                    format!("degraded.loss_above: {e}"),
                )),
            }
        }
        if let Some(v) = &self.window {
            let place = Place::at(file, v.at);
            match duration::parse(&v.value) {
                Ok(d) if d < WINDOW.0 || d > WINDOW.1 => {
                    errors.push(out_of_range(place, "window", &v.value, WINDOW))
                }
                Ok(d) => s.window = d,
                Err(e) => errors.push(ConfigError::new(place, format!("degraded.window: {e}"))),
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.rtt_above.is_none() && self.loss_above.is_none() && self.window.is_none()
    }

    /// Where the first of these keys is written.
    pub(crate) fn places(&self, file: &Path) -> impl Iterator<Item = Place> {
        [&self.rtt_above, &self.loss_above, &self.window]
            .into_iter()
            .flatten()
            .map(|v| Place::at(file, v.at))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

fn out_of_range(place: Place, name: &str, value: &str, range: (Duration, Duration)) -> ConfigError {
    ConfigError::new(
        place,
        format!(
            "degraded.{name} {value} is out of range ({} to {})",
            duration::format(range.0),
            duration::format(range.1)
        ),
    )
}

/// Combinations of the thresholds with the device's probe settings that cannot work.
pub fn inconsistencies(d: &DegradedSettings, interval: Duration, timeout: Duration) -> Vec<String> {
    let mut out = Vec::new();
    if !d.is_enabled() {
        return out;
    }
    if let Some(rtt) = d.rtt_above
        && rtt >= timeout
    {
        // A reply later than the timeout is counted lost, never measured.
        out.push(format!(
            "degraded.rtt_above {} is not below timeout {}: no RTT above it can be measured",
            duration::format(rtt),
            duration::format(timeout)
        ));
    }
    if d.window < interval.saturating_mul(2) {
        out.push(format!(
            "degraded.window {} is shorter than two intervals ({}): figures over it would be one probe's",
            duration::format(d.window),
            duration::format(interval.saturating_mul(2))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_is_read_in_tenths_of_a_percent_and_written_back_the_same() {
        let ok = |t: &str| Loss::parse(t).unwrap().unwrap();
        assert_eq!(ok("10%"), Loss(100));
        assert_eq!(ok(" 2.5% "), Loss(25));
        assert_eq!(ok("0%"), Loss(0));
        assert_eq!(ok("99.9%"), Loss(999));
        assert_eq!(Loss::parse("off").unwrap(), None);
        assert_eq!(Loss::parse("OFF").unwrap(), None);
        assert_eq!(ok("12.5%").to_string(), "12.5%");
        assert_eq!(ok("10%").to_string(), "10%");
        assert!((ok("10%").fraction() - 0.1).abs() < 1e-12);
        for bad in [
            "10", "ten%", "%", "-1%", "1.25%", "100%", "250%", "1e3%", "", ".5%", "5.%",
        ] {
            assert!(Loss::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Loss::parse("99999999999999999999%").is_err());
        assert!(
            Loss::parse("1.25%")
                .unwrap_err()
                .contains("at most one decimal")
        );
        assert!(
            Loss::parse("5.%")
                .unwrap_err()
                .contains("expected a percentage")
        );
    }

    #[test]
    fn thresholds_must_be_measurable_and_the_window_longer_than_one_probe() {
        let d = DegradedSettings {
            rtt_above: Some(Duration::from_secs(1)),
            loss_above: None,
            window: Duration::from_secs(10),
        };
        let found = inconsistencies(&d, Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("not below timeout 1s"), "{found:?}");
        assert!(
            found[1].contains("shorter than two intervals (20s)"),
            "{found:?}"
        );
        // Switched off, nothing is checked.
        let off = DegradedSettings {
            rtt_above: None,
            ..d
        };
        assert!(inconsistencies(&off, Duration::from_secs(10), Duration::from_secs(1)).is_empty());
    }
}
