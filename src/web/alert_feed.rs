//! Alert events for the live feed. The store opens and resolves alerts inside its write
//! transactions and exposes them by query only, so this task polls the open set every
//! [`POLL`] and publishes the difference as `alert_opened` / `alert_resolved`, keyed
//! after the current state version (`v.1`, `v.2`, ...).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::events::Hub;
use crate::http::json::Rfc3339;
use crate::store::{AlertQuery, AlertRow, Db, Store as _};

pub const POLL: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct AlertData<'a> {
    id: i64,
    device: &'a str,
    condition: &'a str,
    severity: &'a str,
    message: &'a str,
    opened_at: Rfc3339,
}

/// Starts the poller.
pub fn watch(hub: Arc<Hub>, db: Arc<Db>) {
    tokio::spawn(async move {
        let q = AlertQuery {
            active: Some(true),
            limit: 10_000,
            ..AlertQuery::default()
        };
        // The alerts open at start-up are the baseline, not news.
        let mut known: Option<HashMap<i64, AlertRow>> = None;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let rows = match db.alerts(&q).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::debug!(error = %e, "alert feed: cannot read open alerts");
                    continue;
                }
            };
            let now: HashMap<i64, AlertRow> = rows.into_iter().map(|a| (a.id, a)).collect();
            if let Some(before) = &known {
                let mut opened: Vec<&AlertRow> = now
                    .values()
                    .filter(|a| !before.contains_key(&a.id))
                    .collect();
                let mut resolved: Vec<&AlertRow> = before
                    .values()
                    .filter(|a| !now.contains_key(&a.id))
                    .collect();
                opened.sort_by_key(|a| a.id);
                resolved.sort_by_key(|a| a.id);
                for (name, a) in opened
                    .into_iter()
                    .map(|a| ("alert_opened", a))
                    .chain(resolved.into_iter().map(|a| ("alert_resolved", a)))
                {
                    publish(&hub, name, a);
                }
            }
            known = Some(now);
        }
    });
}

fn publish(hub: &Hub, name: &'static str, a: &AlertRow) {
    let data = AlertData {
        id: a.id,
        device: &a.device,
        condition: &a.condition,
        severity: &a.severity,
        message: &a.message,
        opened_at: Rfc3339(a.opened_at),
    };
    // Alerts carry no device scope in the store's rows; a scoped wall gets them all
    // (they are rare) rather than none.
    hub.publish_alert(name, &data);
}
