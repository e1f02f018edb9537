//! The one owner of device state.
//!
//! Every surface (JSON, /metrics, pages, events, the store) reads from here. Readers call
//! [`State::snapshot`] and get one consistent version: the inventory, each device's status
//! and `down_since`, and the `state_version` they were taken at. A snapshot is an `Arc`
//! swapped atomically, so readers never block the prober and never see half a change.
//!
//! Writers are the device tasks: each probe result goes to the device's own
//! [`DeviceRuntime`] (measurements, streaks); only a decided change of status takes the
//! writer lock, bumps the version, publishes a new snapshot and broadcasts an [`Event`].
//!
//! A failure of a device with parents is judged with its parents' machines as they
//! stand ([`depend`]); when a parent's word is stale the device waits, and the parent
//! is asked for a probe at once ([`DeviceRuntime::request_probe`]). Once a parent's
//! verdict is in, the children waiting for it are probed at once; when a parent
//! recovers, so are its unreachable children.
//!
//! Each transition is judged against the device's maintenance windows, in the settings'
//! zone ([`State::set_maintenance_zone`]): it carries the end of the maintenance going on,
//! and whether the `device_down` alert of its outage is held until then ([`held`]
//! releases it).
//!
//! After the status machine, each probe feeds the device's `degraded` window
//! ([`degraded`]): RTT or loss above its thresholds is a condition beside the status, in
//! the snapshot and the events, and its warning alert goes to the store under the same
//! suppression rules as `device_down` (none opened in maintenance or for a device
//! whose parents are all degraded themselves).
//!
//! In a cluster, the devices another member owns take their status from that member's
//! word instead of probes ([`foreign`]).

pub mod clock;
pub mod degraded;
pub mod depend;
pub mod foreign;
pub mod held;
pub mod machine;
pub mod runtime;
pub mod uplinks;

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, watch};

pub use clock::{Clock, SystemClock, TokioClock};
pub use depend::ParentView;
pub use machine::{Change, Machine, Status};
pub use runtime::{DeviceRuntime, Measurements};

use crate::config::{Device, Inventory};
use crate::maintenance::silence::{Refused, Silence, Silences};
use crate::probe::ProbeOutcome;

/// Status of one device as of a snapshot's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceStatus {
    pub status: Status,
    pub down_since: Option<DateTime<Utc>>,
    /// When the status last changed (None while never decided).
    pub changed_at: Option<DateTime<Utc>>,
    /// While RTT or loss is above the device's thresholds: since when, and the figures
    /// that raised it. Only ever set while `up`.
    pub degraded: Option<degraded::Degraded>,
}

impl DeviceStatus {
    pub const UNKNOWN: DeviceStatus = DeviceStatus {
        status: Status::Unknown,
        down_since: None,
        changed_at: None,
        degraded: None,
    };
}

/// One consistent version of everything readers need.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: u64,
    pub inventory: Arc<Inventory>,
    /// Indexed like `inventory.devices`.
    pub status: imbl::Vector<DeviceStatus>,
    /// Indexed like `inventory.devices`; live measurements, not versioned.
    pub runtime: Arc<[Arc<DeviceRuntime>]>,
    /// The ISP lines of the polled devices, by name, once their agent was first polled
    /// ([`uplinks`]).
    pub uplinks: imbl::HashMap<Arc<str>, Arc<uplinks::Uplinks>>,
}

impl Snapshot {
    /// Devices with their status and runtime, in inventory order.
    pub fn devices(
        &self,
    ) -> impl Iterator<Item = (&Arc<Device>, &DeviceStatus, &Arc<DeviceRuntime>)> {
        self.inventory
            .devices
            .iter()
            .zip(self.status.iter())
            .zip(self.runtime.iter())
            .map(|((d, s), r)| (d, s, r))
    }

    pub fn device(&self, name: &str) -> Option<(&Arc<Device>, &DeviceStatus, &Arc<DeviceRuntime>)> {
        let i = self.inventory.index_of(name)?;
        Some((
            &self.inventory.devices[i],
            &self.status[i],
            &self.runtime[i],
        ))
    }
}

/// A versioned change, as broadcast to live readers.
#[derive(Debug, Clone)]
pub enum Event {
    Transition(Transition),
    /// The `degraded` condition of one device was raised or cleared.
    Degraded(degraded::DegradedChange),
    /// A router's ISP lines changed.
    Uplinks(uplinks::publish::UplinkChange),
    InventoryReplaced {
        version: u64,
        hash: String,
        devices: usize,
    },
}

impl Event {
    pub fn version(&self) -> u64 {
        match self {
            Event::Transition(t) => t.version,
            Event::Degraded(d) => d.version,
            Event::Uplinks(u) => u.version,
            Event::InventoryReplaced { version, .. } => *version,
        }
    }
}

/// A decided change of one device's status.
#[derive(Debug, Clone)]
pub struct Transition {
    pub version: u64,
    pub device: Arc<Device>,
    pub change: Change,
    /// Set when the change was decided inside a maintenance window of the device: when
    /// that maintenance (merged with the windows touching it) ends.
    pub maintenance_ends_at: Option<DateTime<Utc>>,
    /// True for a change to `down` whose outage began inside the maintenance going on:
    /// its `device_down` alert is held until the window ends ([`held`]).
    pub alert_held: bool,
}

impl Transition {
    pub fn in_maintenance(&self) -> bool {
        self.maintenance_ends_at.is_some()
    }
}

/// What the store writer is sent: every change, losslessly, in version order (sent while
/// the writer lock is held). Unlike [`Event`] it carries the whole inventory, so the
/// writer can record which devices were added, changed or removed.
#[derive(Debug, Clone)]
pub enum StoreEvent {
    Transition(Transition),
    Inventory {
        version: u64,
        at: DateTime<Utc>,
        inventory: Arc<Inventory>,
    },
    /// A device still `down` when the maintenance that held its alert ended: its
    /// `device_down` alert opens now (`at`, the window's end), saying since when the
    /// device is down.
    HeldAlert {
        at: DateTime<Utc>,
        device: Arc<Device>,
        down_since: Option<DateTime<Utc>>,
    },
    /// The `degraded` alert of a device opens or resolves at `at`.
    Degraded {
        at: DateTime<Utc>,
        device: Arc<Device>,
        alert: degraded::AlertChange,
    },
    /// The `uplink_down` alert of a router opens or resolves at `at`.
    Uplink {
        at: DateTime<Utc>,
        device: Arc<Device>,
        alert: uplinks::AlertChange,
    },
    /// Something a user did that the store keeps (an acknowledgement, an audit entry),
    /// sent by a handler through [`crate::store::Actions`], not by the state: it is
    /// spooled and applied in order with everything else.
    Action {
        at: DateTime<Utc>,
        kind: crate::store::RecordKind,
    },
}

/// Capacity of the live event channel; a reader further behind than this misses events
/// and must resynchronise from a snapshot.
const EVENT_CAPACITY: usize = 65_536;

/// Cheap-to-clone handle on the shared state.
#[derive(Clone)]
pub struct State {
    shared: Arc<Shared>,
}

struct Shared {
    snapshot: ArcSwap<Snapshot>,
    /// Serialises writers so that versions and broadcast order agree. Held only for
    /// in-memory work, never across an await.
    writer: Mutex<()>,
    events: broadcast::Sender<Arc<Event>>,
    /// The store writer's feed, when there is a store. Unbounded so that a slow database
    /// never blocks the prober; the writer drains it into its spool at once.
    sink: Option<mpsc::UnboundedSender<StoreEvent>>,
    clock: Arc<dyn Clock>,
    /// The zone of maintenance windows that name none (`maintenance.zone`).
    zone: Mutex<Tz>,
    /// The operators' silences not ended: windows beside the inventory's. A watch, so
    /// that [`held`] hears at once of one expired early.
    silences: watch::Sender<Arc<Silences>>,
}

impl State {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::build(clock, None)
    }

    /// A state that also sends every change to the store writer through `sink`.
    pub fn with_sink(clock: Arc<dyn Clock>, sink: mpsc::UnboundedSender<StoreEvent>) -> Self {
        Self::build(clock, Some(sink))
    }

    fn build(clock: Arc<dyn Clock>, sink: Option<mpsc::UnboundedSender<StoreEvent>>) -> Self {
        let empty = Snapshot {
            version: 0,
            inventory: Arc::new(Inventory::default()),
            status: imbl::Vector::new(),
            runtime: Arc::from(Vec::new()),
            uplinks: imbl::HashMap::new(),
        };
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Self {
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(empty),
                writer: Mutex::new(()),
                events,
                sink,
                clock,
                zone: Mutex::new(Tz::UTC),
                silences: watch::Sender::new(Arc::default()),
            }),
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// The zone of maintenance windows that name none (UTC until set).
    pub fn maintenance_zone(&self) -> Tz {
        *self.shared.zone.lock()
    }

    /// Sets the settings' `maintenance.zone`, before the first inventory is applied.
    pub fn set_maintenance_zone(&self, zone: Tz) {
        *self.shared.zone.lock() = zone;
    }

    /// The silences not ended, as of the last change.
    pub fn silences(&self) -> Arc<Silences> {
        self.shared.silences.borrow().clone()
    }

    /// Told of every change of the silences.
    pub fn watch_silences(&self) -> watch::Receiver<Arc<Silences>> {
        self.shared.silences.subscribe()
    }

    /// Sets the silences the store restored, before the first inventory is applied.
    pub fn set_silences(&self, silences: Silences) {
        self.shared.silences.send_replace(Arc::new(silences));
    }

    /// Adds `silence`: it covers its devices from its start on.
    pub fn add_silence(&self, silence: Silence) -> Result<(), Refused> {
        let now = self.shared.clock.now();
        self.change_silences(|s| s.with(silence, now))
    }

    /// Ends silence `id` at `at`, said by `by`.
    pub fn expire_silence(&self, id: &str, at: DateTime<Utc>, by: &str) -> Result<(), Refused> {
        self.change_silences(|s| s.expired(id, at, by))
    }

    /// One change at a time: two handlers at once cannot lose each other's.
    fn change_silences(
        &self,
        change: impl FnOnce(&Silences) -> Result<Silences, Refused>,
    ) -> Result<(), Refused> {
        let mut result = Ok(());
        self.shared
            .silences
            .send_if_modified(|current| match change(current) {
                Ok(next) => {
                    *current = Arc::new(next);
                    true
                }
                Err(e) => {
                    result = Err(e);
                    false
                }
            });
        result
    }

    /// The current version of everything.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.shared.events.subscribe()
    }

    /// Swaps in a new inventory. Devices whose name and address are unchanged keep their
    /// runtime (status, `down_since`, streaks, measurements); others start `unknown`, or
    /// as `restore` says (state loaded from the store at start-up).
    pub fn replace_inventory(
        &self,
        inventory: Arc<Inventory>,
        restore: impl Fn(&Device) -> Option<Machine>,
    ) -> Arc<Snapshot> {
        let _writer = self.shared.writer.lock();
        let old = self.shared.snapshot.load_full();
        let mut status = imbl::Vector::new();
        let mut runtime = Vec::with_capacity(inventory.devices.len());
        for device in &inventory.devices {
            let kept = old
                .inventory
                .index_of(&device.name)
                .filter(|&i| old.inventory.devices[i].address == device.address);
            match kept {
                Some(i) => {
                    status.push_back(old.status[i]);
                    runtime.push(old.runtime[i].clone());
                }
                None => {
                    let machine = restore(device).unwrap_or_default();
                    status.push_back(DeviceStatus {
                        status: machine.status(),
                        down_since: machine.down_since(),
                        changed_at: None,
                        degraded: None,
                    });
                    runtime.push(Arc::new(DeviceRuntime::new(machine)));
                }
            }
        }
        let version = old.version + 1;
        let at = self.shared.clock.now();
        let mut next = Snapshot {
            version,
            inventory: inventory.clone(),
            status,
            runtime: runtime.into(),
            uplinks: imbl::HashMap::new(),
        };
        self.carry_uplinks(&old, &mut next, at);
        let snapshot = Arc::new(next);
        self.shared.snapshot.store(snapshot.clone());
        if let Some(sink) = &self.shared.sink {
            let _ = sink.send(StoreEvent::Inventory {
                version,
                at,
                inventory: inventory.clone(),
            });
        }
        let _ = self.shared.events.send(Arc::new(Event::InventoryReplaced {
            version,
            hash: inventory.hash.clone(),
            devices: inventory.devices.len(),
        }));
        snapshot
    }

    /// Records one probe result of `device`. Returns the transition it caused, if any.
    pub fn record_probe(
        &self,
        device: &Arc<Device>,
        runtime: &Arc<DeviceRuntime>,
        outcome: &ProbeOutcome,
        started: DateTime<Utc>,
    ) -> Option<Transition> {
        runtime.record_measurements(outcome, started);
        let snapshot = self.shared.snapshot.load();
        // The device may have been removed or re-addressed by a reload while it was probed.
        let index = snapshot
            .inventory
            .index_of(&device.name)
            .filter(|&i| Arc::ptr_eq(&snapshot.runtime[i], runtime));
        let parents = index.map_or(&[][..], |i| snapshot.inventory.parents(i));
        let success = outcome.is_success();
        // Read before this device's own lock is taken: never two machines locked at once.
        let (views, wait) = if success || parents.is_empty() {
            (Vec::new(), std::time::Duration::ZERO)
        } else {
            let views: Vec<ParentView> = parents
                .iter()
                .map(|&p| snapshot.runtime[p as usize].as_parent())
                .collect();
            let wait = parents
                .iter()
                .map(|&p| depend::wait_bound(&snapshot.inventory.devices[p as usize].probe))
                .max()
                .unwrap_or_default();
            (views, wait)
        };
        let (change, deciding, since, failing, status_now) = {
            let mut machine = runtime.machine.lock();
            let context = machine::Context {
                parents: &views,
                wait,
            };
            let change = machine.observe_with(success, started, &device.probe, context);
            (
                change,
                machine.is_deciding(),
                machine.first_failure_at(),
                machine.is_failing(),
                machine.status(),
            )
        };
        // Before the transition: a device going down has its condition cleared first,
        // so that no version shows it down and degraded.
        self.judge_degraded(
            device, runtime, &snapshot, index, outcome, started, status_now,
        );
        if let (true, Some(since)) = (deciding, since) {
            ask_stale_parents(&snapshot, parents, &views, since);
        }
        if let Some(i) = index {
            let recovered = change.is_some_and(|c| c.to == Status::Up);
            wake_children(&snapshot, i, recovered, failing);
        }
        let transition = change.and_then(|c| self.publish(device, runtime, c));
        runtime.mark_applied(started);
        transition
    }

    fn publish(
        &self,
        device: &Arc<Device>,
        runtime: &Arc<DeviceRuntime>,
        change: Change,
    ) -> Option<Transition> {
        // Evaluated before the lock: a cron window's search is not in the writers' way.
        let maintenance_ends_at = self.maintenance_ends(device, change.at);
        let alert_held = change.to == Status::Down
            && maintenance_ends_at.is_some()
            && change
                .down_since
                .is_some_and(|s| self.maintenance_ends(device, s).is_some());
        let _writer = self.shared.writer.lock();
        let old = self.shared.snapshot.load_full();
        // The device may have been removed or re-addressed by a reload while it was probed.
        let i = old
            .inventory
            .index_of(&device.name)
            .filter(|&i| Arc::ptr_eq(&old.runtime[i], runtime))?;
        let mut next = Snapshot::clone(&old);
        next.version += 1;
        next.status.set(
            i,
            DeviceStatus {
                status: change.to,
                down_since: change.down_since,
                changed_at: Some(change.at),
                // Cleared before any change away from `up` (see `record_probe`).
                degraded: old.status[i].degraded.filter(|_| change.to == Status::Up),
            },
        );
        let transition = Transition {
            version: next.version,
            device: old.inventory.devices[i].clone(),
            change,
            maintenance_ends_at,
            alert_held,
        };
        self.shared.snapshot.store(Arc::new(next));
        runtime
            .told
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let because = if change.to == Status::Unreachable {
            parents_out(&old, i)
        } else {
            Vec::new()
        };
        log_transition(&transition, &because);
        if let Some(sink) = &self.shared.sink {
            let _ = sink.send(StoreEvent::Transition(transition.clone()));
        }
        let _ = self
            .shared
            .events
            .send(Arc::new(Event::Transition(transition.clone())));
        Some(transition)
    }

    /// When the maintenance going on for `device` at `t` ends, if any is: under its
    /// windows in the inventory and the silences that cover it.
    pub fn maintenance_ends(&self, device: &Device, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let silences = self.shared.silences.borrow().clone();
        let windows = silences.windows_for(&device.maintenance, device.silence_names());
        if windows.is_empty() {
            return None;
        }
        crate::maintenance::active_at(&windows, t, self.maintenance_zone())
    }

    /// Opens the held `device_down` alert of `name` at `at`, if the device is still down
    /// with the outage that began at `down_since`: sent to the store in order with the
    /// transitions (under the writer lock), so a recovery decided first wins.
    /// Returns whether it was sent.
    pub fn release_held_alert(
        &self,
        name: &str,
        down_since: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> bool {
        let _writer = self.shared.writer.lock();
        let snapshot = self.shared.snapshot.load();
        let Some((device, status, _)) = snapshot.device(name) else {
            return false;
        };
        if status.status != Status::Down || status.down_since != down_since {
            return false;
        }
        tracing::warn!(
            device = %device.name, address = %device.address,
            down_since = %down_since.map(|t| t.to_rfc3339()).unwrap_or_default(),
            "DOWN after maintenance"
        );
        if let Some(sink) = &self.shared.sink {
            let _ = sink.send(StoreEvent::HeldAlert {
                at,
                device: device.clone(),
                down_since,
            });
        }
        true
    }
}

/// A waiting device's parents whose word is stale: each is told a child waits for it,
/// and the ones not probed since the failure began are asked for a probe at once (one
/// that is failing is already probed at its retry interval).
fn ask_stale_parents(
    snapshot: &Snapshot,
    parents: &[u32],
    views: &[ParentView],
    since: DateTime<Utc>,
) {
    for (&p, view) in parents.iter().zip(views) {
        let parent = &snapshot.runtime[p as usize];
        match view.word(since) {
            depend::Word::Old => {
                parent.watch();
                parent.request_probe();
            }
            depend::Word::Failing => parent.watch(),
            depend::Word::Down | depend::Word::Answering => {}
        }
    }
}

/// After a probe of device `i`: once its verdict is in (it is not building a failure
/// streak), the children waiting for it are probed at once, to be decided on it; when
/// it recovered, its unreachable children are too, to be up again (or down: their
/// outage is then their own) without waiting for their next slot.
fn wake_children(snapshot: &Snapshot, i: usize, recovered: bool, failing: bool) {
    let children = snapshot.inventory.children(i);
    if children.is_empty() {
        return;
    }
    let settled = !failing && snapshot.runtime[i].take_watched();
    if !(recovered || settled) {
        return;
    }
    for &c in children {
        let child = &snapshot.runtime[c as usize];
        let wake = {
            let machine = child.machine.lock();
            machine.is_deciding() || (recovered && machine.status() == Status::Unreachable)
        };
        if wake {
            child.request_probe();
        }
    }
}

/// The names of device `i`'s parents that are down or unreachable.
fn parents_out(snapshot: &Snapshot, i: usize) -> Vec<Arc<str>> {
    snapshot
        .inventory
        .parents(i)
        .iter()
        .filter(|&&p| {
            let status = snapshot.runtime[p as usize].as_parent().status;
            matches!(status, Status::Down | Status::Unreachable)
        })
        .map(|&p| snapshot.inventory.devices[p as usize].name.clone())
        .collect()
}

/// The runbooks grep for `DOWN` and `RECOVERED`: those are for devices that are down
/// (an unreachable one turning down logs `DOWN`, its alert opens then); an unreachable
/// device logs `UNREACHABLE` with the parents that are down.
fn log_transition(t: &Transition, because: &[Arc<str>]) {
    let d = &t.device;
    let c = &t.change;
    match (c.from, c.to) {
        (_, Status::Down) => tracing::warn!(
            device = %d.name, address = %d.address, region = %d.region, branch = %d.branch,
            down_since = %c.down_since.map(|t| t.to_rfc3339()).unwrap_or_default(),
            "DOWN"
        ),
        (_, Status::Unreachable) => tracing::info!(
            device = %d.name, address = %d.address, region = %d.region, branch = %d.branch,
            down_since = %c.down_since.map(|t| t.to_rfc3339()).unwrap_or_default(),
            parents_down = %because.join(","),
            "UNREACHABLE"
        ),
        (Status::Unreachable, Status::Up) => tracing::info!(
            device = %d.name, address = %d.address, "reachable again"
        ),
        (Status::Down, Status::Up) => {
            let down_for = c
                .was_down_since
                .map(|s| (c.at - s).num_seconds())
                .unwrap_or(0);
            tracing::info!(
                device = %d.name, address = %d.address, down_for_seconds = down_for,
                down_for = %crate::config::duration::format(std::time::Duration::from_secs(down_for.max(0) as u64)),
                "RECOVERED"
            )
        }
        // The first decision after start or a reload: one per device, so quiet by default.
        (from, to) => {
            tracing::debug!(device = %d.name, address = %d.address, %from, %to, "status decided")
        }
    }
}
