//! Hot reload end to end: the real `wardops serve` binary, real files, real git, real
//! inotify, read back through `/api/v1/devices`, `/api/v1/status` and `/metrics`.
//! Every change must show within a second of being written.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Appliance, Blackhole, wait_for};

const SETTINGS: &str = "\
database_url: sqlite://wardops.db
inventory: inventory
probe:
  interval: 1s
  timeout: 200ms
  packets: 1
  down_after: 1
  retry_interval: 300ms
";

/// Devices `n<first>`.. at 127.78.<block>.<i>, each labelled `tag: <label>`.
fn yaml(block: u8, first: usize, count: usize, label: &str) -> String {
    let mut y =
        format!("regions:\n  - name: r{block}\n    branches:\n      - name: b\n        devices:\n");
    for i in first..first + count {
        y += &format!(
            "          - {{ name: n{block}-{i}, address: 127.78.{block}.{}, kind: atm, labels: {{ tag: {label} }} }}\n",
            i + 1
        );
    }
    y
}

fn setup(settings_extra: &str, files: &[(&str, String)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("wardops.yaml"),
        format!("{SETTINGS}{}{settings_extra}", support::ACCESS),
    )
    .unwrap();
    support::write_users(tmp.path());
    std::fs::create_dir(tmp.path().join("inventory")).unwrap();
    for (name, text) in files {
        std::fs::write(tmp.path().join("inventory").join(name), text).unwrap();
    }
    tmp
}

fn editor_save(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@wardops.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(app: &Appliance) -> Vec<String> {
    let list = app.get_json("/api/v1/devices?limit=1000");
    let mut v: Vec<String> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Polls until `check` holds, failing if that takes a second or more from now.
fn within_a_second(app: &Appliance, what: &str, check: impl Fn(&Appliance) -> bool) {
    let start = Instant::now();
    while !check(app) {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "not within a second: {what}\nstatus: {}\nlog:\n{}",
            app.try_get("/api/v1/status").unwrap_or_default(),
            app.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status(app: &Appliance) -> Value {
    app.get_json("/api/v1/status")
}

fn last_result(app: &Appliance) -> String {
    status(app)["inventory"]["last_reload"]["result"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn metric(app: &Appliance, name: &str) -> Option<f64> {
    let text = app.try_get("/metrics")?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn edits_git_checkouts_and_a_bad_commit_apply_or_are_rejected_within_a_second() {
    // It ends by replacing the whole inventory (5 devices by 1): deliberate, so past
    // the mass-removal guard.
    let tmp = setup(
        "reload:\n  max_removed_share: 1\n",
        &[("a.yaml", yaml(1, 0, 3, "v1"))],
    );
    let inv = tmp.path().join("inventory");
    git(&inv, &["init", "-q"]);
    git(&inv, &["add", "."]);
    git(&inv, &["commit", "-qm", "one"]);
    let app = Appliance::start(tmp.path());
    let s = status(&app);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["inventory"]["revision"], 0);
    assert_eq!(s["devices"]["total"], 3);
    assert_eq!(
        metric(&app, "wardops_config_last_reload_successful"),
        Some(1.0)
    );

    // An editor's save: temp file + rename.
    editor_save(&inv.join("a.yaml"), &yaml(1, 0, 4, "v2"));
    within_a_second(&app, "the editor's save", |a| {
        status(a)["inventory"]["revision"] == 1
    });
    assert_eq!(
        names(&app).len(),
        4,
        "a revision the status reports is one the state already runs"
    );

    // A commit on a branch, checked out: one reload, applied whole.
    git(&inv, &["checkout", "-qb", "next"]);
    std::fs::write(inv.join("b.yaml"), yaml(2, 0, 2, "v1")).unwrap();
    std::fs::write(inv.join("a.yaml"), yaml(1, 0, 2, "v3")).unwrap();
    git(&inv, &["add", "-A"]);
    git(&inv, &["commit", "-qm", "two"]);
    git(&inv, &["checkout", "-q", "main"]);
    within_a_second(&app, "back on main", |a| {
        names(a) == ["n1-0", "n1-1", "n1-2"]
    });
    let before = status(&app)["inventory"]["revision"].as_u64().unwrap();
    git(&inv, &["checkout", "-q", "next"]);
    within_a_second(&app, "commit two", |a| {
        names(a) == ["n1-0", "n1-1", "n2-0", "n2-1"]
    });
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        status(&app)["inventory"]["revision"].as_u64().unwrap(),
        before + 1,
        "one checkout, one reload"
    );
    // A removed device's series are gone from /metrics.
    let metrics = app.try_get("/metrics").unwrap();
    assert!(metrics.contains("device=\"n2-0\""));
    assert!(
        !metrics.contains("device=\"n1-2\""),
        "removed device still in /metrics"
    );

    // A bad commit: rejected, every error with its place, the running inventory stays.
    std::fs::write(
        inv.join("b.yaml"),
        yaml(2, 0, 2, "v1").replace("127.78.2.2", "127.78.2.300"),
    )
    .unwrap();
    within_a_second(&app, "the rejection", |a| last_result(a) == "failure");
    let s = status(&app);
    let errors = s["inventory"]["last_reload"]["errors"].as_array().unwrap();
    assert!(
        errors[0].as_str().unwrap().contains("b.yaml:7:"),
        "{errors:?}"
    );
    assert_eq!(s["inventory"]["last_reload_successful"], false);
    assert_eq!(
        metric(&app, "wardops_config_last_reload_successful"),
        Some(0.0)
    );
    assert!(
        app.log().contains("b.yaml:7:"),
        "errors are logged with file:line:column"
    );
    assert_eq!(names(&app).len(), 4);

    // The fix applies.
    std::fs::write(inv.join("b.yaml"), yaml(2, 0, 3, "v1")).unwrap();
    within_a_second(&app, "the fix", |a| names(a).len() == 5);
    assert_eq!(
        metric(&app, "wardops_config_last_reload_successful"),
        Some(1.0)
    );
    assert!(metric(&app, "wardops_config_reloads_total{result=\"failure\"}").unwrap() >= 1.0);

    // The whole directory deleted: invalid, nothing removed; recreated: applied.
    std::fs::remove_dir_all(&inv).unwrap();
    within_a_second(&app, "the deleted directory rejected", |a| {
        last_result(a) == "failure"
    });
    assert_eq!(names(&app).len(), 5);
    std::fs::create_dir(&inv).unwrap();
    std::fs::write(inv.join("c.yaml"), yaml(3, 0, 1, "new")).unwrap();
    within_a_second(&app, "the recreated directory", |a| names(a) == ["n3-0"]);
}

/// Files symlinked from outside the watched tree change without any event: SIGHUP and
/// `POST /-/reload` are how an operator says "now".
#[test]
fn sighup_and_post_reload_apply_changes_no_event_announced() {
    let tmp = setup("reload:\n  http_endpoint: true\n", &[]);
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("a.yaml"), yaml(4, 0, 2, "v1")).unwrap();
    std::os::unix::fs::symlink(outside.join("a.yaml"), tmp.path().join("inventory/a.yaml"))
        .unwrap();
    let app = Appliance::start(tmp.path());
    assert_eq!(names(&app).len(), 2);

    std::fs::write(outside.join("a.yaml"), yaml(4, 0, 3, "v2")).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(names(&app).len(), 2, "no event: not applied yet");
    let ok = Command::new("kill")
        .args(["-HUP", &app.pid().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    within_a_second(&app, "SIGHUP's reload", |a| names(a).len() == 3);
    assert_eq!(
        status(&app)["inventory"]["last_reload"]["trigger"],
        "signal"
    );

    let client = reqwest::blocking::Client::new();
    std::fs::write(outside.join("a.yaml"), yaml(4, 0, 4, "v3")).unwrap();
    let started = Instant::now();
    let resp = client
        .post(app.url("/-/reload"))
        .basic_auth("admin", Some("secret"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(body["result"], "success");
    assert_eq!(body["diff"]["added"], 1);
    assert_eq!(body["diff"]["modified"], 3);
    assert_eq!(names(&app).len(), 4, "applied by the time the answer came");

    std::fs::write(outside.join("a.yaml"), "regions: [ { name: broken\n").unwrap();
    let resp = client
        .post(app.url("/-/reload"))
        .basic_auth("admin", Some("secret"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["result"], "failure");
    assert!(
        body["errors"][0].as_str().unwrap().contains("a.yaml:"),
        "{body}"
    );
    assert_eq!(names(&app).len(), 4);

    let resp = client
        .post(app.url("/-/reload"))
        .basic_auth("admin", Some("secret"))
        .send()
        .unwrap();
    assert_eq!(
        resp.status(),
        422,
        "explicit requests answer with the errors again"
    );
    assert_eq!(
        client.get(app.url("/-/reload")).send().unwrap().status(),
        405
    );
}

#[test]
fn post_reload_is_refused_unless_enabled() {
    let tmp = setup("", &[("a.yaml", yaml(5, 0, 1, "v1"))]);
    let app = Appliance::start(tmp.path());
    let resp = reqwest::blocking::Client::new()
        .post(app.url("/-/reload"))
        .basic_auth("admin", Some("secret"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("http_endpoint: true"),
        "{body}"
    );
    assert_eq!(status(&app)["inventory"]["http_endpoint"], false);
}

/// A device that is down (its echo requests blackholed) keeps its `down_since` when a
/// reload changes its labels and kind.
#[test]
fn a_down_device_keeps_down_since_across_a_relabel() {
    let tmp = setup("", &[("a.yaml", yaml(6, 0, 2, "v1"))]);
    let app = Appliance::start(tmp.path());
    let _hole = Blackhole::new("reload", &["127.78.6.1"]);
    let down_since = wait_for(Duration::from_secs(10), "n6-0 down", || {
        let d = app.get_json("/api/v1/devices/n6-0");
        (d["ping_status"] == "down").then(|| d["down_since"].as_str().unwrap().to_string())
    });
    editor_save(
        &tmp.path().join("inventory/a.yaml"),
        &yaml(6, 0, 2, "v2").replace("kind: atm", "kind: camera"),
    );
    within_a_second(&app, "the relabel", |a| {
        a.get_json("/api/v1/devices/n6-0")["labels"]["tag"] == "v2"
    });
    let d = app.get_json("/api/v1/devices/n6-0");
    assert_eq!(d["kind"], "camera");
    assert_eq!(d["ping_status"], "down");
    assert_eq!(d["down_since"].as_str().unwrap(), down_since);
    assert_eq!(status(&app)["devices"]["down"], 1);
}

/// Through the binary: a change that would remove most devices (what a writer that died
/// half-way leaves) is refused, shown in `/api/v1/status` and logged; the devices stay.
#[test]
fn a_reload_removing_most_devices_is_refused_shown_and_logged() {
    let tmp = setup("", &[("a.yaml", yaml(7, 0, 10, "v1"))]);
    let inv = tmp.path().join("inventory");
    let app = Appliance::start(tmp.path());
    assert_eq!(names(&app).len(), 10);
    editor_save(&inv.join("a.yaml"), &yaml(7, 0, 3, "v1"));
    within_a_second(&app, "the refusal", |a| last_result(a) == "failure");
    let s = status(&app);
    let errors = s["inventory"]["last_reload"]["errors"].as_array().unwrap();
    let refused =
        "would remove 7 of the 10 running devices (70%), more than reload.max_removed_share (50%)";
    assert!(errors[0].as_str().unwrap().contains(refused), "{errors:?}");
    assert!(app.log().contains(refused), "logged:\n{}", app.log());
    assert_eq!(names(&app).len(), 10, "the running inventory stays");
}

/// Through the binary: a file rewritten in place by a writer that pauses half-way, at a
/// line boundary, is applied whole once the writer closes it, never half.
#[test]
fn a_write_that_pauses_half_way_is_applied_whole() {
    let tmp = setup("", &[("a.yaml", yaml(8, 0, 40, "v1"))]);
    let inv = tmp.path().join("inventory");
    let app = Appliance::start(tmp.path());
    let text = yaml(8, 0, 40, "v2");
    let cut = text.find("name: n8-30,").unwrap();
    let cut = text[..cut].rfind('\n').unwrap() + 1;
    let mut f = std::fs::File::create(inv.join("a.yaml")).unwrap();
    std::io::Write::write_all(&mut f, &text.as_bytes()[..cut]).unwrap();
    f.sync_data().unwrap();
    let paused = Instant::now();
    while paused.elapsed() < Duration::from_millis(600) {
        assert_eq!(names(&app).len(), 40, "a half-written file was applied");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::io::Write::write_all(&mut f, &text.as_bytes()[cut..]).unwrap();
    drop(f);
    within_a_second(&app, "the whole file", |a| {
        status(a)["inventory"]["revision"] == 1
    });
    assert_eq!(names(&app).len(), 40);
}
