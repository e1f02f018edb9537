//! A restart of the real `wardops serve` while PostgreSQL is down (a TCP proxy of the
//! test's own, cut): the state comes back as it was — the outage goes on with its
//! original `down_since`, the devices that were up are up — without waiting for the
//! database, and nothing is decided twice: one DOWN row, one `DOWN` log line, no second
//! `unknown → up`. Devices go down through an nftables blackhole on addresses of this
//! test's own (127.77.41.0/24).

mod pgdb;
mod support;

use std::path::Path;
use std::time::Duration;

use pgdb::proxy::Proxy;
use support::{Appliance, Blackhole, api_status, wait_for, wait_status};

const DEVICES: [(&str, &str); 3] = [
    ("q1-router", "127.77.41.1"),
    ("q1-atm-1", "127.77.41.2"),
    ("q1-atm-2", "127.77.41.3"),
];

fn write_config(dir: &Path) {
    support::write_fast_config(dir, "q", &DEVICES);
}

fn pending_writes(app: &Appliance) -> Option<String> {
    let metrics = app.try_get("/metrics")?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("wardops_store_pending_writes "))
        .map(str::to_string)
}

#[test]
fn a_restart_while_the_database_is_down_restores_the_same_state() {
    let db = pgdb::TestDb::create("restart_dbdown");
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let url = db.url_via(proxy.addr);
    let env = [("WARDOPS_DATABASE_URL", url.as_str())];

    let app = Appliance::start_with(dir.path(), &env);
    for (name, _) in DEVICES {
        wait_status(&app, name, "up");
    }
    let _hole = Blackhole::new("rd", &[DEVICES[1].1]);
    let since = wait_status(&app, DEVICES[1].0, "down").expect("down_since");
    wait_for(
        Duration::from_secs(10),
        "the outage in the database",
        || {
            (db.query("SELECT count(*) FROM alerts WHERE resolved_at IS NULL")
                .trim()
                == "1"
                && pending_writes(&app).as_deref() == Some("0"))
            .then_some(())
        },
    );

    proxy.cut();
    app.kill9();
    let app = Appliance::start_with(dir.path(), &env);
    // From the first answer on, the database still away.
    assert_eq!(
        api_status(&app, DEVICES[1].0),
        Some(("down".into(), Some(since.clone())))
    );
    for i in [0, 2] {
        assert_eq!(
            api_status(&app, DEVICES[i].0).map(|s| s.0).as_deref(),
            Some("up")
        );
    }
    // A few probe cycles with the database away, then it returns.
    std::thread::sleep(Duration::from_secs(3));
    proxy.restore();
    wait_for(Duration::from_secs(30), "/readyz ready again", || {
        let body = reqwest::blocking::get(app.url("/readyz"))
            .ok()?
            .text()
            .ok()?;
        body.contains(r#""status":"ready""#).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        db.query("SELECT device FROM transitions WHERE to_status = 'down'")
            .lines()
            .collect::<Vec<_>>(),
        [DEVICES[1].0],
        "one DOWN row for one outage"
    );
    assert_eq!(
        db.query("SELECT count(*) FROM transitions WHERE from_status = 'unknown'")
            .trim(),
        "3",
        "each device decided from unknown once"
    );
    assert_eq!(
        db.query("SELECT count(*) FROM alerts").trim(),
        "1",
        "one alert for one outage"
    );
    assert_eq!(
        api_status(&app, DEVICES[1].0),
        Some(("down".into(), Some(since)))
    );
    let log = app.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("DOWN") && l.contains(DEVICES[1].0)),
        "the outage is not decided again:\n{log}"
    );
    assert!(log.contains("restored from the snapshot"), "{log}");
}
