//! The pages live in a real browser against the real binary (headless Chromium over
//! WebDriver, loopback devices blackholed with nftables):
//! - 300 devices going down and up in bursts, the dashboard and two monitor views (a
//!   status filter, a second page) open side by side: after every burst each page's
//!   headline and group counts equal `/api/v1/dashboard` and `/api/v1/devices` at the
//!   state version the page says it shows, without a reload;
//! - a dead feed looks dead (the server stopped: dimmed, "data as of … — reconnecting",
//!   durations stopped) and comes back by itself when the server does, with right counts;
//! - a region outage of 40 branches shows every branch on the first 1920×1080 screen;
//!   the monitor is saved as screenshots at four sizes; an unknown page is HTML.
//!
//! Each test has its own 127.9x range and nftables table.

mod browser;
mod support;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use browser::{Driver, browser, eventually, mark_load, same_load};
use serde_json::Value;
use support::{Appliance, TWO_PACKET_PROBE, free_port};
use thirtyfour::prelude::*;

const ZONE: &str = "web:\n  display_zone: Asia/Tbilisi\n";

/// An nftables table of this test dropping echo requests to the addresses of a set,
/// whose members are replaced at once; deleted when dropped.
struct Blackholes {
    table: String,
}

impl Blackholes {
    fn new(tag: &str) -> Blackholes {
        let table = format!("wardops_{tag}_{}", std::process::id());
        nft_script(&format!(
            "add table inet {table}\n\
             add set inet {table} hole {{ type ipv4_addr; }}\n\
             add chain inet {table} out {{ type filter hook output priority 0; }}\n\
             add rule inet {table} out ip daddr @hole icmp type echo-request drop\n"
        ));
        Blackholes { table }
    }

    /// Makes exactly `addresses` unreachable (one nft transaction).
    fn set(&self, addresses: &[String]) {
        let mut s = format!("flush set inet {} hole\n", self.table);
        if !addresses.is_empty() {
            let _ = writeln!(
                s,
                "add element inet {} hole {{ {} }}",
                self.table,
                addresses.join(", ")
            );
        }
        nft_script(&s);
    }
}

impl Drop for Blackholes {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}

fn nft_script(script: &str) {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nft is installed (apt-get install nftables)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft -f: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_config(dir: &Path, inventory: &str) {
    std::fs::write(
        dir.join("wardops.yaml"),
        format!("{TWO_PACKET_PROBE}{ZONE}"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(dir.join("inventory/live.yaml"), inventory).unwrap();
}

async fn get_json(app: &Appliance, path: &str) -> Option<Value> {
    reqwest::get(app.url(path)).await.ok()?.json().await.ok()
}

/// What a page shows, read from its DOM: the state version of its live region and its
/// counts by id (numbers found in the element's text), its region rows' data.
const READ: &str = r#"
var m = document.getElementById('live-main');
function n(id) { var e = document.getElementById(id); if (!e) return null; var d = /\d+/.exec(e.textContent); return d ? +d[0] : null; }
var ids = ['total-down','total-up','total-unreachable','total-unknown','count-down','count-up','count-unreachable','count-unknown','count-shown','outage-down','outage-unreachable','outage-branches'];
var out = { version: m ? +m.dataset.version : -1, stale: document.body.classList.contains('stale'), regions: {} };
ids.forEach(function (id) { out[id] = n(id); });
document.querySelectorAll('tr[data-region]').forEach(function (r) {
  out.regions[r.dataset.region] = [+r.dataset.down, +r.dataset.up, +r.dataset.unreachable, +r.dataset.unknown];
});
return JSON.stringify(out);
"#;

async fn read(web: &WebDriver) -> Option<Value> {
    let s = web
        .execute(READ, vec![])
        .await
        .ok()?
        .convert::<String>()
        .ok()?;
    serde_json::from_str(&s).ok()
}

fn num(v: &Value, k: &str) -> i64 {
    v[k].as_i64().unwrap_or(-1)
}

/// Differences between what the page shows and what the API says for the same
/// version: empty when they agree.
fn compare(page: &str, dom: &Value, dash: &Value, list: Option<&Value>) -> Vec<String> {
    let mut bad = Vec::new();
    let mut eq = |what: &str, shown: i64, api: i64| {
        if shown != api {
            bad.push(format!("{page}: {what} shows {shown}, API {api}"));
        }
    };
    let st = &dash["by_status"];
    if page == "/" {
        for s in ["down", "up", "unreachable", "unknown"] {
            eq(
                &format!("total-{s}"),
                num(dom, &format!("total-{s}")),
                st[s].as_i64().unwrap_or(-2),
            );
        }
        for g in dash["by_region"].as_array().into_iter().flatten() {
            let name = g["region"].as_str().unwrap_or("");
            let row = &dom["regions"][name];
            for (i, s) in ["down", "up", "unreachable", "unknown"].iter().enumerate() {
                eq(
                    &format!("region {name} {s}"),
                    row[i].as_i64().unwrap_or(-1),
                    g[s].as_i64().unwrap_or(-2),
                );
            }
        }
    } else if let Some(list) = list {
        // A monitor view: its headline counts the filtered selection.
        let total = list["total"].as_i64().unwrap_or(-2);
        eq("count-shown", num(dom, "count-shown"), total);
    }
    // The outage summary (on both pages) counts every device out.
    let down = st["down"].as_i64().unwrap_or(-2);
    let unreachable = st["unreachable"].as_i64().unwrap_or(-2);
    if down + unreachable > 0 {
        eq("outage-down", num(dom, "outage-down"), down);
        eq(
            "outage-unreachable",
            num(dom, "outage-unreachable"),
            unreachable,
        );
    } else if !dom["outage-down"].is_null() {
        bad.push(format!("{page}: an outage summary with nothing out"));
    }
    bad
}

/// A small deterministic generator (no dependency for it).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

const REGIONS: usize = 3;
const BRANCHES: usize = 10;
const PER_BRANCH: usize = 10;

fn burst_inventory() -> (String, Vec<String>) {
    let mut text = String::from("regions:\n");
    let mut addresses = Vec::new();
    for r in 0..REGIONS {
        let _ = write!(text, "  - name: region-{r}\n    branches:\n");
        for b in 0..BRANCHES {
            let _ = write!(text, "      - name: r{r}-branch-{b}\n        devices:\n");
            for d in 0..PER_BRANCH {
                let a = format!("127.90.{}.{}", r * BRANCHES + b, d + 1);
                let _ = writeln!(
                    text,
                    "          - {{ name: r{r}-b{b}-d{d}, address: {a}, kind: {} }}",
                    if d == 0 { "router" } else { "atm" }
                );
                addresses.push(a);
            }
        }
    }
    (text, addresses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stay_exact_over_bursts_of_300_devices_going_down_and_up() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (inventory, addresses) = burst_inventory();
    let n = addresses.len();
    write_config(dir.path(), &inventory);
    let holes = Blackholes::new("live");
    let app = tokio::task::block_in_place(|| Appliance::start(dir.path()));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(&driver, profile.path()).await;
    web.set_window_rect(0, 0, 1280, 900).await.unwrap();

    // Everything up first.
    eventually(Duration::from_secs(30), "all 300 devices up", || async {
        let d = get_json(&app, "/api/v1/dashboard").await?;
        (d["by_status"]["up"].as_u64()? == n as u64).then_some(())
    })
    .await;

    // Three pages side by side, each loaded once.
    let views = [
        ("/", None),
        (
            "/monitor?status=down&view=table",
            Some("/api/v1/devices?status=down&limit=1"),
        ),
        (
            "/monitor?status=up&page=2",
            Some("/api/v1/devices?status=up&limit=1"),
        ),
    ];
    let mut windows = Vec::new();
    for (i, (path, _)) in views.iter().enumerate() {
        let handle = if i == 0 {
            web.window().await.unwrap()
        } else {
            web.new_window().await.unwrap()
        };
        web.switch_to_window(handle.clone()).await.unwrap();
        web.goto(app.url(path)).await.unwrap();
        eventually(Duration::from_secs(10), "the live feed", || async {
            (web.find(By::Id("live")).await.ok()?.text().await.ok()? == "● live").then_some(())
        })
        .await;
        mark_load(&web).await;
        windows.push(handle);
    }

    let mut rng = Lcg(14);
    let mut mismatches = Vec::new();
    let mut checks = 0;
    let bursts = 20;
    for burst in 0..bursts {
        // A new set out: some go down, others come back, in the same moment.
        let size = match burst % 4 {
            0 => 150 + (rng.next() % 100) as usize,
            1 => (rng.next() % 40) as usize,
            2 => 280,
            _ => (rng.next() % 200) as usize,
        };
        let mut chosen: Vec<String> = addresses.clone();
        for i in (1..chosen.len()).rev() {
            chosen.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        chosen.truncate(size);
        holes.set(&chosen);
        // Settled: the API says exactly these are down.
        let settle = Instant::now();
        eventually(
            Duration::from_secs(20),
            &format!("burst {burst}: {size} down"),
            || async {
                let d = get_json(&app, "/api/v1/dashboard").await?;
                (d["by_status"]["down"].as_u64()? == size as u64
                    && d["by_status"]["up"].as_u64()? == (n - size) as u64)
                    .then_some(())
            },
        )
        .await;
        let settled_in = settle.elapsed();
        for (w, (path, list)) in windows.iter().zip(views.iter()) {
            web.switch_to_window(w.clone()).await.unwrap();
            // The page catches up with the API's version; then both must agree.
            let (dom, dash, list) = eventually(
                Duration::from_secs(10),
                &format!("burst {burst}: {path} at the API's version"),
                || async {
                    let dash = get_json(&app, "/api/v1/dashboard").await?;
                    let list = match list {
                        Some(l) => Some(get_json(&app, l).await?),
                        None => None,
                    };
                    let dom = read(&web).await?;
                    let v = dash["state_version"].as_i64()?;
                    let same = num(&dom, "version") == v
                        && list
                            .as_ref()
                            .is_none_or(|l| l["state_version"].as_i64() == Some(v));
                    same.then_some((dom, dash, list))
                },
            )
            .await;
            checks += 1;
            mismatches.extend(compare(path, &dom, &dash, list.as_ref()));
        }
        eprintln!(
            "burst {burst}: {size} down, settled in {settled_in:?}, pages checked at version {}",
            get_json(&app, "/api/v1/dashboard").await.unwrap()["state_version"]
        );
    }
    for w in &windows {
        web.switch_to_window(w.clone()).await.unwrap();
        assert!(same_load(&web).await, "a page was reloaded");
    }
    eprintln!(
        "{bursts} bursts, {checks} page checks, {} mismatches, {:?}",
        mismatches.len(),
        started.elapsed()
    );
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    holes.set(&[]);
    web.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_feed_looks_dead_and_comes_back_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut inventory =
        String::from("regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n");
    for d in 0..6 {
        let _ = writeln!(
            inventory,
            "          - {{ name: dev-{d}, address: 127.91.0.{}, kind: atm }}",
            d + 1
        );
    }
    write_config(dir.path(), &inventory);
    let holes = Blackholes::new("livedead");
    holes.set(&["127.91.0.1".to_string()]);
    let port = free_port();
    let app = tokio::task::block_in_place(|| Appliance::start_on(dir.path(), port, &[]));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(&driver, profile.path()).await;
    web.set_window_rect(0, 0, 1280, 720).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "dev-0 down, the rest up",
        || async {
            let d = get_json(&app, "/api/v1/dashboard").await?;
            (d["by_status"]["down"].as_u64()? == 1 && d["by_status"]["up"].as_u64()? == 5)
                .then_some(())
        },
    )
    .await;
    web.goto(app.url("/monitor?view=table")).await.unwrap();
    eventually(Duration::from_secs(10), "the live feed", || async {
        (web.find(By::Id("live")).await.ok()?.text().await.ok()? == "● live").then_some(())
    })
    .await;
    let banner = web.find(By::Id("stale")).await.unwrap();
    assert!(
        !banner.is_displayed().await.unwrap(),
        "no banner while live"
    );

    drop(app);
    let stopped = Instant::now();
    let text = eventually(Duration::from_secs(10), "the dead-feed banner", || async {
        let b = web.find(By::Id("stale")).await.ok()?;
        if !b.is_displayed().await.ok()? {
            return None;
        }
        b.text().await.ok()
    })
    .await;
    let after = stopped.elapsed();
    eprintln!("banner after {after:?}: {text}");
    assert!(text.contains("reconnecting"), "{text}");
    assert!(text.starts_with("data as of "), "{text}");
    assert!(text.contains(" +04"), "in the display zone: {text}");
    assert!(after < Duration::from_secs(8), "{after:?}");
    let dom = read(&web).await.unwrap();
    assert!(dom["stale"].as_bool().unwrap(), "the page is dimmed");
    // Its durations stop.
    let dur = || async {
        web.find(By::Css("#devices .dur"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let first = dur().await.expect("a down device's duration");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(dur().await.unwrap(), first, "a dead page does not tick");

    // The server again, on the same port: the page comes back by itself.
    let app = tokio::task::block_in_place(|| Appliance::start_on(dir.path(), port, &[]));
    let back = Instant::now();
    eventually(Duration::from_secs(20), "the banner gone", || async {
        let b = web.find(By::Id("stale")).await.ok()?;
        (!b.is_displayed().await.ok()?).then_some(())
    })
    .await;
    eprintln!("banner gone {:?} after the restart", back.elapsed());
    eventually(
        Duration::from_secs(20),
        "counts right after the restart",
        || async {
            let dash = get_json(&app, "/api/v1/dashboard").await?;
            let list = get_json(&app, "/api/v1/devices?limit=1").await?;
            let dom = read(&web).await?;
            let v = dash["state_version"].as_i64()?;
            if num(&dom, "version") != v || list["state_version"].as_i64() != Some(v) {
                return None;
            }
            let ok = compare("/monitor", &dom, &dash, Some(&list)).is_empty()
                && num(&dom, "count-down") == dash["by_status"]["down"].as_i64()?
                && num(&dom, "count-up") == dash["by_status"]["up"].as_i64()?
                && dash["by_status"]["down"].as_i64()? == 1
                && !dom["stale"].as_bool()?;
            ok.then_some(())
        },
    )
    .await;
    web.quit().await.unwrap();
}

const OUTAGE_BRANCHES: usize = 40;

fn outage_inventory() -> (String, Vec<String>) {
    let mut text = String::from(
        "regions:\n  - name: core\n    branches:\n      - name: dc\n        devices:\n          - { name: core-router, address: 127.92.200.1, kind: router }\n  - name: kakheti\n    branches:\n",
    );
    let mut out = Vec::new();
    for b in 0..OUTAGE_BRANCHES {
        let _ = write!(
            text,
            "      - name: kakheti-{b:02}\n        devices:\n          - {{ name: k{b:02}-gw, address: 127.92.{b}.1, kind: router }}\n"
        );
        out.push(format!("127.92.{b}.1"));
        for d in 2..5 {
            let _ = writeln!(
                text,
                "          - {{ name: k{b:02}-atm-{d}, address: 127.92.{b}.{d}, kind: atm, parents: [k{b:02}-gw] }}"
            );
            out.push(format!("127.92.{b}.{d}"));
        }
    }
    text.push_str("  - name: imereti\n    branches:\n      - name: kutaisi\n        devices:\n          - { name: kutaisi-gw, address: 127.92.201.1, kind: router }\n");
    (text, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_outage_of_40_branches_fits_the_first_screen() {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, out) = outage_inventory();
    write_config(dir.path(), &inventory);
    let holes = Blackholes::new("liveregion");
    let app = tokio::task::block_in_place(|| Appliance::start(dir.path()));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let web = browser(&driver, profile.path()).await;
    web.set_window_rect(0, 0, 1920, 1080).await.unwrap();
    eventually(Duration::from_secs(30), "every device up", || async {
        let d = get_json(&app, "/api/v1/dashboard").await?;
        (d["by_status"]["up"].as_u64()? == d["total"].as_u64()?).then_some(())
    })
    .await;
    web.goto(app.url("/monitor")).await.unwrap();
    eventually(Duration::from_secs(10), "the live feed", || async {
        (web.find(By::Id("live")).await.ok()?.text().await.ok()? == "● live").then_some(())
    })
    .await;
    holes.set(&out);
    eventually(
        Duration::from_secs(30),
        "40 gateways down, 120 ATMs unreachable",
        || async {
            let d = get_json(&app, "/api/v1/dashboard").await?;
            (d["by_status"]["down"].as_u64()? == 40
                && d["by_status"]["unreachable"].as_u64()? == 120)
                .then_some(())
        },
    )
    .await;
    // The page follows by itself (no reload) to 40 rows.
    eventually(
        Duration::from_secs(10),
        "40 branches in the summary",
        || async {
            let dom = read(&web).await?;
            (num(&dom, "outage-branches") == 40 && num(&dom, "outage-unreachable") == 120)
                .then_some(())
        },
    )
    .await;
    let check = r#"
var h = window.innerHeight, rows = document.querySelectorAll('details.o-branch'), off = [];
rows.forEach(function (d) { var r = d.getBoundingClientRect(); if (r.bottom > h || r.top < 0 || r.height === 0) off.push(d.dataset.key); });
return JSON.stringify({ rows: rows.length, off: off, h: h, w: window.innerWidth });
"#;
    let v: Value = serde_json::from_str(
        &web.execute(check, vec![])
            .await
            .unwrap()
            .convert::<String>()
            .unwrap(),
    )
    .unwrap();
    eprintln!("1920×1080: {v}");
    assert_eq!(v["rows"], 40);
    assert!(
        v["off"].as_array().unwrap().is_empty(),
        "rows off the first screen: {v}"
    );

    // A branch opens to its gateway and the ATMs behind it, and stays open across updates.
    web.execute(
        "document.querySelector('details.o-branch').open = true;",
        vec![],
    )
    .await
    .unwrap();
    web.execute("window.wardopsRefresh();", vec![])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let open = web.find(By::Css("details.o-branch[open]")).await.unwrap();
    let text = open.text().await.unwrap();
    assert!(text.contains("-gw") && text.contains("⊘ k"), "{text}");

    // Screenshots of the monitor during the outage at four sizes in the dark theme (the
    // wall's), one in the light theme (this session's: a headless browser prefers light).
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dark_profile = tempfile::tempdir().unwrap();
    let dark = browser::browser_with(&driver, dark_profile.path(), &["--force-dark-mode"]).await;
    for (session, w, h, name) in [
        (&dark, 1280, 720, "monitor-region-outage-1280x720"),
        (&dark, 1920, 1080, "monitor-region-outage-1920x1080"),
        (&dark, 3840, 2160, "monitor-region-outage-3840x2160"),
        (&dark, 390, 844, "monitor-region-outage-390x844"),
        (&web, 1280, 720, "monitor-region-outage-1280x720-light"),
    ] {
        session.set_window_rect(0, 0, w, h).await.unwrap();
        session.goto(app.url("/monitor")).await.unwrap();
        eventually(Duration::from_secs(10), "the live feed", || async {
            (session.find(By::Id("live")).await.ok()?.text().await.ok()? == "● live").then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let png = session.screenshot_as_png().await.unwrap();
        std::fs::write(shots.join(format!("{name}.png")), png).unwrap();
    }
    dark.quit().await.unwrap();

    // An unknown page is an HTML page for the browser.
    web.goto(app.url("/no-such-page")).await.unwrap();
    let title = web.title().await.unwrap();
    assert!(title.starts_with("404"), "{title}");
    let h1 = web.find(By::Tag("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(h1, "404 Not Found");
    holes.set(&[]);
    web.quit().await.unwrap();
}
