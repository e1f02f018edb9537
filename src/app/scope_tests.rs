//! Region scope over every route of [`super::routes`]: a principal limited to `west`
//! never reads the name of `east`'s device, and an `east` device is a 404. Table-driven
//! over the route table, so a new route without a case fails here.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::BodyExt;
use hyper::{Request, StatusCode};

use super::*;
use crate::access::{Principal, Role, Scope, Via};
use crate::config::load::inventory_of;
use crate::probe::ProbeOutcome;

const INVENTORY: &str = "regions:
  - name: east
    branches:
      - name: e1
        devices:
          - { name: east-core, address: 127.71.0.1, kind: router }
          - { name: east-atm, address: 127.71.0.2, kind: atm }
  - name: west
    branches:
      - name: w1
        devices:
          - { name: west-router, address: 127.71.1.1, kind: router, parents: [east-core] }
          - { name: west-atm, address: 127.71.1.2, kind: atm }
";

/// The name that must never reach a `west` principal.
const HIDDEN: &str = "east-core";
/// Another: down and back, so it is in the recently-recovered lists.
const RECOVERED: &str = "east-atm";

fn west() -> Principal {
    Principal {
        name: "w".into(),
        role: Role::Viewer,
        scope: Scope::regions(["west"]),
        via: Via::Session,
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

fn probe(state: &State, device: &str, ok: bool) {
    let snapshot = state.snapshot();
    let (d, _, runtime) = snapshot.device(device).unwrap();
    let outcome = ProbeOutcome {
        sent: 1,
        received: ok as u32,
        rtt: ok.then(|| Duration::from_millis(1)),
    };
    state.record_probe(d, runtime, &outcome, Utc::now());
}

/// A context over the two-region inventory with `east-core` down (so `west-router` is
/// unreachable behind it), its tasks started.
async fn context(dir: &std::path::Path) -> (Arc<Context>, State) {
    let store = crate::store::startup::start(
        crate::store::startup::StartOptions::local(dir),
        Arc::new(crate::state::SystemClock),
    )
    .await
    .unwrap();
    let state = State::new(Arc::new(crate::state::SystemClock));
    let reloader = crate::reload::Reloader::idle(dir.into(), Default::default());
    let ctx =
        Context::new(state.clone(), StoreHandle::of(&store), reloader).start(FeedConfig::default());
    state.replace_inventory(Arc::new(inventory_of(INVENTORY)), |_| None);
    for _ in 0..3 {
        probe(&state, "west-atm", true);
        probe(&state, "east-core", false);
        probe(&state, "west-router", false);
        probe(&state, RECOVERED, false);
    }
    for _ in 0..3 {
        probe(&state, RECOVERED, true);
    }
    // A silence of each region: the east one names the hidden device.
    for (id, device) in [("s-east", HIDDEN), ("s-west", "west-atm")] {
        let now = Utc::now();
        state
            .add_silence(crate::maintenance::Silence {
                id: id.into(),
                matchers: crate::maintenance::Matchers {
                    device: Some(device.into()),
                    ..Default::default()
                },
                starts_at: now,
                ends_at: now + chrono::TimeDelta::hours(1),
                comment: "works".into(),
                created_by: "ana".into(),
                created_at: now,
                expired_at: None,
                expired_by: None,
            })
            .unwrap();
    }
    // The recently-recovered list follows the transitions in a task of its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while ctx.recovered.recent(Utc::now()).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "east-atm never recovered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::mem::forget(store); // kept open for the test's life; the dir cleans up
    (ctx, state)
}

async fn get(route: &Route, path: &str, who: Option<Principal>) -> (StatusCode, String) {
    let mut req = Request::get(path).body(Bytes::new()).unwrap();
    if let Some(p) = who {
        req.extensions_mut().insert(p);
    }
    let response = route.call(req).await;
    let status = response.status();
    let mut body = response.into_body();
    let mut text = Vec::new();
    // A stream never ends: what it sends in a moment is what is checked.
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_millis(300), body.frame()).await
    {
        if let Ok(data) = frame.into_data() {
            text.extend_from_slice(&data);
        }
    }
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// Each route of the table: the paths asked of it, each with the status a `west`
/// principal gets and a name its body must show (so a view that hid everything fails).
fn cases(route: &str) -> Option<Vec<(&'static str, StatusCode, Option<&'static str>)>> {
    use StatusCode as S;
    Some(match route {
        "/api/v1/devices" => vec![
            ("/api/v1/devices", S::OK, Some("west-atm")),
            ("/api/v1/devices?region=east", S::OK, None),
            ("/api/v1/devices?q=east", S::OK, None),
        ],
        "/api/v1/devices/…" => vec![
            ("/api/v1/devices/west-router", S::OK, Some("west-router")),
            ("/api/v1/devices/east-core", S::NOT_FOUND, None),
            ("/api/v1/devices/east-core/transitions", S::NOT_FOUND, None),
            ("/api/v1/devices/west-atm/transitions", S::OK, None),
        ],
        "/api/v1/alerts" => vec![
            ("/api/v1/alerts", S::OK, None),
            ("/api/v1/alerts?device=east-core", S::OK, None),
        ],
        "/api/v1/dashboard" => vec![("/api/v1/dashboard", S::OK, Some("west"))],
        "/api/v1/status" => vec![("/api/v1/status", S::OK, None)],
        "/api/v1/maintenance" => vec![("/api/v1/maintenance", S::OK, Some("west-atm"))],
        "/api/v1/silences" => vec![("/api/v1/silences", S::OK, Some("west-atm"))],
        "/api/v1/notifications" => vec![("/api/v1/notifications", S::FORBIDDEN, None)],
        "/api/v1/cluster" => vec![("/api/v1/cluster", S::FORBIDDEN, None)],
        // The same text for everyone: no device in it.
        "/api/v1/openapi.yaml" => vec![("/api/v1/openapi.yaml", S::OK, None)],
        "/api/v1/audit" => vec![("/api/v1/audit", S::FORBIDDEN, None)],
        // This context's state writes nothing to the store: the rows are tested with
        // real history in tests/reports_e2e.rs; here, nothing of east in any grouping.
        "/api/v1/reports/availability" => vec![
            ("/api/v1/reports/availability", S::OK, None),
            ("/api/v1/reports/availability?region=east", S::OK, None),
            ("/api/v1/reports/availability?group_by=region", S::OK, None),
            ("/api/v1/reports/availability?format=csv", S::OK, None),
        ],
        // Writes, each tested by its own tests (an alert, a silence or a device of another
        // region is a 404 there); they name no device of their own.
        "POST /api/v1/alerts/…"
        | "POST /api/v1/silences"
        | "POST /api/v1/silences/…"
        | "POST /api/v1/devices/…" => vec![],
        "/api/v1/events" => vec![("/api/v1/events", S::OK, None)],
        "/healthz" => vec![("/healthz", S::OK, None)],
        "/readyz" => vec![("/readyz", S::OK, None)],
        // A write: its own helper's; it names no device.
        "POST /-/reload" => vec![],
        "/metrics" => vec![("/metrics", S::FORBIDDEN, None)],
        "/" => vec![("/", S::OK, Some("west-router"))],
        "/monitor" => vec![
            ("/monitor", S::OK, Some("west-atm")),
            ("/monitor?view=table", S::OK, Some("west-atm")),
        ],
        "/devices/…" => vec![
            ("/devices/west-router", S::OK, Some("west-router")),
            ("/devices/east-core", S::NOT_FOUND, None),
        ],
        "/alerts" => vec![("/alerts", S::OK, None)],
        "/infrastructure" => vec![("/infrastructure", S::OK, Some("w1"))],
        "/wall" => vec![("/wall", S::OK, Some("west-atm"))],
        "/reports" => vec![
            ("/reports", S::OK, None),
            ("/reports?group_by=region", S::OK, None),
            ("/reports?group_by=branch&region=east", S::OK, None),
        ],
        // The sign-in form and its POST: no device on them.
        "/login" | "POST /login" | "POST /logout" | "/login/oidc" | "/login/oidc/callback" => {
            vec![]
        }
        "/static/app.js" | "/static/app.css" | "/static/wall.js" | "/static/filters.js" => {
            vec![]
        }
        _ => return None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_principal_reads_only_its_regions_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _state) = context(dir.path()).await;
    let routes = routes(&ctx);
    let mut failures = Vec::new();
    for route in &routes {
        let name = match route.path() {
            http::route::Path::Exact(p) => p.to_string(),
            http::route::Path::Prefix(p) => format!("{p}…"),
        };
        // A path may have a GET and a POST route: the POST's cases are its own.
        let name = if route.is_post() {
            format!("POST {name}")
        } else {
            name
        };
        let Some(cases) = cases(&name) else {
            failures.push(format!("{name}: no scope case for this route"));
            continue;
        };
        for (path, want, shows) in cases {
            let (status, body) = get(route, path, Some(west())).await;
            if status != want {
                failures.push(format!("{path}: status {status}, want {want}: {body}"));
            }
            if want == StatusCode::NOT_FOUND {
                // The 404 echoes the name asked for, as it does for a name that never
                // existed: it must say nothing more than that one does.
                let (_, never) = get(route, &path.replace(HIDDEN, "never-was"), Some(west())).await;
                if body != never.replace("never-was", HIDDEN) {
                    failures.push(format!(
                        "{path}: 404 differs from an unknown name's: {body}"
                    ));
                }
            } else if body.contains(HIDDEN) {
                failures.push(format!("{path}: body names {HIDDEN}: {body}"));
            }
            if body.contains(RECOVERED) {
                failures.push(format!("{path}: body names {RECOVERED}: {body}"));
            }
            if let Some(name) = shows
                && !body.contains(name)
            {
                failures.push(format!("{path}: body does not show {name}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same routes unscoped do show the hidden device: the check above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unscoped_the_same_routes_name_every_region() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _state) = context(dir.path()).await;
    let routes = routes(&ctx);
    // Found by path, not by place: other routes come and go around these.
    let route = |path: &str| {
        routes
            .iter()
            .find(|r| match r.path() {
                http::route::Path::Exact(p) => p == path,
                http::route::Path::Prefix(p) => path.starts_with(p) && path.len() > p.len(),
            })
            .unwrap()
    };
    for path in [
        "/api/v1/devices",
        "/api/v1/devices/west-router",
        "/api/v1/devices/east-core",
        "/api/v1/silences",
        "/api/v1/maintenance",
        "/devices/east-core",
        "/wall",
    ] {
        let (status, body) = get(route(path), path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains(HIDDEN), "{path}: {body}");
    }
    for path in ["/monitor", "/wall"] {
        let (_, body) = get(route(path), path, None).await;
        assert!(
            body.contains(RECOVERED),
            "{path} lists the recovered device: {body}"
        );
    }
}

/// A scoped live stream never carries an event of another region while devices there
/// change, and does carry its own region's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_stream_never_carries_another_regions_event() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, state) = context(dir.path()).await;
    let events = routes(&ctx)
        .into_iter()
        .find(|r| r.path() == http::route::Path::Exact("/api/v1/events"))
        .unwrap();
    let mut req = Request::get("/api/v1/events").body(Bytes::new()).unwrap();
    req.extensions_mut().insert(west());
    let mut body = events.call(req).await.into_body();
    // Unscoped beside it: east's events are sent, so the scoped stream's lack of them
    // is the filter's doing.
    let everyone = Request::get("/api/v1/events").body(Bytes::new()).unwrap();
    let mut control = events.call(everyone).await.into_body();
    // East flaps three times, then one west device goes down: its event is the proof
    // the stream was live while east's were not sent.
    for _ in 0..3 {
        for ok in [true, true, false, false] {
            probe(&state, "east-core", ok);
        }
    }
    for _ in 0..3 {
        probe(&state, "west-atm", false);
    }
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text.contains("\"device\":\"west-atm\"") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the west transition arrives")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let mut seen = String::new();
    while !seen.contains("\"device\":\"west-atm\"") {
        let frame = tokio::time::timeout_at(deadline, control.frame())
            .await
            .expect("the unscoped stream gets west too")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(
        seen.contains(HIDDEN),
        "the unscoped stream carried east: {seen}"
    );
    assert!(text.contains("event: hello"), "{text}");
    assert!(
        !text.contains(HIDDEN) && !text.contains("\"east\""),
        "{text}"
    );
}
