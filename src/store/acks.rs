//! The open alerts someone acknowledged, as of the writer's last commit: what device JSON
//! and the wall show without a query per request (as the open alert counts are kept).
//!
//! Read in full by the writer whenever it reads the open alerts (at start, after a commit
//! whose answer was lost), then followed through each commit's report: an `Updated`
//! change sets or clears an acknowledgement, a resolution ends it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AlertChange, AlertEvent, AlertRow};

/// One acknowledgement of an open alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    pub alert: i64,
    #[serde(skip)]
    pub device: String,
    pub condition: String,
    pub by: String,
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&crate::read_model::Rfc3339(*t))
}

impl Ack {
    /// The acknowledgement of `a`, if it is open and acknowledged.
    pub fn of(a: &AlertRow) -> Option<Ack> {
        if a.resolved_at.is_some() {
            return None;
        }
        Some(Ack {
            alert: a.id,
            device: a.device.clone(),
            condition: a.condition.clone(),
            by: a.acknowledged_by.clone()?,
            at: a.acknowledged_at?,
            comment: a.acknowledged_comment.clone(),
        })
    }
}

/// The acknowledged open alerts, by alert id.
#[derive(Debug, Default)]
pub struct Acknowledged(ArcSwap<HashMap<i64, Ack>>);

impl Acknowledged {
    /// The acknowledgements of `device`'s open alerts, by alert id.
    pub fn of_device(&self, device: &str) -> Vec<Ack> {
        let all = self.0.load();
        let mut acks: Vec<Ack> = all
            .values()
            .filter(|a| a.device == device)
            .cloned()
            .collect();
        acks.sort_by_key(|a| a.alert);
        acks
    }

    /// The devices with an acknowledged open alert, for a page that marks many.
    pub fn devices(&self) -> HashSet<String> {
        self.0.load().values().map(|a| a.device.clone()).collect()
    }

    /// Replaces them all with what the database holds.
    pub(super) fn set(&self, rows: &[AlertRow]) {
        let acks = rows
            .iter()
            .filter_map(Ack::of)
            .map(|a| (a.alert, a))
            .collect();
        self.0.store(Arc::new(acks));
    }

    /// Follows one commit's changes.
    pub(super) fn follow(&self, events: &[AlertEvent]) {
        let touches = |e: &&AlertEvent| match e.change {
            AlertChange::Updated => true,
            AlertChange::Resolved => self.0.load().contains_key(&e.alert.id),
            AlertChange::Opened => false,
        };
        if !events.iter().any(|e| touches(&e)) {
            return;
        }
        let mut acks = HashMap::clone(&self.0.load());
        for e in events {
            match Ack::of(&e.alert) {
                Some(ack) if e.change == AlertChange::Updated => {
                    acks.insert(ack.alert, ack);
                }
                _ if e.change != AlertChange::Opened => {
                    acks.remove(&e.alert.id);
                }
                _ => {}
            }
        }
        self.0.store(Arc::new(acks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, device: &str, by: Option<&str>, resolved: bool) -> AlertRow {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        AlertRow {
            id,
            device: device.into(),
            condition: "device_down".into(),
            severity: "critical".into(),
            message: String::new(),
            opened_at: t,
            resolved_at: resolved.then_some(t),
            resolution: resolved.then(|| "recovered".into()),
            acknowledged_at: by.map(|_| t),
            acknowledged_by: by.map(Into::into),
            acknowledged_comment: None,
        }
    }

    fn event(change: AlertChange, alert: AlertRow) -> AlertEvent {
        AlertEvent {
            change,
            alert,
            scope: None,
        }
    }

    #[test]
    fn acknowledgements_follow_the_commits_until_their_alert_resolves() {
        let acks = Acknowledged::default();
        acks.set(&[row(1, "a", Some("ana"), false), row(2, "b", None, false)]);
        assert_eq!(acks.of_device("a")[0].by, "ana");
        assert!(acks.of_device("b").is_empty());
        acks.follow(&[
            event(AlertChange::Updated, row(2, "b", Some("ben"), false)),
            event(AlertChange::Opened, row(3, "a", None, false)),
        ]);
        assert_eq!(acks.devices(), HashSet::from(["a".into(), "b".into()]));
        acks.follow(&[
            event(AlertChange::Updated, row(2, "b", None, false)),
            event(AlertChange::Resolved, row(1, "a", Some("ana"), true)),
        ]);
        assert!(acks.devices().is_empty(), "taken back, and resolved");
    }
}
