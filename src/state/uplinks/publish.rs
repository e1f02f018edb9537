//! The state's side of the ISP lines: a poll of a router's agent taken in
//! ([`State::record_uplinks`]), a changed line published as a new version
//! ([`UplinkChange`]), and the `uplink_down` alert's changes sent to the store in order
//! with every other change.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{AlertChange, Book, Uplinks, next, observe};
use crate::config::Device;
use crate::snmp::{Interface, ReadError};
use crate::state::{DeviceRuntime, Event, Snapshot, State, Status, StoreEvent};

/// A router's lines changed (a status, a reason, the interface found).
#[derive(Debug, Clone)]
pub struct UplinkChange {
    pub version: u64,
    pub device: Arc<Device>,
    pub at: DateTime<Utc>,
    pub uplinks: Arc<Uplinks>,
    /// The router's own status at this version.
    pub router: Status,
}

impl UplinkChange {
    /// A line is down while the router answers ping: on its backup line.
    pub fn on_backup_line(&self) -> bool {
        self.uplinks.on_backup_line(self.router)
    }
}

impl State {
    /// Takes in one poll at `at` of `device`'s agent: `reading` is its interfaces table,
    /// or why it could not be read.
    pub fn record_uplinks(
        &self,
        device: &Arc<Device>,
        runtime: &Arc<DeviceRuntime>,
        reading: &Result<Vec<Interface>, ReadError>,
        at: DateTime<Utc>,
    ) {
        let Some(snmp) = &device.snmp else { return };
        let snapshot = self.shared.snapshot.load_full();
        let Some(i) = present(&snapshot, device, runtime) else {
            return;
        };
        let previous = snapshot.uplinks.get(&device.name).cloned();
        let (observed, problem) = observe(snmp, reading, previous.as_deref());
        let next = next(previous.as_deref(), &observed, problem, at);
        // Dependencies and maintenance: a router that is not up itself (down, behind a
        // failed parent, not decided) or in maintenance opens nothing.
        let suppressed =
            snapshot.status[i].status != Status::Up || self.maintenance_ends(device, at).is_some();
        let alert = {
            let mut guard = runtime.uplinks.lock();
            let book = guard.get_or_insert_with(Box::<Book>::default);
            book.record(previous.as_deref(), &next, &observed, reading.is_err(), at);
            book.decide(device, &next, suppressed)
        };
        let changed = previous.as_deref() != Some(&next);
        if changed || alert.is_some() {
            self.publish_uplinks(device, runtime, at, changed.then_some(next), alert);
        }
    }

    /// Under the writer lock, so that the alert and the version keep the order of every
    /// other change.
    fn publish_uplinks(
        &self,
        device: &Arc<Device>,
        runtime: &Arc<DeviceRuntime>,
        at: DateTime<Utc>,
        uplinks: Option<Uplinks>,
        alert: Option<AlertChange>,
    ) {
        let _writer = self.shared.writer.lock();
        let old = self.shared.snapshot.load_full();
        let Some(i) = present(&old, device, runtime) else {
            return;
        };
        let device = &old.inventory.devices[i];
        if let (Some(alert), Some(sink)) = (alert, &self.shared.sink) {
            let _ = sink.send(StoreEvent::Uplink {
                at,
                device: device.clone(),
                alert,
            });
        }
        let Some(uplinks) = uplinks else { return };
        let uplinks = Arc::new(uplinks);
        let mut next = Snapshot::clone(&old);
        next.version += 1;
        next.uplinks.insert(device.name.clone(), uplinks.clone());
        let change = UplinkChange {
            version: next.version,
            device: device.clone(),
            at,
            uplinks,
            router: old.status[i].status,
        };
        self.shared.snapshot.store(Arc::new(next));
        log(&change);
        let _ = self.shared.events.send(Arc::new(Event::Uplinks(change)));
    }

    /// After a reload: the lines of devices no longer polled (or gone, or re-addressed)
    /// are dropped from `next`, and an alert one of them had open is resolved.
    pub(in crate::state) fn carry_uplinks(
        &self,
        old: &Snapshot,
        next: &mut Snapshot,
        at: DateTime<Utc>,
    ) {
        if old.uplinks.is_empty() {
            return;
        }
        let mut kept = imbl::HashMap::new();
        for (name, lines) in old.uplinks.iter() {
            let polled = next.inventory.index_of(name).filter(|&i| {
                next.inventory.devices[i].snmp.is_some()
                    && old
                        .inventory
                        .index_of(name)
                        .is_some_and(|o| Arc::ptr_eq(&old.runtime[o], &next.runtime[i]))
            });
            if polled.is_some() {
                kept.insert(name.clone(), lines.clone());
            }
        }
        for (device, runtime) in old.inventory.devices.iter().zip(old.runtime.iter()) {
            if device.snmp.is_none() || kept.contains_key(&device.name) {
                continue;
            }
            // A removed device's alerts are resolved by the store (`removed`), and a
            // re-addressed one's by its new runtime's first clear poll; one that is kept
            // but no longer polled resolves its own.
            let unpolled = next
                .inventory
                .index_of(&device.name)
                .is_some_and(|i| next.inventory.devices[i].snmp.is_none());
            let open = runtime
                .uplinks
                .lock()
                .as_mut()
                .is_some_and(|b| std::mem::take(&mut b.alerted) == super::Alerted::Open);
            if let (true, true, Some(sink)) = (open, unpolled, &self.shared.sink) {
                let _ = sink.send(StoreEvent::Uplink {
                    at,
                    device: device.clone(),
                    alert: AlertChange::Resolve { why: "disabled" },
                });
            }
        }
        next.uplinks = kept;
    }
}

/// The device's index in `snapshot` if a reload has not removed or re-addressed it.
fn present(snapshot: &Snapshot, device: &Device, runtime: &Arc<DeviceRuntime>) -> Option<usize> {
    snapshot
        .inventory
        .index_of(&device.name)
        .filter(|&i| Arc::ptr_eq(&snapshot.runtime[i], runtime))
}

/// `UPLINK DOWN` for the runbooks' grep, beside `DOWN` and `DEGRADED`.
fn log(c: &UplinkChange) {
    let d = &c.device;
    for line in c.uplinks.lines.iter() {
        let reason = line.reason.as_deref().unwrap_or_default();
        match line.status {
            super::LineStatus::Down if line.since == c.at => tracing::warn!(
                device = %d.name, address = %d.address, isp = %line.isp, reason,
                "UPLINK DOWN"
            ),
            super::LineStatus::Up if line.since == c.at => tracing::info!(
                device = %d.name, isp = %line.isp, "uplink up"
            ),
            super::LineStatus::Unknown if line.since == c.at => tracing::info!(
                device = %d.name, isp = %line.isp, reason, "uplink unknown"
            ),
            _ => {}
        }
    }
}
