//! The monitoring files the Prometheus world expects (issue #17): `monitoring/rules.yml`
//! passes `promtool check rules` and its unit tests (`monitoring/rules_test.yml`), and
//! every expression of the rules and of the Grafana dashboard
//! (`monitoring/grafana/wardops.json`) runs against a real VictoriaMetrics that scraped
//! a live appliance: the rules' parse, and every panel's query returns data.
//!
//! Needs Debian's `prometheus` (promtool) and `python3-yaml` (to read the rules);
//! scripts/test installs both. Addresses: 127.145.0.0/16.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::victoriametrics::VictoriaMetrics;
use support::{Appliance, Blackhole, FAST_PROBE, wait_for};

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool is installed (apt-get install prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_rules_pass_promtool_and_their_unit_tests() {
    promtool(&["check", "rules", &repo("monitoring/rules.yml")]);
    promtool(&["test", "rules", &repo("monitoring/rules_test.yml")]);
}

/// Every `expr` of the rules file.
fn rule_expressions() -> Vec<String> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             doc = yaml.safe_load(open(sys.argv[1]))\n\
             print(json.dumps([r['expr'] for g in doc['groups'] for r in g['rules']]))",
            &repo("monitoring/rules.yml"),
        ])
        .output()
        .expect("python3 with yaml (apt-get install python3-yaml)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every panel's query, with the dashboard's variables as Grafana would fill them for
/// "All" regions.
fn panel_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("monitoring/grafana/wardops.json")).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$region", ".*")
                .replace("$__rate_interval", "30s");
            out.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    out
}

#[test]
fn every_panel_and_rule_runs_on_a_real_victoriametrics_scraping_the_appliance() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wardops.yaml"), FAST_PROBE).unwrap();
    std::fs::create_dir_all(dir.path().join("inventory")).unwrap();
    std::fs::write(
        dir.path().join("inventory/all.yaml"),
        "regions:\n  - name: guria\n    branches:\n      - name: ozurgeti\n        devices:\n          - { name: o-gw, address: 127.145.1.1, kind: router }\n          - { name: o-atm-1, address: 127.145.1.2, kind: atm, parents: [o-gw] }\n  - name: racha\n    branches:\n      - name: ambrolauri\n        devices:\n          - { name: a-atm-1, address: 127.145.2.1, kind: atm }\n          - { name: a-atm-2, address: 127.145.2.2, kind: atm }\n",
    )
    .unwrap();
    let app = Appliance::start(dir.path());
    // One down of its own, one unreachable behind it: the panels of both have data.
    let _dark = Blackhole::new("monitoring", &["127.145.1.1", "127.145.1.2"]);
    let target = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let vm = VictoriaMetrics::start(&[target]);
    wait_for(
        Duration::from_secs(30),
        "a down and an unreachable device in VictoriaMetrics",
        || {
            let down = vm.query("wardops_device_up == 0");
            let behind = vm.query("wardops_device_unreachable == 1");
            (down.len() == 2 && behind.len() == 1).then_some(())
        },
    );

    let regions: Value = reqwest::blocking::get(format!(
        "{}/api/v1/label/region/values?match[]=wardops_device_info",
        vm.url
    ))
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(
        regions["data"],
        serde_json::json!(["guria", "racha"]),
        "the region variable"
    );

    // Rates need two samples in their window: each query gets 20 s to have data.
    for (panel, expr) in panel_queries() {
        let result = wait_for(Duration::from_secs(20), &format!("{panel}: {expr}"), || {
            let r = vm.query(&expr);
            (!r.is_empty()).then_some(r)
        });
        assert!(!result.is_empty(), "{panel}");
    }
    // The split panels say what they should.
    let by_region = |expr: &str| -> Vec<(String, String)> {
        let mut v: Vec<_> = vm
            .query(expr)
            .iter()
            .map(|s| {
                (
                    s["metric"]["region"].as_str().unwrap_or("").to_string(),
                    s["value"][1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let queries = panel_queries();
    let find = |title: &str| &queries.iter().find(|(t, _)| t == title).unwrap().1;
    assert_eq!(
        by_region(find("Down by region")),
        [("guria".into(), "1".into()), ("racha".into(), "0".into())]
    );
    assert_eq!(
        by_region(find("Unreachable by region")),
        [("guria".into(), "1".into()), ("racha".into(), "0".into())]
    );

    // Every rule's expression is valid MetricsQL over these series.
    for expr in rule_expressions() {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &expr)
            .finish();
        let r = reqwest::blocking::get(format!("{}/api/v1/query?{query}", vm.url)).unwrap();
        let status = r.status();
        let body = r.text().unwrap();
        assert!(status.is_success(), "{expr}: {status} {body}");
    }
    // The device rule fires for the down gateway alone, with its region.
    let down = vm.query(
        &rule_expressions()
            .into_iter()
            .find(|e| e.contains("wardops_device_up == 0"))
            .unwrap(),
    );
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(down[0]["metric"]["device"], "o-gw");
    assert_eq!(down[0]["metric"]["region"], "guria");
}
