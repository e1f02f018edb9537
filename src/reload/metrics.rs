//! The reloader's metric families, as Prometheus' and blackbox_exporter's config
//! reloaders name them.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::sync::atomic::AtomicU64;

/// How one reload attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadResult {
    /// A new inventory was validated and applied.
    Success,
    /// The inventory on disk is invalid; the last good one keeps running.
    Failure,
    /// The content hash did not change; nothing was parsed.
    Unchanged,
}

impl ReloadResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Failure => "failure",
            ReloadResult::Unchanged => "unchanged",
        }
    }
}

/// Lowercase, as in `result="success"` (the derive would keep the variant's case).
impl EncodeLabelValue for ReloadResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: ReloadResult,
}

/// `wardops_config_*` families.
#[derive(Default)]
pub struct ReloadMetrics {
    successful: Gauge,
    success_timestamp: Gauge<f64, AtomicU64>,
    reloads: Family<ResultLabel, Counter>,
}

impl ReloadMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wardops_config_last_reload_successful",
            "Whether the last inventory reload attempt succeeded (1) or was rejected (0)",
            self.successful.clone(),
        );
        registry.register(
            "wardops_config_last_reload_success_timestamp_seconds",
            "When the running inventory was last loaded or reloaded successfully",
            self.success_timestamp.clone(),
        );
        registry.register(
            "wardops_config_reloads",
            "Inventory reload attempts by result",
            self.reloads.clone(),
        );
        // Series for every result exist from the start, so rate() sees the first failure.
        for result in [
            ReloadResult::Success,
            ReloadResult::Failure,
            ReloadResult::Unchanged,
        ] {
            let _ = self.reloads.get_or_create(&ResultLabel { result });
        }
    }

    /// Records the inventory loaded at start-up: successful, not counted as a reload.
    pub fn loaded(&self, at_unix_seconds: f64) {
        self.successful.set(1);
        self.success_timestamp.set(at_unix_seconds);
    }

    pub fn record(&self, result: ReloadResult, at_unix_seconds: f64, disk_matches_running: bool) {
        self.reloads.get_or_create(&ResultLabel { result }).inc();
        match result {
            ReloadResult::Success => self.loaded(at_unix_seconds),
            ReloadResult::Failure => {
                self.successful.set(0);
            }
            // Reverting a bad change to the running content heals the gauge.
            ReloadResult::Unchanged if disk_matches_running => {
                self.successful.set(1);
            }
            ReloadResult::Unchanged => {}
        }
    }

    pub fn last_successful(&self) -> bool {
        self.successful.get() == 1
    }
}
