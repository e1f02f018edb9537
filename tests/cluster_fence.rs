//! The fenced writer of a cluster member (issue #18, docs/cluster.md "Fencing every
//! write") through the real writer on the real PostgreSQL, a database of the test's own.
//! The member's `Owned` channel is driven by the test, so that a member whose own fence
//! failed (it believes it still holds a shard) is what the database has to stop: a record
//! stamped with a lease that no longer holds is refused in the transaction, never retried;
//! one made for a shard the member does not hold is not spooled at all.

mod pgdb;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pgdb::TestDb;
use pgdb::proxy::Proxy;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use wardops::cluster::leases::{Held, Leases};
use wardops::cluster::member::Owned;
use wardops::cluster::shard_of;
use wardops::state::{StoreEvent, SystemClock};
use wardops::store::startup::{Limits, SPOOL_FILE, StartOptions, Started, start_member};
use wardops::store::writer::WriterCluster;
use wardops::store::{AlertRules, DeviceRow, Record, RecordKind, Stamp};

/// One member's writer, what the test tells it it holds, and its relay's waker.
struct Writer {
    started: Started,
    owned: watch::Sender<Owned>,
    relay: Arc<Notify>,
    _dir: tempfile::TempDir,
}

impl Writer {
    async fn start(url: String, member: &str, held: &[Held]) -> Writer {
        let dir = tempfile::tempdir().unwrap();
        let options = StartOptions {
            database_url: url,
            base_dir: dir.path().into(),
            data_dir: dir.path().into(),
            rules: AlertRules::default(),
            retention: Duration::from_secs(400 * 86_400),
            wait: Duration::from_secs(10),
        };
        let (owned, rx) = watch::channel(owned(held));
        let relay = Arc::new(Notify::new());
        let cluster = WriterCluster {
            member: member.into(),
            owned: rx,
            relay: Some(relay.clone()),
        };
        let started = start_member(
            options,
            Arc::new(SystemClock),
            Limits::default(),
            Some(cluster),
        )
        .await
        .expect("the store starts");
        Writer {
            started,
            owned,
            relay,
            _dir: dir,
        }
    }

    fn boot(&self) -> String {
        self.started.health.run().unwrap().0.to_string()
    }

    /// The transitions this writer's run committed, as `device|to_status`, in order.
    fn written(&self, db: &TestDb) -> Vec<String> {
        let sql = format!(
            "SELECT device, to_status FROM transitions WHERE boot_id = '{}' ORDER BY id",
            self.boot()
        );
        db.query(&sql).lines().map(str::to_string).collect()
    }

    fn send(&self, kind: RecordKind) {
        let at = Utc::now();
        self.started
            .sink
            .send(StoreEvent::Action { at, kind })
            .unwrap();
    }

    /// A device goes from `from` to `to` (down: since 5 s ago).
    fn transition(&self, device: &str, from: &str, to: &str) {
        let down_since = (to == "down").then(|| Utc::now() - chrono::Duration::seconds(5));
        self.send(transition(device, from, to, down_since));
    }

    /// Waits until everything sent so far is out of the queue (committed or refused).
    async fn drained(&self) {
        // What was just sent reaches the queue through the spool thread first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let health = &self.started.health;
        wait_until("the queue drained", Duration::from_secs(30), || {
            health.pending.get() == 0
        })
        .await;
    }
}

/// What a member may act on: `held`, for an hour (the test withdraws it, not a clock).
fn owned(held: &[Held]) -> Owned {
    Owned {
        shards: held
            .iter()
            .map(|h| (h.shard, h.epoch))
            .collect::<BTreeMap<_, _>>(),
        until: Some(Instant::now() + Duration::from_secs(3600)),
    }
}

fn transition(device: &str, from: &str, to: &str, down_since: Option<DateTime<Utc>>) -> RecordKind {
    RecordKind::Transition {
        device: device.into(),
        address: "127.88.0.1".into(),
        from: from.into(),
        to: to.into(),
        down_since,
        version: 1,
        in_maintenance: false,
        alert_held: false,
    }
}

fn devices(names: &[String]) -> RecordKind {
    RecordKind::Devices {
        upsert: names
            .iter()
            .map(|n| DeviceRow {
                name: n.clone(),
                address: "127.88.0.1".into(),
                region: "r".into(),
                branch: "b".into(),
                kind: "atm".into(),
            })
            .collect(),
        removed: vec![],
    }
}

/// `n` device names, each on a shard of its own.
fn distinct_shards(n: usize) -> Vec<(String, u16)> {
    let mut out: Vec<(String, u16)> = Vec::new();
    for i in 0.. {
        let name = format!("fence-atm-{i}");
        let shard = shard_of(&name);
        if out.iter().all(|(_, s)| *s != shard) {
            out.push((name, shard));
        }
        if out.len() == n {
            break;
        }
    }
    out
}

async fn leases(db: &TestDb, member: &str, ttl: Duration) -> Leases {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url())
        .await
        .unwrap();
    Leases::new(pool, member, ttl)
}

async fn acquire(leases: &Leases, shards: &[u16]) -> Vec<Held> {
    let mut held = Vec::new();
    for &s in shards {
        held.push(leases.acquire(s).await.unwrap().expect("the shard is free"));
    }
    held
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).trim().parse().unwrap()
}

/// A database with the schema (the first writer migrates it; this is for the leases).
async fn migrated(tag: &str) -> TestDb {
    let db = TestDb::create(tag);
    db.migrated().await;
    db
}

#[tokio::test]
async fn a_member_holding_the_shard_writes_its_transition_and_its_events() {
    let db = migrated("fence_accept").await;
    let a = leases(&db, "a", Duration::from_secs(60)).await;
    let [(device, shard)] = <[_; 1]>::try_from(distinct_shards(1)).unwrap();
    let held = acquire(&a, &[shard]).await;
    let writer = Writer::start(db.url(), "a", &held).await;
    writer.send(devices(std::slice::from_ref(&device)));
    writer.transition(&device, "unknown", "down");
    writer.drained().await;

    assert_eq!(writer.written(&db), [format!("{device}|down")]);
    // The transition, then the device_down alert it opened, under A's lease.
    let events = db.query(
        "SELECT event->>'type', event->>'device', event->>'member', event->>'epoch', \
                coalesce(event->>'to', event->>'state') FROM cluster_outbox ORDER BY id",
    );
    let epoch = held[0].epoch;
    assert_eq!(
        events.lines().collect::<Vec<_>>(),
        [
            format!("transition|{device}|a|{epoch}|down"),
            format!("alert|{device}|a|{epoch}|opened"),
        ]
    );
    tokio::time::timeout(Duration::from_secs(1), writer.relay.notified())
        .await
        .expect("the relay is poked after the commit");
    let health = &writer.started.health;
    assert_eq!(
        (health.epoch_conflicts.get(), health.stale_dropped.get()),
        (0, 0)
    );
}

#[tokio::test]
async fn a_record_of_a_shard_another_member_took_is_refused_and_the_batch_goes_on() {
    let db = migrated("fence_conflict").await;
    let a = leases(&db, "a", Duration::from_secs(60)).await;
    let b = leases(&db, "b", Duration::from_secs(60)).await;
    let [(lost, lost_shard), (kept, kept_shard)] = <[_; 2]>::try_from(distinct_shards(2)).unwrap();
    let held = acquire(&a, &[lost_shard, kept_shard]).await;
    let proxy = Proxy::start();
    let writer = Writer::start(db.url_via(proxy.addr), "a", &held).await;
    writer.send(devices(&[lost.clone(), kept.clone()]));
    writer.drained().await;

    // B takes the shard once A's lease has expired; A has not noticed (its own fence
    // failed, say), so it still stamps with the old epoch.
    db.query(&format!(
        "UPDATE shard_leases SET expires_at = now() - interval '1 second' WHERE shard = {lost_shard}"
    ));
    let taken = b
        .acquire(lost_shard)
        .await
        .unwrap()
        .expect("expired: B takes it");
    assert_eq!(taken.epoch, held[0].epoch + 1);

    // Both records in one batch: queued while the database is away.
    proxy.cut();
    writer.transition(&lost, "unknown", "down");
    writer.transition(&kept, "unknown", "down");
    let health = writer.started.health.clone();
    wait_until("both queued", Duration::from_secs(10), || {
        health.pending.get() == 2
    })
    .await;
    proxy.restore();
    writer.drained().await;

    assert_eq!(
        writer.written(&db),
        [format!("{kept}|down")],
        "the stale record is not applied, the other one is"
    );
    assert_eq!(health.epoch_conflicts.get(), 1);
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM alerts WHERE device = '{lost}'")
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM cluster_outbox WHERE event->>'device' = '{lost}'")
        ),
        0,
        "nothing published for it"
    );
    // Never retried: the writer goes on with what comes next.
    writer.transition(&kept, "down", "up");
    writer.drained().await;
    assert_eq!(writer.written(&db).len(), 2);
    assert_eq!(health.epoch_conflicts.get(), 1);
}

#[tokio::test]
async fn a_partitioned_member_gets_no_stale_write_in_after_the_others_took_over() {
    let db = migrated("fence_partition").await;
    let ttl = Duration::from_secs(2);
    let a = leases(&db, "a", ttl).await;
    let b = leases(&db, "b", ttl).await;
    let devices_and_shards = distinct_shards(4);
    let names: Vec<String> = devices_and_shards.iter().map(|(n, _)| n.clone()).collect();
    let shards: Vec<u16> = devices_and_shards.iter().map(|(_, s)| *s).collect();
    let held = acquire(&a, &shards).await;
    let proxy = Proxy::start();
    let writer = Writer::start(db.url_via(proxy.addr), "a", &held).await;
    writer.send(devices(&names));
    for n in &names {
        writer.transition(n, "unknown", "up");
    }
    writer.drained().await;
    assert_eq!(
        writer.written(&db).len(),
        4,
        "accepted while A held the shards"
    );

    // Cut off: A keeps deciding (its records are spooled) and never renews.
    proxy.cut();
    let health = writer.started.health.clone();
    for round in 0..3 {
        for n in &names {
            let (from, to) = if round % 2 == 0 {
                ("up", "down")
            } else {
                ("down", "up")
            };
            writer.transition(n, from, to);
        }
    }
    wait_until("A's records spooled", Duration::from_secs(10), || {
        health.pending.get() == 12
    })
    .await;
    // B takes every shard once A's leases have expired by the database's clock.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let taken = acquire(&b, &shards).await;
    assert!(taken.iter().zip(&held).all(|(t, h)| t.epoch == h.epoch + 1));

    proxy.restore();
    writer.drained().await;
    assert_eq!(writer.written(&db).len(), 4, "0 stale writes accepted");
    assert_eq!(health.epoch_conflicts.get(), 12);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM cluster_outbox WHERE event->>'type' = 'transition'"
        ),
        4
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM alerts"),
        0,
        "no outage of A's opened"
    );
}

#[tokio::test]
async fn a_record_of_a_shard_not_held_at_spool_time_is_never_spooled() {
    let db = migrated("fence_spool").await;
    let a = leases(&db, "a", Duration::from_secs(60)).await;
    let [(mine, shard), (other, _)] = <[_; 2]>::try_from(distinct_shards(2)).unwrap();
    let held = acquire(&a, &[shard]).await;
    let proxy = Proxy::start();
    let writer = Writer::start(db.url_via(proxy.addr), "a", &held).await;
    writer.send(devices(&[mine.clone(), other.clone()]));
    writer.drained().await;

    // Away from the database, so that what is queued stays queued (and spooled).
    proxy.cut();
    writer.transition(&other, "unknown", "down");
    writer.transition(&mine, "unknown", "down");
    let health = writer.started.health.clone();
    wait_until("one queued", Duration::from_secs(10), || {
        health.pending.get() == 1
    })
    .await;
    assert_eq!(health.stale_dropped.get(), 1);
    let spool = std::fs::read_to_string(writer._dir.path().join(SPOOL_FILE)).unwrap();
    assert!(spool.contains(&format!("\"device\":\"{mine}\"")), "{spool}");
    assert!(!spool.contains(&other), "{spool}");
    assert!(spool.contains("\"stamp\":{\"member\":\"a\""), "{spool}");

    // The member gives the shard up: its next record is dropped too.
    writer.owned.send_replace(Owned::default());
    writer.transition(&mine, "down", "up");
    wait_until("dropped", Duration::from_secs(10), || {
        health.stale_dropped.get() == 2
    })
    .await;
    assert_eq!(health.pending.get(), 1);

    proxy.restore();
    writer.drained().await;
    assert_eq!(writer.written(&db), [format!("{mine}|down")]);
    assert_eq!(health.epoch_conflicts.get(), 0);
}

#[tokio::test]
async fn an_unstamped_device_record_is_refused_by_a_member() {
    // A spool of the appliance from before it joined the cluster: its device records
    // carry no lease, so a member does not apply them (the owner decides from its probes).
    let db = migrated("fence_unstamped").await;
    use wardops::store::Store as _;
    let store = wardops::store::Db::open(&db.url(), Path::new("."), AlertRules::default()).unwrap();
    let at = Utc::now();
    let record = |seq, kind| Record {
        boot: "old".into(),
        stamp: None,
        seq,
        at,
        kind,
    };
    let fenced = store
        .apply_fenced(
            &[
                record(1, devices(&["old-atm".into()])),
                record(2, transition("old-atm", "unknown", "up", None)),
            ],
            "a",
        )
        .await
        .unwrap();
    assert_eq!((fenced.refused, fenced.unstamped, fenced.events), (1, 1, 0));
    assert_eq!(count(&db, "SELECT count(*) FROM devices"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM transitions"), 0);
}

#[test]
fn records_outside_a_cluster_are_byte_identical_to_before() {
    // Written by the writer before stamps existed; read back and written again, the same.
    let old = r#"{"boot":"b","seq":1,"at":"2027-01-15T08:00:00Z","type":"transition","device":"d","address":"127.0.0.1","from":"up","to":"down","down_since":"2027-01-15T07:59:50Z","version":3}"#;
    let r: Record = serde_json::from_str(old).unwrap();
    assert_eq!(r.stamp, None);
    assert_eq!(serde_json::to_string(&r).unwrap(), old);
    let stamped = Record {
        stamp: Some(Stamp {
            member: "a".into(),
            shard: 7,
            epoch: 3,
        }),
        ..r
    };
    let text = serde_json::to_string(&stamped).unwrap();
    assert!(
        text.ends_with(r#","stamp":{"member":"a","shard":7,"epoch":3}}"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), stamped);
}

#[tokio::test]
async fn a_member_on_sqlite_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_owned, rx) = watch::channel(Owned::default());
    let cluster = WriterCluster {
        member: "a".into(),
        owned: rx,
        relay: None,
    };
    let err = start_member(
        StartOptions::local(dir.path()),
        Arc::new(SystemClock),
        Limits::default(),
        Some(cluster),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("needs PostgreSQL"), "{err}");
}
