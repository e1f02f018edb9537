//! End to end with real ICMP: the real binary on a loopback inventory; one device is
//! blackholed with nftables and must go `down` with a correct `down_since` in JSON and
//! `wardops_device_up 0` in /metrics, then recover when the rule is lifted.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use support::{Appliance, Blackhole, TWO_PACKET_PROBE, wait_for};

const INVENTORY: &str = "\
regions:
  - name: tbilisi
    branches:
      - name: vake
        lat: 41.71
        lon: 44.76
        devices:
          - { name: vake-router, address: 127.77.2.1, kind: router, labels: { isp: magti } }
          - { name: vake-atm-1, address: 127.77.2.2, kind: atm }
          - { name: vake-atm-2, address: 127.77.2.3, kind: atm }
  - name: batumi
    branches:
      - name: old-town
        devices:
          - { name: old-town-router, address: 127.77.2.4, kind: router }
";

fn write_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wardops.yaml"), TWO_PACKET_PROBE).unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::write(dir.path().join("inventory/georgia.yaml"), INVENTORY).unwrap();
    dir
}

fn device<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()
}

fn metric_line(metrics: &str, family: &str, device: &str) -> Option<String> {
    let needle = format!("device=\"{device}\"");
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{family}{{")) && l.contains(&needle))
        .map(str::to_string)
}

#[test]
fn blackholed_device_goes_down_and_recovers() {
    let dir = write_config();
    let app = Appliance::start(dir.path());

    wait_for(Duration::from_secs(10), "every device up", || {
        let list = app.get_json("/api/v1/devices");
        list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["ping_status"] == "up")
            .then_some(())
    });
    let before = app.try_get("/metrics").unwrap();
    assert!(
        metric_line(&before, "wardops_device_up", "vake-atm-1")
            .unwrap()
            .ends_with(" 1")
    );

    let cut: DateTime<Utc> = Utc::now();
    let blackhole = Blackhole::new("e2e", &["127.77.2.2"]);
    let down = wait_for(Duration::from_secs(10), "vake-atm-1 down", || {
        let list = app.get_json("/api/v1/devices");
        (device(&list, "vake-atm-1")["ping_status"] == "down").then_some(list)
    });
    let seen_down = Utc::now();
    // Down devices sort first.
    assert_eq!(down["devices"][0]["name"], "vake-atm-1");
    let since: DateTime<Utc> = device(&down, "vake-atm-1")["down_since"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        since >= cut - chrono::Duration::milliseconds(50),
        "down_since {since} before the cut {cut}"
    );
    assert!(
        since <= cut + chrono::Duration::milliseconds(1_100),
        "first failed probe within one interval of the cut"
    );
    assert!(
        seen_down - cut < chrono::Duration::seconds(4),
        "confirmed in {:?}",
        seen_down - cut
    );
    for other in ["vake-router", "vake-atm-2", "old-town-router"] {
        assert_eq!(
            device(&down, other)["ping_status"],
            "up",
            "{other} is unaffected"
        );
    }
    let metrics = app.try_get("/metrics").unwrap();
    assert!(
        metric_line(&metrics, "wardops_device_up", "vake-atm-1")
            .unwrap()
            .ends_with(" 0")
    );
    // The blackhole drops requests on output: the pinger's own counter says so.
    let send_errors: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wardops_icmp_send_errors_total "))
        .expect("the pinger's counters are exported")
        .parse()
        .unwrap();
    assert!(send_errors > 0.0, "{send_errors}");
    for family in [
        "wardops_icmp_slots_exhausted_total ",
        "wardops_icmp_replies_ignored_total ",
    ] {
        assert!(metrics.lines().any(|l| l.starts_with(family)), "{family}");
    }
    let since_metric = metric_line(
        &metrics,
        "wardops_device_down_since_timestamp_seconds",
        "vake-atm-1",
    )
    .unwrap();
    let value: f64 = since_metric.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (value - since.timestamp_millis() as f64 / 1000.0).abs() < 0.001,
        "{since_metric} vs {since}"
    );

    drop(blackhole);
    let up = wait_for(Duration::from_secs(5), "vake-atm-1 recovered", || {
        let list = app.get_json("/api/v1/devices");
        (device(&list, "vake-atm-1")["ping_status"] == "up").then_some(list)
    });
    assert!(device(&up, "vake-atm-1")["down_since"].is_null());
    assert!(up["state_version"].as_u64() > down["state_version"].as_u64());
    let metrics = app.try_get("/metrics").unwrap();
    assert!(
        metric_line(&metrics, "wardops_device_up", "vake-atm-1")
            .unwrap()
            .ends_with(" 1")
    );
    assert!(
        metric_line(
            &metrics,
            "wardops_device_down_since_timestamp_seconds",
            "vake-atm-1"
        )
        .is_none()
    );

    let log = app.log();
    let down_line = log
        .lines()
        .find(|l| l.contains("DOWN") && l.contains("vake-atm-1"))
        .expect("a DOWN log line");
    assert!(
        down_line.contains("127.77.2.2") && down_line.contains("down_since"),
        "{down_line}"
    );
    let recovered = log
        .lines()
        .find(|l| l.contains("RECOVERED") && l.contains("vake-atm-1"))
        .expect("RECOVERED line");
    assert!(
        recovered.contains("127.77.2.2") && recovered.contains("down_for"),
        "{recovered}"
    );
}

#[test]
fn check_reports_errors_with_places_and_exit_code() {
    let dir = write_config();
    // Semantic errors are all collected; a shape error (unknown key) stops its own file only.
    let bad = INVENTORY
        .replace("127.77.2.3", "127.77.2.300")
        .replace("127.77.2.4", "127.77.2.1");
    std::fs::write(dir.path().join("inventory/georgia.yaml"), bad).unwrap();
    let extra = "regions:\n  - name: gori\n    colour: red\n";
    std::fs::write(dir.path().join("inventory/gori.yaml"), extra).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["check", "-c"])
        .arg(dir.path().join("wardops.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("georgia.yaml:10:") && lines[0].contains("127.77.2.300"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("georgia.yaml:15:") && lines[1].contains("georgia.yaml:8:"),
        "duplicate names both places: {stdout}"
    );
    assert!(
        lines[2].contains("gori.yaml:3:") && lines[2].contains("colour"),
        "{stdout}"
    );

    std::fs::remove_file(dir.path().join("inventory/gori.yaml")).unwrap();
    std::fs::write(dir.path().join("inventory/georgia.yaml"), INVENTORY).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["check", "-c"])
        .arg(dir.path().join("wardops.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("4 devices in 2 branches of 2 regions"),
        "{stdout}"
    );
}
