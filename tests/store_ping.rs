//! A database outage while nothing is written: only a health check can tell, and
//! `/readyz` (which reads `StoreHealth::degraded_reason`) must say degraded within
//! seconds, then ready again when the database returns.

mod feeding;
mod pgdb;

use std::time::Duration;

use feeding::{flip, wait_until};
use pgdb::proxy::Proxy;
use wardops::store::startup::Limits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_store_notices_a_database_outage_and_its_end() {
    let db = pgdb::TestDb::create("ping");
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();
    let config = feeding::inventory(dir.path(), 2);
    let (started, state) = feeding::store(
        db.url_via(proxy.addr),
        &config,
        dir.path(),
        Limits::default(),
    )
    .await;
    let health = started.health.clone();
    flip(&state, 0, true);
    flip(&state, 1, true);
    feeding::all_written(&health, 2).await;
    wait_until("a healthy store", Duration::from_secs(10), || {
        !health.is_degraded()
    })
    .await;

    proxy.cut();
    wait_until("the outage noticed", Duration::from_secs(15), || {
        health
            .degraded_reason()
            .is_some_and(|r| r.contains("database unavailable"))
    })
    .await;
    assert_eq!(health.pending.get(), 0, "nothing was written meanwhile");

    proxy.restore();
    wait_until(
        "the end of the outage noticed",
        Duration::from_secs(15),
        || health.degraded_reason().is_none(),
    )
    .await;
}
