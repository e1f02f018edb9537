//! Table-driven configuration tests.
//!
//! Every directory under `tests/testdata/config/invalid/` is one case: an `inventory/`
//! directory, optionally a `wardops.yaml` beside it, and `expected.txt` with the exact
//! error lines. Paths in messages are printed relative to the case directory so the
//! expected files hold no machine-specific prefix. Run with `WARDOPS_BLESS=1` to rewrite
//! the expected files from actual output (then review the diff: it is the spec).
//!
//! The valid cases below check what a load resolves to, not just that it succeeds.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wardops::config::{Config, ConfigErrors, Env, ProbeSettings, load};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/config")
}

fn no_env() -> Env {
    Env {
        listen: None,
        database_url: None,
        users_file: None,
        data_dir: None,
        cluster: Default::default(),
    }
}

/// Loads a case the way the appliance does: through its settings file when it has one,
/// else just its inventory over the built-in probe defaults.
fn load_case(dir: &Path) -> Result<(), ConfigErrors> {
    let settings = dir.join("wardops.yaml");
    if settings.exists() {
        Config::load_with_env(&settings, &no_env()).map(drop)
    } else {
        load::load_inventory(&dir.join("inventory"), &ProbeSettings::default()).map(drop)
    }
}

/// The errors as lines, with the case directory stripped wherever it appears (also
/// inside messages such as "first defined at …").
fn render(dir: &Path, errors: &ConfigErrors) -> String {
    let prefix = format!("{}/", dir.display());
    let mut out = String::new();
    for e in &errors.0 {
        assert!(
            !e.message.contains('\n'),
            "multi-line message: {:?}",
            e.message
        );
        out.push_str(&e.to_string().replace(&prefix, ""));
        out.push('\n');
    }
    out
}

#[test]
fn invalid_cases_report_exactly_the_expected_errors() {
    let bless = std::env::var_os("WARDOPS_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata().join("invalid"))
        .expect("testdata/config/invalid")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "only {} cases found", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy();
        let actual = match load_case(dir) {
            Ok(()) => "(valid)\n".to_string(),
            Err(errors) => render(dir, &errors),
        };
        let expected_path = dir.join("expected.txt");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{name}: cannot read expected.txt: {e}"));
        if actual != expected {
            failures.push(format!(
                "--- {name}\nexpected:\n{expected}actual:\n{actual}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn valid(case: &str) -> Config {
    let path = testdata().join("valid").join(case).join("wardops.yaml");
    Config::load_with_env(&path, &no_env()).unwrap_or_else(|e| panic!("{case}:\n{e}"))
}

#[test]
fn probe_settings_cascade_from_defaults_to_device() {
    let config = valid("cascade");
    let inv = &config.inventory;
    let defaults = config.settings.probe;
    // wardops.yaml overrides interval and packets; the rest are the built-in defaults.
    let builtin = ProbeSettings::default();
    assert_eq!(defaults.interval, Duration::from_secs(20));
    assert_eq!(defaults.packets, 3);
    assert_eq!(defaults.timeout, builtin.timeout);

    // Region sets timeout; branch sets down_after; device sets interval.
    let device = inv.device("vake-router-1").unwrap();
    assert_eq!(device.probe.timeout, Duration::from_millis(500));
    assert_eq!(device.probe.down_after, 3);
    assert_eq!(device.probe.interval, Duration::from_secs(5));
    assert_eq!(device.probe.packets, 3);
    assert_eq!(device.probe.up_after, builtin.up_after);

    // A sibling without device overrides keeps the branch's and region's values.
    let sibling = inv.device("vake-switch-1").unwrap();
    assert_eq!(sibling.probe.interval, Duration::from_secs(20));
    assert_eq!(sibling.probe.timeout, Duration::from_millis(500));
    assert_eq!(sibling.probe.down_after, 3);

    // Another branch of the same region: region override only.
    let other = inv.device("saburtalo-router-1").unwrap();
    assert_eq!(other.probe.timeout, Duration::from_millis(500));
    assert_eq!(other.probe.down_after, builtin.down_after);

    // Another region: settings defaults only.
    assert_eq!(inv.device("batumi-router-1").unwrap().probe, defaults);
}

#[test]
fn hierarchy_labels_and_coordinates_come_from_the_yaml() {
    let config = valid("cascade");
    let device = config.inventory.device("vake-router-1").unwrap();
    assert_eq!(&*device.region, "tbilisi");
    assert_eq!(&*device.branch, "vake");
    assert_eq!(&*device.kind, "router");
    assert_eq!(device.labels.get("isp"), Some("magti"));
    assert_eq!(device.labels.get("floor"), Some("1"));
    let vake = &config.inventory.regions[0].branches[0];
    assert_eq!((vake.lat, vake.lon), (Some(41.709), Some(44.766)));
    assert_eq!(
        config.inventory.summary(),
        "4 devices in 3 branches of 2 regions"
    );
}

#[test]
fn ipv6_addresses_are_accepted() {
    let config = valid("ipv6");
    let inv = &config.inventory;
    assert_eq!(
        inv.device("lo6").unwrap().address,
        "::1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        inv.device("lo4").unwrap().address,
        "127.0.0.2".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn files_are_merged_in_path_order() {
    // Sorted by whole path, subdirectories included; README.md is not inventory.
    let config = valid("multi-file");
    let regions: Vec<&str> = config.inventory.regions.iter().map(|r| &*r.name).collect();
    assert_eq!(regions, ["batumi", "tbilisi", "kutaisi"]);
    assert_eq!(config.inventory.devices.len(), 5);
    // inventory/west/kutaisi.yaml, read from its subdirectory.
    let kutaisi = config.inventory.device("kutaisi-atm-1").unwrap();
    assert_eq!(&*kutaisi.region, "kutaisi");
}

#[test]
fn settings_defaults_apply_to_a_minimal_file() {
    let config = valid("multi-file");
    let s = &config.settings;
    assert_eq!(s.listen.to_string(), "127.0.0.1:5001");
    assert_eq!(s.database_url, "sqlite://data/wardops.db");
    assert_eq!(s.probe, ProbeSettings::default());
    assert_eq!(s.http.max_connections, 1024);
}

#[test]
fn environment_overrides_settings() {
    let path = testdata().join("valid/cascade/wardops.yaml");
    let file_only = Config::load_with_env(&path, &no_env()).unwrap();
    assert_eq!(file_only.settings.listen.to_string(), "127.0.0.1:5999");
    assert_eq!(file_only.settings.database_url, "sqlite://var/cascade.db");
    assert_eq!(file_only.settings.http.max_connections, 64);

    let env = Env {
        listen: Some("127.0.0.1:6001".into()),
        database_url: Some("postgres://wardops@localhost/wardops".into()),
        users_file: None,
        data_dir: Some("/var/lib/wardops".into()),
        // The member id and a Redis URL with its password come from the host.
        cluster: wardops::config::settings::ClusterEnv {
            member_id: Some("noc-b".into()),
            redis_url: Some("redis://:s3cret@127.0.0.1:6379/2".into()),
        },
    };
    let config = Config::load_with_env(&path, &env).unwrap();
    let cluster = config.settings.cluster.as_ref().expect("a member");
    assert_eq!(cluster.member_id, "noc-b");
    assert_eq!(cluster.redis_url, "redis://:s3cret@127.0.0.1:6379/2");
    assert_eq!(config.settings.listen.to_string(), "127.0.0.1:6001");
    assert_eq!(
        config.settings.store.data_dir,
        std::path::Path::new("/var/lib/wardops")
    );
    assert_eq!(
        config.settings.database_url,
        "postgres://wardops@localhost/wardops"
    );

    let bad = Env {
        listen: Some("nowhere".into()),
        database_url: None,
        users_file: None,
        data_dir: None,
        cluster: Default::default(),
    };
    let errors = Config::load_with_env(&path, &bad).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "WARDOPS_LISTEN: listen \"nowhere\" is not an address:port such as 127.0.0.1:5001"
    );
}

#[test]
fn shipped_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wardops.yaml");
    let config = Config::load_with_env(&path, &no_env()).unwrap_or_else(|e| panic!("{e}"));
    let inv = &config.inventory;
    assert!(inv.devices.len() >= 30, "{}", inv.summary());
    assert!(inv.regions.len() >= 3, "{}", inv.summary());
    // The example is pinged for real: loopback only, as everywhere outside production.
    for d in &inv.devices {
        assert!(
            d.address.is_loopback(),
            "{} has non-loopback address {}",
            d.name,
            d.address
        );
    }
    assert_eq!(config.settings.database_url, "sqlite://data/wardops.db");
    assert_eq!(config.settings.listen.to_string(), "127.0.0.1:5001");
    // The example shows Georgian display names (web.display_name_label).
    let label = config.settings.web.display_name_label.as_deref();
    assert_eq!(label, Some("display_name"));
    let vake = inv
        .devices
        .iter()
        .find(|d| &*d.name == "vake-atm-1")
        .unwrap();
    assert_eq!(vake.labels.get("display_name"), Some("ვაკე — ბანკომატი 1"));
}

/// Runs `f` on its own thread and fails the test if it takes longer than `limit`: a
/// walk that loops or a read that blocks must fail here, not hang the suite.
fn finishes_within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

const ONE_DEVICE: &str = "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n          - { name: d1, address: 127.0.0.1, kind: atm }\n";

/// An inventory directory holding `a.yaml` (one device), laid out further by `setup`.
fn inventory_dir(setup: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inventory");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), ONE_DEVICE).unwrap();
    setup(&dir);
    (tmp, dir)
}

fn load_within_a_second(dir: &Path) -> Result<usize, Vec<String>> {
    let dir = dir.to_path_buf();
    finishes_within(Duration::from_secs(1), move || {
        load::load_inventory(&dir, &ProbeSettings::default())
            .map(|i| i.devices.len())
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    })
}

#[test]
fn symlink_loops_end_and_read_each_file_once() {
    use std::os::unix::fs::symlink;
    let (_tmp, dir) = inventory_dir(|d| {
        symlink(".", d.join("a1")).unwrap();
        symlink(".", d.join("a2")).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        symlink("..", d.join("sub/up")).unwrap();
        symlink("../sub", d.join("sub/again")).unwrap();
    });
    // Read once: read twice, d1 would be a duplicate of itself.
    assert_eq!(load_within_a_second(&dir), Ok(1));
    let files = load::list_files(&dir).unwrap();
    assert_eq!(files, [dir.join("a.yaml")]);
}

#[test]
fn a_directory_link_out_of_the_inventory_is_an_error_not_a_walk_of_the_machine() {
    let (_tmp, dir) = inventory_dir(|d| std::os::unix::fs::symlink("/", d.join("root")).unwrap());
    let errors = load_within_a_second(&dir).unwrap_err();
    assert_eq!(
        errors,
        [format!(
            "{}: links to /, outside the inventory directory; not followed",
            dir.join("root").display()
        )]
    );
}

#[test]
fn a_fifo_named_like_an_inventory_file_is_refused_without_blocking() {
    let (_tmp, dir) = inventory_dir(|d| {
        let path = std::ffi::CString::new(d.join("f.yaml").as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    });
    assert_eq!(
        load_within_a_second(&dir).unwrap_err(),
        [format!(
            "{}: not a regular file (a named pipe); not read",
            dir.join("f.yaml").display()
        )]
    );
    // Opened directly, past the listing (a name swapped after it): still no block.
    let fifo = dir.join("f.yaml");
    let error =
        finishes_within(Duration::from_secs(1), move || load::read_text(&fifo)).unwrap_err();
    assert!(error.message.contains("a named pipe"), "{error}");
}

#[test]
fn a_link_to_dev_zero_is_refused_and_a_file_past_the_limit_is_not_read() {
    let (_tmp, dir) =
        inventory_dir(|d| std::os::unix::fs::symlink("/dev/zero", d.join("z.yaml")).unwrap());
    assert_eq!(
        load_within_a_second(&dir).unwrap_err(),
        [format!(
            "{}: not a regular file (a character device); not read",
            dir.join("z.yaml").display()
        )]
    );
    let zero = Path::new("/dev/zero").to_path_buf();
    let error =
        finishes_within(Duration::from_secs(1), move || load::read_text(&zero)).unwrap_err();
    assert!(error.message.contains("a character device"), "{error}");

    // A sparse file one byte past the limit: refused by its size, before any reading.
    let (_tmp, dir) = inventory_dir(|d| {
        let big = std::fs::File::create(d.join("big.yaml")).unwrap();
        big.set_len(load::MAX_FILE_BYTES + 1).unwrap();
    });
    assert_eq!(
        load_within_a_second(&dir).unwrap_err(),
        [format!(
            "{}: larger than 64 MiB; not read",
            dir.join("big.yaml").display()
        )]
    );
}

#[test]
fn a_settings_file_that_is_a_fifo_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wardops.yaml");
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let shown = path.clone();
    let errors = finishes_within(Duration::from_secs(1), move || {
        Config::load_with_env(&path, &no_env())
            .unwrap_err()
            .to_string()
    });
    assert_eq!(
        errors,
        format!(
            "{}: not a regular file (a named pipe); not read",
            shown.display()
        )
    );
}

fn valid_inventory(case: &str) -> wardops::config::Inventory {
    let dir = testdata().join("valid").join(case).join("inventory");
    load::load_inventory(&dir, &ProbeSettings::default()).unwrap_or_else(|e| panic!("{case}:\n{e}"))
}

#[test]
fn parents_cascade_from_device_to_branch_to_region_and_never_to_the_device_itself() {
    let inv = valid_inventory("parents");
    let parents = |name: &str| -> Vec<String> {
        let d = inv.device(name).unwrap();
        d.parents.iter().map(|p| p.to_string()).collect()
    };
    // The region's core router is named by its region: it inherits nothing.
    assert_eq!(parents("tbilisi-core"), Vec::<String>::new());
    // The branch's gateway is named by its branch: it takes the region's parents.
    assert_eq!(parents("vake-gw"), ["tbilisi-core"]);
    assert_eq!(parents("vake-atm"), ["vake-gw"]);
    // A device's own list wins, in written order, across files.
    assert_eq!(parents("vake-pos"), ["vake-gw", "saburtalo-gw"]);
    // `parents: []` means none, whatever the branch and region say.
    assert_eq!(parents("vake-cam"), Vec::<String>::new());
    // A block list reads as a flow list does.
    assert_eq!(parents("saburtalo-gw"), ["tbilisi-core"]);
    assert_eq!(parents("saburtalo-atm"), ["saburtalo-gw"]);

    // The graph, both ways, as indexes.
    let at = |name: &str| inv.index_of(name).unwrap() as u32;
    let names = |ix: &[u32]| -> Vec<String> {
        ix.iter()
            .map(|&i| inv.devices[i as usize].name.to_string())
            .collect()
    };
    assert_eq!(
        inv.parents(at("vake-pos") as usize),
        [at("vake-gw"), at("saburtalo-gw")]
    );
    assert_eq!(
        names(inv.children(at("tbilisi-core") as usize)),
        ["vake-gw", "saburtalo-gw"]
    );
    assert_eq!(
        names(inv.children(at("vake-gw") as usize)),
        ["vake-atm", "vake-pos"]
    );
    assert_eq!(
        names(inv.children(at("saburtalo-gw") as usize)),
        ["vake-pos", "saburtalo-atm"]
    );
    assert!(inv.children(at("vake-cam") as usize).is_empty());
}

/// A region of gateways in `a.yaml` and their children in `b.yaml`: parents across files.
const GATEWAYS: &str = "regions:\n  - name: ra\n    branches:\n      - name: core\n        devices:\n          - { name: core, address: 127.40.0.1, kind: router }\n          - { name: gw, address: 127.40.0.2, kind: router, parents: [core] }\n";

fn children(parent: &str, count: usize) -> String {
    let mut y = format!(
        "regions:\n  - name: rb\n    branches:\n      - name: b\n        parents: [{parent}]\n        devices:\n"
    );
    for i in 0..count {
        y += &format!(
            "          - {{ name: atm-{i}, address: 127.40.1.{}, kind: atm }}\n",
            i + 1
        );
    }
    y
}

/// The parents of `name` in `inventory`, by index, as names.
fn parent_names(inventory: &wardops::config::Inventory, name: &str) -> Vec<String> {
    let i = inventory.index_of(name).unwrap();
    inventory
        .parents(i)
        .iter()
        .map(|&p| inventory.devices[p as usize].name.to_string())
        .collect()
}

/// The reload path re-uses the files that did not change, but parents name devices of
/// any file: the graph is checked and rebuilt on every reload, and a reload that takes
/// away a parent still named fails with the place of the name and keeps what runs.
#[tokio::test]
async fn a_reload_rebuilds_the_parents_across_files_and_refuses_a_removed_parent() {
    use std::sync::Arc;
    use wardops::config::settings::ReloadSettings;
    use wardops::reload::{ReloadMetrics, ReloadResult, Reloader, Trigger};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inventory");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), GATEWAYS).unwrap();
    std::fs::write(dir.join("b.yaml"), children("gw", 3)).unwrap();
    let initial = Arc::new(load::load_inventory(&dir, &ProbeSettings::default()).unwrap());
    assert_eq!(parent_names(&initial, "atm-0"), ["gw"]);
    let (sink, mut applied) = tokio::sync::mpsc::channel(16);
    let settings = ReloadSettings {
        max_removed_share: 1.0,
        ..ReloadSettings::default()
    };
    let reloader = Reloader::new(
        dir.clone(),
        ProbeSettings::default(),
        settings,
        initial,
        sink,
        Arc::new(ReloadMetrics::default()),
    );
    reloader.warm().await;

    // Only b.yaml changes: a.yaml's build is re-used, the children still find `gw`.
    std::fs::write(dir.join("b.yaml"), children("gw", 4)).unwrap();
    let outcome = reloader.reload(Trigger::Http).await;
    assert_eq!(
        outcome.result,
        ReloadResult::Success,
        "{:?}",
        outcome.errors
    );
    let running = applied.try_recv().expect("applied");
    assert_eq!(parent_names(&running, "atm-3"), ["gw"]);
    let gw = running.index_of("gw").unwrap();
    assert_eq!(running.children(gw).len(), 4);

    // Only a.yaml changes, and takes `gw` away while b.yaml (unchanged, cached) names it.
    let without_gw = GATEWAYS.replace(
        "          - { name: gw, address: 127.40.0.2, kind: router, parents: [core] }\n",
        "",
    );
    std::fs::write(dir.join("a.yaml"), &without_gw).unwrap();
    let outcome = reloader.reload(Trigger::Http).await;
    assert_eq!(outcome.result, ReloadResult::Failure);
    let place = format!("{}:5:19: ", dir.join("b.yaml").display());
    assert_eq!(
        outcome.errors,
        [format!("{place}parents: no device is named \"gw\"")],
        "one error, at the name's place, not one per child"
    );
    assert!(applied.try_recv().is_err(), "nothing applied");
    let status = reloader.status();
    assert_eq!(
        (status.revision, status.devices),
        (1, 6),
        "the old inventory runs"
    );

    // A cycle made by one file against another that is cached: refused as well.
    std::fs::write(
        dir.join("a.yaml"),
        GATEWAYS.replace("kind: router }", "kind: router, parents: [atm-0] }"),
    )
    .unwrap();
    let outcome = reloader.reload(Trigger::Http).await;
    assert_eq!(outcome.result, ReloadResult::Failure);
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert!(
        outcome.errors[0].ends_with("parents: a cycle: core -> atm-0 -> gw -> core"),
        "{:?}",
        outcome.errors
    );

    // Naming the core instead of the gateway: applied, the graph follows.
    std::fs::write(dir.join("a.yaml"), &without_gw).unwrap();
    std::fs::write(dir.join("b.yaml"), children("core", 4)).unwrap();
    let outcome = reloader.reload(Trigger::Http).await;
    assert_eq!(
        outcome.result,
        ReloadResult::Success,
        "{:?}",
        outcome.errors
    );
    let running = applied.try_recv().expect("applied");
    assert_eq!(parent_names(&running, "atm-0"), ["core"]);
    assert_eq!(running.children(running.index_of("core").unwrap()).len(), 4);
}

#[test]
fn victoriametrics_url_is_read_under_its_old_name_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::copy(
        testdata().join("invalid/victoriametrics/inventory/lo.yaml"),
        dir.path().join("inventory/lo.yaml"),
    )
    .unwrap();
    let path = dir.path().join("wardops.yaml");
    for (text, url) in [
        (
            "web:\n  victoriametrics_url: http://127.0.0.1:8428/\n",
            "http://127.0.0.1:8428",
        ),
        (
            "victoriametrics:\n  url: http://127.0.0.1:8428\n",
            "http://127.0.0.1:8428",
        ),
        (
            "victoriametrics:\n  url: http://127.0.0.1:8428\nweb:\n  victoriametrics_url: http://127.0.0.1:8428\n",
            "http://127.0.0.1:8428",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let s = Config::load_with_env(&path, &no_env())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .settings;
        assert_eq!(s.victoriametrics.url.as_deref(), Some(url), "{text}");
        assert_eq!(s.web.victoriametrics_url.as_deref(), Some(url), "{text}");
        assert_eq!(s.victoriametrics.timeout, std::time::Duration::from_secs(5));
    }
}

#[test]
fn snmp_settings_and_uplinks_resolve_with_secrets_read_from_files() {
    use wardops::config::snmp::Uplinks;
    use wardops::snmp::Credentials;
    let inv = valid_inventory("snmp");
    let snmp = |name: &str| inv.device(name).unwrap().snmp.clone();
    let vake = snmp("vake-rtr").unwrap();
    assert_eq!(vake.port, 1161);
    assert_eq!(
        vake.credentials,
        Credentials::V2c {
            community: "not-a-real-community".into()
        }
    );
    assert!(matches!(&vake.uplinks, Uplinks::ByAlias(rules) if rules.len() == 2));
    let saburtalo = snmp("saburtalo-rtr").unwrap();
    assert!(matches!(
        &saburtalo.credentials,
        Credentials::V3 {
            privacy: Some(_),
            ..
        }
    ));
    assert!(matches!(&saburtalo.uplinks, Uplinks::Listed(list) if list.len() == 2));
    assert_eq!(snmp("vake-atm"), None);
    assert_eq!(
        inv.summary(),
        "3 devices in 1 branches of 1 regions, 2 with ISP uplinks polled over SNMP"
    );
}
