//! Shared helpers for end-to-end tests: the real `wardops` binary, nftables blackholes
//! for loopback addresses, and waiting for an observable condition with a deadline.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod alertmanager;
pub mod redis;
pub mod smtp;
pub mod snmpsim;
pub mod victoriametrics;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Makes echo requests to some loopback addresses vanish (an nftables drop rule on the
/// output hook) until dropped. Each guard owns a table of its own, so tests can run in
/// parallel.
pub struct Blackhole {
    table: String,
}

impl Blackhole {
    /// Drops every echo request to `addresses`.
    pub fn new(tag: &str, addresses: &[&str]) -> Blackhole {
        let rules: Vec<String> = addresses
            .iter()
            .map(|a| {
                if a.contains(':') {
                    format!("ip6 daddr {a} icmpv6 type echo-request")
                } else {
                    format!("ip daddr {a} icmp type echo-request")
                }
            })
            .collect();
        Blackhole::with_matches(tag, &rules)
    }

    /// Drops what each nftables match expression matches on the output hook, e.g.
    /// `ip daddr 127.1.2.3 icmp type echo-request numgen random mod 10 < 3` for 30 % loss.
    pub fn with_matches(tag: &str, matches: &[String]) -> Blackhole {
        let table = format!("wardops_{tag}_{}", std::process::id());
        nft(&["add", "table", "inet", &table]);
        let guard = Blackhole { table };
        nft(&[
            "add",
            "chain",
            "inet",
            &guard.table,
            "out",
            "{ type filter hook output priority 0; }",
        ]);
        for m in matches {
            let mut args = vec!["add", "rule", "inet", &guard.table, "out"];
            args.extend(m.split(' '));
            args.push("drop");
            nft(&args);
        }
        guard
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}

fn nft(args: &[&str]) {
    let out = Command::new("nft")
        .args(args)
        .output()
        .expect("nft is installed (apt-get install nftables)");
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `probe:` section that decides within about two seconds: down after two lost
/// probes a second apart, up after one answer.
pub const FAST_PROBE: &str = "\
probe:
  interval: 1s
  timeout: 300ms
  packets: 1
  down_after: 2
  up_after: 1
  retry_interval: 300ms
";

/// The `probe:` section of the page and end-to-end tests: two requests 100 ms apart per
/// probe, down after two failed probes (the second a retry 500 ms later), so a
/// blackholed device is down within about two seconds and one lost reply changes nothing.
pub const TWO_PACKET_PROBE: &str = "\
probe:
  interval: 1s
  timeout: 300ms
  packets: 2
  packet_spacing: 100ms
  down_after: 2
  retry_interval: 500ms
";

/// `wardops hash-password --cost 4` of "secret" (cost 4: tests check many).
pub const SECRET_HASH: &str = "$2b$04$/O/YdYaCmG9hTP.Q59421O3FbMRHvpTtwo3jJYdCtVjpSOf9MCnea";

/// A users file of one user per role, each with the password "secret": `admin`,
/// `operator`, `viewer`.
pub fn users_file() -> String {
    format!(
        "basic_auth_users:\n  admin: {SECRET_HASH}\n  operator: {SECRET_HASH}\n  viewer: {SECRET_HASH}\nusers:\n  admin: {{ role: admin }}\n  operator: {{ role: operator }}\n"
    )
}

/// The `access:` settings of [`write_users`]'s file (anonymous reading stays on).
pub const ACCESS: &str = "access:\n  users_file: users.yml\n";

/// Writes [`users_file`] as `dir/users.yml`, for settings with [`ACCESS`].
pub fn write_users(dir: &Path) {
    std::fs::write(dir.join("users.yml"), users_file()).unwrap();
}

/// A gate over [`users_file`] (anonymous reading on), for servers started in-process.
pub fn gate() -> std::sync::Arc<wardops::access::gate::Gate> {
    let users =
        wardops::access::users::Users::parse(Path::new("users.yml"), &users_file()).unwrap();
    let settings = wardops::config::settings::AccessSettings::defaults(true);
    std::sync::Arc::new(wardops::access::gate::Gate::new(&settings, users))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The real binary serving a config directory; killed when dropped.
pub struct Appliance {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Appliance {
    /// Starts `wardops serve -c <dir>/wardops.yaml` on a free port with an SQLite
    /// database inside `dir`.
    pub fn start(dir: &Path) -> Appliance {
        Self::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Appliance {
        Self::start_on(dir, free_port(), env)
    }

    /// [`Appliance::start_with`] on `port` (to start it again where a page expects it).
    pub fn start_on(dir: &Path, port: u16, env: &[(&str, &str)]) -> Appliance {
        let log = dir.join("wardops.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wardops"));
        cmd.args(["serve", "-c"])
            .arg(dir.join("wardops.yaml"))
            .env("WARDOPS_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "WARDOPS_DATABASE_URL",
                format!("sqlite://{}", dir.join("wardops.db").display()),
            )
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start wardops");
        let app = Appliance {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        wait_for(Duration::from_secs(20), "the appliance to listen", || {
            app.try_get("/healthz").map(|_| ())
        });
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET returning the body on a 2xx, None on any error.
    pub fn try_get(&self, path: &str) -> Option<String> {
        let resp = reqwest::blocking::get(self.url(path)).ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.text().ok()
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let body = self
            .try_get(path)
            .unwrap_or_else(|| panic!("GET {path} failed"));
        serde_json::from_str(&body).unwrap()
    }

    /// Everything the appliance has logged so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The context of a test server over `state`: a real SQLite store in `dir` (not fed by
/// `state` unless the state was made with its sink), a reloader of the state's inventory
/// that nothing triggers, defaults elsewhere; not started. Keep the `Started` for as long
/// as the server runs (it owns the store's writer).
pub async fn local_context(
    state: &wardops::state::State,
    dir: &Path,
) -> (wardops::context::Context, wardops::store::startup::Started) {
    let started = local_store(dir).await;
    let ctx = context_over(state, wardops::context::StoreHandle::of(&started));
    (ctx, started)
}

/// The context of a test server over `state` and `store`; see [`local_context`].
pub fn context_over(
    state: &wardops::state::State,
    store: wardops::context::StoreHandle,
) -> wardops::context::Context {
    let reloader = wardops::reload::Reloader::idle(
        PathBuf::from("inventory"),
        state.snapshot().inventory.clone(),
    );
    wardops::context::Context::new(state.clone(), store, reloader)
}

/// A real SQLite store (and its spool) in `dir`.
pub async fn local_store(dir: &Path) -> wardops::store::startup::Started {
    use wardops::store::startup::{StartOptions, start};
    start(
        StartOptions::local(dir),
        std::sync::Arc::new(wardops::state::SystemClock),
    )
    .await
    .expect("a local SQLite store starts")
}

/// Every route of the appliance over `ctx`.
pub fn routes(ctx: &std::sync::Arc<wardops::context::Context>) -> Vec<wardops::http::Route> {
    wardops::app::routes(ctx)
}

/// Writes a config of fast probing (1 s, down after 2 failed probes 300 ms apart) over
/// `devices` (name, address) in one branch `{region}1` of `region`.
pub fn write_fast_config(dir: &Path, region: &str, devices: &[(&str, &str)]) {
    std::fs::write(dir.join("wardops.yaml"), FAST_PROBE).unwrap();
    let mut inventory = format!(
        "regions:\n  - name: {region}\n    branches:\n      - name: {region}1\n        devices:\n"
    );
    for (name, address) in devices {
        inventory.push_str(&format!(
            "          - {{ name: {name}, address: {address}, kind: atm }}\n"
        ));
    }
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(dir.join(format!("inventory/{region}.yaml")), inventory).unwrap();
}

/// The value of `family`'s sample for `device` in an exposition (per-device families
/// carry the `device` label alone).
pub fn device_sample(metrics: &str, family: &str, device: &str) -> Option<String> {
    let prefix = format!("{family}{{device=\"{device}\"}} ");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_string)
}

/// (status, down_since) of `name` as the API reports it.
pub fn api_status(app: &Appliance, name: &str) -> Option<(String, Option<String>)> {
    let body = app.try_get(&format!("/api/v1/devices/{name}"))?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let json = json.get("device").unwrap_or(&json);
    Some((
        json["ping_status"].as_str()?.to_string(),
        json["down_since"].as_str().map(str::to_string),
    ))
}

/// Waits up to 20 s for `name` to be `want`; its `down_since` then.
pub fn wait_status(app: &Appliance, name: &str, want: &str) -> Option<String> {
    wait_for(
        Duration::from_secs(20),
        &format!("{name} to be {want}"),
        || {
            api_status(app, name)
                .filter(|(s, _)| s == want)
                .map(|(_, since)| since)
        },
    )
}
