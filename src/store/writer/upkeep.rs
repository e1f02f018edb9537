//! What the applier does besides committing: tell the rest of the appliance what each
//! commit did to alerts, resolve `flapping` alerts of devices that calmed down, and prune
//! history past the retention.

use super::{AlertEvent, Store, StoreHealth, WriterConfig};

const PRUNE_BATCH: i64 = 1_000;
/// Prune batches per maintenance round, so pruning a large backlog never delays writes
/// for long.
const PRUNE_ROUNDS: usize = 20;

/// Publishes what a commit did to alerts (the live feed), and keeps the open alert counts
/// current: read in full once, then followed from the commits' reports, which is exact
/// because this writer is the only one that opens or resolves alerts.
pub(super) async fn report_alerts<S: Store>(
    store: &S,
    health: &StoreHealth,
    counted: &mut bool,
    alerts: Vec<AlertEvent>,
) {
    if *counted {
        health.count_alerts(&alerts);
    } else {
        match store.open_alert_counts().await {
            Ok(counts) => {
                health.set_open_alerts(counts);
                *counted = true;
            }
            Err(e) => tracing::debug!(error = %e, "cannot count open alerts"),
        }
    }
    health.publish_alerts(alerts);
}

pub(super) async fn maintain<S: Store>(
    store: &S,
    health: &StoreHealth,
    counted: &mut bool,
    config: &WriterConfig,
    prune: bool,
) {
    let now = config.clock.now();
    match store.resolve_stable_flapping(now).await {
        Ok(alerts) if alerts.is_empty() => {}
        Ok(alerts) => {
            tracing::info!(
                alerts = alerts.len(),
                "flapping alerts resolved: devices stable for the window"
            );
            report_alerts(store, health, counted, alerts).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot resolve flapping alerts"),
    }
    if !prune {
        return;
    }
    let cutoff =
        now - chrono::Duration::from_std(config.retention).unwrap_or(chrono::Duration::MAX);
    let mut total = 0;
    for _ in 0..PRUNE_ROUNDS {
        match store.prune(cutoff, PRUNE_BATCH).await {
            Ok(n) => {
                total += n;
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot prune history");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(rows = total, cutoff = %cutoff.to_rfc3339(), "pruned history past the retention");
    }
}
