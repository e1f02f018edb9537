use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::config::snmp::{DeviceSnmp, UplinkSpec, Uplinks as Configured};
use crate::snmp::uplink::AliasRule;
use crate::snmp::{Credentials, ReadError};

fn device(uplinks: Configured) -> Device {
    Device {
        name: "vake-rtr".into(),
        address: [127, 0, 0, 1].into(),
        region: "r".into(),
        branch: "vake".into(),
        kind: "router".into(),
        labels: Default::default(),
        probe: Default::default(),
        parents: Default::default(),
        maintenance: Default::default(),
        snmp: Some(Arc::new(DeviceSnmp {
            port: 161,
            credentials: Credentials::V2c {
                community: "c".into(),
            },
            timeout: std::time::Duration::from_secs(1),
            retries: 0,
            interval: std::time::Duration::from_secs(30),
            uplinks,
        })),
    }
}

fn listed() -> Device {
    device(Configured::Listed(Arc::from(vec![
        UplinkSpec {
            isp: "Magti".into(),
            interface: Matcher::Name("Gi0/0".into()),
        },
        UplinkSpec {
            isp: "Silknet".into(),
            interface: Matcher::Index(2),
        },
    ])))
}

fn iface(index: u32, name: &str, alias: &str, admin: AdminStatus, oper: OperStatus) -> Interface {
    Interface {
        index,
        name: Some(name.into()),
        descr: Some(format!("GigabitEthernet{name}")),
        alias: Some(alias.into()),
        admin: Some(admin),
        oper: Some(oper),
        in_octets: Some(1000),
        out_octets: Some(2000),
    }
}

/// A router whose lines are as `magti` and `silknet` say (`U`p, `D`own, `A`dmin down).
fn table(magti: char, silknet: char) -> Vec<Interface> {
    let of = |c: char| match c {
        'U' => (AdminStatus::Up, OperStatus::Up),
        'D' => (AdminStatus::Up, OperStatus::Down),
        _ => (AdminStatus::Down, OperStatus::Down),
    };
    let (a1, o1) = of(magti);
    let (a2, o2) = of(silknet);
    vec![
        iface(1, "Gi0/0", "MAGTI-uplink", a1, o1),
        iface(2, "Gi0/1", "SILKNET-uplink", a2, o2),
        iface(3, "Gi0/2", "LAN", AdminStatus::Up, OperStatus::Up),
    ]
}

/// Polls in order, each `interval` after the last, `suppressed` as given.
struct Router {
    device: Device,
    book: Book,
    now: Option<Uplinks>,
    at: DateTime<Utc>,
}

impl Router {
    fn new(device: Device) -> Router {
        Router {
            device,
            book: Book::default(),
            now: None,
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    fn poll(
        &mut self,
        reading: Result<Vec<Interface>, ReadError>,
        suppressed: bool,
    ) -> Option<AlertChange> {
        self.at += Duration::seconds(30);
        let snmp = self.device.snmp.clone().unwrap();
        let (observed, problem) = observe(&snmp, &reading, self.now.as_ref());
        let next = next(self.now.as_ref(), &observed, problem, self.at);
        self.book.record(
            self.now.as_ref(),
            &next,
            &observed,
            reading.is_err(),
            self.at,
        );
        let change = self.book.decide(&self.device, &next, suppressed);
        self.now = Some(next);
        change
    }

    fn line(&self, isp: &str) -> &Line {
        self.now.as_ref().unwrap().line(isp).unwrap()
    }
}

fn opened(change: Option<AlertChange>) -> String {
    match change {
        Some(AlertChange::Open { message }) => message,
        other => panic!("expected an alert to open, got {other:?}"),
    }
}

const RESOLVED: Option<AlertChange> = Some(AlertChange::Resolve { why: "recovered" });

#[test]
fn a_line_going_down_opens_one_alert_and_its_recovery_resolves_it() {
    let mut r = Router::new(listed());
    // The first clear poll resolves whatever an earlier run may have left open.
    assert_eq!(r.poll(Ok(table('U', 'U')), false), RESOLVED);
    let up_since = r.line("Magti").since;
    assert_eq!(r.poll(Ok(table('U', 'U')), false), None);
    assert_eq!(r.line("Magti").since, up_since, "since kept while up");

    let message = opened(r.poll(Ok(table('D', 'U')), false));
    assert_eq!(
        message,
        "uplink Magti (Gi0/0) down on vake-rtr: on its backup line (Silknet)"
    );
    let down = r.now.as_ref().unwrap();
    assert!(down.on_backup());
    assert_eq!(r.line("Magti").status, LineStatus::Down);
    assert_eq!(r.line("Magti").since, r.at);
    assert_eq!(r.line("Silknet").since, up_since);
    // Still down: one alert, not one per poll.
    assert_eq!(r.poll(Ok(table('D', 'U')), false), None);
    assert_eq!(r.poll(Ok(table('U', 'U')), false), RESOLVED);
    assert!(!r.now.as_ref().unwrap().on_backup());
    assert_eq!(r.poll(Ok(table('U', 'U')), false), None);
}

#[test]
fn a_line_down_since_the_first_poll_stays_quiet() {
    let mut r = Router::new(listed());
    assert_eq!(r.poll(Ok(table('U', 'D')), false), None);
    assert_eq!(r.poll(Ok(table('U', 'D')), false), None);
    assert_eq!(r.line("Silknet").status, LineStatus::Down);
    // Once it was up, going down again is news.
    assert_eq!(r.poll(Ok(table('U', 'U')), false), RESOLVED);
    opened(r.poll(Ok(table('U', 'D')), false));
}

#[test]
fn an_interface_shut_on_purpose_opens_nothing() {
    let mut r = Router::new(listed());
    r.poll(Ok(table('U', 'U')), false);
    assert_eq!(r.poll(Ok(table('A', 'U')), false), None);
    let line = r.line("Magti");
    assert_eq!((line.status, line.admin_down), (LineStatus::Down, true));
    assert_eq!(line.reason.as_deref(), Some("administratively down"));
    assert_eq!(r.poll(Ok(table('U', 'U')), false), None);
}

#[test]
fn a_change_seen_while_suppressed_waits_and_opens_after_if_still_down() {
    let mut r = Router::new(listed());
    r.poll(Ok(table('U', 'U')), false);
    assert_eq!(r.poll(Ok(table('D', 'U')), true), None);
    assert_eq!(r.poll(Ok(table('D', 'U')), true), None);
    opened(r.poll(Ok(table('D', 'U')), false));

    // Back up while suppressed: nothing is left waiting.
    let mut r = Router::new(listed());
    r.poll(Ok(table('U', 'U')), false);
    assert_eq!(r.poll(Ok(table('D', 'U')), true), None);
    assert_eq!(r.poll(Ok(table('U', 'U')), true), None);
    assert_eq!(r.poll(Ok(table('U', 'U')), false), None);
}

#[test]
fn a_silent_agent_makes_every_line_unknown_and_resolves_nothing() {
    let mut r = Router::new(listed());
    r.poll(Ok(table('U', 'U')), false);
    opened(r.poll(Ok(table('D', 'U')), false));
    assert_eq!(r.poll(Err(ReadError::NoAnswer { v2c: true }), false), None);
    let line = r.line("Silknet");
    assert_eq!(line.status, LineStatus::Unknown);
    assert!(
        line.reason.as_deref().unwrap().contains("no answer"),
        "{line:?}"
    );
    assert_eq!(r.book.failures, 1);
    assert_eq!(r.poll(Ok(table('U', 'U')), false), RESOLVED);
}

#[test]
fn an_interface_the_table_lacks_is_unknown_with_why() {
    let mut r = Router::new(listed());
    let mut only_silknet = table('U', 'U');
    only_silknet.remove(0);
    r.poll(Ok(only_silknet), false);
    let line = r.line("Magti");
    assert_eq!(line.status, LineStatus::Unknown);
    assert_eq!(
        line.reason.as_deref(),
        Some("no interface with ifName \"Gi0/0\"")
    );
    assert_eq!(r.line("Silknet").interface.as_deref(), Some("Gi0/1"));
}

#[test]
fn region_rules_name_each_isp_once_by_the_lowest_matching_index() {
    let rules: Arc<[AliasRule]> = Arc::from(vec![
        AliasRule::new("*magti*", "Magti"),
        AliasRule::new("*silknet*", "Silknet"),
        AliasRule::new("*beeline*", "Beeline"),
    ]);
    let mut r = Router::new(device(Configured::ByAlias(rules)));
    // Before any answer the rules name no line: the problem says why.
    r.poll(Err(ReadError::NoAnswer { v2c: true }), false);
    let now = r.now.as_ref().unwrap();
    assert!(now.lines.is_empty());
    assert!(now.problem.as_deref().unwrap().contains("no answer"));

    let mut t = table('U', 'D');
    t.push(iface(
        7,
        "Gi0/0.100",
        "MAGTI-uplink",
        AdminStatus::Up,
        OperStatus::Down,
    ));
    t.swap(0, 3);
    r.poll(Ok(t), false);
    let now = r.now.as_ref().unwrap();
    let isps: Vec<_> = now.lines.iter().map(|l| &*l.isp).collect();
    assert_eq!(
        isps,
        ["Magti", "Silknet"],
        "no line for an ISP nothing matches"
    );
    assert_eq!(r.line("Magti").if_index, Some(1));
    assert_eq!(r.line("Silknet").status, LineStatus::Down);
    assert!(now.problem.is_none());

    // A silent agent keeps the lines it named, unknown.
    r.poll(Err(ReadError::NoAnswer { v2c: true }), false);
    assert_eq!(r.line("Magti").status, LineStatus::Unknown);

    let lan_only = vec![iface(3, "Gi0/2", "LAN", AdminStatus::Up, OperStatus::Up)];
    r.poll(Ok(lan_only), false);
    let now = r.now.as_ref().unwrap();
    assert!(now.lines.is_empty());
    assert_eq!(
        now.problem.as_deref(),
        Some("no interface's ifAlias matches the region's uplink rules")
    );
}

#[test]
fn traffic_is_the_rate_between_two_readings_and_none_after_a_reset() {
    let mut r = Router::new(listed());
    let mut t = table('U', 'U');
    r.poll(Ok(t.clone()), false);
    assert_eq!(
        r.book.traffic("Magti").in_bps,
        None,
        "one reading is no rate"
    );
    t[0].in_octets = Some(1000 + 30 * 1_000_000);
    t[0].out_octets = Some(2000 + 30 * 125_000);
    r.poll(Ok(t.clone()), false);
    let traffic = r.book.traffic("Magti");
    assert_eq!(traffic.in_bps, Some(8_000_000.0));
    assert_eq!(traffic.out_bps, Some(1_000_000.0));
    assert_eq!(traffic.in_octets, Some(30_001_000));
    t[0].in_octets = Some(5);
    r.poll(Ok(t), false);
    assert_eq!(
        r.book.traffic("Magti").in_bps,
        None,
        "a reboot reset the counter"
    );
    assert_eq!(r.book.traffic("Magti").out_bps, Some(0.0));
    assert_eq!(r.book.polls, 3);
}

/// The state's side: what reaches the store and the snapshot, and that a router that is
/// not up itself (here: down) opens nothing.
mod through_the_state {
    use tokio::sync::mpsc;

    use super::*;
    use crate::config::inventory::{Branch, Inventory, Region};
    use crate::probe::ProbeOutcome;
    use crate::state::{State, Status, StoreEvent, SystemClock};

    fn state() -> (State, mpsc::UnboundedReceiver<StoreEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = State::with_sink(Arc::new(SystemClock), tx);
        let region = Region {
            name: "r".into(),
            branches: vec![Branch {
                name: "vake".into(),
                lat: None,
                lon: None,
                devices: vec![0],
            }],
        };
        let inventory = Inventory::new(vec![Arc::new(listed())], vec![region], "h".into());
        state.replace_inventory(Arc::new(inventory), |_| None);
        (state, rx)
    }

    fn probe_until(state: &State, ok: bool, want: Status) {
        for _ in 0..20 {
            let s = state.snapshot();
            let (d, st, rt) = s.device("vake-rtr").unwrap();
            if st.status == want {
                return;
            }
            let outcome = ProbeOutcome {
                sent: 1,
                received: u32::from(ok),
                rtt: ok.then(|| std::time::Duration::from_millis(1)),
            };
            state.record_probe(d, rt, &outcome, Utc::now());
        }
        panic!("never {want:?}");
    }

    fn poll(state: &State, reading: Vec<Interface>) {
        let s = state.snapshot();
        let (d, _, rt) = s.device("vake-rtr").unwrap();
        state.record_uplinks(d, rt, &Ok(reading), Utc::now());
    }

    fn uplink_alerts(rx: &mut mpsc::UnboundedReceiver<StoreEvent>) -> Vec<AlertChange> {
        let mut found = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if let StoreEvent::Uplink { alert, .. } = e {
                found.push(alert);
            }
        }
        found
    }

    #[test]
    fn a_line_down_of_an_up_router_reaches_the_store_and_the_snapshot() {
        let (state, mut rx) = state();
        probe_until(&state, true, Status::Up);
        poll(&state, table('U', 'U'));
        assert_eq!(uplink_alerts(&mut rx), [RESOLVED.unwrap()]);
        let before = state.snapshot().version;
        poll(&state, table('U', 'U'));
        assert_eq!(
            state.snapshot().version,
            before,
            "nothing changed: no version"
        );
        poll(&state, table('D', 'U'));
        let alerts = uplink_alerts(&mut rx);
        assert!(
            matches!(&alerts[..], [AlertChange::Open { .. }]),
            "{alerts:?}"
        );
        let s = state.snapshot();
        assert_eq!(s.version, before + 1);
        assert!(s.uplinks["vake-rtr"].on_backup());
    }

    #[test]
    fn a_router_that_is_down_itself_opens_nothing_until_it_is_up_again() {
        let (state, mut rx) = state();
        probe_until(&state, true, Status::Up);
        poll(&state, table('U', 'U'));
        uplink_alerts(&mut rx);
        probe_until(&state, false, Status::Down);
        poll(&state, table('D', 'U'));
        assert_eq!(uplink_alerts(&mut rx), []);
        probe_until(&state, true, Status::Up);
        poll(&state, table('D', 'U'));
        let alerts = uplink_alerts(&mut rx);
        assert!(
            matches!(&alerts[..], [AlertChange::Open { .. }]),
            "{alerts:?}"
        );
    }
}
