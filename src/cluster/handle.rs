//! What the rest of the appliance sees of a running member: which devices it acts on
//! (the per-device families of `/metrics` are only theirs), the cluster families of
//! `/metrics` ([`ClusterMetrics`]), and the answer of `GET /api/v1/cluster`
//! ([`Handle::report`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use serde::Serialize;
use tokio::sync::watch;

use super::SHARDS;
use super::events::FeedStatus;
use super::events::reader::ReaderStats;
use super::leases::Leases;
use super::member::{Counters, Owned};
use super::view::ViewStats;

/// A running member, as its routes read it.
#[derive(Debug)]
pub struct Handle {
    pub member_id: String,
    pub ttl: Duration,
    /// Reads of the member and lease tables (on the cluster's own pool).
    pub leases: Leases,
    /// What the scheduler and writer act on now.
    pub acting: watch::Receiver<Owned>,
    pub feed: watch::Receiver<FeedStatus>,
    pub counters: Arc<Counters>,
    pub view: Arc<ViewStats>,
    pub reader: Arc<ReaderStats>,
    /// Outbox rows published by this member's relay.
    pub relayed: Arc<AtomicU64>,
}

impl Handle {
    /// The shards acted on now (empty once the fence ran out).
    pub fn acting_now(&self) -> Owned {
        let owned = self.acting.borrow().clone();
        match owned.until {
            Some(until) if tokio::time::Instant::now() < until => owned,
            _ => Owned::default(),
        }
    }

    /// `GET /api/v1/cluster`: members, the shard map with its lease expiries, and this
    /// member's own view.
    pub async fn report(&self) -> sqlx::Result<ClusterReport> {
        let members = self.leases.members().await?;
        let leases = self.leases.all().await?;
        let mut owned: BTreeMap<String, usize> = BTreeMap::new();
        for lease in &leases {
            if let Some(owner) = &lease.owner {
                *owned.entry(owner.clone()).or_default() += 1;
            }
        }
        let acting = self.acting_now();
        let fence_in = acting.until.map(|u| {
            u.saturating_duration_since(tokio::time::Instant::now())
                .as_secs_f64()
        });
        let (feed, feed_reason) = match &*self.feed.borrow() {
            FeedStatus::Live => ("live", None),
            FeedStatus::Fallback { reason } => ("fallback", Some(reason.clone())),
        };
        Ok(ClusterReport {
            member: self.member_id.clone(),
            lease_ttl_seconds: self.ttl.as_secs_f64(),
            shards: SHARDS,
            this_member: ThisMember {
                shards_acting: acting.shards.len(),
                fence_in_seconds: fence_in,
                feed,
                feed_reason,
            },
            members: members
                .into_iter()
                .map(|m| MemberJson {
                    shards_owned: owned.get(&m.id).copied().unwrap_or(0),
                    id: m.id,
                    url: m.url,
                    heartbeat_at: m.heartbeat_at,
                    live: m.live,
                })
                .collect(),
            leases: leases
                .into_iter()
                .map(|l| LeaseJson {
                    shard: l.shard,
                    owner: l.owner,
                    epoch: l.epoch,
                    expires_at: l.expires_at,
                })
                .collect(),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct ClusterReport {
    /// The member that answered.
    pub member: String,
    pub lease_ttl_seconds: f64,
    pub shards: u16,
    pub this_member: ThisMember,
    pub members: Vec<MemberJson>,
    /// Every shard's lease, by shard.
    pub leases: Vec<LeaseJson>,
}

#[derive(Debug, Serialize)]
pub struct ThisMember {
    pub shards_acting: usize,
    /// Until it stops acting unless a renewal succeeds; null while it acts on nothing.
    pub fence_in_seconds: Option<f64>,
    /// `live` or `fallback` (other members' devices read from PostgreSQL).
    pub feed: &'static str,
    pub feed_reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MemberJson {
    pub id: String,
    pub url: String,
    pub heartbeat_at: DateTime<Utc>,
    pub live: bool,
    /// Leases it holds now (expired ones included until taken).
    pub shards_owned: usize,
}

#[derive(Debug, Serialize)]
pub struct LeaseJson {
    pub shard: u16,
    pub owner: Option<String>,
    pub epoch: i64,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The cluster families of `/metrics`, read from the member's counters at scrape time.
#[derive(Debug)]
pub struct ClusterMetrics(pub Arc<Handle>);

impl Collector for ClusterMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.0;
        let c = &h.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let gauges: [(&str, &str, i64); 3] = [
            (
                "wardops_cluster_members",
                "Live members at this member's last round",
                load(&c.members_live) as i64,
            ),
            (
                "wardops_cluster_shards_owned",
                "Shards this member probes and writes for now",
                h.acting_now().shards.len() as i64,
            ),
            (
                "wardops_cluster_feed_live",
                "1 while other members' events come live from Redis, 0 in fallback (read from PostgreSQL)",
                i64::from(matches!(*h.feed.borrow(), FeedStatus::Live)),
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let latency = ConstGauge::new(load(&c.last_renewal_micros) as f64 / 1e6);
        latency.encode(encoder.encode_descriptor(
            "wardops_cluster_lease_renewal_seconds",
            "From sending this member's last answered lease renewal to its answer",
            None,
            latency.metric_type(),
        )?)?;
        let r = &h.reader;
        let counters: [(&str, &str, u64); 15] = [
            (
                "wardops_cluster_lease_renewals",
                "Lease renewals the database answered",
                load(&c.renewals_ok),
            ),
            (
                "wardops_cluster_lease_renewal_failures",
                "Lease renewals that failed (database away): nothing was renewed",
                load(&c.renewals_failed),
            ),
            (
                "wardops_cluster_rounds_failed",
                "Member rounds that failed at a statement or were given up after a TTL",
                load(&c.rounds_failed),
            ),
            (
                "wardops_cluster_shard_acquisitions",
                "Shards this member took (free, released or expired)",
                load(&c.acquisitions),
            ),
            (
                "wardops_cluster_shard_releases",
                "Shards this member gave up to another live member or at shutdown",
                load(&c.releases),
            ),
            (
                "wardops_cluster_shard_losses",
                "Held shards a renewal no longer returned (expired or taken)",
                load(&c.losses),
            ),
            (
                "wardops_cluster_shards_loaded",
                "Shards whose devices were loaded from PostgreSQL before this member acted on them",
                load(&h.view.shards_loaded),
            ),
            (
                "wardops_cluster_events_applied",
                "Other members' events applied to this member's view",
                load(&h.view.events_applied),
            ),
            (
                "wardops_cluster_fallback_reads",
                "Reads of every device's stored status (take-overs, fallback)",
                load(&h.view.reads),
            ),
            (
                "wardops_cluster_fallback_read_failures",
                "Reads of every device's stored status that failed or timed out",
                load(&h.view.reads_failed),
            ),
            (
                "wardops_cluster_events_own",
                "Events about this member's own devices, dropped (its own verdicts are the truth)",
                load(&h.view.events_own),
            ),
            (
                "wardops_cluster_events_relayed",
                "This member's outbox rows published to the event stream",
                load(&h.relayed),
            ),
            (
                "wardops_cluster_events_repeated",
                "Events read from the stream again (published at least once) and dropped",
                load(&r.repeats),
            ),
            (
                "wardops_cluster_events_undecodable",
                "Stream entries that were not an event of this version (logged and skipped)",
                load(&r.undecodable),
            ),
            (
                "wardops_cluster_feed_fallbacks",
                "Switches of the event feed to fallback (Redis away, or the stream trimmed past the last id read)",
                load(&r.fallbacks),
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}
