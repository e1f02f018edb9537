//! Notifications to a webhook, end to end (issue #13): the real binary, real ICMP on
//! loopback, nftables making devices stop answering, and a webhook receiver written in
//! the test (`webhook_sink`). A dark branch is one signed message; still dark, it is
//! repeated; back, one resolved message. `wardops notify-test` sends a signed test
//! message. The surfaces (`/api/v1/notifications`, `/api/v1/status`, `/metrics`) say so.
//!
//! Addresses: 127.118.0.0/16.

mod support;
mod webhook_sink;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{Appliance, Blackhole, FAST_PROBE, wait_for, wait_status};
use webhook_sink::{Received, Sink};

const SECRET: &str = "correct horse battery staple";

fn settings(sink: &Sink, route: &str) -> String {
    format!(
        "\
inventory: inventory
{FAST_PROBE}notifications:
  external_url: https://wardops.bank.example
  receivers:
    - name: hook
      webhook:
        url: {}
        secret_file: hook.secret
        timeout: 2s
  routes:
    - receivers: [hook]
{route}",
        sink.url()
    )
}

/// Branch e-01 of four devices at 127.118.<net>.1-4, branch e-02 of one at
/// 127.118.<net+1>.1: each test its own `net` (nftables rules hold for the whole machine).
fn write(dir: &Path, settings: &str, net: u8) {
    std::fs::write(dir.join("wardops.yaml"), settings).unwrap();
    std::fs::write(dir.join("hook.secret"), format!("{SECRET}\n")).unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    let mut text = String::from(
        "regions:\n  - name: east\n    branches:\n      - name: e-01\n        devices:\n",
    );
    for i in 1..=4 {
        text += &format!(
            "          - {{ name: e01-atm-{i}, address: 127.118.{net}.{i}, kind: atm, labels: {{ tier: gold }} }}\n"
        );
    }
    text += &format!(
        "      - name: e-02\n        devices:\n          - {{ name: e02-atm-1, address: 127.118.{}.1, kind: atm }}\n",
        net + 1
    );
    std::fs::write(dir.join("inventory/east.yaml"), text).unwrap();
}

fn devices(m: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = m["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["device"].as_str().unwrap().to_string(),
                n["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn branch(state: &str) -> Vec<(String, String)> {
    (1..=4)
        .map(|i| (format!("e01-atm-{i}"), state.to_string()))
        .collect()
}

#[test]
fn a_dark_branch_is_one_signed_message_then_a_repeat_then_one_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let route = "      group_wait: 3s\n      group_interval: 1s\n      repeat_interval: 6s\n";
    write(dir.path(), &settings(&sink, route), 1);
    let app = Appliance::start(dir.path());
    wait_status(&app, "e01-atm-4", "up");
    let dark = Blackhole::new(
        "notify_branch",
        &["127.118.1.1", "127.118.1.2", "127.118.1.3", "127.118.1.4"],
    );
    let first = wait_for(Duration::from_secs(20), "the branch's message", || {
        sink.delivered().first().cloned()
    });
    let m = first.json();
    assert_eq!(
        devices(&m),
        branch("firing"),
        "one message for the branch: {m}"
    );
    assert_eq!(m["status"], "firing");
    assert_eq!(m["group"]["branch"], "e-01");
    assert_eq!(m["group"]["region"], "east");
    assert_eq!(m["receiver"], "hook");
    assert_eq!(m["firing"], 4);
    let n = &m["notices"][0];
    assert_eq!(n["condition"], "device_down");
    assert_eq!(n["severity"], "critical");
    assert_eq!(n["labels"]["tier"], "gold");
    assert!(
        n["url"]
            .as_str()
            .unwrap()
            .starts_with("https://wardops.bank.example/devices/e01-atm-"),
        "{n}"
    );
    assert!(n["down_since"].is_string(), "{n}");
    assert!(first.signed_with(SECRET), "the signature verifies");
    assert!(!first.signed_with("another secret"));
    assert_eq!(first.headers["content-type"], "application/json");
    assert_eq!(first.key(), m["idempotency_key"]);
    assert!(first.key().starts_with("wardops-hook-"));
    // Still dark: the same alerts again after repeat_interval, under a new key.
    let repeat = wait_for(Duration::from_secs(20), "the repeat", || {
        sink.delivered().get(1).cloned()
    });
    assert_eq!(devices(&repeat.json()), branch("firing"));
    assert_ne!(repeat.key(), first.key());
    assert!(repeat.signed_with(SECRET));
    drop(dark);
    let resolved = wait_for(Duration::from_secs(20), "the resolution", || {
        sink.delivered()
            .into_iter()
            .find(|r| r.json()["status"] == "resolved")
    });
    let r = resolved.json();
    assert_eq!(devices(&r), branch("resolved"), "one message: {r}");
    assert!(r["notices"][0]["resolved_at"].is_string());
    // The other branch never went dark: never told of.
    let all = sink.delivered();
    assert!(
        all.iter().all(|m| devices(&m.json())
            .iter()
            .all(|(d, _)| d.starts_with("e01-"))),
        "{all:?}"
    );
    let keys: std::collections::HashSet<&str> = all.iter().map(Received::key).collect();
    assert_eq!(keys.len(), all.len(), "every message its own key");
    // The surfaces.
    let page = app.get_json("/api/v1/notifications");
    let hook = &page["receivers"][0];
    assert_eq!(hook["name"], "hook");
    assert_eq!(hook["type"], "webhook");
    assert_eq!(hook["failing"], false);
    assert!(hook["last_success_at"].is_string());
    let newest = &page["messages"][0];
    assert_eq!(newest["status"], "delivered", "{page}");
    assert_eq!(newest["idempotency_key"], resolved.key());
    assert_eq!(newest["resolved"], 4);
    let status = app.get_json("/api/v1/status");
    assert_eq!(status["notifications"]["receivers"], 1);
    assert_eq!(status["notifications"]["failing"], serde_json::json!([]));
    let metrics = app.try_get("/metrics").unwrap();
    let sent = metric(
        &metrics,
        "wardops_notifications_sent_total{receiver=\"hook\"}",
    );
    assert!(sent >= 3.0, "{sent}");
    assert!(
        metric(
            &metrics,
            "wardops_notification_delivery_latency_seconds_count{receiver=\"hook\"}"
        ) >= 3.0
    );
    assert!(
        metric(
            &metrics,
            "wardops_notifications_last_success_timestamp_seconds{receiver=\"hook\"}"
        ) > 1.7e9
    );
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_failing_receiver_is_reported_and_does_not_fail_readyz() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    sink.set_down(true);
    write(
        dir.path(),
        &settings(&sink, "      group_wait: 0s\n      group_by: [device]\n"),
        3,
    );
    let app = Appliance::start(dir.path());
    wait_status(&app, "e02-atm-1", "up");
    let _dark = Blackhole::new("notify_failing", &["127.118.4.1"]);
    wait_for(Duration::from_secs(20), "two refused attempts", || {
        (sink.all().len() >= 2).then_some(())
    });
    let page = wait_for(Duration::from_secs(10), "the attempts recorded", || {
        let page = app.get_json("/api/v1/notifications?receiver=hook");
        (page["messages"][0]["attempts"].as_i64() >= Some(1)).then_some(page)
    });
    assert_eq!(page["receivers"][0]["failing"], true, "{page}");
    assert!(
        page["receivers"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{page}"
    );
    assert_eq!(page["messages"][0]["status"], "pending");
    assert!(page["messages"][0]["attempts"].as_i64().unwrap() >= 1);
    let status = app.get_json("/api/v1/status");
    assert_eq!(
        status["notifications"]["failing"],
        serde_json::json!(["hook"])
    );
    assert!(
        app.try_get("/readyz").is_some(),
        "a failing receiver is not a readiness reason"
    );
    assert!(
        reqwest::blocking::get(app.url("/api/v1/notifications?receiver=nobody"))
            .unwrap()
            .status()
            == 400
    );
    // Back: the message goes, with the key its refused attempts had.
    sink.set_down(false);
    let delivered = wait_for(Duration::from_secs(20), "the delivery", || {
        sink.delivered().first().cloned()
    });
    assert_eq!(delivered.key(), sink.all()[0].key());
    assert_eq!(delivered.body, sink.all()[0].body, "the same message");
}

#[test]
fn notify_test_sends_a_signed_test_message() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    write(dir.path(), &settings(&sink, ""), 5);
    let run = |receiver: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
            .args(["notify-test", receiver, "-c"])
            .arg(dir.path().join("wardops.yaml"))
            .output()
            .unwrap()
    };
    let out = run("hook");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let got = sink.delivered();
    assert_eq!(got.len(), 1);
    let m = got[0].json();
    assert_eq!(m["test"], true);
    assert_eq!(m["notices"], serde_json::json!([]));
    assert!(got[0].signed_with(SECRET));
    assert!(got[0].key().starts_with("wardops-hook-test-"));
    let out = run("nobody");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no receiver named \"nobody\""));
    sink.set_down(true);
    let out = run("hook");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("503"));
}

#[test]
fn check_names_the_place_of_a_bad_route() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    write(
        dir.path(),
        &settings(&sink, "").replace("    - receivers: [hook]", "    - receivers: [hokk]"),
        7,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["check", "-c"])
        .arg(dir.path().join("wardops.yaml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("wardops.yaml:18:19: notifications.routes[0].receivers: unknown receiver \"hokk\" (did you mean \"hook\"?)"),
        "{text}"
    );
}

/// TLS is verified: a receiver whose certificate no trusted authority signed (here a
/// self-signed one, served by `openssl s_server`) gets nothing, and the failure says why.
#[tokio::test]
async fn a_webhook_over_tls_with_an_untrusted_certificate_is_not_sent() {
    use wardops::config::settings::notify::WebhookReceiver;
    use wardops::notify::{Deliver, DeliveryError, Message, webhook::Webhook};
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = support::free_port();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &port.to_string()])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(10), "the TLS server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let hook = Webhook::new(
        "tls",
        &WebhookReceiver {
            url: format!("https://127.0.0.1:{port}/hook").parse().unwrap(),
            secret: None,
            timeout: Duration::from_secs(5),
        },
    )
    .unwrap();
    let message = Message {
        receiver: "tls".into(),
        idempotency_key: "wardops-tls-1".into(),
        group: Default::default(),
        notices: vec![],
        summarised: 0,
        test: true,
    };
    let outcome = hook.deliver(&message).await;
    let _ = server.kill();
    let _ = server.wait();
    match outcome {
        Err(DeliveryError::Retry(e)) => {
            let e = e.to_lowercase();
            assert!(e.contains("certificate"), "{e}");
        }
        other => panic!("delivered over an untrusted certificate: {other:?}"),
    }
}

#[test]
fn check_warns_of_a_matcher_no_device_has() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    write(
        dir.path(),
        &settings(
            &sink,
            "      match: { region: easst, labels: { tier: gold } }\n",
        ),
        7,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["check", "-c"])
        .arg(dir.path().join("wardops.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "a warning, not an error");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning: notifications.routes[0].match.region: \"easst\" matches no device of the inventory (did you mean \"east\"?)"),
        "{text}"
    );
    assert!(
        !text.contains("labels.tier"),
        "gold is a tier of the inventory: {text}"
    );
}
