//! A TCP proxy to the local PostgreSQL, on a thread and runtime of its own (so blocking
//! and async tests use it alike), that a test cuts to make an outage: `cut` resets every
//! connection and refuses new ones, like a database host dropping off the network.
//! `stall` keeps every connection open and lets nothing through either way, old or new,
//! like a network that drops packets: a client's statements hang instead of failing.
//!
//! `lose_next_commit_reply` makes the next `COMMIT` reach the server and its answer never
//! come back: the connection is cut after the server has had time to commit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct Control {
    open: AtomicBool,
    lose_commit: AtomicBool,
    stalled: AtomicBool,
    tripped: AtomicBool,
    conns: Mutex<Vec<AbortHandle>>,
}

impl Control {
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    control: Arc<Control>,
}

impl Proxy {
    /// A proxy to the local server (127.0.0.1:5432).
    pub fn start() -> Proxy {
        Proxy::start_to(super::PORT)
    }

    /// A proxy to the server at 127.0.0.1:`port`.
    pub fn start_to(port: u16) -> Proxy {
        let control = Arc::new(Control::default());
        control.open.store(true, Ordering::SeqCst);
        let (tx, rx) = std::sync::mpsc::channel();
        let c = control.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    if !c.open.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection reset
                    }
                    if c.stalled.load(Ordering::SeqCst) {
                        // Accepted, then silence.
                        let hold = tokio::spawn(async move {
                            let _client = client;
                            std::future::pending::<()>().await
                        });
                        c.conns.lock().push(hold.abort_handle());
                        continue;
                    }
                    let task = tokio::spawn(pipe(client, port, c.clone()));
                    c.conns.lock().push(task.abort_handle());
                }
            });
        });
        let addr = rx.recv().unwrap();
        Proxy { addr, control }
    }

    pub fn cut(&self) {
        self.control.cut();
    }

    /// New connections pass again (those stalled stay stuck).
    pub fn restore(&self) {
        self.control.open.store(true, Ordering::SeqCst);
        self.control.stalled.store(false, Ordering::SeqCst);
    }

    /// From now on nothing passes, and no connection is closed.
    pub fn stall(&self) {
        self.control.stalled.store(true, Ordering::SeqCst);
    }

    /// The next `COMMIT` is delivered, its answer lost, and the proxy cut.
    pub fn lose_next_commit_reply(&self) {
        self.control.tripped.store(false, Ordering::SeqCst);
        self.control.lose_commit.store(true, Ordering::SeqCst);
    }

    /// True once a commit's answer has been lost.
    pub fn tripped(&self) -> bool {
        self.control.tripped.load(Ordering::SeqCst)
    }
}

async fn pipe(client: TcpStream, port: u16, control: Arc<Control>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    // Set before a COMMIT goes out: from then on nothing comes back on this connection.
    let hold = Arc::new(AtomicBool::new(false));
    let up = {
        let hold = hold.clone();
        let control = control.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from_client.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if control.stalled.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                let chunk = &buf[..n];
                let commit = control.lose_commit.load(Ordering::SeqCst)
                    && chunk.windows(6).any(|w| w == b"COMMIT");
                if commit {
                    control.lose_commit.store(false, Ordering::SeqCst);
                    hold.store(true, Ordering::SeqCst);
                }
                if to_server.write_all(chunk).await.is_err() {
                    return;
                }
                if commit {
                    // Time for the server to commit, then the answer is lost with the link.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    control.tripped.store(true, Ordering::SeqCst);
                    control.cut();
                    return;
                }
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if control.stalled.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if hold.load(Ordering::SeqCst) {
                // The answer to the COMMIT: swallowed, as a broken link would.
                std::future::pending::<()>().await;
            }
            if to_client.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
