//! The HTTP transport: the accept loop ([`server`]) and who it admits ([`admission`]),
//! the route table type and what every request goes through ([`route`], [`router`]),
//! and the response helpers ([`response`]). It knows no route and no handler: the JSON
//! API ([`crate::api`]), `/metrics` ([`crate::metrics`]) and the pages ([`crate::web`])
//! each export their own table, and [`crate::app`] hands the composed [`Router`] to
//! [`serve`].
//!
//! Limits: `limits.max_connections` connections, and a reserve of a sixteenth more
//! ([`admission::reserve`]) that serves only routes marked `reserved` (health, metrics)
//! once those are taken; `limits.max_connections_per_client` per source address;
//! `limits.header_timeout` to read a request head of at most [`MAX_HEADER_BYTES`];
//! `limits.body_timeout` to read its body (at most [`router::MAX_BODY_BYTES`]; 408
//! after it, on every route); `limits.request_timeout` per response (503 after it)
//! except for streaming routes. Errors are JSON `{"error": ...}`, or an HTML page for a
//! browser outside the API ([`error_page`]); every response
//! carries the security headers of [`response::add_security_headers`].
//!
//! Plain HTTP by default; HTTPS with a `tls_server_config` ([`tls`]: rustls, the
//! certificate files reloaded on change, the handshake under `header_timeout`).
//! A request that came over TLS carries the [`Secure`] extension ([`is_secure`]).

pub mod admission;
pub mod error_page;
pub mod guard;
pub mod response;
pub mod route;
pub mod router;
mod server;
pub mod tls;

pub use response::Body;
pub use route::{BoxFuture, Route, Run, Wait};
pub use router::Router;
pub use server::{GRACE, MAX_HEADER_BYTES, serve, serve_with};
pub use tls::{Secure, Tls, TlsServerConfig, is_secure};
