//! The read model: what every surface (the JSON API, the pages, the feed) derives from one
//! [`Snapshot`](crate::state::Snapshot) of the state, so that each of them reads the same order, the same counts
//! and the same times.
//!
//! - [`order`]: the device list's order, computed once per state version and cached, and
//!   the [`Selection`] of one window of it.
//! - [`query`]: the list's filters and paging (`status`, `region`, `branch`, `kind`, `q`,
//!   `limit`, `offset`), parsed strictly.
//! - [`paging`]: the `limit`/`before` cursor of the history listings (alerts, transitions).
//! - [`counts`]: devices by status, overall, by region and by kind.
//! - [`degraded`]: what a `degraded` condition says (`degraded_because`).
//! - [`dependencies`]: why a device is unreachable, how many are unreachable behind one.
//! - [`history`]: the bounded last hour of each device's RTT and loss.
//! - [`maintenance`]: when each device's maintenance ends ([`Ends`]).
//! - [`outages`]: the devices out, grouped region → branch → the down device they are
//!   behind ([`Outages`]).
//! - [`recovered`]: the devices that came back in the last 30 minutes ([`Recovered`]).
//! - [`scope`]: a principal's region scope as a narrowed snapshot ([`View`]).
//! - [`time`]: how a time is written (RFC 3339, UTC, milliseconds, `Z`).

pub mod counts;
pub mod degraded;
pub mod dependencies;
pub mod history;
pub mod maintenance;
pub mod order;
pub mod outages;
pub mod paging;
pub mod query;
pub mod recovered;
pub mod scope;
pub mod time;
pub mod uplinks;

use std::sync::Arc;

pub use counts::{Counts, Totals};
pub use dependencies::{UnreachableBehind, unreachable_because};
pub use history::History;
pub use maintenance::Ends;
pub use order::{OrderCache, Selection, select};
pub use outages::Outages;
pub use query::{ListQuery, ParamError, SortKey, TextFilter};
pub use recovered::Recovered;
pub use scope::{ScopedViews, View};
pub use time::{Rfc3339, TimeWriter};

use crate::config::Device;
use crate::state::{DeviceRuntime, DeviceStatus};

/// One device of a snapshot, as the list and the pages see it.
pub type Row<'a> = (&'a Arc<Device>, &'a DeviceStatus, &'a Arc<DeviceRuntime>);
