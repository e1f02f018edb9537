//! When each device's maintenance ends, at one instant: what the device JSON
//! (`in_maintenance`, `maintenance_ends_at`), `/metrics` (`wardops_device_in_maintenance`)
//! and the pages (the badge) read, so that they cannot disagree. A device's maintenance
//! is its windows in the inventory and the operators' silences that cover it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Device;
use crate::maintenance::{self, Silences, Windows};
use crate::state::State;

/// When the maintenance going on for a device ends, at one instant and default zone,
/// remembering the last list of windows asked about: the devices of a branch share
/// theirs, and a page lists them together.
pub struct Ends {
    now: DateTime<Utc>,
    zone: Tz,
    silences: Arc<Silences>,
    last: Option<(ListKey, Option<DateTime<Utc>>)>,
}

/// A shared list of windows by identity: its address and length.
type ListKey = (usize, usize);

impl Ends {
    pub fn new(now: DateTime<Utc>, zone: Tz, silences: Arc<Silences>) -> Ends {
        Ends {
            now,
            zone,
            silences,
            last: None,
        }
    }

    /// At the state's clock, in `zone` (the settings'), with the state's silences.
    pub fn of(state: &State, zone: Tz) -> Ends {
        Ends::new(state.clock().now(), zone, state.silences())
    }

    /// The end of the maintenance going on for `device`, if any is.
    pub fn of_device(&mut self, device: &Device) -> Option<DateTime<Utc>> {
        if self
            .silences
            .covering(device.silence_names())
            .next()
            .is_none()
        {
            return self.of_windows(&device.maintenance);
        }
        let windows = self
            .silences
            .windows_for(&device.maintenance, device.silence_names());
        maintenance::active_at(&windows, self.now, self.zone)
    }

    /// The end of the maintenance going on under `windows`, if any is.
    fn of_windows(&mut self, windows: &Windows) -> Option<DateTime<Utc>> {
        if windows.is_empty() {
            return None;
        }
        let key = (windows.as_ptr() as usize, windows.len());
        if let Some((last, end)) = self.last
            && last == key
        {
            return end;
        }
        let end = maintenance::active_at(windows, self.now, self.zone);
        self.last = Some((key, end));
        end
    }
}
