//! Headless Chromium over WebDriver for the browser tests (Debian's chromium and
//! chromium-driver; nothing downloaded): the driver process, a session, and polling.
//! Shared by `web_live.rs`, `web_browser.rs` and `web_wall.rs`.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;

use crate::support;

/// chromedriver on a free port; killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start() -> Driver {
        let port = support::free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium-driver)");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        support::wait_for(Duration::from_secs(20), "chromedriver to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session with its own profile directory.
pub async fn browser(driver: &Driver, profile: &std::path::Path) -> WebDriver {
    browser_with(driver, profile, &[]).await
}

/// [`browser`] with more Chromium switches (`--force-dark-mode`: pages see
/// `prefers-color-scheme: dark`; a headless browser prefers light).
pub async fn browser_with(driver: &Driver, profile: &std::path::Path, extra: &[&str]) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary("/usr/bin/chromium").unwrap();
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        // Several windows of one session stay live side by side: no timer throttling of
        // the ones not in front.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        &format!("--user-data-dir={}", profile.display()),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        caps.add_arg(arg).unwrap();
    }
    WebDriver::new(&driver.url, caps)
        .await
        .expect("start a Chromium session")
}

/// Polls `check` until it returns Some, for up to `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Marks the page now loaded, so that [`same_load`] tells whether it was reloaded since.
pub async fn mark_load(web: &WebDriver) {
    web.execute("window.__sameLoad = true;", vec![])
        .await
        .expect("mark the page load");
}

/// Whether the page is still the load [`mark_load`] marked (no reload, no navigation).
pub async fn same_load(web: &WebDriver) -> bool {
    web.execute("return window.__sameLoad === true", vec![])
        .await
        .expect("read the page-load mark")
        .convert::<bool>()
        .expect("a boolean")
}

/// Picks `value` in the `<select>` at `css` as a user would: set, then a bubbling
/// `change` event (what the filter forms listen to).
pub async fn choose(web: &WebDriver, css: &str, value: &str) {
    web.execute(
        "const s = document.querySelector(arguments[0]); s.value = arguments[1]; s.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![serde_json::json!(css), serde_json::json!(value)],
    )
    .await
    .expect("choose an option");
}

/// Fills the login form on the page `web` shows (`/login`) and sends it.
pub async fn sign_in(web: &WebDriver, user: &str, password: &str) {
    let field = |id: &'static str| web.find(By::Id(id));
    let name = field("login-user").await.unwrap();
    name.clear().await.unwrap();
    name.send_keys(user).await.unwrap();
    field("login-password")
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    field("login-submit").await.unwrap().click().await.unwrap();
}
