//! What a receiver is given: one [`Notice`] per alert change, grouped into a [`Message`]
//! for one receiver; and the one interface every receiver implements, [`Deliver`].
//!
//! Everything here is plain data, decided before delivery (which notices, in what order,
//! with which idempotency key), so that delivering a message twice sends the same message
//! twice and a receiver can tell the repeat by its key.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Whether a notice tells of an alert that opened (firing) or one that resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    Firing,
    Resolved,
}

/// One alert change, as every receiver sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The outbox row that decided it: the order of notices, and part of every key.
    pub outbox_id: i64,
    pub state: NoticeState,
    pub alert_id: i64,
    /// The alert's condition (`device_down`, `flapping`, `degraded`, `uplink_down`): Alertmanager's
    /// `alertname`.
    pub condition: String,
    pub severity: String,
    pub device: String,
    pub address: String,
    pub region: String,
    pub branch: String,
    pub kind: String,
    /// The device's own inventory labels (empty for a device no longer in the inventory).
    pub labels: BTreeMap<String, String>,
    /// One line: what happened (the alert's message).
    pub summary: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Since when the device has not answered (a `device_down` alert held by maintenance
    /// opens at the window's end: `down_since` is still the true start).
    pub down_since: Option<DateTime<Utc>>,
    /// Devices unreachable behind this one, as the state was when the notice was built.
    pub unreachable_behind: u32,
    /// The device's page under the configured external URL, if one is configured.
    pub url: Option<String>,
}

/// One message to one receiver: the notices of one group, in outbox order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub receiver: String,
    /// The same for every delivery of this message, different for every other message:
    /// a receiver that sees a key twice has seen a repeat.
    pub idempotency_key: String,
    /// The `group_by` labels and their values, e.g. `{region: east, branch: e-01}`.
    pub group: BTreeMap<String, String>,
    pub notices: Vec<Notice>,
    /// Notices of this group that were too old to replay one by one when the receiver
    /// came back (`max_replay_age`): counted here, not listed.
    pub summarised: u32,
    /// Sent by `wardops notify-test`: no alert behind it.
    pub test: bool,
}

impl Message {
    /// The notices of the message still firing.
    pub fn firing(&self) -> impl Iterator<Item = &Notice> {
        self.notices
            .iter()
            .filter(|n| n.state == NoticeState::Firing)
    }

    /// The notices of the message that resolved.
    pub fn resolved(&self) -> impl Iterator<Item = &Notice> {
        self.notices
            .iter()
            .filter(|n| n.state == NoticeState::Resolved)
    }
}

/// Why a delivery failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver is down, slow, or answered 5xx/429: retried with backoff.
    #[error("{0} (will retry)")]
    Retry(String),
    /// The receiver refused the message itself (4xx, a bad address): not retried; the
    /// message is recorded as failed.
    #[error("{0} (not retried)")]
    Permanent(String),
}

/// A receiver: delivers one message, or says why it could not. Called again with the
/// same message after a [`DeliveryError::Retry`]; must not hang (every receiver has a
/// timeout).
pub trait Deliver: Send + Sync {
    /// The receiver's name, as routes and metrics name it.
    fn name(&self) -> &str;
    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// A secret read from the environment or a file at start-up (never from YAML): shown as
/// `***` by `Debug`, so it cannot reach a log or an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
