//! The notification side of the store (`NotifyStore`), one contract for both backends:
//! every test runs against a fresh PostgreSQL database of its own and a fresh SQLite file.

mod pgdb;

use chrono::{DateTime, Utc};
use wardops::store::notify::{Attempt, NewMessage, NotifyStore};
use wardops::store::{Db, DeviceRow, Record, RecordKind, Store};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn devices(names: &[&str]) -> Record {
    Record {
        boot: "b".into(),
        stamp: None,
        seq: 1,
        at: t(0),
        kind: RecordKind::Devices {
            upsert: names
                .iter()
                .map(|n| DeviceRow {
                    name: n.to_string(),
                    address: "127.78.0.1".into(),
                    region: "east".into(),
                    branch: "e-01".into(),
                    kind: "atm".into(),
                })
                .collect(),
            removed: vec![],
        },
    }
}

fn transition(seq: u64, at: i64, device: &str, from: &str, to: &str) -> Record {
    Record {
        boot: "b".into(),
        stamp: None,
        seq,
        at: t(at),
        kind: RecordKind::Transition {
            device: device.into(),
            address: "127.78.0.1".into(),
            from: from.into(),
            to: to.into(),
            down_since: (to == "down").then(|| t(at - 3)),
            version: seq,
            in_maintenance: false,
            alert_held: false,
        },
    }
}

fn message(at: i64, outbox: &[i64]) -> NewMessage {
    NewMessage {
        created_at: t(at),
        since: t(at - 1),
        outbox_ids: outbox.to_vec(),
        notices: outbox.len() as i32,
        body: format!("{{\"outbox\":{outbox:?}}}"),
    }
}

async fn every_alert_change_writes_one_outbox_row_in_its_transaction(store: &Db) {
    store.apply(&[devices(&["a", "b"])]).await.unwrap();
    store
        .apply(&[
            transition(2, 10, "a", "up", "down"),
            transition(3, 11, "b", "up", "down"),
        ])
        .await
        .unwrap();
    // A replay of committed records writes nothing again.
    store
        .apply(&[transition(2, 10, "a", "up", "down")])
        .await
        .unwrap();
    store
        .apply(&[transition(4, 20, "a", "down", "up")])
        .await
        .unwrap();
    let rows = store.outbox_after(0, 100).await.unwrap();
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.alert.device.as_str(),
                r.change.as_str(),
                r.at,
                r.down_since,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("a", "opened", t(10), Some(t(7))),
            ("b", "opened", t(11), Some(t(8))),
            // A resolution carries the outage's start from the opening row.
            ("a", "resolved", t(20), Some(t(7))),
        ]
    );
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "in order");
    let scope = rows[0].scope.as_ref().unwrap();
    assert_eq!(
        (scope.region.as_str(), scope.branch.as_str()),
        ("east", "e-01")
    );
    assert_eq!(rows[0].address.as_deref(), Some("127.78.0.1"));
    assert_eq!(store.outbox_last().await.unwrap(), rows[2].id);
    let after = store.outbox_after(rows[0].id, 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, rows[1].id);
    // Only b's alert is open: it reads back as its opening row.
    let open = store.outbox_open().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].id, open[0].alert.device.as_str()),
        (rows[1].id, "b")
    );
}

async fn messages_are_stored_with_the_cursor_and_delivered_in_order(store: &Db) {
    assert_eq!(store.cursor("hook").await.unwrap(), None);
    assert_eq!(store.init_cursor("hook", 5).await.unwrap(), 5);
    // Only the first time: a restart keeps the cursor it had.
    assert_eq!(store.init_cursor("hook", 9).await.unwrap(), 5);
    let ids = store
        .enqueue("hook", 7, &[message(1, &[6, 8]), message(2, &[9])])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
    assert_eq!(store.cursor("hook").await.unwrap(), Some(7));
    // The cursor never goes back.
    store.enqueue("hook", 6, &[]).await.unwrap();
    assert_eq!(store.cursor("hook").await.unwrap(), Some(7));
    assert_eq!(store.claimed("hook", 7).await.unwrap(), [8, 9]);
    assert_eq!(store.claimed("other", 0).await.unwrap(), Vec::<i64>::new());
    let pending = store.pending("hook", 10).await.unwrap();
    assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert_eq!(pending[0].body, "{\"outbox\":[6, 8]}");
    assert_eq!((pending[0].created_at, pending[0].since), (t(1), t(0)));
    assert_eq!(
        store.pending_counts().await.unwrap(),
        [("hook".to_string(), 2)]
    );
    store
        .attempted(ids[0], t(3), &Attempt::Retry("connection refused".into()))
        .await
        .unwrap();
    let pending = store.pending("hook", 10).await.unwrap();
    assert_eq!((pending[0].id, pending[0].attempts), (ids[0], 1));
    store.delivered(&[ids[0]], t(4)).await.unwrap();
    store
        .attempted(ids[1], t(5), &Attempt::Failed("410 Gone".into()))
        .await
        .unwrap();
    assert!(store.pending("hook", 10).await.unwrap().is_empty());
    let recent = store.messages(Some("hook"), 10).await.unwrap();
    let seen: Vec<_> = recent
        .iter()
        .map(|m| (m.id, m.status.as_str(), m.attempts, m.last_error.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (ids[1], "failed", 1, Some("410 Gone")),
            (ids[0], "delivered", 2, None),
        ]
    );
    assert_eq!(recent[1].done_at, Some(t(4)));
    assert!(store.messages(Some("nobody"), 10).await.unwrap().is_empty());
}

async fn old_messages_are_summarised_in_one_transaction(store: &Db) {
    store.init_cursor("hook", 0).await.unwrap();
    let old = store
        .enqueue(
            "hook",
            3,
            &[message(1, &[1]), message(2, &[2]), message(3, &[3])],
        )
        .await
        .unwrap();
    let summary = store
        .summarise("hook", &old[..2], &[message(10, &[1, 2])])
        .await
        .unwrap();
    let pending: Vec<i64> = store
        .pending("hook", 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    // The summary comes after the message that was not old, as its id says.
    assert_eq!(pending, [old[2], summary[0]]);
    let statuses: Vec<String> = store
        .messages(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.status)
        .collect();
    assert_eq!(statuses, ["pending", "pending", "summarised", "summarised"]);
}

async fn pruning_removes_old_outbox_rows_and_finished_messages(store: &Db) {
    store.apply(&[devices(&["a"])]).await.unwrap();
    store
        .apply(&[transition(2, 10, "a", "up", "down")])
        .await
        .unwrap();
    let ids = store
        .enqueue("hook", 1, &[message(1, &[1]), message(2, &[1])])
        .await
        .unwrap();
    store
        .attempted(ids[0], t(3), &Attempt::Delivered)
        .await
        .unwrap();
    store.prune(t(1_000), 100).await.unwrap();
    assert!(store.outbox_after(0, 10).await.unwrap().is_empty());
    let left: Vec<i64> = store
        .messages(None, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, [ids[1]], "a pending message is never pruned");
}

async fn suppressed_alerts_write_no_outbox_row_and_a_held_one_does_at_its_opening(store: &Db) {
    store.apply(&[devices(&["gw", "atm"])]).await.unwrap();
    let mut unreachable = transition(2, 10, "atm", "up", "unreachable");
    let mut held = transition(3, 10, "gw", "up", "down");
    if let RecordKind::Transition {
        in_maintenance,
        alert_held,
        ..
    } = &mut held.kind
    {
        *in_maintenance = true;
        *alert_held = true;
    }
    if let RecordKind::Transition { down_since, .. } = &mut unreachable.kind {
        *down_since = Some(t(7));
    }
    store.apply(&[unreachable, held]).await.unwrap();
    assert!(
        store.outbox_after(0, 10).await.unwrap().is_empty(),
        "an unreachable device and a held alert tell nobody"
    );
    // The window ends with the gateway still down: its alert opens, and is told of, with
    // the outage's true start.
    let end = Record {
        boot: "b".into(),
        stamp: None,
        seq: 4,
        at: t(600),
        kind: RecordKind::HeldAlert {
            device: "gw".into(),
            address: "127.78.0.1".into(),
            down_since: Some(t(7)),
        },
    };
    store.apply(&[end]).await.unwrap();
    let rows = store.outbox_after(0, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].alert.device.as_str(),
            rows[0].change.as_str(),
            rows[0].at,
            rows[0].down_since
        ),
        ("gw", "opened", t(600), Some(t(7)))
    );
}

on_both_backends!(
    rules: wardops::store::AlertRules::default();
    every_alert_change_writes_one_outbox_row_in_its_transaction,
    messages_are_stored_with_the_cursor_and_delivered_in_order,
    old_messages_are_summarised_in_one_transaction,
    pruning_removes_old_outbox_rows_and_finished_messages,
    suppressed_alerts_write_no_outbox_row_and_a_held_one_does_at_its_opening,
);
