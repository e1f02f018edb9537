//! `GET /metrics`: the per-device families from one snapshot, the appliance's own
//! registry (prober), and the process families; Prometheus text by default,
//! OpenMetrics when the scraper's `Accept` prefers it, gzip when accepted.
//!
//! Everything is encoded at scrape time (design: no cache in front of state), once for
//! all the scrapes that arrive while it is encoded ([`shared`]); the route runs on the
//! blocking pool because 100k devices take tens of ms, and is `reserved`: it is served
//! even while the public routes have every connection.
//!
//! `?shard=K/N` answers one of N slices of the per-device families ([`shard`]), for
//! fleets too big for one scrape body.
//!
//! Layout: [`exposition`] writes the text formats, [`devices`] the per-device families,
//! [`shard`] their slices, [`process`] the `process_*` families, [`shared`] the
//! encodings in flight. Other
//! components register their own families in the context's registry
//! (`XMetrics::register`).

pub mod devices;
pub mod exposition;
pub mod process;
pub mod shard;
pub mod shared;

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

pub use exposition::Format;
pub use shard::Shard;

use crate::context::Context;
use crate::http::response::{self, Body};
use crate::http::route::{Route, Run};
use crate::read_model::Ends;
use crate::state::Snapshot;
use prometheus_client::registry::Registry;
use shared::Flights;

/// The route table: `/metrics` alone (no HEAD: it would cost a whole scrape).
pub fn routes(ctx: &Arc<Context>) -> Vec<Route> {
    Exporter::new(ctx).routes()
}

/// `/metrics` over a context: its route and the encodings in flight.
pub struct Exporter {
    ctx: Arc<Context>,
    /// By (format, gzip, slice).
    flights: Flights<(Format, bool, Option<Shard>)>,
}

impl Exporter {
    pub fn new(ctx: &Arc<Context>) -> Arc<Exporter> {
        Arc::new(Exporter {
            ctx: ctx.clone(),
            flights: Flights::default(),
        })
    }

    pub fn routes(self: &Arc<Self>) -> Vec<Route> {
        vec![
            Route::exact("/metrics")
                .no_head()
                .reserved()
                .sync(Run::Blocking, self, get),
        ]
    }

    /// Scrapes answered or being answered.
    pub fn scrapes(&self) -> u64 {
        self.flights.scrapes()
    }

    /// Expositions encoded: fewer than scrapes when concurrent scrapes shared one.
    pub fn encodings(&self) -> u64 {
        self.flights.encodings()
    }
}

/// `GET /metrics`
pub fn get(exporter: &Exporter, req: &Request<Bytes>) -> Response<Body> {
    // The per-device families are one encoding shared by every scrape (single flight):
    // a scrape is appliance-wide, so a region-scoped principal is refused, not cut.
    if !crate::access::Principal::of(req).scope.is_all() {
        return response::error(
            StatusCode::FORBIDDEN,
            "/metrics covers every region; a region-scoped user cannot scrape it",
        );
    }
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
    };
    let shard = match Shard::of_query(req.uri().query()) {
        Ok(shard) => shard,
        Err(message) => return response::bad_parameter("shard", &message),
    };
    let format = negotiate(header(header::ACCEPT));
    let gzip = accepts_gzip(header(header::ACCEPT_ENCODING));
    let body = exporter.flights.get((format, gzip, shard), || {
        let ctx = &exporter.ctx;
        let ends = Ends::of(&ctx.state, ctx.maintenance.zone);
        let snapshot = ctx.state.snapshot();
        let member = ctx.cluster.as_deref();
        let text = encode_for(&snapshot, ends, &ctx.registry, format, shard, member);
        if gzip { gzip_bytes(&text) } else { text }
    });
    let mut response = response::bytes(StatusCode::OK, format.content_type(), body);
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    response
}

/// The exposition for `snapshot` (the slice `shard` of it, None: all), maintenance as
/// `ends` has it. Public for the benchmark.
pub fn encode(
    snapshot: &Snapshot,
    ends: Ends,
    registry: &Registry,
    format: Format,
    shard: Option<Shard>,
) -> Vec<u8> {
    encode_for(snapshot, ends, registry, format, shard, None)
}

/// [`encode`] for a cluster member: per-device series only for the devices it probes
/// now (each device is scraped from its owner, once), the fleet totals as it sees them.
pub fn encode_for(
    snapshot: &Snapshot,
    ends: Ends,
    registry: &Registry,
    format: Format,
    shard: Option<Shard>,
    member: Option<&crate::cluster::handle::Handle>,
) -> Vec<u8> {
    let slices = shard.map_or(1, |s| s.count() as usize);
    let capacity = 4096 + snapshot.inventory.devices.len() * devices::BYTES_PER_DEVICE / slices;
    let mut w = exposition::Writer::new(format, capacity);
    let acting = member.map(|m| m.acting_now());
    let keep = |name: &str| {
        acting
            .as_ref()
            .is_none_or(|a| a.shards.contains_key(&crate::cluster::shard_of(name)))
    };
    devices::encode(&mut w, snapshot, ends, shard, &keep);
    if shard::has_totals(shard) {
        w.registry(registry);
        process::Process::read().encode(&mut w);
    }
    w.finish()
}

/// Fast compression: a scrape is read once, and at 100k devices the best level would
/// cost more time than the whole encoding for a few percent less.
pub fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::with_capacity(data.len() / 8), Compression::fast());
    gz.write_all(data).expect("writing to a Vec cannot fail");
    gz.finish().expect("writing to a Vec cannot fail")
}

/// Items of an `Accept`/`Accept-Encoding` header as (lower-cased value, q).
fn weighted(header: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    header.split(',').map(|item| {
        let mut parts = item.split(';');
        let value = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse().ok())
            })
            .unwrap_or(1.0);
        (value, q)
    })
}

/// OpenMetrics when the client weighs it at least as high as plain text (Prometheus
/// itself sends `application/openmetrics-text;…;q=0.5,…,text/plain;…;q=0.3`).
pub fn negotiate(accept: &str) -> Format {
    let (mut om, mut text) = (0.0f32, 0.0f32);
    for (value, q) in weighted(accept) {
        match value.as_str() {
            "application/openmetrics-text" => om = om.max(q),
            "text/plain" => text = text.max(q),
            _ => {}
        }
    }
    if om > 0.0 && om >= text {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

pub fn accepts_gzip(accept_encoding: &str) -> bool {
    weighted(accept_encoding).any(|(value, q)| value == "gzip" && q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_default_accept_gets_openmetrics() {
        let accept = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(negotiate(accept), Format::OpenMetrics);
    }

    #[test]
    fn plain_text_by_default_and_when_preferred() {
        assert_eq!(negotiate(""), Format::Prometheus);
        assert_eq!(negotiate("*/*"), Format::Prometheus);
        assert_eq!(
            negotiate("text/plain, application/openmetrics-text;q=0.5"),
            Format::Prometheus
        );
        assert_eq!(
            negotiate("application/openmetrics-text;q=0"),
            Format::Prometheus
        );
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip("deflate, gzip;q=0.8"));
        assert!(!accepts_gzip("gzip;q=0, br"));
        assert!(!accepts_gzip(""));
    }
}
