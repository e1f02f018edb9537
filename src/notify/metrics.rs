//! Per-receiver metric families: messages sent and failed, queued, the last success, and
//! the delivery latency from the alert change to the receiver's acknowledgement.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabel {
    pub receiver: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
    ])
}

/// The families, labelled by receiver.
pub struct NotifyMetrics {
    pub sent: Family<ReceiverLabel, Counter>,
    pub failed: Family<ReceiverLabel, Counter>,
    pub rejected: Family<ReceiverLabel, Counter>,
    pub queued: Family<ReceiverLabel, Gauge>,
    pub last_success: Family<ReceiverLabel, Gauge<f64, AtomicU64>>,
    pub latency: Family<ReceiverLabel, Histogram, fn() -> Histogram>,
}

impl Default for NotifyMetrics {
    fn default() -> Self {
        NotifyMetrics {
            sent: Family::default(),
            failed: Family::default(),
            rejected: Family::default(),
            queued: Family::default(),
            last_success: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl NotifyMetrics {
    pub fn label(receiver: &str) -> ReceiverLabel {
        ReceiverLabel {
            receiver: receiver.to_string(),
        }
    }

    /// Every family gets a sample for every receiver from the start (a receiver that
    /// never sent shows 0, not nothing).
    pub fn init(&self, receiver: &str) {
        let l = Self::label(receiver);
        let _ = self.sent.get_or_create(&l);
        let _ = self.failed.get_or_create(&l);
        let _ = self.rejected.get_or_create(&l);
        let _ = self.queued.get_or_create(&l);
        let _ = self.last_success.get_or_create(&l);
        let _ = self.latency.get_or_create(&l);
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wardops_notifications_sent",
            "Messages a receiver acknowledged",
            self.sent.clone(),
        );
        registry.register(
            "wardops_notifications_failed",
            "Delivery attempts that failed (retried or not)",
            self.failed.clone(),
        );
        registry.register(
            "wardops_notifications_rejected",
            "Messages given up: the receiver refused them for good (4xx)",
            self.rejected.clone(),
        );
        registry.register(
            "wardops_notifications_queued",
            "Messages waiting for delivery plus notices waiting in their group",
            self.queued.clone(),
        );
        registry.register(
            "wardops_notifications_last_success_timestamp_seconds",
            "When the receiver last acknowledged a message (Unix time; 0: never)",
            self.last_success.clone(),
        );
        registry.register(
            "wardops_notification_delivery_latency_seconds",
            "From the alert change (or a repeat's creation) to the receiver's acknowledgement",
            self.latency.clone(),
        );
    }
}
