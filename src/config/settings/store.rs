//! Durable state and alert rules: the top-level `data_dir` and `retention` and the
//! `alerts:` section (see `crate::store`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::duration;
use crate::config::error::{ConfigError, Place, Spanned};
use crate::config::walk::{Walk, Walker};

/// Durable state and alert rules (`data_dir`, `retention`, `alerts`; see `crate::store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// The spool (and by default the SQLite file) live here; created if missing.
    pub data_dir: PathBuf,
    /// Transitions and resolved alerts older than this are pruned.
    pub retention: Duration,
    /// `flapping` opens when a device changes status this many times within the window.
    pub flapping_transitions: u32,
    pub flapping_window: Duration,
}

pub(in crate::config) const ALERTS_KEYS: &[&str] = &["flapping_transitions", "flapping_window"];

/// `retention`: at least a day; at most 100 years, so that "now minus the retention"
/// is a date (100000000d passed `check`, then the writer panicked on the date overflow).
const RETENTION_DAYS: (u64, u64) = (1, 36_500);
const FLAPPING_TRANSITIONS: (u32, u32) = (2, 1000);
/// A week at most: the window is also how long a device must stay calm to resolve it.
const FLAPPING_WINDOW: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(7 * 86_400));

/// `data_dir`, `retention` and `alerts:` as written.
#[derive(Debug, Default)]
pub(super) struct RawStore {
    pub data_dir: Option<Spanned<String>>,
    pub retention: Option<Spanned<String>>,
    pub alerts: RawAlerts,
}

#[derive(Debug, Default)]
pub(super) struct RawAlerts {
    flapping_transitions: Option<Spanned<u32>>,
    flapping_window: Option<Spanned<String>>,
}

impl RawAlerts {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("alerts", ALERTS_KEYS, |w, key, name| {
            match key {
                0 => raw.flapping_transitions = w.number(name, "a whole number")?,
                _ => raw.flapping_window = w.optional_string(name)?,
            }
            Ok(())
        })?;
        Ok(raw)
    }
}

impl RawStore {
    /// Relative paths are relative to `base`, the settings file's directory.
    pub(super) fn resolve(
        &self,
        base: &Path,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> StoreSettings {
        let data_dir = self.data_dir.as_ref().filter(|d| {
            let problem = super::path_problem(&d.value);
            if let Some(problem) = problem {
                let message = format!("data_dir {:?} {problem}", d.value);
                errors.push(ConfigError::new(Place::at(path, d.at), message));
            }
            problem.is_none()
        });
        let mut s = StoreSettings {
            data_dir: base.join(data_dir.map_or("data", |d| d.value.as_str())),
            retention: Duration::from_secs(400 * 86_400),
            flapping_transitions: 3,
            flapping_window: Duration::from_secs(300),
        };
        let mut error =
            |at, message: String| errors.push(ConfigError::new(Place::at(path, at), message));
        if let Some(v) = &self.retention {
            // Days are the natural unit here; the shared duration syntax stops at hours.
            let parsed = match v.value.trim().strip_suffix('d').map(str::parse::<u64>) {
                Some(Ok(days)) => Ok(Duration::from_secs(days.saturating_mul(86_400))),
                _ => duration::parse(&v.value),
            };
            let (lo, hi) = RETENTION_DAYS;
            match parsed {
                Ok(d) if (lo * 86_400..=hi * 86_400).contains(&d.as_secs()) => s.retention = d,
                Ok(_) => error(
                    v.at,
                    format!("retention {} is out of range ({lo}d to {hi}d)", v.value),
                ),
                Err(e) => error(v.at, format!("retention: {e} (or days: 400d)")),
            }
        }
        if let Some(v) = &self.alerts.flapping_transitions {
            let (lo, hi) = FLAPPING_TRANSITIONS;
            match v.value {
                n if (lo..=hi).contains(&n) => s.flapping_transitions = n,
                n => error(
                    v.at,
                    format!("alerts.flapping_transitions {n} is out of range ({lo} to {hi})"),
                ),
            }
        }
        if let Some(v) = &self.alerts.flapping_window {
            let (lo, hi) = FLAPPING_WINDOW;
            match duration::parse(&v.value) {
                Ok(d) if (lo..=hi).contains(&d) => s.flapping_window = d,
                Ok(_) => error(
                    v.at,
                    format!(
                        "alerts.flapping_window {} is out of range ({} to {})",
                        v.value,
                        duration::format(lo),
                        duration::format(hi)
                    ),
                ),
                Err(e) => error(v.at, format!("alerts.flapping_window: {e}")),
            }
        }
        s
    }
}
