//! An acknowledgement and its audit entry made while PostgreSQL is away (a TCP proxy of
//! the test's own, cut): they are spooled, not lost, and applied in order once the
//! database is back — reported to the feed then, remembered for device JSON — while an
//! acknowledgement of an alert that resolved during the outage, before it was applied,
//! does not stick.

mod feeding;
mod pgdb;

use std::time::Duration;

use feeding::{flip, wait_until};
use pgdb::proxy::Proxy;
use wardops::store::startup::{Limits, SPOOL_FILE};
use wardops::store::{Actions, AlertChange, AuditEntry, RecordKind};

fn audit(target: &str) -> RecordKind {
    RecordKind::Audit(AuditEntry {
        user: "ana".into(),
        via: "session".into(),
        address: "127.0.0.1".into(),
        action: "ack".into(),
        target: target.into(),
        detail: "during the outage".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_made_while_the_database_is_away_are_spooled_and_applied() {
    let db = pgdb::TestDb::create("ack_outage");
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();
    let config = feeding::inventory(dir.path(), 4);
    let (started, state) = feeding::store(
        db.url_via(proxy.addr),
        &config,
        dir.path(),
        Limits::default(),
    )
    .await;
    let health = started.health.clone();
    let actions = Actions::new(started.sink.clone());
    for i in 0..4 {
        flip(&state, i, true);
    }
    flip(&state, 0, false);
    flip(&state, 1, false);
    wait_until("two open alerts", Duration::from_secs(10), || {
        db.query("SELECT count(*) FROM alerts WHERE resolved_at IS NULL")
            .trim()
            == "2"
    })
    .await;
    let names: Vec<String> = (0..2)
        .map(|i| config.inventory.devices[i].name.to_string())
        .collect();
    let ids: Vec<i64> = names
        .iter()
        .map(|n| {
            db.query(&format!("SELECT id FROM alerts WHERE device = '{n}'"))
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    let mut reports = health.subscribe_alerts();

    proxy.cut();
    let at = chrono::Utc::now();
    let ack = |id| RecordKind::Acknowledge {
        alert: id,
        by: "ana".into(),
        comment: "spooled".into(),
    };
    actions.send(at, ack(ids[0])).unwrap();
    actions
        .send(at, audit(&format!("alert {}", ids[0])))
        .unwrap();
    // Device 1 recovers before its acknowledgement reaches the database: it never sticks.
    flip(&state, 1, true);
    actions.send(chrono::Utc::now(), ack(ids[1])).unwrap();
    wait_until(
        "the store to report degraded",
        Duration::from_secs(20),
        || health.is_degraded(),
    )
    .await;
    wait_until("the writes to be spooled", Duration::from_secs(10), || {
        health.pending.get() >= 4
    })
    .await;
    let spool = std::fs::read_to_string(dir.path().join(SPOOL_FILE)).unwrap();
    assert!(
        spool.contains(r#""type":"acknowledge""#) && spool.contains(r#""type":"audit""#),
        "on disk: {spool}"
    );

    proxy.restore();
    wait_until("the spool to drain", Duration::from_secs(30), || {
        health.pending.get() == 0 && !health.is_degraded()
    })
    .await;
    let row = |id: i64| {
        db.query(&format!(
            "SELECT acknowledged_by, acknowledged_comment, resolved_at IS NULL FROM alerts WHERE id = {id}"
        ))
        .trim()
        .to_string()
    };
    assert_eq!(row(ids[0]), "ana|spooled|t");
    assert_eq!(
        row(ids[1]),
        "||f",
        "resolved first: the acknowledgement did not stick"
    );
    assert_eq!(
        db.query("SELECT username, action, target FROM audit")
            .trim(),
        format!("ana|ack|alert {}", ids[0])
    );
    // Reported when committed, as every alert change is; remembered for device JSON.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let updated = loop {
        let report = tokio::time::timeout_at(deadline, reports.recv())
            .await
            .expect("the acknowledgement reported")
            .unwrap();
        if let Some(e) = report.iter().find(|e| e.change == AlertChange::Updated) {
            break e.clone();
        }
    };
    assert_eq!(updated.alert.id, ids[0]);
    assert_eq!(health.acknowledged.of_device(&names[0])[0].by, "ana");
    assert!(
        health.acknowledged.devices().len() == 1,
        "not the resolved one"
    );
}
