//! Web benchmarks: `cargo bench --bench web`.
//!
//! 1. `/`, `/monitor`, `/wall` and the `GET /api/v1/devices` body at 10,000 and 100,000 devices
//!    (in-process, the handlers' own render functions; median and p99 of 100 runs each),
//!    both on one snapshot (the list order cached for its version) and with a new state
//!    version before every run (the order rebuilt).
//! 2. Transition → event received by 1,000 concurrent SSE clients over real HTTP on
//!    127.0.0.1: 50 transitions, one every 20 ms; latency from `record_probe` to each
//!    client's read of the frame; p50/p99/max over all 50,000 deliveries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wardops::api::devices as api;
use wardops::config::load::{Source, build_inventory};
use wardops::config::settings::WebSettings;
use wardops::context::{Context, StoreHandle};
use wardops::http::serve;
use wardops::probe::ProbeOutcome;
use wardops::read_model::ListQuery;
use wardops::reload::Reloader;
use wardops::schedule::ProberMetrics;
use wardops::state::{State, SystemClock};
use wardops::store::startup::{StartOptions, Started, start};
use wardops::web::{Pages, dashboard, monitor};

mod support;
use support::{inventory, percentile};

fn probe(state: &State, name: &str, ok: bool) {
    let snapshot = state.snapshot();
    let (d, _, rt) = snapshot.device(name).unwrap();
    let outcome = ProbeOutcome {
        sent: 1,
        received: u32::from(ok),
        rtt: ok.then_some(Duration::from_micros(500)),
    };
    state.record_probe(d, rt, &outcome, Utc::now());
}

/// Median and p99 in ms of `runs` calls of `f`; `before` runs untimed before each call
/// (to make a transition, so that the call meets a new state version).
fn time(
    runs: usize,
    mut before: impl FnMut(usize),
    mut f: impl FnMut() -> usize,
) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for i in 0..runs {
        before(i);
        let t = Instant::now();
        size = f();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.99), size)
}

fn report(what: &str, (p50, p99, size): (f64, f64, usize)) {
    println!("{what:52} median {p50:6.2} ms  p99 {p99:6.2} ms  ({size} bytes)");
}

const RUNS: usize = 100;

/// The length of a rendered page (its body is already in memory).
fn body_len(r: hyper::Response<wardops::http::response::Body>) -> usize {
    let collect = http_body_util::BodyExt::collect(r.into_body());
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(collect))
        .unwrap()
        .to_bytes()
        .len()
}

/// Page and list timings at `n` devices, 1 % down: "warm" renders one snapshot again
/// and again (the order cached for its version), "new version" flips a device before
/// each render so that every render meets a version it has not seen (the order built).
async fn pages(n: usize) -> (State, Arc<Pages>, (tempfile::TempDir, Started)) {
    let source = Source {
        path: PathBuf::from("inventory/bench.yaml"),
        text: inventory(n),
    };
    let inv = build_inventory(&[source], &Default::default()).expect("valid inventory");
    let state = State::new(Arc::new(SystemClock));
    let dir = tempfile::tempdir().unwrap();
    let store = start(StartOptions::local(dir.path()), Arc::new(SystemClock))
        .await
        .expect("a local store");
    let reloader = Reloader::idle(dir.path().into(), state.snapshot().inventory.clone());
    let mut ctx = Context::new(state.clone(), StoreHandle::of(&store), reloader);
    ctx.web = WebSettings {
        max_event_streams: 2000,
        victoriametrics_url: None,
        ..Default::default()
    };
    let web = Arc::new(Pages::new(ctx.start(Default::default())));
    state.replace_inventory(Arc::new(inv), |_| None);
    for i in 0..n {
        probe(&state, &format!("dev-{i}"), i % 100 != 7);
    }
    println!("devices: {}", state.snapshot().inventory.devices.len());
    // dev-1 flips up/down: one transition per flip.
    let flip = |i: usize| probe(&state, "dev-1", i % 2 == 1);
    for (name, query) in [
        ("/monitor", ""),
        ("/monitor?status=down", "status=down"),
        ("/monitor?view=table&page=50", "view=table&page=50"),
        ("/monitor?q=dev-4242", "q=dev-4242"),
    ] {
        let q = monitor::MonitorQuery::parse(Some(query)).unwrap();
        let render = || {
            let r = monitor::render(&web, &state.snapshot(), Utc::now(), &q);
            body_len(r)
        };
        report(&format!("{name} (warm)"), time(RUNS, |_| {}, render));
        report(&format!("{name} (new version)"), time(RUNS, flip, render));
    }
    let dashboard = || {
        let prober = dashboard::ProberView::of(&ProberMetrics::default(), Vec::new());
        let alerts = dashboard::AlertsBlock {
            open: Vec::new(),
            more: false,
            total: 0,
            error: None,
        };
        let r = dashboard::render(&web, &state.snapshot(), Utc::now(), prober, alerts);
        body_len(r)
    };
    report("/ (warm)", time(RUNS, |_| {}, dashboard));
    report("/ (new version)", time(RUNS, flip, dashboard));
    let wall = || {
        body_len(wardops::web::wall::render(
            &web,
            &state.snapshot(),
            Utc::now(),
        ))
    };
    report("/wall (warm)", time(RUNS, |_| {}, wall));
    report("/wall (new version)", time(RUNS, flip, wall));
    for (name, query) in [
        ("/api/v1/devices?limit=100", "limit=100"),
        ("/api/v1/devices?status=down", "status=down"),
        ("/api/v1/devices (all)", ""),
    ] {
        let q = ListQuery::parse(Some(query)).unwrap();
        let list = || {
            api::devices_json_with_alerts(&state.snapshot(), &q, Some(&web.ctx.order), None).len()
        };
        report(&format!("{name} (warm)"), time(RUNS, |_| {}, list));
        report(&format!("{name} (new version)"), time(RUNS, flip, list));
        let uncached = || api::devices_json(&state.snapshot(), &q).len();
        report(
            &format!("{name} (no cache, before)"),
            time(RUNS / 4, |_| {}, uncached),
        );
    }
    (state, web, (dir, store))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        drop(pages(10_000).await);
        let (state, web, _store) = pages(100_000).await;

        // SSE fan-out.
        let limits = wardops::config::settings::HttpSettings {
            max_connections: 4096,
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = wardops::app::routes(&web.ctx);
        tokio::spawn(serve(listener, routes, limits, std::future::pending()));
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
                            // A transition's id is `<boot>-<version>`; other events
                            // of the version (`.<n>`) are not timed.
                            let id = wardops::feed::parse_id(id).expect("an event id");
                            if id.key.1 == 0 {
                                seen.push((id.key.0, at));
                            }
                        }
                    }
                }
                seen
            }));
        }
        for _ in 0..CLIENTS {
            ready_rx.recv().await.unwrap();
        }
        println!("{} SSE clients connected; open streams {}", CLIENTS, web.ctx.hub.open_streams());
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
