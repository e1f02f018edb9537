//! ISP uplinks end to end (issue #19): the real binary polling a real SNMP agent
//! (snmpsim, answering on three loopback addresses of this test's range 127.122.0.0/24)
//! over v2c and v3 (SHA-256 + AES-128), with the router's interface states changed by
//! rewriting the agent's data file.
//!
//! One ISP line of the router goes down: the router still answers ping, so the branch is
//! on its backup line — one `uplink_down` warning opens, the JSON, `/metrics` and the
//! live feed say so, and the monitor page open in a real browser changes its badge
//! without a reload, and a real Alertmanager receives it (notifications route it like any
//! alert). The line comes back: the alert resolves as `recovered`, and leaves the
//! Alertmanager. Beside it a router polled with a wrong community is `unknown` with that
//! reason, and opens nothing.

mod browser;
mod support;

use std::time::Duration;

use browser::{Driver, browser, eventually, mark_load, same_load};
use serde_json::Value;
use support::alertmanager::Alertmanager;
use support::snmpsim::{self, Snmpsim};
use support::{Appliance, TWO_PACKET_PROBE, wait_for, wait_status};
use thirtyfour::prelude::*;

const ROUTER: &str = "127.122.0.1";
const V3_ROUTER: &str = "127.122.0.2";
const WRONG_COMMUNITY: &str = "127.122.0.3";

fn inventory(port: u16) -> String {
    format!(
        "\
regions:
  - name: tbilisi
    snmp: {{ community_env: UPLINKS_E2E_COMMUNITY, port: {port}, interval: 1s, timeout: 1s, retries: 1 }}
    uplinks:
      - {{ alias: \"*MAGTI*\", isp: Magti }}
      - {{ alias: \"*SILKNET*\", isp: Silknet }}
    branches:
      - name: vake
        devices:
          - {{ name: vake-rtr, address: {ROUTER}, kind: router, snmp: {{}} }}
      - name: saburtalo
        devices:
          - name: saburtalo-rtr
            address: {V3_ROUTER}
            kind: router
            snmp:
              version: 3
              user: {user}
              auth: sha256
              auth_key_env: UPLINKS_E2E_AUTH
              privacy: aes128
              privacy_key_env: UPLINKS_E2E_PRIV
            uplinks:
              - {{ isp: Magti, name: Gi0/0 }}
              - {{ isp: Silknet, index: 2 }}
      - name: didube
        devices:
          - {{ name: didube-rtr, address: {WRONG_COMMUNITY}, kind: router, snmp: {{ community_env: UPLINKS_E2E_WRONG }} }}
",
        user = snmpsim::V3_USER
    )
}

/// The device's JSON. Blocking HTTP: on the test's runtime, through `block_in_place`.
fn device(app: &Appliance, device: &str) -> Value {
    tokio::task::block_in_place(|| app.get_json(&format!("/api/v1/devices/{device}")))
}

fn uplinks(app: &Appliance, name: &str) -> Value {
    device(app, name)["uplinks"].clone()
}

fn line<'a>(uplinks: &'a Value, isp: &str) -> &'a Value {
    uplinks["lines"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["isp"] == isp))
        .unwrap_or(&Value::Null)
}

fn uplink_alerts(app: &Appliance, device: &str) -> Vec<Value> {
    let page = tokio::task::block_in_place(|| {
        app.get_json(&format!("/api/v1/alerts?device={device}&limit=100"))
    });
    page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["condition"] == "uplink_down")
        .cloned()
        .collect()
}

/// What the monitor page shows of `device`'s `isp` badge.
async fn badge(web: &WebDriver, device: &str, isp: &str) -> Option<String> {
    let css = format!("[data-device=\"{device}\"] .isp[data-isp=\"{isp}\"]");
    let e = web.find(By::Css(&css)).await.ok()?;
    e.attr("data-isp-status").await.ok()?
}

async fn on_backup_tag(web: &WebDriver, device: &str) -> bool {
    let css = format!("[data-device=\"{device}\"] .tag-backup");
    web.find(By::Css(&css)).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_down_puts_the_branch_on_its_backup_line_with_one_warning_until_it_returns() {
    let mut rows = snmpsim::branch_router();
    let sim = Snmpsim::start_at(
        &snmpsim::snmprec(&rows),
        &[ROUTER, V3_ROUTER, WRONG_COMMUNITY],
    );
    let am = tokio::task::block_in_place(Alertmanager::start);
    let dir = tempfile::tempdir().unwrap();
    let notifications = format!(
        "notifications:\n  max_backoff: 1s\n  receivers:\n    - name: noc\n      alertmanager:\n        urls: [{}]\n",
        am.url
    );
    std::fs::write(
        dir.path().join("wardops.yaml"),
        format!("{TWO_PACKET_PROBE}{notifications}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::write(
        dir.path().join("inventory/uplinks.yaml"),
        inventory(sim.port),
    )
    .unwrap();
    let env = [
        ("UPLINKS_E2E_COMMUNITY", snmpsim::COMMUNITY),
        ("UPLINKS_E2E_WRONG", "not-the-community"),
        ("UPLINKS_E2E_AUTH", snmpsim::V3_AUTH_KEY),
        ("UPLINKS_E2E_PRIV", snmpsim::V3_PRIV_KEY),
    ];
    let app = tokio::task::block_in_place(|| {
        let app = Appliance::start_with(dir.path(), &env);
        for device in ["vake-rtr", "saburtalo-rtr", "didube-rtr"] {
            wait_status(&app, device, "up");
        }
        // Both lines up, over v2c (rules on ifAlias) and v3 (its own list).
        for device in ["vake-rtr", "saburtalo-rtr"] {
            wait_for(Duration::from_secs(20), "both lines up", || {
                let u = uplinks(&app, device);
                (line(&u, "Magti")["status"] == "up" && line(&u, "Silknet")["status"] == "up")
                    .then_some(())
            });
        }
        app
    });
    let u = uplinks(&app, "vake-rtr");
    assert_eq!(u["on_backup_line"], false);
    assert_eq!(line(&u, "Magti")["interface"], "Gi0/0");
    assert_eq!(line(&u, "Silknet")["if_index"], 2);
    // Its lines come from the region's rules: with no answer there is none to name yet,
    // and the problem says why.
    let wrong = tokio::task::block_in_place(|| {
        wait_for(
            Duration::from_secs(20),
            "the wrong community's reason",
            || {
                let u = uplinks(&app, "didube-rtr");
                (u["problem"] != "not polled yet" && !u["problem"].is_null()).then_some(u)
            },
        )
    });
    assert_eq!(
        wrong["problem"], "no answer (agent down or wrong community)",
        "{wrong}"
    );
    assert_eq!(wrong["lines"], serde_json::json!([]));

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(&driver, profile.path()).await;
    web.goto(app.url("/monitor?view=table")).await.unwrap();
    let up = eventually(Duration::from_secs(10), "the Magti badge", || {
        badge(&web, "vake-rtr", "Magti")
    })
    .await;
    assert_eq!(up, "up");
    assert!(!on_backup_tag(&web, "vake-rtr").await);
    mark_load(&web).await;

    // Magti's line of both routers goes down; the routers still answer ping.
    rows[0].oper = 2;
    sim.rewrite(&rows);
    let down = tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(20), "Magti down", || {
            let u = uplinks(&app, "vake-rtr");
            (line(&u, "Magti")["status"] == "down").then_some(u)
        })
    });
    assert_eq!(down["on_backup_line"], true);
    assert_eq!(line(&down, "Silknet")["status"], "up");
    assert_eq!(line(&down, "Magti")["admin_down"], false);
    let alerts = tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(10), "the uplink_down alert", || {
            let a = uplink_alerts(&app, "vake-rtr");
            (!a.is_empty()).then_some(a)
        })
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["severity"], "warning");
    assert_eq!(
        alerts[0]["message"],
        "uplink Magti (Gi0/0) down on vake-rtr: on its backup line (Silknet)"
    );
    assert!(alerts[0]["resolved_at"].is_null());
    let status = device(&app, "vake-rtr");
    assert_eq!(status["ping_status"], "up", "the router itself is up");

    eventually(
        Duration::from_secs(10),
        "the badge turning down",
        || async {
            (badge(&web, "vake-rtr", "Magti").await.as_deref() == Some("down")).then_some(())
        },
    )
    .await;
    assert!(on_backup_tag(&web, "vake-rtr").await);
    assert!(same_load(&web).await, "changed without a reload");
    let metrics = tokio::task::block_in_place(|| app.try_get("/metrics").unwrap());
    assert!(
        metrics.contains("wardops_uplink_up{device=\"vake-rtr\",isp=\"Magti\"} 0"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("uplink"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(metrics.contains("wardops_uplink_up{device=\"vake-rtr\",isp=\"Silknet\"} 1"));
    assert!(metrics.contains("wardops_device_on_backup_line{device=\"vake-rtr\"} 1"));
    assert!(metrics.contains("wardops_uplink_agent_up{device=\"didube-rtr\"} 0"));
    let fired = tokio::task::block_in_place(|| {
        wait_for(
            Duration::from_secs(15),
            "uplink_down in Alertmanager",
            || am.alert("uplink_down", "vake-rtr"),
        )
    });
    assert_eq!(fired["labels"]["severity"], "warning", "{fired}");
    assert_eq!(fired["labels"]["branch"], "vake", "{fired}");
    // The wall and the dashboard list the branch as on its backup line.
    for page in ["/wall", "/"] {
        let html = tokio::task::block_in_place(|| app.try_get(page).unwrap());
        let list = html
            .split_once("id=\"on-backup\"")
            .map(|(_, rest)| rest.split_once("</div>").map_or(rest, |(l, _)| l))
            .unwrap_or_else(|| panic!("no backup-line list on {page}"));
        assert!(
            list.contains("vake-rtr") && list.contains("Magti"),
            "{page}: {list}"
        );
    }
    // The router's own counters, as the recording has them.
    assert!(metrics.contains(
        "wardops_uplink_receive_bytes_total{device=\"vake-rtr\",isp=\"Magti\"} 987654321012"
    ));
    // A few more polls: still one alert, not one per poll.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        tokio::task::block_in_place(|| uplink_alerts(&app, "vake-rtr")).len(),
        1
    );
    assert!(
        uplink_alerts(&app, "didube-rtr").is_empty(),
        "unknown opens nothing"
    );

    // Back up: resolved, the badge follows.
    rows[0].oper = 1;
    sim.rewrite(&rows);
    let resolved = tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(20), "the alert resolved", || {
            let a = uplink_alerts(&app, "vake-rtr");
            a.iter().all(|a| !a["resolved_at"].is_null()).then_some(a)
        })
    });
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["resolution"], "recovered");
    tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(15), "resolved in Alertmanager", || {
            am.alert("uplink_down", "vake-rtr").is_none().then_some(())
        })
    });
    eventually(Duration::from_secs(10), "the badge back up", || async {
        (badge(&web, "vake-rtr", "Magti").await.as_deref() == Some("up")).then_some(())
    })
    .await;
    assert!(!on_backup_tag(&web, "vake-rtr").await);
    assert!(same_load(&web).await);
    // The v3 router read the same lines: its Magti went down and came back too.
    let u = tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(10), "the v3 router's Magti up", || {
            let u = uplinks(&app, "saburtalo-rtr");
            (line(&u, "Magti")["status"] == "up").then_some(u)
        })
    });
    let v3_alerts = uplink_alerts(&app, "saburtalo-rtr");
    assert_eq!(v3_alerts.len(), 1, "{v3_alerts:?}");
    assert!(
        line(&u, "Magti")["in_bps"].is_number(),
        "a rate after two readings: {u}"
    );
    let _ = web.quit().await;
}
