//! The server under abuse, over raw TCP on 127.0.0.1:0: requests whose body never
//! arrives, heads that trickle, a client that opens far more connections than its
//! share, and a full public share with health and metrics still served.
//!
//! Clients pick their loopback source address (127.0.0.x) so that "one client" and
//! "another client" are different addresses, as they are in a NOC. Every wait has a
//! deadline only so that a broken server fails the test instead of hanging it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use wardops::config::load::{Source, build_inventory};
use wardops::config::settings::HttpSettings;
use wardops::http::serve;
use wardops::state::{State, SystemClock};

mod support;

const INVENTORY: &str = r#"
regions:
  - name: r
    branches:
      - name: b
        devices:
          - { name: d1, address: 127.12.0.1, kind: router }
"#;

/// Longest any single exchange may take before the test calls the server stuck.
const GUARD: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    _store: (tempfile::TempDir, wardops::store::startup::Started),
}

async fn start(limits: HttpSettings) -> Server {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: INVENTORY.into(),
    };
    let inventory = build_inventory(&[source], &Default::default()).expect("valid inventory");
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let dir = tempfile::tempdir().unwrap();
    let (ctx, started) = support::local_context(&state, dir.path()).await;
    let ctx = ctx.start(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, support::routes(&ctx), limits, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        _stop: stop,
        _store: (dir, started),
    }
}

fn client(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A connection from `from` to the server.
async fn connect(server: &Server, from: IpAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server.addr).await
}

/// Sends `request` and reads until the server closes the connection; what it answered.
async fn exchange(server: &Server, from: IpAddr, request: &str) -> String {
    let exchange = async {
        let mut stream = connect(server, from).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).into_owned())
    };
    match tokio::time::timeout(GUARD, exchange).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => format!("(connection failed: {e})"),
        Err(_) => format!("(no answer within {GUARD:?}: the server is stuck)"),
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
}

/// Reads (and drops) whatever the server sends until it closes `stream` (EOF or reset).
async fn until_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// Whether the server closes `stream` within the guard.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    tokio::time::timeout(GUARD, until_closed(stream))
        .await
        .is_ok()
}

/// Item 8 of the reliability issue: `Content-Length: 1000` and no body used to hold a
/// streaming route's connection forever (the request timeout does not apply to it) and
/// any other route's for the whole request timeout. Reading the request has its own
/// deadline now, on every route.
#[tokio::test]
async fn a_declared_body_that_never_arrives_gets_a_408_on_every_route() {
    let server = start(HttpSettings {
        body_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(60),
        ..HttpSettings::default()
    })
    .await;
    for path in [
        "/api/v1/events",
        "/healthz",
        "/api/v1/devices",
        "/metrics",
        "/",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
        let reply = exchange(&server, client(1), &request).await;
        assert!(reply.starts_with("HTTP/1.1 408"), "{path}: {reply}");
        assert!(
            reply.to_ascii_lowercase().contains("connection: close"),
            "{path}: {reply}"
        );
        assert!(reply.contains("did not arrive in time"), "{path}: {reply}");
    }
    // A body that does arrive is read, and the route answers.
    let request =
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 4\r\n\r\nping";
    let reply = exchange(&server, client(1), request).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// The head has its deadline too (hyper's header timeout): a client sending one byte
/// at a time is cut off, however steadily it sends.
#[tokio::test]
async fn a_request_head_that_trickles_is_cut_off() {
    let server = start(HttpSettings {
        header_timeout: Duration::from_millis(500),
        ..HttpSettings::default()
    })
    .await;
    let mut stream = connect(&server, client(1)).await.unwrap();
    let trickle = async {
        for byte in "GET /healthz HTTP/1.1\r\nX-Slow: "
            .bytes()
            .chain(std::iter::repeat(b'a'))
        {
            if stream.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert!(
        tokio::time::timeout(GUARD, trickle).await.is_ok(),
        "a trickling head was never cut off"
    );
}

/// Item 9, one client: a slowloris that opens many more connections than its share (and
/// reconnects whenever one is closed) gets its share and no more; its other connections
/// are closed at once, so it neither fills the server nor waits in the backlog in front
/// of the other clients, whose health probes and API reads are all served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_beyond_its_share_cannot_starve_the_others() {
    const SHARE: usize = 8;
    const ATTACK: usize = 100;
    let server = start(HttpSettings {
        max_connections: 32,
        max_connections_per_client: Some(SHARE),
        header_timeout: Duration::from_secs(60),
        ..HttpSettings::default()
    })
    .await;
    let server = Arc::new(server);
    let attacker = client(2);
    // Every connection sends a partial head and then nothing: a slowloris.
    let mut open = tokio::task::JoinSet::new();
    for _ in 0..ATTACK {
        let mut s = connect(&server, attacker).await.unwrap();
        s.write_all(b"GET /api/v1/devices HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        open.spawn(async move { until_closed(&mut s).await });
    }
    let mut closed = 0;
    let _ = tokio::time::timeout(GUARD, async {
        while closed < ATTACK - SHARE && open.join_next().await.is_some() {
            closed += 1;
        }
    })
    .await;
    assert_eq!(
        closed,
        ATTACK - SHARE,
        "all but the client's share are closed"
    );
    assert_eq!(open.len(), SHARE, "the client's share stays open");
    // It reconnects as fast as it is closed, for as long as the probes run.
    let reconnecting = {
        let server = server.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(mut s) = connect(&server, attacker).await {
                    let _ = s.write_all(b"GET / HTTP/1.1\r\n").await;
                    let mut buf = [0u8; 64];
                    let _ = s.read(&mut buf).await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for i in 0..48 {
        let path = if i % 2 == 0 {
            "/healthz"
        } else {
            "/api/v1/devices"
        };
        let reply = exchange(&server, client(3), &get(path)).await;
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "probe {i} {path}: {reply}"
        );
    }
    reconnecting.abort();
    open.abort_all();
}

/// Item 9, the reserve: with every connection taken (by slow clients within their
/// share), `/healthz`, `/readyz` and `/metrics` are still answered on the reserved
/// connections, because a slow client that lands in the reserve is cut off quickly; a
/// public route there gets a 503 that closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_are_served_while_the_public_share_is_full() {
    const MAX: usize = 32;
    let reserve = wardops::http::admission::reserve(MAX);
    let server = start(HttpSettings {
        max_connections: MAX,
        max_connections_per_client: Some(4),
        header_timeout: Duration::from_secs(60),
        ..HttpSettings::default()
    })
    .await;
    // Slow clients from many addresses, each within its share, take every slot: the
    // public share and the reserve.
    let mut slow = Vec::new();
    for i in 0..MAX + reserve {
        let mut s = connect(&server, client(10 + (i / 4) as u8)).await.unwrap();
        s.write_all(b"GET /api/v1/devices HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // The last ones landed in the reserve: cut off at the reserve's short head timeout.
    for s in &mut slow[MAX..] {
        assert!(
            closed_by_server(s).await,
            "a slow head in the reserve stays"
        );
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let reply = exchange(&server, client(3), &get(path)).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
    }
    let reply = exchange(&server, client(3), &get("/api/v1/devices")).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    let lower = reply.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{reply}");
    assert!(lower.contains("connection: close"), "{reply}");
    assert!(reply.contains("only health and metrics"), "{reply}");
    // Once a public connection frees up, public routes are served again.
    drop(slow.remove(0));
    let reply = loop_until_ok(&server, "/api/v1/devices").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// Asks for `path` until a 200 (a freed slot is noticed by the server only once it sees
/// the connection closed); the last answer.
async fn loop_until_ok(server: &Server, path: &str) -> String {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let reply = exchange(server, client(3), &get(path)).await;
        if reply.starts_with("HTTP/1.1 200") || tokio::time::Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
