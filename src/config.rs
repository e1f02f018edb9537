//! Configuration: the appliance's settings and the device inventory.
//!
//! Both are read, validated with every error collected (`file:line:column: message`),
//! and only then used: nothing half-valid ever runs.
//!
//! # Layout
//!
//! Both kinds of file go the same way: text → YAML events → shapes as written →
//! validated values.
//!
//! - `yaml`: the events of one file, with their places (libyaml; a fast path for the
//!   plain subset inventories are written in).
//! - `walk`: the generic walk of events into shapes: mappings of known keys (unknown,
//!   repeated and missing ones reported), lists, single values with their places.
//! - `settings`: `wardops.yaml`, one file per section, each with its keys and checks;
//!   defaults, then the file, then the environment.
//! - `raw`: an inventory file's shapes as written, and the grammar that fills them.
//! - `load`: the inventory directory read and hashed; `load/build` validates what was
//!   read into an [`Inventory`].
//! - `maintenance`: the `maintenance:` windows of a region, branch or device, read and
//!   checked (what they mean in time is [`crate::maintenance`]'s).
//! - `inventory`: the validated inventory, with its dependency `graph` (parents and
//!   children as indexes); `probe`: probe settings and their cascade
//!   (its `probe:` section is read the same at every level), `degraded` its RTT and
//!   loss thresholds; `duration`, `error`.
//! - `snmp`: a device's SNMP polling and uplinks as resolved (`snmp/read` walks the
//!   `snmp:` and `uplinks:` sections, `snmp/level` checks one level and cascades;
//!   `load/build/snmp` resolves a device's); `secret`: secrets named by `…_env` or
//!   `…_file`, for the settings and the inventory alike.

pub mod degraded;
pub mod duration;
pub mod error;
pub mod graph;
pub mod inventory;
pub mod load;
mod maintenance;
pub mod probe;
mod raw;
pub mod schema;
mod secret;
pub mod settings;
pub mod snmp;
pub(crate) mod walk;
pub(crate) mod yaml;

use std::path::Path;
use std::sync::Arc;

pub use error::{ConfigError, ConfigErrors, Place};
pub use inventory::{Branch, Device, Inventory, Labels, Region};
pub use probe::ProbeSettings;
pub use settings::{Env, Settings};

/// Settings plus the inventory they point at.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub inventory: Arc<Inventory>,
}

impl Config {
    /// Loads the settings file and the inventory it names, with environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_with_env(path, &Env::from_process())
    }

    pub fn load_with_env(path: &Path, env: &Env) -> Result<Config, ConfigErrors> {
        let settings = Settings::load(path, env)?;
        let inventory = load::load_inventory(&settings.inventory_dir, &settings.probe)?;
        Ok(Config {
            settings,
            inventory: Arc::new(inventory),
        })
    }
}
