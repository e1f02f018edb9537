//! Which files an inventory directory holds: every `*.yaml`/`*.yml` under it, found by
//! a walk that always ends.
//!
//! Symlinks are followed (a Kubernetes ConfigMap is made of them), so the walk guards
//! against what they can do: each directory is entered once, by its (device, inode),
//! so `a -> .` or two links to one directory never loop or read a file twice; a
//! directory link that leads outside the inventory directory (`-> /`) is an error, not
//! a walk of the whole machine; nesting stops at [`MAX_DEPTH`] directories. A name
//! ending in `.yaml` that is not a regular file (a FIFO, a socket, `/dev/zero`) is an
//! error and is never opened here.

use std::collections::{HashSet, VecDeque};
use std::fs::{FileType, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::config::error::{ConfigError, ConfigErrors, Place};

/// Directories nest at most this deep under the inventory directory.
pub const MAX_DEPTH: usize = 16;

/// Lists the inventory files under `dir`, sorted, skipping hidden entries (Kubernetes
/// ConfigMaps keep their real files under `..data`; the visible names are symlinks).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigErrors> {
    let fail = |e: std::io::Error| {
        ConfigErrors(vec![ConfigError::new(
            Place::of_file(dir),
            format!("cannot read inventory directory: {e}"),
        )])
    };
    let root = std::fs::metadata(dir).map_err(fail)?;
    let canonical_root = std::fs::canonicalize(dir).map_err(fail)?;
    let mut walk = Walk {
        root: canonical_root,
        entered: HashSet::from([identity(&root)]),
        files: Vec::new(),
        errors: Vec::new(),
    };
    // Breadth first, each directory's entries sorted: of two paths to one directory,
    // the shorter (then the first in order) is the one read, every time.
    let mut pending = VecDeque::from([(dir.to_path_buf(), 0)]);
    while let Some((d, depth)) = pending.pop_front() {
        let mut entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect::<Vec<_>>(),
            Err(e) if d == dir => return Err(fail(e)),
            Err(e) => {
                walk.error(&d, format!("cannot read directory: {e}"));
                continue;
            }
        };
        entries.sort();
        for path in entries {
            if let Some(sub) = walk.entry(path, depth) {
                pending.push_back((sub, depth + 1));
            }
        }
    }
    if !walk.errors.is_empty() {
        return Err(ConfigErrors::sorted(walk.errors));
    }
    walk.files.sort();
    Ok(walk.files)
}

struct Walk {
    /// The inventory directory, symlinks resolved: directory links stay inside it.
    root: PathBuf,
    /// (device, inode) of every directory entered.
    entered: HashSet<(u64, u64)>,
    files: Vec<PathBuf>,
    errors: Vec<ConfigError>,
}

impl Walk {
    /// Takes the entry at `path` (depth: of the directory holding it); returns it if it
    /// is a directory to enter.
    fn entry(&mut self, path: PathBuf, depth: usize) -> Option<PathBuf> {
        let name = path.file_name()?.to_string_lossy();
        if name.starts_with('.') {
            return None;
        }
        let inventory = is_inventory_name(&path);
        // `metadata` follows symlinks; it never opens the file, so a FIFO cannot block.
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                // A dangling link named like an inventory file is a file that is missing.
                if inventory {
                    self.error(&path, format!("cannot read: {e}"));
                }
                return None;
            }
        };
        if meta.is_dir() {
            return self.directory(path, &meta, depth);
        }
        if inventory {
            if meta.is_file() {
                self.files.push(path);
            } else {
                let what = kind(meta.file_type());
                self.error(&path, format!("not a regular file ({what}); not read"));
            }
        }
        None
    }

    fn directory(&mut self, path: PathBuf, meta: &Metadata, depth: usize) -> Option<PathBuf> {
        if !self.entered.insert(identity(meta)) {
            // A loop (`a -> .`) or a second way to a directory already read.
            return None;
        }
        let linked = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink());
        if linked {
            match std::fs::canonicalize(&path) {
                Ok(target) if target.starts_with(&self.root) => {}
                Ok(target) => {
                    let message = format!(
                        "links to {}, outside the inventory directory; not followed",
                        target.display()
                    );
                    self.error(&path, message);
                    return None;
                }
                Err(e) => {
                    self.error(&path, format!("cannot read directory: {e}"));
                    return None;
                }
            }
        }
        if depth + 1 > MAX_DEPTH {
            let message = format!("directories nested more than {MAX_DEPTH} deep; not read");
            self.error(&path, message);
            return None;
        }
        Some(path)
    }

    fn error(&mut self, path: &Path, message: String) {
        self.errors
            .push(ConfigError::new(Place::of_file(path), message));
    }
}

fn is_inventory_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn identity(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// What a file that is not a regular file is, in words.
pub fn kind(t: FileType) -> &'static str {
    if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}
