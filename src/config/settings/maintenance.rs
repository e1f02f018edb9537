//! The `maintenance:` section: the zone of the inventory's maintenance windows that do
//! not name their own.

use std::path::Path;

use chrono_tz::Tz;

use crate::config::error::{ConfigError, Place, Spanned};
use crate::config::maintenance::parse_zone;
use crate::config::walk::{Walk, Walker};

/// Settings of the maintenance windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceSettings {
    /// The IANA zone of every window written without `zone:` (default UTC; the
    /// production bank's is Asia/Tbilisi).
    pub zone: Tz,
}

impl Default for MaintenanceSettings {
    fn default() -> Self {
        Self { zone: Tz::UTC }
    }
}

pub(in crate::config) const MAINTENANCE_KEYS: &[&str] = &["zone"];

/// `maintenance:` as written.
#[derive(Debug, Default)]
pub(super) struct RawMaintenance {
    zone: Option<Spanned<String>>,
}

impl RawMaintenance {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("maintenance", MAINTENANCE_KEYS, |w, _, name| {
            raw.zone = w.optional_string(name)?;
            Ok(())
        })?;
        Ok(raw)
    }

    pub(super) fn resolve(
        &self,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> MaintenanceSettings {
        let mut settings = MaintenanceSettings::default();
        if let Some(zone) = &self.zone {
            match parse_zone(&zone.value) {
                Ok(z) => settings.zone = z,
                Err(message) => errors.push(ConfigError::new(
                    Place::at(path, zone.at),
                    format!("maintenance.zone: {message}"),
                )),
            }
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests::parse;

    #[test]
    fn the_default_zone_is_utc_and_a_named_one_is_read() {
        assert_eq!(parse("").unwrap().maintenance.zone, Tz::UTC);
        assert_eq!(parse("maintenance:\n").unwrap().maintenance.zone, Tz::UTC);
        let tbilisi = parse("maintenance: { zone: Asia/Tbilisi }\n").unwrap();
        assert_eq!(tbilisi.maintenance.zone, chrono_tz::Asia::Tbilisi);
    }

    #[test]
    fn an_unknown_zone_or_key_is_an_error_at_its_place() {
        assert_eq!(
            parse("maintenance:\n  zone: asia/tbilisi\n").unwrap_err(),
            "w.yaml:2:9: maintenance.zone: unknown time zone \"asia/tbilisi\" (did you mean \"Asia/Tbilisi\"?)"
        );
        assert_eq!(
            parse("maintenance: { zone: Mars/Olympus }\n").unwrap_err(),
            "w.yaml:1:22: maintenance.zone: unknown time zone \"Mars/Olympus\" (an IANA name such as Asia/Tbilisi or UTC)"
        );
        assert_eq!(
            parse("maintenance: { zones: UTC }\n").unwrap_err(),
            "w.yaml:1:16: maintenance: unknown key \"zones\" (did you mean \"zone\"?)"
        );
    }
}
