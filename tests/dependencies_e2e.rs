//! Dependencies end to end (issue #12): the real binary, real ICMP on loopback, and
//! nftables making a whole branch's address range go dark at once. A branch outage
//! must be one `down` (the gateway) with one `device_down` alert and N−1 `unreachable`
//! devices that are never alerted, whatever the moment it starts; lifting it brings
//! everything up within the gateway's next probe plus one probe of the children. A
//! region's core router going dark alone leaves the branches alone.
//!
//! Addresses: one /16 per test, 127.<net>.0.0 (the core <net>.0.1, branch k's devices
//! <net>.k.1 and up): nftables rules hold for the whole machine.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use support::{Appliance, Blackhole, wait_for};

/// Fast probing: a 1 s interval, outages confirmed by a retry 300 ms later; a 500 ms
/// timeout, so that a loaded machine (the suite runs beside builds) loses no reply.
/// (Twenty outages in a minute make the gateway flapping by the default rule; its
/// unreachable children's changes are its, not theirs: they get no alert of any kind.)
const SETTINGS: &str = "\
listen: 127.0.0.1:5001
database_url: sqlite://wardops.db
inventory: inventory
probe:
  interval: 1s
  timeout: 500ms
  packets: 1
  down_after: 2
  up_after: 1
  retry_interval: 300ms
";

const RETRY: Duration = Duration::from_millis(300);
const PROBE: Duration = Duration::from_millis(500);

/// Devices per branch: the gateway and its children.
const BRANCH: usize = 6;

fn gateway(branch: usize) -> String {
    format!("gw-{branch}")
}

fn child(branch: usize, i: usize) -> String {
    format!("b{branch}-atm-{i}")
}

/// A region with its core router in a hub branch, and two branches of [`BRANCH`]
/// devices behind their gateways, which are behind the core.
fn inventory(net: u8) -> String {
    let mut y = format!(
        "regions:\n  - name: kakheti\n    parents: [core]\n    branches:\n      - name: hub\n        devices:\n          - {{ name: core, address: 127.{net}.0.1, kind: router }}\n",
    );
    for b in 1..=2 {
        y += &format!(
            "      - name: branch-{b}\n        parents: [{}]\n        devices:\n          - {{ name: {}, address: 127.{net}.{b}.1, kind: router }}\n",
            gateway(b),
            gateway(b)
        );
        for i in 1..BRANCH {
            y += &format!(
                "          - {{ name: {}, address: 127.{net}.{b}.{}, kind: atm }}\n",
                child(b, i),
                i + 1
            );
        }
    }
    y
}

fn start(net: u8) -> (tempfile::TempDir, Appliance) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wardops.yaml"), SETTINGS).unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::write(dir.path().join("inventory/kakheti.yaml"), inventory(net)).unwrap();
    let app = Appliance::start(dir.path());
    (dir, app)
}

/// Every device's JSON by name, from one response of `GET /api/v1/devices`.
fn devices(app: &Appliance) -> HashMap<String, Value> {
    let list = app.get_json("/api/v1/devices?limit=1000");
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

fn status(devices: &HashMap<String, Value>, name: &str) -> String {
    devices[name]["ping_status"].as_str().unwrap().to_string()
}

fn changed_at(devices: &HashMap<String, Value>, name: &str) -> DateTime<Utc> {
    devices[name]["status_changed_at"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: {:?}", devices[name]))
        .parse()
        .unwrap()
}

/// The devices of every open alert of `condition`, from `GET /api/v1/alerts`.
fn open_alerts(app: &Appliance, condition: &str) -> Vec<String> {
    let page = app.get_json("/api/v1/alerts?status=active&limit=1000");
    let mut names: Vec<String> = page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["condition"] == condition)
        .map(|a| a["device"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The conditions of every alert ever opened for `device`, open or resolved.
fn alerts_of(app: &Appliance, device: &str) -> Vec<String> {
    let page = app.get_json(&format!("/api/v1/alerts?device={device}&limit=1000"));
    page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["condition"].as_str().unwrap().to_string())
        .collect()
}

fn all_up(app: &Appliance) -> Option<HashMap<String, Value>> {
    let d = devices(app);
    d.values().all(|d| d["ping_status"] == "up").then_some(d)
}

/// A small deterministic generator for the moments the outages start.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn a_dark_branch_is_one_down_and_one_alert_every_time() {
    let (_dir, app) = start(112);
    wait_for(Duration::from_secs(15), "every device up", || all_up(&app));
    let children: Vec<String> = (1..BRANCH).map(|i| child(1, i)).collect();
    let mut moments = Moments(0x2545_f491_4f6c_dd1d);
    for round in 0..20 {
        // A random moment of the probe cycle: phases differ from round to round.
        std::thread::sleep(Duration::from_millis(moments.next_ms(1_000)));
        let dark = Blackhole::new(&format!("dep{round}"), &["127.112.1.0/24"]);
        let seen = wait_for(
            Duration::from_secs(10),
            &format!("round {round}: the branch decided"),
            || {
                let d = devices(&app);
                let decided = status(&d, &gateway(1)) == "down"
                    && children.iter().all(|c| status(&d, c) != "up");
                decided.then_some(d)
            },
        );
        for c in &children {
            assert_eq!(status(&seen, c), "unreachable", "round {round}: {c}");
            assert!(seen[c]["down_since"].is_string(), "round {round}: {c}");
        }
        // It stays so: the children are not turned down later, nothing else moves.
        std::thread::sleep(Duration::from_millis(700));
        let d = devices(&app);
        assert_eq!(status(&d, &gateway(1)), "down", "round {round}");
        for c in &children {
            assert_eq!(status(&d, c), "unreachable", "round {round}: {c}");
        }
        for other in ["core".to_string(), gateway(2), child(2, 1)] {
            assert_eq!(status(&d, &other), "up", "round {round}: {other}");
        }
        // One alert, the gateway's, is open (the writer commits within a moment).
        let alerts = wait_for(Duration::from_secs(3), "the gateway's alert", || {
            let open = open_alerts(&app, "device_down");
            (!open.is_empty()).then_some(open)
        });
        assert_eq!(alerts, [gateway(1)], "round {round}");

        let lifted = Instant::now();
        let lifted_wall = Utc::now();
        drop(dark);
        let up = wait_for(
            Duration::from_secs(5),
            &format!("round {round}: the branch up"),
            || all_up(&app),
        );
        let took = lifted.elapsed();
        // The gateway (down: probed at its 1 s interval) is up at its next probe, and
        // its children are probed at once then, not at their next slots.
        let gateway_up = changed_at(&up, &gateway(1));
        for c in &children {
            let after = (changed_at(&up, c) - gateway_up)
                .to_std()
                .unwrap_or_default();
            assert!(
                after <= RETRY + PROBE + Duration::from_millis(200),
                "round {round}: {c} up {after:?} after the gateway"
            );
        }
        let timeline: Vec<String> = std::iter::once(gateway(1))
            .chain(children.iter().cloned())
            .map(|n| format!("{n} +{}", changed_at(&up, &n) - lifted_wall))
            .collect();
        assert!(
            took <= Duration::from_secs(1) + RETRY + PROBE + Duration::from_secs(1),
            "round {round}: all up {took:?} after the rule was lifted: {timeline:?}"
        );
        wait_for(Duration::from_secs(3), "the alert resolved", || {
            open_alerts(&app, "device_down").is_empty().then_some(())
        });
    }
    // None of the children was ever alerted, not even as flapping; the gateway once per
    // outage.
    for c in &children {
        assert_eq!(alerts_of(&app, c), Vec::<String>::new(), "{c}");
    }
    let gateway_alerts = alerts_of(&app, &gateway(1));
    let downs = gateway_alerts
        .iter()
        .filter(|c| *c == "device_down")
        .count();
    assert_eq!(downs, 20, "{gateway_alerts:?}");
    let log = app.log();
    assert!(
        log.lines()
            .any(|l| l.contains("UNREACHABLE") && l.contains(&gateway(1))),
        "UNREACHABLE lines name the parent that is down"
    );
    let down_lines = log.lines().filter(|l| l.contains(" DOWN")).count();
    assert_eq!(down_lines, 20, "one DOWN line per outage, the gateway's");
}

#[test]
fn the_core_going_dark_alone_leaves_the_branches_alone() {
    let (_dir, app) = start(113);
    wait_for(Duration::from_secs(15), "every device up", || all_up(&app));
    let dark = Blackhole::new("depcore", &["127.113.0.1"]);
    wait_for(Duration::from_secs(10), "the core down", || {
        (status(&devices(&app), "core") == "down").then_some(())
    });
    // Two more cycles: every gateway and child keeps answering, so stays up.
    std::thread::sleep(Duration::from_secs(2));
    let d = devices(&app);
    for (name, device) in &d {
        if name != "core" {
            assert_eq!(device["ping_status"], "up", "{name}");
        }
    }
    let alerts = wait_for(Duration::from_secs(3), "the core's alert", || {
        let open = open_alerts(&app, "device_down");
        (!open.is_empty()).then_some(open)
    });
    assert_eq!(alerts, ["core"]);

    // A gateway behind the dark core that stops answering too is unreachable, and so
    // are its children: still the one alert, the core's.
    let branch = Blackhole::new("depcore2", &["127.113.2.0/24"]);
    let seen = wait_for(Duration::from_secs(10), "branch 2 decided", || {
        let d = devices(&app);
        (0..BRANCH)
            .map(|i| if i == 0 { gateway(2) } else { child(2, i) })
            .all(|n| status(&d, &n) == "unreachable")
            .then_some(d)
    });
    assert_eq!(status(&seen, &gateway(1)), "up");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(open_alerts(&app, "device_down"), ["core"]);
    drop(branch);
    drop(dark);
    wait_for(Duration::from_secs(5), "everything up again", || {
        all_up(&app)
    });
    assert_eq!(alerts_of(&app, &gateway(2)), Vec::<String>::new());
}
