//! Driving the real store writer from a test: a demo inventory, a `State` feeding the
//! writer, probe results that flip a device's status, and waiting with a deadline.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wardops::config::{Config, Env};
use wardops::probe::ProbeOutcome;
use wardops::state::{State, SystemClock, Transition};
use wardops::store::AlertRules;
use wardops::store::startup::{Limits, StartOptions, Started, start_with};

/// The demo inventory of `devices` devices written to `dir`, without its `parents:`,
/// loaded. The store tests drive each device's status by hand, one device at a time: a
/// device behind a gateway would wait for its gateway's verdict (which no scheduler
/// probes here) and become `unreachable` rather than `down` when the gateway is down.
pub fn inventory(dir: &Path, devices: usize) -> Config {
    write_without_parents(dir, devices);
    Config::load_with_env(
        &dir.join("wardops.yaml"),
        &Env {
            listen: None,
            database_url: None,
            users_file: None,
            data_dir: None,
            cluster: Default::default(),
        },
    )
    .unwrap()
}

/// `wardops demo` into `dir` without `parents:` ([`wardops::demo::write_flat`]).
pub fn write_without_parents(dir: &Path, devices: usize) {
    wardops::demo::write_flat(dir, devices, None).unwrap();
}

/// A store on `url` with its spool in `data_dir`, and a state feeding it `config`'s
/// inventory.
pub async fn store(
    url: String,
    config: &Config,
    data_dir: &Path,
    limits: Limits,
) -> (Started, State) {
    let options = StartOptions {
        database_url: url,
        base_dir: data_dir.to_path_buf(),
        data_dir: data_dir.to_path_buf(),
        rules: AlertRules::default(),
        retention: Duration::from_secs(400 * 86_400),
        wait: Duration::from_secs(10),
    };
    let started = start_with(options, Arc::new(SystemClock), limits)
        .await
        .expect("the store starts");
    let state = State::with_sink(Arc::new(SystemClock), started.sink.clone());
    state.replace_inventory(config.inventory.clone(), |_| None);
    (started, state)
}

/// Feeds probe results to device `i` until its status changes.
pub fn flip(state: &State, i: usize, ok: bool) -> Transition {
    let snapshot = state.snapshot();
    let device = &snapshot.inventory.devices[i];
    let runtime = &snapshot.runtime[i];
    let outcome = ProbeOutcome {
        sent: 1,
        received: u32::from(ok),
        rtt: ok.then(|| Duration::from_millis(1)),
    };
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(2)); // distinct timestamps
        if let Some(t) = state.record_probe(device, runtime, &outcome, chrono::Utc::now()) {
            return t;
        }
    }
    panic!("device {i} never changed status");
}

pub async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `device|from|to` of each transition, as the database rows are compared.
pub fn rows(transitions: &[Transition]) -> Vec<String> {
    transitions
        .iter()
        .map(|t| format!("{}|{}|{}", t.device.name, t.change.from, t.change.to))
        .collect()
}

/// Waits until the writer has committed the inventory's record and `changes` status
/// changes after it, with nothing pending: waiting for the first batch only would let a
/// record still on its way to the writer count among what a test looks at next.
/// Waits until the inventory record, the run's first heartbeat and `changes` more are
/// written. The heartbeat's task may send its first record after the others are written:
/// waiting for it too keeps it from landing in a test's count of pending records later.
pub async fn all_written(health: &wardops::store::StoreHealth, changes: u64) {
    wait_until("the first writes", Duration::from_secs(20), || {
        health.pending.get() == 0 && health.applied.get() >= changes + 2
    })
    .await;
}
