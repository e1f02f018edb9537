//! The wall in a real browser: the real binary on a loopback inventory, headless Chromium
//! driven over WebDriver (Debian's chromium and chromium-driver; nothing downloaded).
//! One device is blackholed with nftables: its row must turn down and move to the top
//! without a page reload, then recover when the rule is lifted. Along the way every
//! page is saved as a screenshot at wall size and phone size under `docs/screenshots/`.

mod browser;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use browser::{Driver, eventually, mark_load, same_load};
use support::{Appliance, Blackhole, TWO_PACKET_PROBE};
use thirtyfour::prelude::*;

const INVENTORY: &str = r#"
regions:
  - name: tbilisi
    branches:
      - name: vake
        lat: 41.71
        lon: 44.76
        devices:
          - { name: vake-router, address: 127.77.6.1, kind: router, labels: { isp: magti } }
          - { name: vake-atm-1, address: 127.77.6.2, kind: atm }
          - { name: vake-atm-2, address: 127.77.6.3, kind: atm }
          - { name: "<script>alert(1)</script>", address: 127.77.6.4, kind: camera }
      - name: saburtalo
        lat: 41.73
        lon: 44.75
        devices:
          - { name: saburtalo-router, address: 127.77.6.5, kind: router }
          - { name: saburtalo-pos-1, address: 127.77.6.6, kind: pos }
  - name: batumi
    branches:
      - name: old-town
        lat: 41.65
        lon: 41.64
        devices:
          - { name: old-town-router, address: 127.77.6.7, kind: router }
          - { name: old-town-atm-1, address: 127.77.6.8, kind: atm }
"#;

/// A Chromium session in the dark theme (the wall's, in the screenshots): headless
/// prefers light.
async fn browser(driver: &Driver, profile: &std::path::Path) -> WebDriver {
    browser::browser_with(driver, profile, &["--force-dark-mode"]).await
}

/// `(device, status)` of the wall's rows, top to bottom.
async fn rows(web: &WebDriver) -> Vec<(String, String)> {
    let script = "return Array.from(document.querySelectorAll('#devices [data-device]')).map(e => [e.dataset.device, e.dataset.status, e.textContent]);";
    match web.execute(script, vec![]).await {
        Ok(r) => r
            .convert::<Vec<(String, String, String)>>()
            .unwrap_or_default()
            .into_iter()
            .map(|(d, s, _)| (d, s))
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn screenshots(web: &WebDriver, app: &Appliance, pages: &[(&str, &str)], suffix: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, path) in pages {
        web.goto(app.url(path)).await.unwrap();
        // Let the script connect and the counters tick once.
        let _ = eventually(Duration::from_secs(5), "the live feed", || async {
            let live = web.find(By::Id("live")).await.ok()?;
            (live.text().await.ok()? == "● live").then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let png = web.screenshot_as_png().await.unwrap();
        std::fs::write(dir.join(format!("{name}-{suffix}.png")), png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_device_goes_down_on_the_wall_without_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wardops.yaml"), TWO_PACKET_PROBE).unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::write(dir.path().join("inventory/georgia.yaml"), INVENTORY).unwrap();
    let app = tokio::task::block_in_place(|| Appliance::start(dir.path()));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(&driver, profile.path()).await;
    web.set_window_rect(0, 0, 1280, 720).await.unwrap();

    web.goto(app.url("/monitor?view=table")).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "every device up on the wall",
        || async {
            let r = rows(&web).await;
            (r.len() == 8 && r.iter().all(|(_, s)| s == "up")).then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "the live feed connected",
        || async {
            (web.find(By::Id("live")).await.ok()?.text().await.ok()? == "● live").then_some(())
        },
    )
    .await;
    // A device name is text, never markup: no script ran, the name shows as written.
    let source = web.source().await.unwrap();
    assert!(
        source.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is escaped"
    );
    assert!(
        web.execute("return document.querySelectorAll('script').length", vec![])
            .await
            .unwrap()
            .convert::<u64>()
            .unwrap()
            == 2,
        "app.js and filters.js, nothing else"
    );
    // Marks this page load: a reload would lose it.
    mark_load(&web).await;

    let blackhole = Blackhole::new("web", &["127.77.6.3"]);
    eventually(
        Duration::from_secs(15),
        "vake-atm-2 down at the top",
        || async {
            let r = rows(&web).await;
            (r.first() == Some(&("vake-atm-2".to_string(), "down".to_string()))).then_some(())
        },
    )
    .await;
    let top = web.find(By::Css("#devices [data-device]")).await.unwrap();
    let text = top.text().await.unwrap();
    assert!(
        text.contains("DOWN"),
        "status in words, not only colour: {text}"
    );
    assert!(
        text.contains("NEW"),
        "a fresh outage is marked recent: {text}"
    );
    let sec = eventually(Duration::from_secs(5), "a ticking counter", || async {
        let t = web
            .find(By::Css("#devices [data-device] .dur"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.ends_with('s').then_some(t)
    })
    .await;
    assert!(sec.chars().next().unwrap().is_ascii_digit(), "{sec}");
    assert!(same_load(&web).await, "the page was reloaded");

    // The store opens the alert in the transaction that records the outage: wait for it,
    // so that the screenshots show the open alert next to the down device.
    eventually(
        Duration::from_secs(15),
        "the device_down alert open",
        || async {
            let body: serde_json::Value = reqwest::get(app.url("/api/v1/alerts?status=active"))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            body["alerts"]
                .as_array()?
                .iter()
                .any(|a| a["device"] == "vake-atm-2")
                .then_some(())
        },
    )
    .await;

    // While it is down: every page, wall size and phone size.
    let pages = [
        ("dashboard", "/"),
        ("monitor", "/monitor"),
        ("monitor-table", "/monitor?view=table"),
        ("device", "/devices/vake-atm-2"),
        ("alerts", "/alerts"),
        ("infrastructure", "/infrastructure"),
    ];
    screenshots(&web, &app, &pages, "wall").await;
    web.set_window_rect(0, 0, 390, 844).await.unwrap();
    screenshots(&web, &app, &pages, "phone").await;
    web.set_window_rect(0, 0, 1280, 720).await.unwrap();

    web.goto(app.url("/monitor?view=table")).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "the down device listed first",
        || async {
            let r = rows(&web).await;
            (r.first().map(|(d, _)| d.as_str()) == Some("vake-atm-2")).then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "the live feed connected",
        || async {
            (web.find(By::Id("live")).await.ok()?.text().await.ok()? == "● live").then_some(())
        },
    )
    .await;
    mark_load(&web).await;
    drop(blackhole);
    eventually(Duration::from_secs(15), "vake-atm-2 recovered", || async {
        let r = rows(&web).await;
        r.iter().all(|(_, s)| s == "up").then_some(())
    })
    .await;
    // The recovery stays in sight: the recently-recovered list names it (the page
    // re-renders from the server, so no stale outage mark stays on its tile either).
    let recovered = eventually(
        Duration::from_secs(5),
        "vake-atm-2 in the recovered list",
        || async {
            web.find(By::Css("#recovered [data-recovered='vake-atm-2']"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        },
    )
    .await;
    assert!(recovered.contains("vake-atm-2"), "{recovered}");
    let tile = web
        .find(By::Css("#devices [data-device='vake-atm-2']"))
        .await
        .unwrap();
    assert_eq!(
        tile.attr("data-status").await.unwrap().as_deref(),
        Some("up")
    );
    assert!(
        !tile
            .class_name()
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("recent"),
        "no outage mark left on a recovered device"
    );
    assert!(same_load(&web).await, "the page was reloaded");
    web.quit().await.unwrap();
}

/// A branch in maintenance until `ends` (from an hour before), and a branch behind its
/// gateway.
fn live_inventory(ends: chrono::DateTime<chrono::Utc>) -> String {
    let at = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let start = at(chrono::Utc::now() - chrono::Duration::hours(1));
    format!(
        r#"
regions:
  - name: tbilisi
    branches:
      - name: works
        maintenance:
          - {{ start: {start}, end: {}, reason: firmware }}
        devices:
          - {{ name: works-atm, address: 127.77.9.1, kind: atm }}
      - name: dark
        parents: [dark-gw]
        devices:
          - {{ name: dark-gw, address: 127.77.9.2, kind: router }}
          - {{ name: dark-atm-1, address: 127.77.9.3, kind: atm }}
          - {{ name: dark-atm-2, address: 127.77.9.4, kind: atm }}
"#,
        at(ends)
    )
}

async fn live(web: &WebDriver) {
    eventually(
        Duration::from_secs(10),
        "the live feed connected",
        || async {
            (web.find(By::Id("live")).await.ok()?.text().await.ok()? == "● live").then_some(())
        },
    )
    .await;
}

/// Two things the pages learn from no transition: the wall's maintenance badge goes at
/// the window's end (the device stays up all along: nothing is sent), and the count of
/// devices unreachable behind an open alert follows the feed's `alert_updated` in place
/// (the page's re-fetch is disabled, so only the event can change it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_badge_ends_with_its_window_and_the_count_behind_an_alert_follows_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wardops.yaml"), TWO_PACKET_PROBE).unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    // Whole seconds, as the inventory writes it.
    let ends = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 25, 0).unwrap();
    std::fs::write(
        dir.path().join("inventory/georgia.yaml"),
        live_inventory(ends),
    )
    .unwrap();
    let app = tokio::task::block_in_place(|| Appliance::start(dir.path()));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(&driver, profile.path()).await;
    web.set_window_rect(0, 0, 1280, 720).await.unwrap();

    web.goto(app.url("/monitor?view=table")).await.unwrap();
    eventually(Duration::from_secs(20), "every device up", || async {
        let r = rows(&web).await;
        (r.len() == 4 && r.iter().all(|(_, s)| s == "up")).then_some(())
    })
    .await;
    live(&web).await;
    let badge = "return document.querySelectorAll(\"[data-device='works-atm'] .tag-maint\").length";
    let badges = || async {
        web.execute(badge, vec![])
            .await
            .unwrap()
            .convert::<u64>()
            .unwrap()
    };
    assert!(
        chrono::Utc::now() < ends,
        "the machine was too slow to see the window"
    );
    assert_eq!(badges().await, 1, "in maintenance until {ends}");
    mark_load(&web).await;
    let wait = (ends - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(5);
    eventually(wait, "the badge gone at the window's end", || async {
        (badges().await == 0).then_some(())
    })
    .await;
    assert!(
        chrono::Utc::now() >= ends,
        "the badge went before the window's end"
    );
    assert!(same_load(&web).await, "the page was reloaded");
    let transitions =
        tokio::task::block_in_place(|| app.get_json("/api/v1/devices/works-atm/transitions"));
    let n = transitions["transitions"].as_array().map_or(0, |t| t.len());
    assert!(
        n <= 1,
        "only its first decision, no change since: {transitions}"
    );

    // The gateway goes dark alone: its alert opens with nothing behind it.
    let gateway = Blackhole::new("webgw", &["127.77.9.2"]);
    eventually(Duration::from_secs(20), "dark-gw's alert open", || async {
        let body: serde_json::Value = reqwest::get(app.url("/api/v1/alerts?status=active"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["device"] == "dark-gw")
            .then_some(())
    })
    .await;
    web.goto(app.url("/alerts")).await.unwrap();
    live(&web).await;
    let row = "return Array.from(document.querySelectorAll('tr')).filter(r => r.textContent.includes('dark-gw')).map(r => r.textContent).join('|')";
    let text = || async {
        web.execute(row, vec![])
            .await
            .unwrap()
            .convert::<String>()
            .unwrap()
    };
    assert!(!text().await.contains("behind it"), "{}", text().await);
    // From here the page cannot re-fetch itself: only the events can change it.
    web.execute(
        "window.fetch = function () { return new Promise(function () {}); }; window.__sameLoad = true;",
        vec![],
    )
    .await
    .unwrap();
    let children = Blackhole::new("webkids", &["127.77.9.3", "127.77.9.4"]);
    eventually(
        Duration::from_secs(20),
        "two unreachable behind the gateway's alert",
        || async {
            text()
                .await
                .contains("⊘ 2 unreachable behind it")
                .then_some(())
        },
    )
    .await;
    assert!(same_load(&web).await, "the page was reloaded");
    drop(children);
    eventually(
        Duration::from_secs(20),
        "none behind it once they answer",
        || async { (!text().await.contains("unreachable behind it")).then_some(()) },
    )
    .await;
    drop(gateway);
    web.quit().await.unwrap();
}
