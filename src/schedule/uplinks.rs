//! The SNMP poller of ISP uplinks (issue #19): one lightweight task per device that
//! carries `snmp:`, polling its agent at a stable phase of its `snmp.interval` (the
//! prober's [`Slots`]: an even spread, no burst on reload) and handing each reading to
//! [`State::record_uplinks`].
//!
//! Every task reads through one [`Agents`] (in the appliance, [`crate::snmp::Reader`]:
//! one UDP socket per address family for every agent). Each task keeps its agent's
//! session between polls (a v3 user's localised keys, the agent's engine), and makes a
//! new one after a failed read or when the inventory changes how to reach the agent, so
//! a rebooted agent (new engine boots) is found again at the next poll.
//!
//! A poll that overruns its slot is late, never queued: slots that passed while it ran
//! are skipped. In a cluster only the devices of the shards this member acts on are
//! polled, as for probes.
//!
//! It runs on the appliance's main runtime, not the prober's thread: SNMP decoding never
//! delays an echo request.

use std::future::Future;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::phase::Slots;
use super::setting;
use crate::cluster::member::Owned;
use crate::config::Device;
use crate::snmp::{Agent, Interface, ReadError, Reader, Session};
use crate::state::{DeviceRuntime, Snapshot, State};

/// Reads agents' interface tables: the SNMP reader, or a test's fake.
pub trait Agents: Send + Sync + 'static {
    type Session: Send + Sync + 'static;

    /// A session with `agent`, to be kept across polls.
    fn session(
        &self,
        agent: &Agent,
    ) -> impl Future<Output = Result<Self::Session, ReadError>> + Send;

    /// One reading of the agent's interfaces.
    fn read(
        &self,
        session: &Self::Session,
    ) -> impl Future<Output = Result<Vec<Interface>, ReadError>> + Send;
}

impl Agents for Reader {
    type Session = Session;

    fn session(&self, agent: &Agent) -> impl Future<Output = Result<Session, ReadError>> + Send {
        Reader::session(self, agent)
    }

    fn read(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<Vec<Interface>, ReadError>> + Send {
        session.interfaces()
    }
}

/// The poller's own figures.
#[derive(Debug)]
pub struct PollerMetrics {
    pub polls: Counter,
    pub failures: Counter,
    pub skipped: Counter,
    pub duration: Histogram,
    pub devices: Gauge,
}

impl Default for PollerMetrics {
    fn default() -> Self {
        PollerMetrics {
            polls: Counter::default(),
            failures: Counter::default(),
            skipped: Counter::default(),
            // 1 ms to ~16 s: a silent agent costs timeout × (retries + 1).
            duration: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 2.0, 15,
            )),
            devices: Gauge::default(),
        }
    }
}

impl PollerMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wardops_uplink_polls",
            "SNMP polls of routers' interface tables",
            self.polls.clone(),
        );
        registry.register(
            "wardops_uplink_poll_failures",
            "SNMP polls the agent did not answer or answered with an error",
            self.failures.clone(),
        );
        registry.register(
            "wardops_uplink_polls_skipped",
            "SNMP poll slots that passed entirely while the device's previous poll ran",
            self.skipped.clone(),
        );
        registry.register(
            "wardops_uplink_poll_duration_seconds",
            "How long one SNMP poll of a router took",
            self.duration.clone(),
        );
        registry.register(
            "wardops_uplink_polled_devices",
            "Devices whose ISP uplinks are polled over SNMP",
            self.devices.clone(),
        );
    }
}

struct Shared<A> {
    agents: Arc<A>,
    state: State,
    metrics: Arc<PollerMetrics>,
    epoch: Instant,
    owned: Option<watch::Receiver<Owned>>,
}

impl<A> Shared<A> {
    fn may_poll(&self, shard: u16) -> bool {
        super::tasks::may_act(&self.owned, shard)
    }
}

/// Owns the polling tasks. Dropping it stops them all.
pub struct Poller<A: Agents> {
    shared: Arc<Shared<A>>,
    tasks: super::tasks::Tasks,
}

impl<A: Agents> Poller<A> {
    pub fn new(
        agents: Arc<A>,
        state: State,
        metrics: Arc<PollerMetrics>,
        owned: Option<watch::Receiver<Owned>>,
    ) -> Self {
        Poller {
            shared: Arc::new(Shared {
                agents,
                state,
                metrics,
                epoch: Instant::now(),
                owned,
            }),
            tasks: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Starts, stops and updates the tasks to match the polled devices of `snapshot`.
    pub fn sync(&mut self, snapshot: &Snapshot) {
        let shared = &self.shared;
        let polled = snapshot
            .devices()
            .filter(|(d, _, _)| d.snmp.is_some())
            .map(|(d, _, r)| (d, r));
        self.tasks.sync(polled, |device, runtime| {
            tokio::spawn(run_device(shared.clone(), device, runtime)).abort_handle()
        });
        shared.metrics.devices.set(self.tasks.len() as i64);
    }
}

/// Follows the inventories the state is given: the poller's tasks match each snapshot
/// sent on `snapshots`. The SNMP reader's sockets are bound at the first inventory with
/// a polled device; a bind that fails is said and tried again at the next inventory.
pub async fn follow(
    state: State,
    metrics: Arc<PollerMetrics>,
    owned: Option<watch::Receiver<Owned>>,
    mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
) {
    let mut poller: Option<Poller<Reader>> = None;
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if let Some(snapshot) = snapshot {
            let polled = snapshot.inventory.devices.iter().any(|d| d.snmp.is_some());
            if poller.is_none() && polled {
                match Reader::bind().await {
                    Ok(reader) => {
                        poller = Some(Poller::new(
                            Arc::new(reader),
                            state.clone(),
                            metrics.clone(),
                            owned.clone(),
                        ));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "SNMP: no socket; uplinks are not polled")
                    }
                }
            }
            if let Some(poller) = &mut poller {
                poller.sync(&snapshot);
            }
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

async fn run_device<A: Agents>(
    shared: Arc<Shared<A>>,
    mut updates: setting::Receiver<Arc<Device>>,
    runtime: Arc<DeviceRuntime>,
) {
    let mut device = updates.borrow_and_update().clone();
    let shard = crate::cluster::shard_of(&device.name);
    let interval = |d: &Device| d.snmp.as_ref().map(|s| s.interval).unwrap_or_default();
    let mut slots = Slots::new(shared.epoch, &device.name, interval(&device));
    let mut due = slots.at_or_after(Instant::now());
    let mut session: Option<(Agent, A::Session)> = None;
    loop {
        tokio::select! {
            _ = sleep_until(due) => {}
            changed = updates.changed() => {
                if changed.is_err() {
                    return;
                }
                device = updates.borrow_and_update().clone();
                if interval(&device) != slots.interval() {
                    slots = Slots::new(shared.epoch, &device.name, interval(&device));
                    due = due.min(slots.at_or_after(Instant::now()));
                }
                continue;
            }
        }
        let Some(snmp) = device.snmp.clone() else {
            return;
        };
        if !shared.may_poll(shard) {
            due = slots.after(due);
            continue;
        }
        let began = Instant::now();
        let started = shared.state.clock().now();
        let agent = snmp.agent(device.address);
        if session.as_ref().is_some_and(|(a, _)| *a != agent) {
            session = None;
        }
        let reading = match &session {
            Some((_, s)) => shared.agents.read(s).await,
            None => match shared.agents.session(&agent).await {
                Ok(s) => {
                    let reading = shared.agents.read(&s).await;
                    session = Some((agent, s));
                    reading
                }
                Err(e) => Err(e),
            },
        };
        if reading.is_err() {
            session = None;
            shared.metrics.failures.inc();
        }
        shared.metrics.polls.inc();
        shared
            .metrics
            .duration
            .observe(began.elapsed().as_secs_f64());
        // Lost while it ran: the new owner decides from its own polls.
        if shared.may_poll(shard) {
            shared
                .state
                .record_uplinks(&device, &runtime, &reading, started);
        }
        let now = Instant::now();
        let mut next = slots.after(due);
        while next <= now {
            shared.metrics.skipped.inc();
            next += slots.interval();
        }
        due = next;
    }
}

#[cfg(test)]
mod tests;
