//! The rows the store writes and reads.
//!
//! A [`Record`] is one unit of the writer's ordered log: it is appended to the spool
//! before the database sees it, so it carries everything needed to apply it later, and
//! its key (`boot`, `seq`) makes applying it twice a no-op.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Device;
use crate::maintenance::Silence;
use crate::state::Status;

/// One entry of the writer's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Random id of the appliance process that wrote it.
    pub boot: String,
    /// Position in that boot's log, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: RecordKind,
    /// The lease a cluster member spooled it under (device records of a member only):
    /// what its writer's transaction checks before applying it. Absent elsewhere, so
    /// that spools of appliances outside a cluster stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<Stamp>,
}

/// Who wrote a device's record, under which lease: checked against `shard_leases` in
/// the transaction that applies it (docs/cluster.md, "Fencing every write").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    pub member: String,
    pub shard: u16,
    pub epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordKind {
    /// A decided change of one device's status (`at` is when it was decided).
    Transition {
        device: String,
        address: String,
        from: String,
        to: String,
        down_since: Option<DateTime<Utc>>,
        version: u64,
        /// Decided inside a maintenance window (absent from records written before
        /// maintenance existed: false).
        #[serde(default, skip_serializing_if = "is_false")]
        in_maintenance: bool,
        /// A change to `down` whose alert waits for the window's end.
        #[serde(default, skip_serializing_if = "is_false")]
        alert_held: bool,
    },
    /// A device still down when the maintenance that held its alert ended: its
    /// `device_down` alert opens at the record's `at` (the window's end).
    HeldAlert {
        device: String,
        address: String,
        down_since: Option<DateTime<Utc>>,
    },
    /// RTT or loss of an `up` device went above its thresholds: its `degraded` warning
    /// opens at the record's `at`, unless one is open.
    DegradedOpened { device: String, message: String },
    /// The device's `degraded` condition ended (`resolution`: `recovered`, `down`,
    /// `disabled`): its open `degraded` alert, if any, resolves at the record's `at`.
    DegradedResolved { device: String, resolution: String },
    /// One of a router's ISP lines went from up to down: its `uplink_down` warning
    /// opens at the record's `at`, unless one is open.
    UplinkOpened { device: String, message: String },
    /// Every line of the router is up again (`recovered`), or it is no longer polled
    /// (`disabled`): its open `uplink_down` alert, if any, resolves at the record's `at`.
    UplinkResolved { device: String, resolution: String },
    /// The inventory changed: devices added or changed, and devices removed.
    Devices {
        upsert: Vec<DeviceRow>,
        removed: Vec<String>,
    },
    /// `by` acknowledged alert `alert` at the record's `at`, saying `comment`. A no-op
    /// unless the alert is open when the record is applied: an acknowledgement of an
    /// alert that resolved in the meantime never sticks (nor reaches a re-opened outage,
    /// which is a new alert).
    Acknowledge {
        alert: i64,
        by: String,
        comment: String,
    },
    /// `by` took the acknowledgement of open alert `alert` back.
    Unacknowledge { alert: i64, by: String },
    /// One entry of the audit log: a write someone made, at the record's `at`.
    Audit(AuditEntry),
    /// An operator made a silence (kept whole: ids are the appliance's, so writing it
    /// twice is a no-op).
    Silence(Silence),
    /// `by` ended silence `id` early, at the record's `at`; a no-op once it has ended.
    SilenceExpired { id: String, by: String },
    /// The heartbeat of this run of the appliance (the record's `boot`): it was running
    /// at the record's `at`, since `started_at`; `stopped` at a clean stop. What reports
    /// tell monitored time from unmonitored time by ([`crate::store::runs`]).
    Run {
        started_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "is_false")]
        stopped: bool,
    },
}

/// A write someone made, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The user or token name (`anonymous` for nobody).
    pub user: String,
    /// How they proved it (`anonymous`, `session`, `basic`, `token`).
    pub via: String,
    pub address: String,
    /// `ack`, `unack`, `silence`, `probe`, `login`, `reload`…
    pub action: String,
    /// What it was done to (an alert id, a device, a silence id…).
    pub target: String,
    pub detail: String,
}

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// Filters of `GET /api/v1/audit`: newest first, strictly before the cursor (`at`, `id`)
/// of the last row of a previous page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub action: Option<String>,
    pub limit: i64,
    pub before: Option<(DateTime<Utc>, i64)>,
}

impl RecordKind {
    /// The device whose shard the record belongs to: the kinds a cluster member may write
    /// only while it holds that shard. Acknowledgements name an alert, not a device, and
    /// inventory, silences, audit and runs are the whole appliance's (see docs/cluster.md).
    pub fn device(&self) -> Option<&str> {
        match self {
            RecordKind::Transition { device, .. }
            | RecordKind::HeldAlert { device, .. }
            | RecordKind::DegradedOpened { device, .. }
            | RecordKind::DegradedResolved { device, .. }
            | RecordKind::UplinkOpened { device, .. }
            | RecordKind::UplinkResolved { device, .. } => Some(device),
            RecordKind::Devices { .. }
            | RecordKind::Acknowledge { .. }
            | RecordKind::Unacknowledge { .. }
            | RecordKind::Audit(_)
            | RecordKind::Silence(_)
            | RecordKind::SilenceExpired { .. }
            | RecordKind::Run { .. } => None,
        }
    }

    pub fn transition(t: &crate::state::Transition) -> RecordKind {
        RecordKind::Transition {
            device: t.device.name.to_string(),
            address: t.device.address.to_string(),
            from: t.change.from.as_str().into(),
            to: t.change.to.as_str().into(),
            down_since: t.change.down_since,
            version: t.version,
            in_maintenance: t.in_maintenance(),
            alert_held: t.alert_held,
        }
    }
}

impl RecordKind {
    /// The record of a `degraded` alert change.
    pub fn degraded(device: &Device, alert: &crate::state::degraded::AlertChange) -> RecordKind {
        use crate::state::degraded::AlertChange;
        let device = device.name.to_string();
        match alert {
            AlertChange::Open { message } => RecordKind::DegradedOpened {
                device,
                message: message.clone(),
            },
            AlertChange::Resolve { why } => RecordKind::DegradedResolved {
                device,
                resolution: why.as_str().into(),
            },
        }
    }
}

impl RecordKind {
    /// The record of an `uplink_down` alert change.
    pub fn uplink(device: &Device, alert: &crate::state::uplinks::AlertChange) -> RecordKind {
        use crate::state::uplinks::AlertChange;
        let device = device.name.to_string();
        match alert {
            AlertChange::Open { message } => RecordKind::UplinkOpened {
                device,
                message: message.clone(),
            },
            AlertChange::Resolve { why } => RecordKind::UplinkResolved {
                device,
                resolution: (*why).into(),
            },
        }
    }

    /// A warning's record (`degraded`, `uplink_down`): its condition, its device, and
    /// the message it opens with or the resolution it resolves with.
    pub fn warning(&self) -> Option<Warning<'_>> {
        let (condition, device, change) = match self {
            RecordKind::DegradedOpened { device, message } => {
                ("degraded", device, WarningChange::Open(message))
            }
            RecordKind::DegradedResolved { device, resolution } => {
                ("degraded", device, WarningChange::Resolve(resolution))
            }
            RecordKind::UplinkOpened { device, message } => {
                ("uplink_down", device, WarningChange::Open(message))
            }
            RecordKind::UplinkResolved { device, resolution } => {
                ("uplink_down", device, WarningChange::Resolve(resolution))
            }
            _ => return None,
        };
        Some(Warning {
            condition,
            device,
            change,
        })
    }
}

/// See [`RecordKind::warning`].
pub struct Warning<'r> {
    pub condition: &'static str,
    pub device: &'r str,
    pub change: WarningChange<'r>,
}

pub enum WarningChange<'r> {
    Open(&'r str),
    Resolve(&'r str),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A device as the store knows it (what the inventory said last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub name: String,
    pub address: String,
    pub region: String,
    pub branch: String,
    pub kind: String,
}

impl DeviceRow {
    pub fn of(d: &Device) -> DeviceRow {
        DeviceRow {
            name: d.name.to_string(),
            address: d.address.to_string(),
            region: d.region.to_string(),
            branch: d.branch.to_string(),
            kind: d.kind.to_string(),
        }
    }
}

/// A device's last stored status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredStatus {
    pub status: Status,
    pub down_since: Option<DateTime<Utc>>,
}

impl StoredStatus {
    /// `status` with `down_since` kept only where it means something: a device that is
    /// `down` or `unreachable` has not answered since then; any other has no outage.
    pub fn new(status: Status, down_since: Option<DateTime<Utc>>) -> StoredStatus {
        let down_since = down_since.filter(|_| is_outage(status));
        StoredStatus { status, down_since }
    }
}

/// True for the statuses of a device that does not answer (`down`, `unreachable`): they
/// carry a `down_since`, and a change between them is the same outage going on.
pub fn is_outage(status: Status) -> bool {
    matches!(status, Status::Down | Status::Unreachable)
}

/// What start-up reads back.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Live (not removed) devices.
    pub devices: Vec<DeviceRow>,
    /// Last status of live devices that have one.
    pub status: HashMap<String, StoredStatus>,
    /// The silences not expired early, the latest-ending first (those ended are
    /// dropped by whoever knows the time).
    pub silences: Vec<Silence>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub device: String,
    pub condition: String,
    pub severity: String,
    pub message: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    /// What `acknowledged_by` said (empty: nothing).
    pub acknowledged_comment: Option<String>,
}

/// What a committed write did to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertChange {
    Opened,
    Resolved,
    /// Still open, acknowledged or un-acknowledged (the row says which).
    Updated,
}

/// Where a device sits in the hierarchy, as the store last knew it (also for devices that
/// have left the inventory since).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceScope {
    pub region: String,
    pub branch: String,
    pub kind: String,
}

/// An alert a committed transaction opened or resolved, as it is after that commit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    pub change: AlertChange,
    pub alert: AlertRow,
    /// None only for a device the store never had a row for.
    pub scope: Option<DeviceScope>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionRow {
    pub id: i64,
    pub device: String,
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    pub down_since: Option<DateTime<Utc>>,
    /// The in-memory `state_version` of the change; it restarts with each boot.
    pub state_version: i64,
    /// Decided inside a maintenance window of the device.
    pub in_maintenance: bool,
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertQuery {
    /// `Some(true)`: open only; `Some(false)`: resolved only.
    pub active: Option<bool>,
    pub device: Option<String>,
    pub severity: Option<String>,
    pub limit: i64,
    /// Alerts opened strictly before this (paging, newest first).
    pub before: Option<DateTime<Utc>>,
    /// With `before`, also the alerts opened exactly at `before` whose id is smaller: the
    /// cursor (`opened_at`, `id`) of the last alert of a page, so that alerts opened in the
    /// same microsecond (one burst, one transaction) are neither skipped nor repeated.
    pub before_id: Option<i64>,
}

/// Severity of each condition.
pub fn severity_of(condition: &str) -> &'static str {
    match condition {
        "device_down" => "critical",
        _ => "warning",
    }
}

/// A record of `seq` that removes device `d{seq}`: what the spool's and queue's tests write.
#[cfg(test)]
pub(crate) fn sample(seq: u64) -> Record {
    Record {
        boot: "b".into(),
        stamp: None,
        seq,
        at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        kind: RecordKind::Devices {
            upsert: vec![],
            removed: vec![format!("d{seq}")],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let r = Record {
            boot: "b".into(),
            stamp: None,
            seq: 7,
            at: DateTime::from_timestamp(1_800_000_000, 5_000).unwrap(),
            kind: RecordKind::Transition {
                device: "d".into(),
                address: "127.0.0.1".into(),
                from: "up".into(),
                to: "down".into(),
                down_since: DateTime::from_timestamp(1_799_999_990, 0),
                version: 3,
                in_maintenance: true,
                alert_held: true,
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""type":"transition""#), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }

    #[test]
    fn a_transition_written_before_maintenance_existed_is_read_as_outside_one() {
        let old = r#"{"boot":"b","seq":1,"at":"2027-01-15T08:00:00Z","type":"transition","device":"d","address":"127.0.0.1","from":"up","to":"down","down_since":"2027-01-15T07:59:50Z","version":3}"#;
        let r: Record = serde_json::from_str(old).unwrap();
        let RecordKind::Transition {
            in_maintenance,
            alert_held,
            ..
        } = r.kind
        else {
            panic!("{r:?}")
        };
        assert!(!in_maintenance && !alert_held);
    }

    #[test]
    fn degraded_records_round_trip_through_json() {
        for kind in [
            RecordKind::DegradedOpened {
                device: "d".into(),
                message: "device d (127.0.0.1) is degraded: loss 30.0% above 10% over 5m".into(),
            },
            RecordKind::DegradedResolved {
                device: "d".into(),
                resolution: "recovered".into(),
            },
        ] {
            let r = Record {
                boot: "b".into(),
                stamp: None,
                seq: 9,
                at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
                kind,
            };
            let text = serde_json::to_string(&r).unwrap();
            assert!(text.contains(r#""type":"degraded_"#), "{text}");
            assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        }
    }

    #[test]
    fn actions_round_trip_through_json() {
        for kind in [
            RecordKind::Acknowledge {
                alert: 7,
                by: "ana".into(),
                comment: "ISP ticket \"42\" <b>".into(),
            },
            RecordKind::Unacknowledge {
                alert: 7,
                by: "ben".into(),
            },
            RecordKind::Audit(AuditEntry {
                user: "ana".into(),
                via: "session".into(),
                address: "127.0.0.1".into(),
                action: "ack".into(),
                target: "alert 7".into(),
                detail: "x".into(),
            }),
            RecordKind::Silence(Silence {
                id: "5f".into(),
                matchers: crate::maintenance::Matchers {
                    region: Some("west".into()),
                    device: Some("atm-1".into()),
                    ..Default::default()
                },
                starts_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
                ends_at: DateTime::from_timestamp(1_800_003_600, 0).unwrap(),
                comment: "UPS swap".into(),
                created_by: "ana".into(),
                created_at: DateTime::from_timestamp(1_799_999_990, 0).unwrap(),
                expired_at: None,
                expired_by: None,
            }),
            RecordKind::SilenceExpired {
                id: "5f".into(),
                by: "ben".into(),
            },
            RecordKind::Run {
                started_at: DateTime::from_timestamp(1_799_999_000, 0).unwrap(),
                stopped: true,
            },
        ] {
            let r = Record {
                boot: "b".into(),
                stamp: None,
                seq: 10,
                at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
                kind,
            };
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r, "{text}");
        }
    }

    #[test]
    fn a_held_alert_round_trips_through_json() {
        let r = Record {
            boot: "b".into(),
            stamp: None,
            seq: 8,
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            kind: RecordKind::HeldAlert {
                device: "d".into(),
                address: "127.0.0.1".into(),
                down_since: DateTime::from_timestamp(1_799_999_000, 0),
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""type":"held_alert""#), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }
}
