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
use wardops::web::{Pages, dashboard, infrastructure, monitor};

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
    // Only the page's own script tag, loaded from /static.
    assert_eq!(html.matches("<script").count(), 1);
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
