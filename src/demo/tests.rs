//! Tests of the demo generator: it validates, it is stable as N grows, and its
//! addresses are unique loopback hosts.

use std::collections::HashSet;

use super::*;
use crate::config::{Config, Device};

fn load(dir: &Path) -> Config {
    let env = Env {
        listen: None,
        database_url: None,
        users_file: None,
        data_dir: None,
        cluster: Default::default(),
    };
    Config::load_with_env(&dir.join("wardops.yaml"), &env).unwrap_or_else(|e| panic!("{e}"))
}

fn key(
    d: &Device,
) -> (
    String,
    String,
    String,
    String,
    String,
    Vec<(String, String)>,
) {
    let labels = d
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let s = |v: &str| v.to_string();
    (
        s(&d.name),
        d.address.to_string(),
        s(&d.region),
        s(&d.branch),
        s(&d.kind),
        labels,
    )
}

#[test]
fn generated_config_validates_and_matches_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write(dir.path(), 1000, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        summary.to_string(),
        "1000 devices in 125 branches of 10 regions"
    );
    let config = load(dir.path());
    assert_eq!(config.inventory.summary(), summary.to_string());
    assert_eq!(config.settings.probe.interval, Duration::from_secs(5));
    for i in [0, 7, 8, 999] {
        let d = device(i);
        let loaded = config.inventory.device(&d.name).unwrap();
        assert_eq!(loaded.address, d.address);
        assert_eq!(
            (&*loaded.region, &*loaded.branch, &*loaded.kind),
            (d.region, &*d.branch, d.kind)
        );
    }
    // Every device's parents as the generator means them, through the cascade.
    let inv = &config.inventory;
    for i in 0..1000 {
        let d = device(i);
        let loaded = inv.device(&d.name).unwrap();
        let parents: Vec<&str> = loaded.parents.iter().map(|p| &**p).collect();
        assert_eq!(
            parents,
            d.parent.as_deref().into_iter().collect::<Vec<_>>(),
            "{i}"
        );
    }
    assert_eq!(device(0).parent, None, "tbilisi's core");
    assert_eq!(device(1).parent.as_deref(), Some("tbilisi-b0000-router-1"));
    assert_eq!(
        device(80).parent.as_deref(),
        Some("tbilisi-b0000-router-1"),
        "a gateway"
    );
    assert_eq!(device(81).parent.as_deref(), Some("tbilisi-b0001-router-1"));
    let core = inv.index_of("batumi-b0000-router-1").unwrap();
    // Batumi's hub branch: 7 devices, and the gateways of its other 12 branches.
    assert_eq!(inv.children(core).len(), 7 + 12);
}

#[test]
fn smaller_runs_are_prefixes_of_larger_ones() {
    let big = tempfile::tempdir().unwrap();
    write(big.path(), 1000, None).unwrap();
    let big = load(big.path());
    let by_name = |n: &str| key(big.inventory.device(n).unwrap());
    // One directory rewritten at growing sizes also shows stale regions are dropped.
    let small = tempfile::tempdir().unwrap();
    for n in (1..=50).rev() {
        let summary = write(small.path(), n, None).unwrap();
        let config = load(small.path());
        assert_eq!(config.inventory.devices.len(), n);
        assert_eq!(config.inventory.regions.len(), summary.regions);
        for d in &config.inventory.devices {
            assert_eq!(key(d), by_name(&d.name), "n = {n}");
        }
    }
}

#[test]
fn addresses_are_unique_loopback_hosts() {
    let mut seen = HashSet::with_capacity(200_000);
    let mut names = HashSet::with_capacity(200_000);
    for i in 0..200_000 {
        let d = device(i);
        let [a, b, _, host] = d.address.octets();
        assert!(
            a == 127 && b != 0 && host != 0 && host != 255,
            "{i}: {}",
            d.address
        );
        assert!(seen.insert(d.address), "{i}: {} repeated", d.address);
        assert!(names.insert(d.name), "{i}: name repeated");
    }
    let last = device(MAX_DEVICES - 1).address;
    assert!(
        last.is_loopback() && last != Ipv4Addr::new(127, 255, 255, 255),
        "{last}"
    );
    assert!(device(999_999).address.is_loopback());
}

#[test]
fn branches_are_realistic() {
    for b in 0..30 {
        let kinds: Vec<_> = (b * 8..b * 8 + 8).map(|i| device(i).kind).collect();
        let atms = kinds.iter().filter(|k| **k == "atm").count();
        assert!((2..=4).contains(&atms), "{kinds:?}");
        assert_eq!(kinds[0], "router");
    }
    assert_eq!(device(8 * 70 + 3).name, "tbilisi-b0007-atm-2");
    let (lat, lon) = branch_position(0, 12_499);
    assert!(
        (41.0..42.5).contains(&lat) && (44.0..45.5).contains(&lon),
        "{lat} {lon}"
    );
}

#[test]
fn the_flat_demo_is_the_same_devices_without_parents() {
    let (with, flat) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(with.path(), 100, None).unwrap();
    write_flat(flat.path(), 100, None).unwrap();
    let (with, flat) = (load(with.path()), load(flat.path()));
    for (a, b) in with.inventory.devices.iter().zip(&flat.inventory.devices) {
        assert_eq!(key(a), key(b));
        assert!(b.parents.is_empty(), "{}", b.name);
    }
    assert!(with.inventory.devices.iter().any(|d| !d.parents.is_empty()));
}

#[test]
fn bad_sizes_and_intervals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(write(dir.path(), 0, None).is_err());
    let err = write(dir.path(), 10, Some(Duration::from_millis(200))).unwrap_err();
    assert!(
        err.to_string().contains("timeout 0s is out of range"),
        "{err}"
    );
    write(dir.path(), 10, Some(Duration::from_millis(500))).unwrap();
    assert_eq!(
        load(dir.path()).settings.probe.timeout,
        Duration::from_millis(50)
    );
    // At 1 s a probe and its retry each fit in half an interval.
    write(dir.path(), 10, Some(Duration::from_secs(1))).unwrap();
    let probe = load(dir.path()).settings.probe;
    assert_eq!(probe.timeout, Duration::from_millis(300));
    assert_eq!(probe.retry_interval, Duration::from_millis(500));
    assert_eq!(probe.probe_duration(), Duration::from_millis(500));
}
