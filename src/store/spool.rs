//! The writer's append-only spool: every record is written here and fsync'd before the
//! database sees it, and the file is emptied only once the database has committed all of
//! it. A kill -9 at any moment therefore loses nothing; replaying records the database
//! already has is harmless because applying is idempotent per (`boot`, `seq`).
//!
//! Format: one JSON [`Record`] per line. A torn last line (a crash mid-write, before the
//! fsync that would have made it durable) is dropped on open.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Record;

pub struct Spool {
    file: File,
    path: PathBuf,
}

impl Spool {
    /// Opens (creating) the spool and returns the records still in it, oldest first.
    pub fn open(path: &Path) -> std::io::Result<(Spool, Vec<Record>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut records = Vec::new();
        let mut good_len = 0u64;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 {
                break;
            }
            match serde_json::from_str::<Record>(line.trim_end()) {
                Ok(r) if line.ends_with('\n') => {
                    records.push(r);
                    good_len += n as u64;
                }
                _ => {
                    tracing::warn!(spool = %path.display(), offset = good_len, "dropping a torn record at the end of the spool");
                    break;
                }
            }
        }
        drop(reader);
        if file.metadata()?.len() != good_len {
            file.set_len(good_len)?;
            file.sync_data()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok((
            Spool {
                file,
                path: path.to_path_buf(),
            },
            records,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `records` and waits until they are on disk.
    pub fn append(&mut self, records: &[Record]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * 200);
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()
    }

    /// Empties the spool once the database holds everything in it.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RecordKind;

    fn record(seq: u64) -> Record {
        Record {
            boot: "b".into(),
            seq,
            at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            kind: RecordKind::Devices {
                upsert: vec![],
                removed: vec![format!("d{seq}")],
            },
        }
    }

    #[test]
    fn records_survive_reopening_and_clear_empties() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/spool.jsonl");
        let (mut spool, old) = Spool::open(&path).unwrap();
        assert!(old.is_empty());
        spool.append(&[record(1), record(2)]).unwrap();
        spool.append(&[record(3)]).unwrap();
        drop(spool);
        let (mut spool, old) = Spool::open(&path).unwrap();
        assert_eq!(old, vec![record(1), record(2), record(3)]);
        spool.clear().unwrap();
        spool.append(&[record(4)]).unwrap();
        drop(spool);
        assert_eq!(Spool::open(&path).unwrap().1, vec![record(4)]);
    }

    #[test]
    fn a_torn_tail_is_dropped_and_appends_continue_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let (mut spool, _) = Spool::open(&path).unwrap();
        spool.append(&[record(1)]).unwrap();
        spool.file.write_all(br#"{"boot":"b","se"#).unwrap();
        drop(spool);
        let (mut spool, old) = Spool::open(&path).unwrap();
        assert_eq!(old, vec![record(1)]);
        spool.append(&[record(2)]).unwrap();
        drop(spool);
        assert_eq!(Spool::open(&path).unwrap().1, vec![record(1), record(2)]);
    }
}
