//! Alert events for the live feed: `alert_opened` / `alert_resolved`.
//!
//! The store's writer reports, after each commit, exactly which alerts that transaction
//! opened and resolved ([`StoreHealth::subscribe_alerts`]); this task turns each report
//! into events, in order. Nothing is read back from the database: an event follows its
//! commit at once, a spool replayed after an outage reports its alerts when it is
//! finally committed, and an idle appliance costs nothing.
//!
//! Each event carries its device's region, branch and kind as the store has them (so a
//! scoped wall gets only its own alerts, also for a device removed from the inventory
//! since), and waits until the hub has published the state version current when the
//! report arrived: the transition that caused an alert is at or below it, so the alert
//! never precedes its transition in the feed.
//!
//! An `alert_opened` of a `device_down` alert carries `unreachable_behind`, the devices
//! unreachable behind its device in the snapshot current when it is published (as the
//! API's alert JSON does; later changes of that figure arrive as the transitions of the
//! devices behind it).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::hub::Hub;
use super::item::Scope;
use crate::read_model::{Rfc3339, UnreachableBehind};
use crate::state::State;
use crate::store::{AlertChange, AlertEvent, StoreHealth};

#[derive(Serialize)]
struct AlertData<'a> {
    id: i64,
    device: &'a str,
    region: Option<&'a str>,
    branch: Option<&'a str>,
    kind: Option<&'a str>,
    condition: &'a str,
    severity: &'a str,
    message: &'a str,
    opened_at: Rfc3339,
    /// Set on `alert_resolved`.
    resolved_at: Option<Rfc3339>,
    /// `recovered`, `stable` (flapping ended) or `removed` (left the inventory).
    resolution: Option<&'a str>,
    /// Set on the `alert_opened` of a `device_down` alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreachable_behind: Option<usize>,
}

/// Starts the task; it ends when the store's writer is gone.
pub fn watch(hub: Arc<Hub>, state: State, health: &StoreHealth) {
    let mut reports = health.subscribe_alerts();
    tokio::spawn(async move {
        loop {
            match reports.recv().await {
                Ok(report) => {
                    hub.caught_up(state.snapshot().version).await;
                    let snapshot = state.snapshot();
                    let mut behind = UnreachableBehind::new(&snapshot);
                    for event in report.iter() {
                        publish(&hub, event, &mut behind);
                    }
                }
                // Reports were lost (the hub fell a whole outage behind): resume points
                // before now could miss alerts, so clients reset and reload.
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        reports = n,
                        "alert feed fell behind the store; clients reset"
                    );
                    hub.discontinuity();
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

fn publish(hub: &Hub, event: &AlertEvent, behind: &mut UnreachableBehind) {
    let a = &event.alert;
    let opened_down = event.change == AlertChange::Opened && a.condition == "device_down";
    let scope = event.scope.as_ref();
    let data = AlertData {
        id: a.id,
        device: &a.device,
        region: scope.map(|s| s.region.as_str()),
        branch: scope.map(|s| s.branch.as_str()),
        kind: scope.map(|s| s.kind.as_str()),
        condition: &a.condition,
        severity: &a.severity,
        message: &a.message,
        opened_at: Rfc3339(a.opened_at),
        resolved_at: a.resolved_at.map(Rfc3339),
        resolution: a.resolution.as_deref(),
        unreachable_behind: opened_down.then(|| behind.of_name(&a.device)).flatten(),
    };
    let name = match event.change {
        AlertChange::Opened => "alert_opened",
        AlertChange::Resolved => "alert_resolved",
    };
    // None (a device the store never had): relevant to every filter.
    let scope = scope.map(|s| Scope {
        region: s.region.as_str().into(),
        branch: s.branch.as_str().into(),
        kind: s.kind.as_str().into(),
    });
    hub.publish_alert(name, scope, &data);
}
