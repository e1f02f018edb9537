//! The state the writer's log leads to — each live device, its last status and
//! `down_since`, the open alerts and the operators' silences — kept by the writer as it spools, and saved beside
//! the spool each time the spool is emptied.
//!
//! The spool only ever holds the log's records since it was last emptied, so this file
//! plus the spool's records on top is the whole state, as the database plus the spool is.
//! A restart therefore restores the same status and `down_since` whether the database or
//! the appliance comes back first: no outage is decided twice, no device starts
//! `unknown` again.
//!
//! The file is JSON, replaced atomically (written aside, synced, renamed, directory
//! synced): it is either the old one or the new one, never half of one.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::record::is_outage;
use super::{DeviceRow, Loaded, Record, RecordKind, StoredStatus};
use crate::maintenance::Silence;
use crate::state::Status;

/// The snapshot's file name inside the data directory.
pub const SNAPSHOT_FILE: &str = "store-state.json";
const FORMAT: u32 = 1;

/// Live devices and their last status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Latest {
    pub devices: HashMap<String, DeviceRow>,
    pub status: HashMap<String, StoredStatus>,
    /// The operators' silences, by id, not known to have ended (the state drops those
    /// that have by the time it starts).
    pub silences: HashMap<String, Silence>,
}

impl Latest {
    pub fn from_loaded(loaded: Loaded) -> Latest {
        Latest {
            devices: loaded
                .devices
                .into_iter()
                .map(|d| (d.name.clone(), d))
                .collect(),
            status: loaded.status,
            silences: loaded
                .silences
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect(),
        }
    }

    /// Applies one record of the log, as the stores do.
    pub fn apply(&mut self, r: &Record) {
        match &r.kind {
            RecordKind::Transition {
                device,
                to,
                down_since,
                ..
            } => {
                let to = Status::parse(to).unwrap_or(Status::Unknown);
                let previous = self.status.get(device).copied();
                // Same rule as the stores: re-deciding an outage (down again, or down
                // after unreachable) keeps its first down_since.
                let down_since = match previous {
                    Some(p) if is_outage(p.status) && is_outage(to) => p.down_since,
                    _ => *down_since,
                };
                self.status
                    .insert(device.clone(), StoredStatus::new(to, down_since));
            }
            // Opens an alert; the device's status is the last transition's.
            RecordKind::HeldAlert { .. }
            | RecordKind::DegradedOpened { .. }
            | RecordKind::DegradedResolved { .. }
            | RecordKind::UplinkOpened { .. }
            | RecordKind::UplinkResolved { .. } => {}
            // Touch alerts and the audit log only, not the state restored from here.
            RecordKind::Acknowledge { .. }
            | RecordKind::Unacknowledge { .. }
            | RecordKind::Audit(_)
            | RecordKind::Run { .. } => {}
            RecordKind::Silence(s) => {
                // Those ended by the time a new one is made are dropped: the file keeps
                // what start-up needs, not the history.
                self.silences.retain(|_, old| old.end() > r.at);
                self.silences.insert(s.id.clone(), s.clone());
            }
            RecordKind::SilenceExpired { id, by } => {
                if let Some(s) = self.silences.get_mut(id)
                    && s.end() > r.at
                {
                    s.expired_at = Some(r.at);
                    s.expired_by = Some(by.clone());
                }
            }
            RecordKind::Devices { upsert, removed } => {
                for name in removed {
                    self.devices.remove(name);
                    self.status.remove(name);
                }
                for d in upsert {
                    self.devices.insert(d.name.clone(), d.clone());
                }
            }
        }
    }
}

/// What the file holds.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Saved {
    pub latest: Latest,
    /// Id → device of each open alert, when the writer knew them.
    pub open_alerts: Option<HashMap<i64, String>>,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    devices: Vec<Entry>,
    open_alerts: Option<Vec<(i64, String)>>,
    /// Absent from files written before silences existed.
    #[serde(default)]
    silences: Vec<Silence>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    device: DeviceRow,
    status: Option<String>,
    down_since: Option<DateTime<Utc>>,
}

/// Reads the snapshot; `None` when there is none or it cannot be read (said in the log:
/// the appliance then starts as it did before snapshots, from the database).
pub fn load(path: &Path) -> Option<Saved> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(snapshot = %path.display(), error = %e, "cannot read the state snapshot; ignoring it");
            return None;
        }
    };
    let file: File = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(snapshot = %path.display(), error = %e, "unreadable state snapshot; ignoring it");
            return None;
        }
    };
    if file.format != FORMAT {
        tracing::warn!(snapshot = %path.display(), format = file.format, "state snapshot of an unknown format; ignoring it");
        return None;
    }
    let mut latest = Latest::default();
    for e in file.devices {
        if let Some(status) = e.status.as_deref().and_then(Status::parse) {
            latest.status.insert(
                e.device.name.clone(),
                StoredStatus::new(status, e.down_since),
            );
        }
        latest.devices.insert(e.device.name.clone(), e.device);
    }
    for s in file.silences {
        latest.silences.insert(s.id.clone(), s);
    }
    Some(Saved {
        latest,
        open_alerts: file.open_alerts.map(|v| v.into_iter().collect()),
    })
}

/// Replaces the snapshot atomically; returns its size.
pub fn save(
    path: &Path,
    latest: &Latest,
    open_alerts: Option<&HashMap<i64, String>>,
) -> std::io::Result<u64> {
    let mut devices: Vec<Entry> = latest
        .devices
        .values()
        .map(|d| {
            let s = latest.status.get(&d.name);
            Entry {
                device: d.clone(),
                status: s.map(|s| s.status.as_str().to_string()),
                down_since: s.and_then(|s| s.down_since),
            }
        })
        .collect();
    devices.sort_by(|a, b| a.device.name.cmp(&b.device.name));
    let mut open: Option<Vec<(i64, String)>> =
        open_alerts.map(|m| m.iter().map(|(id, d)| (*id, d.clone())).collect());
    if let Some(v) = &mut open {
        v.sort_unstable();
    }
    let mut silences: Vec<Silence> = latest.silences.values().cloned().collect();
    silences.sort_by(|a, b| a.id.cmp(&b.id));
    let bytes = serde_json::to_vec(&File {
        format: FORMAT,
        devices,
        open_alerts: open,
        silences,
    })?;
    let aside = aside(path);
    let written = (|| -> std::io::Result<u64> {
        let mut f = std::fs::File::create(&aside)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&aside, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(bytes.len() as u64)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&aside);
    }
    written
}

/// Removes the snapshot (it would be stale once the spool is emptied without a new one).
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn aside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(seq: u64, device: &str, to: &str, down_since: Option<i64>) -> Record {
        Record {
            boot: "b".into(),
            stamp: None,
            seq,
            at: DateTime::from_timestamp(1_800_000_000 + seq as i64, 0).unwrap(),
            kind: RecordKind::Transition {
                device: device.into(),
                address: "127.0.0.1".into(),
                from: "up".into(),
                to: to.into(),
                down_since: down_since.and_then(|s| DateTime::from_timestamp(s, 0)),
                version: seq,
                in_maintenance: false,
                alert_held: false,
            },
        }
    }

    #[test]
    fn spooled_transitions_override_the_stored_state() {
        let t0 = DateTime::from_timestamp(1_000, 0);
        let mut latest = Latest::default();
        latest.status.insert(
            "a".into(),
            StoredStatus {
                status: Status::Down,
                down_since: t0,
            },
        );
        latest.status.insert(
            "b".into(),
            StoredStatus {
                status: Status::Up,
                down_since: None,
            },
        );
        latest.apply(&transition(1, "a", "down", Some(2_000)));
        latest.apply(&transition(2, "b", "down", Some(3_000)));
        assert_eq!(
            latest.status["a"].down_since, t0,
            "an outage re-decided keeps its first down_since"
        );
        assert_eq!(
            latest.status["b"],
            StoredStatus {
                status: Status::Down,
                down_since: DateTime::from_timestamp(3_000, 0)
            }
        );
    }

    #[test]
    fn unreachable_keeps_its_down_since_and_down_after_it_keeps_the_first() {
        let mut latest = Latest::default();
        latest.apply(&transition(1, "a", "unreachable", Some(1_000)));
        assert_eq!(
            latest.status["a"],
            StoredStatus {
                status: Status::Unreachable,
                down_since: DateTime::from_timestamp(1_000, 0)
            }
        );
        latest.apply(&transition(2, "a", "down", Some(2_000)));
        assert_eq!(
            latest.status["a"],
            StoredStatus {
                status: Status::Down,
                down_since: DateTime::from_timestamp(1_000, 0)
            },
            "one outage: unreachable then down"
        );
        latest.apply(&transition(3, "a", "up", Some(3_000)));
        assert_eq!(latest.status["a"].down_since, None, "up has no down_since");
    }

    #[test]
    fn a_saved_snapshot_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SNAPSHOT_FILE);
        assert_eq!(load(&path), None);
        let mut latest = Latest::default();
        let row = DeviceRow {
            name: "a".into(),
            address: "127.0.0.1".into(),
            region: "r".into(),
            branch: "b".into(),
            kind: "atm".into(),
        };
        latest.devices.insert("a".into(), row);
        latest.status.insert(
            "a".into(),
            StoredStatus {
                status: Status::Down,
                down_since: DateTime::from_timestamp(1_800_000_000, 0),
            },
        );
        let mut b = latest.devices["a"].clone();
        b.name = "b".into();
        latest.devices.insert("b".into(), b);
        latest.status.insert(
            "b".into(),
            StoredStatus {
                status: Status::Unreachable,
                down_since: DateTime::from_timestamp(1_800_000_100, 0),
            },
        );
        let alerts: HashMap<i64, String> = [(7, "a".to_string())].into();
        save(&path, &latest, Some(&alerts)).unwrap();
        assert_eq!(
            load(&path),
            Some(Saved {
                latest,
                open_alerts: Some(alerts)
            })
        );
        std::fs::write(&path, b"{").unwrap();
        assert_eq!(load(&path), None, "a damaged snapshot is ignored");
    }
}
