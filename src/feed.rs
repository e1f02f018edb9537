//! The live event feed behind `GET /api/v1/events` and the pages' live updates.
//!
//! One task ([`publish`]) turns the state's events into pre-rendered SSE frames
//! ([`item`]), another ([`alerts`]) the store's committed alert changes and the changes
//! of the unreachable counts behind open alerts ([`behind`]); the [`hub`] keeps
//! a backlog of them for resumes and fans them out; [`stream`] is one client's stream.
//! The route itself is the API's (`crate::api::events`).

pub mod alerts;
pub mod behind;
pub mod hub;
pub mod item;
pub mod publish;
pub mod stream;

use std::time::Duration;

pub use hub::{BACKLOG, Hub, InventoryInfo};
pub use item::{Boot, EventId, Key, format_id, parse_id};
pub use stream::{Filter, stream};

/// How far (in events) a client may fall behind before it is dropped.
pub const CLIENT_BUFFER: usize = 4_096;
/// A comment on every idle stream this often keeps proxies from timing it out.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The feed's tuning. Not settings: the defaults suit every deployment; tests shorten
/// them to reach a slow-client drop or a heartbeat quickly.
#[derive(Debug, Clone, Copy)]
pub struct FeedConfig {
    /// How far (in events) a client may fall behind before it is dropped.
    pub client_buffer: usize,
    /// Period of the `: heartbeat` comment on a stream.
    pub heartbeat: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            client_buffer: CLIENT_BUFFER,
            heartbeat: HEARTBEAT,
        }
    }
}
