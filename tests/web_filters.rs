//! Filters and sorting in a real browser: the real binary on a loopback inventory with
//! Georgian display names, headless Chromium over WebDriver. A filter chosen on
//! /monitor applies without a button, goes along to /alerts through the nav and is
//! still applied back on /monitor (with the page's own remembered filters); the live
//! feed is scoped by it; a Mtavruli search finds a Mkhedruli display name; clicking a
//! table header sorts, and clicking it again reverses. Every list is checked against
//! the JSON API for the same query.

mod browser;
mod support;

use std::time::Duration;

use browser::{Driver, choose, eventually};
use support::{Appliance, FAST_PROBE};
use thirtyfour::prelude::*;

const DISPLAY_NAMES: &str = "web:\n  display_name_label: display_name\n";

const INVENTORY: &str = r#"
regions:
  - name: tbilisi
    branches:
      - name: Vake
        devices:
          - { name: vake-router, address: 127.77.9.1, kind: router, labels: { display_name: "ვაკე როუტერი" } }
          - { name: vake-atm-1, address: 127.77.9.2, kind: atm, labels: { display_name: "თბილისი ბანკომატი" } }
      - name: vake-2
        devices:
          - { name: vake2-atm-1, address: 127.77.9.3, kind: atm }
      - name: saburtalo
        devices:
          - { name: saburtalo-router, address: 127.77.9.4, kind: router }
  - name: batumi
    branches:
      - name: vake-batumi
        devices:
          - { name: batumi-atm-1, address: 127.77.9.5, kind: atm }
"#;

/// The device names the page lists, top to bottom.
async fn listed(web: &WebDriver) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll('#devices [data-device]')).map(e => e.dataset.device);";
    match web.execute(script, vec![]).await {
        Ok(r) => r.convert::<Vec<String>>().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The JSON API's device names for `query`.
fn api(app: &Appliance, query: &str) -> Vec<String> {
    let json = app.get_json(&format!("/api/v1/devices?{query}"));
    json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until the page at a URL containing `url_part` lists `want`.
async fn lists(web: &WebDriver, url_part: &str, want: &[String]) {
    eventually(
        Duration::from_secs(10),
        &format!("a page at …{url_part}… listing {want:?}"),
        || async {
            let url = here(web).await?;
            (url.contains(url_part) && listed(web).await == want).then_some(())
        },
    )
    .await;
}

/// The page's URL, percent-decoded.
async fn here(web: &WebDriver) -> Option<String> {
    let script = "return decodeURIComponent(location.href.replace(/\\+/g, ' '));";
    web.execute(script, vec![]).await.ok()?.convert().ok()
}

async fn attr(web: &WebDriver, css: &str, name: &str) -> Option<String> {
    web.find(By::Css(css)).await.ok()?.attr(name).await.ok()?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_follow_the_operator_across_pages_and_headers_sort() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wardops.yaml"),
        format!("{FAST_PROBE}{DISPLAY_NAMES}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::write(dir.path().join("inventory/georgia.yaml"), INVENTORY).unwrap();
    let app = tokio::task::block_in_place(|| Appliance::start(dir.path()));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser::browser(&driver, profile.path()).await;
    web.set_window_rect(0, 0, 1280, 900).await.unwrap();

    web.goto(app.url("/monitor")).await.unwrap();
    let all = tokio::task::block_in_place(|| api(&app, ""));
    lists(&web, "/monitor", &all).await;

    // A region picked from the select and a branch typed: each applies by itself.
    choose(&web, "#filters select[name=region]", "tbilisi").await;
    let want = tokio::task::block_in_place(|| api(&app, "region=tbilisi"));
    lists(&web, "region=tbilisi", &want).await;
    let branch = web
        .find(By::Css("#filters input[name=branch]"))
        .await
        .unwrap();
    branch.send_keys("VAKE").await.unwrap();
    let want = tokio::task::block_in_place(|| api(&app, "region=tbilisi&branch=VAKE"));
    assert_eq!(
        want,
        ["vake-atm-1", "vake-router", "vake2-atm-1"],
        "a case-folded substring, within the region"
    );
    lists(&web, "branch=VAKE", &want).await;
    let events = attr(&web, "body", "data-events").await.unwrap();
    assert_eq!(
        events, "/api/v1/events?region=tbilisi&branch=VAKE",
        "the live feed follows the filter"
    );
    // Display names shown, inventory names beside them.
    let tile = web
        .find(By::Css("[data-device='vake-atm-1'] .name"))
        .await
        .unwrap();
    assert_eq!(tile.text().await.unwrap(), "თბილისი ბანკომატი");

    // To /alerts through the nav: the place goes along …
    web.find(By::Css("nav a[data-nav='/alerts']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the alerts page", || async {
        let url = here(&web).await?;
        (url.contains("/alerts") && url.contains("region=tbilisi") && url.contains("branch=VAKE"))
            .then_some(())
    })
    .await;
    // … and back: still filtered, the form still says so.
    web.find(By::Css("nav a[data-nav='/monitor']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    lists(&web, "branch=VAKE", &want).await;
    let shown = web
        .execute(
            "const f = document.getElementById('filters'); return [f.region.value, f.branch.value];",
            vec![],
        )
        .await
        .unwrap()
        .convert::<(String, String)>()
        .unwrap();
    assert_eq!(shown, ("tbilisi".into(), "VAKE".into()));
    // From a page without filters (the dashboard) the remembered ones come back.
    web.goto(app.url("/")).await.unwrap();
    web.find(By::Css("nav a[data-nav='/monitor']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    lists(&web, "branch=VAKE", &want).await;

    // A Mtavruli (capital) search finds a Mkhedruli display name, as the API does.
    web.goto(app.url("/monitor?q=%E1%B2%97%E1%B2%91%E1%B2%98%E1%B2%9A")) // ᲗᲑᲘᲚ
        .await
        .unwrap();
    let found = tokio::task::block_in_place(|| api(&app, "q=%E1%B2%97%E1%B2%91%E1%B2%98%E1%B2%9A"));
    assert_eq!(found, ["vake-atm-1"]);
    lists(&web, "q=ᲗᲑᲘᲚ", &found).await;

    // Sorting: the table's Device header sorts by name, again reverses it.
    web.goto(app.url("/monitor?view=table")).await.unwrap();
    lists(&web, "view=table", &all).await;
    let header = "#devices thead th:nth-child(2)";
    web.find(By::Css(format!("{header} a")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let by_name = tokio::task::block_in_place(|| api(&app, "sort=name"));
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(by_name, sorted);
    lists(&web, "sort=name", &by_name).await;
    assert_eq!(
        attr(&web, header, "aria-sort").await.as_deref(),
        Some("ascending")
    );
    web.find(By::Css(format!("{header} a")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let reversed: Vec<String> = by_name.iter().rev().cloned().collect();
    lists(&web, "dir=desc", &reversed).await;
    assert_eq!(
        attr(&web, header, "aria-sort").await.as_deref(),
        Some("descending")
    );
    // A filter chosen now keeps the order.
    choose(&web, "#filters select[name=kind]", "atm").await;
    let atms = tokio::task::block_in_place(|| api(&app, "kind=atm&sort=name&dir=desc"));
    assert_eq!(atms, ["vake2-atm-1", "vake-atm-1", "batumi-atm-1"]);
    lists(&web, "kind=atm", &atms).await;

    web.quit().await.unwrap();
}
