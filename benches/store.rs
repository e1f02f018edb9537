//! Store benchmarks against the local PostgreSQL (127.0.0.1:5432, a database of their own,
//! dropped at the end). Run: `cargo bench --bench store`.
//!
//! 1. Start-up with 100,000 devices in the store: open + migrate + load + restore into a
//!    new `State` (the part of start-up the store adds; must be well under 5 s).
//! 2. A burst of 10,000 simultaneous transitions (a whole region going dark): time until
//!    all are committed, and the longest `record_probe` call meanwhile (the prober's
//!    side must not stall: it only sends to the writer's unbounded feed).
//! 3. The same 10,000 devices recovering: every `device_down` alert resolved.

#[path = "../tests/pgdb/mod.rs"]
mod pgdb;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wardops::config::{Config, Env};
use wardops::probe::ProbeOutcome;
use wardops::state::{Machine, State, SystemClock};
use wardops::store::startup::{self, StartOptions};
use wardops::store::{AlertRules, Db, DeviceRow, Record, RecordKind, Store};

const DEVICES: usize = 100_000;
const BURST: usize = 10_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        wardops::demo::write_flat(dir.path(), DEVICES, None).unwrap();
        let config = Config::load_with_env(
            &dir.path().join("wardops.yaml"),
            &Env {
                listen: None,
                database_url: None,
                users_file: None,
                data_dir: None,
                cluster: Default::default(),
            },
        )
        .unwrap();
        println!(
            "inventory of {DEVICES} devices written and loaded in {:.2?} (not the store's)",
            t.elapsed()
        );

        let db = pgdb::TestDb::create("bench");
        populate(&db, &config).await;
        startup_with_100k(&db, &config, dir.path()).await;

        let db2 = pgdb::TestDb::create("bench_burst");
        burst(&db2, &config, dir.path()).await;
    });
}

fn options(url: String, dir: &std::path::Path) -> StartOptions {
    StartOptions {
        database_url: url,
        base_dir: dir.to_path_buf(),
        data_dir: dir.join("data"),
        rules: AlertRules::default(),
        retention: Duration::from_secs(400 * 86_400),
        wait: Duration::from_secs(5),
    }
}

/// 100,000 devices, all up, and every tenth down with an open alert.
async fn populate(db: &pgdb::TestDb, config: &Config) {
    let store = Db::open(&db.url(), std::path::Path::new("."), AlertRules::default()).unwrap();
    store.migrate().await.unwrap();
    let t = Instant::now();
    let now = chrono::Utc::now();
    let upsert: Vec<DeviceRow> = config
        .inventory
        .devices
        .iter()
        .map(|d| DeviceRow::of(d))
        .collect();
    let mut records = vec![Record {
        boot: "populate".into(),
        stamp: None,
        seq: 1,
        at: now,
        kind: RecordKind::Devices {
            upsert,
            removed: vec![],
        },
    }];
    for (i, d) in config.inventory.devices.iter().enumerate() {
        let down = i % 10 == 0;
        records.push(Record {
            boot: "populate".into(),
            stamp: None,
            seq: records.len() as u64 + 1,
            at: now,
            kind: RecordKind::Transition {
                device: d.name.to_string(),
                address: d.address.to_string(),
                from: "unknown".into(),
                to: if down { "down" } else { "up" }.into(),
                down_since: down.then_some(now - chrono::Duration::minutes(5)),
                version: 1,
                in_maintenance: false,
                alert_held: false,
            },
        });
    }
    for chunk in records.chunks(5_000) {
        store.apply(chunk).await.unwrap();
    }
    println!(
        "populated {DEVICES} devices, {DEVICES} transitions, {} alerts in {:.2?}",
        DEVICES / 10,
        t.elapsed()
    );
}

async fn startup_with_100k(db: &pgdb::TestDb, config: &Config, dir: &std::path::Path) {
    let t = Instant::now();
    let started = startup::start(options(db.url(), dir), Arc::new(SystemClock))
        .await
        .unwrap();
    let loaded = t.elapsed();
    let state = State::with_sink(Arc::new(SystemClock), started.sink);
    let restore = started.restore;
    let snapshot = state.replace_inventory(config.inventory.clone(), |d| {
        restore
            .get(&*d.name)
            .map(|s| Machine::restored(s.status, s.down_since))
    });
    let total = t.elapsed();
    let down = snapshot
        .status
        .iter()
        .filter(|s| s.down_since.is_some())
        .count();
    assert_eq!(down, DEVICES / 10, "every stored outage restored");
    println!(
        "start-up with {DEVICES} devices in the store: loaded in {loaded:.2?}, state restored and ready in {total:.2?} ({down} down)"
    );
    drop(state);
    started.writer.finish(Duration::from_secs(30)).await;
}

async fn burst(db: &pgdb::TestDb, config: &Config, dir: &std::path::Path) {
    let data = dir.join("burst");
    let started = startup::start(options(db.url(), &data), Arc::new(SystemClock))
        .await
        .unwrap();
    let health = started.health.clone();
    let state = State::with_sink(Arc::new(SystemClock), started.sink);
    let snapshot = state.replace_inventory(config.inventory.clone(), |_| {
        Some(Machine::restored(wardops::state::Status::Up, None))
    });
    // Let the inventory itself (100,000 devices, one record) be written first: it is not
    // part of the burst. (Waiting for no pending writes raced the spool thread, and the
    // figure then included the inventory's write.)
    while health.applied.get() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fail = ProbeOutcome {
        sent: 1,
        received: 0,
        rtt: None,
    };
    let (recorded, slowest, persisted) = wave(&state, &snapshot, &health, &fail).await;
    let alerts = db.query(
        "SELECT count(*) FROM alerts WHERE resolved_at IS NULL AND condition = 'device_down'",
    );
    assert_eq!(alerts.trim(), BURST.to_string());
    println!(
        "burst of {BURST} transitions: recorded in {recorded:.2?} (slowest record_probe {slowest:.2?}), \
         persisted with their alerts in {persisted:.2?}"
    );
    // The region comes back: as many recoveries, each resolving its device's alert.
    let ok = ProbeOutcome {
        sent: 1,
        received: 1,
        rtt: Some(Duration::from_micros(300)),
    };
    let (recorded, slowest, persisted) = wave(&state, &snapshot, &health, &ok).await;
    let resolved = db.query("SELECT count(*) FROM alerts WHERE resolution = 'recovered'");
    assert_eq!(resolved.trim(), BURST.to_string());
    println!(
        "recovery of the same {BURST}: recorded in {recorded:.2?} (slowest record_probe {slowest:.2?}), \
         persisted with their alerts resolved in {persisted:.2?}"
    );
    drop(state);
    started.writer.finish(Duration::from_secs(30)).await;
}

/// Feeds `outcome` to the first [`BURST`] devices until each has changed status once;
/// returns how long recording took, the slowest `record_probe`, and how long until the
/// writer had committed them all.
async fn wave(
    state: &State,
    snapshot: &wardops::state::Snapshot,
    health: &wardops::store::StoreHealth,
    outcome: &ProbeOutcome,
) -> (Duration, Duration, Duration) {
    let applied_before = health.applied.get();
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut transitions = 0;
    for i in 0..BURST {
        let (device, runtime) = (&snapshot.inventory.devices[i], &snapshot.runtime[i]);
        let probes = if outcome.is_success() {
            device.probe.up_after
        } else {
            device.probe.down_after
        };
        for _ in 0..probes {
            let call = Instant::now();
            transitions += usize::from(
                state
                    .record_probe(device, runtime, outcome, chrono::Utc::now())
                    .is_some(),
            );
            slowest = slowest.max(call.elapsed());
        }
    }
    let recorded = t.elapsed();
    assert_eq!(transitions, BURST);
    while health.applied.get() < applied_before + BURST as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (recorded, slowest, t.elapsed())
}
