//! Encoding cost of the read surfaces at scale: `/metrics` (both formats, plain and
//! gzip) and the `GET /api/v1/devices` body, for 10k and 100k devices built in memory
//! (no network). A writer thread keeps recording probe results meanwhile, as the
//! prober would, so measurement mutexes are contended as in production.
//!
//! Run with `cargo bench --bench encode`; prints median, p99 and max per case (wall
//! clock), and the median CPU time of the measuring thread.
//! `cargo bench --bench encode -- devices` runs only the cases whose label contains
//! `devices`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus_client::registry::Registry;
use wardops::api::devices as api;
use wardops::config::{Branch, Device, Inventory, Labels, ProbeSettings, Region};
use wardops::metrics::{self, Format};
use wardops::probe::ProbeOutcome;
use wardops::read_model::{ListQuery, OrderCache};
use wardops::schedule::ProberMetrics;
use wardops::state::{State, SystemClock};

const KINDS: [&str; 6] = ["router", "switch", "atm", "terminal", "camera", "ap"];

/// `n` devices in 10 regions of branches of 10 devices, with two inventory labels each.
fn inventory(n: usize) -> Inventory {
    let mut devices = Vec::with_capacity(n);
    let mut regions: Vec<Region> = (0..10)
        .map(|r| Region {
            name: format!("region-{r}").into(),
            branches: Vec::new(),
        })
        .collect();
    for i in 0..n {
        let (region, branch) = (i / 10 % 10, i / 100);
        let region = &mut regions[region];
        if region
            .branches
            .last()
            .is_none_or(|b| *b.name != *format!("branch-{branch:05}"))
        {
            region.branches.push(Branch {
                name: format!("branch-{branch:05}").into(),
                lat: None,
                lon: None,
                devices: vec![],
            });
        }
        region.branches.last_mut().unwrap().devices.push(i);
        let b = &region.branches.last().unwrap().name;
        devices.push(Arc::new(Device {
            name: format!("{b}-{}-{}", KINDS[i % 6], i % 10).into(),
            address: IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + 1 + i as u32)),
            region: region.name.clone(),
            branch: b.clone(),
            kind: KINDS[i % 6].into(),
            labels: Labels::new([
                ("isp".into(), format!("isp-{}", i % 3).into()),
                ("floor".into(), (i % 4).to_string().into()),
            ]),
            probe: ProbeSettings::default(),
            parents: Box::default(),
            maintenance: Default::default(),
            snmp: None,
        }));
    }
    Inventory::new(devices, regions, "bench".into())
}

/// A state where 90% of devices are up, 5% down and 5% still unknown.
fn state(n: usize) -> State {
    let state = State::new(Arc::new(SystemClock));
    let snapshot = state.replace_inventory(Arc::new(inventory(n)), |_| None);
    let now = Utc::now();
    for (i, (d, _, r)) in snapshot.devices().enumerate() {
        let outcomes: &[bool] = match i % 20 {
            0 => &[false, false],
            1 => &[],
            _ => &[true],
        };
        for &ok in outcomes {
            let outcome = ProbeOutcome {
                sent: 2,
                received: if ok { 2 } else { 0 },
                rtt: ok.then(|| Duration::from_micros(300 + i as u64 % 700)),
            };
            state.record_probe(d, r, &outcome, now);
        }
    }
    state
}

/// Records successful probes round-robin until stopped: the prober's side of the locks.
fn prober(state: State, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let snapshot = state.snapshot();
        let outcome = ProbeOutcome {
            sent: 2,
            received: 2,
            rtt: Some(Duration::from_micros(400)),
        };
        let mut recorded = 0;
        while !stop.load(Ordering::Relaxed) {
            // 20 probe results a millisecond: 100k devices probed every 5 s.
            for _ in 0..20 {
                let i = (recorded as usize * 7) % snapshot.runtime.len();
                state.record_probe(
                    &snapshot.inventory.devices[i],
                    &snapshot.runtime[i],
                    &outcome,
                    Utc::now(),
                );
                recorded += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        recorded
    })
}

fn measure(label: &str, runs: usize, mut f: impl FnMut() -> usize) {
    // cargo passes `--bench`; any other argument filters the cases by label.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| label.contains(f.as_str())) {
        return;
    }
    let mut times = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let (started, cpu_started) = (Instant::now(), thread_cpu_time());
        size = std::hint::black_box(f());
        times.push(started.elapsed());
        cpu.push(thread_cpu_time() - cpu_started);
    }
    times.sort();
    cpu.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = times[(runs * 99).div_ceil(100) - 1];
    println!(
        "{label:<44} median {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  cpu {:>8.2} ms  {:>9.2} MiB",
        ms(times[runs / 2]),
        ms(p99),
        ms(*times.last().unwrap()),
        ms(cpu[runs / 2]),
        size as f64 / (1024.0 * 1024.0)
    );
}

/// CPU time of the calling thread: unlike the wall clock, it does not count the time
/// the thread waits for a core, which on a shared machine can be most of it.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let prober_metrics = ProberMetrics::default();
    let mut registry = Registry::default();
    prober_metrics.register(&mut registry);
    for (n, runs) in [(10_000, 200), (100_000, 20)] {
        let built = Instant::now();
        let state = state(n);
        println!(
            "\n{n} devices (state built in {:.1} s)",
            built.elapsed().as_secs_f64()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let writer = prober(state.clone(), stop.clone());
        let all = ListQuery::default();
        measure(&format!("devices JSON, all {n}"), runs, || {
            api::devices_json(&state.snapshot(), &all).len()
        });
        // As the appliance serves it: the order cached per state version. At 10k the
        // version settles once the prober has brought the down devices up, so this
        // times the serialisation alone; at 100k it keeps moving (builds printed).
        let cache = OrderCache::default();
        measure(
            &format!("devices JSON, all {n}, cached order"),
            runs,
            || api::devices_json_with_alerts(&state.snapshot(), &all, Some(&cache), None).len(),
        );
        if cache.builds() > 0 {
            println!("(orders built meanwhile: {})", cache.builds());
        }
        let down = ListQuery::parse(Some("status=down&q=atm")).unwrap();
        measure("devices JSON, status=down&q=atm", runs, || {
            api::devices_json(&state.snapshot(), &down).len()
        });
        measure("metrics, Prometheus text", runs, || {
            metrics::encode(
                &state.snapshot(),
                wardops::read_model::Ends::of(&state, chrono_tz::Tz::UTC),
                &registry,
                Format::Prometheus,
                None,
            )
            .len()
        });
        measure("metrics, OpenMetrics", runs, || {
            metrics::encode(
                &state.snapshot(),
                wardops::read_model::Ends::of(&state, chrono_tz::Tz::UTC),
                &registry,
                Format::OpenMetrics,
                None,
            )
            .len()
        });
        measure("metrics, Prometheus text + gzip", runs, || {
            metrics::gzip_bytes(&metrics::encode(
                &state.snapshot(),
                wardops::read_model::Ends::of(&state, chrono_tz::Tz::UTC),
                &registry,
                Format::Prometheus,
                None,
            ))
            .len()
        });
        stop.store(true, Ordering::Relaxed);
        println!(
            "(probe results recorded meanwhile: {})",
            writer.join().unwrap()
        );
    }
}
