//! The warning records against both stores (a PostgreSQL database of the test's own, a
//! fresh SQLite file): what opens and resolves a `degraded` warning, that it lives beside
//! a device's `device_down` alert without touching it, and that a router's `uplink_down`
//! warning (issue #19) is a condition of its own beside both.

mod pgdb;

use chrono::{DateTime, Utc};
use wardops::store::{AlertEvent, AlertQuery, Db, DeviceRow, Record, RecordKind, Store};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 250_000_000).unwrap()
}

/// Records with consecutive sequence numbers of one boot.
struct Log {
    boot: &'static str,
    seq: u64,
}

impl Log {
    fn next(&mut self, at: i64, kind: RecordKind) -> Record {
        self.seq += 1;
        Record {
            boot: self.boot.into(),
            stamp: None,
            seq: self.seq,
            at: t(at),
            kind,
        }
    }

    fn devices(&mut self, at: i64, upsert: &[&str], removed: &[&str]) -> Record {
        let row = |n: &str| DeviceRow {
            name: n.into(),
            address: "127.93.0.1".into(),
            region: "r".into(),
            branch: "b".into(),
            kind: "atm".into(),
        };
        let kind = RecordKind::Devices {
            upsert: upsert.iter().map(|n| row(n)).collect(),
            removed: removed.iter().map(|n| n.to_string()).collect(),
        };
        self.next(at, kind)
    }

    fn transition(&mut self, at: i64, name: &str, from: &str, to: &str) -> Record {
        let kind = RecordKind::Transition {
            device: name.into(),
            address: "127.93.0.1".into(),
            from: from.into(),
            to: to.into(),
            down_since: (to == "down").then(|| t(at - 2)),
            version: self.seq + 1,
            in_maintenance: false,
            alert_held: false,
        };
        self.next(at, kind)
    }

    fn opened(&mut self, at: i64, name: &str) -> Record {
        let kind = RecordKind::DegradedOpened {
            device: name.into(),
            message: format!(
                "device {name} (127.93.0.1) is degraded: loss 30.0% above 10% over 5m"
            ),
        };
        self.next(at, kind)
    }

    fn resolved(&mut self, at: i64, name: &str, resolution: &str) -> Record {
        let kind = RecordKind::DegradedResolved {
            device: name.into(),
            resolution: resolution.into(),
        };
        self.next(at, kind)
    }
}

fn uplink(log: &mut Log, at: i64, name: &str, open: bool) -> Record {
    let kind = if open {
        RecordKind::UplinkOpened {
            device: name.into(),
            message: format!("uplink Magti (Gi0/0) down on {name}: on its backup line (Silknet)"),
        }
    } else {
        RecordKind::UplinkResolved {
            device: name.into(),
            resolution: "recovered".into(),
        }
    };
    log.next(at, kind)
}

fn summary(events: &[AlertEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{:?} {} {}", e.change, e.alert.device, e.alert.condition))
        .collect()
}

fn all() -> AlertQuery {
    AlertQuery {
        limit: 100,
        ..AlertQuery::default()
    }
}

async fn a_degraded_warning_opens_once_and_resolves_with_its_reason(store: &Db) {
    let mut log = Log { boot: "b1", seq: 0 };
    let events = store
        .apply(&[
            log.devices(0, &["a"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.opened(300, "a"),
        ])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Opened a degraded"]);
    assert!(events[0].scope.is_some(), "{events:?}");
    let alert = &events[0].alert;
    assert_eq!(
        (alert.severity.as_str(), alert.opened_at),
        ("warning", t(300))
    );
    assert!(alert.message.contains("loss 30.0% above 10%"), "{alert:?}");
    // Opened again (a restart that finds it still degraded): one open at a time.
    let events = store.apply(&[log.opened(400, "a")]).await.unwrap();
    assert!(events.is_empty(), "{events:?}");
    let events = store
        .apply(&[log.resolved(900, "a", "recovered")])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Resolved a degraded"]);
    let rows = store.alerts(&all()).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].resolved_at, Some(t(900)));
    assert_eq!(rows[0].resolution.as_deref(), Some("recovered"));
    // Resolving what is not open (the first verdict after a start) does nothing.
    let events = store
        .apply(&[log.resolved(950, "a", "recovered")])
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
}

async fn a_batch_keeps_each_devices_order(store: &Db) {
    let mut log = Log { boot: "b1", seq: 0 };
    let events = store
        .apply(&[
            log.devices(0, &["a", "b", "c"], &[]),
            log.opened(10, "a"),
            log.opened(10, "b"),
            log.resolved(20, "a", "recovered"),
            log.opened(30, "a"),
            log.resolved(40, "c", "down"),
        ])
        .await
        .unwrap();
    assert_eq!(
        summary(&events),
        [
            "Opened a degraded",
            "Opened b degraded",
            "Resolved a degraded",
            "Opened a degraded"
        ]
    );
    assert_ne!(events[0].alert.id, events[3].alert.id, "a second alert");
    let open: Vec<_> = store
        .alerts(&AlertQuery {
            active: Some(true),
            ..all()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.device, a.opened_at))
        .collect();
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(open.contains(&("a".into(), t(30))) && open.contains(&("b".into(), t(10))));
    // Replayed after a lost acknowledgement: nothing happens twice.
    log.seq = 1;
    let replay = [
        log.opened(10, "a"),
        log.opened(10, "b"),
        log.resolved(20, "a", "recovered"),
    ];
    assert!(store.apply(&replay).await.unwrap().is_empty());
}

async fn degraded_and_down_are_separate_conditions(store: &Db) {
    let mut log = Log { boot: "b1", seq: 0 };
    store
        .apply(&[
            log.devices(0, &["a"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.opened(300, "a"),
        ])
        .await
        .unwrap();
    // The device goes down: the state resolves its warning first, then the down alert opens.
    let events = store
        .apply(&[
            log.resolved(400, "a", "down"),
            log.transition(400, "a", "up", "down"),
        ])
        .await
        .unwrap();
    let mut got = summary(&events);
    got.sort();
    assert_eq!(got, ["Opened a device_down", "Resolved a degraded"]);
    // Degraded again after it came back; the recovery resolves the down alert only.
    let events = store
        .apply(&[log.transition(500, "a", "down", "up"), log.opened(900, "a")])
        .await
        .unwrap();
    let mut got = summary(&events);
    got.sort();
    assert_eq!(got, ["Opened a degraded", "Resolved a device_down"]);
    // Removing the device resolves what it has open.
    let events = store
        .apply(&[log.devices(1000, &[], &["a"])])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Resolved a degraded"]);
    assert_eq!(events[0].alert.resolution.as_deref(), Some("removed"));
}

async fn an_uplink_warning_is_a_condition_of_its_own(store: &Db) {
    let mut log = Log { boot: "b1", seq: 0 };
    let events = store
        .apply(&[
            log.devices(0, &["rtr", "other"], &[]),
            log.transition(1, "rtr", "unknown", "up"),
            log.opened(100, "rtr"),
            uplink(&mut log, 100, "rtr", true),
            uplink(&mut log, 110, "other", true),
            uplink(&mut log, 120, "rtr", true),
        ])
        .await
        .unwrap();
    assert_eq!(
        summary(&events),
        [
            "Opened rtr degraded",
            "Opened rtr uplink_down",
            "Opened other uplink_down"
        ]
    );
    let alert = &events[1].alert;
    assert_eq!(
        (alert.severity.as_str(), alert.opened_at),
        ("warning", t(100))
    );
    assert!(
        alert
            .message
            .starts_with("uplink Magti (Gi0/0) down on rtr")
    );
    // The line comes back: its warning resolves, the latency one stays.
    let events = store
        .apply(&[uplink(&mut log, 200, "rtr", false)])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Resolved rtr uplink_down"]);
    assert_eq!(events[0].alert.resolution.as_deref(), Some("recovered"));
    let open: Vec<_> = store
        .alerts(&AlertQuery {
            active: Some(true),
            ..all()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|a| format!("{} {}", a.device, a.condition))
        .collect();
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(open.contains(&"rtr degraded".to_string()));
    assert!(open.contains(&"other uplink_down".to_string()));
}

on_both_backends!(
    rules: wardops::store::AlertRules::default();
    a_degraded_warning_opens_once_and_resolves_with_its_reason,
    a_batch_keeps_each_devices_order,
    degraded_and_down_are_separate_conditions,
    an_uplink_warning_is_a_condition_of_its_own,
);
