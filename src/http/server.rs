//! The accept loop: hyper HTTP/1 connections admitted by [`Admission`] (the hard cap,
//! the per-client cap, the reserve lane), with a header read timeout and a header size
//! cap, drained gracefully on shutdown; over TLS when given a [`Tls`] (the handshake in
//! the connection's task, under the header timeout, see [`super::tls::accept`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::admission::{Admission, Lane, RESERVE_HEADER_TIMEOUT};
use super::tls::{self, Secure, Tls};
use super::{Route, Router};
use crate::access::gate::Gate;
use crate::config::settings::HttpSettings;

/// Largest request head (request line plus headers) read; beyond it hyper answers 431.
/// 16 KiB is what common proxies allow; our routes need a few hundred bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How long in-flight requests may take to finish once shutdown begins.
pub const GRACE: Duration = Duration::from_secs(5);

/// Serves `routes` on `listener` in plain HTTP within `limits` until `shutdown`
/// completes, open to anyone for reading ([`Gate::open`]: the default on loopback);
/// see [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    routes: Vec<Route>,
    limits: HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        routes,
        Arc::new(Gate::open()),
        limits,
        None,
        shutdown,
    )
    .await
}

/// Serves `routes` behind `gate` on `listener` within `limits` until `shutdown`
/// completes, over TLS when `tls` is given (its certificate files are looked at while
/// the server runs, [`tls::reload`], and every request carries [`Secure`]); then stops
/// accepting, lets in-flight requests finish for up to [`GRACE`] and returns.
pub async fn serve_with(
    listener: TcpListener,
    routes: Vec<Route>,
    gate: Arc<Gate>,
    limits: HttpSettings,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The reload task lives as long as this server: aborted when it returns.
    let _reload = tls
        .as_ref()
        .map(|t| AbortOnDrop(tokio::spawn(tls::reload::watch(t.keys().clone()))));
    let acceptor = tls.map(|t| t.acceptor());
    let router = Arc::new(Router::new(
        routes,
        gate,
        limits.body_timeout,
        limits.request_timeout,
    ));
    let admission = Admission::new(
        limits.max_connections,
        limits
            .max_connections_per_client
            .unwrap_or(limits.max_connections),
    );
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut public = http1::Builder::new();
    public
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    // One quick request per reserve connection, so the reserve frees itself.
    let mut reserve = public.clone();
    reserve
        .header_read_timeout(limits.header_timeout.min(RESERVE_HEADER_TIMEOUT))
        .keep_alive(false);
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections so the set does not grow with every client.
        while connections.try_join_next().is_some() {}
        // A slot is taken before accepting: at the limit, new connections wait in the
        // kernel's backlog instead of being accepted and starved.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = admission.slot() => slot,
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(ticket) = admission.admit(slot, peer.ip()) else {
            // Closed before reading anything: the cheapest answer to a client that
            // already holds its share.
            tracing::debug!(%peer, "http: client at its connection cap; connection closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let lane = ticket.lane;
        let (builder, head_timeout) = match lane {
            Lane::Public => (&public, limits.header_timeout),
            Lane::Reserve => (&reserve, limits.header_timeout.min(RESERVE_HEADER_TIMEOUT)),
        };
        let conn = Conn {
            builder: builder.clone(),
            // Taken now, before any handshake: a shutdown from here on reaches it.
            watcher: graceful.watcher(),
            router: router.clone(),
            lane,
            peer,
        };
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            match acceptor {
                None => conn.serve(stream, false).await,
                Some(acceptor) => {
                    let handshake = tls::accept::handshake(&acceptor, stream, head_timeout, peer);
                    if let Some(stream) = handshake.await {
                        conn.serve(stream, true).await;
                    }
                }
            }
            drop(ticket);
        });
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "http: shutting down, draining connections"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(GRACE) => {
            tracing::warn!(connections = connections.len(), "http: grace period over, closing connections");
        }
    }
    connections.shutdown().await;
    Ok(())
}

/// What one admitted connection is served with.
struct Conn {
    builder: http1::Builder,
    watcher: Watcher,
    router: Arc<Router>,
    lane: Lane,
    peer: SocketAddr,
}

impl Conn {
    /// HTTP/1 over `io` until the client or a shutdown ends it; `secure`: it is TLS.
    async fn serve<I>(self, io: I, secure: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            builder,
            watcher,
            router,
            lane,
            peer,
        } = self;
        let service = service_fn(move |mut req: hyper::Request<Incoming>| {
            if secure {
                req.extensions_mut().insert(Secure);
            }
            router.clone().handle(req, lane, peer.ip())
        });
        let connection = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
        if let Err(e) = connection.await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
