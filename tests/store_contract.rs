//! One contract for every `Store`: each test below runs against a fresh PostgreSQL
//! database of its own and against a fresh SQLite file.

mod pgdb;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wardops::maintenance::{Matchers, Silence};
use wardops::state::Status;
use wardops::store::{
    AlertEvent, AlertQuery, AlertRules, Db, DeviceRow, Record, RecordKind, Store, StoredStatus,
};

fn rules() -> AlertRules {
    AlertRules {
        flapping_transitions: 3,
        flapping_window: Duration::from_secs(300),
    }
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 123_456_000).unwrap()
}

fn device(name: &str) -> DeviceRow {
    DeviceRow {
        name: name.into(),
        address: "127.77.0.1".into(),
        region: "tbilisi".into(),
        branch: "tbilisi-b0001".into(),
        kind: "atm".into(),
    }
}

/// Builds records with consecutive sequence numbers of one boot.
struct Log {
    boot: String,
    seq: u64,
}

impl Log {
    fn new(boot: &str) -> Log {
        Log {
            boot: boot.into(),
            seq: 0,
        }
    }

    fn next(&mut self, at: DateTime<Utc>, kind: RecordKind) -> Record {
        self.seq += 1;
        Record {
            boot: self.boot.clone(),
            stamp: None,
            seq: self.seq,
            at,
            kind,
        }
    }

    fn devices(&mut self, at: i64, upsert: &[&str], removed: &[&str]) -> Record {
        let kind = RecordKind::Devices {
            upsert: upsert.iter().map(|n| device(n)).collect(),
            removed: removed.iter().map(|n| n.to_string()).collect(),
        };
        self.next(t(at), kind)
    }

    fn transition(&mut self, at: i64, name: &str, from: &str, to: &str) -> Record {
        let down_since = (to == "down" || to == "unreachable").then(|| t(at - 5));
        self.transition_since(at, name, from, to, down_since)
    }

    /// A transition with the `down_since` the state machine gave it.
    fn transition_since(
        &mut self,
        at: i64,
        name: &str,
        from: &str,
        to: &str,
        down_since: Option<DateTime<Utc>>,
    ) -> Record {
        let kind = RecordKind::Transition {
            device: name.into(),
            address: "127.77.0.1".into(),
            from: from.into(),
            to: to.into(),
            down_since,
            version: self.seq + 1,
            in_maintenance: false,
            alert_held: false,
        };
        self.next(t(at), kind)
    }

    /// A transition decided inside a maintenance window; `held` for a change to down
    /// whose outage began inside it.
    fn in_maintenance(&mut self, at: i64, name: &str, from: &str, to: &str, held: bool) -> Record {
        let mut r = self.transition(at, name, from, to);
        if let RecordKind::Transition {
            in_maintenance,
            alert_held,
            ..
        } = &mut r.kind
        {
            *in_maintenance = true;
            *alert_held = held;
        }
        r
    }

    /// The held alert of `name`, opened at `at` (the window's end).
    fn held_alert(&mut self, at: i64, name: &str, down_since: DateTime<Utc>) -> Record {
        let kind = RecordKind::HeldAlert {
            device: name.into(),
            address: "127.77.0.1".into(),
            down_since: Some(down_since),
        };
        self.next(t(at), kind)
    }
}

fn open() -> AlertQuery {
    AlertQuery {
        active: Some(true),
        limit: 100,
        ..AlertQuery::default()
    }
}

async fn migrations_are_idempotent(store: &Db) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let loaded = store.load().await.unwrap();
    assert!(loaded.devices.is_empty() && loaded.status.is_empty());
}

async fn devices_are_upserted_and_removed(store: &Db) {
    let mut log = Log::new("b1");
    store
        .apply(&[log.devices(0, &["a", "b"], &[])])
        .await
        .unwrap();
    let mut names: Vec<_> = store
        .load()
        .await
        .unwrap()
        .devices
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    store.apply(&[log.devices(10, &[], &["b"])]).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.devices, vec![device("a")]);
    // Re-adding brings it back (history kept under the same name).
    store.apply(&[log.devices(20, &["b"], &[])]).await.unwrap();
    assert_eq!(store.load().await.unwrap().devices.len(), 2);
}

async fn an_outage_opens_and_recovery_resolves_one_alert(store: &Db) {
    let mut log = Log::new("b1");
    let batch = [
        log.devices(0, &["a"], &[]),
        log.transition(1, "a", "unknown", "up"),
        log.transition(100, "a", "up", "down"),
    ];
    store.apply(&batch).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(
        loaded.status["a"],
        StoredStatus {
            status: Status::Down,
            down_since: Some(t(95))
        }
    );
    let alerts = store.alerts(&open()).await.unwrap();
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(
        (alert.condition.as_str(), alert.severity.as_str()),
        ("device_down", "critical")
    );
    assert_eq!(alert.opened_at, t(100));
    assert!(
        alert.message.contains("a (127.77.0.1)"),
        "{}",
        alert.message
    );
    assert_eq!(store.open_alert_counts().await.unwrap().get("a"), Some(&1));

    store
        .apply(&[log.transition(200, "a", "down", "up")])
        .await
        .unwrap();
    assert!(store.alerts(&open()).await.unwrap().is_empty());
    let resolved = store
        .alerts(&AlertQuery {
            active: Some(false),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].resolved_at, Some(t(200)));
    assert_eq!(resolved[0].resolution.as_deref(), Some("recovered"));
    let history = store.transitions("a", 10, None).await.unwrap();
    let tos: Vec<_> = history.iter().map(|t| t.to.as_str()).collect();
    assert_eq!(tos, ["up", "down", "up"], "newest first");
    assert_eq!(history[1].down_since, Some(t(95)));
    assert_eq!(
        store
            .transitions("a", 10, Some(t(200)))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.load().await.unwrap().status["a"].down_since, None);
}

async fn replaying_records_is_a_no_op(store: &Db) {
    let mut log = Log::new("b1");
    let batch = [
        log.devices(0, &["a"], &[]),
        log.transition(1, "a", "unknown", "up"),
        log.transition(2, "a", "up", "down"),
    ];
    store.apply(&batch).await.unwrap();
    store.apply(&batch).await.unwrap();
    store.apply(&batch[1..]).await.unwrap();
    assert_eq!(store.transitions("a", 10, None).await.unwrap().len(), 2);
    assert_eq!(store.alerts(&open()).await.unwrap().len(), 1);
    // A later record of the same boot still applies after a partial replay.
    store
        .apply(&[batch[2].clone(), log.transition(3, "a", "down", "up")])
        .await
        .unwrap();
    assert_eq!(store.transitions("a", 10, None).await.unwrap().len(), 3);
}

async fn a_restart_that_re_decides_an_outage_keeps_it(store: &Db) {
    let mut first = Log::new("boot-1");
    store
        .apply(&[
            first.devices(0, &["a"], &[]),
            first.transition(1, "a", "unknown", "up"),
            first.transition(60, "a", "up", "down"),
        ])
        .await
        .unwrap();
    // The next boot started without stored state and decided `down` afresh.
    let mut second = Log::new("boot-2");
    store
        .apply(&[second.transition(500, "a", "unknown", "down")])
        .await
        .unwrap();
    let alerts = store.alerts(&open()).await.unwrap();
    assert_eq!(alerts.len(), 1, "no duplicate alert");
    assert_eq!(alerts[0].opened_at, t(60));
    assert_eq!(
        store.load().await.unwrap().status["a"].down_since,
        Some(t(55)),
        "original down_since"
    );
}

async fn flapping_opens_once_and_clears_when_stable(store: &Db) {
    let mut log = Log::new("b1");
    store
        .apply(&[
            log.devices(0, &["a"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.transition(10, "a", "up", "down"),
            log.transition(20, "a", "down", "up"),
        ])
        .await
        .unwrap();
    let conditions = |alerts: Vec<wardops::store::AlertRow>| {
        let mut c: Vec<_> = alerts.into_iter().map(|a| a.condition).collect();
        c.sort();
        c
    };
    assert!(
        conditions(store.alerts(&open()).await.unwrap()).is_empty(),
        "two changes are not a flap"
    );
    store
        .apply(&[log.transition(30, "a", "up", "down")])
        .await
        .unwrap();
    assert_eq!(
        conditions(store.alerts(&open()).await.unwrap()),
        ["device_down", "flapping"]
    );
    store
        .apply(&[
            log.transition(40, "a", "down", "up"),
            log.transition(50, "a", "up", "down"),
        ])
        .await
        .unwrap();
    let open_alerts = store.alerts(&open()).await.unwrap();
    assert_eq!(
        conditions(open_alerts.clone()),
        ["device_down", "flapping"],
        "still one of each"
    );
    let flapping = open_alerts
        .iter()
        .find(|a| a.condition == "flapping")
        .unwrap();
    assert_eq!(flapping.severity, "warning");
    let calm = store.resolve_stable_flapping(t(50 + 299)).await.unwrap();
    assert!(calm.is_empty(), "not yet stable for the window");
    let calm = store.resolve_stable_flapping(t(50 + 301)).await.unwrap();
    assert_eq!(calm.len(), 1);
    // It flapped and then stayed down: the outage keeps its alert.
    assert_eq!(
        conditions(store.alerts(&open()).await.unwrap()),
        ["device_down"]
    );
    let resolved = store
        .alerts(&AlertQuery {
            active: Some(false),
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    let flapping = resolved.iter().find(|a| a.condition == "flapping").unwrap();
    assert_eq!(flapping.resolution.as_deref(), Some("stable"));
    assert!(
        flapping.message.contains("at least 3 times in 5m"),
        "{}",
        flapping.message
    );
}

async fn removing_a_device_resolves_its_alerts_and_keeps_history(store: &Db) {
    let mut log = Log::new("b1");
    store
        .apply(&[
            log.devices(0, &["a", "b"], &[]),
            log.transition(1, "a", "unknown", "down"),
        ])
        .await
        .unwrap();
    store.apply(&[log.devices(10, &[], &["a"])]).await.unwrap();
    assert!(store.alerts(&open()).await.unwrap().is_empty());
    let all = store
        .alerts(&AlertQuery {
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all[0].resolution.as_deref(), Some("removed"));
    assert_eq!(all[0].resolved_at, Some(t(10)));
    assert_eq!(
        store.transitions("a", 10, None).await.unwrap().len(),
        1,
        "history kept"
    );
    let loaded = store.load().await.unwrap();
    assert!(!loaded.status.contains_key("a"));
}

async fn pruning_deletes_old_history_in_batches(store: &Db) {
    let mut log = Log::new("b1");
    let mut batch = vec![log.devices(0, &["a", "b"], &[])];
    for i in 0..5 {
        batch.push(log.transition(
            i * 10 + 1,
            "a",
            if i % 2 == 0 { "up" } else { "down" },
            if i % 2 == 0 { "down" } else { "up" },
        ));
    }
    batch.push(log.transition(100, "b", "unknown", "down")); // open: never pruned
    store.apply(&batch).await.unwrap();
    let cutoff = t(60);
    assert_eq!(
        store.prune(cutoff, 2).await.unwrap(),
        4,
        "two transitions and two resolved alerts"
    );
    assert_eq!(
        store.prune(cutoff, 100).await.unwrap(),
        3,
        "the rest of the old transitions"
    );
    assert_eq!(store.prune(cutoff, 100).await.unwrap(), 0);
    assert_eq!(store.transitions("a", 10, None).await.unwrap().len(), 0);
    assert_eq!(store.transitions("b", 10, None).await.unwrap().len(), 1);
    assert_eq!(
        store.alerts(&open()).await.unwrap().len(),
        3,
        "open alerts are never pruned"
    );
}

async fn alert_filters_and_paging(store: &Db) {
    let mut log = Log::new("b1");
    store
        .apply(&[
            log.devices(0, &["a", "b", "c"], &[]),
            log.transition(1, "a", "unknown", "down"),
            log.transition(2, "b", "unknown", "down"),
            log.transition(3, "c", "unknown", "down"),
            log.transition(4, "c", "down", "up"),
        ])
        .await
        .unwrap();
    let q = |f: fn(&mut AlertQuery)| {
        let mut q = AlertQuery {
            limit: 100,
            ..AlertQuery::default()
        };
        f(&mut q);
        q
    };
    let names =
        |v: Vec<wardops::store::AlertRow>| v.into_iter().map(|a| a.device).collect::<Vec<_>>();
    assert_eq!(
        names(store.alerts(&q(|_| {})).await.unwrap()),
        ["c", "b", "a"],
        "newest first"
    );
    assert_eq!(
        names(store.alerts(&q(|q| q.active = Some(true))).await.unwrap()),
        ["b", "a"]
    );
    assert_eq!(
        names(store.alerts(&q(|q| q.active = Some(false))).await.unwrap()),
        ["c"]
    );
    assert_eq!(
        names(
            store
                .alerts(&q(|q| q.device = Some("b".into())))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            store
                .alerts(&q(|q| q.severity = Some("warning".into())))
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        names(store.alerts(&q(|q| q.limit = 1)).await.unwrap()),
        ["c"]
    );
    assert_eq!(
        names(store.alerts(&q(|q| q.before = Some(t(3)))).await.unwrap()),
        ["b", "a"]
    );
}

/// `Opened a device_down`, … of each event.
fn summary(events: &[AlertEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{:?} {} {}", e.change, e.alert.device, e.alert.condition))
        .collect()
}

/// What each write reports: exactly the alerts its transaction opened and resolved, in
/// the order of the records that caused them, with the device's scope.
async fn writes_report_the_alerts_they_opened_and_resolved(store: &Db) {
    let mut log = Log::new("b1");
    let batch = [
        log.devices(0, &["a", "b"], &[]),
        log.transition(1, "a", "unknown", "up"),
        log.transition(2, "b", "unknown", "down"),
        log.transition(3, "a", "up", "down"),
        log.transition(4, "a", "down", "up"),
        log.transition(5, "a", "up", "down"),
    ];
    let events = store.apply(&batch).await.unwrap();
    assert_eq!(
        summary(&events),
        [
            "Opened b device_down",
            "Opened a device_down",
            "Resolved a device_down",
            "Opened a device_down",
            "Opened a flapping",
        ]
    );
    let b = &events[0];
    assert_eq!(
        (
            b.alert.opened_at,
            b.alert.resolved_at,
            b.alert.severity.as_str()
        ),
        (t(2), None, "critical")
    );
    let scope = b.scope.as_ref().expect("b has a device row");
    assert_eq!(
        (
            scope.region.as_str(),
            scope.branch.as_str(),
            scope.kind.as_str()
        ),
        ("tbilisi", "tbilisi-b0001", "atm")
    );
    let recovered = &events[2].alert;
    assert_eq!(recovered.id, events[1].alert.id);
    assert_eq!(recovered.resolved_at, Some(t(4)));
    assert_eq!(recovered.resolution.as_deref(), Some("recovered"));
    assert!(
        store.apply(&batch).await.unwrap().is_empty(),
        "a replay opens and resolves nothing, so it reports nothing"
    );

    let removed = store.apply(&[log.devices(10, &[], &["b"])]).await.unwrap();
    assert_eq!(summary(&removed), ["Resolved b device_down"]);
    assert_eq!(removed[0].alert.resolution.as_deref(), Some("removed"));
    assert!(
        removed[0].scope.is_some(),
        "a removed device keeps its scope"
    );

    let calm = store.resolve_stable_flapping(t(5 + 301)).await.unwrap();
    assert_eq!(summary(&calm), ["Resolved a flapping"]);
    assert_eq!(calm[0].alert.resolution.as_deref(), Some("stable"));
    assert_eq!(calm[0].alert.resolved_at, Some(t(5 + 301)));
}

/// What the writer re-reads after a lost COMMIT answer: the open alerts' ids, and each
/// alert as the change it last went through, with its scope.
async fn open_alerts_read_back_as_their_last_change(store: &Db) {
    store.ping().await.unwrap();
    let mut log = Log::new("b1");
    let opened = store
        .apply(&[
            log.devices(0, &["a", "b"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.transition(2, "b", "unknown", "up"),
            log.transition(100, "a", "up", "down"),
            log.transition(101, "b", "up", "down"),
        ])
        .await
        .unwrap();
    let (a, b) = (opened[0].alert.id, opened[1].alert.id);
    let mut ids = store.open_alert_ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, [(a, "a".to_string()), (b, "b".to_string())]);
    store
        .apply(&[log.transition(200, "a", "down", "up")])
        .await
        .unwrap();
    assert_eq!(
        store.open_alert_ids().await.unwrap(),
        [(b, "b".to_string())]
    );
    let events = store.alert_events(&[b, a]).await.unwrap();
    assert_eq!(
        summary(&events),
        ["Resolved a device_down", "Opened b device_down"]
    );
    assert_eq!(events[0].alert.resolved_at, Some(t(200)));
    assert_eq!(
        events[1].scope.as_ref().map(|s| s.region.as_str()),
        Some("tbilisi")
    );
    assert!(store.alert_events(&[]).await.unwrap().is_empty());
}

async fn unreachable_opens_no_alert_and_keeps_down_since(store: &Db) {
    let mut log = Log::new("b1");
    let events = store
        .apply(&[
            log.devices(0, &["a"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.transition(100, "a", "up", "unreachable"),
        ])
        .await
        .unwrap();
    assert!(
        events.is_empty(),
        "no alert for an unreachable device: {events:?}"
    );
    assert!(store.alerts(&open()).await.unwrap().is_empty());
    assert_eq!(
        store.load().await.unwrap().status["a"],
        StoredStatus {
            status: Status::Unreachable,
            down_since: Some(t(95))
        }
    );
    let rows = store.transitions("a", 10, None).await.unwrap();
    assert_eq!(
        (rows[0].to.as_str(), rows[0].down_since),
        ("unreachable", Some(t(95)))
    );
    // Recovering from unreachable resolves nothing (nothing was open) and clears down_since.
    let events = store
        .apply(&[log.transition(200, "a", "unreachable", "up")])
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        store.load().await.unwrap().status["a"],
        StoredStatus {
            status: Status::Up,
            down_since: None
        }
    );
}

async fn unreachable_then_down_opens_the_alert_then_keeping_down_since(store: &Db) {
    let mut log = Log::new("b1");
    store
        .apply(&[
            log.devices(0, &["a"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.transition(100, "a", "up", "unreachable"),
        ])
        .await
        .unwrap();
    // A parent answered while `a` still does not: its outage is its own, from t(95).
    let events = store
        .apply(&[log.transition_since(300, "a", "unreachable", "down", Some(t(95)))])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Opened a device_down"]);
    assert_eq!(
        events[0].alert.opened_at,
        t(300),
        "opened at the transition"
    );
    assert!(
        events[0]
            .alert
            .message
            .contains("since 2027-01-15T08:01:35Z"),
        "the message tells the outage's true start: {}",
        events[0].alert.message
    );
    assert_eq!(
        store.load().await.unwrap().status["a"],
        StoredStatus {
            status: Status::Down,
            down_since: Some(t(95))
        }
    );
    // A later boot without stored state that decides `down` afresh, after `unreachable`,
    // keeps the first down_since too (the store's rule, not the record's).
    let mut second = Log::new("b2");
    store
        .apply(&[
            second.transition_since(400, "a", "unknown", "unreachable", Some(t(390))),
            second.transition_since(500, "a", "unreachable", "down", Some(t(390))),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.load().await.unwrap().status["a"].down_since,
        Some(t(95))
    );
    assert_eq!(
        store.alerts(&open()).await.unwrap().len(),
        1,
        "still one alert"
    );
    let events = store
        .apply(&[second.transition(600, "a", "down", "up")])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Resolved a device_down"]);
}

async fn becoming_unreachable_never_resolves_an_alert(store: &Db) {
    let mut log = Log::new("b1");
    store
        .apply(&[
            log.devices(0, &["a"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.transition(100, "a", "up", "down"),
        ])
        .await
        .unwrap();
    // The next boot knew nothing of `a` and found its parent down first.
    let mut second = Log::new("b2");
    let events = store
        .apply(&[second.transition(500, "a", "unknown", "unreachable")])
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    let alerts = store.alerts(&open()).await.unwrap();
    assert_eq!(alerts.len(), 1, "the alert open before stays open");
    assert_eq!(alerts[0].opened_at, t(100));
    assert_eq!(
        store.load().await.unwrap().status["a"],
        StoredStatus {
            status: Status::Unreachable,
            down_since: Some(t(95))
        },
        "one outage: its first down_since"
    );
    // It answers: the alert resolves as for a down device.
    let events = store
        .apply(&[second.transition(600, "a", "unreachable", "up")])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Resolved a device_down"]);
    assert_eq!(events[0].alert.resolution.as_deref(), Some("recovered"));
    assert!(store.alerts(&open()).await.unwrap().is_empty());
}

/// A device that goes unreachable and back with its parent, again and again, is not
/// flapping (its parent is, and is alerted on); its own flaps still count.
async fn changes_with_a_parent_are_not_flapping(store: &Db) {
    let mut log = Log::new("b1");
    let mut batch = vec![
        log.devices(0, &["a"], &[]),
        log.transition(1, "a", "unknown", "up"),
    ];
    for k in 0..4 {
        batch.push(log.transition(10 + 20 * k, "a", "up", "unreachable"));
        batch.push(log.transition(20 + 20 * k, "a", "unreachable", "up"));
    }
    let events = store.apply(&batch).await.unwrap();
    assert!(events.is_empty(), "{events:?}");
    // And across writes, from what is stored.
    let events = store
        .apply(&[log.transition(100, "a", "up", "unreachable")])
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    // Its own changes: down after unreachable is not a flap, these three are.
    let events = store
        .apply(&[
            log.transition_since(110, "a", "unreachable", "down", Some(t(95))),
            log.transition(120, "a", "down", "up"),
            log.transition(130, "a", "up", "down"),
            log.transition(140, "a", "down", "up"),
        ])
        .await
        .unwrap();
    assert_eq!(
        summary(&events),
        [
            "Opened a device_down",
            "Resolved a device_down",
            "Opened a device_down",
            "Resolved a device_down",
            "Opened a flapping"
        ]
    );
}

async fn a_transition_in_maintenance_is_stored_as_such_and_opens_no_alert(store: &Db) {
    let mut log = Log::new("b1");
    let events = store
        .apply(&[
            log.devices(0, &["a", "b"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.transition(1, "b", "unknown", "up"),
            log.in_maintenance(100, "a", "up", "down", true),
            // Down outside maintenance, for contrast: alerted as always.
            log.transition(100, "b", "up", "down"),
        ])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Opened b device_down"], "{events:?}");
    let rows = store.transitions("a", 10, None).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.to.as_str(), r.in_maintenance))
            .collect::<Vec<_>>(),
        [("down", true), ("up", false)]
    );
    assert!(!store.transitions("b", 10, None).await.unwrap()[0].in_maintenance);
    // The device is down as far as the store knows, with its true down_since.
    assert_eq!(
        store.load().await.unwrap().status["a"],
        StoredStatus {
            status: Status::Down,
            down_since: Some(t(95))
        }
    );
    // A recovery inside the window: nothing to resolve, nothing opened, ever.
    let events = store
        .apply(&[log.in_maintenance(200, "a", "down", "up", false)])
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    let open_alerts = store.alerts(&open()).await.unwrap();
    assert_eq!(
        open_alerts
            .iter()
            .map(|a| a.device.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    // Recovery is never suppressed: b recovers inside a window, its alert is resolved.
    let events = store
        .apply(&[log.in_maintenance(300, "b", "down", "up", false)])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Resolved b device_down"], "{events:?}");
}

async fn a_held_alert_opens_at_the_window_end_with_the_true_start(store: &Db) {
    let mut log = Log::new("b1");
    store
        .apply(&[
            log.devices(0, &["a"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.in_maintenance(100, "a", "up", "down", true),
        ])
        .await
        .unwrap();
    assert!(store.alerts(&open()).await.unwrap().is_empty());
    let events = store
        .apply(&[log.held_alert(3600, "a", t(95))])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Opened a device_down"], "{events:?}");
    assert!(events[0].scope.is_some(), "{events:?}");
    let alert = &store.alerts(&open()).await.unwrap()[0];
    assert_eq!(alert.opened_at, t(3600));
    assert_eq!(alert.severity, "critical");
    assert!(
        alert
            .message
            .contains(&t(95).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "down_since is the true start: {}",
        alert.message
    );
    // A second release of the same outage (a restart, a reload) is harmless.
    let events = store
        .apply(&[log.held_alert(3700, "a", t(95))])
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(store.alerts(&open()).await.unwrap().len(), 1);
    // It resolves as any other.
    let events = store
        .apply(&[log.transition(4000, "a", "down", "up")])
        .await
        .unwrap();
    assert_eq!(summary(&events), ["Resolved a device_down"], "{events:?}");
}

async fn changes_in_maintenance_open_no_flapping_alert(store: &Db) {
    let mut log = Log::new("b1");
    let mut records = vec![
        log.devices(0, &["a"], &[]),
        log.transition(1, "a", "unknown", "up"),
    ];
    for i in 0..6 {
        let (from, to) = if i % 2 == 0 {
            ("up", "down")
        } else {
            ("down", "up")
        };
        records.push(log.in_maintenance(10 + i * 10, "a", from, to, to == "down"));
    }
    let events = store.apply(&records).await.unwrap();
    assert!(events.is_empty(), "planned work flaps: {events:?}");
    // Outside the window only the changes made there count: the third one is flapping.
    let events = store
        .apply(&[
            log.transition(100, "a", "up", "down"),
            log.transition(110, "a", "down", "up"),
        ])
        .await
        .unwrap();
    assert_eq!(
        summary(&events),
        ["Opened a device_down", "Resolved a device_down"],
        "the window's six changes are not counted"
    );
    let events = store
        .apply(&[log.transition(120, "a", "up", "down")])
        .await
        .unwrap();
    assert_eq!(
        summary(&events),
        ["Opened a device_down", "Opened a flapping"]
    );
}

/// A silence (issue #15) as an operator made it, on device `a`.
fn silence(id: &str, start: i64, end: i64) -> Silence {
    Silence {
        id: id.into(),
        matchers: Matchers {
            device: Some("a".into()),
            ..Matchers::default()
        },
        starts_at: t(start),
        ends_at: t(end),
        comment: "router swap".into(),
        created_by: "oscar".into(),
        created_at: t(start),
        expired_at: None,
        expired_by: None,
    }
}

async fn silences_are_kept_until_ended_and_pruned_once_ended_long_ago(store: &Db) {
    let mut log = Log::new("b1");
    let made = [
        log.next(t(10), RecordKind::Silence(silence("s1", 10, 1000))),
        log.next(t(10), RecordKind::Silence(silence("s2", 10, 2000))),
    ];
    store.apply(&made).await.unwrap();
    store.apply(&made).await.unwrap();
    let mut loaded = store.load().await.unwrap().silences;
    loaded.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(loaded, [silence("s1", 10, 1000), silence("s2", 10, 2000)]);

    // Ended early: not loaded again (it covers nothing), kept as history until pruned.
    let ended = log.next(
        t(20),
        RecordKind::SilenceExpired {
            id: "s1".into(),
            by: "nino".into(),
        },
    );
    store.apply(std::slice::from_ref(&ended)).await.unwrap();
    let loaded = store.load().await.unwrap().silences;
    assert_eq!(loaded, [silence("s2", 10, 2000)]);
    assert_eq!(store.prune(t(15), 100).await.unwrap(), 0, "ended after 15");
    assert_eq!(store.prune(t(30), 100).await.unwrap(), 1, "s1 ended at 20");
    assert_eq!(store.prune(t(1500), 100).await.unwrap(), 0, "s2 goes on");
    assert_eq!(store.load().await.unwrap().silences.len(), 1);
}

on_both_backends!(
    rules: super::rules();
    migrations_are_idempotent,
    devices_are_upserted_and_removed,
    an_outage_opens_and_recovery_resolves_one_alert,
    replaying_records_is_a_no_op,
    a_restart_that_re_decides_an_outage_keeps_it,
    flapping_opens_once_and_clears_when_stable,
    removing_a_device_resolves_its_alerts_and_keeps_history,
    pruning_deletes_old_history_in_batches,
    alert_filters_and_paging,
    writes_report_the_alerts_they_opened_and_resolved,
    open_alerts_read_back_as_their_last_change,
    unreachable_opens_no_alert_and_keeps_down_since,
    unreachable_then_down_opens_the_alert_then_keeping_down_since,
    becoming_unreachable_never_resolves_an_alert,
    changes_with_a_parent_are_not_flapping,
    a_transition_in_maintenance_is_stored_as_such_and_opens_no_alert,
    a_held_alert_opens_at_the_window_end_with_the_true_start,
    changes_in_maintenance_open_no_flapping_alert,
    silences_are_kept_until_ended_and_pruned_once_ended_long_ago,
);

#[tokio::test]
async fn postgres_runbook_query_works() {
    let db = pgdb::TestDb::create("runbook");
    let store = Db::open(&db.url(), Path::new("."), rules()).unwrap();
    store.migrate().await.unwrap();
    let mut log = Log::new("b1");
    store
        .apply(&[
            log.devices(0, &["a", "b"], &[]),
            log.transition(10, "a", "unknown", "down"),
        ])
        .await
        .unwrap();
    let out = db.query("SET TIME ZONE 'UTC'; SELECT name, ip, down_since FROM standalone_devices WHERE down_since IS NOT NULL");
    assert_eq!(
        out.lines().last(),
        Some("a|127.77.0.1|2027-01-15 08:00:05.123456+00")
    );
    let tables = db.query("SELECT count(*) FROM information_schema.columns WHERE data_type = 'timestamp without time zone' AND table_schema = 'public'");
    assert_eq!(tables.trim(), "0", "every timestamp is timestamptz");
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = Db::open("sqlite://w.db", dir.path(), rules()).unwrap();
    store.migrate().await.unwrap();
    let Db::Sqlite(s) = &store else {
        unreachable!()
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

/// Migration 0002 on a database that 0001 created and the appliance has written to: every
/// row is kept, the new checks admit the new values and still refuse others, and the
/// store works on (SQLite rebuilds two tables for it, so this is its real test).
async fn upgrading_from_0001_keeps_every_row(store: &Db) {
    let backend = store.backend();
    let mut first = sqlx::migrate::Migrator::new(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend),
    )
    .await
    .unwrap();
    let only_0001: Vec<_> = first
        .migrations
        .iter()
        .filter(|m| m.version == 1)
        .cloned()
        .collect();
    assert_eq!(only_0001.len(), 1);
    first.migrations = only_0001.into();
    let exec = async |q: &'static str| -> Result<(), sqlx::Error> {
        match store {
            Db::Postgres(p) => sqlx::query(q).execute(p.pool()).await.map(|_| ()),
            Db::Sqlite(s) => sqlx::query(q).execute(s.pool()).await.map(|_| ()),
        }
    };
    match store {
        Db::Postgres(p) => first.run(p.pool()).await.unwrap(),
        Db::Sqlite(s) => first.run(s.pool()).await.unwrap(),
    }
    // Rows as the appliance wrote them with the 0001 schema. Today's writer and reader
    // also use `transitions.in_maintenance` (0002), so the column is lent for these
    // writes and reads and taken back before migrating, leaving 0001's tables and rows.
    let lend = match store {
        Db::Postgres(_) => {
            "ALTER TABLE transitions ADD COLUMN in_maintenance boolean NOT NULL DEFAULT false"
        }
        Db::Sqlite(_) => {
            "ALTER TABLE transitions ADD COLUMN in_maintenance INTEGER NOT NULL DEFAULT 0"
        }
    };
    exec(lend).await.unwrap();
    // Likewise the notification outbox (0003), which every write with an alert change
    // fills: lent as a bare table, dropped before migrating.
    exec(match store {
        Db::Postgres(_) => {
            "CREATE TABLE notify_outbox (id bigserial PRIMARY KEY, alert_id bigint, change text, \
             at timestamptz, down_since timestamptz)"
        }
        Db::Sqlite(_) => {
            "CREATE TABLE notify_outbox (id INTEGER PRIMARY KEY, alert_id INTEGER, change TEXT, \
             at INTEGER, down_since INTEGER)"
        }
    })
    .await
    .unwrap();
    // And the acknowledgement's comment (0004), which every alert read returns.
    exec("ALTER TABLE alerts ADD COLUMN acknowledged_comment text")
        .await
        .unwrap();
    // And the silences (0005), which start-up loads.
    exec(match store {
        Db::Postgres(_) => {
            "CREATE TABLE silences (id text, region text, branch text, device text, kind text, \
             starts_at timestamptz, ends_at timestamptz, comment text, created_by text, \
             created_at timestamptz, expired_at timestamptz, expired_by text)"
        }
        Db::Sqlite(_) => {
            "CREATE TABLE silences (id TEXT, region TEXT, branch TEXT, device TEXT, kind TEXT, \
             starts_at INTEGER, ends_at INTEGER, comment TEXT, created_by TEXT, \
             created_at INTEGER, expired_at INTEGER, expired_by TEXT)"
        }
    })
    .await
    .unwrap();
    // And the spans of presence (0006), which every inventory change writes.
    exec(match store {
        Db::Postgres(_) => {
            "CREATE TABLE device_presence (device text, added_at timestamptz, \
             removed_at timestamptz, UNIQUE (device, added_at))"
        }
        Db::Sqlite(_) => {
            "CREATE TABLE device_presence (device TEXT, added_at INTEGER, removed_at INTEGER, \
             UNIQUE (device, added_at))"
        }
    })
    .await
    .unwrap();
    let mut log = Log::new("b1");
    store
        .apply(&[
            log.devices(0, &["a", "b", "c"], &[]),
            log.transition(1, "a", "unknown", "up"),
            log.transition(1, "b", "unknown", "up"),
            log.transition(1, "c", "unknown", "up"),
            log.transition(100, "a", "up", "down"),
            log.transition(101, "b", "up", "down"),
            log.transition(200, "b", "down", "up"),
            log.transition(300, "c", "up", "down"),
        ])
        .await
        .unwrap();
    // The newest alert (c's) is gone, as pruning leaves it: its id must not come back.
    let before = store
        .alerts(&AlertQuery {
            limit: 100,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    let newest = before.iter().map(|a| a.id).max().unwrap();
    exec("DELETE FROM alerts WHERE id = (SELECT max(id) FROM alerts)")
        .await
        .unwrap();
    let kept_alerts: Vec<_> = before.into_iter().filter(|a| a.id != newest).collect();
    let loaded = store.load().await.unwrap();
    let history = store.transitions("b", 10, None).await.unwrap();
    exec("ALTER TABLE transitions DROP COLUMN in_maintenance")
        .await
        .unwrap();
    exec("DROP TABLE notify_outbox").await.unwrap();
    exec("DROP TABLE silences").await.unwrap();
    exec("DROP TABLE device_presence").await.unwrap();
    exec("ALTER TABLE alerts DROP COLUMN acknowledged_comment")
        .await
        .unwrap();

    store.migrate().await.unwrap();

    let after = store.load().await.unwrap();
    assert_eq!(after.status, loaded.status, "{backend}: device_state kept");
    let mut names: Vec<_> = after.devices.iter().map(|d| d.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    let mut alerts = store
        .alerts(&AlertQuery {
            limit: 100,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    alerts.sort_by_key(|a| a.id);
    let mut kept = kept_alerts.clone();
    kept.sort_by_key(|a| a.id);
    assert_eq!(alerts, kept, "{backend}: alerts kept with their ids");
    assert_eq!(store.transitions("b", 10, None).await.unwrap(), history);
    // 0006 made each device's stay in the inventory a span of presence, from the time it
    // was first seen: reports count from there.
    let report = store.report_data(t(-10), t(1000)).await.unwrap();
    let spans: Vec<_> = report
        .presence
        .iter()
        .map(|p| (p.device.as_str(), p.added_at, p.removed_at))
        .collect();
    assert_eq!(
        spans,
        [("a", t(0), None), ("b", t(0), None), ("c", t(0), None)]
    );
    // The one-open-alert index was rebuilt: a second open device_down for `a` is refused.
    let dup = exec(
        "INSERT INTO alerts (device, condition, severity, message, opened_at) \
         SELECT device, condition, severity, message, opened_at FROM alerts \
         WHERE device = 'a' AND resolved_at IS NULL",
    )
    .await;
    assert!(dup.is_err(), "{backend}: alerts_one_open still holds");
    let bad = exec("UPDATE device_state SET status = 'sideways'").await;
    assert!(
        bad.is_err(),
        "{backend}: the status check still refuses others"
    );
    exec("UPDATE transitions SET in_maintenance = true WHERE device = 'c'")
        .await
        .unwrap();
    let bad = exec("UPDATE alerts SET condition = 'sideways'").await;
    assert!(
        bad.is_err(),
        "{backend}: the condition check still refuses others"
    );
    exec("UPDATE alerts SET condition = 'degraded' WHERE device = 'b'")
        .await
        .unwrap();

    // The store goes on: `c` becomes unreachable, then down again with a new alert.
    store
        .apply(&[
            log.transition(400, "c", "down", "up"),
            log.transition(500, "c", "up", "unreachable"),
            log.transition_since(600, "c", "unreachable", "down", Some(t(495))),
        ])
        .await
        .unwrap();
    let open_alerts = store.alerts(&open()).await.unwrap();
    let c = open_alerts.iter().find(|a| a.device == "c").unwrap();
    assert!(c.id > newest, "{backend}: id {} reused (≤ {newest})", c.id);
    assert_eq!(
        store.load().await.unwrap().status["c"],
        StoredStatus {
            status: Status::Down,
            down_since: Some(t(495))
        }
    );
    store.migrate().await.unwrap();
}

#[tokio::test]
async fn postgres_upgrading_from_0001_keeps_every_row() {
    let db = pgdb::TestDb::create("upgrade");
    let store = Db::open(&db.url(), Path::new("."), rules()).unwrap();
    upgrading_from_0001_keeps_every_row(&store).await;
    // The runbook view still reads an unreachable device's down_since.
    db.query("UPDATE device_state SET status = 'unreachable' WHERE device = 'c'");
    let out = db.query(
        "SELECT name, status FROM standalone_devices WHERE down_since IS NOT NULL ORDER BY name",
    );
    assert_eq!(out.trim(), "a|down\nc|unreachable");
}

#[tokio::test]
async fn sqlite_upgrading_from_0001_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Db::open("sqlite://u.db", dir.path(), rules()).unwrap();
    upgrading_from_0001_keeps_every_row(&store).await;
    let Db::Sqlite(s) = &store else {
        unreachable!()
    };
    sqlx::query("UPDATE device_state SET status = 'unreachable' WHERE device = 'c'")
        .execute(s.pool())
        .await
        .unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, status FROM standalone_devices WHERE down_since IS NOT NULL ORDER BY name",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    let rows: Vec<_> = rows.iter().map(|(n, s)| format!("{n}|{s}")).collect();
    assert_eq!(rows, ["a|down", "c|unreachable"]);
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let fk: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(s.pool())
        .await
        .unwrap();
    assert!(fk.is_empty());
}
