//! Probe now end to end (issue #15): the real binary, real ICMP on loopback, nftables
//! making a device stop answering. Devices are probed every 30 s, so what a request
//! sees within a second is its own probe: an operator's probe now answers with the
//! reply's round trip (and decides an unknown device up), then "no reply" once the
//! device is dark; a second ask within 5 s is refused with `Retry-After`, as is the
//! eleventh of one user within a minute; viewers and anonymous callers are refused;
//! the device page's button posts back to it; each probe now is in the audit log. And
//! with no prober running for the device, the ask ends in a 504, not a hang.
//!
//! Addresses: 127.143.0.0/16 (nftables rules hold for the whole machine).

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::blocking::Client;
use serde_json::Value;
use support::{Appliance, Blackhole, wait_for};

const DEVICES: usize = 11;

fn address(i: usize) -> String {
    format!("127.143.0.{}", i + 1)
}

fn write_config(dir: &std::path::Path) {
    std::fs::write(
        dir.join("wardops.yaml"),
        format!(
            "probe:\n  interval: 30s\n  timeout: 300ms\n  packets: 1\n  down_after: 2\n  up_after: 1\n  retry_interval: 300ms\n{}",
            support::ACCESS
        ),
    )
    .unwrap();
    support::write_users(dir);
    let mut inventory =
        "regions:\n  - name: kakheti\n    branches:\n      - name: telavi\n        devices:\n"
            .to_string();
    for i in 0..DEVICES {
        inventory.push_str(&format!(
            "          - {{ name: k-atm-{i}, address: {}, kind: atm }}\n",
            address(i)
        ));
    }
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(dir.join("inventory/kakheti.yaml"), inventory).unwrap();
}

/// POST probe now of `device` as `user` (None: anonymous): status, Retry-After, body.
fn probe(app: &Appliance, user: Option<&str>, device: &str) -> (u16, Option<String>, Value) {
    let mut r = Client::new()
        .post(app.url(&format!("/api/v1/devices/{device}/probe")))
        .timeout(Duration::from_secs(10));
    if let Some(user) = user {
        r = r.basic_auth(user, Some("secret"));
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, r.json().unwrap_or(Value::Null))
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|t| t.parse().unwrap())
}

fn last_probe_at(app: &Appliance, device: &str) -> Option<DateTime<Utc>> {
    let d = app.get_json(&format!("/api/v1/devices/{device}"));
    time(&d.get("device").unwrap_or(&d)["last_probe_at"])
}

#[test]
fn an_operator_probes_a_device_now_and_sees_what_the_probe_saw() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());

    // Who may not.
    assert_eq!(probe(&app, None, "k-atm-0").0, 401);
    assert_eq!(probe(&app, Some("viewer"), "k-atm-0").0, 403);
    assert_eq!(probe(&app, Some("operator"), "nobody").0, 404);

    // A device not yet probed (its slot is up to 30 s away) answers now.
    let (status, _, answer) = probe(&app, Some("operator"), "k-atm-0");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["device"], "k-atm-0");
    assert_eq!(answer["answered"], true);
    assert!(answer["rtt_ms"].as_f64().unwrap() > 0.0, "{answer}");
    assert_eq!(answer["loss"], 0.0);
    assert_eq!(
        answer["ping_status"], "up",
        "up_after 1: its first answer decides"
    );
    assert_eq!(last_probe_at(&app, "k-atm-0"), time(&answer["probed_at"]));

    // Asked again at once: refused, and told when to come back.
    let (status, retry, answer) = probe(&app, Some("operator"), "k-atm-0");
    assert_eq!(status, 429, "{answer}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=5).contains(&retry), "{retry}");

    // Dark: the next probe now sees no reply; one failed probe is not an outage yet.
    let dark = Blackhole::new("probenow", &[&address(0)]);
    std::thread::sleep(Duration::from_secs(retry));
    let started = Instant::now();
    let (status, _, answer) = wait_for(Duration::from_secs(3), "the device's window", || {
        let r = probe(&app, Some("admin"), "k-atm-0");
        (r.0 != 429).then_some(r)
    });
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["answered"], false, "{answer}");
    assert!(answer["rtt_ms"].is_null());
    assert_eq!(answer["loss"], 1.0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the answer waits for its probe (300 ms timeout), not for a slot"
    );
    // Its retry 300 ms later confirms the outage (down after 2).
    support::wait_status(&app, "k-atm-0", "down");
    drop(dark);

    // The operator's tenth of the minute goes through; the eleventh does not.
    for i in 1..DEVICES - 1 {
        let (status, _, answer) = probe(&app, Some("operator"), &format!("k-atm-{i}"));
        assert_eq!(status, 200, "k-atm-{i}: {answer}");
    }
    let (status, retry, answer) = probe(&app, Some("operator"), &format!("k-atm-{}", DEVICES - 1));
    assert_eq!(status, 429, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("per user"),
        "{answer}"
    );
    assert!(retry.unwrap().parse::<u64>().unwrap() > 5);
    let (status, _, _) = probe(&app, Some("admin"), &format!("k-atm-{}", DEVICES - 1));
    assert_eq!(status, 200, "another user is not limited by it");

    // The page's button: a form post answered with a 303 back to the page.
    let page = Client::new()
        .get(app.url("/devices/k-atm-1"))
        .basic_auth("operator", Some("secret"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains(r#"action="/api/v1/devices/k-atm-1/probe""#),
        "the operator sees the button"
    );
    let viewer_page = Client::new()
        .get(app.url("/devices/k-atm-1"))
        .basic_auth("viewer", Some("secret"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!viewer_page.contains("Probe now"), "a viewer does not");
    std::thread::sleep(Duration::from_secs(5));
    let before = last_probe_at(&app, "k-atm-1");
    let posted = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/api/v1/devices/k-atm-1/probe"))
        .basic_auth("admin", Some("secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("back=%2Fdevices%2Fk-atm-1")
        .send()
        .unwrap();
    assert_eq!(posted.status().as_u16(), 303);
    assert_eq!(posted.headers()["location"], "/devices/k-atm-1");
    assert_ne!(
        last_probe_at(&app, "k-atm-1"),
        before,
        "probed before the 303"
    );

    // Every probe now is in the audit log.
    let audit: Value = Client::new()
        .get(app.url("/api/v1/audit?action=probe_now&limit=100"))
        .basic_auth("admin", Some("secret"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1 + 1 + (DEVICES - 2) + 1 + 1, "{audit}");
    assert!(entries.iter().any(|e| e["user"] == "admin"
        && e["target"] == "device k-atm-0"
        && e["detail"] == "no reply"));
    assert!(entries.iter().any(|e| e["user"] == "operator"
        && e["target"] == "device k-atm-0"
        && e["detail"].as_str().unwrap().starts_with("answered in")));
}

/// No scheduler task runs for the device (a stalled prober): the ask is answered with a
/// 504 once the probe's own longest duration and the slack have passed, not left hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_running_prober_the_answer_is_a_504_in_bounded_time() {
    use std::sync::Arc;
    use wardops::access::{Principal, Role, Scope, Via};

    let inventory = wardops::config::load::build_inventory(
        &[wardops::config::load::Source {
            path: "inventory/s.yaml".into(),
            text: "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n          - { name: stuck, address: 127.143.9.1, kind: atm }\n".into(),
        }],
        &Default::default(),
    )
    .unwrap();
    let state = wardops::state::State::new(Arc::new(wardops::state::SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _started) = support::local_context(&state, dir.path()).await;
    let ctx = Arc::new(ctx);
    let mut req = hyper::Request::post("/api/v1/devices/stuck/probe")
        .body(bytes::Bytes::new())
        .unwrap();
    req.extensions_mut().insert(Principal {
        name: "oscar".into(),
        role: Role::Operator,
        scope: Scope::all(),
        via: Via::Basic,
        address: std::net::Ipv4Addr::LOCALHOST.into(),
    });
    let started = Instant::now();
    let response = wardops::api::probe_now::post(ctx, req).await;
    let took = started.elapsed();
    assert_eq!(response.status().as_u16(), 504);
    // The default probe: 2 packets 200 ms apart, 1 s timeout; 2 s of slack.
    assert!(
        took >= Duration::from_millis(3_200) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
