//! End-to-end tests of `/metrics`: both exposition formats checked with a real parser
//! (the Python `prometheus_client` library's), gzip, escaping, and which samples exist
//! for which status.
//!
//! Needs `python3` with `prometheus-client`; the test installs it with pip if missing.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Once};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use prometheus_client::registry::Registry;
use serde_json::Value;
use wardops::config::load::{Source, build_inventory};
use wardops::http::serve;
use wardops::probe::ProbeOutcome;
use wardops::schedule::ProberMetrics;
use wardops::state::{State, SystemClock};

mod support;

const INVENTORY: &str = r#"
regions:
  - name: 'West "Side"'
    branches:
      - name: 'b\1'
        devices:
          - { name: up-1, address: 127.11.0.1, kind: router, labels: { isp.name: acme, rack: "r\"7" } }
          - { name: down-1, address: 127.11.0.2, kind: atm }
          - { name: 'we"ird\name', address: 127.11.0.3, kind: camera }
          - { name: behind-1, address: 127.11.0.4, kind: atm, parents: [down-1] }
"#;

async fn start() -> (String, State) {
    let source = Source {
        path: PathBuf::from("inventory/m.yaml"),
        text: INVENTORY.into(),
    };
    let inventory = build_inventory(&[source], &Default::default()).expect("valid inventory");
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let snapshot = state.snapshot();
    let at = |s: i64| Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap();
    let (d, _, r) = snapshot.device("up-1").unwrap();
    state.record_probe(
        d,
        r,
        &ProbeOutcome {
            sent: 2,
            received: 2,
            rtt: Some(Duration::from_micros(2500)),
        },
        at(0),
    );
    let (d, _, r) = snapshot.device("down-1").unwrap();
    for s in [0, 1] {
        state.record_probe(
            d,
            r,
            &ProbeOutcome {
                sent: 2,
                received: 0,
                rtt: None,
            },
            at(s),
        );
    }
    // Its parent is down: behind-1's outage (from 5 s) is unreachable.
    let (d, _, r) = snapshot.device("behind-1").unwrap();
    for s in [5, 6] {
        state.record_probe(
            d,
            r,
            &ProbeOutcome {
                sent: 2,
                received: 0,
                rtt: None,
            },
            at(s),
        );
    }
    let prober = Arc::new(ProberMetrics::default());
    let mut registry = Registry::default();
    prober.register(&mut registry);
    // The store and its directory live as long as the test process: the server does.
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let (mut ctx, started) = support::local_context(&state, dir.path()).await;
    Box::leak(Box::new(started));
    ctx.prober = prober;
    ctx.registry = registry;
    let ctx = ctx.start(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = support::routes(&ctx);
    tokio::spawn(serve(
        listener,
        routes,
        Default::default(),
        std::future::pending(),
    ));
    (base, state)
}

const PARSE: &str = r#"
import json, sys
if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// Parses an exposition with the Python client library; panics on any parse error.
fn parse(text: &str, format: &str) -> Vec<Value> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let present = Command::new("python3")
            .args(["-c", "import prometheus_client"])
            .status()
            .expect("python3 runs");
        if !present.success() {
            let pip = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "prometheus-client"])
                .status();
            assert!(
                pip.expect("pip runs").success(),
                "pip install prometheus-client failed"
            );
        }
    });
    let mut child = Command::new("python3")
        .args(["-c", PARSE, format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{format} parser rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn samples<'a>(parsed: &'a [Value], name: &str) -> Vec<&'a Value> {
    parsed.iter().filter(|s| s["name"] == name).collect()
}

fn value_for(parsed: &[Value], name: &str, device: &str) -> Option<f64> {
    samples(parsed, name)
        .into_iter()
        .find(|s| s["labels"]["device"] == device)
        .map(|s| s["value"].as_f64().unwrap())
}

async fn scrape(base: &str, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn prometheus_text_parses_and_reports_each_status() {
    let (base, state) = start().await;
    let (content_type, text) = scrape(&base, None).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let parsed = parse(&text, "prometheus");
    assert_eq!(value_for(&parsed, "wardops_device_up", "up-1"), Some(1.0));
    assert_eq!(value_for(&parsed, "wardops_device_up", "down-1"), Some(0.0));
    assert_eq!(
        value_for(&parsed, "wardops_device_up", "we\"ird\\name"),
        None,
        "absent while unknown"
    );
    assert_eq!(
        value_for(&parsed, "wardops_device_up", "behind-1"),
        Some(0.0),
        "an unreachable device does not answer either"
    );
    assert_eq!(samples(&parsed, "wardops_device_up").len(), 3);
    let unreachable = |device| value_for(&parsed, "wardops_device_unreachable", device);
    assert_eq!(
        [
            unreachable("up-1"),
            unreachable("down-1"),
            unreachable("behind-1")
        ],
        [Some(0.0), Some(0.0), Some(1.0)]
    );
    assert_eq!(unreachable("we\"ird\\name"), None, "absent while unknown");
    // The documented paging rule, evaluated on the samples:
    //   wardops_device_up == 0 unless on(device) wardops_device_unreachable == 1
    let pages: Vec<&str> = samples(&parsed, "wardops_device_up")
        .iter()
        .filter(|s| s["value"] == 0.0)
        .map(|s| s["labels"]["device"].as_str().unwrap())
        .filter(|&d| unreachable(d) != Some(1.0))
        .collect();
    assert_eq!(pages, ["down-1"], "only the down device pages");
    let since = |device| {
        value_for(
            &parsed,
            "wardops_device_down_since_timestamp_seconds",
            device,
        )
    };
    assert_eq!(since("down-1"), Some(1_800_000_000.0));
    assert_eq!(since("behind-1"), Some(1_800_000_005.0), "unreachable too");
    assert_eq!(
        samples(&parsed, "wardops_device_down_since_timestamp_seconds").len(),
        2
    );
    assert_eq!(
        value_for(&parsed, "wardops_device_rtt_seconds", "up-1"),
        Some(0.0025)
    );
    assert_eq!(
        value_for(&parsed, "wardops_device_rtt_seconds", "down-1"),
        None
    );
    assert_eq!(
        value_for(&parsed, "wardops_device_probes_total", "down-1"),
        Some(2.0)
    );
    assert_eq!(
        value_for(&parsed, "wardops_device_requests_total", "down-1"),
        Some(4.0)
    );
    assert_eq!(
        value_for(&parsed, "wardops_device_replies_total", "up-1"),
        Some(2.0)
    );
    assert_eq!(
        value_for(&parsed, "wardops_device_probes_total", "we\"ird\\name"),
        Some(0.0)
    );
    let by_status: Vec<_> = samples(&parsed, "wardops_devices")
        .iter()
        .map(|s| {
            (
                s["labels"]["status"].as_str().unwrap(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_status,
        [
            ("up", 1.0),
            ("down", 1.0),
            ("unknown", 1.0),
            ("unreachable", 1.0)
        ]
    );
    assert_eq!(
        samples(&parsed, "wardops_state_version")[0]["value"],
        state.snapshot().version as f64
    );
    let probes = samples(&parsed, "wardops_probes_total");
    assert_eq!(
        (probes.len(), probes[0]["type"].as_str()),
        (1, Some("counter")),
        "the app registry, typed"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert_eq!(samples(&parsed, name).len(), 1, "{name}");
    }
    assert!(!text.contains("# EOF"));
}

#[tokio::test]
async fn label_values_round_trip_through_escaping() {
    let (base, _) = start().await;
    let (_, text) = scrape(&base, None).await;
    let parsed = parse(&text, "prometheus");
    let info = samples(&parsed, "wardops_device_info");
    assert_eq!(info.len(), 4);
    let weird = info
        .iter()
        .find(|s| s["labels"]["device"] == "we\"ird\\name")
        .expect("name survives escaping");
    assert_eq!(weird["labels"]["region"], "West \"Side\"");
    assert_eq!(weird["labels"]["branch"], "b\\1");
    assert_eq!(weird["labels"]["address"], "127.11.0.3");
    let up = info
        .iter()
        .find(|s| s["labels"]["device"] == "up-1")
        .unwrap();
    assert_eq!(up["labels"]["label_isp_name"], "acme");
    assert_eq!(up["labels"]["label_rack"], "r\"7");
    // "isp.name" sanitises to label_isp_name, once (a second key that sanitises to the
    // same name, such as "isp_name", is an inventory error: see tests/config.rs).
    let line = text
        .lines()
        .find(|l| l.starts_with("wardops_device_info{device=\"up-1\""))
        .unwrap();
    assert_eq!(line.matches("label_isp_name=").count(), 1, "{line}");
    assert_eq!(up["value"], 1.0);
}

#[tokio::test]
async fn openmetrics_when_accepted() {
    let (base, _) = start().await;
    let prometheus_default =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let (content_type, text) = scrape(&base, Some(prometheus_default)).await;
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"));
    // The OpenMetrics parser is strict: a misplaced family, type or EOF fails here.
    let parsed = parse(&text, "openmetrics");
    let up = samples(&parsed, "wardops_device_probes_total");
    assert_eq!(
        (up[0]["family"].as_str(), up[0]["type"].as_str()),
        (Some("wardops_device_probes"), Some("counter"))
    );
    let info = samples(&parsed, "wardops_device_info");
    assert_eq!((info.len(), info[0]["type"].as_str()), (4, Some("info")));
    assert_eq!(samples(&parsed, "wardops_device_up").len(), 3);
    let unreachable = samples(&parsed, "wardops_device_unreachable");
    assert_eq!(
        (unreachable.len(), unreachable[0]["type"].as_str()),
        (3, Some("gauge"))
    );
}

#[tokio::test]
async fn gzip_when_accepted() {
    let (base, _) = start().await;
    let response = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    let parsed = parse(&text, "prometheus");
    assert_eq!(value_for(&parsed, "wardops_device_up", "up-1"), Some(1.0));
    let (_, plain) = scrape(&base, None).await;
    assert!(
        !plain.is_empty() && plain.starts_with("# HELP"),
        "no gzip unless asked"
    );
}

/// Holds every encoding of the registry until opened: scrapes that arrive while one is
/// encoding are certain to overlap it.
#[derive(Debug, Default)]
struct Gate {
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl prometheus_client::collector::Collector for Gate {
    fn encode(
        &self,
        _: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        Ok(())
    }
}

/// Item 10 of the reliability issue: fifty concurrent scrapes each built their own body
/// (at 20,000 devices, RSS from 93 MB to 0.95 GB). Now the scrapes that arrive while an
/// exposition is being encoded wait for it and answer with the same bytes; a scrape
/// after it encodes anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scrapes_share_one_encoding() {
    const SCRAPERS: u64 = 50;
    let source = Source {
        path: PathBuf::from("inventory/m.yaml"),
        text: INVENTORY.into(),
    };
    let inventory = build_inventory(&[source], &Default::default()).expect("valid inventory");
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, _started) = support::local_context(&state, dir.path()).await;
    let gate = Arc::new(Gate::default());
    ctx.registry.register_collector(Box::new(gate.clone()));
    let ctx = ctx.start(Default::default());
    let exporter = wardops::metrics::Exporter::new(&ctx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        exporter.routes(),
        Default::default(),
        std::future::pending(),
    ));
    let scrapes: Vec<_> = (0..SCRAPERS)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let response = reqwest::get(url).await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap()
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while exporter.scrapes() < SCRAPERS {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {SCRAPERS} scrapes arrived",
            exporter.scrapes()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let in_flight = exporter.encodings();
    // Opened before asserting, so that a failure does not leave the scrapers blocked.
    gate.open();
    assert_eq!(
        in_flight, 1,
        "every scrape waits for the one encoding in flight"
    );
    let mut bodies = Vec::new();
    for scrape in scrapes {
        bodies.push(scrape.await.unwrap());
    }
    let text = std::str::from_utf8(&bodies[0]).unwrap();
    assert!(text.contains("wardops_device_info{"), "{text}");
    assert!(bodies.iter().all(|b| *b == bodies[0]), "one body for all");
    assert_eq!(exporter.encodings(), 1);
    // A scrape after the flight is a new encoding: nothing is served from before it.
    let later = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert!(!later.is_empty());
    assert_eq!(exporter.encodings(), 2);
    assert_eq!(exporter.scrapes(), SCRAPERS + 1);
}

#[tokio::test]
async fn per_device_families_carry_the_device_alone_and_info_the_rest() {
    let (base, _) = start().await;
    let (_, text) = scrape(&base, None).await;
    let parsed = parse(&text, "prometheus");
    let per_device = parsed.iter().filter(|s| {
        let name = s["name"].as_str().unwrap();
        name.starts_with("wardops_device_") && name != "wardops_device_info"
    });
    let mut n = 0;
    for s in per_device {
        let keys: Vec<&String> = s["labels"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["device"], "{s}");
        n += 1;
    }
    assert!(n > 20, "{n} per-device samples");
    // What a dashboard joins on `device` for the region.
    let info = samples(&parsed, "wardops_device_info");
    let down = info
        .iter()
        .find(|s| s["labels"]["device"] == "down-1")
        .unwrap();
    assert_eq!(down["labels"]["region"], "West \"Side\"");
    assert_eq!(down["labels"]["kind"], "atm");
}

async fn scrape_query(base: &str, query: &str) -> (u16, String) {
    let r = reqwest::get(format!("{base}/metrics?{query}"))
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn slices_split_the_devices_and_only_the_first_has_the_appliance() {
    let (base, _) = start().await;
    let (_, whole) = scrape(&base, None).await;
    let whole = parse(&whole, "prometheus");
    let device_samples = |parsed: &[Value]| -> Vec<String> {
        let mut out: Vec<String> = parsed
            .iter()
            .filter(|s| s["labels"].get("device").is_some())
            .map(|s| format!("{} {}", s["name"], s["labels"]["device"]))
            .collect();
        out.sort();
        out
    };
    let mut union = Vec::new();
    for k in 1..=3 {
        let (status, text) = scrape_query(&base, &format!("shard={k}/3")).await;
        assert_eq!(status, 200, "{text}");
        let parsed = parse(&text, "prometheus");
        let has = |name| !samples(&parsed, name).is_empty();
        assert_eq!(
            [
                has("wardops_devices"),
                has("wardops_probes_total"),
                has("process_open_fds")
            ],
            [k == 1; 3],
            "slice {k}: totals and the appliance's own families in the first alone"
        );
        if k == 1 {
            let total: f64 = samples(&parsed, "wardops_devices")
                .iter()
                .map(|s| s["value"].as_f64().unwrap())
                .sum();
            assert_eq!(total, 4.0, "the totals count the whole fleet");
        }
        union.extend(device_samples(&parsed));
    }
    union.sort();
    assert_eq!(
        union,
        device_samples(&whole),
        "each device's series in one slice"
    );
    for bad in ["shard=0/3", "shard=4/3", "shard=x", "shard=1/65"] {
        let (status, body) = scrape_query(&base, bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body.contains("\"parameter\":\"shard\""), "{body}");
    }
}

#[test]
fn the_exposition_is_small_enough_per_device() {
    // A bank's fleet: names like tbilisi-b0042-atm-03, all up and answering, one label.
    let mut yaml = String::from("regions:\n  - name: tbilisi\n    branches:\n");
    for b in 0..500 {
        yaml.push_str(&format!(
            "      - name: tbilisi-b{b:04}\n        devices:\n"
        ));
        for d in 0..4 {
            yaml.push_str(&format!(
                "          - {{ name: tbilisi-b{b:04}-atm-{d:02}, address: 127.12.{}.{}, kind: atm, labels: {{ isp: magti }} }}\n",
                b / 2,
                (b % 2) * 100 + d + 1
            ));
        }
    }
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: yaml,
    };
    let inventory = build_inventory(&[source], &Default::default()).expect("valid inventory");
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let snapshot = state.snapshot();
    for (d, _, r) in snapshot.devices() {
        let outcome = ProbeOutcome {
            sent: 1,
            received: 1,
            rtt: Some(Duration::from_micros(1234)),
        };
        state.record_probe(d, r, &outcome, Utc::now());
    }
    let snapshot = state.snapshot();
    let ends = wardops::read_model::Ends::of(&state, chrono_tz::Tz::UTC);
    let body = wardops::metrics::encode(
        &snapshot,
        ends,
        &Registry::default(),
        wardops::metrics::Format::Prometheus,
        None,
    );
    let per_device = body.len() / snapshot.inventory.devices.len();
    eprintln!("{per_device} bytes a device");
    // 730 bytes with four labels on every family; VictoriaMetrics' default 16 MiB body
    // holds 26,000 devices at 640, a slice of 20,000 with room (docs/metrics.md).
    assert!(per_device <= 640, "{per_device} bytes a device");
}
