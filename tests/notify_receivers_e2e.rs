//! The Alertmanager and e-mail receivers end to end (issue #13): the real binary probing
//! loopback devices with real ICMP, an nftables blackhole taking them down, and real peers
//! — two Alertmanagers (`prometheus-alertmanager`) read back through their own
//! `GET /api/v2/alerts`, and an SMTP server (aiosmtpd).
//!
//! Addresses: 127.119.10.0/24 (Alertmanager), 127.119.20.0/24 (e-mail), 127.119.30.0/24
//! (never probed: `notify-test`).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::alertmanager::Alertmanager;
use support::smtp::Smtp;
use support::{Appliance, Blackhole, FAST_PROBE, wait_for, wait_status};

const NO_FLAPPING: &str = "alerts:\n  flapping_transitions: 1000\n";

fn write(dir: &Path, notifications: &str, inventory: &str) {
    std::fs::write(
        dir.join("wardops.yaml"),
        format!("{FAST_PROBE}{NO_FLAPPING}{notifications}"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(dir.join("inventory/east.yaml"), inventory).unwrap();
}

#[test]
fn a_blackholed_device_fires_in_both_alertmanagers_stays_firing_and_resolves() {
    let (a, b) = (Alertmanager::start(), Alertmanager::start());
    let dir = tempfile::tempdir().unwrap();
    let notifications = format!(
        "\
notifications:
  external_url: http://wardops.test/
  max_backoff: 1s
  receivers:
    - name: noc-am
      alertmanager:
        urls: [{}, {}]
        resend_interval: 2s
",
        a.url, b.url
    );
    // A branch router with a camera behind it: the router is the one alert, the camera
    // unreachable behind it.
    let inventory = "\
regions:
  - name: east
    branches:
      - name: e-01
        parents: [e01-router]
        devices:
          - { name: e01-router, address: 127.119.10.1, kind: router, labels: { tier: gold } }
          - { name: e01-cam, address: 127.119.10.2, kind: camera }
";
    write(dir.path(), &notifications, inventory);
    let app = Appliance::start(dir.path());
    wait_status(&app, "e01-router", "up");
    wait_status(&app, "e01-cam", "up");
    assert!(a.alerts().is_empty() && b.alerts().is_empty());

    let dark = Blackhole::new("notify_am", &["127.119.10.1", "127.119.10.2"]);
    let down_since = wait_status(&app, "e01-router", "down").expect("down_since");
    wait_status(&app, "e01-cam", "unreachable");
    for am in [&a, &b] {
        let alert = wait_for(Duration::from_secs(10), "the alert in Alertmanager", || {
            am.alert("device_down", "e01-router")
                .filter(|a| a["annotations"]["unreachable_behind"] == "1")
        });
        let labels = &alert["labels"];
        assert_eq!(
            *labels,
            serde_json::json!({
                "alertname": "device_down", "device": "e01-router", "region": "east",
                "branch": "e-01", "kind": "router", "severity": labels["severity"],
                "tier": "gold",
            })
        );
        assert!(labels["severity"].is_string(), "{labels}");
        let since: chrono::DateTime<chrono::Utc> = alert["annotations"]["down_since"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let api_since: chrono::DateTime<chrono::Utc> = down_since.parse().unwrap();
        assert!((since - api_since).num_milliseconds().abs() < 1, "{alert}");
        assert!(
            alert["annotations"]["summary"]
                .as_str()
                .unwrap()
                .contains("e01-router")
        );
        // The device's page under external_url.
        assert_eq!(
            alert["generatorURL"],
            "http://wardops.test/devices/e01-router"
        );
        assert_eq!(alert["status"]["state"], "active");
        // The camera behind it has no alert of its own.
        assert!(am.alert("device_down", "e01-cam").is_none());
    }

    // Valid for 8 s per post: still firing 12 s later only because it is resent.
    let first_end = a.alert("device_down", "e01-router").unwrap()["endsAt"].clone();
    std::thread::sleep(Duration::from_secs(12));
    for am in [&a, &b] {
        let alert = am
            .alert("device_down", "e01-router")
            .expect("still firing while down");
        assert_ne!(alert["endsAt"], first_end, "resent with a later endsAt");
    }

    drop(dark);
    wait_status(&app, "e01-router", "up");
    let up_at = Instant::now();
    for am in [&a, &b] {
        wait_for(Duration::from_secs(10), "the alert to resolve", || {
            am.alert("device_down", "e01-router")
                .is_none()
                .then_some(())
        });
    }
    // Long before the 8 s a firing post is valid for: resolved, not expired.
    assert!(
        up_at.elapsed() < Duration::from_secs(6),
        "{:?}",
        up_at.elapsed()
    );
    // And resends do not bring it back.
    std::thread::sleep(Duration::from_secs(3));
    assert!(a.alerts().is_empty() && b.alerts().is_empty());
    let status = app.get_json("/api/v1/notifications");
    assert!(status.to_string().contains("noc-am"), "{status}");
}

#[test]
fn a_branch_outage_is_one_mail_and_its_end_another() {
    let smtp = Smtp::start();
    let dir = tempfile::tempdir().unwrap();
    let notifications = format!(
        "\
notifications:
  external_url: http://wardops.test
  max_backoff: 1s
  receivers:
    - name: noc-mail
      email:
        smtp: {{ host: 127.0.0.1, port: {}, tls: none }}
        from: wardops <wardops@bank.example>
        to: [noc@bank.example]
  routes:
    - receivers: [noc-mail]
      group_wait: 3s
      group_interval: 6s
",
        smtp.port
    );
    let inventory = "\
regions:
  - name: east
    branches:
      - name: e-02
        devices:
          - { name: e02-atm-1, address: 127.119.20.1, kind: atm }
          - { name: e02-atm-2, address: 127.119.20.2, kind: atm }
          - { name: e02-atm-3, address: 127.119.20.3, kind: atm }
";
    write(dir.path(), &notifications, inventory);
    let app = Appliance::start(dir.path());
    for d in ["e02-atm-1", "e02-atm-2", "e02-atm-3"] {
        wait_status(&app, d, "up");
    }
    let dark = Blackhole::new(
        "notify_mail",
        &["127.119.20.1", "127.119.20.2", "127.119.20.3"],
    );
    for d in ["e02-atm-1", "e02-atm-2", "e02-atm-3"] {
        wait_status(&app, d, "down");
    }
    let mails = smtp.wait_mails(1, Duration::from_secs(15));
    let down = &mails[0];
    assert_eq!(
        down.header("Subject"),
        Some("[wardops] east/e-02: 3 devices down"),
        "{}",
        app.log()
    );
    assert_eq!(down.header("From"), Some("wardops <wardops@bank.example>"));
    assert_eq!(down.header("To"), Some("noc@bank.example"));
    let key = down
        .header("X-Wardops-Idempotency-Key")
        .unwrap()
        .to_string();
    assert!(key.starts_with("wardops-noc-mail-"), "{key}");
    assert_eq!(
        down.header("Message-ID").unwrap(),
        format!("<{key}@bank.example>")
    );
    assert_eq!(down.content_type, "multipart/alternative");
    let (plain, html) = (
        down.part("text/plain").unwrap(),
        down.part("text/html").unwrap(),
    );
    for n in 1..=3 {
        let d = format!("e02-atm-{n}");
        assert!(
            plain.contains(&format!("* {d} (atm, 127.119.20.{n})")),
            "{plain}"
        );
        let link =
            format!("<a href=\"http:&#x2f;&#x2f;wardops.test&#x2f;devices&#x2f;{d}\">{d}</a>");
        assert!(html.contains(&link), "{html}");
    }

    // Back within a probe interval of each other, and within the group_interval after the
    // first mail: the three resolves are one message.
    drop(dark);
    for d in ["e02-atm-1", "e02-atm-2", "e02-atm-3"] {
        wait_status(&app, d, "up");
    }
    let mails = smtp.wait_mails(2, Duration::from_secs(15));
    let up = &mails[1];
    assert_eq!(
        up.header("Subject"),
        Some("[wardops] east/e-02: resolved, 3 devices up again")
    );
    assert_ne!(up.header("X-Wardops-Idempotency-Key").unwrap(), key);
    assert!(up.part("text/plain").unwrap().contains("RESOLVED (3)"));
    // One mail each, no more.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(smtp.mails().len(), 2, "{:#?}", smtp.mails());
}

#[test]
fn notify_test_reaches_both_alertmanagers_and_the_mailbox() {
    let (a, b) = (Alertmanager::start(), Alertmanager::start());
    let smtp = Smtp::start();
    let dir = tempfile::tempdir().unwrap();
    let notifications = format!(
        "\
notifications:
  receivers:
    - name: noc-am
      alertmanager:
        urls: [{}, {}]
    - name: noc-mail
      email:
        smtp: {{ host: 127.0.0.1, port: {}, tls: none }}
        from: wardops@bank.example
        to: [noc@bank.example]
  routes:
    - receivers: [noc-mail]
",
        a.url, b.url, smtp.port
    );
    let inventory = "regions:\n  - name: east\n    branches:\n      - name: e-03\n        devices:\n          - { name: e03-atm, address: 127.119.30.1, kind: atm }\n";
    write(dir.path(), &notifications, inventory);
    let run = |receiver: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wardops"))
            .args(["notify-test", receiver, "-c"])
            .arg(dir.path().join("wardops.yaml"))
            .output()
            .unwrap()
    };
    let out = run("noc-am");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("noc-am: test message delivered"), "{said}");
    for am in [&a, &b] {
        let alert = am
            .alerts()
            .into_iter()
            .find(|x| x["labels"]["alertname"] == "WardopsTest");
        let alert = alert.expect("the test alert in both");
        assert_eq!(alert["labels"]["receiver"], "noc-am");
    }
    let out = run("noc-mail");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mails = smtp.wait_mails(1, Duration::from_secs(10));
    assert_eq!(
        mails[0].header("Subject"),
        Some("[wardops] test message to receiver noc-mail")
    );
    // A receiver that is not there says so and fails.
    drop(smtp);
    let out = run("noc-mail");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("noc-mail: not delivered"));
}
