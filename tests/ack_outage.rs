//! An acknowledgement made through its route while PostgreSQL is away (a TCP proxy of
//! the test's own, cut): the route checks the alert in the writer's memory of the open
//! alerts (the database cannot be asked), and the acknowledgement and its audit entry
//! are spooled, not lost, and applied in order once the database is back — reported to
//! the feed then, remembered for device JSON — while an acknowledgement of an alert that
//! resolved during the outage, before it was applied, does not stick.

mod feeding;
mod pgdb;

use std::sync::Arc;
use std::time::Duration;

use feeding::{flip, wait_until};
use pgdb::proxy::Proxy;
use wardops::context::{Context, StoreHandle};
use wardops::store::startup::{Limits, SPOOL_FILE};
use wardops::store::{Actions, AlertChange, RecordKind};

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
    let reloader =
        wardops::reload::Reloader::idle(dir.path().into(), state.snapshot().inventory.clone());
    let ctx = Arc::new(Context::new(
        state.clone(),
        StoreHandle::of(&started),
        reloader,
    ));
    for i in 0..4 {
        flip(&state, i, true);
    }
    flip(&state, 0, false);
    flip(&state, 1, false);
    let names: Vec<String> = (0..2)
        .map(|i| config.inventory.devices[i].name.to_string())
        .collect();
    let id_of = |n: &str| -> Option<i64> {
        db.query(&format!(
            "SELECT id FROM alerts WHERE device = '{n}' AND resolved_at IS NULL"
        ))
        .trim()
        .parse()
        .ok()
    };
    wait_until(
        "two open alerts, known to the writer",
        Duration::from_secs(10),
        || {
            names.iter().all(|n| {
                id_of(n).is_some_and(|id| health.open_alert_device(id).as_deref() == Some(n))
            })
        },
    )
    .await;
    let ids: Vec<i64> = names.iter().map(|n| id_of(n).unwrap()).collect();
    let mut reports = health.subscribe_alerts();

    proxy.cut();
    let req = hyper::Request::post(format!("/api/v1/alerts/{}/ack", ids[0]))
        .header("content-type", "application/json")
        .body(bytes::Bytes::from(r#"{"comment": "spooled"}"#))
        .unwrap();
    let answer = wardops::api::acknowledge::post(ctx.clone(), req).await;
    assert_eq!(answer.status().as_u16(), 202);
    // Device 1 recovers before its acknowledgement reaches the database: it never sticks.
    flip(&state, 1, true);
    let late = RecordKind::Acknowledge {
        alert: ids[1],
        by: "ana".into(),
        comment: "late".into(),
    };
    actions.send(chrono::Utc::now(), late).unwrap();
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
    // Everyone is the anonymous principal until the login issue lands.
    assert_eq!(row(ids[0]), "anonymous|spooled|t");
    assert_eq!(
        row(ids[1]),
        "||f",
        "resolved first: the acknowledgement did not stick"
    );
    assert_eq!(
        db.query("SELECT username, action, target, detail FROM audit")
            .trim(),
        format!("anonymous|ack|alert {} ({})|spooled", ids[0], names[0])
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
    assert_eq!(health.acknowledged.of_device(&names[0])[0].by, "anonymous");
    assert_eq!(
        health.acknowledged.devices().len(),
        1,
        "not the resolved one"
    );
}
