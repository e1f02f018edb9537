//! The RPM as a Linux team would receive it: `scripts/package` builds it (here from the
//! debug binary of this build, so the test does not wait for a release build; the spec and
//! the files are the same), and the test reads it back with `rpm` — version, file list,
//! config files, scriptlets —, checks its unit with `systemd-analyze verify` and rates it
//! with `systemd-analyze security` (exposure at most 2.0), installs it
//! into a scratch root, makes the package's `wardops` user there from its sysusers entry
//! (`systemd-sysusers --root`), and runs the installed binary against the installed
//! settings as that user with only the unit's ambient CAP_NET_RAW (`setpriv`): it serves
//! `/healthz` and the example inventory's loopback devices come up. Without the capability
//! it exits with the message that says what to grant.
//!
//! Needs root (setpriv to another user), `rpm`/`rpmbuild` (Debian package `rpm`) and
//! `systemd-analyze` (Debian package `systemd`); scripts/test installs them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use support::{free_port, wait_for};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The package, built once per test process (nextest runs each test in its own; `--fast`
/// keeps each build to seconds).
fn package() -> &'static Path {
    static RPM: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, rpm) = RPM.get_or_init(|| build("1"));
    rpm
}

/// `scripts/package` of this build's binary as release `release`, into a temporary
/// directory (kept with it).
fn build(release: &str) -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let printed = run(Command::new("scripts/package")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--fast", "--release", release])
        .args(["--binary", env!("CARGO_BIN_EXE_wardops"), "--out"])
        .arg(out.path()));
    let rpm = PathBuf::from(printed.trim());
    assert!(rpm.starts_with(out.path()), "{printed}");
    (out, rpm)
}

fn query(args: &[&str]) -> String {
    run(Command::new("rpm").args(args).arg(package()))
}

/// The lines of `text` that are not empty, sorted.
fn lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    v.sort();
    v
}

#[test]
fn the_package_holds_the_binary_the_unit_and_its_config() {
    let name = query(&["-qp", "--queryformat", "%{NAME} %{VERSION}"]);
    assert_eq!(name, format!("wardops {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        lines(&query(&["-qlp"])),
        [
            "/etc/sysconfig/wardops",
            "/etc/wardops",
            "/etc/wardops/inventory",
            "/etc/wardops/inventory/example.yaml",
            "/etc/wardops/wardops.yaml",
            "/usr/bin/wardops",
            "/usr/lib/sysctl.d/60-wardops.conf",
            "/usr/lib/systemd/system/wardops.service",
            "/usr/lib/sysusers.d/wardops.conf",
            "/usr/share/bash-completion/completions/wardops",
            "/usr/share/doc/wardops/README.md",
            "/usr/share/doc/wardops/configuration.md",
            "/usr/share/fish/vendor_completions.d/wardops.fish",
            "/usr/share/man/man1/wardops.1.gz",
            "/usr/share/zsh/site-functions/_wardops",
        ]
    );
    // An upgrade keeps what the operator changed (noreplace: the new default lands as .rpmnew).
    assert_eq!(
        lines(&query(&["-qp", "--configfiles"])),
        [
            "/etc/sysconfig/wardops",
            "/etc/wardops/inventory/example.yaml",
            "/etc/wardops/wardops.yaml",
        ]
    );
    let flags = query(&[
        "-qp",
        "--queryformat",
        "[%{FILENAMES} %{FILEFLAGS:fflags} %{FILEMODES:perms}\n]",
    ]);
    for config in [
        "/etc/wardops/wardops.yaml cn -rw-r--r--",
        "/etc/sysconfig/wardops cn -rw-------",
    ] {
        assert!(flags.lines().any(|l| l == config), "{config}: {flags}");
    }
    let requires = query(&["-qpR"]);
    assert!(
        requires.lines().any(|l| l == "systemd >= 246"),
        "{requires}"
    );
    let scripts = query(&["-qp", "--scripts"]);
    for expected in [
        // %pre: the user from the packaged sysusers entry, before files naming it land.
        "preinstall scriptlet",
        "systemd-sysusers --replace=/usr/lib/sysusers.d/wardops.conf -",
        "u wardops - \"wardops network monitoring\" /var/lib/wardops",
        // %post: the receive buffer limit at once, the unit known, the preset honoured.
        "/usr/lib/systemd/systemd-sysctl /usr/lib/sysctl.d/60-wardops.conf",
        "systemctl preset wardops.service",
        // %preun on removal, %postun restarts on upgrade.
        "systemctl --no-reload disable --now wardops.service",
        "systemctl try-restart wardops.service",
    ] {
        assert!(scripts.contains(expected), "no {expected:?} in:\n{scripts}");
    }
}

/// Installs the package into a fresh scratch root; the root is readable by anyone (the
/// test's unprivileged user runs from it) and removed when dropped.
fn install() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    run(Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .arg("--initdb"));
    rpm_into(root.path(), "-i", package());
    root
}

/// `rpm --root root MODE rpm` (`-i`, `-U`). Scriptlets need a shell and systemd inside the
/// root, which a scratch root lacks: they are read instead. Debian's rpm asks for
/// --force-debian to install at all.
fn rpm_into(root: &Path, mode: &str, rpm: &Path) {
    let mut cmd = Command::new("rpm");
    cmd.arg("--root")
        .arg(root)
        .args(["--nodeps", "--noscripts", mode]);
    if Path::new("/etc/debian_version").exists() {
        cmd.arg("--force-debian");
    }
    run(cmd.arg(rpm));
}

#[test]
fn an_upgrade_keeps_the_settings_the_operator_changed() {
    let root = install();
    let settings = root.path().join("etc/wardops/wardops.yaml");
    let changed = std::fs::read_to_string(&settings)
        .unwrap()
        .replace("listen: 127.0.0.1:5001", "listen: 127.0.0.1:5002");
    std::fs::write(&settings, &changed).unwrap();
    let example = root.path().join("etc/wardops/inventory/example.yaml");
    std::fs::remove_file(&example).unwrap();

    let (_out, next) = build("2");
    rpm_into(root.path(), "-U", &next);
    let installed = run(Command::new("rpm").arg("--root").arg(root.path()).args([
        "-q",
        "--queryformat",
        "%{VERSION}-%{RELEASE}",
        "wardops",
    ]));
    assert_eq!(installed, format!("{}-2", env!("CARGO_PKG_VERSION")));
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), changed);
    // The example the operator removed stays removed (missingok; rpm restores a missing
    // plain config file): their inventory decides the devices, not the package.
    assert!(!example.exists());
    assert!(root.path().join("usr/bin/wardops").exists());
}

/// The `wardops` account that the package's sysusers entry makes, made in `root` (as
/// `%pre` does on a real host): its uid and gid.
fn wardops_account(root: &Path) -> (u32, u32) {
    run(Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.display()))
        .arg(root.join("usr/lib/sysusers.d/wardops.conf")));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("wardops:"))
        .unwrap_or_else(|| panic!("no wardops in {passwd}"));
    let fields: Vec<&str> = line.split(':').collect();
    assert_eq!(
        fields[5..],
        ["/var/lib/wardops", "/usr/sbin/nologin"],
        "{line}"
    );
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "a system account: {line}");
    (uid, fields[3].parse().unwrap())
}

#[test]
fn the_installed_unit_passes_systemd_analyze_verify() {
    let root = install();
    let unit = root.path().join("usr/lib/systemd/system/wardops.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=30s",
        "User=wardops",
        "AmbientCapabilities=CAP_NET_RAW",
        "CapabilityBoundingSet=CAP_NET_RAW",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=wardops",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in the unit");
    }
    // The root stands for a systemd host the package was installed on: the host's own
    // units (the targets a service depends on by default) and the ExecReload's kill.
    on_a_systemd_host(root.path());
    assert_eq!(verify(root.path()), Vec::<String>::new());
    // The check has teeth: a drop-in with a bad value is reported.
    let dropin = root.path().join("etc/systemd/system/wardops.service.d");
    std::fs::create_dir_all(&dropin).unwrap();
    std::fs::write(dropin.join("bad.conf"), "[Service]\nProtectSystem=bogus\n").unwrap();
    let complaints = verify(root.path());
    assert!(
        complaints.iter().any(|l| l.contains("bogus")),
        "{complaints:?}"
    );

    std::fs::remove_dir_all(&dropin).unwrap();

    // systemd's own rating of the sandbox: 2.0 or less ("OK" starts below 4.0, a bare
    // service is 9.6). --threshold makes it fail above that.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(format!("--root={}", root.path().display()))
        .arg("/usr/lib/systemd/system/wardops.service")
        .output()
        .unwrap();
    let rating = String::from_utf8_lossy(&out.stdout);
    let overall = rating
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{rating}"));
    assert!(out.status.success(), "{overall}");

    // The man page is roff for wardops(1) with its subcommands.
    let gz = std::fs::read(root.path().join("usr/share/man/man1/wardops.1.gz")).unwrap();
    let mut man = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut man).unwrap();
    assert!(man.contains(".TH wardops 1"), "{man}");
    for sub in ["serve", "check", "migrate"] {
        assert!(man.contains(sub), "no {sub} in the man page");
    }
    let bash = std::fs::read_to_string(
        root.path()
            .join("usr/share/bash-completion/completions/wardops"),
    )
    .unwrap();
    assert!(bash.contains("complete -F _wardops"), "{bash}");
}

/// `systemd-analyze verify` of the installed unit under `root`: the lines it says about
/// wardops (it exits 0 on warnings, so they are the verdict).
fn verify(root: &Path) -> Vec<String> {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        // The page is checked above; `man` would look for it outside the root.
        .arg("--man=no")
        .arg(format!("--root={}", root.display()))
        .arg("/usr/lib/systemd/system/wardops.service")
        .output()
        .expect("systemd-analyze is installed (apt-get install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    stderr
        .lines()
        .filter(|l| l.contains("wardops"))
        .map(str::to_string)
        .collect()
}

/// Copies the host's systemd units and `kill` into `root`, beside what the package put there.
fn on_a_systemd_host(root: &Path) {
    let units = Path::new("/usr/lib/systemd/system");
    for unit in std::fs::read_dir(units).unwrap() {
        let unit = unit.unwrap();
        let to = root.join("usr/lib/systemd/system").join(unit.file_name());
        if !to.exists() {
            run(Command::new("cp").arg("-a").arg(unit.path()).arg(&to));
        }
    }
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let kill = ["/usr/bin/kill", "/bin/kill"]
        .into_iter()
        .find(|k| Path::new(k).exists())
        .expect("kill (procps) is installed");
    std::fs::copy(kill, root.join("bin/kill")).unwrap();
}

/// The installed binary, as the unit would start it: `serve -c /etc/wardops/wardops.yaml`
/// with its state in `state`, as `account` (uid, gid) with `caps` (setpriv's capability
/// list, e.g. `,+net_raw` or nothing) ambient and as its whole bounding set, no new
/// privileges: what the unit's User=, AmbientCapabilities=, CapabilityBoundingSet= and
/// NoNewPrivileges= make of it.
fn installed(root: &Path, account: (u32, u32), state: &Path, port: u16, caps: &str) -> Command {
    let set = format!("-all{caps}");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={}", account.0),
        &format!("--regid={}", account.1),
        "--clear-groups",
        &format!("--inh-caps={set}"),
        &format!("--ambient-caps={set}"),
        &format!("--bounding-set={set}"),
        "--no-new-privs",
        "--",
    ])
    .arg(root.join("usr/bin/wardops"))
    .args(["serve", "-c"])
    .arg(root.join("etc/wardops/wardops.yaml"))
    .env_clear()
    .env("WARDOPS_LISTEN", format!("127.0.0.1:{port}"))
    .env(
        "WARDOPS_DATABASE_URL",
        format!("sqlite://{}", state.join("wardops.db").display()),
    )
    .env("WARDOPS_DATA_DIR", state)
    .env("RUST_LOG", "info")
    .stdout(Stdio::null());
    cmd
}

/// A state directory owned by `account`, as StateDirectory= makes /var/lib/wardops.
fn state_dir(account: (u32, u32)) -> tempfile::TempDir {
    let state = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(state.path(), Some(account.0), Some(account.1)).unwrap();
    state
}

#[test]
fn the_installed_binary_runs_unprivileged_with_only_cap_net_raw() {
    let root = install();
    let account = wardops_account(root.path());
    let state = state_dir(account);
    let port = free_port();
    let log = state.path().join("stderr.log");
    let child = installed(root.path(), account, state.path(), port, ",+net_raw")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    let base = format!("http://127.0.0.1:{port}");
    let get = |path: &str| {
        reqwest::blocking::get(format!("{base}{path}"))
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.text().ok())
    };
    wait_for(
        Duration::from_secs(20),
        "/healthz of the installed binary",
        || {
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!(
                    "exited {status}: {}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
            get("/healthz")
        },
    );
    // The example inventory's router is loopback: up at its first probe (10 s interval).
    let device = wait_for(Duration::from_secs(30), "example-router-1 to be up", || {
        let body = get("/api/v1/devices/example-router-1")?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let json = json.get("device").unwrap_or(&json).clone();
        (json["ping_status"] == "up").then_some(json)
    });
    assert_eq!(device["address"], "127.151.1.1", "{device}");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("kind=\"raw\"") || stderr.contains("kind=raw"),
        "a raw socket, from the capability: {stderr}"
    );
    // Its state went where the unit's StateDirectory would be, owned by its user.
    let db = state.path().join("wardops.db");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&db).unwrap());
    assert_eq!(owner, account.0);
}

#[test]
fn without_the_capability_it_exits_with_what_to_grant() {
    let root = install();
    let account = wardops_account(root.path());
    let state = state_dir(account);
    // A network namespace of its own: its net.ipv4.ping_group_range is the kernel's
    // default ("1 0", no unprivileged ICMP), whatever the host allows.
    let inner = installed(root.path(), account, state.path(), free_port(), "");
    let log = state.path().join("stderr.log");
    let mut child = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = wait_for(Duration::from_secs(20), "the binary to exit", || {
        child.try_wait().unwrap()
    });
    let _ = child.kill();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{stderr}");
    for needed in ["CAP_NET_RAW", "ping_group_range"] {
        assert!(stderr.contains(needed), "no {needed} in: {stderr}");
    }
}
