//! Reload latency at scale: a 100,000-device inventory (100 files of 1,000 devices) is
//! running, probed by a fake pinger at a 10 s interval; 1,000 changes then land in one
//! commit-like write (40% relabelled, 20% re-addressed, 20% removed, 20% added), each
//! file saved editor-style, and we time from the first write until the state and
//! scheduler run the new inventory. Two layouts side by side: the changes in 10 of the
//! files, and spread over all 100 (every file re-parsed). Real files, real inotify, the
//! real reloader.
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

/// File `f` of round `round` with `changes` changes (0: as first written): 40% of them
/// relabelled, 20% re-addressed and 40% renamed (a removal and an addition each).
fn file_yaml(f: usize, round: usize, changes: usize) -> String {
    let (relabel, readdress, rename) = (changes * 4 / 10, changes * 6 / 10, changes * 8 / 10);
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
            if round > 0 {
                let k = n % PER_FILE;
                if k < relabel {
                    tag = format!("v{round}");
                } else if k < readdress {
                    // A range of its own per round, so addresses stay unique.
                    addr = format!("127.{}.{b3}.{c}", 200 + 2 * round + a);
                } else if k < rename {
                    // Removed, and added back under a new name.
                    name = format!("dev-{n}-r{round}");
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
    // Side by side in one run: the machine is shared, so only the ratio is stable.
    let spread = [10, FILES].map(|changed_files| runtime.block_on(bench(changed_files)));
    for (changed_files, (median, max)) in [10, FILES].iter().zip(spread) {
        println!(
            "1,000 changes in {changed_files} of {FILES} files: median {median:.0} ms, max {max:.0} ms (target < 1000 ms)"
        );
    }
}

/// Returns the median and the longest write-to-applied latency, in milliseconds.
async fn bench(changed_files: usize) -> (f64, f64) {
    println!("--- 1,000 changes in {changed_files} of {FILES} files");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inventory");
    std::fs::create_dir(&dir).unwrap();
    for f in 0..FILES {
        std::fs::write(dir.join(format!("f{f:03}.yaml")), file_yaml(f, 0, 0)).unwrap();
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
        let step = FILES / changed_files;
        let texts: Vec<(usize, String)> = (0..changed_files)
            .map(|i| (i * step, file_yaml(i * step, round, 1000 / changed_files)))
            .collect();
        applied.borrow_and_update();
        let written = Instant::now();
        for (f, text) in &texts {
            save(&dir.join(format!("f{f:03}.yaml")), text);
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
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    (
        ms(&latencies[latencies.len() / 2]),
        ms(latencies.last().unwrap()),
    )
}
