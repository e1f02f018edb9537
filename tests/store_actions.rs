//! The store contract for what users do (acknowledgements and the audit log), run like
//! `store_contract.rs` against a fresh PostgreSQL database of its own and a fresh SQLite
//! file: an acknowledgement sticks to an open alert only, is reported as an `Updated`
//! change, writes no notification, and ends with its alert; audit entries page newest
//! first and are pruned by the retention.

mod pgdb;

use std::time::Duration;

use chrono::{DateTime, Utc};
use wardops::store::{
    AlertChange, AlertQuery, AlertRules, AuditEntry, AuditQuery, Db, DeviceRow, NotifyStore,
    Record, RecordKind, Store,
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

struct Log {
    seq: u64,
}

impl Log {
    fn next(&mut self, at: i64, kind: RecordKind) -> Record {
        self.seq += 1;
        Record {
            boot: "b1".into(),
            stamp: None,
            seq: self.seq,
            at: t(at),
            kind,
        }
    }

    fn devices(&mut self, at: i64, names: &[&str]) -> Record {
        let upsert = names
            .iter()
            .map(|n| DeviceRow {
                name: n.to_string(),
                address: "127.78.0.1".into(),
                region: "tbilisi".into(),
                branch: "tbilisi-b0001".into(),
                kind: "atm".into(),
            })
            .collect();
        self.next(
            at,
            RecordKind::Devices {
                upsert,
                removed: vec![],
            },
        )
    }

    fn transition(&mut self, at: i64, name: &str, from: &str, to: &str) -> Record {
        let kind = RecordKind::Transition {
            device: name.into(),
            address: "127.78.0.1".into(),
            from: from.into(),
            to: to.into(),
            down_since: (to == "down").then(|| t(at - 5)),
            version: self.seq + 1,
            in_maintenance: false,
            alert_held: false,
        };
        self.next(at, kind)
    }

    fn ack(&mut self, at: i64, alert: i64, by: &str, comment: &str) -> Record {
        let kind = RecordKind::Acknowledge {
            alert,
            by: by.into(),
            comment: comment.into(),
        };
        self.next(at, kind)
    }

    fn unack(&mut self, at: i64, alert: i64) -> Record {
        let kind = RecordKind::Unacknowledge {
            alert,
            by: "ana".into(),
        };
        self.next(at, kind)
    }

    fn audit(&mut self, at: i64, user: &str, action: &str, target: &str) -> Record {
        self.next(
            at,
            RecordKind::Audit(AuditEntry {
                user: user.into(),
                via: "session".into(),
                address: "127.0.0.1".into(),
                action: action.into(),
                target: target.into(),
                detail: format!("{action} {target}"),
            }),
        )
    }
}

fn all() -> AlertQuery {
    AlertQuery {
        limit: 100,
        ..AlertQuery::default()
    }
}

/// The open `device_down` alert of `a`, opened by the log's first writes.
async fn one_open_alert(store: &Db, log: &mut Log) -> i64 {
    let events = store
        .apply(&[
            log.devices(0, &["a", "b"]),
            log.transition(10, "a", "unknown", "down"),
        ])
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    events[0].alert.id
}

async fn an_acknowledgement_sticks_to_its_open_alert(store: &Db) {
    let mut log = Log { seq: 0 };
    let id = one_open_alert(store, &mut log).await;
    let outbox_before = store.outbox_last().await.unwrap();
    let events = store
        .apply(&[log.ack(20, id, "ana", "line cut, ISP ticket 42 <b>")])
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.change, AlertChange::Updated);
    assert_eq!(e.alert.id, id);
    assert_eq!(e.alert.acknowledged_by.as_deref(), Some("ana"));
    assert_eq!(e.alert.acknowledged_at, Some(t(20)));
    assert_eq!(
        e.alert.acknowledged_comment.as_deref(),
        Some("line cut, ISP ticket 42 <b>")
    );
    assert!(e.scope.is_some(), "carries its device's scope for the feed");
    assert_eq!(
        store.outbox_last().await.unwrap(),
        outbox_before,
        "an acknowledgement is no notification"
    );
    let rows = store.alerts(&all()).await.unwrap();
    assert_eq!(rows[0].acknowledged_by.as_deref(), Some("ana"));
    // Read back as the writer re-reads it, and as the notification engine does.
    let read = store.alert_events(&[id]).await.unwrap();
    assert_eq!(read[0].alert.acknowledged_at, Some(t(20)));
    let open = store.outbox_open().await.unwrap();
    assert_eq!(open[0].alert.acknowledged_by.as_deref(), Some("ana"));

    // A second acknowledgement replaces the first; an empty comment is none.
    let events = store.apply(&[log.ack(30, id, "ben", "")]).await.unwrap();
    assert_eq!(events[0].alert.acknowledged_by.as_deref(), Some("ben"));
    assert_eq!(events[0].alert.acknowledged_comment, None);

    // Taken back: all three cleared; taking it back again does nothing.
    let events = store.apply(&[log.unack(40, id)]).await.unwrap();
    assert_eq!(events[0].change, AlertChange::Updated);
    assert_eq!(
        (
            &events[0].alert.acknowledged_at,
            &events[0].alert.acknowledged_by,
            &events[0].alert.acknowledged_comment
        ),
        (&None, &None, &None)
    );
    assert!(store.apply(&[log.unack(41, id)]).await.unwrap().is_empty());
}

async fn an_acknowledgement_of_a_resolved_or_unknown_alert_never_sticks(store: &Db) {
    let mut log = Log { seq: 0 };
    let id = one_open_alert(store, &mut log).await;
    // Resolved in the same batch, before the acknowledgement is applied: the recovery wins.
    let events = store
        .apply(&[
            log.transition(20, "a", "down", "up"),
            log.ack(21, id, "ana", "on it"),
            log.ack(22, 999_999, "ana", "no such alert"),
        ])
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "only the resolution: {events:?}");
    assert_eq!(events[0].change, AlertChange::Resolved);
    let rows = store.alerts(&all()).await.unwrap();
    assert_eq!(rows[0].acknowledged_at, None);
    assert!(
        store.apply(&[log.unack(23, id)]).await.unwrap().is_empty(),
        "nor is a resolved alert un-acknowledged"
    );
    // A re-opened outage is a new alert, not acknowledged.
    let events = store
        .apply(&[log.transition(30, "a", "up", "down")])
        .await
        .unwrap();
    let reopened = &events[0].alert;
    assert_ne!(reopened.id, id);
    assert_eq!(reopened.acknowledged_at, None);
    // Acknowledged while open, then resolved: the resolution carries who acknowledged it.
    store
        .apply(&[log.ack(31, reopened.id, "ana", "")])
        .await
        .unwrap();
    let events = store
        .apply(&[log.transition(40, "a", "down", "up")])
        .await
        .unwrap();
    assert_eq!(events[0].change, AlertChange::Resolved);
    assert_eq!(events[0].alert.acknowledged_by.as_deref(), Some("ana"));
}

async fn an_acknowledgement_replayed_is_a_no_op(store: &Db) {
    let mut log = Log { seq: 0 };
    let id = one_open_alert(store, &mut log).await;
    let ack = log.ack(20, id, "ana", "x");
    assert_eq!(
        store.apply(std::slice::from_ref(&ack)).await.unwrap().len(),
        1
    );
    let unack = log.unack(30, id);
    store.apply(&[unack]).await.unwrap();
    assert!(
        store.apply(&[ack]).await.unwrap().is_empty(),
        "skipped by (boot, seq): the un-acknowledgement after it stays"
    );
    assert_eq!(store.alerts(&all()).await.unwrap()[0].acknowledged_at, None);
}

async fn audit_entries_page_newest_first_and_filter(store: &Db) {
    let mut log = Log { seq: 0 };
    let mut batch = vec![];
    for i in 0..5 {
        let user = if i % 2 == 0 { "ana" } else { "ben" };
        batch.push(log.audit(i * 10, user, "ack", &format!("alert {i}")));
    }
    // Two at the same instant: the cursor's id tells them apart.
    batch.push(log.audit(40, "ana", "reload", "inventory"));
    store.apply(&batch).await.unwrap();
    let page = |user: Option<&str>, action: Option<&str>, limit, before| AuditQuery {
        user: user.map(Into::into),
        action: action.map(Into::into),
        limit,
        before,
    };
    let rows = store.audit(&page(None, None, 100, None)).await.unwrap();
    let targets: Vec<_> = rows.iter().map(|r| r.entry.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "inventory",
            "alert 4",
            "alert 3",
            "alert 2",
            "alert 1",
            "alert 0"
        ]
    );
    assert_eq!(rows[0].at, t(40));
    assert_eq!(rows[0].entry.via, "session");
    assert_eq!(rows[0].entry.detail, "reload inventory");
    // Paging by (at, id): the two at t(40) are split across pages, none lost or repeated.
    let first = store.audit(&page(None, None, 1, None)).await.unwrap();
    let rest = store
        .audit(&page(None, None, 100, Some((first[0].at, first[0].id))))
        .await
        .unwrap();
    assert_eq!(rest.len(), 5);
    assert_eq!(rest[0].entry.target, "alert 4");
    let ana = store
        .audit(&page(Some("ana"), None, 100, None))
        .await
        .unwrap();
    assert_eq!(ana.len(), 4);
    let acks_of_ana = store
        .audit(&page(Some("ana"), Some("ack"), 100, None))
        .await
        .unwrap();
    assert_eq!(acks_of_ana.len(), 3);
    assert!(
        store
            .audit(&page(Some("nobody"), None, 100, None))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn audit_entries_are_pruned_by_the_retention(store: &Db) {
    let mut log = Log { seq: 0 };
    let batch: Vec<_> = (0..5)
        .map(|i| log.audit(i * 10, "ana", "ack", &format!("alert {i}")))
        .collect();
    store.apply(&batch).await.unwrap();
    assert_eq!(store.prune(t(25), 2).await.unwrap(), 2, "in batches");
    assert_eq!(store.prune(t(25), 100).await.unwrap(), 1);
    assert_eq!(store.prune(t(25), 100).await.unwrap(), 0);
    let q = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    let left: Vec<_> = store
        .audit(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry.target)
        .collect();
    assert_eq!(left, ["alert 4", "alert 3"]);
}

on_both_backends!(
    rules: super::rules();
    an_acknowledgement_sticks_to_its_open_alert,
    an_acknowledgement_of_a_resolved_or_unknown_alert_never_sticks,
    an_acknowledgement_replayed_is_a_no_op,
    audit_entries_page_newest_first_and_filter,
    audit_entries_are_pruned_by_the_retention,
);
