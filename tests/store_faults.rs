//! The store on a bad day, through the real `wardops serve`: two dozen kill -9s at random
//! moments during bursts of transitions, with a PostgreSQL outage in the middle (a TCP
//! proxy of the test's own, cut) and the spool's disk filled once (a 256 KiB tmpfs).
//! Afterwards the database must match the oracle exactly:
//!
//! - each device's transitions form one unbroken chain (`unknown` once, then each row
//!   starting where the last one ended): nothing lost, nothing decided twice;
//! - the chain ends at the truth (the blackholes in place), and so do `device_state` and
//!   the API, with the same `down_since`;
//! - the alerts are exactly those the chain opens and resolves, and the API's open alert
//!   counts are the database's: no stale alert.
//!
//! Devices go down through nftables blackholes on addresses of this test's own
//! (127.77.51.0/24). The seed is printed; `WARDOPS_FAULT_SEED` replays one.

mod disk;
mod pgdb;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use disk::{Filler, Tmpfs};
use pgdb::proxy::Proxy;
use support::{Appliance, Blackhole, wait_for};

const DEVICES: usize = 10;
const KILLS: usize = 24;
/// Rounds (each ends with a kill -9) with the database away, and with the disk full.
const OUTAGE: std::ops::Range<usize> = 10..15;
const DISK_FULL: std::ops::Range<usize> = 3..6;

fn name(i: usize) -> String {
    format!("f1-dev-{i}")
}

fn address(i: usize) -> String {
    format!("127.77.51.{}", i + 1)
}

fn write_config(dir: &Path, data_dir: &Path) {
    // Flapping alerts off (the oracle is about outages), the spool on the small disk.
    let settings = format!(
        "probe:\n  interval: 1s\n  timeout: 300ms\n  packets: 1\n  down_after: 2\n  up_after: 1\n  retry_interval: 300ms\n\
         data_dir: {}\nalerts:\n  flapping_transitions: 1000\n  flapping_window: 1s\n",
        data_dir.display()
    );
    std::fs::write(dir.join("wardops.yaml"), settings).unwrap();
    let mut inventory =
        String::from("regions:\n  - name: f\n    branches:\n      - name: f1\n        devices:\n");
    for i in 0..DEVICES {
        inventory.push_str(&format!(
            "          - {{ name: {}, address: {}, kind: atm }}\n",
            name(i),
            address(i)
        ));
    }
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(dir.join("inventory/f.yaml"), inventory).unwrap();
}

/// xorshift64*: enough randomness for timing, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Status, `down_since` (ms) and open alerts of a device, as the API says.
type Seen = (String, Option<i64>, u64);

/// What the API says of every device.
fn api(app: &Appliance) -> Option<HashMap<String, Seen>> {
    let mut out = HashMap::new();
    for i in 0..DEVICES {
        let body = app.try_get(&format!("/api/v1/devices/{}", name(i)))?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let json = json.get("device").unwrap_or(&json);
        let since = json["down_since"].as_str().map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        });
        let open = json["open_alerts"].as_u64().unwrap_or(0);
        out.insert(
            name(i),
            (json["ping_status"].as_str()?.to_string(), since, open),
        );
    }
    Some(out)
}

fn metric(app: &Appliance, name: &str) -> u64 {
    app.try_get("/metrics")
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn ready(app: &Appliance) -> bool {
    let body = reqwest::blocking::get(app.url("/readyz"))
        .ok()
        .and_then(|r| r.text().ok())
        .unwrap_or_default();
    let pending = app.try_get("/metrics").and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("wardops_store_pending_writes "))
            .map(str::to_string)
    });
    body.contains(r#""status":"ready""#)
        && pending.as_deref() == Some("wardops_store_pending_writes 0")
}

#[derive(Debug, Clone, PartialEq)]
struct Alert {
    opened_at: String,
    resolved_at: String,
    resolution: String,
}

#[test]
fn kill_9_at_random_moments_through_an_outage_and_a_full_disk_loses_and_duplicates_nothing() {
    let began = Instant::now();
    let seed = std::env::var("WARDOPS_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>)
        | 1;
    eprintln!("WARDOPS_FAULT_SEED={seed}");
    let mut rng = Rng(seed);
    let db = pgdb::TestDb::create("faults");
    let proxy = Proxy::start();
    let disk = Tmpfs::mount("256k");
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), disk.path());
    let url = db.url_via(proxy.addr);
    let env = [("WARDOPS_DATABASE_URL", url.as_str())];

    let mut app = Some(Appliance::start_with(dir.path(), &env));
    wait_for(Duration::from_secs(20), "every device up", || {
        let api = api(app.as_ref().unwrap())?;
        api.values().all(|(s, _, _)| s == "up").then_some(())
    });
    let mut holes: Vec<Option<Blackhole>> = (0..DEVICES).map(|_| None).collect();
    let mut filler = None;
    // Failed spool appends seen while the disk was full (a burst may also fit in the
    // spool's last page, so none is not a failure; tests/store_spool.rs makes sure).
    let mut spool_errors = 0;
    for round in 0..KILLS {
        if round == OUTAGE.start {
            proxy.cut();
        }
        if round == OUTAGE.end {
            proxy.restore();
        }
        if round == DISK_FULL.start {
            filler = Some(Filler::fill(disk.path()));
        }
        if round == DISK_FULL.end {
            filler = None;
        }
        // A burst: a few devices change at once.
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(DEVICES as u64) as usize;
            holes[i] = match holes[i].take() {
                Some(_) => None,
                None => Some(Blackhole::new(&format!("f{i}"), &[&address(i)])),
            };
        }
        std::thread::sleep(Duration::from_millis(100 + rng.below(2_400)));
        if DISK_FULL.contains(&round) {
            spool_errors += metric(app.as_ref().unwrap(), "wardops_store_spool_errors_total");
        }
        app.take().unwrap().kill9();
        app = Some(Appliance::start_with(dir.path(), &env));
    }
    drop(filler);
    eprintln!("failed spool appends while the disk was full: {spool_errors}");
    let app = app.unwrap();
    let truth: HashMap<String, &str> = (0..DEVICES)
        .map(|i| (name(i), if holes[i].is_some() { "down" } else { "up" }))
        .collect();
    wait_for(Duration::from_secs(40), "the truth, committed", || {
        let api = api(&app)?;
        let settled = truth.iter().all(|(n, want)| api[n].0 == *want);
        (settled && ready(&app)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1_500));

    // The oracle: each device's chain, and what it implies.
    let mut chains: HashMap<String, Vec<(String, String, String, String)>> = HashMap::new();
    let rows = db.query(
        "SELECT device, from_status, to_status, floor(extract(epoch FROM at) * 1000000)::bigint, \
         coalesce(floor(extract(epoch FROM down_since) * 1000)::bigint::text, '') \
         FROM transitions ORDER BY id",
    );
    for row in rows.lines() {
        let f: Vec<&str> = row.split('|').collect();
        chains.entry(f[0].into()).or_default().push((
            f[1].into(),
            f[2].into(),
            f[3].into(),
            f[4].into(),
        ));
    }
    let state: HashMap<String, (String, String)> = db
        .query(
            "SELECT device, status, coalesce(floor(extract(epoch FROM down_since) * 1000)::bigint::text, '') FROM device_state",
        )
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[0].to_string(), (f[1].to_string(), f[2].to_string()))
        })
        .collect();
    let mut alerts: HashMap<String, Vec<Alert>> = HashMap::new();
    let rows = db.query(
        "SELECT device, condition, floor(extract(epoch FROM opened_at) * 1000000)::bigint, \
         coalesce(floor(extract(epoch FROM resolved_at) * 1000000)::bigint::text, ''), coalesce(resolution, '') \
         FROM alerts ORDER BY id",
    );
    for row in rows.lines() {
        let f: Vec<&str> = row.split('|').collect();
        assert_eq!(f[1], "device_down", "{row}");
        alerts.entry(f[0].into()).or_default().push(Alert {
            opened_at: f[2].into(),
            resolved_at: f[3].into(),
            resolution: f[4].into(),
        });
    }
    let api = api(&app).unwrap();
    for i in 0..DEVICES {
        let n = name(i);
        let chain = &chains[&n];
        let mut at = "unknown".to_string();
        let mut expected: Vec<Alert> = Vec::new();
        for (k, (from, to, when, _)) in chain.iter().enumerate() {
            assert_eq!(
                from, &at,
                "{n}: transition {k} does not start where the last ended: {chain:?}"
            );
            assert_ne!(from, to, "{n}: {chain:?}");
            assert_ne!(to, "unknown", "{n}: {chain:?}");
            match to.as_str() {
                "down" => expected.push(Alert {
                    opened_at: when.clone(),
                    resolved_at: String::new(),
                    resolution: String::new(),
                }),
                _ => {
                    if let Some(open) = expected.last_mut().filter(|a| a.resolved_at.is_empty()) {
                        open.resolved_at = when.clone();
                        open.resolution = "recovered".into();
                    }
                }
            }
            at = to.clone();
        }
        assert_eq!(at, truth[&n], "{n}: the chain ends at the truth");
        let last_since = chain.last().map(|c| c.3.clone()).unwrap_or_default();
        assert_eq!(
            state[&n],
            (at.clone(), last_since.clone()),
            "{n}: device_state"
        );
        let api_since = api[&n].1.map(|ms| ms.to_string()).unwrap_or_default();
        assert_eq!((&api[&n].0, &api_since), (&at, &last_since), "{n}: the API");
        assert_eq!(
            alerts.get(&n).cloned().unwrap_or_default(),
            expected,
            "{n}: alerts"
        );
        let open = expected.iter().filter(|a| a.resolved_at.is_empty()).count() as u64;
        assert_eq!(api[&n].2, open, "{n}: the API's open alerts");
    }
    drop(holes);
    assert!(
        began.elapsed() < Duration::from_secs(180),
        "took {:?}",
        began.elapsed()
    );
}
