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

const ALERTS_KEYS: &[&str] = &["flapping_transitions", "flapping_window"];

/// `data_dir`, `retention` and `alerts:` as written.
#[derive(Debug, Default)]
pub(super) struct RawStore {
    pub data_dir: Option<String>,
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
        let mut s = StoreSettings {
            data_dir: base.join(self.data_dir.as_deref().unwrap_or("data")),
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
            match parsed {
                Ok(d) if d >= Duration::from_secs(86_400) => s.retention = d,
                Ok(_) => error(v.at, "retention must be at least 1d".into()),
                Err(e) => error(v.at, format!("retention: {e} (or days: 400d)")),
            }
        }
        if let Some(v) = &self.alerts.flapping_transitions {
            match v.value {
                n if n >= 2 => s.flapping_transitions = n,
                _ => error(
                    v.at,
                    "alerts.flapping_transitions must be at least 2".into(),
                ),
            }
        }
        if let Some(v) = &self.alerts.flapping_window {
            match duration::parse(&v.value) {
                Ok(d) if d >= Duration::from_secs(1) => s.flapping_window = d,
                Ok(_) => error(v.at, "alerts.flapping_window must be at least 1s".into()),
                Err(e) => error(v.at, format!("alerts.flapping_window: {e}")),
            }
        }
        s
    }
}
