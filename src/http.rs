//! The HTTP transport: the accept loop with its limits ([`server`]), the route table
//! type and what every request goes through ([`route`]), and the response helpers
//! ([`response`]). It knows no route and no handler: the JSON API ([`crate::api`]),
//! `/metrics` ([`crate::metrics`]) and the pages ([`crate::web`]) each export their own
//! table, and [`crate::app`] hands the composed [`Router`] to [`serve`].
//!
//! Limits: `limits.max_connections` connections, `limits.header_timeout` to read a
//! request head of at most [`MAX_HEADER_BYTES`], request bodies of at most
//! [`router::MAX_BODY_BYTES`], `limits.request_timeout` per response (503 after it) except
//! for streaming routes. Errors are JSON `{"error": ...}`.

pub mod response;
pub mod route;
pub mod router;
mod server;

pub use response::Body;
pub use route::{BoxFuture, Route, Run, Wait};
pub use router::Router;
pub use server::{GRACE, MAX_HEADER_BYTES, serve};
