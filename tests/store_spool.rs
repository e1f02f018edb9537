//! The spool on a bad day: its disk fills up (a tmpfs of the test's own). A failed append
//! must cost nothing that follows it, and while records are held in memory only the store
//! says so — in `/readyz`'s reason and in the metrics — with figures that match the file.

mod disk;
mod feeding;
mod pgdb;

use std::time::Duration;

use disk::{Filler, Tmpfs};
use feeding::{flip, wait_until};
use pgdb::proxy::Proxy;
use prometheus_client::registry::Registry;
use wardops::store::spool::Spool;
use wardops::store::startup::{Limits, SPOOL_FILE};
use wardops::store::{Record, RecordKind};

fn record(seq: u64) -> Record {
    Record {
        boot: "b".into(),
        stamp: None,
        seq,
        at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        kind: RecordKind::Devices {
            upsert: vec![],
            removed: vec![format!("device-{seq}")],
        },
    }
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

#[test]
fn a_failed_append_on_a_full_disk_loses_none_of_the_records_after_it() {
    let disk = Tmpfs::mount("256k");
    let path = disk.path().join(SPOOL_FILE);
    let (mut spool, _) = Spool::open(&path).unwrap();
    spool
        .append(&(1..=10).map(record).collect::<Vec<_>>())
        .unwrap();
    let filler = Filler::fill(disk.path());
    filler.leave(4096);
    // Larger than what is left: part of it is written, then ENOSPC.
    let batch: Vec<Record> = (11..=200).map(record).collect();
    let error = spool.append(&batch).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(28), "{error}");
    drop(filler);
    // The next record, then 21 more.
    for seq in 201..=222 {
        spool.append(&[record(seq)]).unwrap();
    }
    drop(spool);
    let (_, found) = Spool::open(&path).unwrap();
    let want: Vec<u64> = (1..=10).chain(201..=222).collect();
    assert_eq!(
        seqs(&found),
        want,
        "the failed batch is the writer's to spool again; nothing else is missing"
    );
}

#[test]
fn a_spool_of_the_old_format_still_reads_and_takes_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SPOOL_FILE);
    let mut old = String::new();
    for seq in 1..=3 {
        old.push_str(&serde_json::to_string(&record(seq)).unwrap());
        old.push('\n');
    }
    std::fs::write(&path, old).unwrap();
    let (mut spool, found) = Spool::open(&path).unwrap();
    assert_eq!(seqs(&found), [1, 2, 3]);
    spool.append(&[record(4)]).unwrap();
    drop(spool);
    assert_eq!(seqs(&Spool::open(&path).unwrap().1), [1, 2, 3, 4]);
}

/// Records in the spool file not yet in the database (read from a copy: the writer has
/// the file open). The spool may also still hold records committed since it was emptied.
fn spooled(path: &std::path::Path, db: &pgdb::TestDb) -> usize {
    let copy = tempfile::tempdir().unwrap();
    let to = copy.path().join(SPOOL_FILE);
    std::fs::copy(path, &to).unwrap();
    let committed: u64 = db
        .query("SELECT coalesce(max(last_seq), 0) FROM writer_progress")
        .trim()
        .parse()
        .unwrap();
    let records = Spool::open(&to).unwrap().1;
    records.iter().filter(|r| r.seq > committed).count()
}

fn metric(registry: &Registry, name: &str) -> i64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_disk_shows_in_the_reason_and_metrics_and_loses_nothing() {
    let db = pgdb::TestDb::create("spool_full");
    let proxy = Proxy::start();
    let disk = Tmpfs::mount("256k");
    let dir = tempfile::tempdir().unwrap();
    let config = feeding::inventory(dir.path(), 70);
    let (started, state) = feeding::store(
        db.url_via(proxy.addr),
        &config,
        disk.path(),
        Limits::default(),
    )
    .await;
    let health = started.health.clone();
    let mut registry = Registry::default();
    health.register(&mut registry);
    let mut expected = Vec::new();
    for i in 0..70 {
        expected.push(flip(&state, i, true));
    }
    feeding::all_written(&health, 70).await;

    // The database away, a few records spooled; then the spool's disk full.
    proxy.cut();
    for i in 0..3 {
        expected.push(flip(&state, i, false));
    }
    wait_until("three records spooled", Duration::from_secs(10), || {
        health.pending.get() == 3
    })
    .await;
    let filler = Filler::fill(disk.path());
    // tmpfs hands out whole pages, so the spool's last page may still take a few records
    // after the disk is full: more go down, a batch at a time, until one fails to append.
    let mut down = 3;
    while health.memory_only.get() == 0 {
        assert!(down < 60, "{down} records and never a failed append");
        for i in down..down + 9 {
            expected.push(flip(&state, i, false));
        }
        down += 9;
        let pending = down as i64;
        wait_until("the batch pending", Duration::from_secs(10), || {
            filler.top_up();
            health.pending.get() == pending
        })
        .await;
        let settled = tokio::time::Instant::now() + Duration::from_secs(2);
        while health.memory_only.get() == 0 && tokio::time::Instant::now() < settled {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let pending = down as i64;
    let spool = disk.path().join(SPOOL_FILE);
    let on_disk = spooled(&spool, &db) as i64;
    let in_memory = health.memory_only.get();
    assert_eq!(
        on_disk + in_memory,
        pending,
        "every pending record is either spooled or held"
    );
    let reason = health.degraded_reason().expect("degraded");
    for part in [
        format!("{pending} pending write(s), {on_disk} spooled, {in_memory} in memory only"),
        "spool failing, durability off".to_string(),
        "No space left on device".to_string(),
        "database unavailable".to_string(),
    ] {
        assert!(reason.contains(&part), "{part:?} not in {reason:?}");
    }
    assert_eq!(
        metric(&registry, "wardops_store_records_memory_only"),
        in_memory
    );
    assert!(metric(&registry, "wardops_store_spool_errors_total") >= 1);
    assert_eq!(metric(&registry, "wardops_store_degraded"), 1);

    // Room again: what was held is spooled, before anything newer.
    drop(filler);
    wait_until("the held records spooled", Duration::from_secs(10), || {
        health.memory_only.get() == 0 && health.spool_error().is_none()
    })
    .await;
    expected.push(flip(&state, down, false));
    wait_until("the next record spooled", Duration::from_secs(10), || {
        health.pending.get() == pending + 1
    })
    .await;
    assert_eq!(spooled(&spool, &db) as i64, pending + 1);
    let reason = health
        .degraded_reason()
        .expect("the database is still away");
    assert!(
        reason.contains(&format!(
            "{0} pending write(s), {0} spooled, 0 in memory only",
            pending + 1
        )),
        "{reason}"
    );

    proxy.restore();
    wait_until("the spool to drain", Duration::from_secs(30), || {
        health.pending.get() == 0 && !health.is_degraded()
    })
    .await;
    let rows = db.query("SELECT device, from_status, to_status FROM transitions ORDER BY id");
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        feeding::rows(&expected),
        "every transition, in order, once"
    );
}
