//! Maintenance windows end to end within the process: the inventory's `maintenance:`
//! cascade (region → branch → device), the reader's two paths giving one result,
//! hostile values, and `GET /api/v1/maintenance` with the device JSON's
//! `in_maintenance` over the real routes.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::oneshot;
use wardops::config::load::{Source, build_inventory};
use wardops::config::settings::MaintenanceSettings;
use wardops::config::{Inventory, ProbeSettings};
use wardops::maintenance::{Rule, Scope};
use wardops::state::{Clock, State};

mod support;

fn build(text: &str) -> Result<Inventory, String> {
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: text.to_string(),
    };
    build_inventory(&[source], &ProbeSettings::default()).map_err(|e| e.to_string())
}

const CASCADE: &str = "\
regions:
  - name: tbilisi
    maintenance:
      - { cron: \"0 2 * * 0\", duration: 2h, reason: region-wide }
    branches:
      - name: vake
        maintenance:
          - { start: 2026-12-06T22:00, end: 2026-12-07T02:00, zone: Europe/Berlin }
        devices:
          - { name: vake-router-1, address: 127.90.1.1, kind: router }
          - { name: vake-atm-1, address: 127.90.1.2, kind: atm }
          - name: vake-atm-2
            address: 127.90.1.3
            kind: atm
            maintenance:
              - { days: [sat], from: \"23:00\", to: \"01:00\", reason: atm vendor }
      - name: saburtalo
        devices:
          - { name: sab-atm-1, address: 127.90.2.1, kind: atm }
";

#[test]
fn windows_accumulate_down_the_cascade_each_with_its_scope() {
    let inventory = build(CASCADE).unwrap();
    let windows = |name: &str| inventory.device(name).unwrap().maintenance.clone();
    let scopes = |name: &str| -> Vec<(String, String)> {
        windows(name)
            .iter()
            .map(|w| (w.scope.level().to_string(), w.scope.name().to_string()))
            .collect()
    };
    let pair = |l: &str, n: &str| (l.to_string(), n.to_string());
    assert_eq!(
        scopes("vake-router-1"),
        [pair("region", "tbilisi"), pair("branch", "vake")]
    );
    assert_eq!(
        scopes("vake-atm-2"),
        [
            pair("region", "tbilisi"),
            pair("branch", "vake"),
            pair("device", "vake-atm-2")
        ]
    );
    assert_eq!(scopes("sab-atm-1"), [pair("region", "tbilisi")]);
    // The devices of a branch without windows of their own share one list.
    assert!(Arc::ptr_eq(
        &windows("vake-router-1"),
        &windows("vake-atm-1")
    ));
    let own = &windows("vake-atm-2")[2];
    assert!(matches!(own.rule, Rule::Weekly { .. }));
    assert_eq!(own.reason.as_deref(), Some("atm vendor"));
    assert_eq!(own.zone, None);
    let branch = &windows("vake-atm-2")[1];
    assert_eq!(branch.zone, Some(chrono_tz::Europe::Berlin));
    assert_eq!(
        branch.scope,
        Scope::Branch {
            region: "tbilisi".into(),
            branch: "vake".into()
        }
    );
    assert_eq!(
        windows("sab-atm-1")[0].reason.as_deref(),
        Some("region-wide")
    );
}

#[test]
fn block_and_flow_style_windows_read_the_same() {
    // The first takes the fast path (block lists, one-line mappings); the second's flow
    // lists send it through libyaml. Same windows either way.
    let block = "\
regions:
  - name: r
    branches:
      - name: b
        maintenance:
          - days:
              - sun
              - mon
            from: \"22:00\"
            to: 02:00
            zone: Asia/Tbilisi
          - { cron: \"30 2 * * *\", duration: 90m, reason: \"firmware: all\" }
        devices:
          - { name: d, address: 127.90.3.1, kind: atm }
";
    let flow = "\
regions:
  - name: r
    branches:
      - name: b
        maintenance: [{ days: [sun, mon], from: \"22:00\", to: \"02:00\", zone: Asia/Tbilisi }, { cron: \"30 2 * * *\", duration: 90m, reason: \"firmware: all\" }]
        devices:
          - { name: d, address: 127.90.3.1, kind: atm }
";
    let (a, b) = (build(block).unwrap(), build(flow).unwrap());
    let (a, b) = (
        &a.device("d").unwrap().maintenance,
        &b.device("d").unwrap().maintenance,
    );
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
}

#[test]
fn hostile_window_values_are_errors_never_panics() {
    let hostile = [
        "\"\"",
        "\"* * * * * * * *\"",
        "\"*/0 * * * *\"",
        "\"0-99999999999999999999 * * * *\"",
        "\"L W # ? * \"",
        "\"@reboot\"",
        "\"@yearly\"",
        "\"0 0 L * 5#9\"",
        "\"\u{1F600} * * * *\"",
        "\"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30 * * * *\"",
        "\"0 0 29 2 1#5\"",
    ];
    for pattern in hostile {
        let text = format!(
            "regions:\n  - name: r\n    maintenance:\n      - {{ cron: {pattern}, duration: 1h }}\n    branches:\n      - name: b\n        devices:\n          - {{ name: d, address: 127.90.4.1, kind: atm }}\n"
        );
        // An error names its place; a pattern croner takes is a valid window.
        if let Err(e) = build(&text) {
            assert!(e.starts_with("inventory/t.yaml:4:"), "{pattern}: {e}");
        }
    }
    for (key, value) in [
        ("start", "99999-01-01T00:00"),
        ("start", "2026-02-30T00:00"),
        ("start", "-2026-01-01T00:00"),
        ("end", "2026-12-06T24:00"),
        ("zone", "../../etc/passwd"),
        ("zone", "\"\""),
    ] {
        let mut window = vec![("start", "2026-12-06T22:00"), ("end", "2026-12-07T02:00")];
        window.retain(|(k, _)| *k != key);
        window.push((key, value));
        let fields: Vec<String> = window.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let text = format!(
            "regions:\n  - name: r\n    maintenance:\n      - {{ {} }}\n    branches:\n      - name: b\n        devices:\n          - {{ name: d, address: 127.90.4.1, kind: atm }}\n",
            fields.join(", ")
        );
        let e = build(&text).expect_err(value);
        assert!(e.starts_with("inventory/t.yaml:4:"), "{value}: {e}");
    }
}

/// A wall clock the test sets: the API reads the state's clock, so moving it moves the
/// answer across a window's boundary exactly.
struct SetClock(Mutex<DateTime<Utc>>);

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
}

/// The appliance's routes over `inventory`, served on a port of its own, with the
/// default zone `zone` and the clock at `now`.
struct Server {
    base: String,
    state: State,
    clock: Arc<SetClock>,
    stop: Option<oneshot::Sender<()>>,
    _store: (tempfile::TempDir, wardops::store::startup::Started),
}

impl Server {
    async fn start(inventory: &str, zone: chrono_tz::Tz, now: DateTime<Utc>) -> Server {
        let clock = Arc::new(SetClock(Mutex::new(now)));
        let state = State::new(clock.clone());
        state.replace_inventory(Arc::new(build(inventory).unwrap()), |_| None);
        let state_handle = state.clone();
        let dir = tempfile::tempdir().unwrap();
        let (mut ctx, started) = support::local_context(&state, dir.path()).await;
        ctx.maintenance = MaintenanceSettings { zone };
        let ctx = ctx.start(Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let routes = support::routes(&ctx);
        tokio::spawn(wardops::http::serve(
            listener,
            routes,
            Default::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            base,
            state: state_handle,
            clock,
            stop: Some(stop),
            _store: (dir, started),
        }
    }

    fn set(&self, now: DateTime<Utc>) {
        *self.clock.0.lock() = now;
    }

    async fn get(&self, path: &str) -> Value {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.json().await.unwrap()
    }

    async fn text(&self, path: &str) -> String {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.text().await.unwrap()
    }

    /// (in_maintenance, maintenance_ends_at) of every device in the list, by name.
    async fn device_maintenance(&self) -> Vec<(String, bool, Option<String>)> {
        let list = self.get("/api/v1/devices").await;
        let mut out: Vec<_> = list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["in_maintenance"].as_bool().unwrap(),
                    d["maintenance_ends_at"].as_str().map(str::to_string),
                )
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

const API_INVENTORY: &str = "\
regions:
  - name: tbilisi
    maintenance:
      - { cron: \"0 22 * * 0\", duration: 4h, reason: router firmware }
    branches:
      - name: vake
        maintenance:
          - { start: 2026-12-09T03:00, end: 2026-12-09T05:00, zone: Europe/Berlin, reason: line swap }
          - { start: 2027-03-01T00:00, end: 2027-03-02T00:00 }
        devices:
          - { name: vake-router-1, address: 127.90.5.1, kind: router }
          - { name: vake-atm-1, address: 127.90.5.2, kind: atm }
          - name: vake-atm-2
            address: 127.90.5.3
            kind: atm
            maintenance:
              - { days: [sun], from: \"23:00\", to: \"03:00\" }
      - name: saburtalo
        devices:
          - { name: sab-atm-1, address: 127.90.5.4, kind: atm }
  - name: batumi
    branches:
      - name: boulevard
        devices:
          - { name: boulevard-atm-1, address: 127.90.5.5, kind: atm }
";

#[tokio::test]
async fn the_maintenance_route_lists_active_and_upcoming_windows_by_start() {
    // Sunday 2026-12-06 22:30 in Tbilisi (UTC+4): the region's weekly firmware window
    // (22:00 to 02:00 local) is on, and so is vake-atm-2's own (23:00 to 03:00).
    let server = Server::start(
        API_INVENTORY,
        chrono_tz::Asia::Tbilisi,
        utc("2026-12-06 18:30"),
    )
    .await;
    let body = server.get("/api/v1/maintenance").await;
    assert_eq!(body["now"], "2026-12-06T18:30:00.000Z");
    assert_eq!(body["until"], "2026-12-13T18:30:00.000Z");
    assert_eq!(body["default_zone"], "Asia/Tbilisi");
    assert_eq!(body["truncated"], false);
    let windows = body["windows"].as_array().unwrap();
    let summary: Vec<(String, String, bool, String, u64)> = windows
        .iter()
        .map(|w| {
            (
                w["scope"].as_str().unwrap().to_string(),
                w["start"].as_str().unwrap().to_string(),
                w["active"].as_bool().unwrap(),
                w["end"].as_str().unwrap().to_string(),
                w["devices"].as_u64().unwrap(),
            )
        })
        .collect();
    let row = |scope: &str, start: &str, active, end: &str, devices| {
        (
            scope.to_string(),
            start.to_string(),
            active,
            end.to_string(),
            devices,
        )
    };
    assert_eq!(
        summary,
        [
            // Active now: started before `now`, listed first.
            row(
                "region",
                "2026-12-06T18:00:00.000Z",
                true,
                "2026-12-06T22:00:00.000Z",
                4
            ),
            row(
                "device",
                "2026-12-06T19:00:00.000Z",
                false,
                "2026-12-06T23:00:00.000Z",
                1
            ),
            // Berlin is UTC+1 in December.
            row(
                "branch",
                "2026-12-09T02:00:00.000Z",
                false,
                "2026-12-09T04:00:00.000Z",
                3
            ),
            // Next Sunday's, still within 7 days; the 2027 one-off is not.
            row(
                "region",
                "2026-12-13T18:00:00.000Z",
                false,
                "2026-12-13T22:00:00.000Z",
                4
            ),
        ]
    );
    let region = &windows[0];
    assert_eq!(region["region"], "tbilisi");
    assert_eq!(region["branch"], Value::Null);
    assert_eq!(region["reason"], "router firmware");
    assert_eq!(region["kind"], "cron");
    assert_eq!(region["zone"], "Asia/Tbilisi");
    assert_eq!(region["start_local"], "2026-12-06T22:00:00.000+04:00");
    assert_eq!(region["end_local"], "2026-12-07T02:00:00.000+04:00");
    let branch = &windows[2];
    assert_eq!(
        (branch["branch"].as_str(), branch["kind"].as_str()),
        (Some("vake"), Some("once"))
    );
    assert_eq!(branch["zone"], "Europe/Berlin");
    assert_eq!(branch["start_local"], "2026-12-09T03:00:00.000+01:00");
    assert_eq!(windows[1]["device"], "vake-atm-2");
    assert_eq!(windows[1]["kind"], "weekly");
}

#[tokio::test]
async fn device_json_says_whether_a_device_is_in_maintenance_and_until_when() {
    let server = Server::start(
        API_INVENTORY,
        chrono_tz::Asia::Tbilisi,
        utc("2026-12-06 18:30"),
    )
    .await;
    let at =
        |name: &str, on: bool, end: Option<&str>| (name.to_string(), on, end.map(str::to_string));
    // vake-atm-2's own window overlaps the region's: one stretch, to the later end.
    assert_eq!(
        server.device_maintenance().await,
        [
            at("boulevard-atm-1", false, None),
            at("sab-atm-1", true, Some("2026-12-06T22:00:00.000Z")),
            at("vake-atm-1", true, Some("2026-12-06T22:00:00.000Z")),
            at("vake-atm-2", true, Some("2026-12-06T23:00:00.000Z")),
            at("vake-router-1", true, Some("2026-12-06T22:00:00.000Z")),
        ]
    );
    // The end is exclusive: at 22:00 UTC only vake-atm-2's own window is left.
    server.set(utc("2026-12-06 22:00"));
    assert_eq!(
        server.device_maintenance().await,
        [
            at("boulevard-atm-1", false, None),
            at("sab-atm-1", false, None),
            at("vake-atm-1", false, None),
            at("vake-atm-2", true, Some("2026-12-06T23:00:00.000Z")),
            at("vake-router-1", false, None),
        ]
    );
    let detail = server.get("/api/v1/devices/vake-atm-2").await;
    assert_eq!(detail["in_maintenance"], true);
    assert_eq!(detail["maintenance_ends_at"], "2026-12-06T23:00:00.000Z");
    // And the start is inclusive.
    server.set(utc("2026-12-09 01:59"));
    assert_eq!(
        server.get("/api/v1/devices/vake-atm-1").await["in_maintenance"],
        false
    );
    server.set(utc("2026-12-09 02:00"));
    let detail = server.get("/api/v1/devices/vake-atm-1").await;
    assert_eq!(detail["in_maintenance"], true);
    assert_eq!(detail["maintenance_ends_at"], "2026-12-09T04:00:00.000Z");
    let sab = server.get("/api/v1/devices/sab-atm-1").await;
    assert_eq!(
        (
            sab["in_maintenance"].as_bool(),
            sab["maintenance_ends_at"].as_str()
        ),
        (Some(false), None)
    );
}

/// The `wardops_device_in_maintenance` sample of `device` in an exposition.
fn in_maintenance_sample(metrics: &str, device: &str) -> Option<String> {
    support::device_sample(metrics, "wardops_device_in_maintenance", device)
}

#[tokio::test]
async fn metrics_and_pages_show_maintenance_as_the_json_does() {
    let server = Server::start(
        API_INVENTORY,
        chrono_tz::Asia::Tbilisi,
        utc("2026-12-06 18:30"),
    )
    .await;
    let metrics = server.text("/metrics").await;
    assert!(
        metrics.contains("# TYPE wardops_device_in_maintenance gauge"),
        "{metrics}"
    );
    for (device, want) in [
        ("sab-atm-1", "1"),
        ("vake-atm-2", "1"),
        ("boulevard-atm-1", "0"),
    ] {
        assert_eq!(
            in_maintenance_sample(&metrics, device).as_deref(),
            Some(want),
            "{device}"
        );
    }
    let badge = "⚒ MAINTENANCE";
    let tile = |page: &str, device: &str| -> String {
        let start = page
            .find(&format!("data-device=\"{device}\""))
            .unwrap_or_else(|| panic!("{device} not on the wall"));
        let end = page[start..].find("</a>").unwrap() + start;
        page[start..end].to_string()
    };
    let wall = server.text("/monitor").await;
    assert!(tile(&wall, "sab-atm-1").contains(badge), "{wall}");
    assert!(!tile(&wall, "boulevard-atm-1").contains(badge));
    let page = server.text("/devices/vake-atm-2").await;
    assert!(page.contains(badge), "{page}");
    assert!(page.contains("in maintenance until"), "{page}");
    assert!(
        !server
            .text("/devices/boulevard-atm-1")
            .await
            .contains(badge)
    );
    // The window over: the same surfaces say so at the next read.
    server.set(utc("2026-12-07 03:00"));
    let metrics = server.text("/metrics").await;
    assert_eq!(
        in_maintenance_sample(&metrics, "sab-atm-1").as_deref(),
        Some("0")
    );
    assert!(!tile(&server.text("/monitor").await, "sab-atm-1").contains(badge));
    assert!(!server.text("/devices/vake-atm-2").await.contains(badge));
}

#[tokio::test]
async fn the_list_is_bounded_however_often_a_window_starts() {
    let inventory = "\
regions:
  - name: r
    branches:
      - name: b
        devices:
          - name: d
            address: 127.90.6.1
            kind: atm
            maintenance:
              - { cron: \"* * * * *\", duration: 1m }
";
    let server = Server::start(inventory, chrono_tz::UTC, utc("2026-12-06 18:30")).await;
    let body = server.get("/api/v1/maintenance").await;
    let windows = body["windows"].as_array().unwrap();
    assert_eq!(windows.len(), wardops::api::maintenance::MAX_ITEMS);
    assert_eq!(body["truncated"], true);
    assert_eq!(windows[0]["start"], "2026-12-06T18:30:00.000Z");
    assert_eq!(windows[0]["active"], true);
    assert_eq!(windows[1]["start"], "2026-12-06T18:31:00.000Z");
    // Touching minutes are one stretch of maintenance, followed a bounded way.
    let d = server.get("/api/v1/devices/d").await;
    assert_eq!(d["in_maintenance"], true);
    assert_eq!(d["maintenance_ends_at"], "2026-12-06T19:35:00.000Z");
}

#[tokio::test]
async fn a_reload_that_adds_or_removes_a_window_takes_effect_at_once() {
    let without = API_INVENTORY.replace("    maintenance:\n      - { cron: \"0 22 * * 0\", duration: 4h, reason: router firmware }\n", "");
    assert_ne!(without, API_INVENTORY);
    let server = Server::start(&without, chrono_tz::Asia::Tbilisi, utc("2026-12-06 18:30")).await;
    let on = |body: &Value| body["in_maintenance"].as_bool();
    assert_eq!(
        on(&server.get("/api/v1/devices/sab-atm-1").await),
        Some(false)
    );
    let listed = |body: Value| body["windows"].as_array().unwrap().len();
    assert_eq!(listed(server.get("/api/v1/maintenance").await), 2);
    // The region's window added: the very next request sees it.
    server
        .state
        .replace_inventory(Arc::new(build(API_INVENTORY).unwrap()), |_| None);
    assert_eq!(
        on(&server.get("/api/v1/devices/sab-atm-1").await),
        Some(true)
    );
    assert_eq!(listed(server.get("/api/v1/maintenance").await), 4);
    // And removed again.
    server
        .state
        .replace_inventory(Arc::new(build(&without).unwrap()), |_| None);
    assert_eq!(
        on(&server.get("/api/v1/devices/sab-atm-1").await),
        Some(false)
    );
}
