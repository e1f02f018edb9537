//! Records the database rejected for good (a constraint, a data exception: retrying
//! cannot help), set aside so that one poison record does not hold every device's
//! history: appended, with the error, to `store-dead-letter.jsonl` beside the spool (one
//! JSON object per line, fsync'd), counted, and logged one line per record. An operator
//! can fix the cause and replay them; nothing else reads the file.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::store::Record;

/// The dead-letter file's name inside the data directory.
pub const DEAD_LETTER_FILE: &str = "store-dead-letter.jsonl";

pub(super) struct DeadLetters {
    path: PathBuf,
}

#[derive(Serialize)]
struct Entry<'a> {
    set_aside_at: chrono::DateTime<chrono::Utc>,
    error: &'a str,
    record: &'a Record,
}

impl DeadLetters {
    pub fn in_dir(dir: &Path) -> DeadLetters {
        DeadLetters {
            path: dir.join(DEAD_LETTER_FILE),
        }
    }

    /// Sets `record` aside. When even that fails the log line carries the whole record,
    /// the last place it can be kept.
    pub fn set_aside(&self, record: &Record, error: &str) {
        let entry = Entry {
            set_aside_at: chrono::Utc::now(),
            error,
            record,
        };
        let line = serde_json::to_string(&entry).unwrap_or_default();
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| {
                f.write_all(format!("{line}\n").as_bytes())?;
                f.sync_data()
            });
        match written {
            Ok(()) => tracing::error!(
                boot = %record.boot, seq = record.seq, error, file = %self.path.display(),
                "the database rejected a record for good; set aside in the dead-letter file"
            ),
            Err(e) => tracing::error!(
                boot = %record.boot, seq = record.seq, error, record = %line, file_error = %e,
                "the database rejected a record for good and the dead-letter file cannot be written; the record is in this line only"
            ),
        }
    }
}
