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

// ---------------------------------------------------------------------------------------
// Dependencies (issue #12): parents decide between `down` and `unreachable`, whatever the
// probe phases; a recovered parent's children are probed at once.

const DEPENDENCY_PROBE: &str =
    "{ interval: 10s, timeout: 1s, packets: 1, retry_interval: 2s, down_after: 2, up_after: 1 }";

/// A region core `core{tag}`, a gateway `gw{tag}` behind it and `children` devices
/// `x{tag}-<i>` behind the gateway (written as the branch's parents, which the gateway
/// skips as it names itself, taking the region's). Addresses: 127.9.<net>.1 the core,
/// .2 the gateway, .10 and up the children.
fn branch_yaml(tag: &str, net: u8, children: usize) -> String {
    let mut y = format!(
        "regions:\n  - name: r\n    probe: {DEPENDENCY_PROBE}\n    parents: [core{tag}]\n    branches:\n      - name: hub\n        devices:\n          - {{ name: core{tag}, address: 127.9.{net}.1, kind: router }}\n      - name: b\n        parents: [gw{tag}]\n        devices:\n          - {{ name: gw{tag}, address: 127.9.{net}.2, kind: router }}\n"
    );
    for i in 0..children {
        y += &format!(
            "          - {{ name: x{tag}-{i}, address: 127.9.{net}.{}, kind: atm }}\n",
            10 + i
        );
    }
    y
}

/// Every transition since `events` subscribed: (device, from, to, at, down_since).
type Seen = (String, Status, Status, DateTime<Utc>, Option<DateTime<Utc>>);

fn drain(events: &mut tokio::sync::broadcast::Receiver<Arc<wardops::state::Event>>) -> Vec<Seen> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let wardops::state::Event::Transition(t) = &*event {
            let c = t.change;
            out.push((t.device.name.to_string(), c.from, c.to, c.at, c.down_since));
        }
    }
    out
}

impl Rig {
    fn set_dark(&self, addresses: &[String], dark: bool) {
        for a in addresses {
            self.pinger.set_reachable(a, !dark);
        }
    }

    fn count(&self, status: Status) -> usize {
        let snap = self.state.snapshot();
        snap.status.iter().filter(|s| s.status == status).count()
    }

    /// Waits (in paused time) until the device at `address` has been probed once more.
    async fn after_next_probe_of(&self, address: &str) {
        let before = self.pinger.probe_times(address).len();
        while self.pinger.probe_times(address).len() == before {
            sleep(Duration::from_millis(1)).await;
        }
    }
}

fn branch_addresses(net: u8, children: usize) -> Vec<String> {
    let mut v = vec![format!("127.9.{net}.2")];
    v.extend((0..children).map(|i| format!("127.9.{net}.{}", 10 + i)));
    v
}

/// Loads a branch and lets every device come up.
async fn up_branch(
    tag: &str,
    net: u8,
    children: usize,
) -> (
    Rig,
    tokio::sync::broadcast::Receiver<Arc<wardops::state::Event>>,
) {
    let mut rig = rig();
    rig.load(inventory(&branch_yaml(tag, net, children)));
    sleep(Duration::from_secs(11)).await;
    assert_eq!(rig.count(Status::Up), children + 2);
    let events = rig.state.subscribe();
    (rig, events)
}

/// The whole branch (gateway and children) dark at once, right after the gateway's
/// probe: every child fails before the gateway does, and the gateway is probed out of
/// phase, so the outage is one `down` well before the gateway's next slot.
#[tokio::test(start_paused = true)]
async fn a_child_that_fails_first_waits_for_its_gateway_probed_at_once() {
    let (rig, mut events) = up_branch("", 1, 3).await;
    rig.after_next_probe_of("127.9.1.2").await;
    let dark = Instant::now();
    rig.set_dark(&branch_addresses(1, 3), true);
    sleep(Duration::from_secs(25)).await;
    assert_eq!(rig.status("gw").0, Status::Down);
    for i in 0..3 {
        assert_eq!(
            rig.status(&format!("x-{i}")).0,
            Status::Unreachable,
            "x-{i}"
        );
    }
    assert_eq!(rig.status("core").0, Status::Up);
    let seen = drain(&mut events);
    assert_eq!(seen.len(), 4, "one transition each: {seen:?}");
    // The gateway's next slot was 10 s after the dark instant: it was probed before.
    let gw_probes = rig.pinger.probe_times("127.9.1.2");
    let first_after = gw_probes.iter().find(|t| **t > dark).unwrap();
    assert!(
        *first_after < dark + Duration::from_millis(9_990),
        "the gateway was probed out of phase: {:?} after the dark instant",
        *first_after - dark
    );
    // down_since is each device's own first failed probe, before it was decided.
    for (name, _, to, at, down_since) in &seen {
        assert!(
            down_since.unwrap() < *at,
            "{name} {to}: {down_since:?} {at}"
        );
    }
}

/// The same outage seen by the gateway first (dark just before its slot).
#[tokio::test(start_paused = true)]
async fn a_parent_that_fails_first_makes_its_children_unreachable() {
    let (rig, mut events) = up_branch("", 2, 3).await;
    rig.after_next_probe_of("127.9.2.2").await;
    // Its next slot is 10 s after the last; go dark 5 ms before it.
    sleep(Duration::from_millis(9_990)).await;
    rig.set_dark(&branch_addresses(2, 3), true);
    sleep(Duration::from_secs(25)).await;
    assert_eq!(rig.status("gw").0, Status::Down);
    assert_eq!(rig.count(Status::Unreachable), 3);
    let seen = drain(&mut events);
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0].0, "gw", "the gateway is decided first: {seen:?}");
}

/// A gateway that loses one probe and answers the next is not down: a child that
/// really fails meanwhile is down (its outage is its own), not unreachable.
#[tokio::test(start_paused = true)]
async fn a_flapping_parent_does_not_hide_a_child_that_really_failed() {
    let (rig, mut events) = up_branch("", 3, 2).await;
    rig.after_next_probe_of("127.9.3.2").await;
    rig.set_dark(&["127.9.3.2".into(), "127.9.3.10".into()], true);
    // The gateway's next probe (out of phase, asked by the child) fails; then it answers.
    rig.after_next_probe_of("127.9.3.2").await;
    rig.set_dark(&["127.9.3.2".into()], false);
    sleep(Duration::from_secs(25)).await;
    let seen = drain(&mut events);
    let changes: Vec<(&str, Status)> = seen.iter().map(|s| (&*s.0, s.2)).collect();
    assert_eq!(changes, [("x-0", Status::Down)], "{seen:?}");
    assert_eq!(rig.status("gw").0, Status::Up);
    assert_eq!(rig.status("x-1").0, Status::Up);
}

/// Two gateways: the child is unreachable only while both are out.
#[tokio::test(start_paused = true)]
async fn with_two_parents_one_that_answers_makes_the_child_down() {
    let yaml = format!(
        "regions:\n  - name: r\n    probe: {DEPENDENCY_PROBE}\n    branches:\n      - name: b\n        devices:\n          - {{ name: ga, address: 127.9.4.1, kind: router }}\n          - {{ name: gb, address: 127.9.4.2, kind: router }}\n          - {{ name: x, address: 127.9.4.3, kind: atm, parents: [ga, gb] }}\n          - {{ name: y, address: 127.9.4.4, kind: atm, parents: [ga, gb] }}\n"
    );
    let mut rig = rig();
    rig.load(inventory(&yaml));
    sleep(Duration::from_secs(11)).await;
    let mut events = rig.state.subscribe();
    // One gateway and x out: gb answers, so x is down.
    rig.set_dark(&["127.9.4.1".into(), "127.9.4.3".into()], true);
    sleep(Duration::from_secs(25)).await;
    assert_eq!(rig.status("ga").0, Status::Down);
    assert_eq!(rig.status("x").0, Status::Down);
    // Both gateways and y out: y is unreachable.
    rig.set_dark(&["127.9.4.2".into(), "127.9.4.4".into()], true);
    sleep(Duration::from_secs(25)).await;
    assert_eq!(rig.status("gb").0, Status::Down);
    assert_eq!(rig.status("y").0, Status::Unreachable);
    // x was down before its parents failed: it stays down.
    assert_eq!(rig.status("x").0, Status::Down);
    let seen = drain(&mut events);
    let x: Vec<_> = seen.iter().filter(|s| s.0 == "x").map(|s| s.2).collect();
    assert_eq!(x, [Status::Down], "{seen:?}");
}

/// A child down on its own stays down when its gateway fails later.
#[tokio::test(start_paused = true)]
async fn a_device_already_down_stays_down_when_its_parent_fails() {
    let (rig, mut events) = up_branch("", 5, 2).await;
    rig.set_dark(&["127.9.5.10".into()], true);
    sleep(Duration::from_secs(15)).await;
    assert_eq!(rig.status("x-0").0, Status::Down);
    rig.set_dark(&branch_addresses(5, 2), true);
    sleep(Duration::from_secs(25)).await;
    assert_eq!(rig.status("gw").0, Status::Down);
    assert_eq!(rig.status("x-0").0, Status::Down);
    assert_eq!(rig.status("x-1").0, Status::Unreachable);
    let seen = drain(&mut events);
    assert_eq!(seen.iter().filter(|s| s.0 == "x-0").count(), 1, "{seen:?}");
}

/// The gateway recovers, a child still fails: its outage is its own, it is down now,
/// dated from its first failed probe; the others are up at once, not at their slots.
#[tokio::test(start_paused = true)]
async fn a_recovered_parent_probes_its_children_at_once() {
    let (rig, mut events) = up_branch("", 6, 4).await;
    rig.set_dark(&branch_addresses(6, 4), true);
    sleep(Duration::from_secs(25)).await;
    assert_eq!(rig.count(Status::Unreachable), 4);
    let unreachable_since = rig.status("x-0").1.unwrap();
    drain(&mut events);
    let mut lifted = branch_addresses(6, 4);
    lifted.retain(|a| a != "127.9.6.10");
    rig.set_dark(&lifted, false);
    // The gateway is down: probed at its interval, so up within one; the children then
    // within their own probe.
    sleep(Duration::from_secs(11)).await;
    let seen = drain(&mut events);
    let gw_up = seen
        .iter()
        .find(|s| s.0 == "gw" && s.2 == Status::Up)
        .unwrap_or_else(|| panic!("{seen:?}"))
        .3;
    for i in 1..4 {
        let x = seen
            .iter()
            .find(|s| s.0 == format!("x-{i}"))
            .unwrap_or_else(|| panic!("x-{i}: {seen:?}"));
        assert_eq!(x.2, Status::Up);
        assert!(
            x.3 - gw_up < chrono::Duration::milliseconds(20),
            "x-{i} probed at once: {} after the gateway",
            x.3 - gw_up
        );
    }
    let x0 = seen.iter().find(|s| s.0 == "x-0").expect("x-0 decided");
    assert_eq!((x0.1, x0.2), (Status::Unreachable, Status::Down));
    assert_eq!(x0.4, Some(unreachable_since), "down_since kept");
    // Its failing probe ran right after the gateway's recovery (1 s timeout).
    assert!(
        x0.3 - gw_up < chrono::Duration::milliseconds(20),
        "{seen:?}"
    );
}

/// A reload that takes the gateway away: its unreachable children have no parent
/// left, so the next failed probe makes them down, keeping down_since.
#[tokio::test(start_paused = true)]
async fn a_parent_removed_by_a_reload_leaves_its_children_down() {
    let (mut rig, mut events) = up_branch("", 7, 2).await;
    rig.set_dark(&branch_addresses(7, 2), true);
    sleep(Duration::from_secs(25)).await;
    assert_eq!(rig.count(Status::Unreachable), 2);
    let since: Vec<_> = (0..2).map(|i| rig.status(&format!("x-{i}")).1).collect();
    let without = branch_yaml("", 7, 2)
        .replace("        parents: [gw]\n", "")
        .replace(
            "          - { name: gw, address: 127.9.7.2, kind: router }\n",
            "",
        );
    rig.load(inventory(&without));
    drain(&mut events);
    sleep(Duration::from_secs(11)).await;
    let seen = drain(&mut events);
    for (i, since) in since.into_iter().enumerate() {
        let x = format!("x-{i}");
        assert_eq!(
            rig.status(&x),
            (Status::Down, since),
            "{x}: down_since kept"
        );
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

/// The property: a branch of N devices behind a gateway behind a core, going dark at
/// one instant, at random instants and with random phases (the names set the phases):
/// always exactly one `down` (the gateway) and N−1 `unreachable`, the core up.
#[tokio::test(start_paused = true)]
async fn a_branch_going_dark_at_once_is_one_down_whatever_the_phases() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..100 {
        let children = 3 + random(6) as usize;
        let tag = format!("{}", random(1_000_000));
        let mut rig = rig();
        rig.load(inventory(&branch_yaml(&tag, 8, children)));
        sleep(Duration::from_secs(11) + Duration::from_millis(random(10_000))).await;
        assert_eq!(rig.count(Status::Up), children + 2, "round {round}");
        let mut events = rig.state.subscribe();
        rig.set_dark(&branch_addresses(8, children), true);
        sleep(Duration::from_secs(30)).await;
        let seen = drain(&mut events);
        let gw = format!("gw{tag}");
        assert_eq!(rig.status(&gw).0, Status::Down, "round {round}: {seen:?}");
        assert_eq!(rig.count(Status::Down), 1, "round {round}: {seen:?}");
        assert_eq!(
            rig.count(Status::Unreachable),
            children,
            "round {round}: {seen:?}"
        );
        assert_eq!(
            seen.len(),
            children + 1,
            "one transition each, round {round}: {seen:?}"
        );
        rig.set_dark(&branch_addresses(8, children), false);
        drop(rig);
    }
}

// ---------------------------------------------------------------------------------------
// Probe now (issue #15): an operator's out-of-phase probe.

#[tokio::test(start_paused = true)]
async fn a_probe_asked_for_runs_at_once_and_the_devices_slot_stands() {
    let mut rig = rig();
    rig.load(inventory(&devices_yaml(1, "{ interval: 10s }")));
    sleep(Duration::from_secs(25)).await;
    let before = rig.pinger.probe_times("127.9.0.1");
    let last = *before.last().unwrap();
    assert_eq!(before[1] - before[0], Duration::from_secs(10));
    // Four seconds after a slot, between two.
    tokio::time::sleep_until(last + Duration::from_secs(4)).await;
    let asked = Instant::now();
    let runtime = rig.state.snapshot().device("d0").unwrap().2.clone();
    runtime.request_probe();
    sleep(Duration::from_millis(50)).await;
    let now = rig.pinger.probe_times("127.9.0.1");
    assert_eq!(now.len(), before.len() + 1, "one probe, at once");
    assert!(now[before.len()] - asked < Duration::from_millis(5));
    // The next comes at the slot it came before, not 10 s after it.
    tokio::time::sleep_until(last + Duration::from_millis(10_050)).await;
    let after = rig.pinger.probe_times("127.9.0.1");
    assert_eq!(after.len(), before.len() + 2);
    assert_eq!(after[before.len() + 1], last + Duration::from_secs(10));
}

/// The names of `count` devices of `devices_yaml`, split by whether their shard is in
/// `shards`.
fn split_by_shard(count: usize, shards: &[u16]) -> (Vec<usize>, Vec<usize>) {
    (0..count).partition(|i| shards.contains(&wardops::cluster::shard_of(&format!("d{i}"))))
}

fn owned(shards: &[u16], until: Option<Instant>) -> wardops::cluster::member::Owned {
    wardops::cluster::member::Owned {
        shards: shards.iter().map(|&s| (s, 1)).collect(),
        until,
    }
}

#[tokio::test(start_paused = true)]
async fn a_cluster_member_probes_only_the_shards_it_owns_and_stops_at_its_fence() {
    let pinger = Arc::new(FakePinger::default());
    let state = State::new(Arc::new(TokioClock::starting_at(wall(0.0))));
    let metrics = Arc::new(ProberMetrics::default());
    // Half of twenty devices' shards are this member's.
    let mine: Vec<u16> = (0..20)
        .map(|i| wardops::cluster::shard_of(&format!("d{i}")))
        .step_by(2)
        .collect();
    let far = Some(Instant::now() + Duration::from_secs(3600));
    let (publish, watch) = tokio::sync::watch::channel(owned(&mine, far));
    let mut rig = Rig {
        pinger: pinger.clone(),
        state: state.clone(),
        scheduler: Scheduler::new(pinger.clone(), state.clone(), metrics.clone()).in_cluster(watch),
        metrics,
    };
    rig.load(inventory(&devices_yaml(20, "{ interval: 10s }")));
    let (ours, theirs) = split_by_shard(20, &mine);
    assert!(!ours.is_empty() && !theirs.is_empty());
    let address = |i: usize| format!("127.9.0.{}", 1 + i);

    sleep(Duration::from_millis(10_100)).await;
    for &i in &ours {
        assert_eq!(rig.status(&format!("d{i}")).0, Status::Up, "d{i} is ours");
    }
    for &i in &theirs {
        assert!(
            rig.pinger.probe_times(&address(i)).is_empty(),
            "d{i} is another member's"
        );
        assert_eq!(rig.status(&format!("d{i}")).0, Status::Unknown);
    }

    // Taken over: probed at their next slots, within one interval.
    let all: Vec<u16> = (0..20)
        .map(|i| wardops::cluster::shard_of(&format!("d{i}")))
        .collect();
    publish.send_replace(owned(&all, far));
    sleep(Duration::from_secs(10)).await;
    for i in 0..20 {
        assert_eq!(rig.status(&format!("d{i}")).0, Status::Up, "d{i}");
    }

    // The fence runs out (no renewal): nothing is probed from that instant on, even
    // before the member publishes that it owns nothing.
    publish.send_replace(owned(&all, Some(Instant::now() + Duration::from_secs(1))));
    sleep(Duration::from_secs(1)).await;
    let probes = rig.pinger.probes.lock().len();
    sleep(Duration::from_secs(30)).await;
    assert_eq!(
        rig.pinger.probes.lock().len(),
        probes,
        "no probe after the fence"
    );
}
