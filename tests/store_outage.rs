//! A PostgreSQL outage between the appliance's state and its database: a TCP proxy of the
//! test's own is cut while devices go down and up, then restored. Every transition and
//! alert must end up in the database, in order, exactly once.

mod feeding;
mod pgdb;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use wardops::config::{Config, Env};
use wardops::probe::ProbeOutcome;
use wardops::state::{State, SystemClock, Transition};
use wardops::store::AlertRules;
use wardops::store::startup::{self, SPOOL_FILE, StartOptions};

/// Forwards TCP to the local PostgreSQL until cut; a cut resets every connection and
/// refuses new ones, like a database host dropping off the network.
struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection reset
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c.lock().push(task.abort_handle());
            }
        });
        Proxy { addr, open, conns }
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

/// Feeds probe results to device `i` until its status changes.
fn flip(state: &State, i: usize, ok: bool) -> Transition {
    let snapshot = state.snapshot();
    let device = &snapshot.inventory.devices[i];
    let runtime = &snapshot.runtime[i];
    let outcome = ProbeOutcome {
        sent: 1,
        received: u32::from(ok),
        rtt: ok.then(|| Duration::from_millis(1)),
    };
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(2)); // distinct timestamps
        if let Some(t) = state.record_probe(device, runtime, &outcome, chrono::Utc::now()) {
            return t;
        }
    }
    panic!("device {i} never changed status");
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_and_alert_survives_a_database_outage_once_and_in_order() {
    let db = pgdb::TestDb::create("outage");
    let proxy = Proxy::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Without parents: each device is flipped by hand, on its own.
    feeding::write_without_parents(dir.path(), 8);
    let config = Config::load_with_env(
        &dir.path().join("wardops.yaml"),
        &Env {
            listen: None,
            database_url: None,
            users_file: None,
            data_dir: None,
            cluster: Default::default(),
        },
    )
    .unwrap();
    let options = StartOptions {
        database_url: db.url_via(proxy.addr),
        base_dir: dir.path().to_path_buf(),
        data_dir: dir.path().join("data"),
        rules: AlertRules::default(),
        retention: Duration::from_secs(400 * 86_400),
        wait: Duration::from_secs(10),
    };
    let started = startup::start(options, Arc::new(SystemClock))
        .await
        .unwrap();
    let health = started.health.clone();
    let state = State::with_sink(Arc::new(SystemClock), started.sink);
    state.replace_inventory(config.inventory.clone(), |_| None);

    let mut expected = Vec::new();
    for i in 0..8 {
        expected.push(flip(&state, i, true));
    }
    wait_until("the first writes", Duration::from_secs(10), || {
        health.pending.get() == 0 && health.applied.get() > 0
    })
    .await;

    proxy.cut();
    for i in [0, 2, 3, 5, 1] {
        expected.push(flip(&state, i, false));
    }
    for ok in [true, false, true] {
        expected.push(flip(&state, 1, ok)); // device 1 flaps: down, up, down, up
    }
    wait_until(
        "the store to report degraded",
        Duration::from_secs(20),
        || health.is_degraded(),
    )
    .await;
    assert!(
        health.degraded_reason().unwrap().contains("pending write"),
        "{:?}",
        health.degraded_reason()
    );
    // Spooled (fsync'd) before they are queued for the database.
    wait_until(
        "the outage's writes to be spooled",
        Duration::from_secs(10),
        || health.pending.get() >= 8,
    )
    .await;
    let spool = std::fs::read_to_string(dir.path().join("data").join(SPOOL_FILE)).unwrap();
    assert!(
        spool.lines().count() >= 8,
        "the outage's transitions are spooled on disk: {spool}"
    );
    // Recovery of one device during the outage too.
    expected.push(flip(&state, 5, true));
    tokio::time::sleep(Duration::from_secs(2)).await;

    proxy.restore();
    wait_until("the spool to drain", Duration::from_secs(30), || {
        health.pending.get() == 0 && !health.is_degraded()
    })
    .await;

    let rows = db.query("SELECT device, from_status, to_status FROM transitions ORDER BY id");
    let expected_rows: Vec<String> = expected
        .iter()
        .map(|t| format!("{}|{}|{}", t.device.name, t.change.from, t.change.to))
        .collect();
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        expected_rows,
        "every transition, in order, exactly once"
    );
    let alerts = db.query(
        "SELECT device, condition, resolution IS NULL FROM alerts ORDER BY device, condition, opened_at",
    );
    let names: Vec<String> = (0..8)
        .map(|i| config.inventory.devices[i].name.to_string())
        .collect();
    let mut want = vec![
        format!("{}|device_down|t", names[0]),
        format!("{}|device_down|f", names[1]),
        format!("{}|device_down|f", names[1]),
        format!("{}|flapping|t", names[1]),
        format!("{}|device_down|t", names[2]),
        format!("{}|device_down|t", names[3]),
        format!("{}|device_down|f", names[5]),
    ];
    want.sort();
    let mut got: Vec<&str> = alerts.lines().collect();
    got.sort();
    assert_eq!(got, want);
    let state_rows = db.query("SELECT count(*) FROM device_state WHERE status = 'down'");
    assert_eq!(state_rows.trim(), "3");
    assert_eq!(
        std::fs::metadata(dir.path().join("data").join(SPOOL_FILE))
            .unwrap()
            .len(),
        0,
        "spool emptied"
    );
}
