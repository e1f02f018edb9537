//! The `degraded` condition on paused time, through the state owner: RTT or loss above a
//! device's thresholds over its window raises it (up/down unchanged), it clears only after
//! a whole window at or below them (hysteresis), a device going down is cleared first,
//! and its warning alert reaches the store under the suppression rules: none opened in
//! maintenance (opened after, if still degraded), none for a device whose parent is
//! degraded too, resolved when a reload switches the thresholds off. What the store makes
//! of the records is tests/degraded_store.rs.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio::sync::{broadcast, mpsc};
use wardops::config::load::{Source, build_inventory};
use wardops::config::{Inventory, ProbeSettings};
use wardops::probe::ProbeOutcome;
use wardops::state::degraded::{AlertChange, ClearedWhy};
use wardops::state::{Clock, Event, State, Status, StoreEvent, TokioClock};

/// Thresholds on the branch (window 60 s, probes every 10 s): `gw` with a child `atm`,
/// `a` alone, `m` with a window 08:00 to 09:00 UTC, `quiet` with both thresholds off.
const INVENTORY: &str = "\
regions:
  - name: tbilisi
    branches:
      - name: vake
        probe: { degraded: { rtt_above: 200ms, loss_above: 10%, window: 60s } }
        devices:
          - { name: gw, address: 127.94.0.1, kind: router }
          - { name: atm, address: 127.94.0.2, kind: atm, parents: [gw] }
          - { name: a, address: 127.94.0.3, kind: atm }
          - name: m
            address: 127.94.0.4
            kind: atm
            maintenance:
              - { start: 2027-01-15T08:00, end: 2027-01-15T09:00, reason: line work }
          - name: quiet
            address: 127.94.0.5
            kind: atm
            probe: { degraded: { rtt_above: off, loss_above: off } }
";

fn inventory(text: &str) -> Arc<Inventory> {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: text.to_string(),
    };
    Arc::new(build_inventory(&[source], &ProbeSettings::default()).unwrap())
}

fn utc(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_utc()
}

/// What one probe gets back.
#[derive(Clone, Copy)]
enum Reply {
    Fine,
    /// Half of the requests unanswered.
    Lossy,
    /// Every request answered in 250 ms.
    Slow,
    Dead,
}

impl Reply {
    fn outcome(self) -> ProbeOutcome {
        let (received, rtt) = match self {
            Reply::Fine => (2, 2),
            Reply::Lossy => (1, 2),
            Reply::Slow => (2, 250),
            Reply::Dead => (0, 0),
        };
        ProbeOutcome {
            sent: 2,
            received,
            rtt: (received > 0).then(|| Duration::from_millis(rtt)),
        }
    }
}

/// A state on paused time, its store feed and its live events.
struct Rig {
    state: State,
    clock: Arc<TokioClock>,
    store: mpsc::UnboundedReceiver<StoreEvent>,
    events: broadcast::Receiver<Arc<Event>>,
}

/// What the store was sent, in order, without the inventory.
#[derive(Debug, PartialEq)]
enum Sent {
    Open(String, DateTime<Utc>),
    Resolve(String, DateTime<Utc>, ClearedWhy),
    Transition(String, Status),
}

impl Rig {
    fn start(at: &str) -> Rig {
        let clock = Arc::new(TokioClock::starting_at(utc(at)));
        let (tx, store) = mpsc::unbounded_channel();
        let state = State::with_sink(clock.clone(), tx);
        let events = state.subscribe();
        state.replace_inventory(inventory(INVENTORY), |_| None);
        let mut rig = Rig {
            state,
            clock,
            store,
            events,
        };
        rig.sent(); // the inventory
        rig
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn probe(&self, name: &str, reply: Reply) {
        let snapshot = self.state.snapshot();
        let (device, _, runtime) = snapshot.device(name).unwrap();
        self.state
            .record_probe(device, runtime, &reply.outcome(), self.now());
    }

    /// Probes each device with its reply every 10 s for `secs` seconds (the first at once).
    async fn run(&self, secs: u64, replies: &[(&str, Reply)]) {
        for _ in 0..secs / 10 {
            for &(name, reply) in replies {
                self.probe(name, reply);
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }

    fn degraded(&self, name: &str) -> bool {
        self.state
            .snapshot()
            .device(name)
            .unwrap()
            .1
            .degraded
            .is_some()
    }

    fn sent(&mut self) -> Vec<Sent> {
        let mut out = Vec::new();
        while let Ok(e) = self.store.try_recv() {
            match e {
                StoreEvent::Degraded { at, device, alert } => out.push(match alert {
                    AlertChange::Open { message } => {
                        assert!(message.contains(&*device.name), "{message}");
                        Sent::Open(device.name.to_string(), at)
                    }
                    AlertChange::Resolve { why } => Sent::Resolve(device.name.to_string(), at, why),
                }),
                StoreEvent::Transition(t) => {
                    out.push(Sent::Transition(t.device.name.to_string(), t.change.to))
                }
                _ => {}
            }
        }
        out
    }

    /// The live events since the last call: (device, raised?) for `degraded` changes,
    /// (device, status) as "device:status" for transitions, with their versions.
    fn live(&mut self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            match &*e {
                Event::Degraded(c) => {
                    assert_eq!(c.degraded.is_some(), c.cleared.is_none(), "{c:?}");
                    let word = if c.degraded.is_some() {
                        "degraded"
                    } else {
                        "cleared"
                    };
                    out.push((c.version, format!("{}:{word}", c.device.name)))
                }
                Event::Transition(t) => {
                    out.push((t.version, format!("{}:{}", t.device.name, t.change.to)))
                }
                _ => {}
            }
        }
        out
    }

    /// Brings every device up and past its first window (its first clear verdict
    /// resolves what an earlier process may have left open: once).
    async fn settle(&mut self) {
        let all = ["gw", "atm", "a", "m", "quiet"].map(|n| (n, Reply::Fine));
        self.run(70, &all).await;
        let sent = self.sent();
        let t0 = utc("2027-01-15 07:00:00");
        let mut expected: Vec<Sent> = all
            .iter()
            .map(|(n, _)| Sent::Transition(n.to_string(), Status::Up))
            .collect();
        // A verdict needs a whole window: the probe 60 s after the first.
        for n in ["gw", "atm", "a", "m"] {
            expected.push(Sent::Resolve(
                n.into(),
                t0 + chrono::Duration::seconds(60),
                ClearedWhy::Recovered,
            ));
        }
        assert_eq!(sent, expected, "quiet has no thresholds: nothing");
        self.live();
    }
}

#[tokio::test(start_paused = true)]
async fn loss_above_raises_one_warning_and_it_clears_only_after_a_whole_clear_window() {
    let mut rig = Rig::start("2027-01-15 07:00:00");
    rig.settle().await;
    let version = rig.state.snapshot().version;
    // Lossy from here: 50 % of each probe's requests; the window (its last 6 probes, 12
    // requests) goes above 10 % at the second lossy probe.
    let lossy_from = rig.now();
    rig.run(20, &[("a", Reply::Lossy)]).await;
    let raised_at = lossy_from + chrono::Duration::seconds(10);
    assert_eq!(rig.sent(), [Sent::Open("a".into(), raised_at)]);
    assert_eq!(rig.live(), [(version + 1, "a:degraded".to_string())]);
    let snapshot = rig.state.snapshot();
    let (_, status, _) = snapshot.device("a").unwrap();
    assert_eq!(status.status, Status::Up, "up/down is unchanged");
    let d = status.degraded.unwrap();
    assert_eq!(d.since, raised_at);
    assert!(d.above.loss && !d.above.rtt, "{d:?}");
    assert_eq!((d.figures.sent, d.figures.received), (12, 10));
    // Still lossy for minutes: one condition, one alert.
    rig.run(300, &[("a", Reply::Lossy)]).await;
    assert!(rig.sent().is_empty() && rig.live().is_empty());
    // The loss ends. At L+50 one lossy probe is left in the window (1 of 12 requests,
    // 8.3 %): the first clear evaluation. The condition clears a whole window of clear
    // evaluations later, at L+110, not before.
    let last_lossy = rig.now() - chrono::Duration::seconds(10);
    rig.run(100, &[("a", Reply::Fine)]).await;
    assert!(rig.degraded("a"), "cleared too early");
    assert!(rig.sent().is_empty());
    rig.run(10, &[("a", Reply::Fine)]).await;
    let cleared_at = last_lossy + chrono::Duration::seconds(110);
    assert_eq!(
        rig.sent(),
        [Sent::Resolve("a".into(), cleared_at, ClearedWhy::Recovered)]
    );
    assert!(!rig.degraded("a"));
    assert_eq!(rig.live().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn rtt_above_raises_it_and_an_unconfigured_device_is_never_evaluated() {
    let mut rig = Rig::start("2027-01-15 07:00:00");
    rig.settle().await;
    rig.run(60, &[("a", Reply::Slow), ("quiet", Reply::Slow)])
        .await;
    let snapshot = rig.state.snapshot();
    let d = snapshot.device("a").unwrap().1.degraded.unwrap();
    assert!(d.above.rtt && !d.above.loss, "{d:?}");
    assert_eq!(d.figures.rtt_us.map(|us| us > 200_000), Some(true));
    assert!(!rig.degraded("quiet"));
    let sent = rig.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(matches!(&sent[0], Sent::Open(n, _) if n == "a"));
}

#[tokio::test(start_paused = true)]
async fn a_device_going_down_is_cleared_before_its_down_transition_and_starts_afresh() {
    let mut rig = Rig::start("2027-01-15 07:00:00");
    rig.settle().await;
    rig.run(20, &[("a", Reply::Lossy)]).await;
    assert!(rig.degraded("a"));
    rig.sent();
    rig.live();
    // Two failed probes (down_after 2): the condition ends with the status.
    rig.run(20, &[("a", Reply::Dead)]).await;
    let down_at = rig.now() - chrono::Duration::seconds(10);
    assert_eq!(
        rig.sent(),
        [
            Sent::Resolve("a".into(), down_at, ClearedWhy::NotUp),
            Sent::Transition("a".into(), Status::Down),
        ]
    );
    let live = rig.live();
    assert_eq!(
        live.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(),
        ["a:cleared", "a:down"]
    );
    assert_eq!(live[1].0, live[0].0 + 1, "no version is down and degraded");
    // Up again and still lossy: a whole window up before a verdict.
    rig.run(60, &[("a", Reply::Lossy)]).await;
    assert!(!rig.degraded("a"), "a window of being up first");
    rig.run(10, &[("a", Reply::Lossy)]).await;
    assert!(rig.degraded("a"));
}

#[tokio::test(start_paused = true)]
async fn no_warning_opens_inside_maintenance_and_it_opens_after_if_still_degraded() {
    let mut rig = Rig::start("2027-01-15 07:00:00");
    rig.settle().await;
    // Quiet until 08:10; then lossy inside m's window (08:00-09:00) to its end.
    tokio::time::sleep((utc("2027-01-15 08:10:05") - rig.now()).to_std().unwrap()).await;
    rig.run(3000, &[("m", Reply::Lossy)]).await;
    assert!(rig.degraded("m"), "the condition is shown all the same");
    assert!(rig.sent().is_empty(), "no alert inside the window");
    assert_eq!(rig.live().len(), 1);
    // Still lossy past the window's end: the first probe after it opens the alert.
    rig.run(10, &[("m", Reply::Lossy)]).await;
    assert_eq!(
        rig.sent(),
        [Sent::Open("m".into(), utc("2027-01-15 09:00:05"))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_degraded_parent_covers_its_child_and_the_child_alerts_once_the_parent_is_fine() {
    let mut rig = Rig::start("2027-01-15 07:00:00");
    rig.settle().await;
    // The branch line is lossy: the child is probed first and raised first, then waits
    // for one probe of its parent, which finds the parent degraded too.
    let start = rig.now();
    for _ in 0..4 {
        rig.probe("atm", Reply::Lossy);
        tokio::time::sleep(Duration::from_secs(5)).await;
        rig.probe("gw", Reply::Lossy);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(rig.degraded("atm") && rig.degraded("gw"));
    assert_eq!(
        rig.sent(),
        [Sent::Open(
            "gw".into(),
            start + chrono::Duration::seconds(15)
        )],
        "one warning for the branch, the gateway's"
    );
    // The gateway's line is fixed while the child stays lossy (its own problem now):
    // once the gateway is cleared, the child's warning opens.
    for _ in 0..20 {
        rig.probe("atm", Reply::Lossy);
        tokio::time::sleep(Duration::from_secs(5)).await;
        rig.probe("gw", Reply::Fine);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let sent = rig.sent();
    assert!(
        matches!(&sent[..], [Sent::Resolve(g, _, ClearedWhy::Recovered), Sent::Open(c, _)] if g == "gw" && c == "atm"),
        "{sent:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_whose_parent_stays_fine_alerts_after_one_probe_of_the_parent() {
    let mut rig = Rig::start("2027-01-15 07:00:00");
    rig.settle().await;
    let start = rig.now();
    for _ in 0..3 {
        rig.probe("atm", Reply::Lossy);
        tokio::time::sleep(Duration::from_secs(5)).await;
        rig.probe("gw", Reply::Fine);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // Raised at its second lossy probe (start + 10 s), held while the parent had not
    // been probed since, opened at its next probe (start + 20 s).
    assert_eq!(
        rig.sent(),
        [Sent::Open(
            "atm".into(),
            start + chrono::Duration::seconds(20)
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_switches_the_thresholds_off_clears_and_resolves() {
    let mut rig = Rig::start("2027-01-15 07:00:00");
    rig.settle().await;
    rig.run(20, &[("a", Reply::Slow)]).await;
    rig.run(60, &[("a", Reply::Slow)]).await;
    assert!(rig.degraded("a"));
    rig.sent();
    let off = INVENTORY.replace(
        "{ name: a, address: 127.94.0.3, kind: atm }",
        "{ name: a, address: 127.94.0.3, kind: atm, probe: { degraded: { rtt_above: off, loss_above: off } } }",
    );
    assert_ne!(off, INVENTORY);
    rig.state.replace_inventory(inventory(&off), |_| None);
    assert!(rig.degraded("a"), "kept over the reload until probed");
    // No threshold left on a: cleared at its next probe, slow or not.
    let at = rig.now();
    rig.run(10, &[("a", Reply::Slow)]).await;
    assert_eq!(
        rig.sent(),
        [Sent::Resolve("a".into(), at, ClearedWhy::Disabled)]
    );
    assert!(!rig.degraded("a"));
    rig.run(60, &[("a", Reply::Slow)]).await;
    assert!(rig.sent().is_empty(), "and never evaluated again");
}

#[test]
fn thresholds_cascade_key_by_key_and_off_switches_one_off_below() {
    use wardops::config::degraded::{DegradedSettings, Loss};
    // The settings' probe defaults turn on the old system's 200 ms / 10 % over 5m.
    let defaults = ProbeSettings {
        degraded: DegradedSettings {
            rtt_above: Some(Duration::from_millis(200)),
            loss_above: Loss::parse("10%").unwrap(),
            window: Duration::from_secs(300),
        },
        ..ProbeSettings::default()
    };
    let text = "\
regions:
  - name: r
    probe: { degraded: { loss_above: 2.5% } }
    branches:
      - name: b
        probe: { degraded: { window: 1m } }
        devices:
          - { name: plain, address: 127.94.1.1, kind: atm }
          - { name: no-rtt, address: 127.94.1.2, kind: atm, probe: { degraded: { rtt_above: off } } }
          - { name: none, address: 127.94.1.3, kind: atm, probe: { degraded: { rtt_above: off, loss_above: off } } }
";
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: text.into(),
    };
    let inv = build_inventory(&[source], &defaults).unwrap();
    let of = |name: &str| inv.devices[inv.index_of(name).unwrap()].probe.degraded;
    let plain = of("plain");
    assert_eq!(
        plain.rtt_above,
        Some(Duration::from_millis(200)),
        "from the settings"
    );
    assert_eq!(
        plain.loss_above.map(|l| l.to_string()),
        Some("2.5%".into()),
        "the region's"
    );
    assert_eq!(plain.window, Duration::from_secs(60), "the branch's");
    let no_rtt = of("no-rtt");
    assert_eq!(
        (no_rtt.rtt_above, no_rtt.loss_above),
        (None, plain.loss_above)
    );
    assert!(no_rtt.is_enabled());
    assert!(!of("none").is_enabled());
    // Nothing written: off.
    assert!(!ProbeSettings::default().degraded.is_enabled());
}

/// The pages: the wall (tiles and table) and the device page show the badge for the
/// degraded device only, in words, with a hostile name escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_badge_a_degraded_device_only() {
    use http_body_util::BodyExt;
    use wardops::web::{Pages, monitor};
    let text = "\
regions:
  - name: r
    branches:
      - name: b
        probe: { degraded: { loss_above: 10%, window: 20s } }
        devices:
          - { name: \"<b>lossy</b>\", address: 127.94.2.1, kind: atm }
          - { name: fine, address: 127.94.2.2, kind: atm }
";
    let state = State::new(Arc::new(wardops::state::SystemClock));
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: text.into(),
    };
    state.replace_inventory(
        Arc::new(build_inventory(&[source], &ProbeSettings::default()).unwrap()),
        |_| None,
    );
    let t0 = utc("2027-01-15 07:00:00");
    for i in 0..4 {
        let at = t0 + chrono::Duration::seconds(i * 10);
        for (name, reply) in [("<b>lossy</b>", Reply::Lossy), ("fine", Reply::Fine)] {
            let snapshot = state.snapshot();
            let (d, _, rt) = snapshot.device(name).unwrap();
            state.record_probe(d, rt, &reply.outcome(), at);
        }
    }
    assert!(
        state
            .snapshot()
            .device("<b>lossy</b>")
            .unwrap()
            .1
            .degraded
            .is_some()
    );
    let dir = tempfile::tempdir().unwrap();
    let (ctx, store) = support::local_context(&state, dir.path()).await;
    let web = Arc::new(Pages::new(Arc::new(ctx)));
    let html = |r: hyper::Response<wardops::http::response::Body>| async move {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let now = t0 + chrono::Duration::seconds(40);
    for view in ["", "view=table"] {
        let q = monitor::MonitorQuery::parse(Some(view)).unwrap();
        let wall = html(monitor::render(&web, &state.snapshot(), now, &q)).await;
        assert_eq!(wall.matches("◐ DEGRADED").count(), 1, "{view}: {wall}");
        assert!(!wall.contains("<b>lossy</b>"), "a name is never markup");
        let badge = wall.find("◐ DEGRADED").unwrap();
        let lossy = wall.find("data-device=\"&lt;b&gt;lossy").unwrap();
        let fine = wall.find("data-device=\"fine\"").unwrap();
        assert!(
            lossy < badge && (badge < fine || fine < lossy),
            "on the lossy device's item"
        );
        assert!(wall.contains("loss 50.0%"), "the figures in its title");
    }
    let get = |path: &str| {
        let web = web.clone();
        let req = hyper::Request::get(path).body(bytes::Bytes::new()).unwrap();
        tokio::task::spawn_blocking(move || wardops::web::device::get(&web, &req))
    };
    let page = html(get("/devices/%3Cb%3Elossy%3C%2Fb%3E").await.unwrap()).await;
    assert!(
        page.contains("◐ DEGRADED") && page.contains("<dt>Degraded</dt>"),
        "{page}"
    );
    assert!(page.contains("▲ UP"), "and up");
    let page = html(get("/devices/fine").await.unwrap()).await;
    assert!(!page.contains("DEGRADED"));
    drop(store);
}

/// After a restart every device's tracker is fresh: a device restored down resolves, at
/// its first probe, a `degraded` warning the earlier process may have left open (its
/// outage says more); once, and nothing for a device without thresholds.
#[tokio::test(start_paused = true)]
async fn a_device_restored_down_resolves_an_earlier_warning_at_its_first_probe() {
    let clock = Arc::new(TokioClock::starting_at(utc("2027-01-15 07:00:00")));
    let (tx, mut store) = mpsc::unbounded_channel();
    let state = State::with_sink(clock.clone(), tx);
    state.replace_inventory(inventory(INVENTORY), |d| {
        let down = ["a", "quiet"].contains(&&*d.name);
        down.then(|| {
            wardops::state::Machine::restored(Status::Down, Some(utc("2027-01-15 06:00:00")))
        })
    });
    for _ in 0..3 {
        for name in ["a", "quiet"] {
            let snapshot = state.snapshot();
            let (d, _, rt) = snapshot.device(name).unwrap();
            state.record_probe(d, rt, &Reply::Dead.outcome(), clock.now());
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let mut resolved = Vec::new();
    while let Ok(e) = store.try_recv() {
        if let StoreEvent::Degraded { at, device, alert } = e {
            resolved.push((device.name.to_string(), at, alert));
        }
    }
    assert_eq!(
        resolved,
        [(
            "a".to_string(),
            utc("2027-01-15 07:00:00"),
            AlertChange::Resolve {
                why: ClearedWhy::NotUp
            }
        )]
    );
}
