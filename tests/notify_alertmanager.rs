//! The Alertmanager receiver against two real Alertmanagers (Debian's
//! `prometheus-alertmanager` on loopback ports of their own): what they hold, read back
//! through their own `GET /api/v2/alerts` — the labels and annotations, firing kept alive
//! by resends, resolved when told, and a pair where one member is down.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;
use wardops::config::settings::notify::AlertmanagerReceiver;
use wardops::notify::alertmanager::Alertmanager;
use wardops::notify::message::NoticeState;
use wardops::notify::{Deliver, Message, Notice, OpenNotices};

use support::alertmanager::Alertmanager as Peer;
use support::wait_for;

fn notice(state: NoticeState) -> Notice {
    let now = Utc::now();
    Notice {
        outbox_id: 1,
        state,
        alert_id: 1,
        condition: "device_down".into(),
        severity: "critical".into(),
        device: "e-01-r1".into(),
        address: "127.77.0.5".into(),
        region: "east".into(),
        branch: "e-01".into(),
        kind: "router".into(),
        labels: BTreeMap::from([
            ("tier".to_string(), "gold".to_string()),
            ("rack-row".to_string(), "b".to_string()),
        ]),
        summary: "e-01-r1 is down".into(),
        opened_at: now - chrono::TimeDelta::seconds(10),
        resolved_at: (state == NoticeState::Resolved).then_some(now),
        down_since: Some(now - chrono::TimeDelta::seconds(12)),
        unreachable_behind: 6,
        url: Some("https://wardops.bank.example/devices/e-01-r1".into()),
    }
}

fn message(id: u32, notices: Vec<Notice>) -> Message {
    Message {
        receiver: "noc-am".into(),
        idempotency_key: format!("wardops-noc-am-{id}"),
        group: BTreeMap::new(),
        notices,
        summarised: 0,
        test: false,
    }
}

fn receiver(peers: &[&Peer], resend: Duration) -> Arc<Alertmanager> {
    let config = AlertmanagerReceiver {
        urls: peers.iter().map(|p| p.url.parse().unwrap()).collect(),
        resend_interval: resend,
        timeout: Duration::from_secs(5),
    };
    Arc::new(Alertmanager::new("noc-am", &config, None).unwrap())
}

/// The open alerts: the one notice while `open` is set.
struct Open {
    open: AtomicBool,
    notice: Notice,
}

impl OpenNotices for Open {
    fn open_notices(&self) -> BoxFuture<'_, anyhow::Result<Vec<Notice>>> {
        Box::pin(async move {
            Ok(if self.open.load(Ordering::SeqCst) {
                vec![self.notice.clone()]
            } else {
                Vec::new()
            })
        })
    }
}

/// The receiver runs on a runtime of its own; the test thread talks to the Alertmanagers
/// with blocking requests, as the other end-to-end tests do.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> =
        LazyLock::new(|| tokio::runtime::Runtime::new().unwrap());
    &RUNTIME
}

trait Block: Future + Sized {
    fn block(self) -> Self::Output {
        runtime().block_on(self)
    }
}

impl<F: Future> Block for F {}

fn time(alert: &serde_json::Value, field: &str) -> DateTime<Utc> {
    alert[field].as_str().unwrap().parse().unwrap()
}

#[test]
fn both_alertmanagers_hold_the_alert_as_prometheus_would_have_sent_it() {
    let (a, b) = (Peer::start(), Peer::start());
    let am = receiver(&[&a, &b], Duration::from_secs(60));
    let firing = notice(NoticeState::Firing);
    am.deliver(&message(1, vec![firing.clone()]))
        .block()
        .unwrap();
    for peer in [&a, &b] {
        let alert = peer
            .alert("device_down", "e-01-r1")
            .expect("the alert is in both Alertmanagers");
        assert_eq!(
            alert["labels"],
            json!({
                "alertname": "device_down", "device": "e-01-r1", "region": "east",
                "branch": "e-01", "kind": "router", "severity": "critical",
                "tier": "gold", "rack_row": "b",
            })
        );
        let annotations = &alert["annotations"];
        assert_eq!(annotations["summary"], "e-01-r1 is down");
        assert_eq!(annotations["unreachable_behind"], "6");
        assert_eq!(annotations["address"], "127.77.0.5");
        let down_since: DateTime<Utc> =
            annotations["down_since"].as_str().unwrap().parse().unwrap();
        assert!(
            (down_since - firing.down_since.unwrap())
                .num_milliseconds()
                .abs()
                < 1
        );
        assert!(
            annotations["description"]
                .as_str()
                .unwrap()
                .starts_with("router e-01-r1 (127.77.0.5) in east/e-01: device_down since "),
            "{annotations}"
        );
        assert_eq!(
            alert["generatorURL"],
            "https://wardops.bank.example/devices/e-01-r1"
        );
        assert_eq!(alert["status"]["state"], "active");
        let starts = time(&alert, "startsAt");
        assert!(
            (starts - firing.opened_at).num_milliseconds().abs() < 1,
            "{alert}"
        );
        let ends = time(&alert, "endsAt");
        assert!(
            ends > Utc::now() + chrono::TimeDelta::minutes(3),
            "four intervals ahead: {alert}"
        );
    }
}

#[test]
fn a_firing_alert_stays_firing_with_resends_and_is_resolved_when_told() {
    let (a, b) = (Peer::start(), Peer::start());
    // One second: the alert is valid for four; only resends keep it past that.
    let am = receiver(&[&a, &b], Duration::from_secs(1));
    let open = Arc::new(Open {
        open: AtomicBool::new(true),
        notice: notice(NoticeState::Firing),
    });
    am.deliver(&message(1, vec![open.notice.clone()]))
        .block()
        .unwrap();
    let first_end = time(&a.alert("device_down", "e-01-r1").unwrap(), "endsAt");
    let resending = runtime().spawn(am.clone().resend_loop(open.clone()));
    std::thread::sleep(Duration::from_secs(7));
    for peer in [&a, &b] {
        let alert = peer
            .alert("device_down", "e-01-r1")
            .expect("still firing, seven seconds after an alert valid for four");
        assert_eq!(alert["status"]["state"], "active");
        assert!(
            time(&alert, "endsAt") > first_end + chrono::TimeDelta::seconds(4),
            "{alert}"
        );
    }

    // The alert resolves: the store no longer has it open, the engine delivers the resolve.
    open.open.store(false, Ordering::SeqCst);
    am.deliver(&message(2, vec![notice(NoticeState::Resolved)]))
        .block()
        .unwrap();
    // At once, not when the last resend's endsAt (three seconds and more away) passes.
    for peer in [&a, &b] {
        let left = peer.alert("device_down", "e-01-r1");
        assert!(left.is_none(), "resolved: {left:?}");
    }
    // And it stays resolved: the resends that follow do not bring it back.
    std::thread::sleep(Duration::from_secs(3));
    for peer in [&a, &b] {
        assert!(peer.alerts().is_empty());
    }
    resending.abort();
}

#[test]
fn with_one_of_the_pair_down_the_other_gets_it_and_the_returning_one_is_filled_by_a_resend() {
    let a = Peer::start();
    let b = Peer::start();
    let b_url = b.url.clone();
    let am = receiver(&[&a, &b], Duration::from_secs(1));
    drop(b);
    let open = Arc::new(Open {
        open: AtomicBool::new(true),
        notice: notice(NoticeState::Firing),
    });
    // Delivered: one Alertmanager took it.
    am.deliver(&message(1, vec![open.notice.clone()]))
        .block()
        .unwrap();
    assert!(a.alert("device_down", "e-01-r1").is_some());
    let resending = runtime().spawn(am.clone().resend_loop(open.clone()));
    let port: u16 = b_url.rsplit(':').next().unwrap().parse().unwrap();
    let b = Peer::start_on(port);
    wait_for(
        Duration::from_secs(10),
        "the resend to reach the returning Alertmanager",
        || b.alert("device_down", "e-01-r1"),
    );
    resending.abort();
}
