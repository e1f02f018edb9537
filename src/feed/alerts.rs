//! Alert events for the live feed: `alert_opened` / `alert_resolved`, and
//! `alert_updated` when an open alert is acknowledged or un-acknowledged (it carries
//! `acknowledged_by`, `acknowledged_at` and `acknowledged_comment`, null once withdrawn).
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
//! API's alert JSON does). When that figure changes while the alert is open, an
//! `alert_updated` event repeats the alert with the new figure, after the transitions
//! that changed it and under the alert's own scope, so a wall scoped to the alert's
//! branch hears of devices behind it elsewhere ([`super::behind`] keeps the figures).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::behind::{OpenDown, Recount, counts_behind};
use super::hub::Hub;
use super::item::Scope;
use crate::read_model::{Rfc3339, UnreachableBehind};
use crate::state::{Event, State};
use crate::store::{AlertChange, AlertEvent, Db, Store, StoreHealth};

/// State events taken in one go before the figures are recounted: a mass outage's
/// transitions cost one recount per batch, not one each.
const BATCH: usize = 4_096;

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
    /// Who acknowledged the alert, when, saying what (null while it is not): an
    /// acknowledgement or its withdrawal is an `alert_updated` event.
    acknowledged_at: Option<Rfc3339>,
    acknowledged_by: Option<&'a str>,
    acknowledged_comment: Option<&'a str>,
    /// Set on the `alert_opened` and `alert_updated` of a `device_down` alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreachable_behind: Option<usize>,
}

/// Starts the task; it ends when the store's writer is gone. `db` is read once, for
/// the `device_down` alerts already open (opened before this process started).
pub fn watch(hub: Arc<Hub>, state: State, health: &StoreHealth, db: Arc<Db>) {
    let mut reports = health.subscribe_alerts();
    let mut events = Some(state.subscribe());
    tokio::spawn(async move {
        let mut open = OpenDown::default();
        read_open(&db, &state, &mut open).await;
        loop {
            let recount = tokio::select! {
                report = reports.recv() => match report {
                    Ok(report) => {
                        hub.caught_up(state.snapshot().version).await;
                        let snapshot = state.snapshot();
                        let mut behind = UnreachableBehind::new(&snapshot);
                        for event in report.iter() {
                            let count = publish(&hub, event, &mut behind);
                            open.note(event, count);
                        }
                        continue;
                    }
                    // Reports were lost (the hub fell a whole outage behind): resume
                    // points before now could miss alerts, so clients reset and reload.
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(
                            reports = n,
                            "alert feed fell behind the store; clients reset"
                        );
                        hub.discontinuity();
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                Some(recount) = next_batch(&mut events) => recount,
            };
            if recount == Recount::Nothing || open.is_empty() {
                continue;
            }
            // After the transitions that changed the figures, as an alert follows its own.
            hub.caught_up(state.snapshot().version).await;
            let snapshot = state.snapshot();
            for (event, count) in open.changed(&snapshot, &recount) {
                publish_updated(&hub, &event, count);
            }
        }
    });
}

/// The next batch of state events as what it asks to recount; None when the state is
/// gone (the events are then no longer listened to).
async fn next_batch(
    events: &mut Option<tokio::sync::broadcast::Receiver<Arc<Event>>>,
) -> Option<Recount> {
    let rx = events.as_mut()?;
    let mut recount = Recount::default();
    match rx.recv().await {
        Ok(event) => recount.add(&event),
        Err(RecvError::Lagged(_)) => recount = Recount::All,
        Err(RecvError::Closed) => {
            *events = None;
            return None;
        }
    }
    for _ in 0..BATCH {
        match rx.try_recv() {
            Ok(event) => recount.add(&event),
            Err(TryRecvError::Lagged(_)) => recount = Recount::All,
            Err(_) => break,
        }
    }
    Some(recount)
}

/// The `device_down` alerts open before the feed started, with their figures as of
/// now (the pages rendered since show the same). Best effort: a database that cannot be
/// read leaves them untracked, and the feed goes on.
async fn read_open(db: &Db, state: &State, open: &mut OpenDown) {
    let ids: Vec<i64> = match db.open_alert_ids().await {
        Ok(ids) => ids.into_iter().map(|(id, _)| id).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open alerts; their unreachable counts are not followed live");
            return;
        }
    };
    if ids.is_empty() {
        return;
    }
    match db.alert_events(&ids).await {
        Ok(events) => {
            let snapshot = state.snapshot();
            let mut behind = UnreachableBehind::new(&snapshot);
            for event in events.iter().filter(|e| e.change == AlertChange::Opened) {
                open.note(event, behind.of_name(&event.alert.device));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open alerts; their unreachable counts are not followed live")
        }
    }
}

/// Publishes one alert change; returns the `unreachable_behind` it carried.
fn publish(hub: &Hub, event: &AlertEvent, behind: &mut UnreachableBehind) -> Option<usize> {
    let open = matches!(event.change, AlertChange::Opened | AlertChange::Updated);
    let opened_down = open && counts_behind(event);
    let count = opened_down
        .then(|| behind.of_name(&event.alert.device))
        .flatten();
    let name = match event.change {
        AlertChange::Opened => "alert_opened",
        AlertChange::Resolved => "alert_resolved",
        AlertChange::Updated => "alert_updated",
    };
    send(hub, name, event, count);
    count
}

/// An open alert again, with its new `unreachable_behind`.
fn publish_updated(hub: &Hub, event: &AlertEvent, count: usize) {
    send(hub, "alert_updated", event, Some(count));
}

fn send(hub: &Hub, name: &'static str, event: &AlertEvent, unreachable_behind: Option<usize>) {
    let a = &event.alert;
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
        acknowledged_at: a.acknowledged_at.map(Rfc3339),
        acknowledged_by: a.acknowledged_by.as_deref(),
        acknowledged_comment: a.acknowledged_comment.as_deref(),
        unreachable_behind,
    };
    // None (a device the store never had): relevant to every filter.
    let scope = scope.map(|s| Scope {
        region: s.region.as_str().into(),
        branch: s.branch.as_str().into(),
        kind: s.kind.as_str().into(),
    });
    hub.publish_alert(name, scope, &data);
}
