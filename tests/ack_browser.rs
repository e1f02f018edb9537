//! Acknowledging in a real browser (headless Chromium over WebDriver) against the real
//! binary, a loopback device blackholed with nftables: an operator signs in on `/login`,
//! acknowledges the alert with a comment from `/alerts` (the form carries the session's
//! CSRF token; the router checks it and the same origin), and a second browser, open on
//! `/alerts` as the anonymous viewer, sees the acknowledgement appear without a reload —
//! and no button of its own.
//!
//! Addresses: 127.141.2.0/24.

mod browser;
mod support;

use std::time::Duration;

use browser::{Driver, browser, eventually, mark_load, same_load};
use support::{Appliance, Blackhole, wait_for, wait_status, write_fast_config};
use thirtyfour::prelude::*;

const ADDRESS: &str = "127.141.2.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_made_in_one_browser_appears_in_another_without_reload() {
    let dir = tempfile::tempdir().unwrap();
    write_fast_config(dir.path(), "racha", &[("r-atm-1", ADDRESS)]);
    let settings = std::fs::read_to_string(dir.path().join("wardops.yaml")).unwrap();
    std::fs::write(
        dir.path().join("wardops.yaml"),
        format!("{settings}{}", support::ACCESS),
    )
    .unwrap();
    support::write_users(dir.path());
    let (app, _dark) = tokio::task::spawn_blocking(move || {
        let app = Appliance::start(dir.path());
        wait_status(&app, "r-atm-1", "up");
        let dark = Blackhole::new("ack_browser", &[ADDRESS]);
        wait_for(Duration::from_secs(20), "the alert", || {
            let page = app.get_json("/api/v1/alerts?status=active");
            (!page["alerts"].as_array()?.is_empty()).then_some(())
        });
        ((app, dir), dark)
    })
    .await
    .unwrap();
    let (app, _dir) = app;
    let driver = Driver::start();
    let profiles = tempfile::tempdir().unwrap();

    // The watcher: the anonymous viewer, on /alerts, live.
    let watcher = browser(&driver, &profiles.path().join("watcher")).await;
    watcher.goto(app.url("/alerts")).await.unwrap();
    eventually(Duration::from_secs(10), "the watcher's feed", || async {
        (watcher.find(By::Id("live")).await.ok()?.text().await.ok()? == "● live").then_some(())
    })
    .await;
    assert!(
        watcher.find(By::Css(".ack-form")).await.is_err(),
        "no button for a viewer"
    );
    mark_load(&watcher).await;

    // The operator signs in and acknowledges.
    let operator = browser(&driver, &profiles.path().join("operator")).await;
    operator
        .goto(app.url("/login?next=%2Falerts"))
        .await
        .unwrap();
    operator
        .find(By::Id("login-user"))
        .await
        .unwrap()
        .send_keys("operator")
        .await
        .unwrap();
    operator
        .find(By::Id("login-password"))
        .await
        .unwrap()
        .send_keys("secret")
        .await
        .unwrap();
    operator
        .find(By::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the operator on /alerts",
        || async {
            let url = operator.current_url().await.ok()?;
            (url.path() == "/alerts").then_some(())
        },
    )
    .await;
    let form = operator.find(By::Css(".ack-form")).await.unwrap();
    let comment = "on it <b>now</b>";
    form.find(By::Css("input[name=comment]"))
        .await
        .unwrap()
        .send_keys(comment)
        .await
        .unwrap();
    form.find(By::Css("button.ack"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Back on /alerts (303): acknowledged, with the button to take it back.
    eventually(
        Duration::from_secs(10),
        "the operator's page to show it",
        || async { operator.find(By::Css("button.unack")).await.ok() },
    )
    .await;

    // The watcher hears of it through the feed: same page load, now acknowledged.
    let tag = eventually(
        Duration::from_secs(10),
        "the acknowledgement on the watcher",
        || async {
            watcher
                .find(By::Css(".tag-ack"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        },
    )
    .await;
    assert!(tag.contains("ACK") && tag.contains("operator"), "{tag}");
    assert!(
        tag.contains(comment),
        "the comment as text, not markup: {tag}"
    );
    assert!(same_load(&watcher).await, "without a reload");
    watcher.quit().await.unwrap();
    operator.quit().await.unwrap();
}
