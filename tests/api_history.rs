//! End-to-end tests of the history routes (`/api/v1/alerts`,
//! `/api/v1/devices/{name}/transitions`), `open_alerts` in device JSON and the grades of
//! `/readyz`: a `State` driven by recorded probe outcomes (no network) feeding the real
//! store writer, served on 127.0.0.1:0, queried with reqwest. The same scenario runs on a
//! SQLite file and on a PostgreSQL database of its own.

mod pgdb;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tokio::sync::oneshot;
use wardops::config::load::{Source, build_inventory};
use wardops::config::{Inventory, settings::HttpSettings};
use wardops::context::StoreHandle;
use wardops::http::serve;
use wardops::probe::ProbeOutcome;
use wardops::state::{State, SystemClock};
use wardops::store::AlertRules;
use wardops::store::startup::{StartOptions, Started, start};

const DEVICES: &[(&str, &str)] = &[
    ("a", "127.11.0.1"),
    ("b", "127.11.0.2"),
    ("c", "127.11.0.3"),
    ("x/transitions", "127.11.0.4"),
    ("gone", "127.11.0.5"),
];

fn inventory(devices: &[(&str, &str)]) -> Inventory {
    let mut text =
        String::from("regions:\n  - name: r\n    branches:\n      - name: b1\n        devices:\n");
    for (name, address) in devices {
        text.push_str(&format!(
            "          - {{ name: {name:?}, address: {address}, kind: atm }}\n"
        ));
    }
    let source = Source {
        path: PathBuf::from("inventory/test.yaml"),
        text,
    };
    build_inventory(&[source], &Default::default()).expect("valid inventory")
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

/// `t(secs)` as the API writes it.
fn ts(secs: i64) -> String {
    t(secs).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Server {
    base: String,
    state: State,
    /// Makes the app's readiness check report a stalled prober.
    stalled: Arc<AtomicBool>,
    _stop: oneshot::Sender<()>,
    _started: Started,
}

impl Server {
    /// Serves `devices` with the store at `database_url`. `wait` is how long start-up
    /// waits for an unreachable database.
    async fn start(database_url: &str, dir: &Path, wait: Duration) -> Server {
        Server::start_with(database_url, dir, wait, inventory(DEVICES)).await
    }

    /// [`Server::start`] over `inventory`.
    async fn start_with(
        database_url: &str,
        dir: &Path,
        wait: Duration,
        inventory: Inventory,
    ) -> Server {
        let options = StartOptions {
            database_url: database_url.into(),
            base_dir: dir.into(),
            data_dir: dir.into(),
            rules: AlertRules::default(),
            retention: Duration::from_secs(400 * 86_400),
            wait,
        };
        let started = start(options, Arc::new(SystemClock))
            .await
            .expect("store starts");
        let state = State::with_sink(Arc::new(SystemClock), started.sink.clone());
        state.replace_inventory(Arc::new(inventory), |_| None);
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        let mut ctx = support::context_over(&state, StoreHandle::of(&started));
        ctx.readiness = Box::new(move || {
            if flag.load(Ordering::Relaxed) {
                vec!["the prober is stalled".to_string()]
            } else {
                Vec::new()
            }
        });
        let ctx = ctx.start(Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let routes = wardops::app::routes(&ctx);
        tokio::spawn(serve(
            listener,
            routes,
            HttpSettings::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            base,
            state,
            stalled,
            _stop: stop,
            _started: started,
        }
    }

    fn probe(&self, device: &str, ok: bool, at: DateTime<Utc>) {
        let snapshot = self.state.snapshot();
        let (d, _, runtime) = snapshot.device(device).expect("device exists");
        let outcome = ProbeOutcome {
            sent: 2,
            received: if ok { 2 } else { 0 },
            rtt: ok.then_some(Duration::from_micros(1500)),
        };
        self.state.record_probe(d, runtime, &outcome, at);
    }

    /// Down (default `down_after` is 2) with `down_since` = `at`, decided at `at + 1s`.
    fn down(&self, device: &str, at: DateTime<Utc>) {
        self.probe(device, false, at);
        self.probe(device, false, at + chrono::Duration::seconds(1));
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        (status, response.json().await.unwrap())
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// Polls `path` until `check` holds: the store is written behind the state.
    async fn wait_for(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, body) = self.get(path).await;
            if check(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last {path}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `open_alerts` of `device` in the list and in its detail, once both show `n`.
    async fn wait_open_alerts(&self, device: &str, n: u64) {
        let what = format!("{device} to show {n} open alert(s)");
        self.wait_for("/api/v1/devices", &what, |body| {
            body["devices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["name"] == device && d["open_alerts"] == n)
        })
        .await;
        let detail = self.ok(&format!("/api/v1/devices/{device}")).await;
        assert_eq!(detail["open_alerts"], n, "{detail}");
    }

    /// Every alert `query` selects, page by page with `limit`, following `next_before`.
    async fn all_pages(&self, query: &str, limit: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut before = String::new();
        for _ in 0..50 {
            let path = format!("/api/v1/alerts?{query}&limit={limit}{before}");
            let page = self.ok(&path).await;
            let alerts = page["alerts"].as_array().unwrap();
            assert!(alerts.len() <= limit, "{path}: {page}");
            out.extend(alerts.iter().cloned());
            match page["next_before"].as_str() {
                Some(next) => {
                    assert_eq!(alerts.len(), limit, "only a full page has a next one");
                    before = format!("&before={}", urlencode(next));
                }
                None => return out,
            }
        }
        panic!("paging did not end");
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn summary(alerts: &[Value]) -> Vec<(String, String, bool)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["device"].as_str().unwrap().to_string(),
                a["condition"].as_str().unwrap().to_string(),
                a["resolved_at"].is_null(),
            )
        })
        .collect()
}

fn ids(alerts: &[Value]) -> Vec<i64> {
    alerts.iter().map(|a| a["id"].as_i64().unwrap()).collect()
}

/// The whole story on one backend: outages, recoveries, flapping, paging, a device named
/// like the route, a removed device.
async fn history(database_url: &str, dir: &Path) {
    let s = Server::start(database_url, dir, Duration::from_secs(10)).await;
    for (name, _) in DEVICES {
        s.probe(name, true, t(0));
    }
    s.down("a", t(10));
    s.wait_open_alerts("a", 1).await;
    s.probe("a", true, t(20));
    s.wait_open_alerts("a", 0).await;
    // b's third change within the window opens `flapping` with the same `opened_at` as
    // its `device_down`: the paging cursor must tell them apart.
    s.down("b", t(30));
    s.probe("b", true, t(40));
    s.down("b", t(50));
    s.down("c", t(60));
    s.down("gone", t(70));
    let all = s
        .wait_for("/api/v1/alerts", "six alerts", |b| {
            b["alerts"].as_array().unwrap().len() == 6
        })
        .await;
    let all = all["alerts"].as_array().unwrap().clone();

    // Newest first by opened_at, then id.
    let keys: Vec<(String, i64)> = all
        .iter()
        .map(|a| {
            (
                a["opened_at"].as_str().unwrap().to_string(),
                a["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(keys, sorted);
    let mut got = summary(&all);
    // The two alerts b opened at the same instant come in id order, whichever that is.
    got[2..4].sort();
    let want = [
        ("gone", "device_down", true),
        ("c", "device_down", true),
        ("b", "device_down", true),
        ("b", "flapping", true),
        ("b", "device_down", false),
        ("a", "device_down", false),
    ]
    .map(|(d, c, open)| (d.to_string(), c.to_string(), open));
    assert_eq!(got, want);
    assert_eq!(all[2]["opened_at"], all[3]["opened_at"]);
    let a = &all[5];
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["opened_at"], ts(11));
    assert_eq!(a["resolved_at"], ts(20));
    assert_eq!(a["resolution"], "recovered");
    assert!(a["acknowledged_at"].is_null() && a["acknowledged_by"].is_null());
    assert!(a["message"].as_str().unwrap().contains("127.11.0.1"), "{a}");

    // Filters.
    for (query, want) in [
        ("status=active", vec![true, true, true, true]),
        ("status=resolved", vec![false, false]),
    ] {
        let body = s.ok(&format!("/api/v1/alerts?{query}")).await;
        let open: Vec<bool> = summary(body["alerts"].as_array().unwrap())
            .into_iter()
            .map(|x| x.2)
            .collect();
        assert_eq!(open, want, "{query}");
    }
    let count = |body: &Value| body["alerts"].as_array().unwrap().len();
    for (query, n) in [
        ("device=b", 3),
        ("device=b&status=active", 2),
        ("severity=warning", 1),
        ("severity=critical&status=active", 3),
        ("severity=info", 0),
        ("device=nobody", 0),
        ("status=&device=&severity=", 6),
    ] {
        let body = s.ok(&format!("/api/v1/alerts?{query}")).await;
        assert_eq!(count(&body), n, "{query}: {body}");
    }
    let flapping = s.ok("/api/v1/alerts?severity=warning").await;
    assert_eq!(flapping["alerts"][0]["condition"], "flapping");

    // Paging: every page size walks the same list, nothing skipped or repeated.
    for limit in [1, 2, 4, 6, 1000] {
        let pages = s.all_pages("", limit).await;
        assert_eq!(ids(&pages), ids(&all), "limit {limit}");
    }
    let active = s.all_pages("status=active", 1).await;
    assert_eq!(ids(&active), ids(&all[..4]));
    // A bare time: strictly before it, so both alerts opened at 51 s are excluded.
    let before = urlencode(&ts(51));
    let older = s.ok(&format!("/api/v1/alerts?before={before}")).await;
    assert_eq!(ids(older["alerts"].as_array().unwrap()), ids(&all[4..]));

    // Transitions, newest first.
    let b = s.ok("/api/v1/devices/b/transitions").await;
    assert_eq!(b["device"], "b");
    let tr = b["transitions"].as_array().unwrap();
    let steps: Vec<(&str, &str, String)> = tr
        .iter()
        .map(|x| {
            (
                x["from"].as_str().unwrap(),
                x["to"].as_str().unwrap(),
                x["at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("up", "down", ts(51)),
            ("down", "up", ts(40)),
            ("up", "down", ts(31)),
            ("unknown", "up", ts(0)),
        ]
    );
    assert_eq!(tr[0]["down_since"], ts(50));
    assert!(tr[1]["down_since"].is_null());
    let versions: Vec<i64> = tr
        .iter()
        .map(|x| x["state_version"].as_i64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] > w[1]), "{versions:?}");
    assert!(b["next_before"].is_null());
    let first = s.ok("/api/v1/devices/b/transitions?limit=3").await;
    assert_eq!(first["transitions"].as_array().unwrap().len(), 3);
    let next = urlencode(first["next_before"].as_str().expect("a next page"));
    let rest = s
        .ok(&format!(
            "/api/v1/devices/b/transitions?limit=3&before={next}"
        ))
        .await;
    assert_eq!(rest["transitions"].as_array().unwrap().len(), 1);
    assert_eq!(rest["transitions"][0]["to"], "up");
    assert!(rest["next_before"].is_null());

    // Open alerts in the device list: from the writer's counts.
    let list = s.ok("/api/v1/devices").await;
    let open_of = |name: &str| {
        list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()["open_alerts"]
            .as_u64()
    };
    assert_eq!(
        ["a", "b", "c", "gone"].map(open_of),
        [Some(0), Some(2), Some(1), Some(1)]
    );

    // A device named like the route is reached as itself, encoded or not; its own
    // history is one more `/transitions` away.
    for path in ["x/transitions", "x%2Ftransitions"] {
        let d = s.ok(&format!("/api/v1/devices/{path}")).await;
        assert_eq!(
            (d["name"].as_str(), d["ping_status"].as_str()),
            (Some("x/transitions"), Some("up")),
            "{path}"
        );
        assert_eq!(d["open_alerts"], 0);
    }
    let own = s.ok("/api/v1/devices/x/transitions/transitions").await;
    assert_eq!(own["device"], "x/transitions");
    assert_eq!(own["transitions"][0]["from"], "unknown");

    // 404s and 400s, as JSON.
    for path in [
        "/api/v1/devices/never/transitions",
        "/api/v1/devices/never",
        "/api/v1/devices//transitions",
        "/api/v1/devices/x/transitions/transitions/transitions",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    for (path, parameter) in [
        ("/api/v1/alerts?status=open", "status"),
        ("/api/v1/alerts?severity=major", "severity"),
        ("/api/v1/alerts?limit=0", "limit"),
        ("/api/v1/alerts?limit=1001", "limit"),
        ("/api/v1/alerts?before=yesterday", "before"),
        ("/api/v1/alerts?before=2027-01-15T08:00:00Z_x", "before"),
        ("/api/v1/devices/b/transitions?limit=-1", "limit"),
        ("/api/v1/devices/b/transitions?before=1", "before"),
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["parameter"], parameter, "{path}");
    }

    // A removed device: its alert resolves as `removed`, its history stays readable.
    let kept: Vec<_> = DEVICES.iter().copied().filter(|d| d.0 != "gone").collect();
    s.state
        .replace_inventory(Arc::new(inventory(&kept)), |_| None);
    s.wait_for(
        "/api/v1/alerts?device=gone",
        "gone's alert to resolve",
        |b| b["alerts"][0]["resolution"] == "removed",
    )
    .await;
    let (status, _) = s.get("/api/v1/devices/gone").await;
    assert_eq!(status, 404);
    let gone = s.ok("/api/v1/devices/gone/transitions").await;
    assert_eq!(gone["transitions"].as_array().unwrap().len(), 2);
    assert_eq!(gone["transitions"][0]["to"], "down");
    // Past its last page a removed device is an empty page, not a 404.
    let before = urlencode(&ts(0));
    s.ok(&format!("/api/v1/devices/gone/transitions?before={before}"))
        .await;
    let active = s.ok("/api/v1/alerts?status=active").await;
    assert_eq!(count(&active), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wardops.db").display());
    history(&url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_on_postgres() {
    let db = pgdb::TestDb::create("api_history");
    let dir = tempfile::tempdir().unwrap();
    history(&db.url(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_store_is_ready_but_a_stalled_prober_is_not() {
    // Nothing listens on this port: the store starts degraded, writes go to the spool.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/none");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&url, dir.path(), Duration::ZERO).await;
    s.down("a", t(0));

    let (status, body) = s.get("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("degraded")));
    let reasons = body["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{body}");
    assert!(
        reasons[0].as_str().unwrap().contains("store degraded"),
        "{body}"
    );
    // Live state is still served, from memory.
    let a = s.ok("/api/v1/devices/a").await;
    assert_eq!(a["ping_status"], "down");
    // History is not, and says why.
    let (status, body) = s.get("/api/v1/alerts").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("store unavailable")
    );

    s.stalled.store(true, Ordering::Relaxed);
    let (status, body) = s.get("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("not ready")));
    let reasons: Vec<&str> = body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0], "the prober is stalled", "most severe first");
}

/// A gateway `gw` with two devices behind it, and a device `solo` with no parents.
fn branch_behind_a_gateway() -> Inventory {
    let text = r#"
regions:
  - name: r
    branches:
      - name: b1
        parents: [gw]
        devices:
          - { name: gw, address: 127.11.1.1, kind: router }
          - { name: atm-1, address: 127.11.1.2, kind: atm }
          - { name: atm-2, address: 127.11.1.3, kind: atm }
      - name: b2
        devices:
          - { name: solo, address: 127.11.1.4, kind: atm }
"#;
    let source = Source {
        path: PathBuf::from("inventory/test.yaml"),
        text: text.into(),
    };
    build_inventory(&[source], &Default::default()).expect("valid inventory")
}

/// Alerts when a branch goes dark behind its gateway: one `device_down` (the gateway's),
/// carrying the devices unreachable behind it, current at every read; none for the
/// unreachable devices, whose transitions are stored all the same.
async fn unreachable_behind_a_down_gateway(database_url: &str, dir: &Path) {
    let s = Server::start_with(
        database_url,
        dir,
        Duration::from_secs(10),
        branch_behind_a_gateway(),
    )
    .await;
    for name in ["gw", "atm-1", "atm-2", "solo"] {
        s.probe(name, true, t(0));
    }
    s.down("gw", t(10));
    s.down("atm-1", t(20));
    s.down("atm-2", t(30));
    s.down("solo", t(40));
    let open = s
        .wait_for("/api/v1/alerts?status=active", "two alerts", |b| {
            b["alerts"].as_array().unwrap().len() == 2
        })
        .await;
    let alert = |body: &Value, device: &str| {
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["device"] == device)
            .cloned()
    };
    let gw = alert(&open, "gw").expect("the gateway's alert");
    assert_eq!(gw["condition"], "device_down");
    assert_eq!(gw["unreachable_behind"], 2, "{gw}");
    assert_eq!(alert(&open, "solo").unwrap()["unreachable_behind"], 0);
    // Their transitions are stored like any other.
    let history = s
        .wait_for(
            "/api/v1/devices/atm-2/transitions",
            "atm-2's transitions",
            |b| b["transitions"].as_array().unwrap().len() == 2,
        )
        .await;
    let last = &history["transitions"][0];
    assert_eq!(
        (&last["from"], &last["to"], &last["down_since"]),
        (&"up".into(), &"unreachable".into(), &ts(30).into())
    );
    assert!(
        alert(&open, "atm-1").is_none() && alert(&open, "atm-2").is_none(),
        "no alert for an unreachable device: {open}"
    );
    let atm = s.ok("/api/v1/devices/atm-1").await;
    assert_eq!(atm["open_alerts"], 0);

    // One answers again: the gateway's alert says so at the next read.
    s.probe("atm-1", true, t(50));
    let open = s.ok("/api/v1/alerts?status=active").await;
    assert_eq!(alert(&open, "gw").unwrap()["unreachable_behind"], 1);

    // The gateway recovers: its alert resolves, and a resolved alert carries no count.
    s.probe("gw", true, t(60));
    let resolved = s
        .wait_for("/api/v1/alerts?status=resolved", "gw resolved", |b| {
            alert(b, "gw").is_some()
        })
        .await;
    let gw = alert(&resolved, "gw").unwrap();
    assert_eq!(gw["resolution"], "recovered");
    assert!(gw.get("unreachable_behind").is_none(), "{gw}");
    let all = s.ok("/api/v1/alerts").await;
    assert_eq!(all["alerts"].as_array().unwrap().len(), 2, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_behind_a_down_gateway_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wardops.db").display());
    unreachable_behind_a_down_gateway(&url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_behind_a_down_gateway_on_postgres() {
    let db = pgdb::TestDb::create("api_unreachable");
    let dir = tempfile::tempdir().unwrap();
    unreachable_behind_a_down_gateway(&db.url(), dir.path()).await;
}
