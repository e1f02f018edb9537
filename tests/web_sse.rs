//! The live feed over real HTTP: a `State` driven by recorded probe outcomes, served on
//! 127.0.0.1:0 with the web context, read by SSE clients (reqwest, and a raw socket
//! that stops reading for the slow-client case). Alert events come from a real store:
//! SQLite, and PostgreSQL (127.0.0.1:5432) including an outage.

mod pgdb;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::oneshot;
use wardops::config::load::{Source, build_inventory};
use wardops::config::settings::WebSettings;
use wardops::context::StoreHandle;
use wardops::feed::FeedConfig;
use wardops::http::serve;
use wardops::probe::ProbeOutcome;
use wardops::state::{State, SystemClock};
use wardops::store::AlertRules;
use wardops::store::startup::{StartOptions, Started, start};

const INVENTORY: &str = r#"
regions:
  - name: north
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: n1
        devices:
          - { name: n1-router, address: 127.77.5.1, kind: router }
          - { name: n1-atm, address: 127.77.5.2, kind: atm }
  - name: south
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: s1
        devices:
          - { name: s1-router, address: 127.77.5.3, kind: router }
"#;

struct Server {
    base: String,
    state: State,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    tick: std::cell::Cell<i64>,
    /// The store of a server not given one: real, but fed by nothing.
    _own_store: Option<(tempfile::TempDir, Started)>,
}

impl Server {
    async fn start(max_streams: usize, client_buffer: usize) -> Server {
        let feed = FeedConfig {
            client_buffer,
            ..FeedConfig::default()
        };
        Server::build(max_streams, feed, None).await
    }

    /// `store`: a real store (SQLite in the tests) whose writer the state feeds.
    async fn build(max_streams: usize, feed: FeedConfig, store: Option<&Started>) -> Server {
        Server::build_with(INVENTORY, max_streams, feed, store).await
    }

    /// [`Server::build`] over the inventory `text`.
    async fn build_with(
        text: &str,
        max_streams: usize,
        feed: FeedConfig,
        store: Option<&Started>,
    ) -> Server {
        let source = Source {
            path: PathBuf::from("inventory/test.yaml"),
            text: text.into(),
        };
        let inventory = build_inventory(&[source], &Default::default()).expect("valid inventory");
        let state = match store {
            Some(s) => State::with_sink(Arc::new(SystemClock), s.sink.clone()),
            None => State::new(Arc::new(SystemClock)),
        };
        let settings = WebSettings {
            max_event_streams: max_streams,
            victoriametrics_url: None,
            ..Default::default()
        };
        let mut own_store = None;
        let handle = match store {
            Some(s) => StoreHandle::of(s),
            None => {
                let dir = tempfile::tempdir().unwrap();
                let started = support::local_store(dir.path()).await;
                let handle = StoreHandle::of(&started);
                own_store = Some((dir, started));
                handle
            }
        };
        let mut ctx = support::context_over(&state, handle);
        ctx.web = settings;
        let ctx = ctx.start(feed);
        state.replace_inventory(Arc::new(inventory), |_| None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let routes = support::routes(&ctx);
        let served = tokio::spawn(serve(listener, routes, Default::default(), async move {
            let _ = stopped.await;
            ctx.close();
        }));
        // Let the hub see the inventory before clients count versions.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Server {
            base,
            state,
            stop: Some(stop),
            served,
            tick: Default::default(),
            _own_store: own_store,
        }
    }

    /// One probe of `device`; with thresholds of 1 every change of `ok` is a transition.
    fn probe(&self, device: &str, ok: bool) {
        let snapshot = self.state.snapshot();
        let (d, _, runtime) = snapshot.device(device).expect("device exists");
        let outcome = ProbeOutcome {
            sent: 1,
            received: u32::from(ok),
            rtt: ok.then_some(Duration::from_micros(900)),
        };
        self.tick.set(self.tick.get() + 1);
        let at: DateTime<Utc> = Utc
            .timestamp_opt(1_800_000_000 + self.tick.get(), 0)
            .unwrap();
        self.state.record_probe(d, runtime, &outcome, at);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Ev {
    id: Option<String>,
    name: String,
    data: serde_json::Value,
}

/// The key (state version, n) of an event's id.
fn event_key(ev: &Ev) -> (u64, u32) {
    let id = ev.id.as_deref().expect("an event with an id");
    wardops::feed::parse_id(id).expect("a well-formed id").key
}

/// Reads SSE frames from a response.
struct Reader {
    response: reqwest::Response,
    buf: String,
}

impl Reader {
    async fn open(url: &str, last_id: Option<&str>) -> Reader {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        Reader {
            response,
            buf: String::new(),
        }
    }

    /// The next event (comments and `retry:` skipped); None at the end of the stream.
    async fn next(&mut self) -> Option<Ev> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut name, mut data) = (None, None, None);
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).unwrap());
                    }
                }
                if let (Some(name), Some(data)) = (name, data) {
                    return Some(Ev { id, name, data });
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s");
            match chunk.unwrap() {
                Some(bytes) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }

    /// Everything the stream sends until `needle` (comments included), within `wait`.
    async fn raw_until(&mut self, needle: &str, wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.buf.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} within {wait:?}; got {:?}", self.buf));
            match chunk.unwrap() {
                Some(bytes) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => panic!("stream ended before {needle:?}"),
            }
        }
        let end = self.buf.find(needle).unwrap() + needle.len();
        self.buf.drain(..end).collect()
    }

    async fn expect(&mut self, name: &str) -> Ev {
        loop {
            let ev = self
                .next()
                .await
                .unwrap_or_else(|| panic!("stream ended before a {name} event"));
            if ev.name == name {
                return ev;
            }
            // Only the opening `hello` may come first; any other event means disorder.
            assert_eq!(ev.name, "hello", "expected {name}, got {ev:?}");
        }
    }
}

#[tokio::test]
async fn events_arrive_in_order_with_increasing_ids_and_filters_apply() {
    let server = Server::start(100, 1024).await;
    let mut all = Reader::open(&server.url("/api/v1/events"), None).await;
    let mut south = Reader::open(&server.url("/api/v1/events?region=south"), None).await;
    let hello = all.expect("hello").await.data;
    assert_eq!(hello["state_version"], server.state.snapshot().version);
    south.expect("hello").await;
    for (device, ok) in [
        ("n1-router", true),
        ("s1-router", true),
        ("n1-atm", false),
        ("s1-router", false),
    ] {
        server.probe(device, ok);
    }
    let mut ids = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let ev = all.expect("transition").await;
        ids.push(event_key(&ev).0);
        seen.push((
            ev.data["device"].as_str().unwrap().to_string(),
            ev.data["status"].as_str().unwrap().to_string(),
        ));
        assert_eq!(ev.data["state_version"].as_u64(), ids.last().copied());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(seen[2], ("n1-atm".into(), "down".into()));
    let s1 = south.expect("transition").await;
    let s2 = south.expect("transition").await;
    assert_eq!(
        (s1.data["device"].as_str(), s2.data["status"].as_str()),
        (Some("s1-router"), Some("down"))
    );
    assert!(s2.data["down_since"].is_string());
}

#[tokio::test]
async fn last_event_id_resumes_exactly_and_a_lost_resume_point_resets() {
    let server = Server::start(100, 1024).await;
    let mut first = Reader::open(&server.url("/api/v1/events"), None).await;
    server.probe("n1-router", true);
    let seen = first.expect("transition").await.id.unwrap();
    drop(first);
    server.probe("n1-router", false);
    server.probe("n1-atm", true);
    server.probe("n1-router", true);
    // By header (a reconnecting EventSource) and by `since` (a page's first connect).
    for reader in [
        Reader::open(&server.url("/api/v1/events"), Some(&seen)).await,
        Reader::open(&server.url(&format!("/api/v1/events?since={seen}")), None).await,
    ] {
        let mut reader = reader;
        let mut got = Vec::new();
        for _ in 0..3 {
            let ev = reader.expect("transition").await;
            got.push(format!(
                "{}:{}",
                ev.data["device"].as_str().unwrap(),
                ev.data["status"].as_str().unwrap()
            ));
        }
        assert_eq!(got, ["n1-router:down", "n1-atm:up", "n1-router:up"]);
    }
    // An id this process never issued (another boot's, say): reset, then the end.
    let mut future = Reader::open(&server.url("/api/v1/events"), Some("999999")).await;
    let reset = future.expect("reset").await;
    assert!(reset.id.is_none(), "a reset must not move Last-Event-ID");
    assert!(
        future.next().await.is_none(),
        "the stream ends after a reset"
    );
    // Further back than the backlog: reset too.
    for i in 0..(wardops::feed::BACKLOG + 10) {
        server.probe("s1-router", i % 2 == 0);
    }
    // The hub renders 10,000 events in its own task: wait until it has (a fixed sleep was
    // too short on a loaded machine), as its `hello` says.
    let version = server.state.snapshot().version;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut r = Reader::open(&server.url("/api/v1/events"), None).await;
        if r.expect("hello").await.data["state_version"] == version {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hub never caught up with the state"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut old = Reader::open(&server.url("/api/v1/events"), Some(&seen)).await;
    old.expect("reset").await;
}

/// Waits until the hub has published every version the state has (its `hello` says so).
async fn hub_caught_up(server: &Server) {
    let version = server.state.snapshot().version;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut r = Reader::open(&server.url("/api/v1/events"), None).await;
        if r.expect("hello").await.data["state_version"] == version {
            return;
        }
        assert!(Instant::now() < deadline, "the hub never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// State versions start over with the process: an id of the previous process (or of the
/// older id form, which names none) whose version the new one has passed must reset the
/// client, not replay the new process's events as if they followed the old page.
#[tokio::test]
async fn an_id_from_before_a_restart_resets_instead_of_replaying() {
    let before = Server::start(100, 1024).await;
    let mut reader = Reader::open(&before.url("/api/v1/events"), None).await;
    before.probe("n1-router", true);
    let old = reader.expect("transition").await;
    drop((reader, before));

    let after = Server::start(100, 1024).await;
    for (device, ok) in [("n1-router", true), ("n1-atm", true), ("n1-router", false)] {
        after.probe(device, ok);
    }
    hub_caught_up(&after).await;
    assert!(
        after.state.snapshot().version > event_key(&old).0,
        "the old id's version is inside the new backlog"
    );
    let older_form = event_key(&old).0.to_string();
    for id in [old.id.as_deref().unwrap(), older_form.as_str()] {
        let mut resumed = Reader::open(&after.url("/api/v1/events"), Some(id)).await;
        let reset = resumed.expect("reset").await;
        assert!(
            reset.id.is_none(),
            "{id}: a reset must not move Last-Event-ID"
        );
        assert!(resumed.next().await.is_none(), "{id}: the stream ends");
    }
    // The same version as this process's own id resumes exactly.
    let mut own = Reader::open(&after.url("/api/v1/events"), None).await;
    let hello = own.expect("hello").await;
    let boot = hello.data["last_event_id"]
        .as_str()
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .to_string();
    let same_key = format!("{boot}-{}", event_key(&old).0);
    let mut resumed = Reader::open(&after.url("/api/v1/events"), Some(&same_key)).await;
    let next = resumed.expect("transition").await;
    assert_eq!(event_key(&next).0, event_key(&old).0 + 1);
}

#[tokio::test]
async fn a_slow_client_is_dropped_and_told_why_while_others_keep_up() {
    let server = Server::start(100, 256).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    // A client with a tiny receive window that then stops reading.
    let slow = tokio::task::spawn_blocking(move || {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket
            .connect(&addr.parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        let mut stream: TcpStream = socket.into();
        stream
            .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 64];
        let _ = stream.read(&mut head).unwrap();
        stream
    })
    .await
    .unwrap();
    let mut fast = Reader::open(&server.url("/api/v1/events"), None).await;
    fast.expect("hello").await;
    const N: usize = 30_000;
    let mut received = 0;
    for i in 0..N {
        server.probe("n1-atm", i % 2 == 1);
        // The fast client reads as it goes, so it never falls more than a few behind.
        if i % 64 == 63 {
            while received < i + 1 - 32 {
                fast.expect("transition").await;
                received += 1;
            }
        }
    }
    while received < N {
        fast.expect("transition").await;
        received += 1;
    }
    // Now the slow one reads what is left: its stream ends with `dropped`.
    let text = tokio::task::spawn_blocking(move || {
        let mut stream = slow;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    })
    .await
    .unwrap();
    let transitions = text.matches("event: transition").count();
    assert!(
        text.contains("event: dropped"),
        "no drop notice after {transitions} transitions"
    );
    assert!(text.contains("too far behind"));
    assert!(transitions < N, "the slow client cannot have read all {N}");
}

#[tokio::test]
async fn the_stream_cap_answers_503_and_frees_slots() {
    let server = Server::start(2, 64).await;
    let a = Reader::open(&server.url("/api/v1/events"), None).await;
    let _b = Reader::open(&server.url("/api/v1/events"), None).await;
    let third = reqwest::get(server.url("/api/v1/events")).await.unwrap();
    assert_eq!(third.status(), 503);
    assert!(third.headers().contains_key("retry-after"));
    let body: serde_json::Value = third.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many live event streams (limit 2)"),
        "{body}"
    );
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = reqwest::get(server.url("/api/v1/events")).await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn streams_end_cleanly_on_shutdown() {
    let mut server = Server::start(100, 64).await;
    let mut reader = Reader::open(&server.url("/api/v1/events"), None).await;
    reader.expect("hello").await;
    let started = Instant::now();
    server.stop.take().unwrap().send(()).unwrap();
    let ev = reader.expect("shutdown").await;
    assert!(
        ev.data["reason"]
            .as_str()
            .unwrap()
            .contains("shutting down")
    );
    assert!(
        reader.next().await.is_none(),
        "the stream ends after the shutdown event"
    );
    tokio::time::timeout(Duration::from_secs(3), &mut server.served)
        .await
        .expect("server drained")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < wardops::http::GRACE,
        "drained without waiting for the grace period"
    );
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeat_comments() {
    let feed = FeedConfig {
        heartbeat: Duration::from_millis(200),
        ..FeedConfig::default()
    };
    let server = Server::build(100, feed, None).await;
    let mut reader = Reader::open(&server.url("/api/v1/events"), None).await;
    let started = Instant::now();
    let first = reader
        .raw_until(": heartbeat\n\n", Duration::from_secs(5))
        .await;
    assert!(first.contains("event: hello"), "{first:?}");
    assert!(
        !first.contains("event: transition"),
        "an idle stream: {first:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "not before the period: {:?}",
        started.elapsed()
    );
    // And again, one period later: a comment, not an event (no id, no `Last-Event-ID` move).
    let second = reader
        .raw_until(": heartbeat\n\n", Duration::from_secs(5))
        .await;
    assert_eq!(second, ": heartbeat\n\n");
    // Activity does not stop them.
    server.probe("n1-router", true);
    reader
        .raw_until("event: transition", Duration::from_secs(5))
        .await;
    reader
        .raw_until(": heartbeat\n\n", Duration::from_secs(5))
        .await;
}

fn store_options(database_url: String, dir: &std::path::Path) -> StartOptions {
    StartOptions {
        database_url,
        base_dir: dir.into(),
        data_dir: dir.into(),
        rules: AlertRules::default(),
        retention: Duration::from_secs(86_400),
        wait: Duration::from_secs(5),
    }
}

/// Alert events over real HTTP from a real store: the writer commits the transition and
/// reports the alert it opened, which reaches the feed; the same for the recovery.
async fn alerts_opened_and_resolved_by_the_store_reach_the_feed(options: StartOptions) {
    let store = start(options, Arc::new(SystemClock))
        .await
        .expect("store starts");
    let server = Server::build(100, FeedConfig::default(), Some(&store)).await;
    server.probe("n1-atm", true);
    let mut all = Reader::open(&server.url("/api/v1/events"), None).await;
    let mut south = Reader::open(&server.url("/api/v1/events?region=south"), None).await;
    let mut north = Reader::open(&server.url("/api/v1/events?region=north"), None).await;
    all.expect("hello").await;
    south.expect("hello").await;
    north.expect("hello").await;

    let started = Instant::now();
    server.probe("n1-atm", false);
    let down = all.expect("transition").await;
    assert_eq!(down.data["status"], "down");
    let opened = all.expect("alert_opened").await;
    let opened_after = started.elapsed();
    let d = &opened.data;
    assert_eq!(
        (&d["device"], &d["condition"], &d["severity"]),
        (&"n1-atm".into(), &"device_down".into(), &"critical".into())
    );
    assert_eq!(
        (&d["region"], &d["branch"], &d["kind"]),
        (&"north".into(), &"n1".into(), &"atm".into())
    );
    assert_eq!(d["opened_at"], down.data["at"], "opened when decided");
    assert!(
        d["resolved_at"].is_null() && d["resolution"].is_null(),
        "{d}"
    );
    let alert_id = d["id"].as_i64().unwrap();
    assert!(
        opened_after < Duration::from_secs(1),
        "opened {opened_after:?} after the transition"
    );

    server.probe("n1-atm", true);
    let up = all.expect("transition").await;
    assert_eq!(up.data["status"], "up");
    let resolved = all.expect("alert_resolved").await;
    let r = &resolved.data;
    assert_eq!(r["id"].as_i64(), Some(alert_id));
    assert_eq!(r["device"], "n1-atm");
    assert_eq!(r["resolution"], "recovered");
    assert_eq!(r["resolved_at"], up.data["at"], "resolved when recovered");
    assert_eq!(r["opened_at"], d["opened_at"]);

    // Ids strictly increase across state and alert events: 5, 5.1, 6, 6.1 and so on.
    let ids: Vec<(u64, u32)> = [&down, &opened, &up, &resolved]
        .iter()
        .map(|e| event_key(e))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(
        ids[1].0, ids[0].0,
        "nothing else happened: the alert is keyed right after its transition: {ids:?}"
    );

    // Alerts carry their device's scope: the north wall gets them, the south wall not.
    for name in ["transition", "alert_opened", "transition", "alert_resolved"] {
        north.expect(name).await;
    }
    server.probe("s1-router", true);
    let ev = south.expect("transition").await;
    assert_eq!(
        ev.data["device"], "s1-router",
        "the south wall saw nothing of n1-atm before this"
    );

    // Resume from before the alert: it is replayed from the backlog like any event.
    let mut resumed = Reader::open(&server.url("/api/v1/events"), down.id.as_deref()).await;
    assert_eq!(resumed.expect("alert_opened").await.id, opened.id);
    assert_eq!(resumed.expect("transition").await.id, up.id);
    assert_eq!(resumed.expect("alert_resolved").await.id, resolved.id);
}

#[tokio::test]
async fn alerts_reach_the_feed_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let options = store_options("sqlite://wardops.db".into(), dir.path());
    alerts_opened_and_resolved_by_the_store_reach_the_feed(options).await;
}

#[tokio::test]
async fn alerts_reach_the_feed_from_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = pgdb::TestDb::create("sse_alerts");
    alerts_opened_and_resolved_by_the_store_reach_the_feed(store_options(db.url(), dir.path()))
        .await;
}

/// While PostgreSQL refuses connections the transition is live but its alert is only
/// spooled; when the database returns, the spool is committed and the alert published.
#[tokio::test]
async fn an_alert_spooled_during_a_database_outage_is_published_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = pgdb::TestDb::create("sse_outage");
    let store = start(store_options(db.url(), dir.path()), Arc::new(SystemClock))
        .await
        .expect("store starts");
    let health = store.health.clone();
    let server = Server::build(100, FeedConfig::default(), Some(&store)).await;
    server.probe("n1-atm", true);
    let mut all = Reader::open(&server.url("/api/v1/events"), None).await;
    all.expect("hello").await;
    wait_until("the first writes are committed", || {
        health.pending.get() == 0 && health.applied.get() >= 2
    })
    .await;

    // From the maintenance database: refusing connections to the test's own database and
    // ending those it has is an outage as the writer sees it.
    let allow = |yes: bool| {
        pgdb::psql(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {yes}",
            db.name
        ));
        if !yes {
            pgdb::psql(&format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{}'",
                db.name
            ));
        }
    };
    allow(false);
    server.probe("n1-atm", false);
    let down = all.expect("transition").await;
    wait_until("the writer notices the outage", || health.is_degraded()).await;
    assert_eq!(health.pending.get(), 1, "the transition waits in the spool");
    // Nothing but heartbeats while the alert is not committed.
    let quiet = tokio::time::timeout(Duration::from_millis(700), all.next()).await;
    assert!(quiet.is_err(), "an event before the commit: {quiet:?}");

    allow(true);
    let opened = all.expect("alert_opened").await;
    assert_eq!(opened.data["device"], "n1-atm");
    assert_eq!(
        opened.data["opened_at"], down.data["at"],
        "opened when decided, not when committed"
    );
    assert!(!health.is_degraded());
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A core router, a branch gateway behind it and an ATM behind the gateway.
const CHAIN: &str = r#"
regions:
  - name: east
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: e1
        devices:
          - { name: core, address: 127.77.6.1, kind: router }
          - { name: gw, address: 127.77.6.2, kind: router, parents: [core] }
          - { name: atm, address: 127.77.6.3, kind: atm, parents: [gw] }
"#;

/// Transitions to and from `unreachable` reach the feed with their status and
/// `down_since`; no alert is opened for them; an alert opened for a device that goes
/// from unreachable to down carries the devices unreachable behind it.
#[tokio::test]
async fn unreachable_transitions_and_the_count_behind_an_alert_reach_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let options = store_options("sqlite://wardops.db".into(), dir.path());
    let store = start(options, Arc::new(SystemClock))
        .await
        .expect("store starts");
    let server = Server::build_with(CHAIN, 100, FeedConfig::default(), Some(&store)).await;
    for name in ["core", "gw", "atm"] {
        server.probe(name, true);
    }
    let mut all = Reader::open(&server.url("/api/v1/events"), None).await;
    all.expect("hello").await;

    server.probe("core", false);
    assert_eq!(all.expect("transition").await.data["status"], "down");
    let opened = all.expect("alert_opened").await;
    assert_eq!(
        (&opened.data["device"], &opened.data["unreachable_behind"]),
        (&"core".into(), &0.into())
    );

    server.probe("gw", false);
    let gw = all.expect("transition").await;
    let d = &gw.data;
    assert_eq!(
        (&d["device"], &d["from"], &d["status"]),
        (&"gw".into(), &"up".into(), &"unreachable".into())
    );
    assert_eq!(
        d["down_since"], d["at"],
        "its outage began with this failed probe"
    );
    // The core's alert now has one behind it (see the next test).
    assert_eq!(
        all.expect("alert_updated").await.data["unreachable_behind"],
        1
    );
    server.probe("atm", false);
    let atm = all.expect("transition").await;
    assert_eq!(
        (&atm.data["device"], &atm.data["status"]),
        (&"atm".into(), &"unreachable".into())
    );
    assert_eq!(
        all.expect("alert_updated").await.data["unreachable_behind"],
        2
    );

    // The core answers again; the gateway still does not: its outage is its own now.
    server.probe("core", true);
    assert_eq!(all.expect("transition").await.data["status"], "up");
    let resolved = all.expect("alert_resolved").await;
    assert_eq!(resolved.data["device"], "core");
    assert!(
        resolved.data.get("unreachable_behind").is_none(),
        "{}",
        resolved.data
    );
    server.probe("gw", false);
    let down = all.expect("transition").await;
    assert_eq!(
        (&down.data["from"], &down.data["status"]),
        (&"unreachable".into(), &"down".into())
    );
    assert_eq!(
        down.data["down_since"], gw.data["down_since"],
        "the same outage"
    );
    assert_eq!(down.data["was_down_since"], gw.data["down_since"]);
    let opened = all.expect("alert_opened").await;
    let d = &opened.data;
    assert_eq!(
        (&d["device"], &d["condition"], &d["unreachable_behind"]),
        (&"gw".into(), &"device_down".into(), &1.into()),
        "the atm is unreachable behind it"
    );
    assert_eq!(d["opened_at"], down.data["at"]);
}

/// The count behind an open `device_down` alert is kept current on the feed: each
/// device behind it turning unreachable, or answering again, is followed by an
/// `alert_updated` of that alert (same id) with the new figure — also on a stream
/// scoped to the alert's device (routers here), which never sees the ATM's transitions.
/// A transition that changes no figure sends none.
#[tokio::test]
async fn the_count_behind_an_open_alert_is_updated_on_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let options = store_options("sqlite://wardops.db".into(), dir.path());
    let store = start(options, Arc::new(SystemClock))
        .await
        .expect("store starts");
    let server = Server::build_with(CHAIN, 100, FeedConfig::default(), Some(&store)).await;
    for name in ["core", "gw", "atm"] {
        server.probe(name, true);
    }
    let mut all = Reader::open(&server.url("/api/v1/events"), None).await;
    let mut routers = Reader::open(&server.url("/api/v1/events?kind=router"), None).await;
    all.expect("hello").await;
    routers.expect("hello").await;

    server.probe("core", false);
    all.expect("transition").await;
    let opened = all.expect("alert_opened").await;
    assert_eq!(opened.data["unreachable_behind"], 0);
    routers.expect("transition").await;
    routers.expect("alert_opened").await;

    server.probe("gw", false);
    assert_eq!(all.expect("transition").await.data["status"], "unreachable");
    let updated = all.expect("alert_updated").await;
    assert_eq!(
        (
            &updated.data["id"],
            &updated.data["device"],
            &updated.data["unreachable_behind"]
        ),
        (&opened.data["id"], &"core".into(), &1.into())
    );
    assert_eq!(updated.data["condition"], "device_down");
    assert!(event_key(&updated) > event_key(&opened));
    routers.expect("transition").await;
    assert_eq!(
        routers.expect("alert_updated").await.data["unreachable_behind"],
        1
    );

    server.probe("atm", false);
    assert_eq!(all.expect("transition").await.data["device"], "atm");
    assert_eq!(
        all.expect("alert_updated").await.data["unreachable_behind"],
        2
    );
    // The router-scoped stream gets no ATM transition, but the update of the core's alert.
    let update = routers.expect("alert_updated").await;
    assert_eq!(update.data["unreachable_behind"], 2);

    // A failure of an unreachable device changes nothing: no event at all.
    server.probe("atm", false);
    // The ATM answers again: one fewer behind the core.
    server.probe("atm", true);
    let up = all.expect("transition").await;
    assert_eq!(
        (&up.data["device"], &up.data["status"]),
        (&"atm".into(), &"up".into())
    );
    assert_eq!(
        all.expect("alert_updated").await.data["unreachable_behind"],
        1
    );
    assert_eq!(
        routers.expect("alert_updated").await.data["unreachable_behind"],
        1
    );

    // Resolved: no more updates for it, even as the gateway's status changes.
    server.probe("core", true);
    all.expect("transition").await;
    assert_eq!(
        all.expect("alert_resolved").await.data["id"],
        opened.data["id"]
    );
    // The gateway answers (unreachable → up): the resolved alert gets no update, so
    // the next event after its transition is the core's next outage and new alert.
    server.probe("gw", true);
    assert_eq!(all.expect("transition").await.data["device"], "gw");
    server.probe("core", false);
    assert_eq!(all.expect("transition").await.data["device"], "core");
    let next = all.expect("alert_opened").await;
    assert_ne!(next.data["id"], opened.data["id"]);
    assert_eq!(next.data["unreachable_behind"], 0);
}

/// An alert opened before this process started (read back from the store) is kept
/// current too: a second appliance over the same database, whose feed never saw the
/// `alert_opened`, sends `alert_updated` for it when a device behind it turns
/// unreachable.
#[tokio::test]
async fn an_alert_open_before_the_start_is_updated_on_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let options = |spool: &str| StartOptions {
        data_dir: dir.path().join(spool),
        ..store_options("sqlite://wardops.db".into(), dir.path())
    };
    let first_store = start(options("a"), Arc::new(SystemClock))
        .await
        .expect("store starts");
    let first = Server::build_with(CHAIN, 100, FeedConfig::default(), Some(&first_store)).await;
    for name in ["core", "gw", "atm"] {
        first.probe(name, true);
    }
    let mut feed = Reader::open(&first.url("/api/v1/events"), None).await;
    feed.expect("hello").await;
    first.probe("core", false);
    feed.expect("transition").await;
    let opened = feed.expect("alert_opened").await;

    let second_store = start(options("b"), Arc::new(SystemClock))
        .await
        .expect("store starts");
    let second = Server::build_with(CHAIN, 100, FeedConfig::default(), Some(&second_store)).await;
    for name in ["core", "gw", "atm"] {
        second.probe(name, true);
    }
    let mut feed = Reader::open(&second.url("/api/v1/events"), None).await;
    feed.expect("hello").await;
    // Down again here: the store keeps the one open alert (no second is opened).
    second.probe("core", false);
    assert_eq!(feed.expect("transition").await.data["device"], "core");
    second.probe("gw", false);
    assert_eq!(
        feed.expect("transition").await.data["status"],
        "unreachable"
    );
    let updated = feed.expect("alert_updated").await;
    assert_eq!(
        (&updated.data["id"], &updated.data["unreachable_behind"]),
        (&opened.data["id"], &1.into())
    );
}

/// A branch in maintenance around the probes' times (2027-01-15T08:00Z on), one without.
const IN_MAINTENANCE: &str = r#"
regions:
  - name: west
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: works
        maintenance:
          - { start: 2027-01-15T07:00, end: 2027-01-15T09:00, reason: firmware }
        devices:
          - { name: w-atm, address: 127.77.8.1, kind: atm }
      - name: plain
        devices:
          - { name: p-atm, address: 127.77.8.2, kind: atm }
"#;

#[tokio::test]
async fn transitions_in_maintenance_say_so_and_open_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let options = store_options("sqlite://wardops.db".into(), dir.path());
    let store = start(options, Arc::new(SystemClock))
        .await
        .expect("store starts");
    let server = Server::build_with(IN_MAINTENANCE, 100, FeedConfig::default(), Some(&store)).await;
    for name in ["w-atm", "p-atm"] {
        server.probe(name, true);
    }
    let mut all = Reader::open(&server.url("/api/v1/events"), None).await;
    all.expect("hello").await;
    server.probe("w-atm", false);
    server.probe("p-atm", false);
    let w = all.expect("transition").await;
    assert_eq!(
        (
            &w.data["device"],
            &w.data["status"],
            &w.data["in_maintenance"],
            &w.data["maintenance_ends_at"]
        ),
        (
            &"w-atm".into(),
            &"down".into(),
            &true.into(),
            &"2027-01-15T09:00:00.000Z".into()
        )
    );
    // Next comes p-atm's transition, then its alert: w-atm's would come between.
    let p = all.expect("transition").await;
    assert_eq!(
        (
            &p.data["device"],
            &p.data["in_maintenance"],
            &p.data["maintenance_ends_at"]
        ),
        (&"p-atm".into(), &false.into(), &serde_json::Value::Null)
    );
    let opened = all.expect("alert_opened").await;
    assert_eq!(opened.data["device"], "p-atm");
    // A recovery inside the window is a transition like any other, still marked.
    server.probe("w-atm", true);
    let up = all.expect("transition").await;
    assert_eq!(
        (&up.data["status"], &up.data["in_maintenance"]),
        (&"up".into(), &true.into())
    );
}
