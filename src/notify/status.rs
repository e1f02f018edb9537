//! What each receiver is doing, shared by its sender, the dispatcher and the surfaces
//! (`GET /api/v1/notifications`, `/api/v1/status`, `/metrics`).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;

use super::metrics::NotifyMetrics;

pub struct ReceiverStatus {
    pub name: String,
    /// `alertmanager`, `webhook` or `email`.
    pub kind: &'static str,
    pending: AtomicI64,
    waiting: AtomicI64,
    failing: AtomicBool,
    last_success: Mutex<Option<DateTime<Utc>>>,
    last_error: Mutex<Option<(DateTime<Utc>, String)>>,
    /// Told when a message was stored for the receiver.
    pub(super) wake: Notify,
}

/// A receiver as the JSON surfaces show it.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Messages waiting for delivery.
    pub pending_messages: i64,
    /// Notices waiting in their group (`group_wait`, `group_interval`).
    pub waiting_notices: i64,
    /// The last attempt failed (the receiver is retried with backoff).
    pub failing: bool,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl ReceiverStatus {
    pub fn new(name: &str, kind: &'static str) -> ReceiverStatus {
        ReceiverStatus {
            name: name.to_string(),
            kind,
            pending: AtomicI64::new(0),
            waiting: AtomicI64::new(0),
            failing: AtomicBool::new(false),
            last_success: Mutex::new(None),
            last_error: Mutex::new(None),
            wake: Notify::new(),
        }
    }

    pub fn view(&self) -> ReceiverView {
        let error = self.last_error.lock().clone();
        ReceiverView {
            name: self.name.clone(),
            kind: self.kind,
            pending_messages: self.pending.load(Ordering::Relaxed),
            waiting_notices: self.waiting.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Relaxed),
            last_success_at: *self.last_success.lock(),
            last_error_at: error.as_ref().map(|e| e.0),
            last_error: error.map(|e| e.1),
        }
    }

    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub fn queued(&self) -> i64 {
        self.pending.load(Ordering::Relaxed) + self.waiting.load(Ordering::Relaxed)
    }

    pub(super) fn set_pending(&self, n: i64, metrics: &NotifyMetrics) {
        self.pending.store(n, Ordering::Relaxed);
        self.publish(metrics);
    }

    pub(super) fn set_waiting(&self, n: i64, metrics: &NotifyMetrics) {
        self.waiting.store(n, Ordering::Relaxed);
        self.publish(metrics);
    }

    pub(super) fn succeeded(&self, at: DateTime<Utc>, metrics: &NotifyMetrics) {
        self.failing.store(false, Ordering::Relaxed);
        *self.last_success.lock() = Some(at);
        let l = NotifyMetrics::label(&self.name);
        metrics.sent.get_or_create(&l).inc();
        metrics
            .last_success
            .get_or_create(&l)
            .set(at.timestamp_millis() as f64 / 1000.0);
    }

    pub(super) fn failed(&self, at: DateTime<Utc>, error: String, retry: bool, m: &NotifyMetrics) {
        self.failing.store(retry, Ordering::Relaxed);
        *self.last_error.lock() = Some((at, error));
        let l = NotifyMetrics::label(&self.name);
        m.failed.get_or_create(&l).inc();
        if !retry {
            m.rejected.get_or_create(&l).inc();
        }
    }

    fn publish(&self, metrics: &NotifyMetrics) {
        metrics
            .queued
            .get_or_create(&NotifyMetrics::label(&self.name))
            .set(self.queued());
    }
}
