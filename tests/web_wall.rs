//! `/wall` in a real browser (Debian's chromium and chromium-driver over WebDriver)
//! against the real binary: devices blackholed with nftables (this file's own range,
//! 127.133.0.0/24, and table) turn red on the wall and its headline counts follow the
//! JSON API without a reload; when they answer again the counts follow back and the
//! devices are listed as recently recovered.

mod browser;
mod support;

use std::time::{Duration, Instant};

use browser::{Driver, browser, choose, mark_load, same_load};
use support::{Appliance, Blackhole, TWO_PACKET_PROBE};
use thirtyfour::prelude::*;

const ZONE: &str = "web:\n  display_zone: Asia/Tbilisi\n";

fn inventory() -> String {
    let mut s = String::from("regions:\n");
    for (r, region) in ["east", "west"].iter().enumerate() {
        s += &format!("  - name: {region}\n    branches:\n");
        for b in 0..3 {
            s += &format!("      - name: {region}-b{b}\n        devices:\n");
            for d in 0..4 {
                let host = 1 + r * 12 + b * 4 + d;
                s += &format!(
                    "          - {{ name: {region}-b{b}-d{d}, address: 127.133.0.{host}, kind: atm }}\n"
                );
            }
        }
    }
    s
}

/// The wall's headline counts and its tiles' statuses, read from the page.
async fn wall_counts(web: &WebDriver) -> Option<(u64, u64, u64, u64, usize)> {
    let script = "var n = function (id) { var e = document.getElementById(id); return e ? Number(e.textContent) : -1; };
      return [n('wall-down'), n('wall-unreachable'), n('wall-up'), n('wall-total'),
              document.querySelectorAll('.dot.s-down').length];";
    let v = web.execute(script, vec![]).await.ok()?;
    let (d, u, up, t, dots) = v.convert::<(i64, i64, i64, i64, usize)>().ok()?;
    (d >= 0).then_some((d as u64, u as u64, up as u64, t as u64, dots))
}

/// The API's counts of the same state.
fn api_counts(app: &Appliance) -> (u64, u64, u64, u64) {
    let d = app.get_json("/api/v1/dashboard");
    let s = &d["by_status"];
    let n = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
    (n("down"), n("unreachable"), n("up"), n("total"))
}

/// Waits until the page's counts equal the API's and `want` holds of them.
async fn until_counts(
    web: &WebDriver,
    app: &Appliance,
    timeout: Duration,
    what: &str,
    want: impl Fn((u64, u64, u64, u64, usize)) -> bool,
) {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(page) = wall_counts(web).await {
            let api = tokio::task::block_in_place(|| api_counts(app));
            if (page.0, page.1, page.2, page.3) == api && want(page) {
                return;
            }
            last = Some((page, api));
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: page/api {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_follows_an_outage_and_its_recovery_without_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wardops.yaml"),
        format!("{TWO_PACKET_PROBE}{ZONE}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    std::fs::write(dir.path().join("inventory/wall.yaml"), inventory()).unwrap();
    let app = tokio::task::block_in_place(|| Appliance::start(dir.path()));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(&driver, profile.path()).await;
    web.set_window_rect(0, 0, 1920, 1080).await.unwrap();

    web.goto(app.url("/wall")).await.unwrap();
    until_counts(&web, &app, Duration::from_secs(20), "all 24 up", |c| {
        c == (0, 0, 24, 24, 0)
    })
    .await;
    // Every device is a tile on the first screen at 1920×1080: no scrolling needed.
    let fits = web
        .execute(
            "return Array.from(document.querySelectorAll('.dot')).every(function (e) { var r = e.getBoundingClientRect(); return r.bottom <= innerHeight && r.right <= innerWidth; });",
            vec![],
        )
        .await
        .unwrap()
        .convert::<bool>()
        .unwrap();
    assert!(fits, "every tile within 1920×1080");
    // The clock shows the display zone, ticking.
    let clock = web.find(By::Id("wall-clock")).await.unwrap();
    assert_eq!(
        clock.attr("data-zone").await.unwrap().as_deref(),
        Some("Asia/Tbilisi")
    );
    mark_load(&web).await;

    let blackhole = Blackhole::new("wall", &["127.133.0.1", "127.133.0.6", "127.133.0.16"]);
    until_counts(&web, &app, Duration::from_secs(20), "3 down", |c| {
        c.0 == 3 && c.4 == 3
    })
    .await;
    let out = web
        .find(By::Css(".wall-out"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        out.contains("east-b0") && out.contains("east-b1") && out.contains("west-b0"),
        "every branch out in the summary: {out}"
    );
    // The dashboard's open-alert count and the alerts page's are the same figure, the
    // API's number of open alerts.
    tokio::task::block_in_place(|| {
        support::wait_for(
            Duration::from_secs(10),
            "3 open alerts on both pages",
            || {
                let api = app.get_json("/api/v1/alerts?status=active&limit=1000")["alerts"]
                    .as_array()
                    .map(|a| a.len())?;
                let dash = app.try_get("/")?;
                let alerts = app.try_get("/alerts")?;
                let want = format!("id=\"open-alerts\">({api})<");
                (api == 3 && dash.contains(&want) && alerts.contains(&want)).then_some(())
            },
        )
    });
    drop(blackhole);
    until_counts(&web, &app, Duration::from_secs(20), "all up again", |c| {
        c == (0, 0, 24, 24, 0)
    })
    .await;
    let rec = web
        .find(By::Id("wall-recovered"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for d in ["east-b0-d0", "east-b1-d1", "west-b0-d3"] {
        assert!(rec.contains(d), "{d} listed as recovered: {rec}");
    }
    assert!(same_load(&web).await, "the page was reloaded");

    // Filters apply on change, without an Apply button, and come back on a bare URL.
    web.goto(app.url("/monitor")).await.unwrap();
    let apply = web.find_all(By::Css("form.filters button")).await.unwrap();
    for b in apply {
        assert!(
            !b.is_displayed().await.unwrap(),
            "the Apply button is for no-JS only"
        );
    }
    choose(&web, "select[name=status]", "down").await;
    let on_change = Instant::now() + Duration::from_secs(5);
    while !web
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("status=down")
    {
        assert!(Instant::now() < on_change, "the filter applied on change");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    web.goto(app.url("/monitor")).await.unwrap();
    let back = Instant::now() + Duration::from_secs(5);
    while !web
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/monitor?status=down")
    {
        assert!(
            Instant::now() < back,
            "the filter came back on a bare /monitor"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    web.quit().await.unwrap();
}
