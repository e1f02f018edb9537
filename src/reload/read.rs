//! Reading a candidate inventory from disk, aside from the running one: by path every
//! time (editors, git and Kubernetes replace files rather than write them), hashed
//! before parsing so an unchanged tree costs a read and a hash.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::cache::FileCache;
use crate::config::load::{self, Source};
use crate::config::{ConfigError, ConfigErrors, Inventory, Place, ProbeSettings};

/// What was found on disk.
pub struct Candidate {
    /// Content hash of the files read (same function as the start-up load), or of
    /// nothing when the directory could not be read.
    pub hash: String,
    pub sources: Result<Vec<Source>, ConfigErrors>,
}

/// Reads every inventory file under `dir`. A missing directory is an error unless
/// `allow_empty`, in which case it reads as no files.
pub fn read(dir: &Path, allow_empty: bool) -> Candidate {
    let sources = match load::read_sources(dir) {
        Err(_) if allow_empty && !dir.exists() => Ok(Vec::new()),
        other => other,
    };
    let hash = match &sources {
        Ok(s) => load::content_hash(s),
        Err(_) => String::new(),
    };
    Candidate { hash, sources }
}

/// Parses and validates the candidate, re-parsing only files that changed since the
/// last call (see [`FileCache`]) and reusing the unchanged devices of `running`.
/// Without `allow_empty`, no files, an empty file or an inventory without devices are
/// errors: a half-finished `git checkout` or a wiped mount must never read as "remove
/// every device".
pub fn validate(
    dir: &Path,
    sources: &[Source],
    defaults: &ProbeSettings,
    allow_empty: bool,
    cache: &mut FileCache,
    running: Option<&Inventory>,
) -> Result<Inventory, ConfigErrors> {
    let hash = load::content_hash(sources);
    if allow_empty {
        let kept: Vec<Source> = sources
            .iter()
            .filter(|s| !s.text.trim().is_empty())
            .map(|s| Source {
                path: s.path.clone(),
                text: s.text.clone(),
            })
            .collect();
        if kept.is_empty() {
            return Ok(Inventory::new(Vec::new(), Vec::new(), hash));
        }
        let inventory = match cache.build(&kept, defaults, true, running) {
            Some(inventory) => inventory,
            None => load::build_inventory_with(&kept, defaults, true)?,
        };
        // The hash names what is on disk, empty files included, so the next check agrees.
        return Ok(inventory.with_hash(hash));
    }
    if sources.is_empty() {
        return Err(ConfigErrors(vec![ConfigError::new(
            Place::of_file(dir),
            "no inventory files (*.yaml) found; refusing to remove every device (set reload.allow_empty to allow it)",
        )]));
    }
    match cache.build(sources, defaults, false, running) {
        Some(inventory) => Ok(inventory),
        // The full build reports every error exactly as at start-up.
        None => load::build_inventory(sources, defaults),
    }
}

/// How a new inventory differs from the running one, by device name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub added: usize,
    pub removed: usize,
    /// Same name, new address: starts `unknown` at the new address.
    pub readdressed: usize,
    /// Same name and address, other labels, kind, place or probe settings: keeps its state.
    pub modified: usize,
    pub unchanged: usize,
}

impl Diff {
    pub fn between(old: &Inventory, new: &Inventory) -> Diff {
        let mut diff = Diff::default();
        for device in &new.devices {
            match old.device(&device.name) {
                None => diff.added += 1,
                Some(o) if o.address != device.address => diff.readdressed += 1,
                Some(o) if !Arc::ptr_eq(o, device) && **o != **device => diff.modified += 1,
                Some(_) => diff.unchanged += 1,
            }
        }
        diff.removed = old.devices.len() - (new.devices.len() - diff.added);
        diff
    }
}
