//! Records the database rejects for good, and a queue past its limit: a poison record
//! (here, one a CHECK constraint of the test's refuses) is set aside — dead-letter file,
//! metric — and every other device's history goes on; past the in-memory limit records
//! wait in the spool only, `/readyz`'s reason says so, and none is lost.

mod feeding;
mod pgdb;

use std::time::Duration;

use feeding::{flip, wait_until};
use pgdb::proxy::Proxy;
use wardops::store::startup::Limits;
use wardops::store::writer::DEAD_LETTER_FILE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_database_rejects_is_set_aside_and_the_others_go_on() {
    let db = pgdb::TestDb::create("poison");
    let dir = tempfile::tempdir().unwrap();
    let config = feeding::inventory(dir.path(), 6);
    let (started, state) = feeding::store(db.url(), &config, dir.path(), Limits::default()).await;
    let health = started.health.clone();
    for i in 0..6 {
        flip(&state, i, true);
    }
    feeding::all_written(&health, 6).await;
    let names: Vec<String> = (0..6)
        .map(|i| config.inventory.devices[i].name.to_string())
        .collect();
    db.query(&format!(
        "ALTER TABLE transitions ADD CONSTRAINT poison CHECK (device <> '{}') NOT VALID",
        names[2]
    ));

    let mut expected = Vec::new();
    flip(&state, 2, false); // the poison
    expected.push(flip(&state, 3, false));
    expected.push(flip(&state, 4, false));
    wait_until("the others committed", Duration::from_secs(15), || {
        health.pending.get() == 0
    })
    .await;
    expected.push(flip(&state, 3, true));
    wait_until("later records too", Duration::from_secs(10), || {
        health.pending.get() == 0
    })
    .await;
    let rows = db.query(
        "SELECT device, from_status, to_status FROM transitions WHERE from_status <> 'unknown' ORDER BY id",
    );
    assert_eq!(rows.lines().collect::<Vec<_>>(), feeding::rows(&expected));
    assert_eq!(health.dead_lettered.get(), 1);
    assert!(!health.is_degraded(), "{:?}", health.degraded_reason());
    let dead = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(
        dead.contains(&names[2]) && dead.contains("poison"),
        "{dead}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_limit_the_queue_waits_in_the_spool_says_so_and_loses_nothing() {
    let db = pgdb::TestDb::create("queue_limit");
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();
    let config = feeding::inventory(dir.path(), 12);
    let (started, state) = feeding::store(
        db.url_via(proxy.addr),
        &config,
        dir.path(),
        Limits { queue: 4 },
    )
    .await;
    let health = started.health.clone();
    let mut expected = Vec::new();
    for i in 0..12 {
        expected.push(flip(&state, i, true));
    }
    wait_until("the first writes", Duration::from_secs(20), || {
        health.pending.get() == 0 && !health.is_degraded()
    })
    .await;

    proxy.cut();
    for i in 0..10 {
        expected.push(flip(&state, i, false));
    }
    wait_until("all ten pending", Duration::from_secs(10), || {
        health.pending.get() == 10
    })
    .await;
    assert!(health.disk_only.get() > 0, "some wait in the spool only");
    let reason = health.degraded_reason().expect("degraded");
    assert!(reason.contains("in-memory queue full"), "{reason}");

    proxy.restore();
    wait_until("the spool to drain", Duration::from_secs(30), || {
        health.pending.get() == 0 && !health.is_degraded()
    })
    .await;
    let rows = db.query("SELECT device, from_status, to_status FROM transitions ORDER BY id");
    assert_eq!(rows.lines().collect::<Vec<_>>(), feeding::rows(&expected));
}
