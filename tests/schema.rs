//! The JSON Schemas of the configuration (`wardops schema`, `schema/`) against the
//! config test table, with Python's `jsonschema` reading the YAML as an editor does
//! (YAML 1.2's core schema: `off` and `22:00` are text): the shipped configuration, a
//! demo's and every valid case pass; every invalid case is refused, except those whose
//! problem no schema can see — listed below with why, so a new case must be sorted.
//!
//! Needs `python3` with `jsonschema` and `PyYAML`; scripts/test installs them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Invalid cases a schema cannot refuse, and why: `wardops check` does.
const BEYOND_A_SCHEMA: &[(&str, &str)] = &[
    ("bad-address", "an address that is text but no IP address"),
    ("duplicate-address", "across devices"),
    ("duplicate-branch", "across branches"),
    ("duplicate-device-name", "across files"),
    ("duplicate-key", "the YAML loader keeps the last value"),
    ("duplicate-region", "across files"),
    ("duration-overflow", "a duration past u64 seconds"),
    ("duration-overflow-settings", "a duration past u64 seconds"),
    (
        "degraded-settings",
        "two values at once (a threshold and the timeout)",
    ),
    (
        "victoriametrics",
        "two values at once, and a duration's range",
    ),
    ("empty-inventory-dir", "no file to validate"),
    ("missing-inventory-dir", "no file to validate"),
    ("no-devices", "the whole inventory has none"),
    ("parents-cycle", "across devices"),
    ("parents-self", "across the cascade"),
    ("parents-unknown", "across files"),
    ("probe-longer-than-interval", "two values at once"),
    ("retry-longer-than-interval", "two values at once"),
];

const CHECK: &str = r#"
import json, re, sys
import jsonschema, yaml

# YAML 1.2 core, as yaml-language-server reads it: only true/false are booleans, no
# sexagesimal numbers, no timestamps.
class Core(yaml.SafeLoader):
    pass
Core.yaml_implicit_resolvers = {
    k: [(t, r) for t, r in v if t not in (
        "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Core.add_implicit_resolver("tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Core.add_implicit_resolver("tag:yaml.org,2002:int",
    re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
Core.add_implicit_resolver("tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?$"), list("-+0123456789."))

out = []
for schema_path, file in json.load(sys.stdin):
    schema = json.load(open(schema_path))
    jsonschema.Draft202012Validator.check_schema(schema)
    try:
        doc = yaml.load(open(file, encoding="utf-8"), Loader=Core)
    except Exception as e:
        out.append([f"unreadable: {type(e).__name__}"])
        continue
    v = jsonschema.Draft202012Validator(schema)
    out.append([f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
                for e in v.iter_errors(doc)][:5])
print(json.dumps(out))
"#;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema_of(file: &Path) -> PathBuf {
    let which = if file.file_name().is_some_and(|n| n == "wardops.yaml") {
        "settings"
    } else {
        "inventory"
    };
    root().join(format!("schema/{which}.schema.json"))
}

/// The errors the schema finds in each file.
fn validate(files: &[PathBuf]) -> Vec<Vec<String>> {
    let pairs: Vec<(String, String)> = files
        .iter()
        .map(|f| (schema_of(f).display().to_string(), f.display().to_string()))
        .collect();
    let mut child = Command::new("python3")
        .args(["-c", CHECK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    serde_json::to_writer(child.stdin.take().unwrap(), &pairs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 with jsonschema and PyYAML (pip install jsonschema pyyaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The YAML files of a configuration directory: its settings and its inventory files.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_committed_schemas_are_what_the_binary_prints() {
    for which in ["inventory", "settings"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wardops"))
            .args(["schema", which])
            .output()
            .unwrap();
        assert!(out.status.success());
        let committed = std::fs::read(root().join(format!("schema/{which}.schema.json"))).unwrap();
        assert!(
            out.stdout == committed,
            "schema/{which}.schema.json is stale: wardops schema {which} > schema/{which}.schema.json"
        );
    }
}

#[test]
fn the_shipped_demo_and_valid_configurations_pass() {
    let demo = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["demo", "--devices", "300", "--out"])
        .arg(demo.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut files = yaml_files(&root().join("config"));
    files.extend(yaml_files(demo.path()));
    for case in std::fs::read_dir(root().join("tests/testdata/config/valid")).unwrap() {
        files.extend(yaml_files(&case.unwrap().path()));
    }
    assert!(files.len() >= 10, "{files:?}");
    let errors = validate(&files);
    let wrong: Vec<String> = files
        .iter()
        .zip(&errors)
        .filter(|(_, e)| !e.is_empty())
        .map(|(f, e)| format!("{}: {e:?}", f.display()))
        .collect();
    assert!(wrong.is_empty(), "valid, refused:\n{}", wrong.join("\n"));
}

#[test]
fn every_invalid_case_is_refused_unless_no_schema_can_see_it() {
    let mut refused = BTreeSet::new();
    let mut passed = BTreeSet::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("tests/testdata/config/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    // One Python for every file of every case.
    let mut files = Vec::new();
    let mut owner = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        for f in yaml_files(case) {
            files.push(f);
            owner.push(name.clone());
        }
        passed.insert(name);
    }
    for (name, errors) in owner.iter().zip(validate(&files)) {
        if !errors.is_empty() {
            passed.remove(name);
            refused.insert(name.clone());
        }
    }
    let beyond: BTreeSet<String> = BEYOND_A_SCHEMA.iter().map(|(c, _)| c.to_string()).collect();
    let missed: Vec<_> = passed.difference(&beyond).collect();
    assert!(
        missed.is_empty(),
        "invalid, yet the schema takes them (refuse them, or list them in BEYOND_A_SCHEMA with why): {missed:?}"
    );
    let caught: Vec<_> = refused.intersection(&beyond).collect();
    assert!(
        caught.is_empty(),
        "listed as beyond a schema, yet refused: take them off the list: {caught:?}"
    );
    assert!(refused.len() >= 30, "{} refused", refused.len());
}
