//! The writer's queue: the log's records not yet committed, in order, as the spool holds
//! them — with a bound on how many are kept in memory.
//!
//! In log order the queue is `head` (in memory; its last `memory_only` records are those
//! the spool could not take) then `on_disk` records kept in the spool only, read back
//! into `head` as it drains. Records go to disk only once the head is full, and are held
//! in memory only while the disk is not (and the head has room), so the two never
//! interleave: whatever the spool holds stays there until committed, and only records
//! that neither the failing spool nor the full head can take are dropped (counted).
//!
//! Once everything is committed the spool is emptied, after the state it leads to is
//! saved ([`snapshot`](crate::store::snapshot)) — at most as often as costs no more than
//! the spool itself: when the spool has grown past the last snapshot's size, or a while
//! has passed.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::store::Record;
use crate::store::snapshot::{self, Latest};
use crate::store::spool::Spool;

/// A snapshot older than this is replaced when the queue empties, however small the spool.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);
/// A spool this large is emptied even when the snapshot cannot be saved (most likely
/// the disk is full, with the spool on it), so that it does not keep the disk full.
const GIVE_UP_AT: u64 = 1 << 20;
/// Records the head keeps room for once it has drained. A burst (every device's first
/// verdict at start-up: 100,000 records of ~300 bytes) grows it to tens of MiB, which a
/// quiet fleet would otherwise hold for the rest of the run.
const KEEP_ROOM: usize = 1024;

pub(crate) struct Queue {
    pub spool: Spool,
    head: VecDeque<Record>,
    memory_only: usize,
    on_disk: u64,
    /// Where the line of the first record kept on disk only starts.
    cursor: u64,
    limit: usize,
    /// The state the log leads to, records held in memory only included.
    pub latest: Latest,
    snapshot: PathBuf,
    /// The state changed since the snapshot was saved.
    dirty: bool,
    snapshot_len: u64,
    snapshot_at: Instant,
    /// The spooler has ended (the feed closed).
    pub closed: bool,
}

/// What became of records handed to [`Queue::push`].
pub(crate) enum Pushed {
    Spooled,
    /// The spool failed: the records are held in memory only, or `dropped` of them are
    /// lost (the head was full too).
    Failed {
        error: std::io::Error,
        dropped: usize,
    },
}

impl Queue {
    /// `head` and `on_disk` (from `cursor`) as start-up found them in the spool.
    pub fn new(
        spool: Spool,
        found: (Vec<Record>, u64, u64),
        limit: usize,
        latest: Latest,
        snapshot: PathBuf,
    ) -> Queue {
        let (head, on_disk, cursor) = found;
        Queue {
            spool,
            head: head.into(),
            memory_only: 0,
            on_disk,
            cursor,
            limit: limit.max(1),
            latest,
            snapshot,
            dirty: false,
            snapshot_len: 0,
            snapshot_at: Instant::now(),
            closed: false,
        }
    }

    /// Records not committed yet.
    pub fn len(&self) -> usize {
        self.head.len() + self.on_disk as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn memory_only(&self) -> usize {
        self.memory_only
    }

    pub fn on_disk(&self) -> u64 {
        self.on_disk
    }

    /// The first `n` records, for one transaction.
    pub fn batch(&mut self, n: usize) -> Vec<Record> {
        self.refill();
        self.head.iter().take(n).cloned().collect()
    }

    /// Follows the state through a record about to be pushed.
    pub fn follow(&mut self, record: &Record) {
        self.latest.apply(record);
        self.dirty = true;
    }

    /// Spools `records` (after what an earlier failure left in memory) and queues them.
    pub fn push(&mut self, records: Vec<Record>) -> Pushed {
        if let Err(error) = self.respool() {
            let dropped = self.keep_in_memory(records);
            return Pushed::Failed { error, dropped };
        }
        let offset = self.spool.len();
        match self.spool.append(&records) {
            Ok(()) => {
                if self.on_disk > 0 || self.head.len() >= self.limit {
                    if self.on_disk == 0 {
                        self.cursor = offset;
                    }
                    self.on_disk += records.len() as u64;
                } else {
                    self.head.extend(records);
                }
                Pushed::Spooled
            }
            Err(error) => {
                let dropped = self.keep_in_memory(records);
                Pushed::Failed { error, dropped }
            }
        }
    }

    /// Tries again to spool what is held in memory only (nothing new came).
    pub fn retry_spool(&mut self) -> std::io::Result<()> {
        self.respool()
    }

    fn respool(&mut self) -> std::io::Result<()> {
        if self.memory_only == 0 {
            return Ok(());
        }
        let from = self.head.len() - self.memory_only;
        let held: Vec<Record> = self.head.range(from..).cloned().collect();
        self.spool.append(&held)?;
        self.memory_only = 0;
        Ok(())
    }

    /// Holds records the spool did not take in memory, if that keeps the log in order and
    /// the head within its limit; returns how many were dropped instead.
    fn keep_in_memory(&mut self, records: Vec<Record>) -> usize {
        if self.on_disk == 0 && self.head.len() < self.limit {
            self.memory_only += records.len();
            self.head.extend(records);
            0
        } else {
            records.len()
        }
    }

    /// Drops the first `n` records (committed, or set aside).
    pub fn pop(&mut self, n: usize) {
        if n > self.head.len() - self.memory_only {
            // Committed without ever reaching the spool: no file has them, so the next
            // snapshot must not wait.
            self.snapshot_len = 0;
        }
        self.head.drain(..n.min(self.head.len()));
        self.memory_only = self.memory_only.min(self.head.len());
        self.refill();
        if self.head.capacity() > KEEP_ROOM && self.head.len() <= KEEP_ROOM / 4 {
            self.head.shrink_to(KEEP_ROOM);
        }
    }

    /// Reads records kept on disk only back into the head once it runs low.
    fn refill(&mut self) {
        if self.on_disk > 0 && self.head.len() <= self.limit / 2 {
            let mut more = Vec::new();
            match self
                .spool
                .read_from(self.cursor, self.limit - self.head.len(), &mut more)
            {
                Ok(scan) => {
                    self.cursor = scan.next;
                    self.on_disk = if scan.next >= self.spool.len() {
                        0
                    } else {
                        self.on_disk.saturating_sub(more.len() as u64).max(1)
                    };
                    self.head.extend(more);
                }
                Err(e) => {
                    tracing::warn!(spool = %self.spool.path().display(), error = %e, "cannot read spooled records back; retrying")
                }
            }
        }
    }

    /// Once everything is committed: saves the state the log leads to and empties the
    /// spool, when that is due.
    pub fn compact(&mut self, open_alerts: Option<&HashMap<i64, String>>) {
        if !self.is_empty() || !self.dirty {
            return;
        }
        let due =
            self.spool.len() >= self.snapshot_len || self.snapshot_at.elapsed() >= SNAPSHOT_EVERY;
        if !due {
            return;
        }
        match snapshot::save(&self.snapshot, &self.latest, open_alerts) {
            Ok(len) => {
                self.snapshot_len = len;
                self.snapshot_at = Instant::now();
                self.dirty = false;
                if let Err(e) = self.spool.clear() {
                    // Harmless: the records are replayed and skipped at the next start.
                    tracing::warn!(spool = %self.spool.path().display(), error = %e, "cannot empty the spool");
                }
            }
            // The old snapshot and the spool still restore the right state together:
            // keep both, and try again at the next chance.
            Err(e) if self.spool.len() < GIVE_UP_AT => {
                tracing::warn!(snapshot = %self.snapshot.display(), error = %e, "cannot save the state snapshot; the spool is kept until it can")
            }
            Err(e) => {
                // The spool itself fills the disk: emptying it makes room, and an old
                // snapshot must not outlive the records it needs.
                tracing::warn!(snapshot = %self.snapshot.display(), error = %e, "cannot save the state snapshot; emptying the large spool to make room and saving again");
                let cleared = snapshot::remove(&self.snapshot).and_then(|()| self.spool.clear());
                if let Err(e) = cleared {
                    tracing::warn!(spool = %self.spool.path().display(), error = %e, "cannot empty the spool");
                    return;
                }
                self.snapshot_len = 0;
                if snapshot::save(&self.snapshot, &self.latest, open_alerts).is_ok() {
                    self.dirty = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        crate::store::record::sample(seq)
    }

    fn queue(dir: &std::path::Path, limit: usize) -> Queue {
        let (spool, _) = Spool::open(&dir.join("spool")).unwrap();
        Queue::new(
            spool,
            (Vec::new(), 0, 0),
            limit,
            Latest::default(),
            dir.join("state.json"),
        )
    }

    #[test]
    fn past_the_limit_records_wait_on_disk_and_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = queue(dir.path(), 4);
        for seq in 1..=10 {
            q.follow(&record(seq));
            assert!(matches!(q.push(vec![record(seq)]), Pushed::Spooled));
        }
        assert_eq!((q.head.len(), q.on_disk(), q.len()), (4, 6, 10));
        let mut seen = Vec::new();
        while !q.is_empty() {
            let batch = q.batch(3);
            seen.extend(batch.iter().map(|r| r.seq));
            q.pop(batch.len());
            assert!(q.head.len() <= 4 + 1);
        }
        assert_eq!(seen, (1..=10).collect::<Vec<_>>());
        q.compact(None);
        assert!(q.spool.is_empty(), "emptied once all is committed");
        assert!(dir.path().join("state.json").exists());
    }

    #[test]
    fn a_drained_burst_gives_its_room_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = queue(dir.path(), 1 << 20);
        let burst = 20 * KEEP_ROOM as u64;
        assert!(matches!(
            q.push((1..=burst).map(record).collect()),
            Pushed::Spooled
        ));
        assert!(q.head.capacity() >= burst as usize);
        let mut seen = 0;
        while !q.is_empty() {
            let batch = q.batch(500);
            seen += batch.len();
            q.pop(batch.len());
        }
        assert_eq!(seen as u64, burst);
        assert!(
            q.head.capacity() <= 2 * KEEP_ROOM,
            "{} records of room kept after the burst",
            q.head.capacity()
        );
    }
}
