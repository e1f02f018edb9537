//! Result rows → the store's types, once for both backends.
//!
//! The backends differ only in how a time column decodes (`timestamptz` in PostgreSQL,
//! UTC microseconds in SQLite), so each implements [`Columns`] for its row type and the
//! mapping of every query's columns lives here, next to the column lists the queries
//! splice in (so that a query and its mapping cannot drift apart).

use chrono::{DateTime, Utc};

use super::record::StoredStatus;
use super::{
    AlertChange, AlertEvent, AlertRow, AuditEntry, AuditRow, DeviceRow, DeviceScope, Loaded,
    Result, TransitionRow,
};
use crate::maintenance::silence::MAX_CURRENT;
use crate::maintenance::{Matchers, Silence};
use crate::state::Status;

/// The columns [`alert`] reads, in its order.
macro_rules! alert_columns {
    () => {
        "id, device, condition, severity, message, opened_at, resolved_at, resolution, \
         acknowledged_at, acknowledged_by, acknowledged_comment"
    };
}

/// The columns [`transition`] reads, in its order.
macro_rules! transition_columns {
    () => {
        "id, device, from_status, to_status, at, down_since, state_version, in_maintenance"
    };
}

/// The columns [`scope`] reads, in its order.
macro_rules! scope_columns {
    () => {
        "name, region, branch, kind"
    };
}

/// The columns [`silence`] reads, in its order.
macro_rules! silence_columns {
    () => {
        "id, region, branch, device, kind, starts_at, ends_at, comment, created_by, \
         created_at, expired_at, expired_by"
    };
}

/// The `SELECT` whose rows [`silence`] reads at start-up: those not expired early, the
/// latest-ending first. At most [`MAX_CURRENT`] can still be going on, so that many of
/// the latest-ending hold every one that is.
pub(super) const LOAD_SILENCES: &str = concat!(
    "SELECT ",
    silence_columns!(),
    " FROM silences WHERE expired_at IS NULL ORDER BY ends_at DESC LIMIT 1000"
);
const _: () = assert!(MAX_CURRENT == 1000, "LOAD_SILENCES's limit");

/// The `SELECT` whose rows [`loaded`] reads: live devices with their last status.
pub(super) const LOAD: &str =
    "SELECT d.name, d.address, d.region, d.branch, d.kind, s.status, s.down_since
     FROM devices d LEFT JOIN device_state s ON s.device = d.name
     WHERE d.removed_at IS NULL";

/// The `SELECT` whose rows [`open_alert_id`] reads.
pub(super) const OPEN_ALERT_IDS: &str = "SELECT id, device FROM alerts WHERE resolved_at IS NULL";

/// What follows [`alert_columns`] in the `SELECT` whose rows [`alert_event`] reads; the
/// backends add their `WHERE alerts.id …`.
macro_rules! alert_event_from {
    () => {
        ", d.region, d.branch, d.kind FROM alerts LEFT JOIN devices d ON d.name = alerts.device"
    };
}

/// The `SELECT` whose rows [`open_alert_count`] reads.
pub(super) const OPEN_ALERT_COUNTS: &str =
    "SELECT device, count(*) FROM alerts WHERE resolved_at IS NULL GROUP BY device";

/// The columns [`audit`] reads, in its order.
macro_rules! audit_columns {
    () => {
        "id, at, username, via, address, action, target, detail"
    };
}

pub(super) use {
    alert_columns, alert_event_from, audit_columns, scope_columns, silence_columns,
    transition_columns,
};

/// A result row as the shared mapping reads it.
pub(super) trait Columns {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn time(&self, i: usize) -> Result<DateTime<Utc>>;
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>>;
    fn flag(&self, i: usize) -> Result<bool>;
}

/// A row of [`alert_columns`].
pub(super) fn alert(row: &impl Columns) -> Result<AlertRow> {
    Ok(AlertRow {
        id: row.int(0)?,
        device: row.text(1)?,
        condition: row.text(2)?,
        severity: row.text(3)?,
        message: row.text(4)?,
        opened_at: row.time(5)?,
        resolved_at: row.opt_time(6)?,
        resolution: row.opt_text(7)?,
        acknowledged_at: row.opt_time(8)?,
        acknowledged_by: row.opt_text(9)?,
        acknowledged_comment: row.opt_text(10)?,
    })
}

/// A row of [`audit_columns`].
pub(super) fn audit(row: &impl Columns) -> Result<AuditRow> {
    Ok(AuditRow {
        id: row.int(0)?,
        at: row.time(1)?,
        entry: AuditEntry {
            user: row.text(2)?,
            via: row.text(3)?,
            address: row.text(4)?,
            action: row.text(5)?,
            target: row.text(6)?,
            detail: row.text(7)?,
        },
    })
}

/// A row of [`transition_columns`].
pub(super) fn transition(row: &impl Columns) -> Result<TransitionRow> {
    Ok(TransitionRow {
        id: row.int(0)?,
        device: row.text(1)?,
        from: row.text(2)?,
        to: row.text(3)?,
        at: row.time(4)?,
        down_since: row.opt_time(5)?,
        state_version: row.int(6)?,
        in_maintenance: row.flag(7)?,
    })
}

/// Adds a row of [`LOAD`] to `loaded`.
pub(super) fn loaded(row: &impl Columns, loaded: &mut Loaded) -> Result<()> {
    let name = row.text(0)?;
    if let Some(status) = row.opt_text(5)?.as_deref().and_then(Status::parse) {
        let down_since = row.opt_time(6)?;
        loaded
            .status
            .insert(name.clone(), StoredStatus::new(status, down_since));
    }
    loaded.devices.push(DeviceRow {
        name,
        address: row.text(1)?,
        region: row.text(2)?,
        branch: row.text(3)?,
        kind: row.text(4)?,
    });
    Ok(())
}

/// A row of [`silence_columns`].
pub(super) fn silence(row: &impl Columns) -> Result<Silence> {
    Ok(Silence {
        id: row.text(0)?,
        matchers: Matchers {
            region: row.opt_text(1)?,
            branch: row.opt_text(2)?,
            device: row.opt_text(3)?,
            kind: row.opt_text(4)?,
        },
        starts_at: row.time(5)?,
        ends_at: row.time(6)?,
        comment: row.text(7)?,
        created_by: row.text(8)?,
        created_at: row.time(9)?,
        expired_at: row.opt_time(10)?,
        expired_by: row.opt_text(11)?,
    })
}

/// A row of [`OPEN_ALERT_COUNTS`].
pub(super) fn open_alert_count(row: &impl Columns) -> Result<(String, u32)> {
    Ok((row.text(0)?, row.int(1)? as u32))
}

/// A row of [`OPEN_ALERT_IDS`].
pub(super) fn open_alert_id(row: &impl Columns) -> Result<(i64, String)> {
    Ok((row.int(0)?, row.text(1)?))
}

/// A row of [`alert_columns`] then [`alert_event_from`]: the alert as the change it last
/// went through, with its device's scope.
pub(super) fn alert_event(row: &impl Columns) -> Result<AlertEvent> {
    let alert = alert(row)?;
    let scope = match (row.opt_text(11)?, row.opt_text(12)?, row.opt_text(13)?) {
        (Some(region), Some(branch), Some(kind)) => Some(DeviceScope {
            region,
            branch,
            kind,
        }),
        _ => None,
    };
    let change = if alert.resolved_at.is_some() {
        AlertChange::Resolved
    } else {
        AlertChange::Opened
    };
    Ok(AlertEvent {
        change,
        alert,
        scope,
    })
}

/// A row of [`scope_columns`]: the device's name and its scope.
pub(super) fn scope(row: &impl Columns) -> Result<(String, DeviceScope)> {
    let scope = DeviceScope {
        region: row.text(1)?,
        branch: row.text(2)?,
        kind: row.text(3)?,
    };
    Ok((row.text(0)?, scope))
}
