//! `GET /api/v1/events`: the live feed ([`crate::feed`]) as Server-Sent Events.
//!
//! Query: `region`, `branch`, `kind` (matched like the device list's) keep only the events
//! of that scope; `since` is `Last-Event-ID` for the first connection of a page (an
//! `EventSource` cannot set headers), so the feed continues exactly where the page was
//! rendered. The header wins when both are given. An id of another process (before a
//! restart) or of the older `v[.n]` form is accepted and answered with a `reset`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::Request;

use crate::context::Context;
use crate::feed::{self, Filter, parse_id};
use crate::http::BoxFuture;
use crate::http::response;
use crate::read_model::TextFilter;

/// `GET /api/v1/events` (a streaming route: no request timeout).
pub fn get(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        let mut filter = Filter {
            access: crate::access::Principal::of(&req).scope,
            ..Filter::default()
        };
        let mut since = None;
        for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
            let value = Some(value.into_owned()).filter(|v| !v.is_empty());
            match &*key {
                "region" => filter.region = value,
                "branch" => filter.branch = value.as_deref().and_then(TextFilter::parse),
                "kind" => filter.kind = value,
                "since" => match value.as_deref().map(parse_id) {
                    Some(Some(id)) => since = Some(id),
                    Some(None) => {
                        return response::bad_parameter(
                            "since",
                            "since must be an event id such as 5f0c9a1e-42 or 5f0c9a1e-42.1",
                        );
                    }
                    None => {}
                },
                _ => {}
            }
        }
        if let Some(v) = req.headers().get("last-event-id") {
            match v.to_str().ok().and_then(parse_id) {
                Some(id) => since = Some(id),
                None => {
                    return response::bad_parameter(
                        "Last-Event-ID",
                        "Last-Event-ID must be an event id such as 5f0c9a1e-42 or 5f0c9a1e-42.1",
                    );
                }
            }
        }
        feed::stream(&ctx.hub, filter, since)
    })
}
