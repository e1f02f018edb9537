//! The `/reports` page in a real browser (headless Chromium over WebDriver) on the real
//! binary: an ATM blackholed for a few seconds breaches its kind's SLA; the report by
//! region, sorted breaches first, flags its region; drill-down goes region → branch →
//! device → the list of its outages; a column header sorts; the period form asks for a
//! day; the print style sheet hides the chrome and Chromium prints it to a PDF. A
//! screenshot goes to `docs/screenshots/reports.png`.

mod browser;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use browser::{Driver, eventually};
use serde_json::json;
use support::{Appliance, Blackhole, FAST_PROBE, wait_status};
use thirtyfour::prelude::*;

const ATM: &str = "127.150.3.2";

fn write_config(dir: &std::path::Path) {
    let settings = format!(
        "{FAST_PROBE}reports:\n  sla:\n    - {{ kind: router, target: 99.9 }}\n    - {{ kind: atm, target: 99.5 }}\n"
    );
    std::fs::write(dir.join("wardops.yaml"), settings).unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    let inventory = format!(
        "regions:
  - name: თბილისი
    branches:
      - name: ვაკე
        devices:
          - {{ name: vake-router, address: 127.150.3.1, kind: router }}
          - {{ name: vake-atm, address: {ATM}, kind: atm }}
      - name: saburtalo
        devices:
          - {{ name: sab-router, address: 127.150.3.3, kind: router }}
  - name: batumi
    branches:
      - name: center
        devices:
          - {{ name: batumi-atm, address: 127.150.3.4, kind: atm }}
"
    );
    std::fs::write(dir.join("inventory/r.yaml"), inventory).unwrap();
}

/// (key, class) of the report table's rows, top to bottom.
async fn rows(web: &WebDriver) -> Vec<(String, String)> {
    let script = "return Array.from(document.querySelectorAll('#report-table tbody tr[data-key]')).map(r => [r.dataset.key, r.className]);";
    web.execute(script, vec![])
        .await
        .unwrap()
        .convert::<Vec<(String, String)>>()
        .unwrap()
}

async fn click_row(web: &WebDriver, key: &str) {
    let link = web
        .find(By::Css(format!("#report-table tr[data-key='{key}'] td a")))
        .await
        .unwrap_or_else(|e| panic!("a link on row {key}: {e}"));
    link.click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_page_drills_down_sorts_and_prints() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    // The history is made with blocking calls, off the async workers.
    let app = tokio::task::block_in_place(|| {
        let app = Appliance::start(dir.path());
        for name in ["vake-router", "vake-atm", "sab-router", "batumi-atm"] {
            wait_status(&app, name, "up");
        }
        {
            let _hole = Blackhole::new("repb", &[ATM]);
            wait_status(&app, "vake-atm", "down");
            std::thread::sleep(Duration::from_secs(2));
        }
        wait_status(&app, "vake-atm", "up");
        app
    });
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser::browser(&driver, profile.path()).await;
    web.set_window_rect(0, 0, 1400, 900).await.unwrap();
    web.goto(app.url("/reports?period=day&group_by=region&sort=breach"))
        .await
        .unwrap();
    let first = rows(&web).await;
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first[0].0, "თბილისი", "breaches first: {first:?}");
    assert!(first[0].1.contains("breach"), "{first:?}");
    assert!(!first[1].1.contains("breach"), "{first:?}");
    let flag = web
        .find(By::Css("#report-table tr.breach .breach-flag"))
        .await
        .unwrap();
    assert_eq!(flag.text().await.unwrap(), "BREACHED");

    // Region → its branches → the branch's devices → one device's outages.
    click_row(&web, "თბილისი").await;
    let branches = eventually(Duration::from_secs(10), "the branches", || async {
        let r = rows(&web).await;
        (r.len() == 2).then_some(r)
    })
    .await;
    let keys: Vec<_> = branches.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(keys, ["ვაკე", "saburtalo"], "sorted by breach, then worst");
    click_row(&web, "ვაკე").await;
    let devices = eventually(Duration::from_secs(10), "the devices", || async {
        let r = rows(&web).await;
        r.iter().any(|x| x.0 == "vake-atm").then_some(r)
    })
    .await;
    assert_eq!(devices.len(), 2, "{devices:?}");
    let atm = devices.iter().find(|r| r.0 == "vake-atm").unwrap();
    assert!(atm.1.contains("breach"), "{devices:?}");
    let crumbs = web
        .find(By::Css("nav.crumbs"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        crumbs.contains("თბილისი") && crumbs.contains("ვაკე"),
        "{crumbs}"
    );
    click_row(&web, "vake-atm").await;
    let outages = eventually(Duration::from_secs(10), "the outage list", || async {
        let list = web.find(By::Css("#outage-list tbody")).await.ok()?;
        let n = list.find_all(By::Css("tr")).await.ok()?.len();
        Some(n)
    })
    .await;
    assert_eq!(outages, 1);
    let cell = web
        .find(By::Css("#outage-list tbody tr td:nth-child(3)"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cell.ends_with('s'), "a counted duration: {cell}");

    // Back to all devices, sorted by availability by its column header.
    web.goto(app.url("/reports?period=day&group_by=device"))
        .await
        .unwrap();
    let header = web
        .find(By::Css("#report-table thead a[href*='sort=availability']"))
        .await
        .unwrap();
    header.click().await.unwrap();
    let sorted = eventually(Duration::from_secs(10), "the sorted report", || async {
        let url = web.current_url().await.ok()?;
        url.as_str().contains("sort=availability").then_some(())?;
        Some(rows(&web).await)
    })
    .await;
    assert_eq!(sorted[0].0, "vake-atm", "worst first: {sorted:?}");

    // The period form: a week.
    browser::choose(&web, "#report-period", "week").await;
    web.find(By::Css("#report-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the week's report", || async {
        let url = web.current_url().await.ok()?;
        url.as_str().contains("period=week").then_some(())
    })
    .await;
    assert_eq!(rows(&web).await.len(), 4);

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    web.goto(app.url("/reports?period=day&group_by=device&sort=breach"))
        .await
        .unwrap();
    let png = web.screenshot_as_png().await.unwrap();
    std::fs::write(shots.join("reports.png"), png).unwrap();

    // Printing: the navigation and the forms are gone, the table stays; Chromium makes
    // a PDF of it.
    let cdp = web.cdp();
    cdp.send_raw("Emulation.setEmulatedMedia", json!({"media": "print"}))
        .await
        .unwrap();
    let shown = |css: &'static str| {
        let web = web.clone();
        async move {
            web.execute(
                "return getComputedStyle(document.querySelector(arguments[0])).display",
                vec![json!(css)],
            )
            .await
            .unwrap()
            .convert::<String>()
            .unwrap()
        }
    };
    assert_eq!(shown("header.top").await, "none");
    assert_eq!(shown("#report-form").await, "none");
    assert_eq!(shown("footer").await, "none");
    assert_eq!(shown("#report-table").await, "table");
    let pdf = cdp
        .send_raw("Page.printToPDF", json!({"landscape": true}))
        .await
        .unwrap();
    let data = pdf["data"].as_str().unwrap();
    assert!(data.starts_with("JVBER"), "a PDF");
    web.quit().await.unwrap();
}
