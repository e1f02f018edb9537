//! `GET /healthz` and `GET /readyz`.
//!
//! Liveness answers 200 whenever the server can answer at all: restarting the appliance
//! does not fix a stalled prober, so that belongs to readiness, which reports the
//! reasons the app's readiness check gives (prober stalled, socket dead, ...).

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::HttpContext;
use super::response::{self, Body};

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    reasons: &'a [String],
}

/// `GET /healthz`
pub fn healthz(_ctx: &HttpContext, _req: &Request<Bytes>) -> Response<Body> {
    response::json(
        StatusCode::OK,
        &Health {
            status: "ok",
            reasons: &[],
        },
    )
}

/// `GET /readyz`: 200 when ready, else 503 with the reasons.
pub fn readyz(ctx: &HttpContext, _req: &Request<Bytes>) -> Response<Body> {
    let reasons = (ctx.readiness)();
    if reasons.is_empty() {
        response::json(
            StatusCode::OK,
            &Health {
                status: "ready",
                reasons: &[],
            },
        )
    } else {
        response::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &Health {
                status: "not ready",
                reasons: &reasons,
            },
        )
    }
}
