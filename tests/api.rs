//! End-to-end tests of the JSON API and the server's limits: a `State` driven by
//! recorded probe outcomes (no network), served on 127.0.0.1:0, queried with reqwest.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::sync::oneshot;
use wardops::config::load::{Source, build_inventory};
use wardops::config::settings::HttpSettings;
use wardops::http::serve;
use wardops::probe::ProbeOutcome;
use wardops::schedule::ProberMetrics;
use wardops::state::{State, SystemClock};

mod support;

const INVENTORY: &str = r#"
regions:
  - name: north
    branches:
      - name: n1
        devices:
          - { name: n1-router, address: 127.10.0.1, kind: router, labels: { isp: acme } }
          - { name: n1-atm, address: 127.10.0.2, kind: atm }
          - { name: "a/b <script>", address: 127.10.0.3, kind: camera }
  - name: south
    branches:
      - name: s1
        devices:
          - { name: s1-router, address: 127.10.0.4, kind: router }
          - { name: S1-ATM, address: 127.10.0.5, kind: atm }
          - { name: 'q"uote\back', address: 127.10.0.6, kind: atm }
"#;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

struct Server {
    base: String,
    state: State,
    /// Milliseconds the readiness check sleeps: a stand-in for a slow handler.
    slow_ms: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    _store: (tempfile::TempDir, wardops::store::startup::Started),
}

/// A branch behind its gateway (`parents:` on the branch; the gateway itself does not
/// inherit it), a camera that opts out with `parents: []`, and a branch without parents.
const DEPENDENCIES: &str = r#"
regions:
  - name: east
    branches:
      - name: e1
        parents: [e1-gw]
        devices:
          - { name: e1-gw, address: 127.10.1.1, kind: router }
          - { name: e1-atm-b, address: 127.10.1.2, kind: atm }
          - { name: e1-atm-a, address: 127.10.1.3, kind: atm }
          - { name: e1-cam, address: 127.10.1.4, kind: camera, parents: [] }
      - name: e2
        devices:
          - { name: e2-atm, address: 127.10.1.5, kind: atm }
          - { name: e2-router, address: 127.10.1.6, kind: router }
"#;

impl Server {
    async fn start(limits: HttpSettings) -> Server {
        Server::start_with(INVENTORY, limits).await
    }

    async fn start_with(inventory: &str, limits: HttpSettings) -> Server {
        let source = Source {
            path: PathBuf::from("inventory/test.yaml"),
            text: inventory.into(),
        };
        let inventory = build_inventory(&[source], &Default::default()).expect("valid inventory");
        let state = State::new(Arc::new(SystemClock));
        state.replace_inventory(Arc::new(inventory), |_| None);
        let prober = Arc::new(ProberMetrics::default());
        let mut registry = Registry::default();
        prober.register(&mut registry);
        let slow_ms = Arc::new(AtomicU64::new(0));
        let slow = slow_ms.clone();
        let readiness = Box::new(move || {
            std::thread::sleep(Duration::from_millis(slow.load(Ordering::Relaxed)));
            Vec::new()
        });
        let dir = tempfile::tempdir().unwrap();
        let (mut ctx, started) = support::local_context(&state, dir.path()).await;
        ctx.prober = prober;
        ctx.registry = registry;
        ctx.readiness = readiness;
        let ctx = ctx.start(Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let served = tokio::spawn(serve(listener, support::routes(&ctx), limits, async move {
            let _ = stopped.await;
        }));
        Server {
            base,
            state,
            slow_ms,
            stop: Some(stop),
            served,
            _store: (dir, started),
        }
    }

    /// Feeds `device` one probe that succeeded or failed, started at `at`.
    fn probe(&self, device: &str, ok: bool, at: DateTime<Utc>) {
        let snapshot = self.state.snapshot();
        let (d, _, runtime) = snapshot.device(device).expect("device exists");
        let outcome = if ok {
            ProbeOutcome {
                sent: 2,
                received: 2,
                rtt: Some(Duration::from_micros(1500)),
            }
        } else {
            ProbeOutcome {
                sent: 2,
                received: 0,
                rtt: None,
            }
        };
        self.state.record_probe(d, runtime, &outcome, at);
    }

    /// Takes `device` down (default `down_after` is 2) with the outage starting at `at`.
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
}

fn names(body: &Value) -> Vec<&str> {
    body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn down_devices_come_first_longest_down_first_then_by_name() {
    let s = Server::start(HttpSettings::default()).await;
    s.probe("n1-router", true, t(0));
    s.down("n1-atm", t(100));
    s.down("S1-ATM", t(50));
    let (status, body) = s.get("/api/v1/devices").await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&body),
        [
            "S1-ATM",
            "n1-atm",
            "a/b <script>",
            "n1-router",
            "q\"uote\\back",
            "s1-router"
        ]
    );
    assert_eq!(body["total"], 6);
    let first = &body["devices"][0];
    assert_eq!(first["ping_status"], "down");
    assert_eq!(first["down_since"], "2027-01-15T08:00:50.000Z");
    assert_eq!(first["status_changed_at"], "2027-01-15T08:00:51.000Z");
    assert_eq!(first["loss"], 1.0);
    assert!(first["last_rtt_ms"].is_null());
    let router = body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "n1-router")
        .unwrap();
    assert_eq!(router["ping_status"], "up");
    assert!(router["down_since"].is_null());
    assert_eq!(router["last_rtt_ms"], 1.5);
    assert_eq!(router["labels"]["isp"], "acme");
    assert_eq!(
        (router["region"].as_str(), router["branch"].as_str()),
        (Some("north"), Some("n1"))
    );
    assert_eq!(body["devices"][5]["ping_status"], "unknown");
}

#[tokio::test]
async fn filters_combine_and_total_counts_before_paging() {
    let s = Server::start(HttpSettings::default()).await;
    s.probe("n1-router", true, t(0));
    s.down("n1-atm", t(10));
    let cases: &[(&str, &[&str])] = &[
        ("status=down", &["n1-atm"]),
        ("status=up,down", &["n1-atm", "n1-router"]),
        (
            "status=unknown&region=south",
            &["S1-ATM", "q\"uote\\back", "s1-router"],
        ),
        ("branch=n1&kind=camera", &["a/b <script>"]),
        ("kind=atm", &["n1-atm", "S1-ATM", "q\"uote\\back"]),
        ("q=atm", &["n1-atm", "S1-ATM"]),
        ("q=127.10.0.4", &["s1-router"]),
        ("q=%3Cscript", &["a/b <script>"]),
        ("region=nowhere", &[]),
        // A branch is a case-folded substring, or exact in quotes.
        ("branch=N", &["n1-atm", "a/b <script>", "n1-router"]),
        ("branch=%22n1%22&kind=atm", &["n1-atm"]),
        ("branch=%22N1%22", &[]),
        // q searches label values too.
        ("q=ACME", &["n1-router"]),
        // Another order; ties (none here) by name.
        (
            "kind=atm&sort=name&dir=desc",
            &["q\"uote\\back", "n1-atm", "S1-ATM"],
        ),
        (
            "sort=address&region=north",
            &["n1-router", "n1-atm", "a/b <script>"],
        ),
    ];
    for (query, expected) in cases {
        let (status, body) = s.get(&format!("/api/v1/devices?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(names(&body), *expected, "{query}");
        assert_eq!(body["total"], expected.len(), "{query}");
    }
    let (_, page) = s.get("/api/v1/devices?limit=2&offset=1").await;
    assert_eq!(page["total"], 6);
    assert_eq!(names(&page), ["S1-ATM", "a/b <script>"]);
    let (_, past_end) = s.get("/api/v1/devices?offset=10").await;
    assert_eq!(
        (past_end["total"].as_u64(), names(&past_end).len()),
        (Some(6), 0)
    );
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let s = Server::start(HttpSettings::default()).await;
    for (query, parameter) in [
        ("status=foo", "status"),
        ("status=up,sideways", "status"),
        ("limit=-1", "limit"),
        ("offset=ten", "offset"),
        ("sort=rtt", "sort"),
        ("dir=down", "dir"),
    ] {
        let (status, body) = s.get(&format!("/api/v1/devices?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["parameter"], parameter, "{query}");
        assert!(
            body["error"].as_str().unwrap().contains(parameter),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_device_by_percent_encoded_name_with_slash_and_markup() {
    let s = Server::start(HttpSettings::default()).await;
    s.probe("a/b <script>", true, t(0));
    let (status, body) = s.get("/api/v1/devices/a%2Fb%20%3Cscript%3E").await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "a/b <script>");
    assert_eq!(body["ping_status"], "up");
    assert_eq!(
        (
            body["probes_total"].as_u64(),
            body["replies_total"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(body["probe"]["interval_seconds"], 10.0);
    assert_eq!(body["probe"]["down_after"], 2);
    // An unencoded slash reaches the same device: the route owns the rest of the path.
    let (status, same) = s.get("/api/v1/devices/a/b%20%3Cscript%3E").await;
    assert_eq!((status, &same["name"]), (200, &body["name"]));
    let (status, quoted) = s.get("/api/v1/devices/q%22uote%5Cback").await;
    assert_eq!(
        (status, quoted["name"].as_str()),
        (200, Some("q\"uote\\back"))
    );
    let (status, missing) = s.get("/api/v1/devices/nope%2F%3Cb%3E").await;
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("nope/<b>"));
}

#[tokio::test]
async fn every_response_carries_the_version_it_was_built_from() {
    let s = Server::start(HttpSettings::default()).await;
    let (_, before) = s.get("/api/v1/devices").await;
    let (_, detail) = s.get("/api/v1/devices/n1-atm").await;
    let (_, dashboard) = s.get("/api/v1/dashboard").await;
    let v = before["state_version"].as_u64().unwrap();
    assert_eq!(v, s.state.snapshot().version);
    assert_eq!(
        (
            detail["state_version"].as_u64(),
            dashboard["state_version"].as_u64()
        ),
        (Some(v), Some(v))
    );
    s.down("n1-atm", t(0));
    let (_, after) = s.get("/api/v1/devices/n1-atm").await;
    assert_eq!(
        after["state_version"].as_u64(),
        Some(v + 1),
        "one transition, one version"
    );
    assert_eq!(after["ping_status"], "down");
}

#[tokio::test]
async fn the_full_list_after_a_change_or_a_probe_shows_it_not_a_kept_body() {
    let s = Server::start(HttpSettings::default()).await;
    s.probe("n1-router", true, t(0));
    let device = |list: &Value, name: &str| {
        list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()
            .clone()
    };
    let (_, first) = s.get("/api/v1/devices").await;
    let v = first["state_version"].as_u64().unwrap();
    assert_eq!(device(&first, "n1-router")["last_rtt_ms"], 1.5);
    // A probe that changes no status: same version, new measurements.
    s.probe("n1-router", true, t(3));
    let (_, again) = s.get("/api/v1/devices").await;
    assert_eq!(again["state_version"].as_u64(), Some(v));
    assert_ne!(
        device(&again, "n1-router")["last_probe_at"],
        device(&first, "n1-router")["last_probe_at"]
    );
    // A transition: the next list is the new version's.
    s.down("n1-router", t(5));
    let (_, after) = s.get("/api/v1/devices").await;
    assert!(after["state_version"].as_u64().unwrap() > v);
    assert_eq!(device(&after, "n1-router")["ping_status"], "down");
    assert_eq!(after["devices"][0]["name"], "n1-router", "down first");
}

#[tokio::test]
async fn the_dashboard_after_a_change_shows_the_new_version_not_the_kept_counts() {
    let s = Server::start(HttpSettings::default()).await;
    s.probe("n1-router", true, t(0));
    let (_, first) = s.get("/api/v1/dashboard").await;
    let (_, again) = s.get("/api/v1/dashboard").await;
    assert_eq!(first["by_status"], again["by_status"]);
    assert_eq!(first["by_status"]["down"], 0);
    let v = first["state_version"].as_u64().unwrap();
    s.down("n1-router", t(5));
    let (_, after) = s.get("/api/v1/dashboard").await;
    assert!(after["state_version"].as_u64().unwrap() > v);
    assert_eq!(
        (&after["by_status"]["down"], &after["by_status"]["up"]),
        (&1.into(), &0.into())
    );
    let north = &after["by_region"][0];
    assert_eq!(
        (&north["region"], &north["down"]),
        (&"north".into(), &1.into())
    );
    // And the next change again.
    s.probe("s1-router", true, t(6));
    let (_, live) = s.get("/api/v1/dashboard").await;
    assert_eq!(live["by_status"]["up"], 1);
}

#[tokio::test]
async fn dashboard_counts_by_status_region_and_kind() {
    let s = Server::start(HttpSettings::default()).await;
    s.probe("n1-router", true, t(0));
    s.probe("s1-router", true, t(0));
    s.down("S1-ATM", t(0));
    let (status, body) = s.get("/api/v1/dashboard").await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 6);
    assert_eq!(
        (
            body["by_status"]["up"].as_u64(),
            body["by_status"]["down"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(body["by_status"]["unknown"], 3);
    let south = &body["by_region"][1];
    assert_eq!(
        (
            south["region"].as_str(),
            south["up"].as_u64(),
            south["down"].as_u64()
        ),
        (Some("south"), Some(1), Some(1))
    );
    assert_eq!(south["total"], 3);
    let kinds: Vec<_> = body["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kind"].as_str().unwrap(), k["total"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("atm", 3), ("camera", 1), ("router", 2)]);
    assert_eq!(body["prober"]["probes_total"], 0);
    assert!(body["prober"]["last_probe_seconds_ago"].is_null());
}

#[tokio::test]
async fn errors_are_json_with_security_headers() {
    let s = Server::start(HttpSettings::default()).await;
    let client = reqwest::Client::new();
    let missing = client.get(format!("{}/nope", s.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(missing.headers()[name], value);
    }
    assert!(missing.json::<Value>().await.unwrap()["error"].is_string());
    let post = client
        .post(format!("{}/api/v1/devices", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    assert!(post.json::<Value>().await.unwrap()["error"].is_string());
    let head = client
        .head(format!("{}/api/v1/devices", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());
    let head_metrics = client
        .head(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head_metrics.status(), 405);
    let body = client
        .get(format!("{}/healthz", s.base))
        .body(vec![b'x'; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 413);
    let small = client
        .get(format!("{}/healthz", s.base))
        .body("ignored")
        .send()
        .await
        .unwrap();
    assert_eq!(small.json::<Value>().await.unwrap()["status"], "ok");
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let s = Server::start(HttpSettings::default()).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let reply = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(32 * 1024)
        );
        let _ = stream.write_all(head.as_bytes());
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply
    })
    .await
    .unwrap();
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_the_request_timeout() {
    let limits = HttpSettings {
        request_timeout: Duration::from_millis(300),
        ..HttpSettings::default()
    };
    let s = Server::start(limits).await;
    let (status, body) = s.get("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    s.slow_ms.store(2_000, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "request timed out");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "answered at the timeout, not after the handler"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_request_finish() {
    let mut s = Server::start(HttpSettings::default()).await;
    s.slow_ms.store(800, Ordering::Relaxed);
    let url = format!("{}/readyz", s.base);
    let in_flight =
        tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.stop.take().unwrap().send(()).unwrap();
    let status = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(status, 200);
    tokio::time::timeout(Duration::from_secs(3), &mut s.served)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("{}/healthz", s.base)).await.is_err(),
        "no longer accepting"
    );
}

/// Item 11 of the reliability issue: the pages had a Content-Security-Policy and a
/// Referrer-Policy, nothing else did. Every response carries both now: a restrictive
/// policy unless the route set its own (the pages keep theirs).
#[tokio::test]
async fn every_response_carries_a_content_security_policy_and_a_referrer_policy() {
    let s = Server::start(HttpSettings::default()).await;
    let client = reqwest::Client::new();
    const STRICT: &str = "default-src 'none'; frame-ancestors 'none'";
    let requests = [
        ("GET", "/api/v1/devices", 200),
        ("GET", "/api/v1/devices/n1-atm", 200),
        ("GET", "/api/v1/devices/n1-atm/transitions", 200),
        ("GET", "/api/v1/alerts", 200),
        ("GET", "/api/v1/dashboard", 200),
        ("GET", "/api/v1/status", 200),
        ("GET", "/api/v1/events", 200),
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),
        ("GET", "/metrics", 200),
        ("GET", "/static/app.js", 200),
        ("GET", "/static/app.css", 200),
        // Nobody signed in: a write is refused before it reaches the route.
        ("POST", "/-/reload", 401),
        ("GET", "/nope", 404),
        ("POST", "/api/v1/devices", 405),
    ];
    for (method, path, status) in requests {
        let method: reqwest::Method = method.parse().unwrap();
        let response = client
            .request(method, format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let h = response.headers();
        assert_eq!(h["content-security-policy"], STRICT, "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    for path in [
        "/",
        "/monitor",
        "/devices/n1-atm",
        "/alerts",
        "/infrastructure",
    ] {
        let response = client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'"),
            "{path}: the page's own: {csp}"
        );
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
}

/// A branch whose gateway went down: its devices are unreachable (not down) in every
/// JSON surface of the state, and they sort right after the down devices. (Their alerts
/// are in tests/api_history.rs, which has a store writer.)
#[tokio::test]
async fn unreachable_devices_in_the_list_and_the_counts() {
    let s = Server::start_with(DEPENDENCIES, HttpSettings::default()).await;
    for name in [
        "e1-gw",
        "e1-atm-b",
        "e1-atm-a",
        "e1-cam",
        "e2-atm",
        "e2-router",
    ] {
        s.probe(name, true, t(0));
    }
    s.down("e2-atm", t(5));
    s.down("e1-gw", t(10));
    // The gateway is known down (fresh): its children's outages are unreachable.
    s.down("e1-atm-b", t(20));
    s.down("e1-atm-a", t(30));
    s.down("e1-cam", t(40));

    let (_, list) = s.get("/api/v1/devices").await;
    assert_eq!(
        names(&list),
        [
            "e2-atm",
            "e1-gw",
            "e1-cam",
            "e1-atm-b",
            "e1-atm-a",
            "e2-router"
        ],
        "down by down_since, then unreachable by down_since, then the rest by name"
    );
    let device = |name: &str| {
        list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()
            .clone()
    };
    let a = device("e1-atm-a");
    assert_eq!(a["ping_status"], "unreachable");
    assert_eq!(a["down_since"], "2027-01-15T08:00:30.000Z");
    assert_eq!(a["parents"], serde_json::json!(["e1-gw"]));
    assert_eq!(a["unreachable_because"], serde_json::json!(["e1-gw"]));
    let gw = device("e1-gw");
    assert_eq!(gw["ping_status"], "down");
    assert_eq!(gw["parents"], serde_json::json!([]), "never its own parent");
    assert!(gw.get("unreachable_because").is_none());
    let cam = device("e1-cam");
    assert_eq!(
        (cam["ping_status"].as_str(), &cam["parents"]),
        (Some("down"), &serde_json::json!([])),
        "parents: [] opts out of the branch's"
    );

    let (status, detail) = s.get("/api/v1/devices/e1-atm-b").await;
    assert_eq!(status, 200);
    assert_eq!(detail["ping_status"], "unreachable");
    assert_eq!(detail["down_since"], "2027-01-15T08:00:20.000Z");
    assert_eq!(detail["unreachable_because"], serde_json::json!(["e1-gw"]));

    let (_, only) = s.get("/api/v1/devices?status=unreachable").await;
    assert_eq!(names(&only), ["e1-atm-b", "e1-atm-a"]);
    assert_eq!(only["total"], 2);
    let (_, down) = s.get("/api/v1/devices?status=down").await;
    assert_eq!(names(&down), ["e2-atm", "e1-gw", "e1-cam"]);
    let (_, both) = s
        .get("/api/v1/devices?status=unreachable,up&branch=e1")
        .await;
    assert_eq!(names(&both), ["e1-atm-b", "e1-atm-a"]);

    let (_, dashboard) = s.get("/api/v1/dashboard").await;
    let by_status = &dashboard["by_status"];
    assert_eq!(
        [
            &by_status["down"],
            &by_status["unreachable"],
            &by_status["up"],
            &by_status["unknown"],
            &by_status["total"]
        ],
        [3, 2, 1, 0, 6]
    );
    let east = &dashboard["by_region"][0];
    assert_eq!(
        (&east["region"], &east["unreachable"]),
        (&"east".into(), &2.into())
    );
    let atm = dashboard["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "atm")
        .unwrap();
    assert_eq!((&atm["down"], &atm["unreachable"]), (&1.into(), &2.into()));
    let (_, status) = s.get("/api/v1/status").await;
    assert_eq!(status["devices"]["unreachable"], 2);
    assert_eq!(status["devices"]["down"], 3);
}
