//! Alerts held by maintenance, opened when the window ends.
//!
//! A device that goes down inside a maintenance window opens no `device_down` alert
//! ([`super::Transition::alert_held`]). So that nothing stays hidden once the work is
//! over, [`release_at_window_ends`] watches the devices whose alert is held: it sleeps
//! on the state's clock until the earliest end of their maintenance, and for each one
//! still `down` then it sends the store the held alert, opened at the window's end and
//! saying since when the device is down ([`super::State::release_held_alert`]).
//!
//! It learns of held alerts from the transitions, and after a start or a reload from
//! the snapshot (a device restored `down` whose outage began inside one of its windows).
//! A reload that removes the window releases the alert at once, as does a start after
//! the window ended (opened then, the end having passed unseen). A device `unreachable`
//! at the window's end opens nothing: its outage is its parent's, as always; one that
//! recovered inside the window never had an alert. The store's one-open-alert rule makes
//! a second release of the same outage harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast::error::RecvError;

use super::{Event, State, Status};

/// Longest sleep between two looks: a wall clock that jumps (NTP, a suspended VM) is
/// noticed within this much, as the tokio timer follows the monotonic clock.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// One held alert: the outage it belongs to and, once seen inside its maintenance, when
/// that ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    down_since: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
}

/// Runs until the state's event channel closes. Start it before the first inventory
/// is applied, so that the start-up snapshot's devices are looked at.
pub async fn release_at_window_ends(state: State) {
    let mut events = state.subscribe();
    let mut silences = state.watch_silences();
    let mut held: HashMap<Arc<str>, Held> = HashMap::new();
    scan(&state, &mut held);
    loop {
        let next = release_due(&state, &mut held);
        let sleep = next.map(|end| {
            (end - state.clock().now())
                .to_std()
                .unwrap_or_default()
                .min(MAX_SLEEP)
        });
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => match &*event {
                    Event::Transition(t) => {
                        if t.alert_held {
                            held.insert(t.device.name.clone(), Held {
                                down_since: t.change.down_since,
                                ends_at: t.maintenance_ends_at,
                            });
                        } else if t.change.to != Status::Down {
                            held.remove(&t.device.name);
                        }
                    }
                    Event::Degraded(_) | Event::Uplinks(_) => {}
                    Event::InventoryReplaced { .. } => scan(&state, &mut held),
                },
                // Events were missed: the snapshot says where things stand.
                Err(RecvError::Lagged(_)) => scan(&state, &mut held),
                Err(RecvError::Closed) => return,
            },
            // A silence expired early ends its maintenance now, not at its planned end.
            _ = silences.changed() => {}
            () = sleep_or_forever(sleep) => {}
        }
    }
}

async fn sleep_or_forever(sleep: Option<Duration>) {
    match sleep {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Adds the devices of the snapshot that are `down` with an outage that began inside
/// one of their windows (after a start, a reload or missed events); keeps the ones
/// already known (a reload may have removed their window: released at once).
fn scan(state: &State, held: &mut HashMap<Arc<str>, Held>) {
    let snapshot = state.snapshot();
    for (device, status, _) in snapshot.devices() {
        if status.status != Status::Down || held.contains_key(&device.name) {
            continue;
        }
        let Some(since) = status.down_since else {
            continue;
        };
        if state.maintenance_ends(device, since).is_some() {
            held.insert(
                device.name.clone(),
                Held {
                    down_since: status.down_since,
                    ends_at: None,
                },
            );
        }
    }
}

/// Releases the held alerts whose maintenance is over, forgets those of devices no
/// longer down with the same outage, and returns the earliest end still to come.
fn release_due(state: &State, held: &mut HashMap<Arc<str>, Held>) -> Option<DateTime<Utc>> {
    let snapshot = state.snapshot();
    let now = state.clock().now();
    let mut next: Option<DateTime<Utc>> = None;
    held.retain(|name, h| {
        let Some((device, status, _)) = snapshot.device(name) else {
            return false;
        };
        if status.status != Status::Down || status.down_since != h.down_since {
            return false;
        }
        if let Some(end) = state.maintenance_ends(device, now) {
            h.ends_at = Some(end);
            next = Some(next.map_or(end, |n| n.min(end)));
            return true;
        }
        // The end seen coming, if it has just passed; else (a reload removed the window,
        // a start after it ended) now.
        let at = h.ends_at.filter(|&end| end <= now).unwrap_or(now);
        state.release_held_alert(name, h.down_since, at);
        false
    });
    next
}
