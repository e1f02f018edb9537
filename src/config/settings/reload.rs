//! The `reload:` section: how inventory changes are picked up (see `crate::reload`).

use std::path::Path;
use std::time::Duration;

use crate::config::duration;
use crate::config::error::{ConfigError, Place, Spanned};
use crate::config::walk::{Walk, Walker};

/// How inventory changes are picked up (see `crate::reload`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReloadSettings {
    /// Backstop for missed filesystem events: the inventory's hash is checked this often.
    pub check_interval: Duration,
    /// Whether `POST /-/reload` may trigger a reload (off: anyone reaching the port could).
    pub http_endpoint: bool,
    /// Whether a missing directory, an empty file or no devices at all is a valid (empty)
    /// inventory; off, it is an error and the last good inventory keeps running.
    pub allow_empty: bool,
    /// A reload that would remove more than this share of the running devices is
    /// refused (a half-written or half-checked-out inventory reads as a mass removal).
    pub max_removed_share: f64,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(30),
            http_endpoint: false,
            allow_empty: false,
            max_removed_share: 0.5,
        }
    }
}

pub(in crate::config) const RELOAD_KEYS: &[&str] = &[
    "check_interval",
    "http_endpoint",
    "allow_empty",
    "max_removed_share",
];

/// `check_interval` bounds: below a second it is a busy loop over the whole inventory.
const CHECK_INTERVAL: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));

/// `reload:` as written.
#[derive(Debug, Default)]
pub(super) struct RawReload {
    check_interval: Option<Spanned<String>>,
    http_endpoint: Option<bool>,
    allow_empty: Option<bool>,
    max_removed_share: Option<Spanned<f64>>,
}

impl RawReload {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("reload", RELOAD_KEYS, |w, key, name| {
            match key {
                0 => raw.check_interval = w.optional_string(name)?,
                1 => raw.http_endpoint = w.boolean(name)?.map(|b| b.value),
                2 => raw.allow_empty = w.boolean(name)?.map(|b| b.value),
                _ => raw.max_removed_share = w.number(name, "a number from 0 to 1")?,
            }
            Ok(())
        })?;
        Ok(raw)
    }

    pub(super) fn apply(&self, path: &Path, errors: &mut Vec<ConfigError>) -> ReloadSettings {
        let mut s = ReloadSettings::default();
        if let Some(v) = &self.check_interval {
            let place = Place::at(path, v.at);
            match duration::parse(&v.value) {
                Ok(d) if d < CHECK_INTERVAL.0 || d > CHECK_INTERVAL.1 => {
                    let message = format!(
                        "reload.check_interval {} is out of range (1s to 24h)",
                        v.value
                    );
                    errors.push(ConfigError::new(place, message));
                }
                Ok(d) => s.check_interval = d,
                Err(e) => {
                    errors.push(ConfigError::new(
                        place,
                        format!("reload.check_interval: {e}"),
                    ));
                }
            }
        }
        if let Some(v) = &self.max_removed_share {
            // `(0..=1).contains` is false for NaN too.
            if (0.0..=1.0).contains(&v.value) {
                s.max_removed_share = v.value;
            } else {
                let message = format!(
                    "reload.max_removed_share {} is out of range (0 to 1)",
                    v.value
                );
                errors.push(ConfigError::new(Place::at(path, v.at), message));
            }
        }
        s.http_endpoint = self.http_endpoint.unwrap_or(s.http_endpoint);
        s.allow_empty = self.allow_empty.unwrap_or(s.allow_empty);
        s
    }
}
