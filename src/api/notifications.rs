//! `GET /api/v1/notifications`: each receiver's state (pending messages, notices waiting
//! in groups, failing or not, last success and error) and the most recent messages,
//! newest first: delivered, pending (with their attempts and last error), failed, or
//! summarised into a later one.
//!
//! Parameters: `receiver` (one receiver's messages only; an unknown name is a 400) and
//! `limit` (default 100, at most 1000). Messages live in the database: this answer
//! carries no `state_version`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::store_error;
use crate::context::Context;
use crate::http::BoxFuture;
use crate::http::response::{self, Body};
use crate::notify::status::ReceiverView;
use crate::notify::{Message, sender};
use crate::read_model::paging;
use crate::store::notify::NotifyStore as _;

pub fn route(ctx: Arc<Context>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move { get(&ctx, &req).await })
}

#[derive(Serialize)]
struct Page {
    receivers: Vec<ReceiverView>,
    messages: Vec<MessageJson>,
}

#[derive(Serialize)]
struct MessageJson {
    id: i64,
    receiver: String,
    idempotency_key: String,
    status: String,
    created_at: DateTime<Utc>,
    attempts: i32,
    last_attempt_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    /// When it was delivered, given up, or summarised.
    done_at: Option<DateTime<Utc>>,
    group: BTreeMap<String, String>,
    firing: usize,
    resolved: usize,
    summarised: u32,
    /// The devices it tells of, in its order.
    devices: Vec<String>,
}

pub async fn get(ctx: &Context, req: &Request<Bytes>) -> Response<Body> {
    // A message groups devices across regions and receivers are appliance-wide: it
    // cannot be cut to a scope, so a scoped asker is refused rather than shown part.
    if !crate::access::Principal::of(req).scope.is_all() {
        return response::error(
            StatusCode::FORBIDDEN,
            "notifications span every region; a region-scoped user cannot read them",
        );
    }
    let mut receiver = None;
    let mut limit = paging::DEFAULT_LIMIT;
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        let value = value.trim().to_string();
        match &*key {
            "receiver" if !value.is_empty() => {
                if !ctx.notifier.receivers.iter().any(|r| r.name == value) {
                    return response::bad_parameter(
                        "receiver",
                        &format!("no receiver named {value:?}"),
                    );
                }
                receiver = Some(value);
            }
            "limit" if !value.is_empty() => match paging::limit(&value) {
                Ok(n) => limit = n,
                Err((p, m)) => return response::bad_parameter(p, &m),
            },
            _ => {}
        }
    }
    let rows = match ctx.store.db.messages(receiver.as_deref(), limit).await {
        Ok(rows) => rows,
        Err(e) => return store_error(e),
    };
    let messages = rows
        .into_iter()
        .map(|m| {
            let body: Option<Message> = serde_json::from_str(&m.body).ok();
            let (group, firing, resolved, summarised, devices) = match &body {
                Some(b) => (
                    b.group.clone(),
                    b.firing().count(),
                    b.resolved().count(),
                    b.summarised,
                    b.notices.iter().map(|n| n.device.clone()).collect(),
                ),
                None => Default::default(),
            };
            MessageJson {
                idempotency_key: sender::idempotency_key(&m.receiver, m.id),
                id: m.id,
                receiver: m.receiver,
                status: m.status,
                created_at: m.created_at,
                attempts: m.attempts,
                last_attempt_at: m.last_attempt_at,
                last_error: m.last_error,
                done_at: m.done_at,
                group,
                firing,
                resolved,
                summarised,
                devices,
            }
        })
        .collect();
    let receivers = ctx.notifier.receivers.iter().map(|r| r.view()).collect();
    response::json(
        StatusCode::OK,
        &Page {
            receivers,
            messages,
        },
    )
}
