//! The live event feed of a cluster over Redis Streams (docs/cluster.md, "Live events
//! over Redis Streams"): every member shows every device, so each member's committed
//! transitions and alert changes reach the others within a Redis round trip. Built, not
//! wired into the writer or the app yet; the seams are [`outbox::insert`] (in the
//! writer's transaction), the relay's `Notify` (poked after commit) and the reader's
//! channel and [`FeedStatus`].
//!
//! The data flow, one module each:
//! - [`outbox`]: the events of a commit are rows of `cluster_outbox` in the same
//!   transaction, so a rolled-back write never publishes and a committed one is never
//!   lost while Redis is away.
//! - [`relay`]: one task per member publishes its own member's unsent rows in id order
//!   (`XADD`, pipelined), then marks them sent. At least once: a crash between the two
//!   publishes them again, and readers drop the repeat by `outbox_id`.
//! - [`reader`]: one task per member follows the stream on its own connection, drops
//!   repeats and its own member's events, hands the others' on, and says whether the feed
//!   can be trusted ([`FeedStatus`]).
//! - [`fallback`]: what a consumer reads instead while the feed is in fallback.
//! - `conn`: the Redis connection, bounded in time, and the [`FeedSettings`] shared by all.
//!
//! Redis holds nothing correctness depends on: PostgreSQL is the truth, the stream a
//! shortcut to it.

mod conn;
pub mod fallback;
pub mod outbox;
pub mod reader;
pub mod relay;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::Status;

pub use conn::{DEFAULT_STREAM, EntryId, FeedError, FeedSettings};
pub(crate) use conn::{connect, timed};

/// The version of the event format this build writes and reads; an entry of another is
/// skipped as undecodable (a newer member's events wait for this one's upgrade, and the
/// fallback covers the meantime).
pub const VERSION: u32 = 1;
/// The name of the one field of each stream entry: the event as JSON.
pub const FIELD: &str = "event";

/// One committed change of a member's, as the other members apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterEvent {
    /// [`VERSION`].
    pub v: u32,
    /// The row of `cluster_outbox` it was published from; set by the relay (0 before).
    /// Increasing in commit order for one member, whose single writer commits one
    /// transaction after the other: what readers drop repeats by.
    #[serde(default)]
    pub outbox_id: i64,
    /// The member whose writer committed it.
    pub member: String,
    /// The epoch of the lease the member wrote the device's shard under.
    pub epoch: i64,
    /// When it happened (a transition: when it was decided; an alert: when it opened,
    /// resolved or was acknowledged).
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A decided change of one device's status.
    Transition {
        device: String,
        #[serde(with = "status")]
        from: Status,
        #[serde(with = "status")]
        to: Status,
        /// Set for a change to `down` or `unreachable`: when the outage began.
        down_since: Option<DateTime<Utc>>,
    },
    /// A change of one alert.
    Alert {
        device: String,
        alert_id: i64,
        /// `device_down`, `flapping`, `degraded`, `uplink_down`.
        condition: String,
        state: AlertState,
    },
}

/// What happened to an alert. The store's `AlertChange::Updated` (an open alert
/// acknowledged or un-acknowledged) is told apart by the row when the event is made
/// (`store::apply::fenced`), since a reader has no row to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Opened,
    Resolved,
    Acknowledged,
    Unacknowledged,
}

impl ClusterEvent {
    /// The device it is about.
    pub fn device(&self) -> &str {
        match &self.kind {
            EventKind::Transition { device, .. } | EventKind::Alert { device, .. } => device,
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and times: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses an event of [`VERSION`]; anything else is an error to count and skip.
    pub fn from_json(text: &str) -> Result<ClusterEvent, DecodeError> {
        let event: ClusterEvent = serde_json::from_str(text).map_err(DecodeError::Json)?;
        if event.v != VERSION {
            return Err(DecodeError::Version(event.v));
        }
        Ok(event)
    }
}

/// Why a stream entry was skipped.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("no {FIELD} field of text")]
    NoField,
    #[error("not an event: {0}")]
    Json(serde_json::Error),
    #[error("event version {0}, this build reads {VERSION}")]
    Version(u32),
}

/// Whether the events from the feed are all there is to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedStatus {
    /// Reading the stream with no gap known: other members' devices are as the events say.
    Live,
    /// Events may be missing (Redis unreachable, or the stream trimmed past the last id
    /// read): read `device_state` from PostgreSQL instead ([`fallback`]).
    Fallback { reason: String },
}

/// [`Status`] as its name, both ways (the state machine's type only serialises).
mod status {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::state::Status;

    pub fn serialize<S: Serializer>(s: &Status, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(s.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let text = String::deserialize(d)?;
        Status::parse(&text).ok_or_else(|| D::Error::custom(format!("unknown status {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition() -> ClusterEvent {
        ClusterEvent {
            v: VERSION,
            outbox_id: 7,
            member: "a".into(),
            epoch: 3,
            at: DateTime::from_timestamp(1_800_000_000, 5_000).unwrap(),
            kind: EventKind::Transition {
                device: "atm-1".into(),
                from: Status::Up,
                to: Status::Down,
                down_since: DateTime::from_timestamp(1_799_999_990, 0),
            },
        }
    }

    #[test]
    fn events_round_trip_through_json_with_their_version() {
        let alert = ClusterEvent {
            kind: EventKind::Alert {
                device: "atm-1".into(),
                alert_id: 42,
                condition: "device_down".into(),
                state: AlertState::Acknowledged,
            },
            ..transition()
        };
        for e in [transition(), alert] {
            let text = e.to_json();
            assert!(text.contains(r#""v":1"#), "{text}");
            assert_eq!(ClusterEvent::from_json(&text).unwrap(), e);
        }
        assert!(
            transition()
                .to_json()
                .contains(r#""from":"up","to":"down""#)
        );
    }

    #[test]
    fn another_version_or_garbage_is_refused() {
        let newer = transition().to_json().replace(r#""v":1"#, r#""v":2"#);
        assert!(matches!(
            ClusterEvent::from_json(&newer),
            Err(DecodeError::Version(2))
        ));
        let bad = transition().to_json().replace(r#""down""#, r#""sideways""#);
        assert!(ClusterEvent::from_json(&bad).is_err());
        assert!(ClusterEvent::from_json("{").is_err());
    }

    #[test]
    fn entry_ids_order_as_redis_orders_them() {
        assert!(EntryId::parse("1700000000000-10") > EntryId::parse("1700000000000-9"));
        assert!(EntryId::parse("1700000000001-0") > EntryId::parse("1700000000000-99"));
        assert_eq!(EntryId::parse("5"), Some(EntryId(5, 0)));
        assert_eq!(EntryId::parse("x-1"), None);
    }
}
