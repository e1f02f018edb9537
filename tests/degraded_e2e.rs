//! Latency and loss end to end (issue #12): the real binary, real ICMP on loopback, and
//! an nftables rule of this test's own that drops 30 % of the echo requests to one
//! address (`numgen random mod 10 < 3`). The device stays `up` and becomes `degraded`:
//! one `degraded` warning alert opens, the device JSON, `/metrics`, the live feed and
//! the device page say so; a device beside it with the same thresholds and no loss is
//! not degraded. Lifting the rule clears the condition after the window's hysteresis
//! and resolves the alert as `recovered`.
//!
//! Addresses: 127.121.0.0/16 (nftables rules hold for the whole machine).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Appliance, Blackhole, wait_for, wait_status};

const LOSSY: &str = "127.121.1.1";

/// Probes of four requests every second, so that a probe fails only when all four are
/// dropped (0.8 % at 30 %) and three such in a row (down_after) practically never
/// happen: the device stays up. The thresholds are the old system's, over a 10 s
/// window (40 requests: 30 % loss is far above 10 % in every window).
const SETTINGS: &str = "\
listen: 127.0.0.1:5001
database_url: sqlite://wardops.db
inventory: inventory
probe:
  interval: 1s
  timeout: 300ms
  packets: 4
  packet_spacing: 50ms
  down_after: 3
  up_after: 1
  retry_interval: 300ms
  degraded: { rtt_above: 200ms, loss_above: 10%, window: 10s }
";

const INVENTORY: &str = "\
regions:
  - name: imereti
    branches:
      - name: zestaponi
        devices:
          - { name: z-atm-lossy, address: 127.121.1.1, kind: atm }
          - { name: z-atm-clean, address: 127.121.1.2, kind: atm }
";

fn device(app: &Appliance, name: &str) -> Value {
    app.get_json(&format!("/api/v1/devices/{name}"))
}

/// The `degraded` alerts of `name`, newest first.
fn degraded_alerts(app: &Appliance, name: &str) -> Vec<Value> {
    let page = app.get_json(&format!("/api/v1/alerts?device={name}&limit=100"));
    page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["condition"] == "degraded")
        .cloned()
        .collect()
}

fn metric(app: &Appliance, family: &str, device: &str) -> Option<String> {
    let text = app.try_get("/metrics")?;
    support::device_sample(&text, family, device)
}

/// Reads the live feed in a thread and sends the data of each `degraded` event.
fn degraded_feed(app: &Appliance) -> mpsc::Receiver<Value> {
    let addr = app.base.trim_start_matches("http://").to_string();
    let (tx, rx) = mpsc::channel();
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ")
                && event == "degraded"
                && let Ok(v) = serde_json::from_str::<Value>(data)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    rx
}

#[test]
fn loss_on_one_address_raises_degraded_and_lifting_it_resolves_the_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wardops.yaml"), SETTINGS).unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::write(dir.path().join("inventory/imereti.yaml"), INVENTORY).unwrap();
    let app = Appliance::start(dir.path());
    wait_status(&app, "z-atm-lossy", "up");
    wait_status(&app, "z-atm-clean", "up");
    let feed = degraded_feed(&app);
    let before = device(&app, "z-atm-lossy");
    assert_eq!(before["degraded"], false);
    assert_eq!(
        before["probe"]["degraded"],
        serde_json::json!({"rtt_above_seconds": 0.2, "loss_above": 0.1, "window_seconds": 10.0}),
        "the thresholds from the settings"
    );

    let lossy = Blackhole::with_matches(
        "degraded",
        &[format!(
            "ip daddr {LOSSY} icmp type echo-request numgen random mod 10 < 3"
        )],
    );
    let started = Instant::now();
    let d = wait_for(Duration::from_secs(40), "z-atm-lossy degraded", || {
        let d = device(&app, "z-atm-lossy");
        (d["degraded"] == true).then_some(d)
    });
    let raised_after = started.elapsed();
    assert_eq!(d["ping_status"], "up", "degraded is not a status: {d}");
    let because = &d["degraded_because"];
    assert_eq!(because["above"], serde_json::json!(["loss"]), "{d}");
    let loss = because["loss"].as_f64().unwrap();
    assert!(loss > 0.1 && loss < 0.7, "about 30 %: {d}");
    assert!(d["degraded_since"].is_string(), "{d}");
    // The window (10 s) must fill with the loss before it is above 10 %, about two
    // seconds of it at 30 %; not instantly, and within a window or two.
    assert!(raised_after < Duration::from_secs(25), "{raised_after:?}");

    // One warning alert, open.
    let alerts = wait_for(Duration::from_secs(20), "the degraded alert", || {
        let a = degraded_alerts(&app, "z-atm-lossy");
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["severity"], "warning");
    assert!(alerts[0]["resolved_at"].is_null(), "{:?}", alerts[0]);
    let message = alerts[0]["message"].as_str().unwrap();
    assert!(
        message.contains("loss") && message.contains("above 10%"),
        "{message}"
    );
    // The clean device beside it: same thresholds, not degraded, no alert.
    assert_eq!(device(&app, "z-atm-clean")["degraded"], false);
    assert!(degraded_alerts(&app, "z-atm-clean").is_empty());
    // /metrics, the feed and the page.
    assert_eq!(
        metric(&app, "wardops_device_degraded", "z-atm-lossy").as_deref(),
        Some("1")
    );
    assert_eq!(
        metric(&app, "wardops_device_degraded", "z-atm-clean").as_deref(),
        Some("0")
    );
    let event = feed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (event["device"].as_str(), event["degraded"].as_bool()),
        (Some("z-atm-lossy"), Some(true)),
        "{event}"
    );
    assert_eq!(
        event["degraded_because"]["above"],
        serde_json::json!(["loss"])
    );
    // Counted where counts are shown: beside the statuses, not instead of `up`.
    let status = app.get_json("/api/v1/status");
    assert_eq!(
        (
            status["devices"]["up"].as_u64(),
            status["devices"]["degraded"].as_u64()
        ),
        (Some(2), Some(1)),
        "{status}"
    );
    let dashboard = app.get_json("/api/v1/dashboard");
    assert_eq!(dashboard["by_status"]["degraded"], 1, "{dashboard}");
    let page = app.try_get("/").unwrap();
    assert!(page.contains("◐ 1 degraded"), "the dashboard's counts");
    let page = app.try_get("/devices/z-atm-lossy").unwrap();
    assert!(page.contains("◐ DEGRADED"), "the badge");
    let page = app.try_get("/devices/z-atm-clean").unwrap();
    assert!(!page.contains("◐ DEGRADED"));

    // Stays one condition and one alert while the loss goes on, up all along.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(device(&app, "z-atm-lossy")["degraded"], true);
    assert_eq!(degraded_alerts(&app, "z-atm-lossy").len(), 1);
    assert!(feed.try_recv().is_err(), "no second degraded event");
    let moves = app.get_json("/api/v1/devices/z-atm-lossy/transitions");
    let moves = moves["transitions"].as_array().unwrap();
    assert!(
        moves.iter().all(|t| t["to"] == "up"),
        "never down: {moves:?}"
    );

    // Lift the rule: the loss leaves the window (10 s), the figures stay clear for a
    // whole window (10 s), and the condition clears: not at once, within about 20 s.
    drop(lossy);
    let lifted = Instant::now();
    wait_for(Duration::from_secs(45), "z-atm-lossy cleared", || {
        (device(&app, "z-atm-lossy")["degraded"] == false).then_some(())
    });
    let cleared_after = lifted.elapsed();
    assert!(
        cleared_after > Duration::from_secs(8),
        "hysteresis: cleared after {cleared_after:?}"
    );
    let alerts = wait_for(Duration::from_secs(20), "the alert resolved", || {
        let a = degraded_alerts(&app, "z-atm-lossy");
        a[0]["resolved_at"].is_string().then_some(a)
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["resolution"], "recovered");
    let event = feed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (event["degraded"].as_bool(), event["cleared"].as_str()),
        (Some(false), Some("recovered")),
        "{event}"
    );
    assert_eq!(
        metric(&app, "wardops_device_degraded", "z-atm-lossy").as_deref(),
        Some("0")
    );
    let log = app.log();
    assert!(log.contains("DEGRADED"), "{log}");
}
