//! The open `device_down` alerts the feed keeps current: each one's `unreachable_behind`
//! as last published, so that a change of that figure (a device behind the alert's
//! device turning unreachable, or answering again, or a reload changing the parents)
//! is sent as an `alert_updated` event, and nothing is sent when it did not change.
//!
//! Followed through the store's alert reports (opened: tracked; resolved: dropped), and
//! read from the store once when the feed starts, for the alerts opened before this
//! process. Counts are recomputed from a snapshot (the read model's
//! [`UnreachableBehind`]), never added up from deltas: a transition seen twice, or one
//! already counted when the alert opened, changes nothing.

use std::collections::HashMap;

use crate::read_model::UnreachableBehind;
use crate::state::{Event, Snapshot, Status};
use crate::store::{AlertChange, AlertEvent};

/// True for the alerts that carry `unreachable_behind`.
pub fn counts_behind(event: &AlertEvent) -> bool {
    event.alert.condition == "device_down"
}

struct Tracked {
    /// The alert as opened: what an `alert_updated` event repeats.
    event: AlertEvent,
    /// The figure the feed last published for it.
    behind: Option<usize>,
}

/// Open `device_down` alerts by device (one per device at a time, as the store enforces).
#[derive(Default)]
pub struct OpenDown {
    by_device: HashMap<String, Tracked>,
}

/// What a batch of state events asks to recount.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum Recount {
    #[default]
    Nothing,
    /// The ancestors of these devices (by name): their unreachable count changed.
    Above(Vec<String>),
    /// Every tracked alert: the inventory (the graph) changed, or events were lost.
    All,
}

impl Recount {
    /// Takes one state event into account.
    pub fn add(&mut self, event: &Event) {
        match (event, &mut *self) {
            (_, Recount::All) => {}
            // Latency and loss change no one's status: nobody becomes unreachable by it.
            (Event::Degraded(_) | Event::Uplinks(_), _) => {}
            (Event::InventoryReplaced { .. }, _) => *self = Recount::All,
            (Event::Transition(t), _)
                if t.change.from != Status::Unreachable && t.change.to != Status::Unreachable => {}
            (Event::Transition(t), Recount::Above(names)) => names.push(t.device.name.to_string()),
            (Event::Transition(t), Recount::Nothing) => {
                *self = Recount::Above(vec![t.device.name.to_string()])
            }
        }
    }
}

impl OpenDown {
    /// Follows one alert change; `behind` is the figure its `alert_opened` carried.
    pub fn note(&mut self, event: &AlertEvent, behind: Option<usize>) {
        if !counts_behind(event) {
            return;
        }
        match event.change {
            AlertChange::Opened => {
                let tracked = Tracked {
                    event: event.clone(),
                    behind,
                };
                self.by_device.insert(event.alert.device.clone(), tracked);
            }
            AlertChange::Resolved => {
                let same = |t: &Tracked| t.event.alert.id == event.alert.id;
                if self.by_device.get(&event.alert.device).is_some_and(same) {
                    self.by_device.remove(&event.alert.device);
                }
            }
            // An acknowledgement: later `alert_updated` events repeat the alert as it is.
            AlertChange::Updated => {
                if let Some(t) = self.by_device.get_mut(&event.alert.device)
                    && t.event.alert.id == event.alert.id
                {
                    t.event.alert = event.alert.clone();
                    t.behind = behind.or(t.behind);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_device.is_empty()
    }

    /// The alerts of `recount` whose figure in `snapshot` differs from the one last
    /// published, with the new figure (now the published one), by alert id.
    pub fn changed(&mut self, snapshot: &Snapshot, recount: &Recount) -> Vec<(AlertEvent, usize)> {
        let mut behind = UnreachableBehind::new(snapshot);
        let names: Vec<String> = match recount {
            Recount::Nothing => return Vec::new(),
            Recount::All => self.by_device.keys().cloned().collect(),
            Recount::Above(devices) => ancestors(snapshot, devices)
                .filter(|name| self.by_device.contains_key(*name))
                .map(str::to_string)
                .collect(),
        };
        let mut out = Vec::new();
        for name in names {
            let Some(tracked) = self.by_device.get_mut(&name) else {
                continue;
            };
            // A device removed by a reload: its alert is resolved by the store shortly.
            let Some(now) = behind.of_name(&name) else {
                continue;
            };
            match tracked.behind.replace(now) {
                Some(was) if was != now => out.push((tracked.event.clone(), now)),
                // No figure published yet (read at start before the inventory was in
                // place): this one is the baseline, not news.
                _ => {}
            }
        }
        out.sort_by_key(|(e, _)| e.alert.id);
        out
    }
}

/// The names of the devices above `devices` (parents, their parents, …), each once.
fn ancestors<'a>(snapshot: &'a Snapshot, devices: &[String]) -> impl Iterator<Item = &'a str> {
    let inventory = &snapshot.inventory;
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<u32> = devices
        .iter()
        .filter_map(|d| inventory.index_of(d))
        .flat_map(|i| inventory.parents(i).iter().copied())
        .collect();
    let mut out = Vec::new();
    while let Some(p) = stack.pop() {
        if seen.insert(p) {
            out.push(&*inventory.devices[p as usize].name);
            stack.extend_from_slice(inventory.parents(p as usize));
        }
    }
    out.into_iter()
}
