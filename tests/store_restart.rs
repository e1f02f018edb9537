//! kill -9 of the real `wardops serve` during a PostgreSQL outage, then a restart: the
//! devices that were down come back down with the same `down_since`, each with the same
//! one open alert, and nothing is duplicated. The outage is a TCP proxy of the test's own
//! being cut; devices go down through an nftables blackhole on addresses of this test's
//! own (127.77.31.0/24).

mod pgdb;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use support::{Appliance, Blackhole, api_status, wait_for, wait_status};

const DEVICES: [(&str, &str); 4] = [
    ("r1-router", "127.77.31.1"),
    ("r1-atm-1", "127.77.31.2"),
    ("r1-atm-2", "127.77.31.3"),
    ("r1-pos-1", "127.77.31.4"),
];

/// A TCP proxy to the local PostgreSQL on a runtime of its own (the test itself is
/// blocking); `cut` resets every connection and refuses new ones.
struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    fn start() -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        runtime.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !o.load(Ordering::SeqCst) {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c.lock().push(task.abort_handle());
            }
        });
        Proxy {
            addr,
            open,
            conns,
            _runtime: runtime,
        }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

fn write_config(dir: &Path) {
    support::write_fast_config(dir, "r", &DEVICES);
}

#[test]
fn kill_9_during_a_database_outage_loses_nothing_and_duplicates_nothing() {
    let db = pgdb::TestDb::create("restart");
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let url = db.url_via(proxy.addr);
    let env = [("WARDOPS_DATABASE_URL", url.as_str())];

    let app = Appliance::start_with(dir.path(), &env);
    for (name, _) in DEVICES {
        wait_status(&app, name, "up");
    }
    // One outage recorded while the database is there...
    let hole_a = Blackhole::new("st_a", &[DEVICES[1].1]);
    let since_a = wait_status(&app, DEVICES[1].0, "down").expect("down_since");
    wait_for(
        Duration::from_secs(10),
        "the first outage in the database",
        || {
            (db.query("SELECT count(*) FROM alerts WHERE resolved_at IS NULL")
                .trim()
                == "1")
                .then_some(())
        },
    );

    // ...and one while it is away.
    proxy.cut();
    let hole_b = Blackhole::new("st_b", &[DEVICES[2].1]);
    let since_b = wait_status(&app, DEVICES[2].0, "down").expect("down_since");
    wait_for(
        Duration::from_secs(20),
        "/readyz to report the store degraded",
        || {
            let resp = reqwest::blocking::get(app.url("/readyz")).ok()?;
            // Degraded, not unready: state is still served from memory, so a load
            // balancer must keep the appliance.
            let ok = resp.status() == 200;
            let body = resp.text().ok()?;
            (ok && body.contains(r#""status":"degraded""#) && body.contains("store degraded"))
                .then_some(())
        },
    );
    let metrics = app.try_get("/metrics").unwrap();
    let pending = metrics
        .lines()
        .find(|l| l.starts_with("wardops_store_pending_writes "))
        .expect("pending metric");
    assert_ne!(pending, "wardops_store_pending_writes 0", "{pending}");
    app.kill9();

    proxy.restore();
    let app = Appliance::start_with(dir.path(), &env);
    // Down from the first answer on, with the original down_since.
    assert_eq!(
        api_status(&app, DEVICES[1].0),
        Some(("down".into(), Some(since_a.clone())))
    );
    assert_eq!(
        api_status(&app, DEVICES[2].0),
        Some(("down".into(), Some(since_b.clone())))
    );
    wait_for(
        Duration::from_secs(20),
        "the spooled outage in the database",
        || {
            (db.query("SELECT count(*) FROM alerts WHERE resolved_at IS NULL")
                .trim()
                == "2")
                .then_some(())
        },
    );
    // A few probe cycles later: still exactly one alert each, still the same down_since.
    std::thread::sleep(Duration::from_secs(3));
    let alerts =
        db.query("SELECT device, condition, resolved_at IS NULL FROM alerts ORDER BY device");
    assert_eq!(
        alerts.lines().collect::<Vec<_>>(),
        ["r1-atm-1|device_down|t", "r1-atm-2|device_down|t"]
    );
    let downs =
        db.query("SELECT device, to_status FROM transitions WHERE to_status = 'down' ORDER BY id");
    assert_eq!(
        downs.lines().collect::<Vec<_>>(),
        ["r1-atm-1|down", "r1-atm-2|down"],
        "no duplicate transition"
    );
    assert_eq!(
        api_status(&app, DEVICES[1].0),
        Some(("down".into(), Some(since_a)))
    );
    assert_eq!(
        api_status(&app, DEVICES[2].0),
        Some(("down".into(), Some(since_b)))
    );
    assert!(
        app.log().contains("spooled by a previous run"),
        "{}",
        app.log()
    );

    // Recovery resolves each alert once.
    drop(hole_a);
    drop(hole_b);
    wait_status(&app, DEVICES[1].0, "up");
    wait_status(&app, DEVICES[2].0, "up");
    wait_for(Duration::from_secs(10), "the alerts resolved", || {
        (db.query("SELECT count(*) FROM alerts WHERE resolution = 'recovered'")
            .trim()
            == "2")
            .then_some(())
    });
    assert_eq!(db.query("SELECT count(*) FROM alerts").trim(), "2");
}
