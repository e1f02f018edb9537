//! The scheduler and state machine on a fake pinger with paused tokio time: thresholds,
//! retry interval, phase spreading, unknown → up, flaps, reloads without bursts.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use parking_lot::Mutex;
use tokio::time::{Instant, sleep};
use wardops::config::load::{Source, build_inventory};
use wardops::config::{Inventory, ProbeSettings};
use wardops::probe::{Pinger, ProbeOutcome, ProbeSpec};
use wardops::schedule::{ProberMetrics, Scheduler};
use wardops::state::{State, Status, TokioClock};

/// Answers instantly-ish for reachable addresses; lets unreachable ones time out.
#[derive(Default)]
struct FakePinger {
    unreachable: Mutex<HashSet<IpAddr>>,
    probes: Mutex<Vec<(IpAddr, Instant)>>,
    /// Added to every unanswered probe, like the real pinger's bookkeeping.
    overhead: Mutex<Duration>,
}

impl FakePinger {
    fn set_reachable(&self, address: &str, reachable: bool) {
        let a: IpAddr = address.parse().unwrap();
        let mut set = self.unreachable.lock();
        if reachable {
            set.remove(&a)
        } else {
            set.insert(a)
        };
    }

    fn probe_times(&self, address: &str) -> Vec<Instant> {
        let a: IpAddr = address.parse().unwrap();
        self.probes
            .lock()
            .iter()
            .filter(|(x, _)| *x == a)
            .map(|(_, t)| *t)
            .collect()
    }
}

impl Pinger for FakePinger {
    fn probe(&self, address: IpAddr, spec: ProbeSpec) -> impl Future<Output = ProbeOutcome> + Send {
        let reachable = !self.unreachable.lock().contains(&address);
        let overhead = *self.overhead.lock();
        self.probes.lock().push((address, Instant::now()));
        async move {
            if reachable {
                sleep(Duration::from_millis(1)).await;
                ProbeOutcome {
                    sent: spec.packets,
                    received: spec.packets,
                    rtt: Some(Duration::from_millis(1)),
                }
            } else {
                sleep(spec.spacing * (spec.packets - 1) + spec.timeout + overhead).await;
                ProbeOutcome {
                    sent: spec.packets,
                    received: 0,
                    rtt: None,
                }
            }
        }
    }
}

const START: i64 = 1_800_000_000;

fn wall(secs_after_start: f64) -> DateTime<Utc> {
    Utc.timestamp_opt(START, 0).unwrap()
        + chrono::Duration::milliseconds((secs_after_start * 1000.0) as i64)
}

fn inventory(yaml: &str) -> Arc<Inventory> {
    let source = Source {
        path: PathBuf::from("test.yaml"),
        text: yaml.to_string(),
    };
    Arc::new(build_inventory(&[source], &ProbeSettings::default()).expect("valid inventory"))
}

fn devices_yaml(count: usize, probe: &str) -> String {
    let mut y = format!(
        "regions:\n  - name: r\n    probe: {probe}\n    branches:\n      - name: b\n        devices:\n"
    );
    for i in 0..count {
        y += &format!(
            "          - {{ name: d{i}, address: 127.9.{}.{}, kind: atm }}\n",
            i / 250,
            1 + i % 250
        );
    }
    y
}

struct Rig {
    pinger: Arc<FakePinger>,
    state: State,
    scheduler: Scheduler<FakePinger>,
    metrics: Arc<ProberMetrics>,
}

fn rig() -> Rig {
    let pinger = Arc::new(FakePinger::default());
    let state = State::new(Arc::new(TokioClock::starting_at(wall(0.0))));
    let metrics = Arc::new(ProberMetrics::default());
    let scheduler = Scheduler::new(pinger.clone(), state.clone(), metrics.clone());
    Rig {
        pinger,
        state,
        scheduler,
        metrics,
    }
}

impl Rig {
    fn load(&mut self, inventory: Arc<Inventory>) {
        let snapshot = self.state.replace_inventory(inventory, |_| None);
        self.scheduler.sync(&snapshot);
    }

    fn status(&self, name: &str) -> (Status, Option<DateTime<Utc>>) {
        let snap = self.state.snapshot();
        let (_, s, _) = snap.device(name).expect("device exists");
        (s.status, s.down_since)
    }
}

#[tokio::test(start_paused = true)]
async fn unknown_becomes_up_within_one_interval() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(3, "{ interval: 10s }")));
    assert_eq!(rig.status("d0").0, Status::Unknown);
    sleep(Duration::from_millis(10_100)).await;
    for name in ["d0", "d1", "d2"] {
        assert_eq!(rig.status(name).0, Status::Up, "{name}");
    }
    assert_eq!(
        rig.state.snapshot().version,
        1 + 3,
        "one reload plus one transition each"
    );
}

#[tokio::test(start_paused = true)]
async fn outage_is_confirmed_by_retry_and_dated_from_the_first_failed_probe() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(1, "{ interval: 10s, timeout: 1s, packets: 2, packet_spacing: 200ms, down_after: 2, retry_interval: 1s }")));
    sleep(Duration::from_secs(11)).await;
    assert_eq!(rig.status("d0").0, Status::Up);
    rig.pinger.set_reachable("127.9.0.1", false);
    let cut = Instant::now();
    let mut events = rig.state.subscribe();
    // The next slot is at most one interval away; the retry confirms 1.2 s (the failed
    // probe's duration) later.
    sleep(Duration::from_secs(10) + Duration::from_millis(2_500)).await;
    let (status, down_since) = rig.status("d0");
    assert_eq!(status, Status::Down);
    let probes: Vec<_> = rig
        .pinger
        .probe_times("127.9.0.1")
        .into_iter()
        .filter(|t| *t >= cut)
        .collect();
    assert!(probes.len() >= 2, "{probes:?}");
    let first_failed = wall((probes[0] - (cut - Duration::from_secs(11))).as_secs_f64());
    assert_eq!(
        down_since,
        Some(first_failed),
        "down_since is the start of the first failed probe"
    );
    assert_eq!(
        probes[1] - probes[0],
        Duration::from_millis(1_200),
        "retry right after the failed probe"
    );
    let event = events.try_recv().expect("a transition event");
    assert_eq!(event.version(), rig.state.snapshot().version);
}

#[tokio::test(start_paused = true)]
async fn down_after_three_needs_three_failures() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(
        1,
        "{ interval: 10s, down_after: 3, retry_interval: 2s }",
    )));
    sleep(Duration::from_secs(11)).await;
    rig.pinger.set_reachable("127.9.0.1", false);
    let cut = Instant::now();
    loop {
        sleep(Duration::from_millis(100)).await;
        if rig.status("d0").0 == Status::Down {
            break;
        }
    }
    let failed: Vec<_> = rig
        .pinger
        .probe_times("127.9.0.1")
        .into_iter()
        .filter(|t| *t >= cut)
        .collect();
    assert_eq!(
        failed.len(),
        3,
        "exactly down_after failed probes before down"
    );
    assert_eq!(
        failed[2] - failed[1],
        Duration::from_secs(2),
        "retry_interval between confirmations"
    );
}

#[tokio::test(start_paused = true)]
async fn a_down_device_is_probed_at_its_interval_and_recovers() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(1, "{ interval: 5s }")));
    rig.pinger.set_reachable("127.9.0.1", false);
    sleep(Duration::from_secs(20)).await;
    assert_eq!(rig.status("d0").0, Status::Down);
    let before = rig.pinger.probe_times("127.9.0.1").len();
    sleep(Duration::from_secs(20)).await;
    let while_down = rig.pinger.probe_times("127.9.0.1").len() - before;
    assert_eq!(
        while_down, 4,
        "once down, back to the interval (no retry storm)"
    );
    rig.pinger.set_reachable("127.9.0.1", true);
    sleep(Duration::from_secs(6)).await;
    assert_eq!(rig.status("d0"), (Status::Up, None));
}

#[tokio::test(start_paused = true)]
async fn probes_are_spread_over_the_interval() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(1000, "{ interval: 10s }")));
    let start = Instant::now();
    sleep(Duration::from_secs(10)).await;
    let mut per_second = [0u32; 10];
    for (_, t) in rig.pinger.probes.lock().iter() {
        per_second[((*t - start).as_secs() as usize).min(9)] += 1;
    }
    for n in per_second {
        assert!((70..=130).contains(&n), "uneven spread: {per_second:?}");
    }
    assert_eq!(
        per_second.iter().sum::<u32>(),
        1000,
        "each device once per interval"
    );
}

#[tokio::test(start_paused = true)]
async fn flapping_device_yields_every_transition_in_order() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(
        1,
        "{ interval: 2s, down_after: 1, timeout: 500ms, packets: 1 }",
    )));
    let mut events = rig.state.subscribe();
    for reachable in [true, false, true, false, true] {
        rig.pinger.set_reachable("127.9.0.1", reachable);
        sleep(Duration::from_secs(2)).await;
    }
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let wardops::state::Event::Transition(t) = &*e {
            seen.push((t.change.to, t.version));
        }
    }
    let statuses: Vec<_> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        statuses,
        vec![
            Status::Up,
            Status::Down,
            Status::Up,
            Status::Down,
            Status::Up
        ]
    );
    assert!(
        seen.windows(2).all(|w| w[1].1 == w[0].1 + 1),
        "versions increase by one: {seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn adding_devices_on_reload_does_not_burst() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(10, "{ interval: 10s }")));
    sleep(Duration::from_secs(15)).await;
    rig.load(inventory(&devices_yaml(2000, "{ interval: 10s }")));
    let reload = Instant::now();
    sleep(Duration::from_secs(10)).await;
    let probes = rig.pinger.probes.lock();
    let in_first_100ms = probes
        .iter()
        .filter(|(_, t)| *t >= reload && *t < reload + Duration::from_millis(100))
        .count();
    // Evenly spread, 2,000 probes per 10 s is 20 per 100 ms.
    assert!(
        in_first_100ms <= 45,
        "{in_first_100ms} probes in the first 100 ms after the reload"
    );
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_status_of_unchanged_and_resets_readdressed_devices() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(2, "{ interval: 5s }")));
    rig.pinger.set_reachable("127.9.0.1", false);
    sleep(Duration::from_secs(12)).await;
    let (status, down_since) = rig.status("d0");
    assert_eq!(status, Status::Down);
    assert_eq!(rig.status("d1").0, Status::Up);
    let moved = devices_yaml(2, "{ interval: 5s }")
        .replace("127.9.0.2", "127.9.0.99")
        .replace("kind: atm", "kind: router");
    rig.load(inventory(&moved));
    assert_eq!(
        rig.status("d0"),
        (Status::Down, down_since),
        "kind change keeps status and down_since"
    );
    assert_eq!(
        rig.status("d1").0,
        Status::Unknown,
        "a new address starts unknown"
    );
    sleep(Duration::from_secs(6)).await;
    assert_eq!(rig.status("d1").0, Status::Up);
    assert!(!rig.pinger.probe_times("127.9.0.99").is_empty());
    let before = rig.pinger.probe_times("127.9.0.2").len();
    sleep(Duration::from_secs(6)).await;
    assert_eq!(
        rig.pinger.probe_times("127.9.0.2").len(),
        before,
        "old address no longer probed"
    );
    // Probes still in flight (or cut short by the reload) are not counted yet.
    let started = rig.pinger.probes.lock().len() as u64;
    let counted = rig.metrics.probes.get();
    assert!(
        counted <= started && counted + 2 >= started,
        "counted {counted} of {started} started probes"
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_as_long_as_its_interval_does_not_lose_the_next_slot() {
    let mut rig = rig();
    // 200 ms spacing + 800 ms timeout: an unanswered probe lasts the whole 1 s interval,
    // plus 2 ms of overhead, so it ends just after its next slot.
    *rig.pinger.overhead.lock() = Duration::from_millis(2);
    rig.load(inventory(&devices_yaml(
        1,
        "{ interval: 1s, timeout: 800ms, packets: 2, packet_spacing: 200ms, retry_interval: 1s }",
    )));
    rig.pinger.set_reachable("127.9.0.1", false);
    sleep(Duration::from_secs(5)).await;
    assert_eq!(rig.status("d0").0, Status::Down);
    let before = rig.pinger.probe_times("127.9.0.1").len();
    sleep(Duration::from_secs(20)).await;
    let probes = rig.pinger.probe_times("127.9.0.1").len() - before;
    assert!(probes >= 19, "{probes} probes in 20 s: slots were skipped");
    assert_eq!(
        rig.metrics.skipped.get(),
        0,
        "late by 2 ms is lag, not a skipped slot"
    );
}
