//! The open alerts as the writer knows them (id → device), and what it tells the rest of
//! the appliance about them: each commit's alert changes (the live feed) and the open
//! counts per device (device JSON).
//!
//! They are read in full once, then followed through the commits' reports, which is exact
//! because this writer is the only one that opens or resolves alerts — except when a
//! commit's answer is lost: its records are then skipped by the retry (applied already)
//! and their changes never reported. So after an ambiguous commit, and after a start-up
//! that took them from the snapshot, the writer re-reads what the database holds and
//! reports the difference: the alerts opened since as `opened`, those gone as `resolved`.

use std::collections::HashMap;

use crate::store::{AlertChange, AlertEvent, Store, StoreHealth};

pub(super) struct OpenAlerts {
    ids: Option<HashMap<i64, String>>,
    resync: bool,
}

impl OpenAlerts {
    /// Alerts known from the snapshot (checked against the database at the first chance),
    /// or none yet (read at the first chance).
    pub fn new(preset: Option<HashMap<i64, String>>, health: &StoreHealth) -> OpenAlerts {
        if let Some(ids) = &preset {
            health.set_open_alerts(counts(ids));
            health.set_open_ids(ids);
        }
        OpenAlerts {
            resync: preset.is_some(),
            ids: preset,
        }
    }

    pub fn known(&self) -> Option<&HashMap<i64, String>> {
        self.ids.as_ref()
    }

    /// The next successful round trip must re-read the open alerts.
    pub fn distrust(&mut self) {
        self.resync = true;
    }

    /// Publishes what a commit did to alerts and keeps the counts current.
    pub async fn report<S: Store>(
        &mut self,
        store: &S,
        health: &StoreHealth,
        events: Vec<AlertEvent>,
    ) {
        match &mut self.ids {
            Some(ids) => {
                for e in &events {
                    match e.change {
                        AlertChange::Opened => {
                            ids.insert(e.alert.id, e.alert.device.clone());
                        }
                        AlertChange::Resolved => {
                            ids.remove(&e.alert.id);
                        }
                        AlertChange::Updated => {}
                    }
                }
                health.count_alerts(&events);
                if events.iter().any(|e| e.change != AlertChange::Updated) {
                    health.set_open_ids(ids);
                }
                health.acknowledged.follow(&events);
            }
            None => self.read(store, health).await,
        }
        health.publish_alerts(events);
        if self.resync {
            self.resync(store, health).await;
        }
    }

    /// Reads the open alerts if they are unknown, or re-reads them if they are in doubt
    /// and publishes the difference.
    pub async fn resync<S: Store>(&mut self, store: &S, health: &StoreHealth) {
        let Some(known) = &self.ids else {
            self.read(store, health).await;
            return;
        };
        if !self.resync {
            return;
        }
        let now: HashMap<i64, String> = match store.open_alert_ids().await {
            Ok(ids) => ids.into_iter().collect(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the open alerts; retrying");
                return;
            }
        };
        let mut changed: Vec<i64> = now
            .keys()
            .filter(|id| !known.contains_key(id))
            .chain(known.keys().filter(|id| !now.contains_key(id)))
            .copied()
            .collect();
        changed.sort_unstable();
        let events = if changed.is_empty() {
            Vec::new()
        } else {
            match store.alert_events(&changed).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the changed alerts; retrying");
                    return;
                }
            }
        };
        if !events.is_empty() {
            tracing::info!(
                alerts = events.len(),
                "alert changes of a commit whose answer was lost, reported from the database"
            );
        }
        read_acks(store, health).await;
        health.set_open_alerts(counts(&now));
        health.set_open_ids(&now);
        self.ids = Some(now);
        self.resync = false;
        health.publish_alerts(events);
    }

    async fn read<S: Store>(&mut self, store: &S, health: &StoreHealth) {
        match store.open_alert_ids().await {
            Ok(ids) => {
                let ids: HashMap<i64, String> = ids.into_iter().collect();
                read_acks(store, health).await;
                health.set_open_alerts(counts(&ids));
                health.set_open_ids(&ids);
                self.ids = Some(ids);
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the open alerts"),
        }
    }
}

/// The acknowledged open alerts, read whenever the open alerts are (best effort: a
/// failed read keeps the ones known; the next commits' reports update them anyway).
async fn read_acks<S: Store>(store: &S, health: &StoreHealth) {
    match store.acknowledged_alerts().await {
        Ok(rows) => health.acknowledged.set(&rows),
        Err(e) => tracing::debug!(error = %e, "cannot read the acknowledged alerts"),
    }
}

fn counts(ids: &HashMap<i64, String>) -> HashMap<String, u32> {
    let mut counts = HashMap::new();
    for device in ids.values() {
        *counts.entry(device.clone()).or_default() += 1;
    }
    counts
}
