//! What a maintenance window does to alerts, on paused time: the state marks each
//! transition in maintenance and holds the `device_down` alert of an outage that began
//! inside a window; `state::held` releases it at the window's end (opened then, with
//! the outage's true start) for a device still down, at once when a reload removes the
//! window or the appliance starts after it ended, and never for a device that recovered
//! or is unreachable. What the store makes of the records is the contract suite's
//! (tests/store_contract.rs).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio::sync::mpsc;
use wardops::config::load::{Source, build_inventory};
use wardops::config::{Inventory, ProbeSettings};
use wardops::probe::ProbeOutcome;
use wardops::state::{Clock, Machine, State, Status, StoreEvent, TokioClock, Transition};

/// A branch whose window is 08:00 to 09:00 UTC on 15 January 2027 (the default zone), a
/// gateway with a child, and two more devices.
const INVENTORY: &str = "\
regions:
  - name: tbilisi
    branches:
      - name: vake
        maintenance:
          - { start: 2027-01-15T08:00, end: 2027-01-15T09:00, reason: router firmware }
        devices:
          - { name: gw, address: 127.91.0.1, kind: router }
          - { name: atm, address: 127.91.0.2, kind: atm, parents: [gw] }
          - { name: a, address: 127.91.0.3, kind: atm }
          - { name: b, address: 127.91.0.4, kind: atm }
";

fn inventory(text: &str) -> Arc<Inventory> {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: text.to_string(),
    };
    Arc::new(build_inventory(&[source], &ProbeSettings::default()).unwrap())
}

fn without_window() -> Arc<Inventory> {
    let text = INVENTORY.replace(
        "        maintenance:\n          - { start: 2027-01-15T08:00, end: 2027-01-15T09:00, reason: router firmware }\n",
        "",
    );
    assert_ne!(text, INVENTORY);
    inventory(&text)
}

fn utc(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_utc()
}

/// A state on paused time from `start`, feeding `events`, with the release task running.
struct Rig {
    state: State,
    clock: Arc<TokioClock>,
    events: mpsc::UnboundedReceiver<StoreEvent>,
}

impl Rig {
    fn start(start: &str, restore: impl Fn(&str) -> Option<Machine>) -> Rig {
        let clock = Arc::new(TokioClock::starting_at(utc(start)));
        let (tx, events) = mpsc::unbounded_channel();
        let state = State::with_sink(clock.clone(), tx);
        tokio::spawn(wardops::state::held::release_at_window_ends(state.clone()));
        state.replace_inventory(inventory(INVENTORY), |d| restore(&d.name));
        Rig {
            state,
            clock,
            events,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// One probe of `name` starting now; returns the transition it caused.
    fn probe(&self, name: &str, ok: bool) -> Option<Transition> {
        let snapshot = self.state.snapshot();
        let (device, _, runtime) = snapshot.device(name).unwrap();
        let outcome = ProbeOutcome {
            sent: 1,
            received: u32::from(ok),
            rtt: ok.then(|| Duration::from_millis(1)),
        };
        self.state
            .record_probe(device, runtime, &outcome, self.now())
    }

    /// Fails `name` every 10 s until it changes status (down_after is 2).
    async fn fail(&self, name: &str) -> Transition {
        for _ in 0..5 {
            if let Some(t) = self.probe(name, false) {
                return t;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        panic!("{name} never changed status");
    }

    /// Lets time run to `until` (the release task wakes on its own on the way).
    async fn run_until(&self, until: &str) {
        let d = (utc(until) - self.now()).to_std().unwrap();
        tokio::time::sleep(d).await;
    }

    /// The held alerts released so far: (device, opened at, down since).
    fn released(&mut self) -> Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            if let StoreEvent::HeldAlert {
                at,
                device,
                down_since,
            } = e
            {
                out.push((device.name.to_string(), at, down_since));
            }
        }
        out
    }
}

#[tokio::test(start_paused = true)]
async fn an_outage_inside_a_window_alerts_at_its_end_if_still_down_and_a_recovery_never() {
    let mut rig = Rig::start("2027-01-15 07:50:00", |_| None);
    for d in ["gw", "atm", "a", "b"] {
        assert_eq!(rig.probe(d, true).unwrap().change.to, Status::Up);
    }
    rig.run_until("2027-01-15 08:10:00").await;
    let down = rig.fail("a").await;
    assert_eq!(down.change.to, Status::Down);
    assert_eq!(down.change.down_since, Some(utc("2027-01-15 08:10:00")));
    assert_eq!(down.maintenance_ends_at, Some(utc("2027-01-15 09:00:00")));
    assert!(down.in_maintenance() && down.alert_held);
    // b goes down and recovers inside the window.
    let b = rig.fail("b").await;
    assert!(b.alert_held);
    rig.run_until("2027-01-15 08:30:00").await;
    let up = rig.probe("b", true).unwrap();
    assert_eq!(up.change.to, Status::Up);
    assert!(up.in_maintenance() && !up.alert_held);
    rig.run_until("2027-01-15 08:59:59").await;
    assert!(rig.released().is_empty(), "nothing before the end");
    rig.run_until("2027-01-15 09:00:01").await;
    assert_eq!(
        rig.released(),
        [(
            "a".to_string(),
            utc("2027-01-15 09:00:00"),
            Some(utc("2027-01-15 08:10:00"))
        )],
        "a's alert at the window's end with the true start; none for b"
    );
    // Once only.
    rig.run_until("2027-01-15 12:00:00").await;
    assert!(rig.released().is_empty());
    // After the window a transition is not in maintenance.
    let up = rig.probe("a", true).unwrap();
    assert!(!up.in_maintenance());
}

#[tokio::test(start_paused = true)]
async fn an_outage_that_began_before_the_window_is_alerted_as_usual() {
    let mut rig = Rig::start("2027-01-15 07:50:00", |_| None);
    for d in ["a", "b"] {
        rig.probe(d, true).unwrap();
    }
    rig.run_until("2027-01-15 07:55:00").await;
    let a = rig.fail("a").await;
    assert!(!a.in_maintenance() && !a.alert_held, "{a:?}");
    // b's first failure before the start, its verdict inside: its outage began before.
    rig.run_until("2027-01-15 07:59:55").await;
    let b = rig.fail("b").await;
    assert_eq!(b.change.at, utc("2027-01-15 08:00:05"));
    assert!(b.in_maintenance() && !b.alert_held, "{b:?}");
    rig.run_until("2027-01-15 09:30:00").await;
    assert!(rig.released().is_empty(), "their alerts were never held");
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_removes_the_window_releases_the_alert_at_once() {
    let mut rig = Rig::start("2027-01-15 08:05:00", |_| None);
    rig.probe("a", true).unwrap();
    rig.run_until("2027-01-15 08:10:00").await;
    assert!(rig.fail("a").await.alert_held);
    rig.run_until("2027-01-15 08:20:00").await;
    assert!(rig.released().is_empty());
    rig.state.replace_inventory(without_window(), |_| None);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let released = rig.released();
    assert_eq!(released.len(), 1, "{released:?}");
    let (name, at, since) = &released[0];
    assert_eq!(name, "a");
    assert!(
        (utc("2027-01-15 08:20:00")..=utc("2027-01-15 08:20:01")).contains(at),
        "opened now: {at}"
    );
    assert_eq!(*since, Some(utc("2027-01-15 08:10:00")));
    rig.run_until("2027-01-15 10:00:00").await;
    assert!(rig.released().is_empty(), "once");
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_device_at_the_end_opens_nothing_its_parent_does() {
    let mut rig = Rig::start("2027-01-15 07:50:00", |_| None);
    for d in ["gw", "atm"] {
        rig.probe(d, true).unwrap();
    }
    rig.run_until("2027-01-15 08:10:00").await;
    let gw = rig.fail("gw").await;
    assert!(gw.alert_held);
    let atm = rig.fail("atm").await;
    assert_eq!(atm.change.to, Status::Unreachable);
    assert!(atm.in_maintenance() && !atm.alert_held);
    rig.run_until("2027-01-15 09:00:01").await;
    let names: Vec<String> = rig.released().into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["gw"]);
}

#[tokio::test(start_paused = true)]
async fn a_start_after_the_window_ended_releases_the_alert_at_once() {
    // Restored from the store: a went down inside the window, b before it.
    let mut rig = Rig::start("2027-01-15 09:30:00", |name| match name {
        "a" => Some(Machine::restored(
            Status::Down,
            Some(utc("2027-01-15 08:10:00")),
        )),
        "b" => Some(Machine::restored(
            Status::Down,
            Some(utc("2027-01-15 07:00:00")),
        )),
        _ => None,
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let released = rig.released();
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0].0, "a");
    assert!((utc("2027-01-15 09:30:00")..=utc("2027-01-15 09:30:01")).contains(&released[0].1));
    assert_eq!(released[0].2, Some(utc("2027-01-15 08:10:00")));
}

#[tokio::test(start_paused = true)]
async fn a_start_inside_the_window_waits_for_its_end() {
    let mut rig = Rig::start("2027-01-15 08:30:00", |name| {
        (name == "a").then(|| Machine::restored(Status::Down, Some(utc("2027-01-15 08:10:00"))))
    });
    rig.run_until("2027-01-15 08:59:00").await;
    assert!(rig.released().is_empty());
    rig.run_until("2027-01-15 09:00:01").await;
    assert_eq!(
        rig.released(),
        [(
            "a".to_string(),
            utc("2027-01-15 09:00:00"),
            Some(utc("2027-01-15 08:10:00"))
        )]
    );
}
