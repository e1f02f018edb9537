//! `GET /api/v1/cluster`: the members (id, URL, last heartbeat, live or not, shards
//! owned), every shard's lease (owner, epoch, expiry by the database's clock) and what
//! the answering member acts on (its shards, when its fence runs out, whether the live
//! event feed is up). An appliance running alone answers 404: there is no cluster.
//!
//! A region-scoped user is refused (403), as for `/metrics`. Read from PostgreSQL at
//! each request (1,024 lease rows): no `state_version`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};

use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};

pub const PATH: &str = "/api/v1/cluster";

pub fn route(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move { get(&ctx, &req).await })
}

async fn get(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    // The members and shards serve every region: a region-scoped user is refused.
    if !crate::access::Principal::of(req).scope.is_all() {
        return response::error(
            StatusCode::FORBIDDEN,
            "/api/v1/cluster covers every region; a region-scoped user cannot read it",
        );
    }
    let Some(member) = &ctx.cluster else {
        return response::error(
            StatusCode::NOT_FOUND,
            "this appliance runs alone: no cluster settings",
        );
    };
    match member.report().await {
        Ok(report) => response::json(StatusCode::OK, &report),
        Err(e) => {
            tracing::warn!(error = %e, "GET /api/v1/cluster: reading the leases failed");
            response::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the cluster's database cannot be read now; the member goes on from memory",
            )
        }
    }
}
