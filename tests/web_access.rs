//! Access in a real browser (headless Chromium over WebDriver) against the real binary
//! with anonymous access off: a page asked for is sent to `/login` and comes back after
//! signing in; a form on another site's page (same host, another port: the same *site*,
//! so the SameSite cookie goes along) that posts to the appliance is refused for its
//! origin; signing out ends the session.

mod browser;
mod support;

use std::time::Duration;

use browser::{Driver, eventually};
use support::{Appliance, FAST_PROBE};
use thirtyfour::prelude::*;

fn write_config(dir: &std::path::Path) {
    std::fs::write(
        dir.join("wardops.yaml"),
        format!(
            "{FAST_PROBE}reload:\n  http_endpoint: true\n{}  anonymous: off\n",
            support::ACCESS
        ),
    )
    .unwrap();
    support::write_users(dir);
    std::fs::create_dir(dir.join("inventory")).unwrap();
    std::fs::write(
        dir.join("inventory/a.yaml"),
        "regions:\n  - name: east\n    branches:\n      - name: east1\n        devices:\n          - { name: east-router, address: 127.72.0.1, kind: router }\n",
    )
    .unwrap();
}

/// Another site's page, served by Python's http.server on a port of its own; killed
/// when dropped.
struct Elsewhere {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Elsewhere {
    fn serving(page: &str) -> Elsewhere {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), page).unwrap();
        let port = support::free_port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/");
        support::wait_for(Duration::from_secs(10), "the other site", || {
            reqwest::blocking::get(&url)
                .ok()
                .filter(|r| r.status().is_success())
        });
        Elsewhere {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for Elsewhere {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn text_of(web: &WebDriver) -> String {
    web.find(By::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_required_a_cross_origin_form_is_refused_and_sign_out_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let app = tokio::task::block_in_place(|| Appliance::start_with(dir.path(), &[]));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser::browser(&driver, profile.path()).await;

    // Asked for a page, the browser is sent to sign in first.
    web.goto(app.url("/monitor?region=east")).await.unwrap();
    eventually(Duration::from_secs(10), "the login page", || async {
        web.current_url()
            .await
            .ok()
            .filter(|u| u.path() == "/login")
            .map(|_| ())
    })
    .await;
    browser::sign_in(&web, "operator", "wrong").await;
    // The refusal is a new page: wait for it (a loaded CI checks the password slowly).
    let problem = eventually(Duration::from_secs(10), "the login problem", || async {
        web.find(By::Id("login-problem"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    })
    .await;
    assert_eq!(problem, "Wrong user name or password.");
    browser::sign_in(&web, "operator", "secret").await;
    // …and comes back where it was going.
    eventually(Duration::from_secs(10), "the monitor page", || async {
        let url = web.current_url().await.ok()?;
        (url.path() == "/monitor" && url.query() == Some("region=east")).then_some(())
    })
    .await;
    assert!(text_of(&web).await.contains("east-router"));
    let cookies = web.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name == "wardops_session")
        .expect("a session cookie");
    assert_eq!(session.http_only, Some(true));

    // Another site's form, posting to the appliance with the session's cookie.
    let elsewhere = tokio::task::block_in_place(|| {
        Elsewhere::serving(&format!(
            "<!doctype html><form method=post action=\"{}\"><input name=csrf_token value=guess><button id=go>win a prize</button></form>",
            app.url("/-/reload")
        ))
    });
    web.goto(&elsewhere.url).await.unwrap();
    web.find(By::Id("go")).await.unwrap().click().await.unwrap();
    let refused = eventually(Duration::from_secs(10), "the refusal", || async {
        let text = text_of(&web).await;
        text.contains("403").then_some(text)
    })
    .await;
    assert!(
        refused.contains("cross-origin request refused"),
        "{refused}"
    );

    // Signing out ends the session: pages ask to sign in again.
    web.goto(app.url("/login")).await.unwrap();
    web.find(By::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    web.goto(app.url("/alerts")).await.unwrap();
    eventually(Duration::from_secs(10), "the login page again", || async {
        web.current_url()
            .await
            .ok()
            .filter(|u| u.path() == "/login")
            .map(|_| ())
    })
    .await;
    web.quit().await.unwrap();
}
