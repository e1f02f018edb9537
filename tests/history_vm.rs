//! Device history from a real VictoriaMetrics that scraped the real binary: the device
//! page's chart comes from `query_range` (RTT and loss on their own axes), a device
//! blackholed and restored has its outage band and an availability below 100 % (a
//! healthy one 100 %), a device name with `"` and `\` finds its own series; with
//! VictoriaMetrics frozen or gone the page still answers, within the timeout, saying so;
//! without `victoriametrics.url` the page says it shows the hour in memory. Along the
//! way the 24 h page is saved as `docs/screenshots/device-history-24h-{size}.png` at
//! 1920×1080, 1280×720, 3840×2160 and 390×844.

mod browser;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::victoriametrics::VictoriaMetrics;
use support::{Appliance, Blackhole, FAST_PROBE, free_port, wait_for, wait_status};

const WEIRD: &str = r#"hv "quote\back"#;

fn write_config(dir: &Path, vm: Option<&str>) {
    let mut settings = format!("{FAST_PROBE}web:\n  display_zone: Asia/Tbilisi\n");
    if let Some(url) = vm {
        settings.push_str(&format!("victoriametrics:\n  url: {url}\n  timeout: 2s\n"));
    }
    std::fs::write(dir.join("wardops.yaml"), settings).unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(
        dir.join("inventory/hv.yaml"),
        "regions:\n  - name: hv\n    branches:\n      - name: hv1\n        devices:\n\
         \x20         - { name: hv-ok, address: 127.77.14.1, kind: router }\n\
         \x20         - { name: hv-flaky, address: 127.77.14.2, kind: atm }\n\
         \x20         - { name: 'hv \"quote\\back', address: 127.77.14.3, kind: camera }\n",
    )
    .unwrap();
}

fn page_url(name: &str, query: &str) -> String {
    format!(
        "/devices/{}?{query}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// The page's status, body and how long it took.
fn fetch(app: &Appliance, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let resp = reqwest::blocking::Client::new()
        .get(app.url(path))
        .timeout(Duration::from_secs(30))
        .send()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().unwrap(), started.elapsed())
}

/// The value of `attr="…"` on the history chart's `<svg>`, if the page has the chart.
fn chart_attr(html: &str, attr: &str) -> Option<String> {
    let svg = &html[html.find("<svg class=\"chart history\"")?..];
    let svg = &svg[..svg.find('>')?];
    let at = svg.find(&format!(" {attr}=\""))? + attr.len() + 3;
    Some(svg[at..].split('"').next()?.to_string())
}

/// `s` as the templates escape it (`/` too).
fn esc(s: &str) -> String {
    s.replace('/', "&#x2f;")
}

fn points(html: &str) -> usize {
    chart_attr(html, "data-points").map_or(0, |p| p.parse().unwrap())
}

/// The page's availability figure (`99.52` of `99.52 %`).
fn availability(html: &str) -> Option<f64> {
    let at = html.find("data-availability=\"")? + "data-availability=\"".len();
    html[at..].split(' ').next()?.parse().ok()
}

/// Scraped samples of `device` in VictoriaMetrics: RTT and the request counter.
fn scraped(vm: &VictoriaMetrics, device: &str) -> bool {
    let sel = format!(
        "{{device=\"{}\"}}",
        device.replace('\\', "\\\\").replace('"', "\\\"")
    );
    !vm.query(&format!(
        "count_over_time(wardops_device_rtt_seconds{sel}[5m])"
    ))
    .is_empty()
        && !vm
            .query(&format!(
                "increase(wardops_device_requests_total{sel}[5m]) > 0"
            ))
            .is_empty()
}

/// Synthetic samples of `device` from 24 h to 15 min ago, one a minute, for the
/// screenshot only (a test cannot wait a day): a daily RTT swell, 20 % loss one hour in
/// the afternoon. Labelled `backfill="synthetic"`; the appliance's real scrapes cover
/// the last minutes.
fn synthetic_day(device: &str, now_ms: i64) -> String {
    let mut out = String::new();
    let (mut requests, mut replies) = (0u64, 0u64);
    for m in (15..24 * 60).rev() {
        let t = now_ms - m * 60_000;
        let phase = (m as f64 / (24.0 * 60.0)) * std::f64::consts::TAU;
        let rtt = 0.0012 + 0.0008 * phase.sin().abs() + 0.0002 * ((m % 7) as f64 / 7.0);
        requests += 60;
        replies += if (300..360).contains(&m) { 48 } else { 60 };
        let l = format!("device=\"{device}\",backfill=\"synthetic\"");
        out.push_str(&format!("wardops_device_rtt_seconds{{{l}}} {rtt} {t}\n"));
        out.push_str(&format!(
            "wardops_device_requests_total{{{l}}} {requests} {t}\n"
        ));
        out.push_str(&format!(
            "wardops_device_replies_total{{{l}}} {replies} {t}\n"
        ));
    }
    out
}

/// The page at `path` saved as `docs/screenshots/{name}-{w}x{h}.png` at each size.
async fn screenshots(app: &Appliance, path: &str, name: &str, sizes: &[(u32, u32)]) {
    let driver = browser::Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser::browser_with(&driver, profile.path(), &["--force-dark-mode"]).await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for &(w, h) in sizes {
        web.set_window_rect(0, 0, w, h).await.unwrap();
        web.goto(app.url(path)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let png = web.screenshot_as_png().await.unwrap();
        std::fs::write(dir.join(format!("{name}-{w}x{h}.png")), png).unwrap();
    }
    web.quit().await.unwrap();
}

#[test]
fn device_history_comes_from_a_victoriametrics_that_scraped_the_appliance() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut vm = VictoriaMetrics::start(&[format!("127.0.0.1:{port}")]);
    write_config(dir.path(), Some(&vm.url));
    let app = Appliance::start_on(dir.path(), port, &[]);
    let started = Instant::now();
    wait_status(&app, "hv-ok", "up");
    wait_status(&app, "hv-flaky", "up");
    // A few seconds of scrapes up, an outage, a few seconds up again.
    std::thread::sleep(Duration::from_secs(4));
    {
        let _hole = Blackhole::new("hv", &["127.77.14.2"]);
        wait_status(&app, "hv-flaky", "down");
        std::thread::sleep(Duration::from_secs(4));
    }
    wait_status(&app, "hv-flaky", "up");
    wait_for(
        Duration::from_secs(30),
        "VictoriaMetrics to have scraped the devices",
        || (scraped(&vm, "hv-ok") && scraped(&vm, "hv-flaky") && scraped(&vm, WEIRD)).then_some(()),
    );
    // The newest points of a series younger than a minute come and go between two
    // range queries (VictoriaMetrics still merging them): let the series age first.
    std::thread::sleep(Duration::from_secs(40).saturating_sub(started.elapsed()));
    // Searchable is not yet in every range's last window: wait for the pages' points.
    for (name, range) in [
        ("hv-flaky", "1h"),
        ("hv-flaky", "24h"),
        ("hv-ok", "24h"),
        (WEIRD, "6h"),
    ] {
        wait_for(
            Duration::from_secs(60),
            &format!("{name} {range} points from VictoriaMetrics"),
            || {
                let (_, html, _) = fetch(&app, &page_url(name, &format!("range={range}")));
                (points(&html) > 0).then_some(())
            },
        );
    }

    for range in ["1h", "24h"] {
        let (status, html, _) = fetch(&app, &page_url("hv-flaky", &format!("range={range}")));
        assert_eq!(status, 200);
        assert_eq!(
            chart_attr(&html, "data-source").as_deref(),
            Some("victoriametrics"),
            "{html}"
        );
        assert_eq!(chart_attr(&html, "data-range").as_deref(), Some(range));
        assert!(points(&html) > 0, "{range}: {html}");
        // RTT and loss on axes of their own, the outage from the transitions shaded.
        assert!(
            html.contains("axis axis-rtt") && html.contains("axis axis-loss"),
            "{html}"
        );
        assert!(
            html.contains(r#"class="band band-down""#),
            "{range}: {html}"
        );
        assert_eq!(
            chart_attr(&html, "data-outages").as_deref(),
            Some("1"),
            "{range}"
        );
        let a = availability(&html).expect("an availability figure");
        assert!(a < 100.0 && a > 50.0, "{range}: {a}");
        assert!(html.contains("1 outage,"), "{html}");
        // The range links, without JavaScript, and the chosen one marked.
        for r in ["1h", "6h", "24h", "7d", "30d"] {
            assert!(
                html.contains(&format!("href=\"?range={r}#history\"")),
                "{r}"
            );
        }
        assert!(html.contains(&format!(
            "href=\"?range={range}#history\" aria-current=\"page\""
        )));
        // The time axis in the display zone.
        assert!(html.contains("Asia&#x2f;Tbilisi +04"), "{html}");
    }
    // The outage at 1 h is loss in the lower panel (VictoriaMetrics' newest points of a
    // young series come in over a few seconds: wait for them).
    wait_for(Duration::from_secs(30), "loss bars of the outage", || {
        let (_, html, _) = fetch(&app, &page_url("hv-flaky", "range=1h"));
        html.contains(r#"<rect class="loss""#).then_some(())
    });

    let (_, html, _) = fetch(&app, &page_url("hv-ok", "range=24h"));
    assert_eq!(
        chart_attr(&html, "data-source").as_deref(),
        Some("victoriametrics")
    );
    assert!(points(&html) > 0);
    assert_eq!(availability(&html), Some(100.0), "{html}");
    assert_eq!(chart_attr(&html, "data-outages").as_deref(), Some("0"));
    assert!(!html.contains("band band-"), "{html}");

    // Quoted in PromQL, the name with `"` and `\` selects its own series.
    let (status, html, _) = fetch(&app, &page_url(WEIRD, "range=6h"));
    assert_eq!(status, 200);
    assert!(points(&html) > 0, "{html}");

    // An unknown range is the default, said so.
    let (status, html, _) = fetch(&app, &page_url("hv-ok", "range=2h"));
    assert_eq!(status, 200);
    assert_eq!(chart_attr(&html, "data-range").as_deref(), Some("1h"));
    assert!(
        html.contains("Unknown range &quot;2h&quot;: showing 1 h"),
        "{html}"
    );

    // The screenshot: a day of synthetic samples before the real ones (see synthetic_day).
    let now_ms = chrono::Utc::now().timestamp_millis();
    vm.import(&synthetic_day("hv-flaky", now_ms));
    wait_for(
        Duration::from_secs(20),
        "the backfill to be searchable",
        || {
            let old = vm.query("count_over_time(wardops_device_rtt_seconds{backfill=\"synthetic\"}[2h] offset 12h)");
            (!old.is_empty()).then_some(())
        },
    );
    // The page's answer of a few seconds ago (before the backfill) may be used again.
    wait_for(Duration::from_secs(20), "the backfill on the page", || {
        let (_, html, _) = fetch(&app, &page_url("hv-flaky", "range=24h"));
        (points(&html) > 400).then_some(())
    });
    let sizes = [(1920, 1080), (1280, 720), (3840, 2160), (390, 844)];
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(screenshots(
            &app,
            &page_url("hv-flaky", "range=24h"),
            "device-history-24h",
            &sizes,
        ));

    // Frozen: the port takes the connection and answers nothing. The page still answers,
    // within the 2 s timeout, with the rest of it.
    vm.signal("STOP");
    // The screenshots' answer is used again for a few seconds: wait it out.
    std::thread::sleep(wardops::history::recent::FRESH_FOR);
    let (status, html, took) = fetch(&app, &page_url("hv-flaky", "range=24h"));
    vm.signal("CONT");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let said = format!(
        "VictoriaMetrics at {} did not answer: timed out",
        esc(&vm.url)
    );
    assert!(html.contains(&said), "{html}");
    assert!(html.contains("<h2>Transitions</h2>") && html.contains("data-availability="));
    assert_eq!(chart_attr(&html, "data-source"), None);

    // Gone: refused at once; at 1 h the hour in memory is drawn instead.
    vm.stop();
    std::thread::sleep(wardops::history::recent::FRESH_FOR);
    let (status, html, took) = fetch(&app, &page_url("hv-flaky", "range=1h"));
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let said = format!("VictoriaMetrics at {} did not answer: ", esc(&vm.url));
    assert!(html.contains(&said), "{html}");
    assert!(html.contains("Below: the last hour in memory."), "{html}");
    assert_eq!(
        chart_attr(&html, "data-source").as_deref(),
        Some("memory"),
        "{html}"
    );
    assert!(!app.log().contains("panicked"), "{}", app.log());
}

#[test]
fn without_victoriametrics_the_page_shows_the_hour_in_memory_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None);
    let app = Appliance::start(dir.path());
    wait_status(&app, "hv-ok", "up");
    let (status, html, _) = fetch(&app, &page_url("hv-ok", ""));
    assert_eq!(status, 200);
    assert!(
        html.contains("Only the last hour, kept in memory, is shown: set victoriametrics.url"),
        "{html}"
    );
    // The hour in memory gains its first point within seconds of probing.
    let html = wait_for(
        Duration::from_secs(20),
        "a chart of the hour in memory",
        || {
            let (_, html, _) = fetch(&app, &page_url("hv-ok", "range=1h"));
            (chart_attr(&html, "data-source").as_deref() == Some("memory")).then_some(html)
        },
    );
    assert!(html.contains("axis axis-rtt") && html.contains("axis axis-loss"));
    // Longer: no chart pretending to be a day, but the stored outages still count.
    let (status, html, _) = fetch(&app, &page_url("hv-ok", "range=7d"));
    assert_eq!(status, 200);
    assert!(
        html.contains("No RTT or loss for 7 d: only the last hour is kept in memory"),
        "{html}"
    );
    assert_eq!(chart_attr(&html, "data-source"), None);
    assert_eq!(availability(&html), Some(100.0), "{html}");
}
