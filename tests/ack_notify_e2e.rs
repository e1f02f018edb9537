//! Acknowledged alerts and notifications, end to end: the real binary, real ICMP on
//! loopback, nftables, and a webhook receiver written in the test. A dark device's alert
//! is told, then repeated every `repeat_interval`; once an operator acknowledges it the
//! repeats stop; its resolution still goes out.
//!
//! Addresses: 127.141.1.0/24 (see `ack_e2e.rs` for the rest of 127.141.0.0/16).

mod support;
mod webhook_sink;

use std::time::Duration;

use support::{Appliance, Blackhole, FAST_PROBE, wait_for, wait_status};
use webhook_sink::Sink;

const ADDRESS: &str = "127.141.1.7";
const REPEAT: Duration = Duration::from_secs(2);

#[test]
fn an_acknowledged_alert_is_not_repeated_and_its_resolution_still_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let settings = format!(
        "inventory: inventory\n{FAST_PROBE}{}notifications:\n  receivers:\n    - name: hook\n      webhook:\n        url: {}\n        secret_file: hook.secret\n        timeout: 2s\n  routes:\n    - receivers: [hook]\n      group_wait: 0s\n      group_interval: 1s\n      repeat_interval: {}s\n",
        support::ACCESS,
        sink.url(),
        REPEAT.as_secs()
    );
    support::write_users(dir.path());
    std::fs::write(dir.path().join("wardops.yaml"), settings).unwrap();
    std::fs::write(dir.path().join("hook.secret"), "s3cret\n").unwrap();
    std::fs::create_dir_all(dir.path().join("inventory")).unwrap();
    std::fs::write(
        dir.path().join("inventory/imereti.yaml"),
        format!(
            "regions:\n  - name: imereti\n    branches:\n      - name: i-01\n        devices:\n          - {{ name: i01-atm-1, address: {ADDRESS}, kind: atm }}\n"
        ),
    )
    .unwrap();
    let app = Appliance::start(dir.path());
    wait_status(&app, "i01-atm-1", "up");
    let dark = Blackhole::new("ack_notify", &[ADDRESS]);
    // Told, then repeated: the repeats are there to be stopped.
    wait_for(
        Duration::from_secs(20),
        "a first message and a repeat",
        || (sink.delivered().len() >= 2).then_some(()),
    );
    let id = app.get_json("/api/v1/alerts?status=active")["alerts"][0]["id"]
        .as_i64()
        .unwrap();
    let r = reqwest::blocking::Client::new()
        .post(app.url(&format!("/api/v1/alerts/{id}/ack")))
        .basic_auth("operator", Some("secret"))
        .json(&serde_json::json!({ "comment": "on it" }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    wait_for(Duration::from_secs(5), "the acknowledgement", || {
        let a = app.get_json("/api/v1/alerts?status=active");
        (!a["alerts"][0]["acknowledged_by"].is_null()).then_some(())
    });
    // The dispatcher hears of it from the same commit report; allow it a moment.
    std::thread::sleep(Duration::from_millis(500));
    let told = sink.delivered().len();
    std::thread::sleep(REPEAT * 3);
    assert_eq!(
        sink.delivered().len(),
        told,
        "no repeat of an acknowledged alert in {:?}",
        REPEAT * 3
    );
    drop(dark);
    let resolved = wait_for(Duration::from_secs(20), "the resolution", || {
        sink.delivered()
            .into_iter()
            .skip(told)
            .find(|m| m.json()["status"] == "resolved")
    });
    assert_eq!(resolved.json()["notices"][0]["alert_id"], id);
}
