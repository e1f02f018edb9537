//! `--log-format json` (or `WARDOPS_LOG_FORMAT=json`, as the unit's EnvironmentFile and the
//! container set it): every line the real binary logs is one JSON object with its fields at
//! the top level, for journald's and Loki's JSON parsers; the default stays text.

mod support;

use std::process::Command;

use support::{Appliance, wait_status, write_fast_config};

#[test]
fn json_logs_are_one_object_a_line_with_the_fields_at_the_top() {
    let dir = tempfile::tempdir().unwrap();
    write_fast_config(dir.path(), "logjson", &[("lj-atm-1", "127.151.2.1")]);
    let app = Appliance::start_with(dir.path(), &[("WARDOPS_LOG_FORMAT", "json")]);
    wait_status(&app, "lj-atm-1", "up");
    let log = app.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["level"].is_string(), "{line}");
        assert!(line["target"].is_string(), "{line}");
    }
    let serving = lines
        .iter()
        .find(|l| l["message"] == "serving")
        .unwrap_or_else(|| panic!("no serving line: {log}"));
    assert_eq!(serving["level"], "INFO");
    assert_eq!(serving["listen"], app.base.trim_start_matches("http://"));
    assert_eq!(serving["devices"], 1);
}

#[test]
fn the_default_is_text_and_other_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_fast_config(dir.path(), "logtext", &[("lt-atm-1", "127.151.2.2")]);
    let app = Appliance::start(dir.path());
    wait_status(&app, "lt-atm-1", "up");
    let log = app.log();
    let serving = log.lines().find(|l| l.contains(" serving")).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(serving).is_err(),
        "{serving}"
    );
    assert!(serving.contains("INFO"), "{serving}");

    let out = Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["--log-format", "xml", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("possible values: text, json"), "{stderr}");
}
