//! Maintenance windows end to end (issue #12): the real binary, real ICMP on loopback,
//! nftables making devices stop answering inside a window. An outage that begins inside
//! a window is recorded (marked in maintenance) and opens no alert; the alert opens when
//! the window ends if the device is still down, `opened_at` the window's end and its
//! message the true start; a reload that ends a window opens it at once. A device
//! outside any window, dark at the same moment, is alerted as always.
//!
//! Addresses: 127.117.0.0/16 (nftables rules hold for the whole machine).

mod support;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use support::{Appliance, Blackhole, FAST_PROBE, wait_for, wait_status};

/// A window on branch `works` from an hour ago to `ends` (UTC, the default zone), one
/// more on device `w-atm-2` (to `device_ends`), and a branch `plain` without any.
fn inventory(ends: DateTime<Utc>, device_window: Option<DateTime<Utc>>) -> String {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let start = at(Utc::now() - chrono::Duration::hours(1));
    let own = device_window.map_or(String::new(), |end| {
        format!(
            "            maintenance:\n              - {{ start: {start}, end: {}, reason: cabling }}\n",
            at(end)
        )
    });
    format!(
        "regions:\n  - name: imereti\n    branches:\n      - name: works\n        maintenance:\n          - {{ start: {start}, end: {}, reason: router firmware }}\n        devices:\n          - {{ name: w-atm-1, address: 127.117.1.1, kind: atm }}\n          - name: w-atm-2\n            address: 127.117.1.2\n            kind: atm\n{own}      - name: plain\n        devices:\n          - {{ name: p-atm-1, address: 127.117.2.1, kind: atm }}\n",
        at(ends)
    )
}

/// Open `device_down` alerts by device: (opened_at, message).
fn open_down(app: &Appliance) -> Vec<(String, DateTime<Utc>, String)> {
    let page = app.get_json("/api/v1/alerts?status=active&limit=1000");
    let mut out: Vec<_> = page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["condition"] == "device_down")
        .map(|a| {
            (
                a["device"].as_str().unwrap().to_string(),
                a["opened_at"].as_str().unwrap().parse().unwrap(),
                a["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn alert_of(app: &Appliance, device: &str) -> Option<(DateTime<Utc>, String)> {
    open_down(app)
        .into_iter()
        .find(|a| a.0 == device)
        .map(|a| (a.1, a.2))
}

fn transitions(app: &Appliance, device: &str) -> Vec<Value> {
    app.get_json(&format!("/api/v1/devices/{device}/transitions"))["transitions"]
        .as_array()
        .unwrap()
        .clone()
}

fn metric(app: &Appliance, device: &str) -> Option<String> {
    let text = app.try_get("/metrics")?;
    support::device_sample(&text, "wardops_device_in_maintenance", device)
}

fn seconds(t: &str) -> String {
    t.parse::<DateTime<Utc>>()
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[test]
fn an_outage_in_a_window_is_alerted_at_its_end_and_not_before() {
    // Long enough for the start, the devices' first verdicts and the outage; whole
    // seconds, as the inventory writes it.
    let now = Utc::now();
    let ends = DateTime::from_timestamp(now.timestamp() + 25, 0).unwrap();
    let device_ends = now + chrono::Duration::hours(1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wardops.yaml"), FAST_PROBE).unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    let file = dir.path().join("inventory/imereti.yaml");
    std::fs::write(&file, inventory(ends, Some(device_ends))).unwrap();
    let app = Appliance::start(dir.path());
    for d in ["w-atm-1", "w-atm-2", "p-atm-1"] {
        wait_status(&app, d, "up");
    }
    assert_eq!(metric(&app, "w-atm-1").as_deref(), Some("1"));
    assert_eq!(metric(&app, "p-atm-1").as_deref(), Some("0"));

    let dark = Blackhole::new("maint", &["127.117.1.1", "127.117.1.2", "127.117.2.1"]);
    let since_1 = wait_status(&app, "w-atm-1", "down").unwrap();
    let since_2 = wait_status(&app, "w-atm-2", "down").unwrap();
    wait_status(&app, "p-atm-1", "down");
    assert!(
        Utc::now() < ends,
        "the machine is too slow for this window: the outage reached {} after {ends}",
        Utc::now()
    );
    // The device outside any window is alerted as always; the two inside are not.
    wait_for(Duration::from_secs(10), "p-atm-1's alert", || {
        alert_of(&app, "p-atm-1")
    });
    let open: Vec<String> = open_down(&app).into_iter().map(|a| a.0).collect();
    assert_eq!(open, ["p-atm-1"]);
    let down = &transitions(&app, "w-atm-1")[0];
    assert_eq!(
        (down["to"].as_str(), down["in_maintenance"].as_bool()),
        (Some("down"), Some(true)),
        "{down}"
    );
    assert_eq!(transitions(&app, "p-atm-1")[0]["in_maintenance"], false);

    // The branch's window ends: w-atm-1's alert opens then, with the true start.
    let (opened_at, message) = wait_for(
        Duration::from_secs(40),
        "w-atm-1's alert at the window's end",
        || alert_of(&app, "w-atm-1"),
    );
    assert_eq!(opened_at, ends, "opened at the window's end");
    assert!(
        message.contains(&seconds(&since_1)),
        "{message} names the true start {since_1}"
    );
    assert_eq!(metric(&app, "w-atm-1").as_deref(), Some("0"));
    // w-atm-2 is still in its own window: still no alert.
    assert!(alert_of(&app, "w-atm-2").is_none());
    assert_eq!(metric(&app, "w-atm-2").as_deref(), Some("1"));

    // A reload that removes w-atm-2's window: its alert opens at once.
    let reloaded = Utc::now();
    std::fs::write(&file, inventory(ends, None)).unwrap();
    let (opened_at, message) = wait_for(
        Duration::from_secs(40),
        "w-atm-2's alert after the reload",
        || alert_of(&app, "w-atm-2"),
    );
    assert!(opened_at >= reloaded, "{opened_at} vs {reloaded}");
    assert!(message.contains(&seconds(&since_2)), "{message}");

    // Recovery is never held: lifting the rule resolves every alert.
    drop(dark);
    wait_for(Duration::from_secs(20), "every alert resolved", || {
        open_down(&app).is_empty().then_some(())
    });
    let log = app.log();
    assert!(log.contains("DOWN after maintenance"), "{log}");
}
