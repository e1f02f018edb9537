//! The task that turns the state's events (transitions, `degraded` changes, ISP lines,
//! inventory swaps) into feed events, in order, as they happen.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use super::FeedConfig;
use super::hub::{Hub, InventoryInfo};
use super::item::{Item, Scope};
use crate::read_model::Rfc3339;
use crate::read_model::degraded::Because;
use crate::read_model::uplinks::{self, UplinksView};
use crate::state::{Event, State};

/// What every device event starts with: the version it was published at and the device.
#[derive(Serialize)]
struct DeviceHead<'a> {
    state_version: u64,
    device: &'a str,
    address: String,
    region: &'a str,
    branch: &'a str,
    kind: &'a str,
}

impl<'a> DeviceHead<'a> {
    fn of(state_version: u64, d: &'a crate::config::Device) -> DeviceHead<'a> {
        DeviceHead {
            state_version,
            device: &d.name,
            address: d.address.to_string(),
            region: &d.region,
            branch: &d.branch,
            kind: &d.kind,
        }
    }
}

#[derive(Serialize)]
struct TransitionData<'a> {
    #[serde(flatten)]
    head: DeviceHead<'a>,
    status: &'a str,
    from: &'a str,
    down_since: Option<Rfc3339>,
    /// When a recovered device had gone down (for "was down for ...").
    was_down_since: Option<Rfc3339>,
    at: Rfc3339,
    /// Decided inside a maintenance window of the device, and when that ends.
    in_maintenance: bool,
    maintenance_ends_at: Option<Rfc3339>,
}

/// A `degraded` condition raised (`degraded: true`, with since when and why) or cleared
/// (`degraded: false`, with why: `recovered`, `down`, `disabled`).
#[derive(Serialize)]
struct DegradedData<'a> {
    #[serde(flatten)]
    head: DeviceHead<'a>,
    degraded: bool,
    at: Rfc3339,
    degraded_since: Option<Rfc3339>,
    degraded_because: Option<Because>,
    cleared: Option<&'static str>,
}

/// A router's ISP lines changed: every line as it now stands, and whether the branch is
/// on its backup line.
#[derive(Serialize)]
struct UplinksData<'a> {
    #[serde(flatten)]
    head: DeviceHead<'a>,
    at: Rfc3339,
    #[serde(flatten)]
    uplinks: UplinksView<'a>,
}

#[derive(Serialize)]
struct InventoryData<'a> {
    state_version: u64,
    devices: usize,
    hash: &'a str,
}

impl Hub {
    /// Starts the task that feeds the hub from `state`'s events.
    pub fn start(state: &State, max_streams: usize, feed: FeedConfig) -> Arc<Hub> {
        let mut rx = state.subscribe();
        let hub = Hub::new(state.snapshot().version, max_streams, feed);
        let pump = hub.clone();
        let clock = state.clock().clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(event) => pump.publish_state(&event, clock.now()),
                    // The hub itself fell behind the state (65k events at once): the
                    // backlog has a hole, so everyone resynchronises.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "event hub fell behind the state; clients reset"
                        );
                        pump.discontinuity();
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        hub
    }

    fn publish_state(&self, event: &Event, now: DateTime<Utc>) {
        let item = match event {
            Event::Transition(t) => {
                let d = &t.device;
                let c = &t.change;
                let data = TransitionData {
                    head: DeviceHead::of(t.version, d),
                    status: c.to.as_str(),
                    from: c.from.as_str(),
                    down_since: c.down_since.map(Rfc3339),
                    was_down_since: c.was_down_since.map(Rfc3339),
                    at: Rfc3339(c.at),
                    in_maintenance: t.in_maintenance(),
                    maintenance_ends_at: t.maintenance_ends_at.map(Rfc3339),
                };
                Item::new(
                    self.boot,
                    (t.version, 0),
                    "transition",
                    Some(Scope::of(d)),
                    &data,
                )
            }
            Event::Degraded(c) => {
                let d = &c.device;
                let data = DegradedData {
                    head: DeviceHead::of(c.version, d),
                    degraded: c.degraded.is_some(),
                    at: Rfc3339(c.at),
                    degraded_since: c.degraded.map(|g| Rfc3339(g.since)),
                    degraded_because: c.degraded.as_ref().map(Because::of),
                    cleared: c.cleared.map(|w| w.as_str()),
                };
                Item::new(
                    self.boot,
                    (c.version, 0),
                    "degraded",
                    Some(Scope::of(d)),
                    &data,
                )
            }
            Event::Uplinks(c) => {
                let d = &c.device;
                let data = UplinksData {
                    head: DeviceHead::of(c.version, d),
                    at: Rfc3339(c.at),
                    uplinks: uplinks::lines(&c.uplinks, c.on_backup_line(), None),
                };
                Item::new(
                    self.boot,
                    (c.version, 0),
                    "uplinks",
                    Some(Scope::of(d)),
                    &data,
                )
            }
            Event::InventoryReplaced {
                version,
                hash,
                devices,
            } => {
                *self.last_inventory.lock() = Some(InventoryInfo {
                    state_version: *version,
                    at: now,
                    devices: *devices,
                    hash: hash.clone(),
                });
                Item::new(
                    self.boot,
                    (*version, 0),
                    "inventory",
                    None,
                    &InventoryData {
                        state_version: *version,
                        devices: *devices,
                        hash,
                    },
                )
            }
        };
        self.publish(item);
        self.state_version.send_replace(event.version());
    }
}
