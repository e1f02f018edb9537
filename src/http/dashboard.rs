//! `GET /api/v1/dashboard`: totals by status, region and kind from one snapshot, plus
//! the prober's own health so the UI can say when the figures are going stale.

use std::collections::BTreeMap;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::HttpContext;
use super::response::{self, Body};
use crate::state::Status;

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq)]
struct Counts {
    up: usize,
    down: usize,
    unknown: usize,
    total: usize,
}

impl Counts {
    fn add(&mut self, status: Status) {
        match status {
            Status::Up => self.up += 1,
            Status::Down => self.down += 1,
            Status::Unknown => self.unknown += 1,
        }
        self.total += 1;
    }
}

#[derive(Serialize)]
struct Group<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
struct Prober {
    probes_total: u64,
    /// Upper bound of the lag bucket holding the 99th percentile; null before any probe.
    lag_p99_seconds: Option<f64>,
    last_probe_seconds_ago: Option<f64>,
}

#[derive(Serialize)]
struct Dashboard<'a> {
    state_version: u64,
    total: usize,
    by_status: Counts,
    by_region: Vec<Group<'a>>,
    by_kind: Vec<Group<'a>>,
    prober: Prober,
}

/// `GET /api/v1/dashboard`
pub fn get(ctx: &HttpContext, _req: &Request<Bytes>) -> Response<Body> {
    let snapshot = ctx.state.snapshot();
    let statuses: Vec<Status> = snapshot.status.iter().map(|s| s.status).collect();
    let mut by_status = Counts::default();
    let mut by_kind: BTreeMap<&str, Counts> = BTreeMap::new();
    for ((device, _, _), &status) in snapshot.devices().zip(&statuses) {
        by_status.add(status);
        by_kind.entry(&device.kind).or_default().add(status);
    }
    // Regions in inventory order, including any without devices.
    let by_region = snapshot
        .inventory
        .regions
        .iter()
        .map(|region| {
            let mut counts = Counts::default();
            for i in region.branches.iter().flat_map(|b| &b.devices) {
                counts.add(statuses[*i]);
            }
            Group {
                region: Some(&region.name),
                kind: None,
                counts,
            }
        })
        .collect();
    let by_kind = by_kind
        .into_iter()
        .map(|(kind, counts)| Group {
            region: None,
            kind: Some(kind),
            counts,
        })
        .collect();
    let prober = Prober {
        probes_total: ctx.prober.probes.get(),
        lag_p99_seconds: quantile(&ctx.prober.lag, 0.99),
        last_probe_seconds_ago: ctx.prober.since_last_probe().map(|d| d.as_secs_f64()),
    };
    let total = statuses.len();
    let body = Dashboard {
        state_version: snapshot.version,
        total,
        by_status,
        by_region,
        by_kind,
        prober,
    };
    response::json(StatusCode::OK, &body)
}

/// Upper bound of the scheduler-lag bucket holding the 99th percentile (shared with the
/// dashboard page).
pub fn lag_p99(prober: &crate::schedule::ProberMetrics) -> Option<f64> {
    quantile(&prober.lag, 0.99)
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
