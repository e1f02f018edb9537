//! Reading one configuration file (the settings or an inventory file) in a way that can
//! neither block nor exhaust memory, whatever the path names.
//!
//! The file is opened with `O_NONBLOCK` (opening a FIFO for reading otherwise waits for
//! a writer, for good), checked to be a regular file by `fstat` on the opened
//! descriptor (what was checked is what is read, even if the name was swapped since the
//! directory was listed), and read to at most [`MAX_FILE_BYTES`] + 1 bytes, so a link
//! to `/dev/zero` or a file grown huge is an error, not gigabytes allocated. The text
//! must be UTF-8; where it is not is reported with its place, lines counted as the
//! YAML reader counts them.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::files::kind;
use crate::config::error::{ConfigError, Place};
use crate::config::yaml::place;

/// The largest configuration file read: 64 MiB, about 600,000 devices written one per
/// line (the demo's million devices are ten files of about 11 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The text of the file at `path`.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    read_text_limited(path, MAX_FILE_BYTES)
}

pub(crate) fn read_text_limited(path: &Path, limit: u64) -> Result<String, ConfigError> {
    let bytes = read_bytes_limited(path, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // Safe to unwrap: the bytes before `valid_up_to` are UTF-8 by definition.
        let before = std::str::from_utf8(valid).expect("valid up to here");
        let at = place::of_byte(before, before.len());
        ConfigError::new(
            Place::at(path, at),
            "not UTF-8 text (a configuration file must be UTF-8)",
        )
    })
}

/// The bytes of the file at `path`, read as [`read_text`] reads them (never blocking,
/// at most `limit`), for files that need not be UTF-8 (TLS keys and certificates).
pub(crate) fn read_bytes_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ConfigError> {
    let error = |message: String| ConfigError::new(Place::of_file(path), message);
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| error(format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| error(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        let what = kind(meta.file_type());
        return Err(error(format!("not a regular file ({what}); not read")));
    }
    let too_large = || error(format!("larger than {} MiB; not read", limit >> 20));
    if meta.len() > limit {
        return Err(too_large());
    }
    // The size said is only a hint (the file may be growing): never more than the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_pointed_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, b"regions:\n  - name: t\xffx\n").unwrap();
        let e = read_text(&path).unwrap_err();
        assert_eq!((e.place.line, e.place.column), (2, 12));
        assert!(e.message.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn a_file_past_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, vec![b'#'; (1 << 20) + 1]).unwrap();
        let e = read_text_limited(&path, 1 << 20).unwrap_err();
        assert_eq!(e.message, "larger than 1 MiB; not read");
        std::fs::write(&path, vec![b'#'; 1 << 20]).unwrap();
        assert_eq!(read_text_limited(&path, 1 << 20).unwrap().len(), 1 << 20);
    }
}
