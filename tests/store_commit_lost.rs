//! A lost answer to COMMIT: the server committed, the writer saw the connection die. The
//! retry finds the records applied (no duplicate rows) — and the alert changes of that
//! commit must still reach the device counts and the live feed, from what the database
//! holds, so that the feed never resolves an alert it did not open.

mod feeding;
mod pgdb;

use std::time::Duration;

use feeding::{flip, wait_until};
use pgdb::proxy::Proxy;
use tokio::sync::broadcast;
use wardops::store::health::AlertReport;
use wardops::store::startup::Limits;
use wardops::store::{AlertChange, AlertEvent};

/// The next alert change of `device` the feed is told about.
async fn next_change(reports: &mut broadcast::Receiver<AlertReport>, device: &str) -> AlertEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let report = tokio::time::timeout_at(deadline, reports.recv())
            .await
            .unwrap_or_else(|_| panic!("no alert change of {device} reported"))
            .unwrap();
        if let Some(e) = report.iter().find(|e| e.alert.device == device) {
            return e.clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_of_a_commit_whose_answer_was_lost_are_still_reported() {
    let db = pgdb::TestDb::create("commit_lost");
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
    for i in 0..4 {
        flip(&state, i, true);
    }
    feeding::all_written(&health, 4).await;
    let name = config.inventory.devices[0].name.to_string();
    let mut reports = health.subscribe_alerts();

    proxy.lose_next_commit_reply();
    flip(&state, 0, false);
    wait_until("a commit's answer lost", Duration::from_secs(10), || {
        proxy.tripped()
    })
    .await;
    // The server did commit: this is the ambiguous case, not a rollback.
    wait_until("the commit in the database", Duration::from_secs(5), || {
        db.query("SELECT count(*) FROM alerts WHERE resolved_at IS NULL")
            .trim()
            == "1"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();
    wait_until("the retry", Duration::from_secs(30), || {
        health.pending.get() == 0 && !health.is_degraded()
    })
    .await;
    assert_eq!(
        db.query("SELECT count(*) FROM transitions WHERE to_status = 'down'")
            .trim(),
        "1",
        "the retry skipped what was applied"
    );

    let opened = next_change(&mut reports, &name).await;
    assert_eq!(opened.change, AlertChange::Opened);
    assert_eq!(opened.alert.condition, "device_down");
    assert!(opened.scope.is_some(), "with its device's scope");
    assert_eq!(health.open_alerts(&name), 1, "the device counts its alert");

    // Its end is reported for the alert the feed knows.
    flip(&state, 0, true);
    let resolved = next_change(&mut reports, &name).await;
    assert_eq!(resolved.change, AlertChange::Resolved);
    assert_eq!(resolved.alert.id, opened.alert.id);
    wait_until("the count back to 0", Duration::from_secs(5), || {
        health.open_alerts(&name) == 0
    })
    .await;
}
