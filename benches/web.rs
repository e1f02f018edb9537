//! Web benchmarks: `cargo bench --bench web`.
//!
//! 1. `/` and `/monitor` render time with 100,000 devices (in-process, the handlers'
//!    own render functions on one snapshot; median and p99 of 30 runs each).
//! 2. Transition → event received by 1,000 concurrent SSE clients over real HTTP on
//!    127.0.0.1: 50 transitions, one every 20 ms; latency from `record_probe` to each
//!    client's read of the frame; p50/p99/max over all 50,000 deliveries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wardops::config::load::{Source, build_inventory};
use wardops::config::settings::WebSettings;
use wardops::http::{HttpContext, serve};
use wardops::probe::ProbeOutcome;
use wardops::schedule::ProberMetrics;
use wardops::state::{State, SystemClock};
use wardops::web::{Web, dashboard, monitor};

fn inventory(n: usize) -> String {
    let mut s = String::from("regions:\n");
    for r in 0..10 {
        s.push_str(&format!("  - name: region-{r}\n    probe: {{ down_after: 1, up_after: 1 }}\n    branches:\n"));
        for b in 0..100 {
            s.push_str(&format!("      - name: r{r}-b{b}\n        lat: {}\n        lon: {}\n        devices:\n", 40.0 + r as f64 * 0.3, 40.0 + b as f64 * 0.05));
            for d in 0..n / 1000 {
                let i = r * (n / 10) + b * (n / 1000) + d;
                s.push_str(&format!("          - {{ name: dev-{i}, address: 127.{}.{}.{}, kind: k{} }}\n", 80 + i / 65536, i / 256 % 256, i % 256, d % 6));
            }
        }
    }
    s
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn probe(state: &State, name: &str, ok: bool) {
    let snapshot = state.snapshot();
    let (d, _, rt) = snapshot.device(name).unwrap();
    let outcome = ProbeOutcome { sent: 1, received: u32::from(ok), rtt: ok.then_some(Duration::from_micros(500)) };
    state.record_probe(d, rt, &outcome, Utc::now());
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let source = Source { path: PathBuf::from("inventory/bench.yaml"), text: inventory(100_000) };
        let inv = build_inventory(&[source], &Default::default()).expect("valid inventory");
        let state = State::new(Arc::new(SystemClock));
        let web = Web::start(&state, WebSettings { max_event_streams: 2000, victoriametrics_url: None }, None);
        state.replace_inventory(Arc::new(inv), |_| None);
        // 1% down, the rest up: a realistic wall.
        for i in 0..100_000 {
            probe(&state, &format!("dev-{i}"), i % 100 != 7);
        }
        let snapshot = state.snapshot();
        println!("devices: {}", snapshot.inventory.devices.len());
        for (name, query) in [("/monitor", ""), ("/monitor?status=down", "status=down"), ("/monitor?view=table&page=50", "view=table&page=50")] {
            let q = monitor::MonitorQuery::parse(Some(query)).unwrap();
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..30 {
                let t = Instant::now();
                let r = monitor::render(&web, &snapshot, Utc::now(), &q);
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                size = http_body_util::BodyExt::collect(r.into_body()).await.unwrap().to_bytes().len();
            }
            times.sort_by(f64::total_cmp);
            println!("{name:32} median {:6.2} ms  p99 {:6.2} ms  ({size} bytes)", percentile(&times, 0.5), percentile(&times, 0.99));
        }
        let mut times = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            let prober = dashboard::ProberView::of(&ProberMetrics::default(), Vec::new());
            let alerts = dashboard::AlertsBlock { open: Vec::new(), more: false, error: None };
            let _ = dashboard::render(&web, &snapshot, Utc::now(), prober, alerts);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!("{:32} median {:6.2} ms  p99 {:6.2} ms", "/", percentile(&times, 0.5), percentile(&times, 0.99));

        // SSE fan-out.
        let ctx = Arc::new(HttpContext {
            state: state.clone(),
            prober: Arc::new(ProberMetrics::default()),
            registry: Registry::default(),
            readiness: Box::new(Vec::new),
            limits: wardops::config::settings::HttpSettings { max_connections: 4096, ..Default::default() },
            store: None,
            reload: None,
            web: Some(web.clone()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, ctx, std::future::pending()));
        const CLIENTS: usize = 1000;
        const EVENTS: usize = 50;
        let sent: Arc<parking_lot::Mutex<Vec<(u64, Instant)>>> = Arc::default();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(CLIENTS);
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let ready = ready_tx.clone();
            clients.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: b\r\n\r\n").await.unwrap();
                let mut buf = vec![0u8; 65536];
                let mut text = String::new();
                let mut seen = Vec::new();
                let mut said_ready = false;
                while seen.len() < EVENTS {
                    let n = s.read(&mut buf).await.unwrap();
                    let at = Instant::now();
                    assert!(n > 0, "stream ended");
                    text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
                    if !said_ready && text.contains("event: hello") {
                        said_ready = true;
                        ready.send(()).await.unwrap();
                    }
                    while let Some(end) = text.find("\n\n") {
                        let frame: String = text.drain(..end + 2).collect();
                        if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                            seen.push((id.parse::<u64>().unwrap(), at));
                        }
                    }
                }
                seen
            }));
        }
        for _ in 0..CLIENTS {
            ready_rx.recv().await.unwrap();
        }
        println!("{} SSE clients connected; open streams {}", CLIENTS, web.hub.open_streams());
        for i in 0..EVENTS {
            let t = Instant::now();
            // dev-7 starts down: the first probe succeeds, so every probe is a transition.
            probe(&state, "dev-7", i % 2 == 0);
            sent.lock().push((state.snapshot().version, t));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent: std::collections::HashMap<u64, Instant> = sent.lock().iter().cloned().collect();
        let mut lat = Vec::new();
        for c in clients {
            for (id, at) in c.await.unwrap() {
                lat.push((at - sent[&id]).as_secs_f64() * 1000.0);
            }
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "transition -> event at {CLIENTS} SSE clients ({} deliveries): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    });
}
