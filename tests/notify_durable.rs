//! Notifications survive what an appliance goes through (issue #13), end to end with the
//! real binary, real ICMP on loopback and nftables: a `kill -9` between an alert's commit
//! and its delivery, twenty times over — every notification arrives, and one delivered
//! twice carries the same idempotency key (and body) both times; and a receiver that is
//! down through several retry cycles while 100 devices go down and come back — once it is
//! back, everything arrives, in order.
//!
//! Addresses: 127.118.20.0/24, .30, .31, .40 and .41 (each test its own).

mod pgdb;
mod support;
mod webhook_sink;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{Appliance, Blackhole, FAST_PROBE, wait_for, wait_status};
use webhook_sink::{Received, Sink};

fn settings(sink: &Sink, route: &str) -> String {
    format!(
        "\
inventory: inventory
{FAST_PROBE}alerts:
  flapping_transitions: 1000
notifications:
  max_backoff: 2s
  receivers:
    - name: hook
      webhook:
        url: {}
        timeout: 5s
  routes:
    - receivers: [hook]
{route}",
        sink.url()
    )
}

/// `branches` branches of `per` devices at 127.118.<net>.<n>.
fn write(dir: &Path, settings: &str, net: u8, branches: usize, per: usize) -> Vec<String> {
    std::fs::write(dir.join("wardops.yaml"), settings).unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    let mut text = String::from("regions:\n  - name: west\n    branches:\n");
    let mut addresses = Vec::new();
    for b in 0..branches {
        text += &format!("      - name: w-{b:02}\n        devices:\n");
        for d in 0..per {
            let n = b * per + d + 1;
            text += &format!(
                "          - {{ name: w{b:02}-atm-{d}, address: 127.118.{net}.{n}, kind: atm }}\n"
            );
            addresses.push(format!("127.118.{net}.{n}"));
        }
    }
    std::fs::write(dir.join("inventory/west.yaml"), text).unwrap();
    addresses
}

/// Every (alert id, state) the store has: each opening and each resolution.
fn expected(app: &Appliance) -> BTreeSet<(i64, String)> {
    let page = app.get_json("/api/v1/alerts?limit=1000");
    let mut out = BTreeSet::new();
    for a in page["alerts"].as_array().unwrap() {
        let id = a["id"].as_i64().unwrap();
        out.insert((id, "firing".to_string()));
        if a["resolved_at"].is_string() {
            out.insert((id, "resolved".to_string()));
        }
    }
    out
}

fn notices(r: &Received) -> Vec<Value> {
    r.json()["notices"].as_array().unwrap().clone()
}

fn told(delivered: &[Received]) -> BTreeSet<(i64, String)> {
    delivered
        .iter()
        .flat_map(notices)
        .map(|n| {
            (
                n["alert_id"].as_i64().unwrap(),
                n["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn kill_9_between_the_alert_commit_and_its_delivery_loses_nothing_twenty_times() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    // A slow receiver: a kill often lands while a delivery is in flight.
    sink.set_delay(Duration::from_millis(300));
    let route = "      group_by: [device]\n      group_wait: 0s\n      group_interval: 0s\n";
    let addresses = write(dir.path(), &settings(&sink, route), 20, 1, 2);
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let mut dark: Option<Blackhole> = None;
    let mut changes = 0;
    for round in 0..20u64 {
        let app = Appliance::start(dir.path());
        let want = if dark.is_some() { "down" } else { "up" };
        wait_status(&app, "w00-atm-1", want);
        let before = expected(&app).len();
        dark = match dark.take() {
            Some(_) => None,
            None => Some(Blackhole::new("notify_kill", &addresses)),
        };
        // Both devices' alert changes committed (opened, or resolved)...
        wait_for(
            Duration::from_secs(20),
            "the alert changes committed",
            || (expected(&app).len() >= before + 2).then_some(()),
        );
        changes += 2;
        // ...then killed at once or a little later, before or during their delivery.
        std::thread::sleep(Duration::from_millis((round * 37) % 400));
        app.kill9();
    }
    assert!(
        dark.is_none(),
        "an even number of rounds ends with the devices back"
    );
    let app = Appliance::start(dir.path());
    wait_status(&app, "w00-atm-1", "up");
    wait_status(&app, "w00-atm-0", "up");
    let want = expected(&app);
    assert_eq!(
        want.len(),
        changes,
        "every change committed before its kill"
    );
    let got = wait_for(Duration::from_secs(60), "every notification", || {
        let delivered = sink.delivered();
        (told(&delivered) == want).then_some(delivered)
    });
    // Duplicates only under the same key, with the same body.
    let mut by_outbox: HashMap<i64, BTreeSet<&str>> = HashMap::new();
    let mut bodies: HashMap<&str, &[u8]> = HashMap::new();
    for r in &got {
        for n in notices(r) {
            by_outbox
                .entry(n["outbox_id"].as_i64().unwrap())
                .or_default()
                .insert(r.key());
        }
        let first = bodies.entry(r.key()).or_insert(&r.body);
        assert_eq!(*first, &r.body[..], "a redelivery is the same message");
    }
    for (outbox, keys) in &by_outbox {
        assert_eq!(keys.len(), 1, "outbox row {outbox} told under {keys:?}");
    }
    eprintln!(
        "{} notifications, {} requests delivered ({} redeliveries)",
        want.len(),
        got.len(),
        got.len() - bodies.len()
    );
}

#[test]
fn a_receiver_down_through_retries_gets_everything_in_order_once_back() {
    receiver_down_through_retries(None, 30);
}

/// The same on PostgreSQL (the engine's queries and transactions on the other backend).
#[test]
fn a_receiver_down_through_retries_gets_everything_in_order_once_back_on_postgres() {
    let db = pgdb::TestDb::create("notify_down");
    receiver_down_through_retries(Some(db.url()), 31);
}

fn receiver_down_through_retries(database_url: Option<String>, net: u8) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    sink.set_down(true);
    let route = "      group_wait: 1s\n      group_interval: 1s\n";
    let addresses = write(dir.path(), &settings(&sink, route), net, 10, 10);
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let app = match &database_url {
        Some(url) => Appliance::start_with(dir.path(), &[("WARDOPS_DATABASE_URL", url)]),
        None => Appliance::start(dir.path()),
    };
    wait_for(Duration::from_secs(20), "every device up", || {
        let page = app.get_json("/api/v1/status");
        (page["devices"]["up"] == 100).then_some(())
    });
    let dark = Blackhole::new(&format!("notify_down{net}"), &addresses);
    wait_for(Duration::from_secs(30), "100 alerts open", || {
        (expected(&app).len() >= 100).then_some(())
    });
    drop(dark);
    wait_for(Duration::from_secs(30), "100 alerts resolved", || {
        (expected(&app).len() >= 200).then_some(())
    });
    // Refused again and again, with backoff.
    wait_for(Duration::from_secs(30), "several retry cycles", || {
        (sink.all().len() >= 4).then_some(())
    });
    let page = app.get_json("/api/v1/notifications");
    assert_eq!(page["receivers"][0]["failing"], true, "{page}");
    assert!(sink.delivered().is_empty());
    sink.set_down(false);
    let want = expected(&app);
    let got = wait_for(Duration::from_secs(60), "the backlog", || {
        let delivered = sink.delivered();
        (told(&delivered) == want).then_some(delivered)
    });
    // In order: messages as they were decided, each device down before it is back, and
    // nothing twice.
    let ids: Vec<i64> = got.iter().map(Received::id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in got.iter().flat_map(notices) {
        seen.entry(n["device"].as_str().unwrap().to_string())
            .or_default()
            .push(n["state"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 100);
    for (device, states) in &seen {
        assert_eq!(states, &["firing", "resolved"], "{device}");
    }
    // Grouped by branch while it waited: tens of messages, not hundreds.
    assert!(got.len() <= 40, "{} messages", got.len());
    let page = app.get_json("/api/v1/notifications");
    assert_eq!(page["receivers"][0]["failing"], false, "{page}");
    assert_eq!(page["receivers"][0]["pending_messages"], 0, "{page}");
}

#[test]
fn a_backlog_older_than_max_replay_age_is_summarised_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    sink.set_down(true);
    let route = "      group_wait: 0s\n      group_interval: 0s\n";
    let text = settings(&sink, route).replace(
        "  max_backoff: 2s\n",
        "  max_backoff: 2s\n  max_replay_age: 2s\n",
    );
    let addresses = write(dir.path(), &text, 40, 2, 2);
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let app = Appliance::start(dir.path());
    wait_for(Duration::from_secs(20), "every device up", || {
        (app.get_json("/api/v1/status")["devices"]["up"] == 4).then_some(())
    });
    let dark = Blackhole::new("notify_summary", &addresses);
    wait_for(Duration::from_secs(30), "4 alerts open", || {
        (expected(&app).len() >= 4).then_some(())
    });
    drop(dark);
    wait_for(Duration::from_secs(30), "4 alerts resolved", || {
        (expected(&app).len() >= 8).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    sink.set_down(false);
    wait_for(Duration::from_secs(30), "the summaries", || {
        (sink.delivered().len() >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let got: Vec<Value> = sink.delivered().iter().map(Received::json).collect();
    assert_eq!(got.len(), 2, "one per branch: {got:?}");
    for m in &got {
        // Each device's latest change only, and the opening left out counted.
        let states: Vec<&str> = m["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["resolved", "resolved"], "{m}");
        assert_eq!(m["summarised"], 2, "{m}");
        assert_eq!(m["status"], "resolved");
    }
    let page = app.get_json("/api/v1/notifications");
    let statuses: BTreeSet<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains("summarised"), "{page}");
}

#[test]
fn alerts_still_firing_keep_repeating_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let route = "      group_wait: 0s\n      group_interval: 1s\n      repeat_interval: 4s\n";
    let addresses = write(dir.path(), &settings(&sink, route), 41, 1, 1);
    let app = Appliance::start(dir.path());
    wait_status(&app, "w00-atm-0", "up");
    let dark = Blackhole::new("notify_restart", &[addresses[0].as_str()]);
    let first = wait_for(Duration::from_secs(20), "the first message", || {
        sink.delivered().first().cloned()
    });
    drop(app);
    let app = Appliance::start(dir.path());
    wait_status(&app, "w00-atm-0", "down");
    // Told before the restart, still firing: repeated by the new process, under a new key.
    let repeat = wait_for(
        Duration::from_secs(20),
        "the repeat after the restart",
        || sink.delivered().get(1).cloned(),
    );
    assert_ne!(repeat.key(), first.key());
    assert_eq!(
        notices(&repeat)[0]["alert_id"],
        notices(&first)[0]["alert_id"]
    );
    assert_eq!(notices(&repeat)[0]["state"], "firing");
    drop(dark);
    let resolved = wait_for(Duration::from_secs(20), "the resolution", || {
        sink.delivered()
            .into_iter()
            .find(|r| r.json()["status"] == "resolved")
    });
    assert_eq!(
        notices(&resolved)[0]["alert_id"],
        notices(&first)[0]["alert_id"]
    );
}
