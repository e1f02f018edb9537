//! An Alertmanager receiver: every alert change posted to `POST /api/v2/alerts` of every
//! configured Alertmanager (an HA pair gets each one, as Prometheus sends to both), and
//! the alerts still open re-posted every `resend_interval` so that they stay firing
//! there. Alertmanager groups, routes and dedups on its own (by labels).
//!
//! Two paths post, and one lock orders them:
//! - [`Deliver`]: the engine's messages from the outbox, in order, with retries — the
//!   durable path; a resolve is never lost.
//! - [`Alertmanager::resend_loop`]: reads the open alerts and posts them firing. It holds
//!   the lock from the read to the post, so a resolve (which the engine can only deliver
//!   after the store committed it) is either seen by the read or posted after the resend,
//!   never overtaken by a stale "firing". When the store cannot be read (a database
//!   outage), it posts the open alerts it read last, kept current by the deliveries
//!   since: Alertmanager must not let an alert that still fires expire because wardops'
//!   database is away.
//!
//! A message counts as delivered when one Alertmanager took it (Prometheus does the
//! same): a dead member of a pair does not hold back the other. The resolves a member
//! missed wait in memory and go with the next post to it; the firing ones it missed
//! come with the next resend anyway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::future::{BoxFuture, join_all};
use parking_lot::Mutex;
use reqwest::{StatusCode, Url};

use super::message::NoticeState;
use super::{Deliver, DeliveryError, Message, Notice, OpenNotices};
use crate::config::settings::notify::AlertmanagerReceiver;

mod alert;

pub use alert::{PostableAlert, VALID_RESENDS, describe, label_name};

/// At most this many alerts in one POST: a resend of ten thousand open alerts is ten
/// requests of a few hundred kilobytes, not one of megabytes.
const CHUNK: usize = 1000;
/// Resolves kept for one Alertmanager that missed them; beyond this some are dropped
/// (those still expire there at their `endsAt`, a few resend intervals later).
const MAX_MISSED: usize = 10_000;

/// One configured Alertmanager receiver (all its URLs).
pub struct Alertmanager {
    name: String,
    targets: Vec<Target>,
    resend_interval: Duration,
    client: reqwest::Client,
    /// Linked by a test alert (a notice carries its device's page itself).
    external_url: Option<Url>,
    /// Held for a whole delivery and a whole resend (see the module doc); a tokio lock
    /// because it is held across the posts.
    posting: tokio::sync::Mutex<()>,
    /// The open alerts as last read, by alert id, kept current by every delivery since:
    /// what a resend posts when the store cannot be read, so that a database outage does
    /// not let Alertmanager expire (and "resolve") alerts that still fire. Updated under
    /// `posting`, so a delivered resolve is never re-fired from it.
    last_open: Mutex<Option<BTreeMap<i64, Notice>>>,
}

/// One Alertmanager of the receiver.
struct Target {
    endpoint: Url,
    /// Resolves that did not reach it, by labels (a later one for the same alert wins).
    /// A plain lock: never held across an `.await`.
    missed: Mutex<BTreeMap<BTreeMap<String, String>, PostableAlert>>,
}

impl Alertmanager {
    pub fn new(
        name: &str,
        config: &AlertmanagerReceiver,
        external_url: Option<&Url>,
    ) -> anyhow::Result<Alertmanager> {
        anyhow::ensure!(
            !config.urls.is_empty(),
            "receiver {name:?}: no Alertmanager URL"
        );
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("wardops/", env!("CARGO_PKG_VERSION")))
            .build()
            .with_context(|| format!("receiver {name:?}: building the HTTP client"))?;
        let targets = config
            .urls
            .iter()
            .map(|url| {
                Ok(Target {
                    endpoint: endpoint(url)?,
                    missed: Mutex::default(),
                })
            })
            .collect::<anyhow::Result<_>>()
            .with_context(|| format!("receiver {name:?}"))?;
        Ok(Alertmanager {
            name: name.to_string(),
            targets,
            resend_interval: config.resend_interval,
            client,
            external_url: external_url.cloned(),
            posting: tokio::sync::Mutex::new(()),
            last_open: Mutex::new(None),
        })
    }

    /// Re-posts the open alerts now, then every `resend_interval`, forever: spawn it and
    /// abort it at shutdown. A failed read or post is logged and tried at the next tick.
    pub async fn resend_loop(self: Arc<Self>, open: Arc<dyn OpenNotices>) {
        let mut tick = tokio::time::interval(self.resend_interval.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.resend(open.as_ref()).await {
                tracing::warn!(receiver = %self.name, error = %e, "alertmanager resend failed");
            }
        }
    }

    /// One resend: the open alerts posted firing to every Alertmanager, with the resolves
    /// each one missed. If the open alerts cannot be read, the last ones read (updated by
    /// the deliveries since) are posted. Fails if there are none such, or if no
    /// Alertmanager took them.
    pub async fn resend(&self, open: &dyn OpenNotices) -> anyhow::Result<()> {
        let _posting = self.posting.lock().await;
        let notices = match open.open_notices().await {
            Ok(notices) => {
                let by_id = notices.iter().map(|n| (n.alert_id, n.clone())).collect();
                *self.last_open.lock() = Some(by_id);
                notices
            }
            Err(e) => {
                let Some(known) = self.last_open.lock().clone() else {
                    return Err(e.context("reading the open alerts"));
                };
                tracing::warn!(
                    receiver = %self.name, error = %e,
                    alerts = known.len(),
                    "cannot read the open alerts; resending the last known ones"
                );
                known.into_values().collect()
            }
        };
        let now = Utc::now();
        let alerts: Vec<PostableAlert> = notices
            .iter()
            .filter(|n| n.state == NoticeState::Firing)
            .map(|n| PostableAlert::from_notice(n, now, self.resend_interval))
            .collect();
        self.post_everywhere(&alerts, None)
            .await
            .map_err(anyhow::Error::new)
    }

    /// Keeps the last known open alerts current with `message` (a redelivery changes
    /// nothing): what it opened is open, what it resolved is not.
    fn remember(&self, message: &Message) {
        let mut last = self.last_open.lock();
        let Some(open) = last.as_mut() else {
            return;
        };
        for n in &message.notices {
            match n.state {
                NoticeState::Firing => open.insert(n.alert_id, n.clone()),
                NoticeState::Resolved => open.remove(&n.alert_id),
            };
        }
    }

    /// The alerts of `message` as posted at `now`.
    fn alerts(&self, message: &Message, now: DateTime<Utc>) -> Vec<PostableAlert> {
        if message.test && message.notices.is_empty() {
            let url = self.external_url.as_ref().map(Url::to_string);
            return vec![PostableAlert::test(&self.name, now, url)];
        }
        message
            .notices
            .iter()
            .map(|n| PostableAlert::from_notice(n, now, self.resend_interval))
            .collect()
    }

    /// `alerts` to every Alertmanager at once; Ok if at least one took them.
    async fn post_everywhere(
        &self,
        alerts: &[PostableAlert],
        key: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let posts = self.targets.iter().map(|t| self.post_to(t, alerts, key));
        let results = join_all(posts).await;
        if results.iter().any(Result::is_ok) {
            return Ok(());
        }
        let every_permanent = results
            .iter()
            .all(|r| matches!(r, Err(DeliveryError::Permanent(_))));
        let why: Vec<String> = results
            .into_iter()
            .filter_map(Result::err)
            .map(|e| match e {
                DeliveryError::Retry(s) | DeliveryError::Permanent(s) => s,
            })
            .collect();
        let why = why.join("; ");
        Err(if every_permanent {
            DeliveryError::Permanent(why)
        } else {
            DeliveryError::Retry(why)
        })
    }

    /// `alerts` to one Alertmanager, after the resolves it missed. If it is unreachable,
    /// the resolves among them join the missed ones.
    async fn post_to(
        &self,
        target: &Target,
        alerts: &[PostableAlert],
        key: Option<&str>,
    ) -> Result<(), DeliveryError> {
        let missed: Vec<PostableAlert> = std::mem::take(&mut *target.missed.lock())
            .into_values()
            .collect();
        let all: Vec<&PostableAlert> = missed.iter().chain(alerts).collect();
        let mut result = Ok(());
        for chunk in all.chunks(CHUNK) {
            result = self.post_chunk(&target.endpoint, chunk, key).await;
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = &result {
            // The message may count as delivered by the other member: say it here.
            tracing::warn!(receiver = %self.name, error = %e, "an Alertmanager did not take the alerts");
        }
        if let Err(DeliveryError::Retry(_)) = &result {
            let mut kept = target.missed.lock();
            let resolved = all.into_iter().filter(|a| a.resolved);
            for alert in resolved {
                kept.insert(alert.labels.clone(), alert.clone());
            }
            while kept.len() > MAX_MISSED {
                kept.pop_first();
            }
        }
        result
    }

    async fn post_chunk(
        &self,
        endpoint: &Url,
        alerts: &[&PostableAlert],
        key: Option<&str>,
    ) -> Result<(), DeliveryError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut request = self.client.post(endpoint.clone()).json(alerts);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(|e| {
            DeliveryError::Retry(format!("{endpoint}: {:#}", anyhow::Error::new(e)))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(200).collect();
        let why = format!("{endpoint}: {status} {body}");
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(DeliveryError::Retry(why))
        } else {
            Err(DeliveryError::Permanent(why))
        }
    }
}

impl Deliver for Alertmanager {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let _posting = self.posting.lock().await;
            self.remember(message);
            let alerts = self.alerts(message, Utc::now());
            self.post_everywhere(&alerts, Some(&message.idempotency_key))
                .await
        })
    }
}

/// `base` + `api/v2/alerts`, keeping a path prefix (`http://proxy/am` → `/am/api/v2/alerts`).
fn endpoint(base: &Url) -> anyhow::Result<Url> {
    anyhow::ensure!(
        matches!(base.scheme(), "http" | "https"),
        "{base}: not an http(s) URL"
    );
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{base}: not a base URL"))?
        .pop_if_empty()
        .extend(["api", "v2", "alerts"]);
    Ok(url)
}

#[cfg(test)]
mod tests;
