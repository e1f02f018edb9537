//! The live pages' server side on a fixed state: the outage summary first on `/` and
//! `/monitor` (a region outage of 40 branches is 40 rows, in every paged or filtered
//! view), the recently-recovered list, and times in the display zone with UTC on hover.
//! The browser side (live counts, the dead feed) is `web_live.rs`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use wardops::config::load::{Source, build_inventory};
use wardops::probe::ProbeOutcome;
use wardops::state::{State, SystemClock};
use wardops::web::{Pages, dashboard, monitor};

mod support;

const BRANCHES: usize = 40;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

/// Region `east`: 40 branches, each a gateway and two ATMs behind it; region `west`:
/// one branch of one device.
fn inventory() -> String {
    let mut text = String::from(
        "regions:\n  - name: east\n    probe: { down_after: 1, up_after: 1 }\n    branches:\n",
    );
    for b in 0..BRANCHES {
        let _ = write!(
            text,
            "      - name: e-{b:02}\n        devices:\n          - {{ name: gw-{b:02}, address: 127.78.{b}.1, kind: router }}\n          - {{ name: atm-{b:02}-a, address: 127.78.{b}.2, kind: atm, parents: [gw-{b:02}] }}\n          - {{ name: atm-{b:02}-b, address: 127.78.{b}.3, kind: atm, parents: [gw-{b:02}] }}\n"
        );
    }
    text.push_str("  - name: west\n    probe: { down_after: 1, up_after: 1 }\n    branches:\n      - name: w-1\n        devices:\n          - { name: w1, address: 127.78.200.1, kind: atm }\n");
    text
}

fn state() -> State {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: inventory(),
    };
    let inventory = build_inventory(&[source], &Default::default()).unwrap();
    let state = State::new(Arc::new(SystemClock));
    state.replace_inventory(Arc::new(inventory), |_| None);
    state
}

fn probe(state: &State, name: &str, ok: bool, at: DateTime<Utc>) {
    let s = state.snapshot();
    let (d, _, rt) = s.device(name).unwrap();
    let outcome = ProbeOutcome {
        sent: 1,
        received: u32::from(ok),
        rtt: ok.then_some(Duration::from_micros(1200)),
    };
    state.record_probe(d, rt, &outcome, at);
}

/// Every gateway of `east` down, every ATM behind one unreachable.
fn region_outage(state: &State) {
    probe(state, "w1", true, t(0));
    for b in 0..BRANCHES {
        probe(state, &format!("gw-{b:02}"), false, t(-600 + b as i64));
    }
    for b in 0..BRANCHES {
        for x in ["a", "b"] {
            probe(state, &format!("atm-{b:02}-{x}"), false, t(-300));
        }
    }
}

async fn body(r: hyper::Response<wardops::http::response::Body>) -> String {
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[tokio::test]
async fn a_region_outage_of_40_branches_is_40_summary_rows_on_every_view() {
    let state = state();
    region_outage(&state);
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _started) = support::local_context(&state, dir.path()).await;
    let web = Pages::new(Arc::new(ctx));
    let s = state.snapshot();
    for query in [
        None,
        Some("status=down"),
        Some("status=unreachable&page=2"),
        Some("status=up"),
    ] {
        let q = monitor::MonitorQuery::parse(query).unwrap();
        let html = body(monitor::render(&web, &s, t(0), &q)).await;
        assert_eq!(
            count(&html, "<details class=\"o-branch\""),
            BRANCHES,
            "{query:?}"
        );
        for b in 0..BRANCHES {
            assert!(
                html.contains(&format!("data-key=\"east&#x2f;e-{b:02}\"")),
                "{query:?} e-{b:02}"
            );
        }
        assert!(html.contains("id=\"outage-down\">▼ 40<"), "{query:?}");
        assert!(
            html.contains("id=\"outage-unreachable\">⊘ 80<"),
            "{query:?}"
        );
        assert!(html.contains("id=\"outage-branches\">40<"), "{query:?}");
        // The summary comes before the device list.
        let summary = html.find("id=\"outages\"").unwrap();
        let list = html.find("id=\"devices\"").unwrap();
        assert!(summary < list, "{query:?}");
        // A branch opens to its down gateway and the ATMs behind it.
        assert!(
            html.contains("href=\"&#x2f;devices&#x2f;gw&#x2d;07\">▼ gw-07</a>")
                || html.contains(">▼ gw-07</a>")
        );
        assert!(html.contains(">⊘ atm-07-a</a>") && html.contains(">⊘ atm-07-b</a>"));
    }
    // Narrowed to a region or a branch, the summary follows.
    let q = monitor::MonitorQuery::parse(Some("region=west")).unwrap();
    let html = body(monitor::render(&web, &s, t(0), &q)).await;
    assert_eq!(count(&html, "<details class=\"o-branch\""), 0);
    assert!(html.contains("id=\"outage-none\""));
    let q = monitor::MonitorQuery::parse(Some("region=east&branch=e-03")).unwrap();
    let html = body(monitor::render(&web, &s, t(0), &q)).await;
    assert_eq!(count(&html, "<details class=\"o-branch\""), 1);
    assert!(html.contains("id=\"outage-down\">▼ 1<"));

    // The dashboard: the same 40 rows, and its "down now" says it lists 25 of 40.
    let prober = dashboard::ProberView::of(&web.ctx.prober, Vec::new());
    let alerts = dashboard::AlertsBlock {
        open: Vec::new(),
        more: false,
        total: 0,
        error: None,
    };
    let html = body(dashboard::render(&web, &s, t(0), prober, alerts)).await;
    assert_eq!(count(&html, "<details class=\"o-branch\""), BRANCHES);
    assert!(
        html.contains("Showing the 25 longest down of <b>40</b>"),
        "{html}"
    );
}

#[tokio::test]
async fn recoveries_are_listed_with_times_in_the_display_zone_and_utc_on_hover() {
    let state = state();
    let mut events = state.subscribe();
    probe(&state, "w1", true, t(0));
    probe(&state, "w1", false, t(100));
    probe(&state, "w1", true, t(100 + 307));
    let dir = tempfile::tempdir().unwrap();
    let (mut ctx, _started) = support::local_context(&state, dir.path()).await;
    ctx.web.display_zone = chrono_tz::Tz::Asia__Tbilisi;
    while let Ok(e) = events.try_recv() {
        ctx.recovered.observe(&e);
    }
    let web = Pages::new(Arc::new(ctx));
    let q = monitor::MonitorQuery::parse(None).unwrap();
    let html = body(monitor::render(&web, &state.snapshot(), t(500), &q)).await;
    assert!(html.contains("id=\"recovered-total\">1<"), "{html}");
    assert!(html.contains("data-recovered=\"w1\""));
    // Down at 1_800_000_100 (2027-01-15 08:01:40 UTC), back 307 s later: in Tbilisi (+04).
    assert!(html.contains(">2027-01-15 12:01:40 +04</time>"), "{html}");
    assert!(html.contains("title=\"2027-01-15 08:01:40 UTC\""), "{html}");
    assert!(html.contains(">2027-01-15 12:06:47 +04</time>"));
    assert!(html.contains("<td>5m 07s</td>"));
    // The header clock and the page's zone for the script.
    assert!(
        html.contains("data-zone=\"Asia&#x2f;Tbilisi\"")
            || html.contains("data-zone=\"Asia/Tbilisi\"")
    );
    assert!(html.contains("id=\"clock\""));
    // Gone after the window.
    let html = body(monitor::render(
        &web,
        &state.snapshot(),
        t(407 + 30 * 60 + 1),
        &q,
    ))
    .await;
    assert!(html.contains("id=\"recovered-total\">0<"));
}
