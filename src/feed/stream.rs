//! One client's Server-Sent Events stream of the hub's feed, kept to the client's
//! [`Filter`] (`region`, `branch`, `kind`, matched as the device list matches them:
//! `branch` a case-folded substring or an exact value in quotes).
//!
//! The stream opens with `retry:` and a `hello` event (current id), then replays what
//! the client missed, then goes live; a `: heartbeat` comment every 15 s
//! ([`super::FeedConfig`]) keeps proxies from
//! timing it out. It ends with a final id-less event saying why: `reset` (resume
//! point no longer in the backlog: reload), `dropped` (fell too far behind), `shutdown`.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::hub::{Hub, StreamSlot};
use super::item::{self, EventId, Item};
use crate::http::response::{self, Body, BoxError};
use crate::read_model::TextFilter;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    pub region: Option<String>,
    pub branch: Option<TextFilter>,
    pub kind: Option<String>,
    /// The asker's region scope: an item of another region, or of none (which may name
    /// any device), never reaches a scoped client.
    pub access: crate::access::Scope,
}

impl Filter {
    fn keeps(&self, item: &Item) -> bool {
        let Some(scope) = &item.scope else {
            return self.access.is_all();
        };
        if !self.access.allows(&scope.region) {
            return false;
        }
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        same(&self.region, &scope.region)
            && self
                .branch
                .as_ref()
                .is_none_or(|b| b.matches(&scope.branch))
            && same(&self.kind, &scope.kind)
    }
}

/// The response for one client of `hub`.
pub fn stream(hub: &Arc<Hub>, filter: Filter, since: Option<EventId>) -> Response<Body> {
    let Some(slot) = hub.open_stream() else {
        let mut r = response::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "too many live event streams (limit {}); retry later",
                hub.max_streams
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return r;
    };
    let sub = hub.subscribe(since);
    let mut pending = VecDeque::new();
    pending.push_back(Bytes::from_static(b"retry: 2000\n\n"));
    #[derive(Serialize)]
    struct Hello {
        last_event_id: String,
        state_version: u64,
    }
    pending.push_back(item::control_frame(
        "hello",
        &Hello {
            last_event_id: hub.format(sub.current),
            state_version: sub.current.0,
        },
    ));
    let mut done = false;
    if sub.reset {
        pending.push_back(reset_frame(sub.current.0));
        done = true;
    }
    pending.extend(
        sub.replay
            .iter()
            .filter(|i| filter.keeps(i))
            .map(|i| i.frame.clone()),
    );
    let client = Client {
        pending,
        rx: sub.rx,
        filter,
        closing: hub.closing(),
        heartbeat: tokio::time::interval_at(
            tokio::time::Instant::now() + hub.heartbeat,
            hub.heartbeat,
        ),
        done,
        _slot: slot,
    };
    let body = StreamBody::new(
        futures_util::stream::unfold(client, Client::next)
            .map(|b| Ok::<_, BoxError>(Frame::data(b))),
    );
    let mut r = Response::new(BodyExt::boxed(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx-style proxies not to buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

fn reset_frame(version: u64) -> Bytes {
    #[derive(Serialize)]
    struct Reset {
        reason: &'static str,
        state_version: u64,
    }
    item::control_frame(
        "reset",
        &Reset {
            reason: "the resume point is not in this server's backlog (too old, or from before \
                     a restart); reload the page",
            state_version: version,
        },
    )
}

struct Client {
    pending: VecDeque<Bytes>,
    rx: broadcast::Receiver<Arc<Item>>,
    filter: Filter,
    closing: watch::Receiver<bool>,
    heartbeat: tokio::time::Interval,
    /// Set once the final event is queued: the stream ends after `pending` drains.
    done: bool,
    _slot: StreamSlot,
}

impl Client {
    async fn next(mut self) -> Option<(Bytes, Client)> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some((b, self));
            }
            if self.done || *self.closing.borrow() {
                if !self.done {
                    self.done = true;
                    self.pending.push_back(shutdown_frame());
                    continue;
                }
                return None;
            }
            tokio::select! {
                biased;
                _ = self.closing.changed() => {
                    self.done = true;
                    self.pending.push_back(shutdown_frame());
                }
                received = self.rx.recv() => match received {
                    Ok(item) => {
                        if self.filter.keeps(&item) {
                            return Some((item.frame.clone(), self));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        #[derive(Serialize)]
                        struct Dropped { reason: String }
                        self.done = true;
                        self.pending.push_back(item::control_frame("dropped", &Dropped {
                            reason: format!("client too far behind: {n} events not read in time; reconnect with Last-Event-ID"),
                        }));
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        self.done = true;
                        self.pending.push_back(shutdown_frame());
                    }
                },
                _ = self.heartbeat.tick() => return Some((Bytes::from_static(b": heartbeat\n\n"), self)),
            }
        }
    }
}

fn shutdown_frame() -> Bytes {
    #[derive(Serialize)]
    struct Shutdown {
        reason: &'static str,
    }
    item::control_frame(
        "shutdown",
        &Shutdown {
            reason: "the server is shutting down",
        },
    )
}
