//! Notifications: telling people that an alert opened or resolved, once per outage, and
//! never losing that message to a restart.
//!
//! The decision to notify is written by the store in the same transaction as the alert
//! change (the outbox); a sender per receiver delivers it with retries, at least once,
//! each message carrying an idempotency key that a redelivery repeats. Webhook and e-mail
//! receivers get grouped messages (routes, `group_by`, `group_wait`, …); Alertmanager
//! receivers get every alert as Prometheus sends them and group on their own.
//!
//! - [`message`]: what a receiver is given ([`Notice`], [`Message`]) and the one
//!   interface every receiver implements ([`Deliver`]).
//! - [`outbox`]: outbox rows → notices (labels and unreachable counts from the state).
//! - [`route`]: which receivers get a notice, by which policy; [`group`]: the grouping
//!   timers (pure, on tokio's clock).
//! - [`dispatch`]: outbox → groups → stored messages and cursors; [`sender`]: one task
//!   per receiver delivering its stored messages in order, with backoff; summaries of a
//!   backlog older than `max_replay_age`.
//! - [`webhook`]: the signed JSON webhook; [`alertmanager`]: Alertmanager's API v2, and
//!   the resends of the firing alerts; [`email`]: one mail per message over SMTP (plain
//!   and HTML parts); [`build`]: receivers from the settings.
//! - [`open`]: the open alerts as notices (Alertmanager resends); [`status`] and
//!   [`metrics`]: what each receiver is doing, for the API and `/metrics`.

pub mod alertmanager;
pub mod build;
pub mod dispatch;
pub mod email;
#[cfg(test)]
mod fixture;
pub mod group;
pub mod message;
pub mod metrics;
pub mod open;
pub mod outbox;
pub mod route;
pub mod sender;
pub mod status;
pub mod webhook;

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

pub use message::{Deliver, DeliveryError, Message, Notice, NoticeState, Secret};
pub use open::OpenNotices;

use crate::config::settings::NotifySettings;
use crate::state::State;
use crate::store::{Db, StoreHealth};
use metrics::NotifyMetrics;
use status::ReceiverStatus;

/// The running notification engine: the dispatcher, a sender per receiver, and what
/// runs beside them (Alertmanager resends).
pub struct Notifier {
    pub receivers: Vec<Arc<ReceiverStatus>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Notifier {
    /// Starts the engine over the built receivers (in the settings' order). Nothing is
    /// started without receivers.
    pub fn start(
        store: Arc<Db>,
        state: State,
        settings: &NotifySettings,
        built: Vec<build::Built>,
        health: &StoreHealth,
        metrics: Arc<NotifyMetrics>,
    ) -> Arc<Notifier> {
        let notifier = Notifier::idle(settings, &metrics);
        notifier.run(store, state, settings, built, health, metrics);
        notifier
    }

    /// The engine's receivers, nothing running: a cluster member that does not send
    /// the notifications (see `app`) still shows what the settings hold.
    pub fn idle(settings: &NotifySettings, metrics: &NotifyMetrics) -> Arc<Notifier> {
        let receivers: Vec<Arc<ReceiverStatus>> = settings
            .receivers
            .iter()
            .map(|r| Arc::new(ReceiverStatus::new(&r.name, r.kind.as_str())))
            .collect();
        for r in &receivers {
            metrics.init(&r.name);
        }
        Arc::new(Notifier {
            receivers,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Runs the dispatcher, a sender per receiver and their background tasks (until
    /// [`Notifier::stop`]); nothing without receivers.
    pub fn run(
        &self,
        store: Arc<Db>,
        state: State,
        settings: &NotifySettings,
        built: Vec<build::Built>,
        health: &StoreHealth,
        metrics: Arc<NotifyMetrics>,
    ) {
        if self.receivers.is_empty() {
            return;
        }
        let mut tasks = self.tasks.lock();
        let dispatcher = dispatch::Dispatcher {
            store: store.clone(),
            state,
            router: route::Router::new(settings),
            external_url: settings.external_url.clone(),
            receivers: self.receivers.clone(),
            metrics: metrics.clone(),
        };
        tasks.push(tokio::spawn(dispatcher.run(health.subscribe_alerts())));
        for (b, status) in built.into_iter().zip(&self.receivers) {
            let sender = sender::Sender {
                store: store.clone(),
                receiver: b.deliver,
                status: status.clone(),
                metrics: metrics.clone(),
                max_replay_age: settings.max_replay_age,
                max_backoff: settings.max_backoff,
            };
            tasks.push(tokio::spawn(sender.run()));
            if let Some(background) = b.background {
                tasks.push(tokio::spawn(background));
            }
        }
    }

    /// Whether the engine's tasks run.
    pub fn is_running(&self) -> bool {
        !self.tasks.lock().is_empty()
    }

    /// No receivers: what a context without notifications holds.
    pub fn none() -> Arc<Notifier> {
        Arc::new(Notifier {
            receivers: Vec::new(),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Stops every task (at shutdown; what was not delivered stays stored).
    pub fn stop(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

/// A notice of device `device` at outbox row `outbox_id`, firing: what the unit tests
/// start from.
#[cfg(test)]
pub(crate) fn test_notice(outbox_id: i64, device: &str) -> Notice {
    let opened = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    Notice {
        outbox_id,
        state: NoticeState::Firing,
        alert_id: device.bytes().map(i64::from).sum::<i64>() * 100 + device.len() as i64,
        condition: "device_down".into(),
        severity: "critical".into(),
        device: device.into(),
        address: "127.0.0.1".into(),
        region: "east".into(),
        branch: "e-01".into(),
        kind: "atm".into(),
        labels: Default::default(),
        summary: format!("device {device} is down"),
        opened_at: opened,
        resolved_at: None,
        down_since: Some(opened),
        unreachable_behind: 0,
        url: None,
    }
}
