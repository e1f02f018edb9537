//! The reloader against real files, real git and real inotify, in process: a `State`
//! and `Scheduler` on a fake pinger receive what it sends, as the app's supervisor does.
//! Every change must be applied (or rejected) within a second of being written.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use wardops::config::settings::ReloadSettings;
use wardops::config::{Inventory, ProbeSettings, load};
use wardops::probe::{Pinger, ProbeOutcome, ProbeSpec};
use wardops::reload::{ReloadMetrics, ReloadResult, Reloader, Trigger, watch};
use wardops::schedule::{ProberMetrics, Scheduler};
use wardops::state::{State, Status, SystemClock, TokioClock};

/// Answers every probe at once, except for addresses made unreachable.
#[derive(Default)]
struct FakePinger {
    unreachable: Mutex<Vec<IpAddr>>,
    probes: Mutex<Vec<Instant>>,
}

impl Pinger for FakePinger {
    fn probe(&self, address: IpAddr, spec: ProbeSpec) -> impl Future<Output = ProbeOutcome> + Send {
        self.probes.lock().push(Instant::now());
        let reachable = !self.unreachable.lock().contains(&address);
        async move {
            if reachable {
                ProbeOutcome {
                    sent: spec.packets,
                    received: spec.packets,
                    rtt: Some(Duration::from_millis(1)),
                }
            } else {
                sleep(spec.timeout).await;
                ProbeOutcome {
                    sent: spec.packets,
                    received: 0,
                    rtt: None,
                }
            }
        }
    }
}

/// `count` devices `d<first>`.. in one region and branch, with a label.
fn yaml(first: usize, count: usize, label: &str) -> String {
    let mut y =
        String::from("regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n");
    for i in first..first + count {
        y += &format!(
            "          - {{ name: d{i}, address: 127.31.{}.{}, kind: atm, labels: {{ tag: {label} }} }}\n",
            i / 250,
            1 + i % 250
        );
    }
    y
}

struct Rig {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    state: State,
    reloader: Reloader,
    pinger: Arc<FakePinger>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Lays out the inventory with `setup(dir)`, loads it, and starts the reloader's
/// triggers (watch, periodic, SIGHUP) unless `watching` is false.
async fn rig(settings: ReloadSettings, watching: bool, setup: impl FnOnce(&Path)) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inventory");
    std::fs::create_dir(&dir).unwrap();
    setup(&dir);
    let initial = Arc::new(
        load::load_inventory(&dir, &ProbeSettings::default()).expect("valid initial inventory"),
    );
    let pinger = Arc::new(FakePinger::default());
    let state = State::new(Arc::new(SystemClock));
    let (tx, mut rx) = mpsc::channel::<Arc<Inventory>>(4);
    let mut scheduler = Scheduler::new(
        pinger.clone(),
        state.clone(),
        Arc::new(ProberMetrics::default()),
    );
    let supervisor = tokio::spawn(async move {
        while let Some(inventory) = rx.recv().await {
            let snapshot = scheduler.state().replace_inventory(inventory, |_| None);
            scheduler.sync(&snapshot);
        }
    });
    tx.send(initial.clone()).await.unwrap();
    let reloader = Reloader::new(
        dir.clone(),
        ProbeSettings::default(),
        settings,
        initial,
        tx,
        Arc::new(ReloadMetrics::default()),
    );
    let mut tasks = vec![supervisor];
    if watching {
        tasks.push(watch::spawn(reloader.clone()));
        // Let the watcher register before the test starts changing files.
        sleep(Duration::from_millis(100)).await;
    }
    Rig {
        _tmp: tmp,
        dir,
        state,
        reloader,
        pinger,
        tasks,
    }
}

async fn watched(setup: impl FnOnce(&Path)) -> Rig {
    rig(ReloadSettings::default(), true, setup).await
}

impl Rig {
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .state
            .snapshot()
            .inventory
            .devices
            .iter()
            .map(|d| d.name.to_string())
            .collect();
        names.sort();
        names
    }

    fn label(&self, device: &str) -> Option<String> {
        self.state
            .snapshot()
            .inventory
            .device(device)
            .and_then(|d| d.labels.get("tag").map(str::to_string))
    }

    /// Waits (at most a second from now) until `check` holds; returns how long it took.
    async fn within_a_second(&self, what: &str, check: impl Fn(&Rig) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if check(self) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "not within a second: {what}; status {:?}",
                self.reloader.status()
            );
            sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until a reload attempt was rejected, then checks nothing was applied.
    async fn rejected(&self, revision: u64, what: &str) -> Vec<String> {
        self.within_a_second(what, |r| {
            r.reloader
                .status()
                .last_reload
                .is_some_and(|l| l.result == ReloadResult::Failure)
        })
        .await;
        let status = self.reloader.status();
        assert!(!status.last_reload_successful);
        assert_eq!(status.revision, revision, "nothing applied");
        status.last_reload.unwrap().errors
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Like an editor: write a temporary file beside it, then rename it over the original.
fn editor_save(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.swp",
        path.file_name().unwrap().to_string_lossy()
    ));
    write(&tmp, text);
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_style_save_applies() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 3, "x"))).await;
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 4, "y"));
    rig.within_a_second("4 devices labelled y", |r| {
        r.names().len() == 4 && r.label("d0").as_deref() == Some("y")
    })
    .await;
    let status = rig.reloader.status();
    assert_eq!(status.revision, 1);
    assert!(status.last_reload_successful);
    let diff = status.last_reload.unwrap().diff.unwrap();
    assert_eq!((diff.added, diff.modified, diff.removed), (1, 3, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_write_applies() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 3, "x"))).await;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(rig.dir.join("a.yaml"))
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        b"          - { name: extra, address: 127.31.9.9, kind: router }\n",
    )
    .unwrap();
    drop(f);
    rig.within_a_second("the appended device", |r| {
        r.names().contains(&"extra".to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_content_is_not_reapplied() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 3, "x"))).await;
    let version = rig.state.snapshot().version;
    write(&rig.dir.join("a.yaml"), &yaml(0, 3, "x"));
    sleep(Duration::from_millis(800)).await;
    assert_eq!(rig.reloader.status().revision, 0);
    assert_eq!(rig.state.snapshot().version, version);
    let outcome = rig.reloader.reload(Trigger::Http).await;
    assert_eq!(outcome.result, ReloadResult::Unchanged);
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=wardops-test",
            "-c",
            "user.email=test@wardops.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_checkout_of_another_commit_is_one_reload() {
    // Going back to commit one removes 6 of 10 devices: deliberate here.
    let everything = ReloadSettings {
        max_removed_share: 1.0,
        ..ReloadSettings::default()
    };
    let rig = rig_with(everything, |d| {
        git(d, &["init", "-q"]);
        write(
            &d.join("a.yaml"),
            &yaml(0, 2, "old").replace("name: r\n", "name: r1\n"),
        );
        write(
            &d.join("b.yaml"),
            &yaml(2, 2, "old").replace("name: r\n", "name: r2\n"),
        );
        git(d, &["add", "."]);
        git(d, &["commit", "-qm", "one"]);
        git(d, &["checkout", "-qb", "next"]);
        std::fs::remove_file(d.join("b.yaml")).unwrap();
        write(
            &d.join("a.yaml"),
            &yaml(0, 2, "new").replace("name: r\n", "name: r1\n"),
        );
        for f in ["c", "e", "f", "g"] {
            let first = 10 + 10 * (f.as_bytes()[0] - b'a') as usize;
            write(
                &d.join(format!("{f}.yaml")),
                &yaml(first, 2, "new").replace("name: r\n", &format!("name: {f}\n")),
            );
        }
        git(d, &["add", "-A"]);
        git(d, &["commit", "-qm", "two"]);
        git(d, &["checkout", "-q", "main"]);
    })
    .await;
    assert_eq!(rig.names(), ["d0", "d1", "d2", "d3"]);
    git(&rig.dir, &["checkout", "-q", "next"]);
    rig.within_a_second("commit two", |r| {
        r.names().len() == 10 && r.label("d0").as_deref() == Some("new")
    })
    .await;
    sleep(Duration::from_millis(600)).await;
    assert_eq!(
        rig.reloader.status().revision,
        1,
        "one checkout, one reload"
    );
    git(&rig.dir, &["checkout", "-q", "main"]);
    rig.within_a_second("back to commit one", |r| {
        r.names() == ["d0", "d1", "d2", "d3"]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_pull_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    std::fs::create_dir(&upstream).unwrap();
    git(&upstream, &["init", "-q"]);
    write(&upstream.join("a.yaml"), &yaml(0, 2, "v1"));
    git(&upstream, &["add", "."]);
    git(&upstream, &["commit", "-qm", "v1"]);
    let rig = watched(|d| {
        std::fs::remove_dir(d).unwrap();
        git(
            d.parent().unwrap(),
            &[
                "clone",
                "-q",
                upstream.to_str().unwrap(),
                d.to_str().unwrap(),
            ],
        );
    })
    .await;
    write(&upstream.join("a.yaml"), &yaml(0, 5, "v2"));
    git(&upstream, &["commit", "-qam", "v2"]);
    git(&rig.dir, &["pull", "-q", "--ff-only"]);
    rig.within_a_second("the pulled commit", |r| {
        r.names().len() == 5 && r.label("d0").as_deref() == Some("v2")
    })
    .await;
}

/// Kubernetes mounts a ConfigMap as `name -> ..data/name`, `..data -> ..<timestamp>`,
/// and updates it by creating a new timestamped directory and renaming a new `..data`
/// symlink over the old one: no event names `name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_data_symlink_swap_applies() {
    use std::os::unix::fs::symlink;
    let rig = watched(|d| {
        std::fs::create_dir(d.join("..2026_01_01_00_00_00.1")).unwrap();
        write(
            &d.join("..2026_01_01_00_00_00.1/devices.yaml"),
            &yaml(0, 2, "v1"),
        );
        symlink("..2026_01_01_00_00_00.1", d.join("..data")).unwrap();
        symlink("..data/devices.yaml", d.join("devices.yaml")).unwrap();
    })
    .await;
    assert_eq!(rig.names().len(), 2);
    let d = &rig.dir;
    std::fs::create_dir(d.join("..2026_01_01_00_01_00.2")).unwrap();
    write(
        &d.join("..2026_01_01_00_01_00.2/devices.yaml"),
        &yaml(0, 3, "v2"),
    );
    symlink("..2026_01_01_00_01_00.2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..2026_01_01_00_00_00.1")).unwrap();
    rig.within_a_second("the new ConfigMap data", |r| {
        r.names().len() == 3 && r.label("d0").as_deref() == Some("v2")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_file_removes_its_devices_but_deleting_the_last_is_rejected() {
    let rig = watched(|d| {
        write(
            &d.join("a.yaml"),
            &yaml(0, 2, "x").replace("name: r\n", "name: ra\n"),
        );
        write(
            &d.join("b.yaml"),
            &yaml(2, 2, "x").replace("name: r\n", "name: rb\n"),
        );
    })
    .await;
    std::fs::remove_file(rig.dir.join("b.yaml")).unwrap();
    rig.within_a_second("b's devices removed", |r| r.names() == ["d0", "d1"])
        .await;
    std::fs::remove_file(rig.dir.join("a.yaml")).unwrap();
    let errors = rig.rejected(1, "an empty directory").await;
    assert!(errors[0].contains("no inventory files"), "{errors:?}");
    assert_eq!(
        rig.names(),
        ["d0", "d1"],
        "the last good inventory keeps running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_directory_is_rejected_and_a_recreated_one_is_watched() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 2, "x"))).await;
    std::fs::remove_dir_all(&rig.dir).unwrap();
    let errors = rig.rejected(0, "a deleted directory").await;
    assert!(
        errors[0].contains("cannot read inventory directory"),
        "{errors:?}"
    );
    assert_eq!(rig.names(), ["d0", "d1"]);
    std::fs::create_dir(&rig.dir).unwrap();
    write(&rig.dir.join("a.yaml"), &yaml(0, 3, "back"));
    rig.within_a_second("the recreated directory", |r| r.names().len() == 3)
        .await;
    // And it is watched again: a further edit applies.
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 4, "again"));
    rig.within_a_second("an edit in the recreated directory", |r| {
        r.names().len() == 4
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_file_is_rejected_unless_allowed() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 2, "x"))).await;
    write(&rig.dir.join("a.yaml"), "");
    let errors = rig.rejected(0, "an empty file").await;
    assert!(
        errors[0].ends_with("a.yaml:1:1: inventory file is empty"),
        "{errors:?}"
    );
    assert_eq!(rig.names().len(), 2);

    // Emptying the inventory is removing every device: past the guard too.
    let allowing = ReloadSettings {
        allow_empty: true,
        max_removed_share: 1.0,
        ..ReloadSettings::default()
    };
    let rig = rig_with(allowing, |d| write(&d.join("a.yaml"), &yaml(0, 2, "x"))).await;
    write(&rig.dir.join("a.yaml"), "");
    rig.within_a_second("every device removed", |r| r.names().is_empty())
        .await;
    std::fs::remove_dir_all(&rig.dir).unwrap();
    sleep(Duration::from_millis(700)).await;
    assert!(
        rig.reloader.status().last_reload_successful,
        "a missing directory is empty too"
    );
}

async fn rig_with(settings: ReloadSettings, setup: impl FnOnce(&Path)) -> Rig {
    rig(settings, true, setup).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_yaml_is_rejected_with_its_place_then_the_fix_applies() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 2, "x"))).await;
    let broken = yaml(0, 3, "y").replace("address: 127.31.0.3", "address: 127.31.0.300");
    editor_save(&rig.dir.join("a.yaml"), &broken);
    let errors = rig.rejected(0, "a bad address").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("a.yaml:8:"),
        "file:line:column in {errors:?}"
    );
    assert!(errors[0].contains("127.31.0.300"), "{errors:?}");
    assert_eq!(rig.names().len(), 2);
    editor_save(&rig.dir.join("a.yaml"), "regions: [ {name: r\n");
    let errors = rig.rejected(0, "broken YAML").await;
    assert!(errors[0].contains("a.yaml:"), "{errors:?}");
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 3, "y"));
    rig.within_a_second("the fix", |r| r.names().len() == 3)
        .await;
    let status = rig.reloader.status();
    assert!(status.last_reload_successful);
    assert!(status.last_reload.unwrap().errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_a_bad_change_heals_the_status() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 2, "x"))).await;
    editor_save(&rig.dir.join("a.yaml"), "nonsense: [");
    rig.rejected(0, "broken YAML").await;
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 2, "x"));
    rig.within_a_second("healed", |r| r.reloader.status().last_reload_successful)
        .await;
    assert_eq!(
        rig.reloader.status().revision,
        0,
        "nothing to apply: the running content is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_check_catches_what_no_event_announced() {
    let every = ReloadSettings {
        check_interval: Duration::from_millis(200),
        ..ReloadSettings::default()
    };
    // No watcher at all: only the periodic check.
    let rig = rig(every, false, |d| write(&d.join("a.yaml"), &yaml(0, 2, "x"))).await;
    let periodic = tokio::spawn(watch::periodic(rig.reloader.clone()));
    write(&rig.dir.join("a.yaml"), &yaml(0, 3, "x"));
    rig.within_a_second("the periodic check", |r| r.names().len() == 3)
        .await;
    periodic.abort();
    assert_eq!(
        rig.reloader.status().last_reload.unwrap().trigger,
        Trigger::Periodic
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_device_keeps_down_since_across_a_label_change() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 2, "x").replace("kind: atm", "kind: atm, probe: { interval: 1s, timeout: 100ms, packets: 1, retry_interval: 200ms }"))).await;
    rig.pinger
        .unreachable
        .lock()
        .push("127.31.0.1".parse().unwrap());
    let start = Instant::now();
    let down_since = loop {
        let snap = rig.state.snapshot();
        let (_, s, _) = snap.device("d0").unwrap();
        if s.status == Status::Down {
            break s.down_since.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "d0 never went down"
        );
        sleep(Duration::from_millis(20)).await;
    };
    let relabelled = yaml(0, 2, "relabelled").replace(
        "kind: atm",
        "kind: camera, probe: { interval: 1s, timeout: 100ms, packets: 1, retry_interval: 200ms }",
    );
    editor_save(&rig.dir.join("a.yaml"), &relabelled);
    rig.within_a_second("the new labels", |r| {
        r.label("d0").as_deref() == Some("relabelled")
    })
    .await;
    let snap = rig.state.snapshot();
    let (device, s, _) = snap.device("d0").unwrap();
    assert_eq!(&*device.kind, "camera");
    assert_eq!((s.status, s.down_since), (Status::Down, Some(down_since)));
}

/// 10 devices, then a reload to 10,010 (10 s interval): no 100 ms window after the
/// reload sees more probes than the steady rate allows (1,001 per second).
#[tokio::test(start_paused = true)]
async fn a_reload_adding_10000_devices_does_not_spike_the_probe_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    write(&dir.join("a.yaml"), &yaml(0, 10, "x"));
    let initial = Arc::new(load::load_inventory(&dir, &ProbeSettings::default()).unwrap());
    let pinger = Arc::new(FakePinger::default());
    let state = State::new(Arc::new(TokioClock::starting_at(chrono::Utc::now())));
    let mut scheduler = Scheduler::new(
        pinger.clone(),
        state.clone(),
        Arc::new(ProberMetrics::default()),
    );
    let (tx, mut rx) = mpsc::channel::<Arc<Inventory>>(4);
    let reloader = Reloader::new(
        dir.clone(),
        ProbeSettings::default(),
        ReloadSettings::default(),
        initial.clone(),
        tx,
        Arc::new(ReloadMetrics::default()),
    );
    scheduler.sync(&state.replace_inventory(initial, |_| None));
    sleep(Duration::from_secs(15)).await;

    write(&dir.join("a.yaml"), &yaml(0, 10_010, "x"));
    let outcome = reloader.reload(Trigger::Signal).await;
    assert_eq!(
        outcome.result,
        ReloadResult::Success,
        "{:?}",
        outcome.errors
    );
    let inventory = rx.recv().await.unwrap();
    scheduler.sync(&state.replace_inventory(inventory, |_| None));
    let applied = Instant::now();
    sleep(Duration::from_secs(20)).await;

    let mut windows = vec![0u32; 200];
    for t in pinger.probes.lock().iter().filter(|t| **t >= applied) {
        let i = ((*t - applied).as_millis() / 100) as usize;
        if i < windows.len() {
            windows[i] += 1;
        }
    }
    // Steady: 10,010 probes per 10 s = 100 per 100 ms; phases are hashed, so allow the
    // spread of a fair draw but nothing like a burst.
    let max = *windows.iter().max().unwrap();
    assert!(
        max <= 140,
        "a 100 ms window saw {max} probes: {:?}",
        &windows[..20]
    );
    assert!(
        windows[0] <= 140,
        "first window after the reload: {}",
        windows[0]
    );
    let total: u32 = windows.iter().sum();
    assert!(
        (19_000..=21_000).contains(&total),
        "two intervals of 10,010 devices: {total}"
    );
}

/// 200 devices; the file rewritten in place by a writer that stops for 600 ms after the
/// line of device 187 (the text so far is a valid inventory of 188). Nothing is applied
/// until the writer closes the file, then all of it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_pauses_half_way_is_applied_whole_once_closed() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 200, "x"))).await;
    let text = yaml(0, 200, "y");
    let cut = text.find("name: d188,").unwrap();
    let cut = text[..cut].rfind('\n').unwrap() + 1;
    let mut f = std::fs::File::create(rig.dir.join("a.yaml")).unwrap();
    std::io::Write::write_all(&mut f, &text.as_bytes()[..cut]).unwrap();
    f.sync_data().unwrap();
    let paused = Instant::now();
    while paused.elapsed() < Duration::from_millis(600) {
        assert_eq!(rig.names().len(), 200, "a half-written file was applied");
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rig.reloader.status().revision, 0);
    std::io::Write::write_all(&mut f, &text.as_bytes()[cut..]).unwrap();
    drop(f);
    rig.within_a_second("the whole file", |r| {
        r.names().len() == 200 && r.label("d199").as_deref() == Some("y")
    })
    .await;
    assert_eq!(rig.reloader.status().revision, 1, "applied once, whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_removing_most_devices_is_refused_unless_allowed() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 200, "x"))).await;
    // What a writer that died half-way leaves: a valid file of 90 devices.
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 90, "x"));
    let errors = rig.rejected(0, "removing 110 of 200 devices").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("would remove 110 of the 200 running devices (55%), more than reload.max_removed_share (50%)"),
        "{errors:?}"
    );
    assert_eq!(rig.names().len(), 200, "the running inventory stays");
    // Up to the share is applied.
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 100, "x"));
    rig.within_a_second("half of them removed", |r| r.names().len() == 100)
        .await;

    let allowing = ReloadSettings {
        max_removed_share: 1.0,
        ..ReloadSettings::default()
    };
    let rig = rig_with(allowing, |d| write(&d.join("a.yaml"), &yaml(0, 200, "x"))).await;
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 10, "x"));
    rig.within_a_second("190 removed, as allowed", |r| r.names().len() == 10)
        .await;
}

/// A FIFO named like an inventory file used to block the reload's read for good (and
/// every reload after it); now it is an error, and the reloader goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_the_inventory_is_an_error_and_the_reloader_goes_on() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 2, "x"))).await;
    let fifo = rig.dir.join("f.yaml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let errors = rig.rejected(0, "the FIFO").await;
    assert!(
        errors[0].ends_with("f.yaml: not a regular file (a named pipe); not read"),
        "{errors:?}"
    );
    std::fs::remove_file(&fifo).unwrap();
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 3, "x"));
    rig.within_a_second("the next change", |r| r.names().len() == 3)
        .await;
}

/// What made libyaml-safer panic is an error of the file, with its place, not
/// "reload panicked: task …".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_made_the_parser_panic_is_reported_with_its_place() {
    let rig = watched(|d| write(&d.join("a.yaml"), &yaml(0, 2, "x"))).await;
    editor_save(&rig.dir.join("a.yaml"), "regions: { a: !b, c: d }\n");
    let errors = rig.rejected(0, "the parser's panic").await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("a.yaml:1:17: the YAML parser (libyaml-safer) failed")),
        "{errors:?}"
    );
    assert!(!errors.iter().any(|e| e.contains("panicked")), "{errors:?}");
    editor_save(&rig.dir.join("a.yaml"), &yaml(0, 3, "x"));
    rig.within_a_second("the fix", |r| r.names().len() == 3)
        .await;
}

/// What a reload of a few changes costs downstream hangs on this: every device it did
/// not change is the running one itself (the same `Arc`, so the diff and the state see
/// it at a pointer's cost and its memory is not held twice) — on the first reload after
/// the cache's warm-up parse as well, with parents named across files, and in the
/// changed file as in the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_reload_after_warming_keeps_the_running_devices_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let with_parent = |text: String, parent: &str| {
        text.replace("kind: atm,", &format!("kind: atm, parents: [{parent}],"))
    };
    write(&dir.join("a.yaml"), &yaml(0, 50, "x"));
    // b's devices name a's first device: a parent in another file.
    let b = with_parent(yaml(50, 50, "x").replace("name: r\n", "name: r2\n"), "d0");
    write(&dir.join("b.yaml"), &b);
    let initial = Arc::new(load::load_inventory(&dir, &ProbeSettings::default()).unwrap());
    let (tx, mut rx) = mpsc::channel::<Arc<Inventory>>(4);
    let reloader = Reloader::new(
        dir.clone(),
        ProbeSettings::default(),
        ReloadSettings::default(),
        initial.clone(),
        tx,
        Arc::new(ReloadMetrics::default()),
    );
    reloader.warm().await;
    // One device relabelled in b; a is untouched.
    write(&dir.join("b.yaml"), &b.replacen("tag: x", "tag: y", 1));
    let outcome = reloader.reload(Trigger::Signal).await;
    assert_eq!(
        outcome.result,
        ReloadResult::Success,
        "{:?}",
        outcome.errors
    );
    let diff = outcome.diff.unwrap();
    assert_eq!((diff.modified, diff.unchanged), (1, 99), "{diff:?}");
    let new = rx.recv().await.unwrap();
    let mut same = 0;
    for device in &new.devices {
        let old = initial.device(&device.name).unwrap();
        if Arc::ptr_eq(old, device) {
            same += 1;
        } else {
            assert_eq!(&*device.name, "d50", "only the relabelled device is new");
        }
    }
    assert_eq!(same, 99);
    // And the graph of the whole is there, across the files.
    let d0 = new.index_of("d0").unwrap();
    assert_eq!(new.children(d0).len(), 50);
}
