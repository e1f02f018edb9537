//! Reading an inventory directory: every `*.yaml`/`*.yml` file under it, and the hash
//! of their names and contents that tells one revision from the next. Building the
//! inventory from what was read is `build`'s.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigErrors, Place};
use super::inventory::Inventory;
use super::probe::ProbeSettings;

mod build;

pub use build::{build_file, build_inventory, build_inventory_with, is_blank};

/// One inventory file as read from disk.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// Lists the inventory files under `dir`, sorted, skipping hidden entries (Kubernetes
/// ConfigMaps keep their real files under `..data`; the visible names are symlinks).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            ConfigError::new(
                Place::of_file(&d),
                format!("cannot read inventory directory: {e}"),
            )
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every inventory file under `dir`.
pub fn read_sources(dir: &Path) -> Result<Vec<Source>, ConfigErrors> {
    let files = list_files(dir).map_err(|e| ConfigErrors(vec![e]))?;
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => errors.push(ConfigError::new(
                Place::of_file(&path),
                format!("cannot read: {e}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(sources)
    } else {
        Err(ConfigErrors::sorted(errors))
    }
}

/// A stable hash of the sources' names and contents.
pub fn content_hash(sources: &[Source]) -> String {
    let mut h = DefaultHasher::new();
    for s in sources {
        h.write(s.path.as_os_str().as_encoded_bytes());
        h.write_u8(0);
        h.write(s.text.as_bytes());
        h.write_u8(0);
    }
    format!("{:016x}", h.finish())
}

/// Reads and validates the inventory under `dir`.
pub fn load_inventory(dir: &Path, defaults: &ProbeSettings) -> Result<Inventory, ConfigErrors> {
    let sources = read_sources(dir)?;
    if sources.is_empty() {
        return Err(ConfigErrors(vec![ConfigError::new(
            Place::of_file(dir),
            "no inventory files (*.yaml or *.yml) found",
        )]));
    }
    build_inventory(&sources, defaults)
}
