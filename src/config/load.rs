//! Reading an inventory directory: every `*.yaml`/`*.yml` file under it ([`files`]
//! finds them, [`read`] reads one), and the hash of their names and contents that tells
//! one revision from the next. Building the inventory from what was read is `build`'s.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

use super::error::{ConfigError, ConfigErrors, Place};
use super::inventory::Inventory;
use super::probe::ProbeSettings;

mod build;
pub mod files;
pub mod read;

pub use build::{build_file, build_inventory, build_inventory_with, is_blank, metric_label_name};
pub use files::list_files;
pub use read::{MAX_FILE_BYTES, read_text};

/// One inventory file as read from disk.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// The inventory of one YAML text, as if it were the file `inventory/t.yaml`: for unit
/// tests, which build small inventories inline.
#[cfg(test)]
pub fn inventory_of(text: &str) -> Inventory {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: text.into(),
    };
    build_inventory(&[source], &Default::default()).expect("a valid test inventory")
}

/// Reads every inventory file under `dir` (see [`files`] and [`read`] for what is
/// refused: loops, links out of the directory, anything but regular files, files past
/// [`MAX_FILE_BYTES`], text that is not UTF-8).
pub fn read_sources(dir: &Path) -> Result<Vec<Source>, ConfigErrors> {
    let files = list_files(dir)?;
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        match read_text(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(sources)
    } else {
        Err(ConfigErrors::sorted(errors))
    }
}

/// The hash of the sources' names and contents that identifies an inventory revision
/// (`hash` in `/api/v1/status`, the reload log and the event feed).
///
/// XXH3-64 (seed 0) over, for each source in order, its path's bytes, a 0 byte, its
/// text and a 0 byte, written as 16 lowercase hex digits. XXH3's output is fixed by its
/// specification, so the same files hash the same on every build, Rust release and
/// machine (std's `DefaultHasher`, used before, promises none of that); and it is fast
/// enough to run over a 100,000-device inventory at every check. It tells revisions
/// apart; it is not meant to resist someone crafting a collision.
pub fn content_hash(sources: &[Source]) -> String {
    let mut h = Xxh3::new();
    for s in sources {
        h.update(s.path.as_os_str().as_encoded_bytes());
        h.update(&[0]);
        h.update(s.text.as_bytes());
        h.update(&[0]);
    }
    format!("{:016x}", h.digest())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str, text: &str) -> Source {
        Source {
            path: PathBuf::from(path),
            text: text.to_string(),
        }
    }

    #[test]
    fn the_content_hash_of_fixed_files_is_a_fixed_string() {
        // XXH3-64 of no input at all, as the specification's reference gives it.
        assert_eq!(content_hash(&[]), "2d06800538d394c2");
        let sources = [
            source("inventory/batumi.yaml", "regions:\n  - name: batumi\n"),
            source("inventory/west/kutaisi.yml", "regions: []\n"),
        ];
        // As the reference implementation has it (xxhsum, Debian's package `xxhash`):
        // printf 'inventory/batumi.yaml\0regions:\n  - name: batumi\n\0inventory/west/kutaisi.yml\0regions: []\n\0' | xxhsum -H3 -
        assert_eq!(content_hash(&sources), "71838bbdecb1a734");
        // A file's name counts as much as its content.
        let renamed = [source(
            "inventory/batumi.yml",
            "regions:\n  - name: batumi\n",
        )];
        assert_ne!(content_hash(&renamed), content_hash(&sources[..1]));
    }
}
