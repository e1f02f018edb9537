//! The TLS handshake of one connection, bounded in time, and the answer to a client
//! that speaks plain HTTP to the HTTPS port.
//!
//! The handshake runs in the connection's own task (the accept loop never waits on a
//! client) and under the same deadline as a request head: a client that opens TCP and
//! sends nothing, or trickles its hello, loses the connection and its admission slot
//! when it passes. The first byte tells TLS (a handshake record, 0x16) from a request
//! line (a letter): the latter gets a plain `400` saying to use `https://`, as Go's
//! server does, instead of a reset the user cannot read.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::http::MAX_HEADER_BYTES;

/// The content type of a TLS handshake record, the first byte a TLS client sends.
const HANDSHAKE_RECORD: u8 = 0x16;

const PLAIN_HTTP_BODY: &str = "this port speaks HTTPS: use https:// in the URL\n";

/// The TLS stream of `stream` once its handshake is done, or None (logged at debug)
/// if it is not done within `deadline`, fails, or the client spoke plain HTTP.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    deadline: Duration,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let work = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) => {}
            // Closed before a byte, or reset: nothing to answer.
            _ => return None,
        }
        if first[0] != HANDSHAKE_RECORD {
            if first[0].is_ascii_alphabetic() {
                tracing::debug!(%peer, "tls: a plain HTTP request on the HTTPS port; answered 400");
                refuse_plain_http(stream).await;
            }
            return None;
        }
        match acceptor.accept(stream).await {
            Ok(tls) => Some(tls),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "tls: handshake failed");
                None
            }
        }
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(tls) => tls,
        Err(_) => {
            tracing::debug!(%peer, ?deadline, "tls: no handshake in time; connection closed");
            None
        }
    }
}

/// Reads the request head (at most [`MAX_HEADER_BYTES`], so that closing does not
/// reset the connection under the answer) and answers `400` in plain HTTP.
async fn refuse_plain_http(mut stream: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_HEADER_BYTES && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{PLAIN_HTTP_BODY}",
        PLAIN_HTTP_BODY.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}
