//! Page rendering on a fixed state: status in words, counters, the down-first order,
//! escaping of hostile names, and the security headers of a page.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use wardops::config::load::{Source, build_inventory};
use wardops::probe::ProbeOutcome;
use wardops::state::{State, SystemClock};
use wardops::web::{Pages, dashboard, infrastructure, monitor, wall};

mod support;

const INVENTORY: &str = r#"
regions:
  - name: north
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: n1
        lat: 41.7
        lon: 44.8
        devices:
          - { name: n1-router, address: 127.77.7.1, kind: router }
          - { name: "<script>alert(1)</script>", address: 127.77.7.2, kind: atm }
          - { name: n1-old-down, address: 127.77.7.3, kind: atm }
  - name: south
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: s1
        devices:
          - { name: s1-router, address: 127.77.7.4, kind: router }
"#;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn fixed_state() -> State {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: INVENTORY.into(),
    };
    let inventory = build_inventory(&[source], &Default::default()).unwrap();
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let probe = |name: &str, ok: bool, at| {
        let s = state.snapshot();
        let (d, _, rt) = s.device(name).unwrap();
        let outcome = ProbeOutcome {
            sent: 1,
            received: u32::from(ok),
            rtt: ok.then_some(Duration::from_micros(1200)),
        };
        state.record_probe(d, rt, &outcome, at);
    };
    probe("n1-router", true, t(0));
    probe("s1-router", true, t(0));
    probe("n1-old-down", false, t(-3780)); // down for 1h 03m at t(0)
    probe("<script>alert(1)</script>", false, t(-120)); // recent
    state
}

/// The pages over `state`, with no background tasks (nothing changes the rendering), and
/// the store they read (keep it while rendering).
async fn pages(state: &State) -> (Pages, (tempfile::TempDir, wardops::store::startup::Started)) {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, started) = support::local_context(state, dir.path()).await;
    (Pages::new(Arc::new(ctx)), (dir, started))
}

async fn body(r: hyper::Response<wardops::http::response::Body>) -> (hyper::HeaderMap, String) {
    let headers = r.headers().clone();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    (headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn the_wall_lists_down_first_longest_first_with_words_and_escapes_names() {
    let state = fixed_state();
    let (web, _store) = pages(&state).await;
    let snapshot = state.snapshot();
    let q = monitor::MonitorQuery::parse(Some("view=table")).unwrap();
    let (headers, html) = body(monitor::render(&web, &snapshot, t(0), &q)).await;
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        !html.contains("<script>alert(1)</script>"),
        "a device name is never markup"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    // Only the page's own scripts (app.js, filters.js), loaded from /static.
    assert_eq!(html.matches("<script").count(), 2);
    assert_eq!(
        html.matches("<script src=\"&#x2f;static&#x2f;").count()
            + html.matches("<script src=\"/static/").count(),
        2
    );
    let old = html.find("data-device=\"n1-old-down\"").unwrap();
    let recent = html.find("data-device=\"&lt;script&gt;").unwrap();
    let up = html.find("data-device=\"n1-router\"").unwrap();
    assert!(
        old < recent && recent < up,
        "down first, longest down first"
    );
    assert!(html.contains("1h 03m"), "down-for as the wall reads it");
    assert!(
        html.contains("▼ DOWN") && html.contains("▲ UP"),
        "status in words, not only colour"
    );
    assert!(
        html.contains("NEW"),
        "a device down < 10 min is marked recent"
    );
    assert!(html.contains(&format!(
        "state <b id=\"state-version\">{}</b>",
        snapshot.version
    )));
    assert!(
        html.contains("id=\"count-down\">2<") && html.contains("id=\"count-up\">2<"),
        "counters"
    );
    assert!(
        html.contains("live feed: off"),
        "the feed state is shown before the script connects"
    );
}

#[tokio::test]
async fn filters_narrow_the_wall_and_the_feed() {
    let state = fixed_state();
    let (web, _store) = pages(&state).await;
    let q = monitor::MonitorQuery::parse(Some("region=south&status=up")).unwrap();
    let (_, html) = body(monitor::render(&web, &state.snapshot(), t(0), &q)).await;
    assert!(html.contains("data-device=\"s1-router\""));
    assert!(!html.contains("data-device=\"n1-router\""));
    // minijinja escapes `/` and `=` in attributes; the browser reads them back.
    let unescaped = html.replace("&#x2f;", "/").replace("&#x3d;", "=");
    assert!(
        unescaped.contains("data-events=\"/api/v1/events?region=south\""),
        "the feed is scoped too"
    );
}

#[tokio::test]
async fn the_dashboard_counts_and_lists_down_devices() {
    let state = fixed_state();
    let (web, _store) = pages(&state).await;
    let prober =
        dashboard::ProberView::of(&Default::default(), vec!["the prober is stalled".into()]);
    let alerts = dashboard::AlertsBlock {
        open: Vec::new(),
        more: false,
        total: 0,
        error: Some("no store configured".into()),
    };
    let (_, html) = body(dashboard::render(
        &web,
        &state.snapshot(),
        t(0),
        prober,
        alerts,
    ))
    .await;
    assert!(html.contains("id=\"total-down\">2<") && html.contains("id=\"total-up\">2<"));
    assert!(html.contains("n1-old-down") && html.contains("1h 03m"));
    assert!(html.contains("not ready: the prober is stalled"));
    assert!(html.contains("no store configured"));
    assert!(!html.contains("<script>alert"));
}

#[tokio::test]
async fn infrastructure_puts_the_worst_region_first_and_maps_branches() {
    let state = fixed_state();
    let (web, _store) = pages(&state).await;
    let (_, html) = body(infrastructure::render(&web, &state.snapshot(), t(0))).await;
    assert!(html.find(">north<").unwrap() < html.find(">south<").unwrap());
    assert!(html.contains("<svg class=\"map\""));
    assert!(html.contains("▼ n1 (2/3)"));
}

/// A branch behind its gateway (`parents:` on the branch) that went dark: the gateway
/// down, the two devices behind it unreachable.
const BEHIND_A_GATEWAY: &str = r#"
regions:
  - name: east
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: e1
        lat: 41.7
        lon: 44.8
        parents: [e1-gw]
        devices:
          - { name: e1-gw, address: 127.77.8.1, kind: router }
          - { name: e1-atm, address: 127.77.8.2, kind: atm }
          - { name: e1-cam, address: 127.77.8.3, kind: camera }
  - name: west
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: w1
        lat: 41.6
        lon: 41.6
        devices:
          - { name: w1-router, address: 127.77.8.4, kind: router }
"#;

fn dark_branch() -> State {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: BEHIND_A_GATEWAY.into(),
    };
    let inventory = build_inventory(&[source], &Default::default()).unwrap();
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let probe = |name: &str, ok: bool, at| {
        let s = state.snapshot();
        let (d, _, rt) = s.device(name).unwrap();
        let outcome = ProbeOutcome {
            sent: 1,
            received: u32::from(ok),
            rtt: ok.then_some(Duration::from_micros(1200)),
        };
        state.record_probe(d, rt, &outcome, at);
    };
    for name in ["e1-gw", "e1-atm", "e1-cam", "w1-router"] {
        probe(name, true, t(-4000));
    }
    probe("e1-gw", false, t(-700));
    // Recent outages, but not their own: no NEW mark.
    probe("e1-cam", false, t(-90));
    probe("e1-atm", false, t(-120));
    let s = state.snapshot();
    for (name, status) in [
        ("e1-gw", "down"),
        ("e1-atm", "unreachable"),
        ("e1-cam", "unreachable"),
    ] {
        assert_eq!(s.device(name).unwrap().1.status.as_str(), status, "{name}");
    }
    state
}

#[tokio::test]
async fn the_wall_shows_unreachable_in_words_after_the_down_ones() {
    let state = dark_branch();
    let (web, _store) = pages(&state).await;
    let snapshot = state.snapshot();
    for view in ["table", "grid"] {
        let q = monitor::MonitorQuery::parse(Some(&format!("view={view}"))).unwrap();
        let (_, html) = body(monitor::render(&web, &snapshot, t(0), &q)).await;
        let at = |name: &str| html.find(&format!("data-device=\"{name}\"")).unwrap();
        assert!(
            at("e1-gw") < at("e1-atm")
                && at("e1-atm") < at("e1-cam")
                && at("e1-cam") < at("w1-router"),
            "{view}: down, then unreachable longest first, then the rest"
        );
        assert_eq!(html.matches("⊘ UNREACHABLE").count(), 2, "{view}: in words");
        assert_eq!(html.matches("▼ DOWN").count(), 1, "{view}");
        assert!(html.contains("st-row-unreachable"), "{view}");
        assert_eq!(html.matches("behind e1-gw").count(), 2, "{view}: why");
        assert!(
            !html.contains("\"tag\">NEW"),
            "{view}: an unreachable device is not a new outage"
        );
        assert!(
            html.contains("id=\"count-unreachable\">2<") && html.contains("id=\"count-down\">1<"),
            "{view}: counters"
        );
        assert!(html.contains("data-status=\"unreachable\""), "{view}");
    }
    let q = monitor::MonitorQuery::parse(Some("view=grid")).unwrap();
    let (_, grid) = body(monitor::render(&web, &snapshot, t(0), &q)).await;
    assert!(
        grid.contains("unreachable for 2m 00s"),
        "its own duration label"
    );
    assert!(grid.contains("down for 11m 40s"));
    let q = monitor::MonitorQuery::parse(Some("status=unreachable")).unwrap();
    let (_, only) = body(monitor::render(&web, &snapshot, t(0), &q)).await;
    assert!(only.contains("data-device=\"e1-atm\"") && only.contains("data-device=\"e1-cam\""));
    assert!(!only.contains("data-device=\"e1-gw\"") && !only.contains("data-device=\"w1-router\""));
    assert!(
        only.contains("<option value=\"unreachable\" selected>"),
        "the filter offers it"
    );
}

#[tokio::test]
async fn the_dashboard_and_infrastructure_count_unreachable_and_the_alert_counts_them() {
    let state = dark_branch();
    let (web, _store) = pages(&state).await;
    let prober = dashboard::ProberView::of(&Default::default(), Vec::new());
    let alert = wardops::store::AlertRow {
        id: 1,
        device: "e1-gw".into(),
        condition: "device_down".into(),
        severity: "critical".into(),
        message: "device e1-gw (127.77.8.1) is down".into(),
        opened_at: t(-700),
        resolved_at: None,
        resolution: None,
        acknowledged_at: None,
        acknowledged_by: None,
        acknowledged_comment: None,
    };
    let alerts = dashboard::AlertsBlock {
        open: vec![wardops::web::alerts::AlertView::from(alert)],
        more: false,
        total: 0,
        error: None,
    };
    let (_, html) = body(dashboard::render(
        &web,
        &state.snapshot(),
        t(0),
        prober,
        alerts,
    ))
    .await;
    assert!(html.contains("id=\"total-unreachable\">2<") && html.contains("id=\"total-down\">1<"));
    assert!(html.contains("⊘ unreachable"), "the total in words");
    assert!(html.contains("⊘ 2 unreachable behind a down parent"));
    assert!(
        html.contains("⊘ 2 unreachable behind it"),
        "the gateway's alert counts the devices behind it"
    );
    assert!(
        html.contains(r#"<span class="behind-of" data-alert="1">"#),
        "where the live feed's alert_updated writes the new count"
    );

    let (_, infra) = body(infrastructure::render(&web, &state.snapshot(), t(0))).await;
    assert!(
        infra.contains("⊘ 2 unreachable"),
        "counts include it, in words"
    );
    assert!(
        infra.find(">east<").unwrap() < infra.find(">west<").unwrap(),
        "the dark region first"
    );
    // The map's pin counts the branch's unreachable devices too, apart from the down one.
    assert!(
        infra.contains("▼ e1 (1 down, 2 unreachable/3)"),
        "the dark branch's pin: {infra}"
    );
    assert!(infra.contains("e1: 1 down, 2 unreachable of 3"), "{infra}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_page_says_what_it_is_behind() {
    let state = dark_branch();
    let (web, store) = pages(&state).await;
    let web = Arc::new(web);
    let get = |path: &str| {
        let web = web.clone();
        let req = hyper::Request::get(path).body(bytes::Bytes::new()).unwrap();
        tokio::task::spawn_blocking(move || wardops::web::device::get(&web, &req))
    };
    let (_, atm) = body(get("/devices/e1-atm").await.unwrap()).await;
    assert!(atm.contains("⊘ UNREACHABLE"));
    assert!(
        atm.contains("unreachable because e1-gw is down"),
        "why, in words"
    );
    assert!(atm.contains("unreachable for "));
    let (_, gw) = body(get("/devices/e1-gw").await.unwrap()).await;
    assert!(
        gw.contains("— (no parents)"),
        "a gateway is never its own parent"
    );
    assert!(gw.contains("⊘ 2 unreachable"), "how many are behind it");
    drop(store);
}

/// The 4K wall: headline counts from the snapshot, the outage summary worst branch
/// first, every device one tile (name and status in its title), names escaped, and the
/// clock in the display time zone with its offset.
#[tokio::test]
async fn the_wall_shows_counts_outages_every_device_and_a_local_clock() {
    let state = fixed_state();
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, _started) = support::local_context(&state, dir.path()).await;
    ctx.web.display_zone = chrono_tz::Asia::Tbilisi;
    let web = Pages::new(Arc::new(ctx));
    let (headers, html) = body(wall::render(&web, &state.snapshot(), t(0))).await;
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(html.contains("id=\"wall-down\">2<"), "{html}");
    assert!(html.contains("id=\"wall-up\">2<") && html.contains("id=\"wall-total\">4<"));
    assert!(html.contains("id=\"wall-unreachable\">0<"));
    // One branch out, named with its down devices, longest down first.
    assert!(html.contains("(1 branch)"));
    let row = &html[html.find("class=\"wall-out\"").unwrap()..];
    assert!(row.contains("<b>n1</b>") && row.contains("n1-old-down, &lt;script&gt;"));
    // Every device is a tile; its status is in its class and its title.
    assert_eq!(html.matches("class=\"dot ").count(), 4);
    // (minijinja escapes `/` in attributes too.)
    assert!(html.contains("class=\"dot s-down\" href=\"&#x2f;devices&#x2f;n1%2Dold%2Ddown\""));
    assert!(!html.contains("<script>alert"));
    // 1_800_000_000 is 08:00:00 UTC: 12:00:00 in Tbilisi (UTC+04:00).
    assert!(html.contains("data-zone=\"Asia&#x2f;Tbilisi\">12:00:00<"));
    assert!(html.contains("UTC+04:00"));
    assert!(html.contains("/static/wall.js?v="));
}

/// The wall lists a device that recovered in the last 30 minutes, with how long it was
/// out, from the recently-recovered list the context keeps from the state's transitions.
#[tokio::test]
async fn the_wall_lists_recent_recoveries_with_their_duration() {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: INVENTORY.into(),
    };
    let inventory = build_inventory(&[source], &Default::default()).unwrap();
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, _started) = support::local_context(&state, dir.path()).await;
    ctx.recovered = wardops::read_model::Recovered::start(&state);
    let now = Utc::now();
    let probe = |ok: bool, at| {
        let s = state.snapshot();
        let (d, _, rt) = s.device("s1-router").unwrap();
        let outcome = ProbeOutcome {
            sent: 1,
            received: u32::from(ok),
            rtt: ok.then_some(Duration::from_micros(1200)),
        };
        state.record_probe(d, rt, &outcome, at);
    };
    probe(true, now - chrono::TimeDelta::seconds(400));
    probe(false, now - chrono::TimeDelta::seconds(367));
    probe(true, now - chrono::TimeDelta::seconds(60));
    let web = Pages::new(Arc::new(ctx));
    let mut html = String::new();
    for _ in 0..50 {
        html = body(wall::render(&web, &state.snapshot(), now)).await.1;
        if html.contains("<b>s1-router</b>") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rec = &html[html
        .find("id=\"wall-recovered\"")
        .expect("the recovered list")..];
    assert!(rec.contains("(last 30 min: 1)"), "{rec}");
    assert!(rec.contains("<b>s1-router</b> · south / s1"), "{rec}");
    assert!(
        rec.contains("out 5m 07s") && rec.contains("1m 00s"),
        "{rec}"
    );
}

/// Above `wall::DEVICE_TILES` devices the wall draws one square a branch, coloured by
/// its worst device, so that a 100,000-device page stays small.
#[tokio::test]
async fn a_wall_of_more_devices_than_tiles_draws_one_square_a_branch() {
    let n = wall::DEVICE_TILES + 8;
    let mut text = String::from(
        "regions:\n  - name: big\n    probe: { down_after: 1, up_after: 1 }\n    branches:\n",
    );
    for i in 0..n {
        if i % 8 == 0 {
            text += &format!("      - name: b{}\n        devices:\n", i / 8);
        }
        text += &format!(
            "          - {{ name: d{i}, address: 127.134.{}.{}, kind: atm }}\n",
            i / 256,
            i % 256
        );
    }
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text,
    };
    let inventory = build_inventory(&[source], &Default::default()).unwrap();
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    let s = state.snapshot();
    let (d, _, rt) = s.device("d9").unwrap();
    let down = ProbeOutcome {
        sent: 1,
        received: 0,
        rtt: None,
    };
    state.record_probe(d, rt, &down, t(0));
    let (web, _store) = pages(&state).await;
    let (_, html) = body(wall::render(&web, &state.snapshot(), t(0))).await;
    assert!(html.contains("one square a branch"));
    assert_eq!(html.matches("class=\"dot ").count(), n / 8);
    assert_eq!(html.matches("class=\"dot s-down\"").count(), 1);
    assert!(!html.contains("data-device="));
    assert!(html.contains("id=\"wall-down\">1<"));
}

/// Two branches whose names share `vake`, devices with Georgian display names (one in
/// Mtavruli, the capitals), one down.
const NAMED: &str = r#"
regions:
  - name: tbilisi
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: Vake
        devices:
          - { name: vake-router-1, address: 127.77.8.1, kind: router, labels: { display_name: "ვაკე როუტერი" } }
          - { name: vake-atm-1, address: 127.77.8.2, kind: atm, labels: { display_name: "ᲗᲑᲘᲚᲘᲡᲘ ᲑᲐᲜᲙᲝᲛᲐᲢᲘ" } }
      - name: vake-2
        devices:
          - { name: vake2-atm-1, address: 127.77.8.3, kind: atm }
      - name: saburtalo
        devices:
          - { name: sab-atm-1, address: 127.77.8.4, kind: atm, labels: { display_name: "<b>საბურთალო</b>" } }
"#;

fn named_state() -> State {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: NAMED.into(),
    };
    let inventory = build_inventory(&[source], &Default::default()).unwrap();
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    for (name, ok, at) in [
        ("vake-router-1", true, 0),
        ("vake2-atm-1", true, 0),
        ("sab-atm-1", true, 0),
        ("vake-atm-1", false, -600),
    ] {
        let s = state.snapshot();
        let (d, _, rt) = s.device(name).unwrap();
        let outcome = ProbeOutcome {
            sent: 1,
            received: u32::from(ok),
            rtt: ok.then_some(Duration::from_micros(900)),
        };
        state.record_probe(d, rt, &outcome, t(at));
    }
    state
}

/// Pages over `state` with `web.display_name_label: display_name`.
async fn named_pages(
    state: &State,
) -> (Pages, (tempfile::TempDir, wardops::store::startup::Started)) {
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, started) = support::local_context(state, dir.path()).await;
    ctx.web.display_name_label = Some("display_name".into());
    (Pages::new(Arc::new(ctx)), (dir, started))
}

/// The devices a page lists, in order, and its "shown" count.
fn listed(html: &str) -> (Vec<String>, usize) {
    let names = html
        .split("data-device=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect();
    let shown = html
        .split("id=\"count-shown\">")
        .nth(1)
        .and_then(|s| s[..s.find('<').unwrap()].parse().ok())
        .expect("a shown count");
    (names, shown)
}

/// The JSON API's names and total for the same query.
fn api_listed(state: &State, query: &str) -> (Vec<String>, usize) {
    let q = wardops::read_model::ListQuery::parse(Some(query)).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&wardops::api::devices::devices_json(&state.snapshot(), &q))
            .unwrap();
    let names = json["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    (names, json["total"].as_u64().unwrap() as usize)
}

fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Branch and search filters on /monitor match as the JSON API does (same names, same
/// totals), case-folded and by substring, with quotes for one exact branch.
#[tokio::test]
async fn monitor_filters_match_by_substring_and_fold_case_like_the_api() {
    let state = named_state();
    let (web, _store) = named_pages(&state).await;
    for (query, want) in [
        (
            "branch=VAKE",
            &["vake-atm-1", "vake-router-1", "vake2-atm-1"][..],
        ),
        ("branch=%22Vake%22", &["vake-atm-1", "vake-router-1"][..]),
        ("branch=ake-", &["vake2-atm-1"][..]),
        // Mkhedruli (lower case) finds a display name written in Mtavruli.
        ("q=თბილისი", &["vake-atm-1"][..]),
        ("q=ᲕᲐᲙᲔ", &["vake-router-1"][..]),
        ("q=127.77.8.4", &["sab-atm-1"][..]),
        ("q=nothing-like-it", &[][..]),
    ] {
        let q = monitor::MonitorQuery::parse(Some(&format!("view=table&{query}"))).unwrap();
        let (_, html) = body(monitor::render(&web, &state.snapshot(), t(0), &q)).await;
        let (page, shown) = listed(&html);
        let (api, total) = api_listed(&state, query);
        assert_eq!(page, want, "{query}: the page");
        assert_eq!(
            (&api, total),
            (&page, shown),
            "{query}: the API says the same"
        );
    }
    // The feed follows the branch filter as written; the nav carries the place along.
    let q = monitor::MonitorQuery::parse(Some("region=tbilisi&branch=vake")).unwrap();
    let (_, html) = body(monitor::render(&web, &state.snapshot(), t(0), &q)).await;
    let html = unescape(&html);
    assert!(
        html.contains("data-events=\"/api/v1/events?region=tbilisi&branch=vake\""),
        "the feed is scoped by the same branch filter"
    );
    assert!(html.contains("href=\"/alerts?region=tbilisi&branch=vake\" data-nav=\"/alerts\""));
    assert!(html.contains("href=\"/monitor?region=tbilisi&branch=vake\" data-nav=\"/monitor\""));
}

/// A display name label is shown as the name (escaped), the inventory name beside it;
/// links and `data-device` stay the inventory name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_are_shown_with_the_inventory_name_beside_them() {
    let state = named_state();
    let (web, store) = named_pages(&state).await;
    let q = monitor::MonitorQuery::parse(None).unwrap();
    let (_, grid) = body(monitor::render(&web, &state.snapshot(), t(0), &q)).await;
    assert!(grid.contains(
        "<span class=\"name\">ᲗᲑᲘᲚᲘᲡᲘ ᲑᲐᲜᲙᲝᲛᲐᲢᲘ</span><span class=\"inv-name\">vake-atm-1</span>"
    ));
    assert!(grid.contains("&lt;b&gt;საბურთალო&lt;&#x2f;b&gt;") && !grid.contains("<b>საბ"));
    assert!(
        grid.contains("<span class=\"name\">vake2-atm-1</span>\n"),
        "no label, no second name"
    );
    let q = monitor::MonitorQuery::parse(Some("view=table")).unwrap();
    let (_, table) = body(monitor::render(&web, &state.snapshot(), t(0), &q)).await;
    assert!(table.contains(">ვაკე როუტერი</a> <span class=\"inv-name\">vake-router-1</span>"));
    let (_, dash) = body(dashboard::render(
        &web,
        &state.snapshot(),
        t(0),
        dashboard::ProberView::of(&Default::default(), Vec::new()),
        dashboard::AlertsBlock {
            open: vec![wardops::web::alerts::AlertView::from(
                wardops::store::AlertRow {
                    id: 1,
                    device: "vake-atm-1".into(),
                    condition: "device_down".into(),
                    severity: "critical".into(),
                    message: String::new(),
                    opened_at: t(-600),
                    resolved_at: None,
                    resolution: None,
                    acknowledged_at: None,
                    acknowledged_by: None,
                    acknowledged_comment: None,
                },
            )],
            more: false,
            total: 1,
            error: None,
        },
    ))
    .await;
    assert!(dash.contains(">ᲗᲑᲘᲚᲘᲡᲘ ᲑᲐᲜᲙᲝᲛᲐᲢᲘ</a> <span class=\"inv-name\">vake-atm-1</span>"));
    assert!(
        dash.contains(">ᲗᲑᲘᲚᲘᲡᲘ ᲑᲐᲜᲙᲝᲛᲐᲢᲘ</a> device_down"),
        "the open alerts name it too"
    );
    let summary = one_between(&dash, "id=\"outages\"", "</section>");
    assert!(
        summary.contains("title=\"vake-atm-1\">▼ ᲗᲑᲘᲚᲘᲡᲘ ᲑᲐᲜᲙᲝᲛᲐᲢᲘ</a>"),
        "the outage summary names it too: {summary}"
    );
    let web = Arc::new(web);
    let device = tokio::task::spawn_blocking(move || {
        let req = hyper::Request::get("/devices/vake-atm-1")
            .body(bytes::Bytes::new())
            .unwrap();
        wardops::web::device::get(&web, &req)
    })
    .await
    .unwrap();
    let (_, page) = body(device).await;
    assert!(page.contains("<title>ᲗᲑᲘᲚᲘᲡᲘ ᲑᲐᲜᲙᲝᲛᲐᲢᲘ · wardops</title>"));
    assert!(page.contains("<small class=\"inv-name\">vake-atm-1</small>"));
    drop(store);
}

/// The table's column headers sort server-side: a link per sortable column that
/// toggles the direction, `aria-sort` on the sorted one, ties by name, the filters and
/// the order kept in the pager, the form and the API alike; an unknown column is a 400.
#[tokio::test]
async fn table_columns_sort_with_links_that_toggle_and_aria_sort() {
    let state = named_state();
    let (web, _store) = named_pages(&state).await;
    let render = |query: &str| {
        let q = monitor::MonitorQuery::parse(Some(query)).unwrap();
        monitor::render(&web, &state.snapshot(), t(0), &q)
    };
    let (_, html) = body(render("view=table")).await;
    let html = unescape(&html);
    assert!(html.contains("<th aria-sort=\"ascending\"><a class=\"sort\" href=\"/monitor?sort=status&dir=desc&view=table\""));
    assert!(html.contains("<a class=\"sort\" href=\"/monitor?sort=name&view=table\""));
    assert!(html.contains("<th>RTT</th>"), "RTT does not sort");
    for (query, want) in [
        (
            "sort=name",
            &["sab-atm-1", "vake-atm-1", "vake-router-1", "vake2-atm-1"][..],
        ),
        (
            "sort=name&dir=desc",
            &["vake2-atm-1", "vake-router-1", "vake-atm-1", "sab-atm-1"][..],
        ),
        // Kind ties (three ATMs) are by name in both directions.
        (
            "sort=kind&dir=desc",
            &["vake-router-1", "sab-atm-1", "vake-atm-1", "vake2-atm-1"][..],
        ),
        (
            "sort=region&branch=vake",
            &["vake-atm-1", "vake-router-1", "vake2-atm-1"][..],
        ),
    ] {
        let (_, html) = body(render(&format!("view=table&{query}"))).await;
        let (page, shown) = listed(&html);
        assert_eq!(page, want, "{query}");
        assert_eq!(api_listed(&state, query), (page, shown), "{query}: the API");
    }
    let (_, html) = body(render("view=table&sort=name&status=up")).await;
    let html = unescape(&html);
    assert!(html.contains("<th aria-sort=\"ascending\"><a class=\"sort\" href=\"/monitor?status=up&sort=name&dir=desc&view=table\""));
    assert!(html.contains("<input type=\"hidden\" name=\"sort\" value=\"name\">"));
    let (_, html) = body(render("view=table&sort=name&dir=desc")).await;
    let html = unescape(&html);
    assert!(html.contains(
        "<th aria-sort=\"descending\"><a class=\"sort\" href=\"/monitor?sort=name&view=table\""
    ));
    assert_eq!(html.matches("aria-sort=").count(), 1, "one sorted column");

    let req = hyper::Request::get("/monitor?sort=rtt")
        .body(bytes::Bytes::new())
        .unwrap();
    let r = monitor::get(&web, &req);
    assert_eq!(r.status(), 400);
    let (_, html) = body(r).await;
    assert!(
        html.contains(
            "sort &quot;rtt&quot; is not one of status, name, address, region, kind, since"
        ),
        "{html}"
    );
}

/// Links to one branch (device page, infrastructure, wall, outage summary) match it
/// exactly: `vake` does not also list `vake-2`.
#[tokio::test]
async fn links_to_one_branch_are_exact() {
    let state = named_state();
    let (web, _store) = named_pages(&state).await;
    let (_, html) = body(infrastructure::render(&web, &state.snapshot(), t(0))).await;
    let html = unescape(&html);
    assert!(
        html.contains("/monitor?region=tbilisi&branch=%22Vake%22"),
        "{html}"
    );
    let (_, html) = body(wall::render(&web, &state.snapshot(), t(0))).await;
    assert!(unescape(&html).contains("/monitor?region=tbilisi&branch=%22Vake%22"));
}

/// Every text between `before` and the next `after` in `html`.
fn all_between<'a>(html: &'a str, before: &str, after: &str) -> Vec<&'a str> {
    html.split(before)
        .skip(1)
        .filter_map(|s| s.find(after).map(|i| &s[..i]))
        .collect()
}

/// The href (unescaped) of the link whose text is `text`, if the page has one.
fn link(html: &str, text: &str) -> Option<String> {
    let end = html.find(&format!("\">{text}"))?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(unescape(&html[start..end]))
}

fn one_between<'a>(html: &'a str, before: &str, after: &str) -> &'a str {
    all_between(html, before, after)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no {before}…{after} in the page"))
}

/// Open alerts of the JSON API, every page of it (`next_before`).
fn api_alerts(app: &support::Appliance, status: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let page = app.get_json(&format!(
            "/api/v1/alerts?status={status}&limit=1000{before}"
        ));
        out.extend(page["alerts"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_str() {
            Some(b) => before = format!("&before={b}"),
            None => return out,
        }
    }
}

/// 120 devices in 60 branches of two regions go down (the real binary, nftables): the
/// alerts page is 60 branch groups of 2, 50 to a page, worst (then longest) first, each
/// with its count and durations; its open count is the dashboard's and the API's; the
/// place filters narrow it as the device list's do. After recovery the resolved list
/// pages by the history cursor with how long each lasted, nothing skipped or repeated.
#[test]
fn many_open_alerts_are_grouped_by_branch_and_paged_with_counts_equal_to_the_api() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wardops.yaml"), support::FAST_PROBE).unwrap();
    std::fs::create_dir(dir.path().join("inventory")).unwrap();
    let mut inv = String::from("regions:\n");
    for r in 0..2 {
        inv.push_str(&format!("  - name: r{r}\n    branches:\n"));
        for b in 0..30 {
            inv.push_str(&format!("      - name: b{b:02}\n        devices:\n"));
            for d in 0..2 {
                let n = r * 60 + b * 2 + d + 1;
                inv.push_str(&format!(
                    "          - {{ name: r{r}-b{b:02}-atm-{d}, address: 127.77.10.{n}, kind: atm }}\n"
                ));
            }
        }
    }
    std::fs::write(dir.path().join("inventory/many.yaml"), inv).unwrap();
    let app = support::Appliance::start(dir.path());
    let all_up = || app.get_json("/api/v1/devices?status=up")["total"].as_u64() == Some(120);
    support::wait_for(Duration::from_secs(20), "120 devices up", || {
        all_up().then_some(())
    });

    let dark = support::Blackhole::with_matches(
        "alertpages",
        &["ip daddr 127.77.10.0/24 icmp type echo-request".to_string()],
    );
    support::wait_for(Duration::from_secs(30), "120 open alerts", || {
        (api_alerts(&app, "active").len() == 120).then_some(())
    });
    let page1 = app.try_get("/alerts").unwrap();
    let page2 = app
        .try_get(&link(&page1, "next branches →").expect("a next page"))
        .unwrap();
    // The count is the dashboard's, the API's, and the groups' sum over the pages.
    assert_eq!(one_between(&page1, "id=\"open-alerts\">(", ")"), "120");
    let dashboard = app.try_get("/").unwrap();
    assert_eq!(one_between(&dashboard, "id=\"open-alerts\">(", ")"), "120");
    assert_eq!(one_between(&page1, "id=\"alerts-groups\">", "<"), "60");
    let counts = |html: &str| -> Vec<usize> {
        all_between(html, "class=\"a-group a-critical\"", ">")
            .iter()
            .map(|attrs| one_between(attrs, "data-count=\"", "\"").parse().unwrap())
            .collect()
    };
    assert_eq!(counts(&page1).len(), 50, "50 branches a page");
    assert_eq!(counts(&page2).len(), 10);
    assert!(
        counts(&page1)
            .iter()
            .chain(&counts(&page2))
            .all(|&n| n == 2)
    );
    assert!(page1.contains("page 1 of 2") && page2.contains("page 2 of 2"));
    // Every group says since when, and every alert too, as ticking durations.
    assert_eq!(
        page1
            .matches("oldest open for <span class=\"dur\" data-since=")
            .count(),
        50
    );
    assert!(page1.matches("class=\"dur\" data-since=").count() >= 150);
    // Both pages together: every open alert of the API exactly once.
    let mut ids: Vec<String> = all_between(&page1, "<tr class=\"st-row-down\" data-alert=\"", "\"")
        .into_iter()
        .chain(all_between(
            &page2,
            "<tr class=\"st-row-down\" data-alert=\"",
            "\"",
        ))
        .map(str::to_string)
        .collect();
    ids.sort();
    let mut api_ids: Vec<String> = api_alerts(&app, "active")
        .iter()
        .map(|a| a["id"].to_string())
        .collect();
    api_ids.sort();
    assert_eq!(ids, api_ids);
    // Worst first is the longest open first among equals: the first group's oldest is
    // no younger than the last's.
    let oldest = |html: &str| {
        all_between(
            html,
            "oldest open for <span class=\"dur\" data-since=\"",
            "\"",
        )
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let order: Vec<String> = oldest(&page1).into_iter().chain(oldest(&page2)).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        order, sorted,
        "worst (all critical) then longest open first"
    );
    // By place, a region and a branch substring: as the device list filters.
    let place = app
        .try_get("/alerts?sort=place&region=r1&branch=B0")
        .unwrap();
    let keys = all_between(&place, "data-key=\"", "\"");
    assert_eq!(keys.len(), 10);
    assert_eq!(keys[0], "r1&#x2f;b00");
    assert_eq!(one_between(&place, "id=\"alerts-matching\">", "<"), "20");
    assert_eq!(
        app.get_json("/api/v1/devices?region=r1&branch=B0&status=down")["total"],
        20
    );
    let bad = reqwest::blocking::get(app.url("/alerts?sort=size")).unwrap();
    assert_eq!(bad.status(), 400);

    drop(dark);
    support::wait_for(Duration::from_secs(30), "every alert resolved", || {
        api_alerts(&app, "active").is_empty().then_some(())
    });
    let mut seen = Vec::new();
    let mut url = "/alerts".to_string();
    loop {
        let html = app.try_get(&url).unwrap();
        let table = one_between(&html, "<table class=\"list\" id=\"resolved\">", "</table>");
        let rows = table.matches("<tr><td>").count();
        assert!(rows <= 50);
        seen.extend(
            all_between(table, "<a href=\"", "\"")
                .into_iter()
                .map(str::to_string),
        );
        assert!(
            table.contains("s</td></tr>"),
            "each says how long it lasted"
        );
        match link(&html, "older →") {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(seen.len(), 120, "every resolved alert, over three pages");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 120, "none twice");
}

/// The device page's history panel: its range from the query (an unknown one said so),
/// the fallback without VictoriaMetrics, and a VictoriaMetrics that refuses costing the
/// chart only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_panel_picks_its_range_and_a_dead_victoriametrics_costs_only_the_chart() {
    let state = fixed_state();
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, _started) = support::local_context(&state, dir.path()).await;
    let plain = Arc::new(Pages::new(Arc::new(support::context_over(
        &state,
        ctx.store.clone(),
    ))));
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    ctx.victoriametrics = Some(Arc::new(
        wardops::history::VictoriaMetrics::new(&refused, Duration::from_secs(1)).unwrap(),
    ));
    let with_vm = Arc::new(Pages::new(Arc::new(ctx)));
    let get = |web: &Arc<Pages>, path: &str| {
        let web = web.clone();
        let req = hyper::Request::get(path).body(bytes::Bytes::new()).unwrap();
        tokio::task::spawn_blocking(move || wardops::web::device::get(&web, &req))
    };
    let (_, html) = body(get(&plain, "/devices/n1-router?range=7d").await.unwrap()).await;
    assert!(html.contains("No RTT or loss for 7 d"), "{html}");
    assert!(html.contains(r#"data-range="7d""#), "{html}");
    assert!(html.contains(r#"href="?range=7d#history" aria-current="page""#));
    let (_, html) = body(get(&plain, "/devices/n1-router?range=1y").await.unwrap()).await;
    assert!(
        html.contains("Unknown range &quot;1y&quot;: showing 1 h"),
        "{html}"
    );
    let (_, html) = body(get(&plain, "/devices/n1-router?range=").await.unwrap()).await;
    assert!(!html.contains("Unknown range"), "{html}");
    assert!(html.contains("Only the last hour, kept in memory, is shown"));

    let started = std::time::Instant::now();
    let r = get(&with_vm, "/devices/n1-router?range=30d").await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, html) = body(r).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let said = format!(
        "VictoriaMetrics at {} did not answer: ",
        refused.replace('/', "&#x2f;")
    );
    assert!(html.contains(&said), "{html}");
    assert!(
        html.contains("<h2>Transitions</h2>"),
        "the rest of the page"
    );
    assert!(!html.contains("chart history"), "no chart");
}
