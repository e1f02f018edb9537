//! `GET /healthz` and `GET /readyz`.
//!
//! Liveness answers 200 whenever the server can answer at all: restarting the appliance
//! does not fix a stalled prober, so that belongs to readiness.
//!
//! Readiness has two grades, because a load balancer must act on only one of them:
//! - **not ready** (503): the appliance cannot know the truth — the prober is stalled or
//!   its ICMP socket is dead (the app's readiness check). Take it out of rotation.
//! - **degraded** (200): the database is unreachable and writes wait in the spool. Status
//!   is still probed and served correctly from memory, and nothing is lost; dropping the
//!   appliance would turn a database outage into a monitoring outage. Only history
//!   (alerts, transitions) is stale or unavailable. Likewise a cluster member that acts
//!   on no shard (it cannot renew its leases): it probes nothing, and still shows every
//!   device as the other members say it.

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::context::Context;
use crate::http::response::{self, Body};

/// How much a reason matters to whoever routes traffic to the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Serving correct live state, with a part of the appliance impaired: 200.
    Degraded,
    /// Cannot serve correct live state: 503.
    NotReady,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub severity: Severity,
    pub message: String,
}

/// Everything that is wrong, each with its severity.
pub fn reasons(ctx: &Context) -> Vec<Reason> {
    let mut reasons: Vec<Reason> = (ctx.readiness)()
        .into_iter()
        .map(|message| Reason {
            severity: Severity::NotReady,
            message,
        })
        .collect();
    let store = ctx.store.health.degraded_reason();
    reasons.extend(store.map(|message| Reason {
        severity: Severity::Degraded,
        message,
    }));
    if let Some(member) = &ctx.cluster
        && member.acting_now().shards.is_empty()
    {
        reasons.push(Reason {
            severity: Severity::Degraded,
            message: "cluster member acting on no shard (it cannot renew its leases, or has \
                      none yet): it probes nothing and shows the other members' word"
                .into(),
        });
    }
    reasons
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    reasons: &'a [String],
}

/// `GET /healthz`
pub fn healthz(_ctx: &Context, _req: &Request<Bytes>) -> Response<Body> {
    response::json(
        StatusCode::OK,
        &Health {
            status: "ok",
            reasons: &[],
        },
    )
}

/// `GET /readyz`: `ready` or `degraded` (200), or `not ready` (503), with the reasons,
/// the most severe first.
pub fn readyz(ctx: &Context, _req: &Request<Bytes>) -> Response<Body> {
    let mut reasons = reasons(ctx);
    reasons.sort_by_key(|r| std::cmp::Reverse(r.severity));
    let (code, status) = match reasons.first().map(|r| r.severity) {
        None => (StatusCode::OK, "ready"),
        Some(Severity::Degraded) => (StatusCode::OK, "degraded"),
        Some(Severity::NotReady) => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
    };
    let messages: Vec<String> = reasons.into_iter().map(|r| r.message).collect();
    response::json(
        code,
        &Health {
            status,
            reasons: &messages,
        },
    )
}
