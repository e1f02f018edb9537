//! What the applier does besides committing: resolve `flapping` alerts of devices that
//! calmed down, and prune history past the retention. In a cluster only the member
//! holding the leader shard does it (`crate::cluster::LEADER_SHARD`): once is enough,
//! and a resolution must not be sent twice.

use super::alerts::OpenAlerts;
use super::{Store, StoreHealth, WriterConfig};

const PRUNE_BATCH: i64 = 1_000;
/// Prune batches per maintenance round, so pruning a large backlog never delays writes
/// for long.
const PRUNE_ROUNDS: usize = 20;

pub(super) async fn maintain<S: Store>(
    store: &S,
    health: &StoreHealth,
    alerts: &mut OpenAlerts,
    config: &WriterConfig,
    prune: bool,
) {
    if config.cluster.as_ref().is_some_and(|c| !c.leads()) {
        return;
    }
    let now = config.clock.now();
    match store.resolve_stable_flapping(now).await {
        Ok(resolved) if resolved.is_empty() => {}
        Ok(resolved) => {
            tracing::info!(
                alerts = resolved.len(),
                "flapping alerts resolved: devices stable for the window"
            );
            alerts.report(store, health, resolved).await;
        }
        Err(e) => {
            if e.is_ambiguous() {
                alerts.distrust();
            }
            tracing::warn!(error = %e, "cannot resolve flapping alerts")
        }
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
