//! Acknowledging end to end (issue #15): the real binary, real ICMP on loopback, nftables
//! making a device stop answering. Its alert opens; an operator acknowledges it over the
//! API with a comment; `/api/v1/alerts` and the live feed (`alert_updated`, to a stream
//! opened before) carry who, when and the comment; the audit log has the write; an
//! un-acknowledgement clears it everywhere; an ack of the alert once resolved is refused.
//!
//! The appliance runs with the test users file (`support::write_users`: anonymous
//! reading on, writes need a user): the operator acknowledges with basic auth, the
//! admin reads the audit log; the anonymous viewer and a viewer are refused.
//!
//! Addresses: 127.141.0.0/16 (nftables rules hold for the whole machine).

mod support;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Appliance, Blackhole, wait_for, wait_status, write_fast_config};

const ADDRESS: &str = "127.141.0.5";
/// The operator of the test users file, whose name an acknowledgement carries.
const OPERATOR: &str = "operator";

/// A request as the operator.
fn as_operator(r: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
    r.basic_auth(OPERATOR, Some("secret"))
}

fn post(app: &Appliance, path: &str, body: Value) -> (u16, Value) {
    let r = as_operator(reqwest::blocking::Client::new().post(app.url(path)))
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// The events of a stream opened now, each as (name, data), as they arrive.
fn events(app: &Appliance) -> mpsc::Receiver<(String, Value)> {
    let (tx, rx) = mpsc::channel();
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap();
    let resp = as_operator(client.get(app.url("/api/v1/events")))
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    std::thread::spawn(move || {
        let mut name = String::new();
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                let data = serde_json::from_str(d).unwrap_or(Value::Null);
                if tx.send((std::mem::take(&mut name), data)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The next `alert_updated` event of alert `id` within 10 s.
fn next_update(rx: &mpsc::Receiver<(String, Value)>, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (name, data) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no alert_updated of alert {id} within 10 s"));
        if name == "alert_updated" && data["id"] == id {
            return data;
        }
    }
}

fn alert(app: &Appliance, id: i64) -> Value {
    let page = app.get_json("/api/v1/alerts?limit=1000");
    page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("alert {id} not listed: {page}"))
}

#[test]
fn an_operator_acknowledges_a_dark_devices_alert_and_every_open_page_hears_of_it() {
    let dir = tempfile::tempdir().unwrap();
    write_fast_config(dir.path(), "guria", &[("g-atm-1", ADDRESS)]);
    let settings = std::fs::read_to_string(dir.path().join("wardops.yaml")).unwrap();
    std::fs::write(
        dir.path().join("wardops.yaml"),
        format!("{settings}{}", support::ACCESS),
    )
    .unwrap();
    support::write_users(dir.path());
    let app = Appliance::start(dir.path());
    wait_status(&app, "g-atm-1", "up");
    let dark = Blackhole::new("ack", &[ADDRESS]);
    wait_status(&app, "g-atm-1", "down");
    let id = wait_for(Duration::from_secs(10), "the device_down alert", || {
        let page = app.get_json("/api/v1/alerts?status=active");
        page["alerts"].as_array()?.iter().find_map(|a| {
            (a["device"] == "g-atm-1" && a["condition"] == "device_down")
                .then(|| a["id"].as_i64())
                .flatten()
        })
    });
    let a = alert(&app, id);
    assert!(a["acknowledged_by"].is_null() && a["acknowledged_comment"].is_null());

    // Writing needs an operator: the anonymous viewer and a viewer are refused.
    let ack_url = app.url(&format!("/api/v1/alerts/{id}/ack"));
    let c = reqwest::blocking::Client::new();
    let anonymous = c
        .post(&ack_url)
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let viewer = c
        .post(&ack_url)
        .basic_auth("viewer", Some("secret"))
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(viewer.status().as_u16(), 403);

    // A page open before the acknowledgement: its stream hears of it.
    let feed = events(&app);
    let comment = "ISP ticket <42>: fibre cut, van on the way";
    let (status, answer) = post(
        &app,
        &format!("/api/v1/alerts/{id}/ack"),
        serde_json::json!({ "comment": comment }),
    );
    assert_eq!(status, 202, "{answer}");
    let event = next_update(&feed, id);
    assert_eq!(event["acknowledged_by"], OPERATOR);
    assert_eq!(event["acknowledged_comment"], comment);
    assert_eq!(event["device"], "g-atm-1");
    assert_eq!(event["region"], "guria", "scoped like every alert event");
    assert!(event["acknowledged_at"].as_str().unwrap().ends_with('Z'));
    assert!(event["resolved_at"].is_null());
    let a = alert(&app, id);
    assert_eq!(a["acknowledged_by"], OPERATOR);
    assert_eq!(a["acknowledged_comment"], comment);
    assert_eq!(a["acknowledged_at"], event["acknowledged_at"]);

    // The audit log (admin) has the write.
    let audit_url = app.url("/api/v1/audit?action=ack");
    let refused = as_operator(c.get(&audit_url)).send().unwrap();
    assert_eq!(
        refused.status().as_u16(),
        403,
        "the audit log is the admins'"
    );
    let audit: Value = c
        .get(&audit_url)
        .basic_auth("admin", Some("secret"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["user"], OPERATOR);
    assert_eq!(entry["via"], "basic");
    assert_eq!(entry["address"], "127.0.0.1");
    assert_eq!(entry["detail"], comment);
    assert!(
        entry["target"]
            .as_str()
            .unwrap()
            .contains(&format!("alert {id}"))
    );

    // Taken back: cleared in the feed and the API.
    let (status, answer) = post(
        &app,
        &format!("/api/v1/alerts/{id}/unack"),
        serde_json::json!({}),
    );
    assert_eq!(status, 202, "{answer}");
    let event = next_update(&feed, id);
    assert!(event["acknowledged_by"].is_null() && event["acknowledged_at"].is_null());
    assert!(alert(&app, id)["acknowledged_by"].is_null());

    // Resolved: an acknowledgement now is refused, and nothing sticks.
    drop(dark);
    wait_status(&app, "g-atm-1", "up");
    wait_for(Duration::from_secs(10), "the alert to resolve", || {
        (!alert(&app, id)["resolved_at"].is_null()).then_some(())
    });
    let (status, answer) = post(
        &app,
        &format!("/api/v1/alerts/{id}/ack"),
        serde_json::json!({ "comment": "late" }),
    );
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("is resolved"));
    assert!(alert(&app, id)["acknowledged_by"].is_null());
}
