//! The availability report at fleet size: a month for 100,000 devices with 1,000,000
//! transitions (five outages each), two runs of the appliance with a gap between them,
//! silences of whole regions, on PostgreSQL (a database of its own on 127.0.0.1:5432,
//! dropped at the end) and on SQLite (a temporary file). Each report is the real path a
//! request takes (`Reports::run`: the store read in one transaction, the figures on the
//! blocking pool, sorted and paged), grouped by region and by device (the first page of
//! 1,000), timed `ROUNDS` times each; p50 and p99.
//!
//! Targets (issue #16): PostgreSQL p99 ≤ 2 s, SQLite p99 ≤ 5 s.
//! Run: `cargo bench --bench reports` (not in CI; nothing else running).

#[path = "../tests/pgdb/mod.rs"]
mod pgdb;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use wardops::access::Scope;
use wardops::config::ProbeSettings;
use wardops::config::load::{Source, build_inventory};
use wardops::config::settings::{ReportSettings, SlaRule};
use wardops::maintenance::{Matchers, Silence};
use wardops::report::query;
use wardops::report::run::{Inputs, Reports};
use wardops::store::{AlertRules, Db, DeviceRow, Record, RecordKind, Store, StoreHealth};

/// `WARDOPS_BENCH_DEVICES` (a multiple of 1,000) for a quick look at a smaller fleet.
fn fleet() -> usize {
    std::env::var("WARDOPS_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}
/// Transitions per device: five outages, down and back.
const PER_DEVICE: usize = 10;
const ROUNDS: usize = 10;

fn month() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        "2026-11-01T00:00:00Z".parse().unwrap(),
        "2026-12-01T00:00:00Z".parse().unwrap(),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let t = Instant::now();
        let source = Source {
            path: PathBuf::from("inventory/bench.yaml"),
            text: support::inventory(fleet()),
        };
        let inventory = Arc::new(build_inventory(&[source], &ProbeSettings::default()).unwrap());
        println!(
            "inventory of {} devices built in {:.2?}",
            fleet(),
            t.elapsed()
        );

        let pg = pgdb::TestDb::create("bench_reports");
        let store = Arc::new(Db::open(&pg.url(), Path::new("."), AlertRules::default()).unwrap());
        populate(&store, &inventory).await;
        measure("postgres", &store, &inventory).await;

        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(Db::open("sqlite://bench.db", dir.path(), AlertRules::default()).unwrap());
        populate(&store, &inventory).await;
        measure("sqlite", &store, &inventory).await;
    });
}

/// The devices through the writer's own path (devices and their spans of presence),
/// the transitions by one INSERT … SELECT each (a million records through `apply` would
/// time the writer, not the report), the runs and silences as records.
async fn populate(store: &Db, inventory: &wardops::config::Inventory) {
    let t = Instant::now();
    store.migrate().await.unwrap();
    let (from, to) = month();
    let before = from - TimeDelta::days(1);
    let upsert: Vec<DeviceRow> = inventory.devices.iter().map(|d| DeviceRow::of(d)).collect();
    let mut seq = 0;
    let mut record = |boot: &str, at: DateTime<Utc>, kind: RecordKind| {
        seq += 1;
        Record {
            boot: boot.into(),
            stamp: None,
            seq,
            at,
            kind,
        }
    };
    let devices = record(
        "b1",
        before,
        RecordKind::Devices {
            upsert,
            removed: vec![],
        },
    );
    store.apply(&[devices]).await.unwrap();
    // Two runs: to the 10th, then an hour's gap, then past the month's end.
    let gap = from + TimeDelta::days(10);
    let marks = [
        record(
            "b1",
            before,
            RecordKind::Run {
                started_at: before,
                stopped: false,
            },
        ),
        record(
            "b1",
            gap,
            RecordKind::Run {
                started_at: before,
                stopped: true,
            },
        ),
        record(
            "b2",
            gap + TimeDelta::hours(1),
            RecordKind::Run {
                started_at: gap + TimeDelta::hours(1),
                stopped: false,
            },
        ),
        record(
            "b2",
            to + TimeDelta::days(1),
            RecordKind::Run {
                started_at: gap + TimeDelta::hours(1),
                stopped: false,
            },
        ),
    ];
    store.apply(&marks).await.unwrap();
    // A night of works in each region.
    let silences: Vec<Record> = (0..10)
        .map(|r| {
            let starts_at = from + TimeDelta::days(3 * r + 1);
            let s = Silence {
                id: format!("works-{r}"),
                matchers: Matchers {
                    region: Some(format!("region-{r}")),
                    ..Matchers::default()
                },
                starts_at,
                ends_at: starts_at + TimeDelta::hours(4),
                comment: "works".into(),
                created_by: "bench".into(),
                created_at: starts_at,
                expired_at: None,
                expired_by: None,
            };
            record("b1", starts_at, RecordKind::Silence(s))
        })
        .collect();
    store.apply(&silences).await.unwrap();
    // Each device: five outages, the k-th on day 6k (+ a per-device second of the day),
    // lasting one to sixty-one minutes; inserted in time order, as the writer does (ids
    // and the table's pages follow time, devices interleave).
    let (pg, lite) = (
        "INSERT INTO transitions (device, from_status, to_status, at, down_since, boot_id, state_version)
         SELECT d.name,
                CASE WHEN k % 2 = 0 THEN 'up' ELSE 'down' END,
                CASE WHEN k % 2 = 0 THEN 'down' ELSE 'up' END,
                $1 + (k / 2) * interval '6 days' + (hashtext(d.name) & 65535) * interval '1 second'
                   + (k % 2) * (60 + (hashtext(d.name) & 4095) % 3600) * interval '1 second',
                CASE WHEN k % 2 = 0 THEN $1 + (k / 2) * interval '6 days' + (hashtext(d.name) & 65535) * interval '1 second' END,
                'bench', k
         FROM devices d CROSS JOIN generate_series(0, 9) AS k ORDER BY 4",
        "WITH RECURSIVE ks(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM ks WHERE k < 9)
         INSERT INTO transitions (device, from_status, to_status, at, down_since, boot_id, state_version)
         SELECT d.name,
                CASE WHEN k % 2 = 0 THEN 'up' ELSE 'down' END,
                CASE WHEN k % 2 = 0 THEN 'down' ELSE 'up' END,
                ?1 + (k / 2) * 518400000000 + ((d.rowid * 7919) % 65536) * 1000000
                   + (k % 2) * (60 + ((d.rowid * 104729) % 4096) % 3600) * 1000000,
                CASE WHEN k % 2 = 0 THEN ?1 + (k / 2) * 518400000000 + ((d.rowid * 7919) % 65536) * 1000000 END,
                'bench', k
         FROM devices d CROSS JOIN ks ORDER BY 4",
    );
    match store {
        Db::Postgres(s) => {
            sqlx::query(pg).bind(from).execute(s.pool()).await.unwrap();
            // A month-old table has been vacuumed: without it, autovacuum and the first
            // reads' hint bits run during the measured rounds.
            sqlx::query("VACUUM (FREEZE, ANALYZE)")
                .execute(s.pool())
                .await
                .unwrap();
        }
        Db::Sqlite(s) => {
            sqlx::query(lite)
                .bind(from.timestamp_micros())
                .execute(s.pool())
                .await
                .unwrap();
            sqlx::query("ANALYZE").execute(s.pool()).await.unwrap();
        }
    }
    println!(
        "{}: {} devices, {} transitions, 2 runs, 10 silences written in {:.2?}",
        store.backend(),
        fleet(),
        fleet() * PER_DEVICE,
        t.elapsed()
    );
}

async fn measure(backend: &str, store: &Arc<Db>, inventory: &Arc<wardops::config::Inventory>) {
    let (from, to) = month();
    let now = to + TimeDelta::days(2);
    let reports = Reports::new(ReportSettings {
        sla: vec![SlaRule {
            kind: Some("k0".into()),
            labels: vec![],
            target: 99.9,
        }],
    });
    let health = StoreHealth::new("bench");
    // Where the time goes: the store read alone.
    let mut reads = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let data = store.report_data(from, to).await.unwrap();
        reads.push(t.elapsed().as_secs_f64());
        assert_eq!(data.presence.len(), fleet());
    }
    reads.sort_by(f64::total_cmp);
    println!(
        "{backend}: the store read alone (report_data, a month): p50 {:.3} s over 3 rounds",
        support::percentile(&reads, 0.5)
    );
    let scope = Scope::all();
    for (name, q) in [
        ("by region", "group_by=region"),
        (
            "by device, first page of 1,000",
            "group_by=device&limit=1000",
        ),
    ] {
        let text = format!(
            "from={}&to={}&{q}",
            from.to_rfc3339().replace('+', "%2B"),
            to.to_rfc3339().replace('+', "%2B")
        );
        let query = query::parse(Some(&text), now, chrono_tz::UTC).unwrap();
        let mut times = Vec::new();
        let mut rows = 0;
        let mut covered = 0;
        for _ in 0..ROUNDS {
            let inputs = Inputs {
                inventory: inventory.clone(),
                now,
                zone: chrono_tz::UTC,
                scope: &scope,
                health: &health,
            };
            let t = Instant::now();
            let report = reports.run(store, query.clone(), inputs).await.unwrap();
            times.push(t.elapsed().as_secs_f64());
            rows = report.rows.len();
            covered = report.devices;
            // Those wholly in a silence or the runs' gap do not count.
            assert!(report.totals.outages > (fleet() * PER_DEVICE / 2 * 9 / 10) as u64);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{backend}: a month {name}: {rows} rows over {covered} devices; p50 {:.3} s, p99 {:.3} s ({ROUNDS} rounds)",
            support::percentile(&times, 0.5),
            support::percentile(&times, 0.99),
        );
    }
}
