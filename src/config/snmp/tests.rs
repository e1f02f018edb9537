//! The inventory's `snmp:` and `uplinks:` as the loader resolves them, and every
//! problem it reports about them, at its place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::Inventory;
use crate::config::load::{Source, build_file, build_inventory};
use crate::snmp::{AuthProtocol, PrivProtocol};

/// Sets `name` for this test alone: every test uses names of its own.
fn set_env(name: &str, value: &str) {
    // SAFETY: the names are unique to one test, so no other test reads or writes them;
    // nextest runs each test in a process of its own anyway.
    unsafe { std::env::set_var(name, value) };
}

fn source(path: &Path, text: &str) -> Source {
    Source {
        path: path.to_path_buf(),
        text: text.to_string(),
    }
}

fn build(text: &str) -> Result<Inventory, Vec<String>> {
    build_inventory(&[source(Path::new("f.yaml"), text)], &Default::default())
        .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

fn snmp<'a>(inventory: &'a Inventory, device: &str) -> &'a DeviceSnmp {
    inventory.device(device).unwrap().snmp.as_deref().unwrap()
}

#[test]
fn settings_cascade_key_by_key_from_region_to_branch_to_device() {
    set_env("WARDOPS_T_CASCADE_COMMUNITY", "c0mmunity");
    set_env("WARDOPS_T_CASCADE_AUTH", "authkey-long-enough");
    set_env("WARDOPS_T_CASCADE_PRIV", "privkey-long-enough");
    let text = r#"
regions:
  - name: Tbilisi
    snmp:
      version: 2c
      community_env: WARDOPS_T_CASCADE_COMMUNITY
      port: 2161
      timeout: 3s
      retries: 2
      interval: 1m
    uplinks:
      - { alias: "*MAGTI*", isp: Magti }
      - { alias: "*SILKNET*", isp: Silknet }
    branches:
      - name: Vake
        snmp: { port: 1161 }
        devices:
          - { name: vake-rtr, address: 127.0.0.1, kind: router, snmp: {} }
          - name: saburtalo-rtr
            address: 127.0.0.2
            kind: router
            snmp:
              version: 3
              user: wardops
              auth: sha256
              auth_key_env: WARDOPS_T_CASCADE_AUTH
              privacy: aes128
              privacy_key_env: WARDOPS_T_CASCADE_PRIV
              timeout: 500ms
            uplinks:
              - { isp: Magti, name: Gi0/0 }
              - { isp: Silknet, index: 3 }
          - { name: vake-atm, address: 127.0.0.3, kind: atm }
      - name: Didube
        devices:
          - { name: didube-rtr, address: 127.0.0.4, kind: router, uplinks: [{ isp: Magti, descr: "GigabitEthernet0/1" }, { isp: Caucasus, alias: to-caucasus }] }
          - { name: didube-sw, address: 127.0.0.5, kind: switch, snmp: { version: "2c", retries: 0 } }
"#;
    let inventory = build(text).unwrap();

    let vake = snmp(&inventory, "vake-rtr");
    assert_eq!(vake.port, 1161, "the branch's port over the region's");
    assert_eq!(
        (vake.timeout, vake.retries, vake.interval),
        (Duration::from_secs(3), 2, Duration::from_secs(60))
    );
    assert_eq!(
        vake.credentials,
        Credentials::V2c {
            community: "c0mmunity".into()
        }
    );
    let Uplinks::ByAlias(rules) = &vake.uplinks else {
        panic!("{:?}", vake.uplinks)
    };
    assert_eq!(
        **rules,
        [
            AliasRule::new("*MAGTI*", "Magti"),
            AliasRule::new("*SILKNET*", "Silknet")
        ]
    );

    let saburtalo = snmp(&inventory, "saburtalo-rtr");
    assert_eq!(saburtalo.port, 1161);
    assert_eq!(saburtalo.timeout, Duration::from_millis(500));
    assert_eq!(saburtalo.retries, 2);
    assert_eq!(
        saburtalo.credentials,
        Credentials::V3 {
            user: "wardops".into(),
            auth: AuthProtocol::Sha256,
            auth_key: "authkey-long-enough".into(),
            privacy: Some((PrivProtocol::Aes128, "privkey-long-enough".into())),
        }
    );
    let listed = |u: &Uplinks| match u {
        Uplinks::Listed(l) => l
            .iter()
            .map(|s| (s.isp.to_string(), s.interface.clone()))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        listed(&saburtalo.uplinks),
        [
            ("Magti".to_string(), Matcher::Name("Gi0/0".into())),
            ("Silknet".to_string(), Matcher::Index(3)),
        ]
    );

    assert_eq!(inventory.device("vake-atm").unwrap().snmp, None);

    // `uplinks:` alone makes a device polled, with the region's settings.
    let didube = snmp(&inventory, "didube-rtr");
    assert_eq!((didube.port, didube.retries), (2161, 2));
    assert_eq!(
        listed(&didube.uplinks),
        [
            (
                "Magti".to_string(),
                Matcher::Descr("GigabitEthernet0/1".into())
            ),
            ("Caucasus".to_string(), Matcher::Alias("to-caucasus".into())),
        ]
    );

    // One list of rules for the whole region, whatever the branch.
    let switch = snmp(&inventory, "didube-sw");
    assert_eq!(switch.retries, 0);
    let (Uplinks::ByAlias(a), Uplinks::ByAlias(b)) = (&vake.uplinks, &switch.uplinks) else {
        panic!()
    };
    assert!(Arc::ptr_eq(a, b));
}

#[test]
fn a_device_without_settings_above_it_gets_the_defaults() {
    set_env("WARDOPS_T_DEFAULTS_COMMUNITY", "public-not");
    let text = "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n          - { name: d, address: 127.0.0.1, kind: router, snmp: { community_env: WARDOPS_T_DEFAULTS_COMMUNITY }, uplinks: [{ isp: Magti, index: 1 }] }\n";
    let inventory = build(text).unwrap();
    let d = snmp(&inventory, "d");
    assert_eq!(d.port, crate::snmp::DEFAULT_PORT);
    assert_eq!(
        (d.timeout, d.retries, d.interval),
        (DEFAULT_TIMEOUT, DEFAULT_RETRIES, DEFAULT_INTERVAL)
    );
    assert!(!format!("{inventory:?}").contains("public-not"));
}

#[test]
fn secrets_come_from_files_relative_to_the_inventory_file_and_never_show_in_debug() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/community"), "s3cret-community\r\n").unwrap();
    std::fs::write(dir.path().join("secrets/auth"), "s3cret-auth\n").unwrap();
    let text = "regions:\n  - name: r\n    snmp: { community_file: secrets/community }\n    uplinks: [{ alias: '*', isp: Any }]\n    branches:\n      - name: b\n        devices:\n          - { name: a, address: 127.0.0.1, kind: router, snmp: {} }\n          - { name: b, address: 127.0.0.2, kind: router, snmp: { version: 3, user: u, auth: SHA512, auth_key_file: secrets/auth } }\n";
    let path: PathBuf = dir.path().join("t.yaml");
    let inventory = build_inventory(&[source(&path, text)], &Default::default()).unwrap();
    assert_eq!(
        snmp(&inventory, "a").credentials,
        Credentials::V2c {
            community: "s3cret-community".into()
        }
    );
    assert_eq!(
        snmp(&inventory, "b").credentials,
        Credentials::V3 {
            user: "u".into(),
            auth: AuthProtocol::Sha512,
            auth_key: "s3cret-auth".into(),
            privacy: None,
        }
    );
    let debug = format!("{inventory:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn a_rebuild_keeps_unchanged_devices_and_the_regions_rules_and_rebuilds_on_an_snmp_change() {
    set_env("WARDOPS_T_RELOAD_COMMUNITY", "c");
    let text = |port: u16| {
        format!(
            "regions:\n  - name: r\n    snmp: {{ community_env: WARDOPS_T_RELOAD_COMMUNITY }}\n    uplinks: [{{ alias: '*M*', isp: Magti }}]\n    branches:\n      - name: b\n        devices:\n          - {{ name: a, address: 127.0.0.1, kind: router, snmp: {{}} }}\n          - {{ name: b, address: 127.0.0.2, kind: router, snmp: {{ port: {port} }} }}\n"
        )
    };
    let path = Path::new("f.yaml");
    let defaults = Default::default();
    let first = build_file(&source(path, &text(161)), &defaults, None).unwrap();
    let second = build_file(&source(path, &text(1161)), &defaults, Some(&first)).unwrap();
    let same = |name: &str| Arc::ptr_eq(first.device(name).unwrap(), second.device(name).unwrap());
    assert!(same("a"));
    assert!(!same("b"), "only its port changed");
    assert_eq!(snmp(&second, "b").port, 1161);
    let (Uplinks::ByAlias(x), Uplinks::ByAlias(y)) =
        (&snmp(&second, "a").uplinks, &snmp(&second, "b").uplinks)
    else {
        panic!()
    };
    assert!(
        Arc::ptr_eq(x, y),
        "the reused device and the new share the rules"
    );
}

#[test]
fn every_problem_is_reported_at_its_place() {
    set_env("WARDOPS_T_ERRORS_SET", "x");
    let text = r#"regions:
  - name: r
    snmp: { community: public, port: 0, timeout: 2, retries: 9, interval: 500ms, version: 1 }
    uplinks:
      - { alias: "", isp: Magti }
      - { alias: "*X*" }
    branches:
      - name: b
        uplinks: [{ alias: "*", isp: A }]
        snmp: { auth: md5, comunity_env: X }
  - name: s
    branches:
      - name: c
        devices:
          - { name: a, address: 127.0.0.1, kind: router, snmp: {} }
          - { name: b, address: 127.0.0.2, kind: router, snmp: { community_env: WARDOPS_T_ERRORS_UNSET } }
          - { name: c, address: 127.0.0.3, kind: router, snmp: { version: 3, user: u, privacy: aes192 }, uplinks: [{ isp: M, index: 1 }] }
          - { name: d, address: 127.0.0.4, kind: router, snmp: { version: 3, user: u, auth: sha256, auth_key_env: WARDOPS_T_ERRORS_SET, auth_key_file: k, privacy: aes256 }, uplinks: [{ isp: M, index: 1 }] }
          - { name: e, address: 127.0.0.5, kind: router, snmp: { community_file: missing, port: 70000 }, uplinks: [{ isp: M, index: 1 }] }
          - name: f
            address: 127.0.0.6
            kind: router
            snmp: { community_env: WARDOPS_T_ERRORS_SET, auth_key: k, privacy_key: p, password: w }
            uplinks:
              - { isp: M }
              - { isp: M, name: Gi0/0, index: 2 }
              - { name: Gi0/1 }
              - { isp: N, index: 0 }
              - { isp: "M\u0007", alias: "" }
              - { isp: O, descr: d }
              - { isp: O, descr: e }
          - { name: g, address: 127.0.0.7, kind: router, snmp: { community_env: WARDOPS_T_ERRORS_SET }, uplinks: [] }
          - { name: h, address: 127.0.0.8, kind: router, snmp: { community_env: WARDOPS_T_ERRORS_SET }, uplinks: {} }
          - { name: i, address: 127.0.0.9, kind: router, snmp: { version: 3, user: u, auth: sha384, auth_key_env: WARDOPS_T_ERRORS_SET, privacy_key_env: WARDOPS_T_ERRORS_SET }, uplinks: [{ isp: M, index: 1 }] }
          - { name: j, address: 127.0.0.10, kind: router, snmp: { version: 3, user: u, auth: sha-1, auth_key_env: WARDOPS_T_ERRORS_SET, privacy: des }, uplinks: [{ isp: M, index: 1 }] }
  - name: t
    snmp: { privacy_key_env: WARDOPS_T_ERRORS_SET }
"#;
    let errors = build(text).unwrap_err();
    let expected = [
        "f.yaml:3:24: snmp.community: secrets are not written in the inventory: use community_env or community_file",
        "f.yaml:3:38: snmp.port 0 is out of range (1 to 65535)",
        "f.yaml:3:50: snmp.timeout: duration \"2\" needs a unit (ms, s, m or h)",
        "f.yaml:3:62: snmp.retries 9 is out of range (0 to 5)",
        "f.yaml:3:75: snmp.interval 500ms is out of range (1s to 1h)",
        "f.yaml:3:91: snmp.version: \"1\" is not 2c or 3",
        "f.yaml:5:18: region \"r\": uplinks alias is empty",
        "f.yaml:6:9: region \"r\": uplinks: a rule needs alias (an ifAlias pattern such as \"*MAGTI*\") and isp",
        "f.yaml:9:18: uplinks: not on a branch: alias rules belong on its region, a device's own list on the device",
        "f.yaml:10:23: snmp.auth: md5 is refused: MD5 and SHA-1 are obsolete digests (weak key localisation, 96-bit MACs); use sha224, sha256, sha384 or sha512 (RFC 7860)",
        "f.yaml:10:28: snmp: unknown key \"comunity_env\" (did you mean \"community_env\"?)",
        "f.yaml:15:64: device \"a\": SNMP v2c needs community_env or community_file (on the device, its branch or its region)",
        "f.yaml:15:64: device \"a\": snmp: the device has no uplinks: give it an uplinks: list (isp and one of name, descr, alias, index), or its region uplinks: rules (alias patterns to ISPs)",
        "f.yaml:16:64: device \"b\": snmp: the device has no uplinks: give it an uplinks: list (isp and one of name, descr, alias, index), or its region uplinks: rules (alias patterns to ISPs)",
        "f.yaml:16:81: snmp.community_env: the environment variable WARDOPS_T_ERRORS_UNSET is not set (or empty)",
        "f.yaml:17:64: device \"c\": SNMP v3 needs auth; auth_key_env or auth_key_file; privacy_key_env or privacy_key_file for its privacy (on the device, its branch or its region)",
        "f.yaml:18:152: snmp.auth_key_file: give auth_key_env or auth_key_file, not both",
        "f.yaml:19:82: snmp.community_file: cannot read missing: No such file or directory (os error 2)",
        "f.yaml:19:97: snmp.port 70000 is out of range (1 to 65535)",
        "f.yaml:23:68: snmp.auth_key: secrets are not written in the inventory: use auth_key_env or auth_key_file",
        "f.yaml:23:84: snmp.privacy_key: secrets are not written in the inventory: use privacy_key_env or privacy_key_file",
        "f.yaml:23:97: snmp.password: secrets are not written in the inventory: use auth_key_env or auth_key_file (the v3 authentication key)",
        "f.yaml:25:17: device \"f\": uplinks: give the interface by one of name (ifName), descr (ifDescr), alias (ifAlias) or index (ifIndex)",
        "f.yaml:26:24: device \"f\": uplinks: ISP \"M\" is listed twice",
        "f.yaml:26:47: device \"f\": uplinks: give one of name, descr, alias or index, not both name and index",
        "f.yaml:27:17: device \"f\": uplinks: missing isp (the ISP this interface carries)",
        "f.yaml:28:34: device \"f\": uplinks.index: expected a whole number from 1 (an ifIndex), found \"0\"",
        "f.yaml:29:24: device \"f\": uplinks isp \"M\\u{7}\" contains control characters",
        "f.yaml:29:42: device \"f\": uplinks alias is empty",
        "f.yaml:31:24: device \"f\": uplinks: ISP \"O\" is listed twice",
        "f.yaml:32:114: device \"g\": uplinks: the list is empty: list its uplinks, or remove uplinks: to use its region's rules",
        "f.yaml:33:114: uplinks: expected a list",
        "f.yaml:34:154: snmp: a privacy key without privacy (aes128, aes192 or aes256) here or above: add privacy, or remove the key for authNoPriv",
        "f.yaml:35:94: snmp.auth: sha-1 is refused: MD5 and SHA-1 are obsolete digests (weak key localisation, 96-bit MACs); use sha224, sha256, sha384 or sha512 (RFC 7860)",
        "f.yaml:35:146: snmp.privacy: \"des\" is not one of aes128, aes192, aes256 (DES is refused: a 56-bit key)",
        "f.yaml:37:30: snmp: a privacy key without privacy (aes128, aes192 or aes256) here or above: add privacy, or remove the key for authNoPriv",
    ];
    assert_eq!(errors, expected, "{}", errors.join("\n"));
}

#[test]
fn version_3_may_be_written_plain_or_quoted() {
    set_env("WARDOPS_T_VERSION_AUTH", "authkey-long-enough");
    for version in ["3", "\"3\"", "'3'"] {
        let text = format!(
            "regions:\n  - name: r\n    uplinks: [{{ alias: '*', isp: Any }}]\n    branches:\n      - name: b\n        devices:\n          - {{ name: d, address: 127.0.0.1, kind: router, snmp: {{ version: {version}, user: u, auth: sha224, auth_key_env: WARDOPS_T_VERSION_AUTH }} }}\n"
        );
        let inventory = build(&text).unwrap();
        assert!(
            matches!(
                snmp(&inventory, "d").credentials,
                Credentials::V3 {
                    auth: AuthProtocol::Sha224,
                    privacy: None,
                    ..
                }
            ),
            "{version}"
        );
    }
}

#[test]
fn an_empty_secret_is_an_error_whether_variable_or_file() {
    set_env("WARDOPS_T_EMPTY_COMMUNITY", "");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blank"), "\n").unwrap();
    let text = "regions:\n  - name: r\n    uplinks: [{ alias: '*', isp: Any }]\n    branches:\n      - name: b\n        devices:\n          - { name: a, address: 127.0.0.1, kind: router, snmp: { community_env: WARDOPS_T_EMPTY_COMMUNITY } }\n          - { name: b, address: 127.0.0.2, kind: router, snmp: { community_file: blank } }\n";
    let path = dir.path().join("t.yaml");
    let errors: Vec<String> = build_inventory(&[source(&path, text)], &Default::default())
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    let shown = dir.path().display();
    assert_eq!(
        errors,
        [
            format!(
                "{shown}/t.yaml:7:81: snmp.community_env: the environment variable WARDOPS_T_EMPTY_COMMUNITY is not set (or empty)"
            ),
            format!("{shown}/t.yaml:8:82: snmp.community_file: {shown}/blank is empty"),
        ]
    );
}
