//! `GET /api/v1/reports/availability` on the real binary: a device blackholed for a few
//! seconds (nftables) is one outage with its downtime, breaching its kind's SLA while
//! the router meets its own; a restart of the appliance leaves a gap of unmonitored
//! time; the CSV has a BOM and reads back in Python's csv module with the Georgian
//! names intact; a region-scoped user sees their region only; bad parameters are 400s
//! that name the parameter.

mod support;

use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use support::{Appliance, Blackhole, FAST_PROBE, SECRET_HASH, wait_for, wait_status};

const ROUTER: &str = "127.150.1.1";
const ATM: &str = "127.150.1.2";
const BATUMI: &str = "127.150.2.1";

fn write_config(dir: &std::path::Path) {
    let settings = format!(
        "{FAST_PROBE}access:\n  users_file: users.yml\nreports:\n  sla:\n    - {{ kind: router, target: 99.9 }}\n    - {{ kind: atm, target: 99.5 }}\n"
    );
    std::fs::write(dir.join("wardops.yaml"), settings).unwrap();
    let users = format!(
        "basic_auth_users:\n  nino: {SECRET_HASH}\nusers:\n  nino: {{ role: viewer, regions: [batumi] }}\n"
    );
    std::fs::write(dir.join("users.yml"), users).unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    let inventory = format!(
        "regions:
  - name: თბილისი
    branches:
      - name: ვაკე
        devices:
          - {{ name: ვაკე-router, address: {ROUTER}, kind: router }}
          - {{ name: ვაკე-atm, address: {ATM}, kind: atm }}
  - name: batumi
    branches:
      - name: center
        devices:
          - {{ name: batumi-atm, address: {BATUMI}, kind: atm }}
"
    );
    std::fs::write(dir.join("inventory/r.yaml"), inventory).unwrap();
}

fn get(app: &Appliance, path: &str) -> reqwest::blocking::Response {
    reqwest::blocking::get(app.url(path)).unwrap()
}

fn rows_by_key(report: &Value) -> std::collections::HashMap<String, Value> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

fn enc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .replace('+', "%2B")
}

#[test]
fn a_report_of_a_real_outage_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let from = Utc::now() - chrono::TimeDelta::seconds(60);
    let app = Appliance::start(dir.path());
    for name in ["ვაკე-router", "ვაკე-atm", "batumi-atm"] {
        wait_status(&app, &percent(name), "up");
    }
    {
        let _hole = Blackhole::new("rep", &[ATM]);
        wait_status(&app, &percent("ვაკე-atm"), "down");
        std::thread::sleep(Duration::from_secs(2));
    }
    wait_status(&app, &percent("ვაკე-atm"), "up");
    // A clean stop, a pause, a second run.
    drop(app);
    std::thread::sleep(Duration::from_secs(3));
    let app = Appliance::start(dir.path());
    wait_status(&app, &percent("ვაკე-atm"), "up");
    std::thread::sleep(Duration::from_secs(1));

    let to = Utc::now() + chrono::TimeDelta::hours(1);
    let path = format!(
        "/api/v1/reports/availability?from={}&to={}&group_by=device",
        enc(from),
        enc(to)
    );
    let report = app.get_json(&path);
    let rows = rows_by_key(&report);
    assert_eq!(rows.len(), 3, "{report}");
    let atm = &rows["ვაკე-atm"];
    assert_eq!(atm["outages"], 1, "{atm}");
    let down = atm["downtime_seconds"].as_f64().unwrap();
    assert!((2.0..60.0).contains(&down), "{atm}");
    assert_eq!(atm["longest_outage_seconds"], atm["downtime_seconds"]);
    assert_eq!(atm["mttr_seconds"], atm["downtime_seconds"]);
    assert!(atm["availability_percent"].as_f64().unwrap() < 99.5);
    assert_eq!(atm["sla_target_percent"], 99.5);
    assert_eq!(atm["sla_met"], false);
    assert_eq!(atm["region"], "თბილისი");
    let router = &rows["ვაკე-router"];
    assert_eq!(router["availability_percent"], 100.0, "{router}");
    assert_eq!(
        (
            router["sla_target_percent"].clone(),
            router["sla_met"].clone()
        ),
        (99.9.into(), true.into())
    );
    // Before the first start, and between the two runs (3 s at least): not up, not
    // down: unmonitored.
    let unmonitored = router["unmonitored_seconds"].as_f64().unwrap();
    assert!(unmonitored > 60.0 + 3.0 - 5.0, "{router}");
    // The future is not counted: `until` is now.
    let until: DateTime<Utc> = report["until"].as_str().unwrap().parse().unwrap();
    assert!(until < to && until <= Utc::now());
    // Every second of the period counted once.
    let sum: f64 = [
        "up_seconds",
        "downtime_seconds",
        "unreachable_seconds",
        "maintenance_seconds",
        "unmonitored_seconds",
    ]
    .iter()
    .map(|k| atm[*k].as_f64().unwrap())
    .sum();
    let asked: DateTime<Utc> = report["from"].as_str().unwrap().parse().unwrap();
    let span = (until - asked).num_microseconds().unwrap() as f64 / 1e6;
    assert!((sum - span).abs() < 1e-3, "{sum} vs {span}");
    // The totals: one breach among three devices.
    assert_eq!(report["totals"]["devices_breached"], 1);
    assert_eq!(report["devices"], 3);

    // Drill-down to one device: its outage listed.
    let one = app.get_json(&format!("{path}&device={}", percent("ვაკე-atm")));
    let list = one["rows"][0]["outage_list"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{one}");
    assert!(list[0]["ended_at"].is_string());
    // By region, by kind; sorted by breach.
    let regions = app.get_json(&format!("{path}&group_by=region&sort=breach"));
    assert_eq!(regions["rows"][0]["key"], "თბილისი", "{regions}");
    assert_eq!(regions["rows"][0]["sla_met"], false);
    assert_eq!(regions["rows"][1]["key"], "batumi");
    let kinds = rows_by_key(&app.get_json(&format!("{path}&group_by=kind")));
    assert_eq!(kinds["atm"]["devices"], 2);
    // Paging.
    let page = app.get_json(&format!("{path}&limit=2"));
    assert_eq!(
        (
            page["rows"].as_array().unwrap().len(),
            page["next_offset"].clone()
        ),
        (2, 2.into())
    );
    let last = app.get_json(&format!("{path}&limit=2&offset=2"));
    assert_eq!(
        (
            last["rows"].as_array().unwrap().len(),
            last["next_offset"].clone()
        ),
        (1, Value::Null)
    );

    // CSV: a BOM, then rows Python reads back as they are.
    let csv = get(&app, &format!("{path}&format=csv"));
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = csv.bytes().unwrap();
    assert_eq!(&bytes[..3], b"\xef\xbb\xbf", "UTF-8 BOM");
    let file = dir.path().join("report.csv");
    std::fs::write(&file, &bytes).unwrap();
    let script = "import csv, json, sys\n\
        rows = list(csv.DictReader(open(sys.argv[1], encoding='utf-8-sig', newline='')))\n\
        print(json.dumps(rows, ensure_ascii=False))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed.len(), 3);
    let atm_csv = parsed.iter().find(|r| r["device"] == "ვაკე-atm").unwrap();
    assert_eq!(atm_csv["region"], "თბილისი");
    assert_eq!(atm_csv["branch"], "ვაკე");
    assert_eq!(atm_csv["outages"], "1");
    assert_eq!(atm_csv["sla_met"], "no");
    let csv_down: f64 = atm_csv["downtime_seconds"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((csv_down - down).abs() < 1e-6, "{csv_down} vs {down}");

    // A region-scoped viewer: batumi only, in every grouping.
    let c = reqwest::blocking::Client::new();
    let scoped = |p: &str| -> Value {
        c.get(app.url(p))
            .basic_auth("nino", Some("secret"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let mine = scoped(&path);
    let keys: Vec<_> = rows_by_key(&mine).into_keys().collect();
    assert_eq!(keys, ["batumi-atm"], "{mine}");
    let mine = scoped(&format!("{path}&group_by=region"));
    assert_eq!(mine["rows"].as_array().unwrap().len(), 1);
    assert_eq!(mine["rows"][0]["key"], "batumi");
    assert!(!mine.to_string().contains("თბილისი"), "{mine}");

    // Bad parameters: a 400 naming the parameter.
    for (query, parameter) in [
        ("group_by=city", "group_by"),
        ("format=pdf", "format"),
        ("from=2026-12-02&to=2026-12-01", "to"),
        ("from=2020-01-01&to=2026-01-01", "to"),
        ("period=fortnight", "period"),
        ("from=yesterday&to=2026-12-01", "from"),
    ] {
        let r = get(&app, &format!("/api/v1/reports/availability?{query}"));
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().unwrap();
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
    }
    // The default: this month, by device.
    let month = app.get_json("/api/v1/reports/availability");
    assert_eq!(month["group_by"], "device");
    assert_eq!(month["rows"].as_array().unwrap().len(), 3);
}

/// A path segment with the name percent-encoded.
fn percent(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[test]
fn the_runs_table_holds_each_boot_until_its_stop() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = Appliance::start(dir.path());
    std::thread::sleep(Duration::from_millis(500));
    drop(app);
    let app = Appliance::start(dir.path());
    let db = dir.path().join("wardops.db");
    let runs = wait_for(Duration::from_secs(10), "two runs stored", || {
        let out = Command::new("sqlite3")
            .arg(&db)
            .arg("SELECT boot_id, started_at, last_seen_at, stopped_at IS NOT NULL FROM runs ORDER BY started_at")
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        (lines.len() == 2).then_some(lines)
    });
    let first: Vec<&str> = runs[0].split('|').collect();
    assert_eq!(first[3], "1", "the first run stopped cleanly: {runs:?}");
    let second: Vec<&str> = runs[1].split('|').collect();
    assert_eq!(second[3], "0", "the second goes on: {runs:?}");
    assert!(first[2] >= first[1] && second[1] >= first[2], "{runs:?}");
    drop(app);
}
