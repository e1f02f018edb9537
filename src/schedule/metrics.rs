//! The prober's own metrics: it watches itself, so a stalled scheduler shows up as lag
//! and as `/readyz` failing rather than as silence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::probe::ProbeOutcome;

/// Lag buckets from 0.1 ms to ~6.5 s.
fn lag_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 17)
}

#[derive(Debug)]
pub struct ProberMetrics {
    pub probes: Counter,
    pub requests: Counter,
    pub replies: Counter,
    pub skipped: Counter,
    pub lag: Histogram,
    started: Instant,
    /// Milliseconds since `started` at which the last probe finished.
    last_probe_done_ms: AtomicU64,
}

impl Default for ProberMetrics {
    fn default() -> Self {
        Self {
            probes: Counter::default(),
            requests: Counter::default(),
            replies: Counter::default(),
            skipped: Counter::default(),
            lag: Histogram::new(lag_buckets()),
            started: Instant::now(),
            last_probe_done_ms: AtomicU64::new(0),
        }
    }
}

impl ProberMetrics {
    /// Upper bound of the scheduler-lag bucket holding the 99th percentile; None before
    /// any probe.
    pub fn lag_p99(&self) -> Option<f64> {
        quantile(&self.lag, 0.99)
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wardops_probes",
            "Probes run (each of one or more echo requests)",
            self.probes.clone(),
        );
        registry.register(
            "wardops_echo_requests",
            "ICMP echo requests sent",
            self.requests.clone(),
        );
        registry.register(
            "wardops_echo_replies",
            "Valid ICMP echo replies received",
            self.replies.clone(),
        );
        registry.register(
            "wardops_probes_skipped",
            "Probe slots skipped because the prober was late (never queued up)",
            self.skipped.clone(),
        );
        registry.register(
            "wardops_scheduler_lag_seconds",
            "How late each probe started after its due time",
            self.lag.clone(),
        );
    }

    pub fn probe_done(&self, outcome: &ProbeOutcome) {
        self.probes.inc();
        self.requests.inc_by(u64::from(outcome.sent));
        self.replies.inc_by(u64::from(outcome.received));
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_probe_done_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Time since the last probe finished; None before the first.
    pub fn since_last_probe(&self) -> Option<Duration> {
        match self.last_probe_done_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms)),
            ),
        }
    }

    /// Uptime of the prober, to judge "no probe yet" against.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Upper bound of the bucket holding quantile `q` of `histogram`. prometheus-client
/// exposes buckets only through its encoder, so this encodes the one histogram and
/// reads the cumulative `_bucket` lines back (17 lines; cheap).
fn quantile(histogram: &Histogram, q: f64) -> Option<f64> {
    let mut registry = Registry::default();
    registry.register("h", "", histogram.clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode_registry(&mut text, &registry).ok()?;
    let buckets: Vec<(f64, u64)> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("h_bucket{le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.split(' ').next()?.parse().ok()?))
        })
        .collect();
    let count = buckets.last()?.1;
    if count == 0 {
        return None;
    }
    let rank = (q * count as f64).ceil() as u64;
    let (i, &(le, _)) = buckets.iter().enumerate().find(|(_, (_, c))| *c >= rank)?;
    // Beyond the last finite bucket all we know is "more than" that bound.
    if le.is_infinite() {
        i.checked_sub(1).map(|j| buckets[j].0)
    } else {
        Some(le)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_reads_the_bucket_bound() {
        let h = Histogram::new([0.001, 0.01, 0.1, 1.0]);
        assert_eq!(quantile(&h, 0.99), None);
        for _ in 0..98 {
            h.observe(0.0005);
        }
        h.observe(0.05);
        h.observe(0.5);
        assert_eq!(quantile(&h, 0.5), Some(0.001));
        assert_eq!(quantile(&h, 0.99), Some(0.1));
        assert_eq!(quantile(&h, 1.0), Some(1.0));
        h.observe(30.0);
        assert_eq!(
            quantile(&h, 1.0),
            Some(1.0),
            "beyond the last bucket: its bound"
        );
    }
}
