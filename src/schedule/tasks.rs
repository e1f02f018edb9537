//! What the prober and the SNMP poller share: one task per device, kept across reloads
//! while the device keeps its runtime (its monitoring identity), told of its changed
//! settings through a [`super::setting`] channel, stopped when it leaves; and the
//! cluster's gate on acting.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::setting;
use crate::cluster::member::Owned;
use crate::config::Device;
use crate::config::inventory::FastHash;
use crate::state::DeviceRuntime;

struct Task {
    runtime: Arc<DeviceRuntime>,
    device: setting::Sender<Arc<Device>>,
    abort: AbortHandle,
}

/// The running device tasks by name. Dropping it stops them all.
#[derive(Default)]
pub(super) struct Tasks {
    tasks: HashMap<Arc<str>, Task, FastHash>,
}

impl Tasks {
    pub(super) fn len(&self) -> usize {
        self.tasks.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Makes the tasks match `devices`: a device with the runtime its task has keeps the
    /// task (told of new settings, if any), any other gets a new one from `spawn`, and
    /// the tasks of devices not listed stop.
    pub(super) fn sync<'a>(
        &mut self,
        devices: impl Iterator<Item = (&'a Arc<Device>, &'a Arc<DeviceRuntime>)>,
        mut spawn: impl FnMut(setting::Receiver<Arc<Device>>, Arc<DeviceRuntime>) -> AbortHandle,
    ) {
        let mut keep: HashMap<Arc<str>, Task, FastHash> = HashMap::default();
        keep.reserve(self.tasks.len());
        for (device, runtime) in devices {
            let task = match self.tasks.remove(&device.name) {
                Some(task) if Arc::ptr_eq(&task.runtime, runtime) => {
                    task.device.send_if_modified(|current| {
                        // A device the reload found unchanged is the same `Arc`.
                        if Arc::ptr_eq(current, device) {
                            return false;
                        }
                        let modified = **current != **device;
                        *current = device.clone();
                        modified
                    });
                    task
                }
                stale => {
                    if let Some(stale) = stale {
                        stale.abort.abort();
                    }
                    let (tx, rx) = setting::channel(device.clone());
                    Task {
                        runtime: runtime.clone(),
                        device: tx,
                        abort: spawn(rx, runtime.clone()),
                    }
                }
            };
            keep.insert(device.name.clone(), task);
        }
        for (_, removed) in self.tasks.drain() {
            removed.abort.abort();
        }
        self.tasks = keep;
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort.abort();
        }
    }
}

/// Whether a device of `shard` may be acted on (probed, polled, its result recorded)
/// now: always alone; in a cluster, while this member holds the shard.
pub(super) fn may_act(owned: &Option<watch::Receiver<Owned>>, shard: u16) -> bool {
    owned
        .as_ref()
        .is_none_or(|o| o.borrow().epoch(shard, Instant::now()).is_some())
}
