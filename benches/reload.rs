//! Reload latency at scale: a 100,000-device inventory (100 files of 1,000 devices) is
//! running, probed by a fake pinger at a 10 s interval; 1,000 devices then change in one
//! commit-like write (400 relabelled, 200 re-addressed, 200 removed, 200 added, across
//! 10 files, each saved editor-style) and we time from the first write until the state
//! and scheduler run the new inventory. Real files, real inotify, the real reloader.
//!
//! Run: `cargo bench --bench reload` (prints one line per round and a summary).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch as tokio_watch};
use wardops::config::settings::ReloadSettings;
use wardops::config::{Inventory, ProbeSettings, load};
use wardops::probe::{Pinger, ProbeOutcome, ProbeSpec};
use wardops::reload::{ReloadMetrics, Reloader, watch};
use wardops::schedule::{ProberMetrics, Scheduler};
use wardops::state::{State, SystemClock};

const FILES: usize = 100;
const PER_FILE: usize = 1_000;
const CHANGED_FILES: usize = 10;
const ROUNDS: usize = 5;

struct InstantPinger;

impl Pinger for InstantPinger {
    fn probe(&self, _: IpAddr, spec: ProbeSpec) -> impl Future<Output = ProbeOutcome> + Send {
        std::future::ready(ProbeOutcome {
            sent: spec.packets,
            received: spec.packets,
            rtt: Some(Duration::from_micros(50)),
        })
    }
}

/// File `f` of round `round`: in the changed files, 40 relabelled, 20 re-addressed,
/// 20 removed and 20 added devices per round, i.e. 100 changes per file.
fn file_yaml(f: usize, round: usize, changed: bool) -> String {
    let mut y = format!("regions:\n  - name: region-{f}\n    branches:\n");
    for b in 0..10 {
        y += &format!("      - name: branch-{f}-{b}\n        devices:\n");
        for i in 0..PER_FILE / 10 {
            let n = f * PER_FILE + b * 100 + i;
            let (a, b3, c) = (n / 62_500, (n / 250) % 250, 1 + n % 250);
            let (mut name, mut addr, mut tag) = (
                format!("dev-{n}"),
                format!("127.{}.{b3}.{c}", 1 + a),
                "v0".to_string(),
            );
            if changed && round > 0 {
                // 100 changes per file: 40 relabelled, 20 re-addressed, 20 renamed
                // (removed + added).
                match n % 1000 {
                    0..=39 => tag = format!("v{round}"),
                    // A range of its own per round, so addresses stay unique.
                    40..=59 => addr = format!("127.{}.{b3}.{c}", 200 + 2 * round + a),
                    // Removed, and added back under a new name.
                    60..=79 => name = format!("dev-{n}-r{round}"),
                    _ => {}
                }
            }
            y += &format!(
                "          - {{ name: {name}, address: {addr}, kind: atm, labels: {{ tag: {tag} }} }}\n"
            );
        }
    }
    y
}

fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inventory");
    std::fs::create_dir(&dir).unwrap();
    for f in 0..FILES {
        std::fs::write(dir.join(format!("f{f:03}.yaml")), file_yaml(f, 0, false)).unwrap();
    }
    let t = Instant::now();
    let initial = Arc::new(load::load_inventory(&dir, &ProbeSettings::default()).unwrap());
    println!(
        "initial load: {} in {:.0} ms",
        initial.summary(),
        t.elapsed().as_secs_f64() * 1e3
    );

    let state = State::new(Arc::new(SystemClock));
    let (tx, mut rx) = mpsc::channel::<Arc<Inventory>>(4);
    // The app's supervisor, which also says when each inventory is fully applied.
    let (applied_tx, mut applied) = tokio_watch::channel(Duration::ZERO);
    let mut scheduler = Scheduler::new(
        Arc::new(InstantPinger),
        state.clone(),
        Arc::new(ProberMetrics::default()),
    );
    tokio::spawn(async move {
        while let Some(inventory) = rx.recv().await {
            let t = Instant::now();
            let snapshot = scheduler.state().replace_inventory(inventory, |_| None);
            scheduler.sync(&snapshot);
            let _ = applied_tx.send(t.elapsed());
        }
    });
    tx.send(initial.clone()).await.unwrap();
    let reloader = Reloader::new(
        dir.clone(),
        ProbeSettings::default(),
        ReloadSettings::default(),
        initial,
        tx,
        Arc::new(ReloadMetrics::default()),
    );
    let _triggers = watch::spawn(reloader.clone());
    // The watcher warms its per-file cache with one more parse of everything.
    tokio::time::sleep(Duration::from_secs(8)).await;

    let mut latencies = Vec::new();
    for round in 1..=ROUNDS {
        let texts: Vec<String> = (0..CHANGED_FILES)
            .map(|f| file_yaml(f * 10, round, true))
            .collect();
        applied.borrow_and_update();
        let written = Instant::now();
        for (f, text) in texts.iter().enumerate() {
            save(&dir.join(format!("f{:03}.yaml", f * 10)), text);
        }
        tokio::time::timeout(Duration::from_secs(30), applied.changed())
            .await
            .expect("applied")
            .unwrap();
        let latency = written.elapsed();
        let status = reloader.status();
        let last = status.last_reload.clone().unwrap();
        println!(
            "round {round}: applied {:.0} ms after the write (read+validate+diff {:.0} ms, state+scheduler {:.0} ms); {:?}; {} devices",
            latency.as_secs_f64() * 1e3,
            last.duration_seconds * 1e3,
            applied.borrow().as_secs_f64() * 1e3,
            last.diff.unwrap(),
            state.snapshot().inventory.devices.len()
        );
        latencies.push(latency);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    latencies.sort();
    println!(
        "reload of {} devices with 1,000 changes: median {:.0} ms, max {:.0} ms (target < 1000 ms)",
        FILES * PER_FILE,
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}
