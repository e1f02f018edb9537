//! What `parents:` costs a reload: the demo inventory (every branch's devices name their
//! router, every router its region's core) beside the same inventory written without
//! parents, in one run. Each gets the reload `bench/dependencies.py` times — 1,000
//! changes in all ten region files (`bench/startup.py`'s edits: per file 40 relabelled,
//! 20 re-addressed, 20 removed, 20 added) — through the real reloader (read, parse,
//! merge, graph, diff), after its cache was warmed; then the state applies the result.
//!
//! Wall-clock figures on a shared machine wander by tens of percent; instruction counts
//! do not. A marker function runs between the steps, so callgrind can cut a dump at
//! each (`--dump-after` misses a function left by a tail call; a call to a marker is
//! never one):
//!
//! ```text
//! cargo bench --bench reload_cost --no-run     # prints the binary's path
//! valgrind --tool=callgrind --callgrind-out-file=cg.out --dump-before='reload_cost::mark' \
//!     target/release/deps/reload_cost-<hash> [DEVICES]
//! callgrind_annotate cg.out.2                  # the dumps are numbered as printed
//! ```
//!
//! Run natively (`cargo bench --bench reload_cost [-- DEVICES]`, default 100,000) it
//! prints each step's wall-clock time.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use wardops::config::settings::ReloadSettings;
use wardops::config::{Inventory, ProbeSettings, load};
use wardops::reload::{ReloadMetrics, Reloader, Trigger};
use wardops::state::{State, SystemClock};

fn main() {
    let devices: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(100_000, |a| a.parse().expect("DEVICES is a number"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Cut at each mark, a callgrind run dumps, per variant v (0 with, 1 without):
    // 1 + 3v the setup, 2 + 3v the reload, 3 + 3v the apply.
    for (v, parents) in [true, false].into_iter().enumerate() {
        let name = if parents { "with" } else { "without" };
        let tmp = tempfile::tempdir().unwrap();
        let write = if parents {
            wardops::demo::write
        } else {
            wardops::demo::write_flat
        };
        write(tmp.path(), devices, None).unwrap();
        let dir = tmp.path().join("inventory");
        let defaults = ProbeSettings::default();
        let initial = Arc::new(load::load_inventory(&dir, &defaults).unwrap());
        let state = State::new(Arc::new(SystemClock));
        state.replace_inventory(initial.clone(), |_| None);
        let (sink, mut applied) = mpsc::channel::<Arc<Inventory>>(4);
        let reloader = Reloader::new(
            dir.clone(),
            defaults,
            ReloadSettings::default(),
            initial,
            sink,
            Arc::new(ReloadMetrics::default()),
        );
        rt.block_on(reloader.warm());
        change_files(&dir, 1);

        mark();
        let t = Instant::now();
        let outcome = rt.block_on(reloader.reload(Trigger::Http));
        let reload = t.elapsed();
        mark();
        assert_eq!(
            outcome.errors,
            Vec::<String>::new(),
            "{name}: reload failed"
        );
        let inventory = applied.try_recv().expect("the reload sent an inventory");
        let t = Instant::now();
        let snapshot = state.replace_inventory(inventory, |_| None);
        let apply = t.elapsed();
        mark();
        println!(
            "{name} parents: reload {:.1} ms (its own {:.1} ms; callgrind dump {}), state apply {:.1} ms (dump {}); {:?}; {} devices",
            reload.as_secs_f64() * 1e3,
            outcome.duration_seconds * 1e3,
            2 + 3 * v,
            apply.as_secs_f64() * 1e3,
            3 + 3 * v,
            outcome.diff.unwrap_or_default(),
            snapshot.inventory.devices.len(),
        );
    }
}

/// Where callgrind cuts a dump (`--dump-before=reload_cost::mark`).
#[inline(never)]
fn mark() {
    std::hint::black_box(());
}

/// `bench/startup.py`'s `change_files(config, round, files=10, per_file=100)`: in each
/// of the first ten files (sorted), 40 devices relabelled, 20 re-addressed, 20 cameras
/// and access points removed and 20 devices added; saved as editors do (temp + rename).
fn change_files(dir: &Path, round: usize) {
    let files = 10;
    let q = 20;
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    for (f, path) in paths.iter().take(files).enumerate() {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let idx: Vec<usize> = (0..lines.len())
            .filter(|&i| device_line(&lines[i]).is_some())
            .collect();
        let spare: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| lines[i].contains("-camera-") || lines[i].contains("-ap-"))
            .take(q)
            .collect();
        let rest: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|i| !spare.contains(i))
            .take(3 * q)
            .collect();
        for &i in &rest[..2 * q] {
            let (ind, name, addr, rest) = device_line(&lines[i]).unwrap();
            let rest = format!("{}, bench: \"r{round}\" }}", &rest[..rest.len() - 2]);
            lines[i] = format!("{ind}- {{ name: {name}, address: {addr}, {rest} }}");
        }
        for (n, &i) in rest[2 * q..3 * q].iter().enumerate() {
            let (ind, name, _, rest) = device_line(&lines[i]).unwrap();
            let third = round * files + f;
            lines[i] = format!(
                "{ind}- {{ name: {name}, address: 127.254.{third}.{}, {rest} }}",
                n + 1
            );
        }
        let add_after = rest[0];
        let (ind, _, _, rest_of) = device_line(&lines[add_after]).unwrap();
        let third = round * files + f;
        let added: Vec<String> = (0..q)
            .map(|n| {
                format!(
                    "{ind}- {{ name: bench-added-r{round}-f{f}-{n}, address: 127.253.{third}.{}, {rest_of} }}",
                    n + 1
                )
            })
            .collect();
        let mut edits: Vec<usize> = spare.clone();
        edits.push(add_after);
        edits.sort_unstable_by(|a, b| b.cmp(a));
        for i in edits {
            if i == add_after {
                lines.splice(i + 1..i + 1, added.iter().cloned());
            } else {
                lines.remove(i);
            }
        }
        let tmp = path.with_extension("yaml.bench-tmp");
        std::fs::write(&tmp, lines.join("\n")).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }
}

/// `^(\s+)- \{ name: (...), address: (...), (.*) \}$` of a device line, by hand.
fn device_line(line: &str) -> Option<(String, String, String, String)> {
    let body = line.trim_start();
    let ind = &line[..line.len() - body.len()];
    let body = body.strip_prefix("- { name: ")?.strip_suffix(" }")?;
    let (name, body) = body.split_once(", address: ")?;
    let (addr, rest) = body.split_once(", ")?;
    (!ind.is_empty()).then(|| (ind.into(), name.into(), addr.into(), rest.into()))
}
