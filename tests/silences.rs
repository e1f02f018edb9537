//! Silences end to end (issue #15): the real binary, real ICMP on loopback, nftables
//! making devices stop answering. An operator silences one device over the API; dark
//! beside an unsilenced one, it is recorded down in maintenance and opens no alert while
//! its neighbour's alert opens. The silence is stored: a restart keeps it (and keeps the
//! alert shut). Ended early, the alert opens at once. Viewers and anonymous callers are
//! refused; an operator limited to a region silences and sees only there; every write is
//! in the audit log.
//!
//! Addresses: 127.142.0.0/16 (nftables rules hold for the whole machine).

mod support;

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};
use support::{Appliance, Blackhole, FAST_PROBE, SECRET_HASH, wait_for, wait_status};

/// `oscar` operates everywhere, `nino` in `east` only; `vera` views, `ada` administers.
fn write_config(dir: &std::path::Path) {
    std::fs::write(
        dir.join("wardops.yaml"),
        format!("{FAST_PROBE}{}", support::ACCESS),
    )
    .unwrap();
    std::fs::write(
        dir.join("users.yml"),
        format!(
            "basic_auth_users:\n  vera: {SECRET_HASH}\n  oscar: {SECRET_HASH}\n  nino: {SECRET_HASH}\n  ada: {SECRET_HASH}\nusers:\n  oscar: {{ role: operator }}\n  nino: {{ role: operator, regions: [east] }}\n  ada: {{ role: admin }}\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(
        dir.join("inventory/all.yaml"),
        "regions:\n  - name: east\n    branches:\n      - name: east1\n        devices:\n          - { name: e-atm-1, address: 127.142.1.1, kind: atm }\n          - { name: e-atm-2, address: 127.142.1.2, kind: atm }\n  - name: west\n    branches:\n      - name: west1\n        devices:\n          - { name: w-atm-1, address: 127.142.2.1, kind: atm }\n",
    )
    .unwrap();
}

fn as_user(r: RequestBuilder, user: &str) -> RequestBuilder {
    r.basic_auth(user, Some("secret"))
}

fn post(app: &Appliance, user: Option<&str>, path: &str, body: Value) -> (u16, Value) {
    let mut r = Client::new().post(app.url(path)).json(&body);
    if let Some(user) = user {
        r = as_user(r, user);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn get(app: &Appliance, user: &str, path: &str) -> Value {
    as_user(Client::new().get(app.url(path)), user)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// The device's JSON.
fn device(app: &Appliance, name: &str) -> Value {
    let d = get(app, "vera", &format!("/api/v1/devices/{name}"));
    d.get("device").cloned().unwrap_or(d)
}

/// The ids of the silences `user` is shown.
fn listed(app: &Appliance, user: &str) -> Vec<String> {
    get(app, user, "/api/v1/silences")["silences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// The open `device_down` alert of `device`, if any.
fn open_alert(app: &Appliance, device: &str) -> Option<Value> {
    let page = app.get_json("/api/v1/alerts?status=active&limit=1000");
    page["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["device"] == device && a["condition"] == "device_down")
        .cloned()
}

#[test]
fn a_silenced_device_goes_dark_without_an_alert_until_the_silence_is_ended() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    wait_status(&app, "e-atm-1", "up");
    wait_status(&app, "e-atm-2", "up");

    // Who may not: anonymous (401), a viewer (403), a region-limited operator outside
    // their region (nothing of it exists for them).
    let ask = json!({ "device": "e-atm-1", "duration": "1h", "comment": "router swap <b>" });
    assert_eq!(post(&app, None, "/api/v1/silences", ask.clone()).0, 401);
    assert_eq!(
        post(&app, Some("vera"), "/api/v1/silences", ask.clone()).0,
        403
    );
    let (status, answer) = post(
        &app,
        Some("nino"),
        "/api/v1/silences",
        json!({ "device": "w-atm-1", "duration": "1h", "comment": "not mine" }),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("of your regions"),
        "{answer}"
    );
    // A typo silences nothing, and is said to.
    let (status, answer) = post(
        &app,
        Some("oscar"),
        "/api/v1/silences",
        json!({ "device": "E-ATM-1", "duration": "1h", "comment": "typo" }),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("covers no device")
    );

    // The operator silences e-atm-1, and the west region for the scope's sake.
    let (status, silence) = post(&app, Some("oscar"), "/api/v1/silences", ask);
    assert_eq!(status, 201, "{silence}");
    assert_eq!(silence["device"], "e-atm-1");
    assert_eq!(silence["state"], "active");
    assert_eq!(silence["devices"], 1);
    assert_eq!(silence["created_by"], "oscar");
    assert_eq!(silence["comment"], "router swap <b>");
    let id = silence["id"].as_str().unwrap().to_string();
    let (status, west) = post(
        &app,
        Some("oscar"),
        "/api/v1/silences",
        json!({ "region": "west", "duration": "2h", "comment": "west works" }),
    );
    assert_eq!(status, 201, "{west}");
    let west_id = west["id"].as_str().unwrap().to_string();
    assert_eq!(listed(&app, "oscar").len(), 2);
    assert_eq!(
        listed(&app, "nino"),
        [id.as_str()],
        "nino sees the east one"
    );

    // Every maintenance surface says so.
    let silenced = device(&app, "e-atm-1");
    assert!(silenced["maintenance_ends_at"].is_string(), "{silenced}");
    let maintenance = get(&app, "vera", "/api/v1/maintenance");
    assert!(
        maintenance.to_string().contains("\"scope\":\"silence\""),
        "{maintenance}"
    );

    // Both east devices go dark: only the unsilenced one alerts.
    let dark = Blackhole::new("silence", &["127.142.1.1", "127.142.1.2"]);
    wait_status(&app, "e-atm-1", "down");
    wait_status(&app, "e-atm-2", "down");
    wait_for(Duration::from_secs(10), "e-atm-2's alert", || {
        open_alert(&app, "e-atm-2")
    });
    let transitions = get(&app, "vera", "/api/v1/devices/e-atm-1/transitions");
    let down = transitions["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"] == "down")
        .cloned()
        .unwrap_or_else(|| panic!("no down transition: {transitions}"));
    assert_eq!(down["in_maintenance"], true, "{down}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(open_alert(&app, "e-atm-1").is_none(), "silenced, no alert");

    // A restart keeps the silence: still listed, still no alert.
    drop(app);
    let app = Appliance::start(dir.path());
    wait_status(&app, "e-atm-1", "down");
    assert_eq!(listed(&app, "oscar").len(), 2, "{}", app.log());
    std::thread::sleep(Duration::from_secs(3));
    assert!(open_alert(&app, "e-atm-1").is_none(), "still silenced");

    // nino may not end the west silence (not theirs to see), and may end the east one:
    // the alert opens at once.
    let (status, _) = post(
        &app,
        Some("nino"),
        &format!("/api/v1/silences/{west_id}/expire"),
        json!({}),
    );
    assert_eq!(status, 404);
    let (status, ended) = post(
        &app,
        Some("nino"),
        &format!("/api/v1/silences/{id}/expire"),
        json!({}),
    );
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["expired_by"], "nino");
    wait_for(Duration::from_secs(5), "e-atm-1's alert", || {
        open_alert(&app, "e-atm-1")
    });
    assert!(
        app.log().contains("DOWN after maintenance"),
        "{}",
        app.log()
    );
    assert_eq!(listed(&app, "oscar"), [west_id]);
    let (status, again) = post(
        &app,
        Some("oscar"),
        &format!("/api/v1/silences/{id}/expire"),
        json!({}),
    );
    assert_eq!(status, 404, "already ended: {again}");
    assert!(
        again["error"]
            .as_str()
            .unwrap()
            .contains("no pending or active silence")
    );

    // The audit log has both writes, by whom.
    let audit = get(&app, "ada", "/api/v1/audit?action=silence");
    let made: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["user"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert!(
        made.iter().any(|(u, d)| *u == "oscar"
            && d.contains("device=e-atm-1")
            && d.contains("router swap")),
        "{audit}"
    );
    let expired = get(&app, "ada", "/api/v1/audit?action=silence_expire");
    assert_eq!(expired["entries"][0]["user"], "nino", "{expired}");
    assert!(
        expired["entries"][0]["target"]
            .as_str()
            .unwrap()
            .contains(&id)
    );
    drop(dark);
}

#[test]
fn the_device_pages_form_silences_its_branch_and_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    let no_redirect = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |user: &str| {
        as_user(Client::new().get(app.url("/devices/e-atm-2")), user)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert!(page("oscar").contains(r#"class="silence-form""#));
    assert!(
        !page("vera").contains(r#"class="silence-form""#),
        "a viewer has no form"
    );
    assert!(page("vera").contains("No silence covers this device."));

    // The form as the page sends it: the device it is on and what of it to cover.
    let posted = as_user(no_redirect.post(app.url("/api/v1/silences")), "oscar")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("back=%2Fdevices%2Fe-atm-2&of=e-atm-2&cover=branch&duration=30m&comment=cabling+%3Cscript%3E")
        .send()
        .unwrap();
    assert_eq!(posted.status().as_u16(), 303);
    assert_eq!(posted.headers()["location"], "/devices/e-atm-2");
    let shown = page("vera");
    assert!(shown.contains("region=east branch=east1"), "{shown}");
    assert!(shown.contains("cabling &lt;script&gt;"), "escaped");
    // Its sibling is covered (the branch), the other region's device is not.
    let listed = get(&app, "vera", "/api/v1/silences");
    assert_eq!(listed["silences"][0]["devices"], 2, "{listed}");
    assert!(device(&app, "e-atm-1")["maintenance_ends_at"].is_string());

    // "End now" on the page.
    let id = listed["silences"][0]["id"].as_str().unwrap().to_string();
    assert!(page("oscar").contains(&format!("/api/v1/silences/{id}/expire")));
    let ended = as_user(
        no_redirect.post(app.url(&format!("/api/v1/silences/{id}/expire"))),
        "oscar",
    )
    .header("content-type", "application/x-www-form-urlencoded")
    .body("back=%2Fdevices%2Fe-atm-2")
    .send()
    .unwrap();
    assert_eq!(ended.status().as_u16(), 303);
    assert!(page("vera").contains("No silence covers this device."));
}
