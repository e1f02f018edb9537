//! Acknowledgements end to end inside the process: a real SQLite store fed by the state,
//! the real handlers. An operator acknowledges an open alert (JSON or a page's form),
//! the writer commits it and reports it as an `Updated` change, every surface shows it
//! (alert JSON, /alerts, the device page, the dashboard) with the comment escaped, the
//! audit log has it; a resolved or unknown alert is refused with a clear error; the
//! forms are hidden from those who may not act.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, StatusCode};
use wardops::access::{Principal, Role, Scope, Via};
use wardops::config::load::{Source, build_inventory};
use wardops::context::{Context, StoreHandle};
use wardops::probe::ProbeOutcome;
use wardops::state::{State, SystemClock};
use wardops::store::{AlertChange, AlertQuery, AlertRow, Store as _};
use wardops::web::Pages;

mod support;

const INVENTORY: &str = r#"
regions:
  - name: north
    probe: { down_after: 1, up_after: 1 }
    branches:
      - name: n1
        devices:
          - { name: n1-atm, address: 127.79.0.1, kind: atm }
          - { name: n1-gw, address: 127.79.0.2, kind: router }
"#;

fn operator(name: &str) -> Principal {
    Principal {
        name: name.into(),
        role: Role::Operator,
        scope: Scope::all(),
        via: Via::Basic,
        address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
    }
}

struct Fixture {
    ctx: Arc<Context>,
    state: State,
    _store: (tempfile::TempDir, wardops::store::startup::Started),
}

/// A state whose changes the store's writer applies, with `n1-atm` down (its alert open).
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let started = support::local_store(dir.path()).await;
    let state = State::with_sink(Arc::new(SystemClock), started.sink.clone());
    let source = Source {
        path: PathBuf::from("inventory/t.yaml"),
        text: INVENTORY.into(),
    };
    let inventory = build_inventory(&[source], &Default::default()).unwrap();
    state.replace_inventory(Arc::new(inventory), |_| None);
    let ctx = support::context_over(&state, StoreHandle::of(&started));
    let f = Fixture {
        ctx: Arc::new(ctx),
        state,
        _store: (dir, started),
    };
    f.probe("n1-atm", false);
    f.probe("n1-gw", true);
    f.wait_alert("n1-atm's alert to open", |a| {
        a.device == "n1-atm" && a.resolved_at.is_none()
    })
    .await;
    f
}

impl Fixture {
    fn probe(&self, name: &str, ok: bool) {
        let s = self.state.snapshot();
        let (d, _, rt) = s.device(name).unwrap();
        let outcome = ProbeOutcome {
            sent: 1,
            received: u32::from(ok),
            rtt: ok.then_some(Duration::from_micros(900)),
        };
        self.state.record_probe(d, rt, &outcome, chrono::Utc::now());
    }

    async fn alerts(&self) -> Vec<AlertRow> {
        let q = AlertQuery {
            limit: 100,
            ..AlertQuery::default()
        };
        self.ctx.store.db.alerts(&q).await.unwrap()
    }

    async fn wait_alert(&self, what: &str, ok: impl Fn(&AlertRow) -> bool) -> AlertRow {
        for _ in 0..200 {
            if let Some(a) = self.alerts().await.into_iter().find(&ok) {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("timed out waiting for {what}: {:?}", self.alerts().await);
    }

    async fn post(
        &self,
        by: Option<Principal>,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, hyper::HeaderMap, String) {
        let mut req = Request::post(path)
            .header("content-type", content_type)
            .body(Bytes::from(body.to_string()))
            .unwrap();
        if let Some(p) = by {
            req.extensions_mut().insert(p);
        }
        let r = wardops::api::acknowledge::post(self.ctx.clone(), req).await;
        let (status, headers) = (r.status(), r.headers().clone());
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn device_json(&self, name: &str) -> serde_json::Value {
        let req = Request::get(format!("/api/v1/devices/{name}"))
            .body(Bytes::new())
            .unwrap();
        let r = wardops::api::devices::device(self.ctx.clone(), req).await;
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A page as `by` sees it (rendered on the blocking pool, as the router runs it).
    async fn page(&self, by: Option<Principal>, path: &str) -> String {
        let mut req = Request::get(path).body(Bytes::new()).unwrap();
        if let Some(p) = by {
            req.extensions_mut().insert(p);
        }
        self.render(req).await
    }

    /// A page as an operator signed in with a page session of CSRF token `csrf` sees it.
    async fn session_page(&self, path: &str, csrf: &str) -> String {
        let mut req = Request::get(path).body(Bytes::new()).unwrap();
        let mut p = operator("ana");
        p.via = Via::Session;
        req.extensions_mut().insert(p);
        req.extensions_mut()
            .insert(wardops::access::gate::SessionToken { csrf: csrf.into() });
        self.render(req).await
    }

    async fn render(&self, req: Request<Bytes>) -> String {
        let web = Arc::new(Pages::new(self.ctx.clone()));
        let path = req.uri().path().to_string();
        let r = tokio::task::spawn_blocking(move || {
            if path.starts_with("/devices/") {
                wardops::web::device::get(&web, &req)
            } else if path.starts_with("/wall") {
                wardops::web::wall::get(&web, &req)
            } else if path.starts_with("/alerts") {
                wardops::web::alerts::get(&web, &req)
            } else {
                wardops::web::dashboard::get(&web, &req)
            }
        })
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_is_committed_reported_shown_and_audited() {
    let f = fixture().await;
    let id = f.alerts().await[0].id;
    let mut reports = f.ctx.store.health.subscribe_alerts();
    let comment = r#"ISP ticket <b>42</b> & "fibre" cut"#;
    let body = serde_json::json!({ "comment": comment }).to_string();
    let path = format!("/api/v1/alerts/{id}/ack");
    let (status, _, answer) = f
        .post(Some(operator("ana")), &path, "application/json", &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["acknowledged_by"], "ana");
    assert_eq!(answer["acknowledged_comment"], comment);

    // The writer's report: what the live feed publishes as `alert_updated`.
    let report = tokio::time::timeout(Duration::from_secs(5), reports.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].change, AlertChange::Updated);
    assert_eq!(report[0].alert.acknowledged_by.as_deref(), Some("ana"));
    let a = f
        .wait_alert("the ack", |a| a.acknowledged_by.is_some())
        .await;
    assert_eq!(a.acknowledged_comment.as_deref(), Some(comment));

    // Every surface, the comment escaped.
    let escaped = wardops::web::view::escape(comment);
    assert!(escaped.contains("&lt;b&gt;42&lt;"), "{escaped}");
    for path in ["/alerts", "/devices/n1-atm", "/"] {
        let html = f.page(Some(operator("ben")), path).await;
        assert!(html.contains("✔ ACK"), "{path}: no acknowledgement shown");
        assert!(html.contains(&escaped), "{path}: comment not shown escaped");
        assert!(!html.contains("<b>42</b>"), "{path}: comment not escaped");
    }
    // Device JSON and the wall, from the writer's memory of the acknowledgements.
    let json = f.device_json("n1-atm").await;
    assert_eq!(json["acknowledged"][0]["alert"], id);
    assert_eq!(json["acknowledged"][0]["by"], "ana");
    assert_eq!(json["acknowledged"][0]["comment"], comment);
    assert_eq!(json["acknowledged"][0]["condition"], "device_down");
    assert_eq!(
        f.device_json("n1-gw").await["acknowledged"],
        serde_json::json!([])
    );
    let wall = f.page(None, "/wall").await;
    let tile = |html: &str, name: &str| {
        let end = html
            .find(&format!(r#"data-device="{name}""#))
            .expect("a tile");
        let start = html[..end].rfind("<a ").unwrap();
        html[start..end].to_string()
    };
    assert!(
        tile(&wall, "n1-atm").contains(" acked\""),
        "the wall hatches the acknowledged device: {}",
        tile(&wall, "n1-atm")
    );
    assert!(!tile(&wall, "n1-gw").contains("acked"), "and only it");
    let q = wardops::store::AuditQuery {
        limit: 10,
        ..Default::default()
    };
    let audit = f.ctx.store.db.audit(&q).await.unwrap();
    assert_eq!(audit.len(), 1);
    let e = &audit[0].entry;
    assert_eq!(
        (
            e.user.as_str(),
            e.via.as_str(),
            e.address.as_str(),
            e.action.as_str()
        ),
        ("ana", "basic", "127.0.0.9", "ack")
    );
    assert!(e.target.contains(&format!("alert {id}")) && e.target.contains("n1-atm"));
    assert_eq!(e.detail, comment);

    // Un-acknowledged by a page's form: a 303 back to the page, all of it cleared.
    let (status, headers, _) = f
        .post(
            Some(operator("ben")),
            &format!("/api/v1/alerts/{id}/unack"),
            "application/x-www-form-urlencoded",
            "back=%2Falerts%3Fseverity%3Dcritical",
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/alerts?severity=critical");
    let a = f
        .wait_alert("the unack", |a| a.acknowledged_by.is_none())
        .await;
    assert_eq!((a.acknowledged_at, a.acknowledged_comment), (None, None));
    let html = f.page(Some(operator("ben")), "/alerts").await;
    assert!(!html.contains("✔ ACK"));
    assert_eq!(
        f.device_json("n1-atm").await["acknowledged"],
        serde_json::json!([])
    );
    assert!(!f.page(None, "/wall").await.contains(" acked\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resolved_and_bad_requests_are_refused_with_a_reason() {
    let f = fixture().await;
    let id = f.alerts().await[0].id;
    let ana = || Some(operator("ana"));
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (
            "/api/v1/alerts/999999/ack".to_string(),
            "",
            StatusCode::NOT_FOUND,
            "no alert 999999",
        ),
        (
            "/api/v1/alerts/abc/ack".into(),
            "",
            StatusCode::NOT_FOUND,
            "positive integer",
        ),
        (
            format!("/api/v1/alerts/{id}/close"),
            "",
            StatusCode::NOT_FOUND,
            "no such route",
        ),
        (
            format!("/api/v1/alerts/{id}/unack"),
            "",
            StatusCode::CONFLICT,
            "not acknowledged",
        ),
        (
            format!("/api/v1/alerts/{id}/ack"),
            &*format!("comment={}", "x".repeat(501)),
            StatusCode::BAD_REQUEST,
            "at most 500",
        ),
    ];
    for (path, body, want, says) in &cases {
        let (status, _, answer) = f.post(ana(), path, form, body).await;
        assert_eq!(status, *want, "{path}: {answer}");
        assert!(answer.contains(says), "{path}: {answer}");
    }
    // Resolved: refused, and nothing sticks.
    f.probe("n1-atm", true);
    f.wait_alert("the recovery", |a| a.id == id && a.resolved_at.is_some())
        .await;
    let (status, _, answer) = f
        .post(
            ana(),
            &format!("/api/v1/alerts/{id}/ack"),
            form,
            "comment=late",
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer.contains("is resolved"), "{answer}");
    let q = wardops::store::AuditQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(
        f.ctx.store.db.audit(&q).await.unwrap().is_empty(),
        "a refused request writes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forms_are_shown_only_to_those_who_may_act() {
    let f = fixture().await;
    let id = f.alerts().await[0].id;
    let action = format!(r#"action="/api/v1/alerts/{id}/ack""#);
    for path in ["/alerts", "/devices/n1-atm"] {
        let html = f.page(Some(operator("ana")), path).await;
        assert!(html.contains(&action), "{path}: an operator gets the form");
        assert!(
            html.contains(&format!(
                r#"name="back" value="{}""#,
                wardops::web::view::escape(path)
            )),
            "{path}: the form comes back to the page"
        );
        let html = f.page(None, path).await;
        assert!(
            !html.contains("ack-form"),
            "{path}: the anonymous viewer does not"
        );
        let mut viewer = operator("vic");
        viewer.role = Role::Viewer;
        let html = f.page(Some(viewer), path).await;
        assert!(!html.contains("ack-form"), "{path}: nor does a viewer");
    }
    let html = f.page(Some(operator("ana")), "/").await;
    assert!(
        !html.contains("ack-form"),
        "the dashboard shows, it has no buttons"
    );
    // A page session's forms carry its CSRF token (the router checks it on the POST).
    let html = f.session_page("/alerts", "tok-123").await;
    assert!(html.contains(r#"name="csrf_token" value="tok-123""#));
    assert!(
        !f.page(Some(operator("ana")), "/alerts")
            .await
            .contains("csrf_token"),
        "basic auth needs none"
    );
}
