//! The writer's append-only spool: every record is written here and fsync'd before the
//! database sees it, and the file is emptied only once the database has committed all of
//! it (and the state it leads to is in the [`snapshot`](super::snapshot)). A kill -9 at
//! any moment therefore loses nothing; replaying records the database already has is
//! harmless because applying is idempotent per (`boot`, `seq`).
//!
//! Every record is framed with its length and a checksum ([`frame`]), so each one is
//! verified on its own: an unreadable piece anywhere is skipped and counted, never the
//! reason to drop what follows it. A failed append (a full disk writes part of it) is cut
//! back to the last good length before anything else is written, so no fragment is left
//! for the next record to be glued to.

mod frame;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Record;

pub struct Spool {
    file: File,
    path: PathBuf,
    /// The length up to which the file holds whole, synced appends.
    len: u64,
    /// An append failed and its fragment may still be in the file past `len`.
    torn: bool,
    /// The file ends inside a line (a whole record that lost its newline): the next
    /// append ends it first.
    line_open: bool,
}

/// What reading (part of) the spool found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Unreadable pieces skipped (a fragment, a record whose checksum failed).
    pub skipped: u64,
    /// The offset after the last line read.
    pub next: u64,
}

impl Spool {
    /// Opens (creating) the spool and returns the records still in it, oldest first.
    pub fn open(path: &Path) -> std::io::Result<(Spool, Vec<Record>)> {
        let mut records = Vec::new();
        let (spool, _) = Spool::open_with(path, |_, r| records.push(r))?;
        Ok((spool, records))
    }

    /// Opens (creating) the spool and hands each record in it to `each` with the offset
    /// of its line, oldest first. A torn last line is cut off (nothing follows it).
    pub fn open_with(
        path: &Path,
        mut each: impl FnMut(u64, Record),
    ) -> std::io::Result<(Spool, Scan)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let len = file.metadata()?.len();
        let mut spool = Spool {
            file,
            path: path.to_path_buf(),
            len,
            torn: false,
            line_open: false,
        };
        let mut tail = None;
        let scan = spool.scan(0, u64::MAX, |offset, records, ended| {
            if !ended {
                tail = Some((offset, !records.is_empty()));
            }
            for r in records {
                each(offset, r);
            }
        })?;
        match tail {
            // A whole record that lost only its newline: the next append ends its line
            // (not now: the disk may be full, and start-up must not fail on it).
            Some((_, true)) => spool.line_open = true,
            Some((offset, false)) => {
                tracing::warn!(spool = %path.display(), offset, "cutting a torn record off the end of the spool");
                spool.file.set_len(offset)?;
                spool.file.sync_data()?;
                spool.len = offset;
            }
            None => {}
        }
        if scan.skipped > 0 {
            tracing::warn!(spool = %path.display(), skipped = scan.skipped, "skipped unreadable pieces of the spool; every verified record is kept");
        }
        Ok((spool, scan))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of whole records in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads records from the line at `from` until at least `max` are in `out` or the
    /// file ends; `next` is where to continue (the length of the file at its end).
    pub fn read_from(&self, from: u64, max: usize, out: &mut Vec<Record>) -> std::io::Result<Scan> {
        self.scan(from, max as u64, |_, records, _| out.extend(records))
    }

    /// Calls `line` with the records of each line from `from` on (its offset, its
    /// records, whether it ended with a newline) until `max` records have been read.
    fn scan(
        &self,
        from: u64,
        max: u64,
        mut line: impl FnMut(u64, Vec<Record>, bool),
    ) -> std::io::Result<Scan> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(from))?;
        let mut reader = BufReader::new(file.take(self.len.saturating_sub(from)));
        let mut scan = Scan {
            skipped: 0,
            next: from,
        };
        let mut buf = Vec::new();
        let mut read = 0u64;
        while read < max {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            let ended = buf.last() == Some(&b'\n');
            let text = if ended { &buf[..n - 1] } else { &buf[..] };
            let mut records = Vec::new();
            scan.skipped += frame::decode_line(text, &mut records);
            read += records.len() as u64;
            line(scan.next, records, ended);
            scan.next += n as u64;
        }
        Ok(scan)
    }

    /// Appends `records` and waits until they are on disk. On failure the file is cut
    /// back to its last good length (now, or before the next append if that fails too).
    pub fn append(&mut self, records: &[Record]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.torn {
            self.repair()?;
        }
        let mut buf = Vec::with_capacity(records.len() * 220 + 1);
        if self.line_open {
            buf.push(b'\n');
        }
        for r in records {
            frame::encode(r, &mut buf)?;
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.line_open = false;
                Ok(())
            }
            Err(e) => {
                self.torn = true;
                // Best effort now; append retries it first.
                let _ = self.repair();
                Err(e)
            }
        }
    }

    fn repair(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_data()?;
        self.torn = false;
        Ok(())
    }

    /// Empties the spool once the database holds everything in it.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.len = 0;
        self.torn = false;
        self.line_open = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        crate::store::record::sample(seq)
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
        spool.file.write_all(b"\x1e123 0000").unwrap();
        drop(spool);
        let (mut spool, old) = Spool::open(&path).unwrap();
        assert_eq!(old, vec![record(1)]);
        spool.append(&[record(2)]).unwrap();
        drop(spool);
        assert_eq!(Spool::open(&path).unwrap().1, vec![record(1), record(2)]);
    }

    #[test]
    fn garbage_in_the_middle_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let (mut spool, _) = Spool::open(&path).unwrap();
        spool.append(&[record(1)]).unwrap();
        spool.file.write_all(br#"{"boot":"b","se"#).unwrap();
        spool.len = spool.file.metadata().unwrap().len();
        spool.append(&[record(2), record(3)]).unwrap();
        drop(spool);
        let mut seen = Vec::new();
        let (_, scan) = Spool::open_with(&path, |_, r| seen.push(r)).unwrap();
        assert_eq!(seen, vec![record(1), record(2), record(3)]);
        assert_eq!(scan.skipped, 1);
    }

    #[test]
    fn reading_back_from_an_offset_continues_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let (mut spool, _) = Spool::open(&path).unwrap();
        spool
            .append(&(1..=5).map(record).collect::<Vec<_>>())
            .unwrap();
        let mut out = Vec::new();
        let first = spool.read_from(0, 2, &mut out).unwrap();
        assert_eq!(out, vec![record(1), record(2)]);
        let rest = spool.read_from(first.next, 10, &mut out).unwrap();
        assert_eq!(out, (1..=5).map(record).collect::<Vec<_>>());
        assert_eq!(rest.next, spool.len());
    }
}
