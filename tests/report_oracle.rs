//! The availability report against an oracle: random histories (outages, unreachable
//! spans, maintenance windows and silences, appliance restarts and crashes, devices
//! added, removed and added back mid-period) written through the real store, read back
//! with `Store::report_data` and computed by `wardops::report`, compared with a
//! brute-force count of every second — equal to the microsecond, on both backends.
//!
//! The oracle states the rules again in the plainest way (for each second: present?
//! running? covered? which status?), independently of the sweep in `report::compute`.

mod pgdb;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wardops::config::ProbeSettings;
use wardops::config::load::{Source, build_inventory};
use wardops::maintenance::{Matchers, Silence};
use wardops::report::group::{self, GroupBy};
use wardops::report::input::{self, CurrentRun};
use wardops::state::Status;
use wardops::store::{AlertRules, Db, DeviceRow, Record, RecordKind, Store};

const T0: i64 = 1_800_000_000;
/// The histories' length in seconds.
const H: i64 = 30_000;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0 + secs, 0).unwrap()
}

fn rules() -> AlertRules {
    AlertRules {
        flapping_transitions: 3,
        flapping_window: Duration::from_secs(300),
    }
}

/// xorshift64*: the same history from the same seed, without a dependency's API.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below(hi - lo)
    }
    fn chance(&mut self, percent: i64) -> bool {
        self.below(100) < percent
    }
}

/// (name, region, branch, kind)
const DEVICES: [(&str, &str, &str, &str); 6] = [
    ("თბილისი-router-1", "თბილისი", "ვაკე", "router"),
    ("vake-atm-1", "თბილისი", "ვაკე", "atm"),
    ("vake-atm-2", "თბილისი", "ვაკე", "atm"),
    ("bat-router-1", "batumi", "center", "router"),
    ("bat-atm-1", "batumi", "center", "atm"),
    ("bat-cam-1", "batumi", "center", "camera"),
];

fn row(i: usize) -> DeviceRow {
    let (name, region, branch, kind) = DEVICES[i];
    DeviceRow {
        name: name.into(),
        address: format!("127.150.0.{}", i + 1),
        region: region.into(),
        branch: branch.into(),
        kind: kind.into(),
    }
}

/// A history as generated: what the oracle counts from.
#[derive(Default)]
struct World {
    /// [start, end) of each run; the last one is going on (end = now).
    runs: Vec<(i64, i64)>,
    /// Per device: [added, removed) spans (removed: i64::MAX while present).
    presence: Vec<Vec<(i64, i64)>>,
    /// Per device: (at, status).
    transitions: Vec<Vec<(i64, Status)>>,
    /// [start, end) of each silence, with its matchers.
    silences: Vec<(Matchers, i64, i64)>,
    /// Per device in the final inventory: one-off windows [start, end).
    windows: Vec<Vec<(i64, i64)>>,
    now: i64,
    records: Vec<Record>,
}

fn matches(m: &Matchers, i: usize) -> bool {
    let (name, region, branch, kind) = DEVICES[i];
    let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    ok(&m.device, name) && ok(&m.region, region) && ok(&m.branch, branch) && ok(&m.kind, kind)
}

/// Writes a random history; returns it with the records that store it.
fn generate(seed: u64) -> World {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let n = DEVICES.len();
    let mut w = World {
        presence: vec![Vec::new(); n],
        transitions: vec![Vec::new(); n],
        windows: vec![Vec::new(); n],
        ..World::default()
    };
    // Runs: some crash (their last heartbeat is their end), some stop cleanly, gaps
    // between them of nothing to minutes; the last goes on past its last heartbeat.
    let mut start = rng.range(0, 300);
    loop {
        let len = rng.range(500, 7_000);
        let end = (start + len).min(H);
        w.runs.push((start, end));
        let gap = if rng.chance(30) {
            0
        } else {
            rng.range(1, 1_500)
        };
        start = end + gap;
        if end >= H || start >= H - 200 {
            break;
        }
    }
    w.now = w.runs.last().unwrap().1;
    let runs = w.runs.clone();
    let mut status = vec![Status::Unknown; n];
    let mut present = vec![false; n];
    // Each device's last stored transition time.
    let mut last_at = vec![i64::MIN; n];
    for (k, &(rs, re)) in runs.iter().enumerate() {
        let boot = format!("boot{k}");
        let mut seq = 0;
        let mut rec = |at: i64, kind: RecordKind, records: &mut Vec<Record>| {
            seq += 1;
            records.push(Record {
                boot: boot.clone(),
                stamp: None,
                seq,
                at: t(at),
                kind,
            });
        };
        let run = |stopped| RecordKind::Run {
            started_at: t(rs),
            stopped,
        };
        rec(rs, run(false), &mut w.records);
        if k == 0 {
            // The first inventory: most devices.
            let upsert: Vec<DeviceRow> = (0..n).filter(|&i| i != 5).map(row).collect();
            for (i, (here, spans)) in present.iter_mut().zip(&mut w.presence).enumerate() {
                if i != 5 {
                    *here = true;
                    spans.push((rs, i64::MAX));
                }
            }
            rec(
                rs,
                RecordKind::Devices {
                    upsert,
                    removed: vec![],
                },
                &mut w.records,
            );
        }
        // Events inside the run, in time order.
        let mut at = rs;
        loop {
            at += rng.range(1, 400);
            if at >= re {
                break;
            }
            let i = rng.below(n as i64) as usize;
            if rng.chance(8) {
                // The inventory changes: added (back) or removed.
                if present[i] {
                    present[i] = false;
                    status[i] = Status::Unknown;
                    w.presence[i].last_mut().unwrap().1 = at;
                    let removed = vec![DEVICES[i].0.to_string()];
                    rec(
                        at,
                        RecordKind::Devices {
                            upsert: vec![],
                            removed,
                        },
                        &mut w.records,
                    );
                } else {
                    present[i] = true;
                    w.presence[i].push((at, i64::MAX));
                    let upsert = vec![row(i)];
                    rec(
                        at,
                        RecordKind::Devices {
                            upsert,
                            removed: vec![],
                        },
                        &mut w.records,
                    );
                }
                continue;
            }
            if !present[i] {
                continue;
            }
            let to = match rng.below(10) {
                0..=3 => Status::Up,
                4..=6 => Status::Down,
                7..=8 => Status::Unreachable,
                _ => Status::Unknown,
            };
            if to == status[i] {
                continue;
            }
            let outage = |s: Status| matches!(s, Status::Down | Status::Unreachable);
            let since = at - rng.range(0, 30);
            let down_since = outage(to).then(|| t(since));
            // An outage counts from its first failed probe, not from its decision; never
            // from before the status it follows or the device's (re)entry.
            let counts_from = if outage(to) && !outage(status[i]) {
                let stay = w.presence[i].last().unwrap().0;
                since.max(stay).max(last_at[i])
            } else {
                at
            };
            last_at[i] = at;
            let kind = RecordKind::Transition {
                device: DEVICES[i].0.into(),
                address: row(i).address,
                from: status[i].as_str().into(),
                to: to.as_str().into(),
                down_since,
                version: seq_version(at),
                in_maintenance: false,
                alert_held: false,
            };
            status[i] = to;
            w.transitions[i].push((counts_from, to));
            rec(at, kind, &mut w.records);
        }
        let last = k + 1 == runs.len();
        if last {
            // Going on: its last stored heartbeat lags behind now.
            let beat = (re - rng.range(0, 30)).max(rs);
            rec(beat, run(false), &mut w.records);
        } else {
            // A clean stop, or a crash after its last heartbeat (the run is then known
            // up to the heartbeat only: that is where the oracle ends it too).
            let clean = rng.chance(50);
            rec(re, run(clean), &mut w.records);
        }
    }
    // Silences by device, branch, kind or region, some ended early.
    for k in 0..4 {
        let i = rng.below(n as i64) as usize;
        let (name, region, branch, kind) = DEVICES[i];
        let mut m = Matchers::default();
        match rng.below(4) {
            0 => m.device = Some(name.into()),
            1 => m.branch = Some(branch.into()),
            2 => m.kind = Some(kind.into()),
            _ => m.region = Some(region.into()),
        }
        let starts = rng.range(0, H - 100);
        let ends = starts + rng.range(60, 4_000);
        let expired = rng.chance(40).then(|| rng.range(starts - 50, ends));
        let id = format!("s{k}");
        let silence = Silence {
            id: id.clone(),
            matchers: m.clone(),
            starts_at: t(starts),
            ends_at: t(ends),
            comment: "works".into(),
            created_by: "nino".into(),
            created_at: t(starts),
            expired_at: None,
            expired_by: None,
        };
        let boot = "silences".to_string();
        w.records.push(Record {
            boot: boot.clone(),
            stamp: None,
            seq: 2 * k + 1,
            at: t(starts),
            kind: RecordKind::Silence(silence),
        });
        let mut end = ends;
        if let Some(x) = expired {
            w.records.push(Record {
                boot,
                stamp: None,
                seq: 2 * k + 2,
                at: t(x),
                kind: RecordKind::SilenceExpired {
                    id,
                    by: "nino".into(),
                },
            });
            // Expiring one not yet started ends it before it began: it covers nothing.
            end = end.min(x);
        }
        w.silences.push((m, starts, end));
    }
    // One-off windows (whole minutes, UTC) on the branch ვაკე and on bat-atm-1.
    for (devices, count) in [(&[0usize, 1, 2][..], 2), (&[4usize][..], 1)] {
        for _ in 0..count {
            let start = rng.range(0, H / 60 - 60) * 60;
            let end = start + rng.range(1, 90) * 60;
            for &i in devices {
                w.windows[i].push((start, end));
            }
        }
    }
    w
}

fn seq_version(at: i64) -> u64 {
    at as u64
}

/// The inventory as it is at the end: the devices present then, with the windows.
fn inventory(w: &World) -> wardops::config::Inventory {
    let minute = |s: i64| t(s).format("%Y-%m-%dT%H:%M").to_string();
    let windows = |list: &[(i64, i64)]| -> String {
        if list.is_empty() {
            return String::new();
        }
        let items: Vec<String> = list
            .iter()
            .map(|&(s, e)| format!("{{ start: \"{}\", end: \"{}\" }}", minute(s), minute(e)))
            .collect();
        format!("maintenance: [{}]", items.join(", "))
    };
    let present = |i: usize| w.presence[i].last().is_some_and(|p| p.1 == i64::MAX);
    let mut text = String::from("regions:\n");
    for (region, branch, ids, branch_windows) in [
        ("თბილისი", "ვაკე", [0usize, 1, 2], windows(&w.windows[1])),
        ("batumi", "center", [3, 4, 5], String::new()),
    ] {
        text += &format!("  - name: \"{region}\"\n    branches:\n      - name: \"{branch}\"\n");
        if !branch_windows.is_empty() {
            text += &format!("        {branch_windows}\n");
        }
        text += "        devices:\n";
        let live: Vec<usize> = ids.iter().copied().filter(|&i| present(i)).collect();
        if live.is_empty() {
            text += "          []\n";
        }
        for i in live {
            let own = if region == "batumi" {
                windows(&w.windows[i])
            } else {
                String::new()
            };
            let sep = if own.is_empty() { "" } else { ", " };
            text += &format!(
                "          - {{ name: \"{}\", address: {}, kind: {}{sep}{own} }}\n",
                DEVICES[i].0,
                row(i).address,
                DEVICES[i].3
            );
        }
    }
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text,
    };
    build_inventory(&[source], &ProbeSettings::default())
        .unwrap_or_else(|e| panic!("the test's inventory: {e}"))
}

/// What the oracle counts for one device, in seconds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counted {
    up: i64,
    down: i64,
    unreachable: i64,
    maintenance: i64,
    unmonitored: i64,
    /// (ended at, counted seconds) of each outage that counts.
    outages: Vec<(Option<i64>, i64)>,
}

fn oracle(w: &World, i: usize, from: i64, to: i64, in_inventory: bool) -> Counted {
    let inside = |spans: &[(i64, i64)], s: i64| spans.iter().any(|&(a, b)| a <= s && s < b);
    let mut c = Counted::default();
    let mut open: Option<i64> = None; // counted seconds of the outage going on
    let to = to.min(w.now);
    for s in from..to {
        let span = w.presence[i].iter().find(|&&(a, b)| a <= s && s < b);
        let status = span
            .and_then(|&(a, _)| {
                w.transitions[i]
                    .iter()
                    .rev()
                    .find(|&&(at, _)| at <= s)
                    .filter(|&&(at, _)| at >= a)
            })
            .map_or(Status::Unknown, |&(_, st)| st);
        let out = span.is_some() && matches!(status, Status::Down | Status::Unreachable);
        if !out
            && let Some(n) = open.take()
            && n > 0
        {
            c.outages.push((Some(s), n));
        }
        if out && open.is_none() {
            open = Some(0);
        }
        let running = w.runs.iter().any(|&(a, b)| a <= s && s < b);
        let covered = (in_inventory && inside(&w.windows[i], s))
            || w.silences
                .iter()
                .any(|(m, a, b)| matches(m, i) && *a <= s && s < *b);
        if span.is_none() || !running {
            c.unmonitored += 1;
        } else if covered {
            c.maintenance += 1;
        } else {
            match status {
                Status::Up => c.up += 1,
                Status::Down => c.down += 1,
                Status::Unreachable => c.unreachable += 1,
                Status::Unknown => c.unmonitored += 1,
            }
            if out {
                *open.as_mut().unwrap() += 1;
            }
        }
    }
    if let Some(n) = open
        && n > 0
    {
        c.outages.push((None, n));
    }
    c
}

async fn report_equals_the_oracle(store: &Db) {
    // What the histories held, over all seeds: each kind of time, so that the
    // comparison is not vacuous.
    let mut seen = Counted::default();
    let (mut outages, mut readded, mut crashes) = (0, 0, 0);
    for seed in 1..=6u64 {
        let w = generate(seed);
        readded += w.presence.iter().filter(|p| p.len() > 1).count();
        crashes += w.runs.windows(2).filter(|r| r[0].1 < r[1].0).count();
        for chunk in w.records.chunks(97) {
            store.apply(chunk).await.unwrap();
        }
        let inv = inventory(&w);
        let now = t(w.now);
        let current = CurrentRun {
            boot: &format!("boot{}", w.runs.len() - 1),
            started_at: t(w.runs.last().unwrap().0),
        };
        // A period inside the history, one reaching past now, one before anything.
        for (from, to) in [(1_000, 20_000), (5_000, H + 5_000), (-500, 800)] {
            let (f, until) = (t(from), t(to).min(now));
            let data = store.report_data(f, until).await.unwrap();
            let prepared =
                input::prepare(&data, f, until, now, Some(current), &inv, chrono_tz::UTC);
            let rows = group::rows(&prepared, f, until, &GroupBy::Device, &[]);
            for (i, d) in DEVICES.iter().enumerate() {
                let in_inventory = inv.device(d.0).is_some();
                let want = oracle(&w, i, from, to, in_inventory);
                let got = rows.iter().find(|r| r.key == d.0);
                let Some(got) = got else {
                    // Not in the inventory at any time of the period: nothing to report.
                    assert_eq!(
                        (want.up, want.down, want.unreachable, want.maintenance),
                        (0, 0, 0, 0),
                        "seed {seed} [{from},{to}) {}: missing",
                        d.0
                    );
                    continue;
                };
                let us = 1_000_000;
                let tt = &got.totals;
                let have = Counted {
                    up: tt.up / us,
                    down: tt.down / us,
                    unreachable: tt.unreachable / us,
                    maintenance: tt.maintenance / us,
                    unmonitored: tt.unmonitored / us,
                    outages: got
                        .outages
                        .iter()
                        .map(|o| (o.ended_at.map(|e| e.timestamp() - T0), o.counted / us))
                        .collect(),
                };
                // Exact: every figure a whole number of seconds, then equal.
                for v in [
                    tt.up,
                    tt.down,
                    tt.unreachable,
                    tt.maintenance,
                    tt.unmonitored,
                ] {
                    assert_eq!(v % us, 0, "seed {seed}: {v}");
                }
                // The oracle's outage that is still open at `to` (before now) ends
                // there; the report says None (going on): same thing.
                let mut want = want;
                let end = to.min(w.now);
                for o in &mut want.outages {
                    if o.0 == Some(end) {
                        o.0 = None;
                    }
                }
                assert_eq!(have, want, "seed {seed} [{from},{to}) {}", d.0);
                seen.up += want.up;
                seen.down += want.down;
                seen.unreachable += want.unreachable;
                seen.maintenance += want.maintenance;
                seen.unmonitored += want.unmonitored;
                outages += want.outages.len();
                assert_eq!(tt.outages as usize, want.outages.len());
                let longest = want.outages.iter().map(|o| o.1).max().unwrap_or(0);
                assert_eq!(tt.longest_outage / us, longest);
                let span = (until - f).num_seconds().max(0);
                let sum =
                    want.up + want.down + want.unreachable + want.maintenance + want.unmonitored;
                assert_eq!(sum, span, "every second is counted once");
            }
            // A branch row is the sum of its devices' rows.
            let branches = group::rows(&prepared, f, until, &GroupBy::Branch, &[]);
            for b in &branches {
                let mut sum = wardops::report::Totals::default();
                for r in rows
                    .iter()
                    .filter(|r| r.branch == b.branch && r.region == b.region)
                {
                    sum.add(&r.totals);
                }
                assert_eq!(b.totals, sum, "branch {}", b.key);
            }
        }
        // The next seed on a clean slate: another world, same names.
        wipe(store).await;
    }
    let c = &seen;
    for (what, v) in [
        ("up", c.up),
        ("down", c.down),
        ("unreachable", c.unreachable),
        ("maintenance", c.maintenance),
        ("unmonitored", c.unmonitored),
    ] {
        assert!(v > 1_000, "the histories hold {what} time: {v}");
    }
    assert!(outages > 50, "{outages} outages");
    assert!(readded > 0, "a device added back");
    assert!(crashes > 0, "the appliance away between runs");
}

async fn wipe(store: &Db) {
    const WIPE: [&str; 9] = [
        "DELETE FROM notify_outbox",
        "DELETE FROM alerts",
        "DELETE FROM transitions",
        "DELETE FROM device_state",
        "DELETE FROM device_presence",
        "DELETE FROM devices",
        "DELETE FROM runs",
        "DELETE FROM silences",
        "DELETE FROM writer_progress",
    ];
    for sql in WIPE {
        match store {
            Db::Postgres(s) => {
                sqlx::query(sql).execute(s.pool()).await.unwrap();
            }
            Db::Sqlite(s) => {
                sqlx::query(sql).execute(s.pool()).await.unwrap();
            }
        }
    }
}

/// A run's heartbeats never move its last one back, and a clean stop is kept.
async fn runs_keep_their_latest_heartbeat(store: &Db) {
    let mark = |seq, at, stopped| Record {
        boot: "b1".into(),
        stamp: None,
        seq,
        at: t(at),
        kind: RecordKind::Run {
            started_at: t(10),
            stopped,
        },
    };
    store
        .apply(&[mark(1, 10, false), mark(2, 40, false)])
        .await
        .unwrap();
    // A record applied out of its place (another boot's replay) cannot shorten it.
    let late = Record {
        boot: "b0".into(),
        stamp: None,
        seq: 1,
        at: t(20),
        kind: RecordKind::Run {
            started_at: t(10),
            stopped: false,
        },
    };
    let mut late_b1 = late.clone();
    late_b1.boot = "b1".into();
    late_b1.seq = 3;
    store.apply(&[late_b1, mark(4, 70, true)]).await.unwrap();
    let data = store.report_data(t(0), t(100)).await.unwrap();
    assert_eq!(data.runs.len(), 1);
    let run = &data.runs[0];
    assert_eq!(
        (run.started_at, run.last_seen_at, run.stopped),
        (t(10), t(70), true)
    );
    assert!(
        store
            .report_data(t(70), t(100))
            .await
            .unwrap()
            .runs
            .is_empty()
    );
}

/// A device removed and added back has two spans; changing it keeps its span.
async fn presence_has_a_span_per_stay(store: &Db) {
    let devices = |seq, at, upsert: Vec<DeviceRow>, removed: Vec<String>| Record {
        boot: "b1".into(),
        stamp: None,
        seq,
        at: t(at),
        kind: RecordKind::Devices { upsert, removed },
    };
    let mut moved = row(1);
    moved.address = "127.150.9.9".into();
    store
        .apply(&[
            devices(1, 0, vec![row(1)], vec![]),
            devices(2, 10, vec![moved.clone()], vec![]),
            devices(3, 20, vec![], vec![DEVICES[1].0.into()]),
            devices(4, 30, vec![moved], vec![]),
        ])
        .await
        .unwrap();
    let data = store.report_data(t(0), t(100)).await.unwrap();
    let spans: Vec<_> = data
        .presence
        .iter()
        .map(|p| (p.added_at, p.removed_at))
        .collect();
    assert_eq!(spans, [(t(0), Some(t(20))), (t(30), None)]);
    assert_eq!(data.presence[0].branch, "ვაკე", "names intact");
}

/// Names come back as stored whatever they hold (quotes, backslashes, a tab, Georgian),
/// with each device's last transition before the period first.
async fn transitions_keep_any_name(store: &Db) {
    let names = [r#"a"b\c"#, "o'hara\t\\n", "თბილისი-\"ვაკე\""];
    let upsert = names
        .iter()
        .enumerate()
        .map(|(i, name)| DeviceRow {
            name: name.to_string(),
            ..row(i)
        })
        .collect();
    let mut records = vec![Record {
        boot: "b1".into(),
        stamp: None,
        seq: 1,
        at: t(0),
        kind: RecordKind::Devices {
            upsert,
            removed: vec![],
        },
    }];
    // Each: down at 10 (before the period), up at 50, down at 60.
    for (i, name) in names.iter().enumerate() {
        for (k, (at, from, to)) in [
            (10, "unknown", "down"),
            (50, "down", "up"),
            (60, "up", "down"),
        ]
        .into_iter()
        .enumerate()
        {
            records.push(Record {
                boot: "b1".into(),
                stamp: None,
                seq: records.len() as u64 + 1,
                at: t(at + i as i64),
                kind: RecordKind::Transition {
                    device: name.to_string(),
                    address: row(i).address,
                    from: from.into(),
                    to: to.into(),
                    down_since: (to == "down").then(|| t(at + i as i64 - 1)),
                    version: (3 * i + k) as u64 + 1,
                    in_maintenance: false,
                    alert_held: false,
                },
            });
        }
    }
    store.apply(&records).await.unwrap();
    let data = store.report_data(t(40), t(100)).await.unwrap();
    assert_eq!(data.transitions.len(), names.len());
    for (i, name) in names.iter().enumerate() {
        let list = &data.transitions[*name];
        let read: Vec<_> = list.iter().map(|r| (r.at, r.to, r.down_since)).collect();
        let i = i as i64;
        assert_eq!(
            read,
            [
                (t(10 + i), Status::Down, Some(t(9 + i))),
                (t(50 + i), Status::Up, None),
                (t(60 + i), Status::Down, Some(t(59 + i))),
            ],
            "{name}"
        );
    }
}

on_both_backends!(
    rules: super::rules();
    report_equals_the_oracle,
    runs_keep_their_latest_heartbeat,
    presence_has_a_span_per_stay,
    transitions_keep_any_name,
);

/// PostgreSQL's report reads the period's transitions beside the rest on a second
/// connection when the pool has one to spare; without one it reads all on one, the same.
#[tokio::test]
async fn postgres_report_on_one_connection_equals_the_oracle() {
    let db = pgdb::TestDb::create("report_on_one_connection");
    let store = Db::open(&db.url(), std::path::Path::new("."), rules()).unwrap();
    store.migrate().await.unwrap();
    let Db::Postgres(s) = &store else {
        unreachable!("a PostgreSQL URL")
    };
    // The pool's four connections but one, held.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(s.pool().acquire().await.unwrap());
    }
    report_equals_the_oracle(&store).await;
    drop(held);
}
