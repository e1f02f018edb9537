//! Alert events for the live feed: `alert_opened` / `alert_resolved`, keyed after the
//! current state version (`v.1`, `v.2`, ...).
//!
//! The store opens and resolves alerts inside its write transactions but does not report
//! which (its `apply` returns nothing), so this task reads the open set and publishes the
//! difference. It reads only when the writer says alerts may have changed (after each
//! commit and each flapping resolution, [`StoreHealth::subscribe_alert_writes`]): an idle
//! appliance costs no query, and an event follows its commit by one read of the open
//! alerts rather than up to a polling period.
//!
//! Each event carries the device's region, branch and kind from the current inventory,
//! so a scoped wall gets only its own alerts (an alert of a device no longer in the
//! inventory goes to everyone).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::events::{Hub, Scope};
use crate::http::json::Rfc3339;
use crate::state::State;
use crate::store::{AlertQuery, AlertRow, Db, Store as _, StoreHealth};

/// Open alerts read at first; doubled until the read is not truncated.
const FIRST_LIMIT: i64 = 10_000;
/// Wait before retrying a failed read (the database may be away; the writer spools).
const RETRY: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct AlertData<'a> {
    id: i64,
    device: &'a str,
    condition: &'a str,
    severity: &'a str,
    message: &'a str,
    opened_at: Rfc3339,
}

/// Starts the task. The alerts open when it starts are the baseline, not news.
pub fn watch(hub: Arc<Hub>, state: State, db: Arc<Db>, health: Arc<StoreHealth>) {
    let mut writes = health.subscribe_alert_writes();
    tokio::spawn(async move {
        let mut known: Option<HashMap<i64, AlertRow>> = None;
        loop {
            let now = match open_alerts(&db).await {
                Ok(now) => now,
                Err(e) => {
                    tracing::debug!(error = %e, "alert feed: cannot read open alerts");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            if let Some(before) = &known {
                publish_difference(&hub, &state, before, &now);
            }
            known = Some(now);
            // Marks the current write seen before waiting: a write during the read above
            // leaves the receiver changed, so it is read again at once.
            if writes.changed().await.is_err() {
                return; // the store is gone
            }
        }
    });
}

/// Every open alert, by id.
async fn open_alerts(db: &Db) -> crate::store::Result<HashMap<i64, AlertRow>> {
    let mut limit = FIRST_LIMIT;
    loop {
        let q = AlertQuery {
            active: Some(true),
            limit,
            ..AlertQuery::default()
        };
        let rows = db.alerts(&q).await?;
        // A truncated read would make the alerts past the limit look resolved.
        if (rows.len() as i64) < limit {
            return Ok(rows.into_iter().map(|a| (a.id, a)).collect());
        }
        limit *= 2;
    }
}

fn publish_difference(
    hub: &Hub,
    state: &State,
    before: &HashMap<i64, AlertRow>,
    now: &HashMap<i64, AlertRow>,
) {
    let mut opened: Vec<&AlertRow> = now
        .values()
        .filter(|a| !before.contains_key(&a.id))
        .collect();
    let mut resolved: Vec<&AlertRow> = before
        .values()
        .filter(|a| !now.contains_key(&a.id))
        .collect();
    if opened.is_empty() && resolved.is_empty() {
        return;
    }
    opened.sort_by_key(|a| a.id);
    resolved.sort_by_key(|a| a.id);
    let snapshot = state.snapshot();
    let scope = |device: &str| {
        snapshot.inventory.device(device).map(|d| Scope {
            region: d.region.clone(),
            branch: d.branch.clone(),
            kind: d.kind.clone(),
        })
    };
    for a in opened {
        hub.publish_alert("alert_opened", scope(&a.device), &data(a));
    }
    // As last seen open: the resolution time is in the store (`/api/v1/alerts`).
    for a in resolved {
        hub.publish_alert("alert_resolved", scope(&a.device), &data(a));
    }
}

fn data(a: &AlertRow) -> AlertData<'_> {
    AlertData {
        id: a.id,
        device: &a.device,
        condition: &a.condition,
        severity: &a.severity,
        message: &a.message,
        opened_at: Rfc3339(a.opened_at),
    }
}
