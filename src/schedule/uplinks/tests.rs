//! The poller on paused tokio time, over a fake [`Agents`]: when it polls, which session
//! it reads through, what reaches the state.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::config::inventory::{Branch, Inventory, Region};
use crate::config::snmp::{DeviceSnmp, UplinkSpec, Uplinks};
use crate::snmp::uplink::Matcher;
use crate::snmp::{AdminStatus, Credentials, OperStatus};
use crate::state::TokioClock;
use crate::state::uplinks::LineStatus;

/// Answers with `answer` (or says nothing for as long as `silence`), counting sessions
/// made and reads done; a session is the number it was made as.
#[derive(Default)]
struct Fake {
    sessions: AtomicU32,
    reads: Mutex<Vec<(u32, Duration)>>,
    fail: Mutex<bool>,
    slow: Mutex<Duration>,
}

impl Agents for Fake {
    type Session = u32;

    async fn session(&self, _: &Agent) -> Result<u32, ReadError> {
        Ok(self.sessions.fetch_add(1, Ordering::SeqCst) + 1)
    }

    async fn read(&self, session: &u32) -> Result<Vec<Interface>, ReadError> {
        let started = Instant::now();
        let slow = *self.slow.lock();
        tokio::time::sleep(slow).await;
        self.reads.lock().push((*session, started.elapsed()));
        if *self.fail.lock() {
            return Err(ReadError::NoAnswer { v2c: true });
        }
        Ok(vec![Interface {
            index: 1,
            name: Some("Gi0/0".into()),
            descr: None,
            alias: None,
            admin: Some(AdminStatus::Up),
            oper: Some(OperStatus::Up),
            in_octets: Some(1),
            out_octets: Some(1),
        }])
    }
}

fn device(name: &str, snmp: bool, port: u16) -> Arc<Device> {
    Arc::new(Device {
        name: name.into(),
        address: [127, 0, 0, 1].into(),
        region: "r".into(),
        branch: "b".into(),
        kind: "router".into(),
        labels: Default::default(),
        probe: Default::default(),
        parents: Default::default(),
        maintenance: Default::default(),
        snmp: snmp.then(|| {
            Arc::new(DeviceSnmp {
                port,
                credentials: Credentials::V2c {
                    community: "c".into(),
                },
                timeout: Duration::from_secs(1),
                retries: 0,
                interval: Duration::from_secs(30),
                uplinks: Uplinks::Listed(Arc::from(vec![UplinkSpec {
                    isp: "Magti".into(),
                    interface: Matcher::Name("Gi0/0".into()),
                }])),
            })
        }),
    })
}

fn inventory(devices: Vec<Arc<Device>>) -> Arc<Inventory> {
    let region = Region {
        name: "r".into(),
        branches: vec![Branch {
            name: "b".into(),
            lat: None,
            lon: None,
            devices: (0..devices.len()).collect(),
        }],
    };
    Arc::new(Inventory::new(devices, vec![region], "h".into()))
}

fn setup(devices: Vec<Arc<Device>>) -> (State, Arc<Fake>, Poller<Fake>) {
    let state = State::new(Arc::new(TokioClock::starting_at(
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    )));
    let snapshot = state.replace_inventory(inventory(devices), |_| None);
    let fake = Arc::new(Fake::default());
    let mut poller = Poller::new(
        fake.clone(),
        state.clone(),
        Arc::new(PollerMetrics::default()),
        None,
    );
    poller.sync(&snapshot);
    (state, fake, poller)
}

#[tokio::test(start_paused = true)]
async fn each_polled_device_is_read_once_per_interval_through_one_kept_session() {
    let (state, fake, poller) = setup(vec![device("rtr", true, 161), device("atm", false, 161)]);
    assert_eq!(poller.len(), 1, "only the device with snmp is polled");
    tokio::time::sleep(Duration::from_secs(91)).await;
    let reads = fake.reads.lock().clone();
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert!(reads.iter().all(|(s, _)| *s == 1), "one session: {reads:?}");
    let snapshot = state.snapshot();
    let line = &snapshot.uplinks["rtr"].lines[0];
    assert_eq!((&*line.isp, line.status), ("Magti", LineStatus::Up));
    assert!(!snapshot.uplinks.contains_key("atm"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_read_starts_a_new_session_and_a_changed_agent_too() {
    let (state, fake, mut poller) = setup(vec![device("rtr", true, 161)]);
    *fake.fail.lock() = true;
    tokio::time::sleep(Duration::from_secs(31)).await;
    let snapshot = state.snapshot();
    assert_eq!(snapshot.uplinks["rtr"].lines[0].status, LineStatus::Unknown);
    *fake.fail.lock() = false;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(fake.sessions.load(Ordering::SeqCst), 2);
    assert_eq!(
        state.snapshot().uplinks["rtr"].lines[0].status,
        LineStatus::Up
    );

    // The inventory now says port 1161: a new session at the next poll.
    let snapshot = state.replace_inventory(inventory(vec![device("rtr", true, 1161)]), |_| None);
    poller.sync(&snapshot);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(fake.sessions.load(Ordering::SeqCst), 3);
    let reads = fake.reads.lock().clone();
    assert_eq!(reads.last().unwrap().0, 3, "{reads:?}");

    // Without snmp the task stops, and the lines leave the snapshot.
    let snapshot = state.replace_inventory(inventory(vec![device("rtr", false, 161)]), |_| None);
    poller.sync(&snapshot);
    assert!(poller.is_empty());
    assert!(snapshot.uplinks.is_empty());
    let before = fake.reads.lock().len();
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(fake.reads.lock().len(), before);
}

#[tokio::test(start_paused = true)]
async fn a_poll_longer_than_its_interval_skips_the_slots_it_overran() {
    let (_state, fake, poller) = setup(vec![device("rtr", true, 161)]);
    *fake.slow.lock() = Duration::from_secs(70);
    tokio::time::sleep(Duration::from_secs(200)).await;
    let reads = fake.reads.lock().len();
    // Polls start at most every 90 s (70 s, then the next slot), never back to back.
    assert!((2..=3).contains(&reads), "{reads}");
    assert!(poller.shared.metrics.skipped.get() >= 2);
}
