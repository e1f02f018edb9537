//! `/metrics?shard=K/N` scraped by a real VictoriaMetrics with its default flags: the
//! real binary probes 30 loopback devices; VictoriaMetrics scrapes three slices as three
//! targets (`__param_shard`, the scrape config docs/metrics.md gives). Every device's
//! series arrive once, the appliance's own families and the totals once, no scrape
//! fails, and the region joins from `wardops_device_info` on `device`.
//!
//! Addresses: 127.144.0.0/16.

mod support;

use std::time::Duration;

use support::victoriametrics::VictoriaMetrics;
use support::{Appliance, wait_for, write_fast_config};

const DEVICES: usize = 30;

#[test]
fn victoriametrics_scrapes_three_slices_and_sees_every_device_once() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<(String, String)> = (0..DEVICES)
        .map(|i| (format!("s-atm-{i:02}"), format!("127.144.0.{}", i + 1)))
        .collect();
    let devices: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    write_fast_config(dir.path(), "shida", &devices);
    let app = Appliance::start(dir.path());
    let target = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut job = String::from("    static_configs:\n");
    for k in 1..=3 {
        job.push_str(&format!(
            "      - targets: [\"{target}\"]\n        labels: {{ __param_shard: \"{k}/3\", shard: \"{k}\" }}\n"
        ));
    }
    let vm = VictoriaMetrics::start_with(&job);
    let count = |q: &str| -> Option<f64> {
        vm.query(q)
            .first()
            .and_then(|s| s["value"][1].as_str()?.parse().ok())
    };
    wait_for(
        Duration::from_secs(30),
        "every device up in VictoriaMetrics",
        || (count("count(wardops_device_up == 1)") == Some(DEVICES as f64)).then_some(()),
    );
    assert_eq!(count("count(up == 1)"), Some(3.0), "three healthy targets");
    assert_eq!(
        count("count(wardops_device_info)"),
        Some(DEVICES as f64),
        "each device's series from one slice only"
    );
    assert_eq!(
        count("count(wardops_devices)"),
        Some(4.0),
        "the totals once"
    );
    assert_eq!(count("sum(wardops_devices)"), Some(DEVICES as f64));
    assert_eq!(
        count("count(wardops_probes_total)"),
        Some(1.0),
        "the appliance once"
    );
    let by_region = vm.query(
        "sum by (region) (wardops_device_up * on(device) group_left(region) wardops_device_info)",
    );
    assert_eq!(by_region.len(), 1, "{by_region:?}");
    assert_eq!(by_region[0]["metric"]["region"], "shida");
    assert_eq!(by_region[0]["value"][1], DEVICES.to_string());
    // Every slice holds some devices, and none failed to scrape.
    let per_slice = vm.query("count by (shard) (wardops_device_up)");
    assert_eq!(per_slice.len(), 3, "{per_slice:?}");
    let own = reqwest::blocking::get(format!("{}/metrics", vm.url))
        .unwrap()
        .text()
        .unwrap();
    let failed: f64 = own
        .lines()
        .find(|l| l.starts_with("vm_promscrape_scrapes_failed_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert_eq!(failed, 0.0, "{own}");
}
