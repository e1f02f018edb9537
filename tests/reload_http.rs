//! `POST /-/reload` over real HTTP when the request does not wait for the end: the
//! reload must finish and be recorded all the same. The app's side (the inventory
//! channel and its "applied" count) is played by the test, so it decides when the
//! queued inventory counts as applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use wardops::config::settings::{HttpSettings, ReloadSettings};
use wardops::config::{Inventory, ProbeSettings};
use wardops::context::{Context, StoreHandle};
use wardops::http::serve_with;
use wardops::reload::{ReloadMetrics, Reloader};
use wardops::state::{State, SystemClock};

mod support;

const GUARD: Duration = Duration::from_secs(10);

fn inventory(devices: usize) -> String {
    let mut text =
        "regions:\n  - name: r\n    branches:\n      - name: b\n        devices:\n".to_string();
    for i in 1..=devices {
        text += &format!("          - {{ name: d{i}, address: 127.13.0.{i}, kind: atm }}\n");
    }
    text
}

/// Item 12 of the reliability issue: the request future used to run the reload itself,
/// so a request dropped after the inventory was queued (here by the request timeout)
/// cancelled the reload before it recorded the new revision: the app ran revision 1
/// while `/api/v1/status` said 0, forever. The reload now runs in a task of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_whose_request_is_dropped_still_completes_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let inventory_dir = dir.path().join("inventory");
    std::fs::create_dir(&inventory_dir).unwrap();
    std::fs::write(inventory_dir.join("a.yaml"), inventory(2)).unwrap();
    let (sink, mut queued) = mpsc::channel::<Arc<Inventory>>(4);
    // One inventory (the start-up one) applied so far.
    let (applied, applied_rx) = watch::channel(1u64);
    let reloader = Reloader::new(
        inventory_dir.clone(),
        ProbeSettings::default(),
        ReloadSettings {
            http_endpoint: true,
            ..ReloadSettings::default()
        },
        Arc::new(Inventory::default()),
        sink,
        Arc::new(ReloadMetrics::default()),
    );
    reloader.confirm_with(applied_rx);
    let store = support::local_store(&dir.path().join("store")).await;
    let state = State::new(Arc::new(SystemClock));
    let ctx =
        Context::new(state, StoreHandle::of(&store), reloader.clone()).start(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/-/reload", listener.local_addr().unwrap());
    // Long enough for a reload, short enough for the test to wait it out.
    let limits = HttpSettings {
        request_timeout: Duration::from_secs(2),
        ..HttpSettings::default()
    };
    tokio::spawn(serve_with(
        listener,
        support::routes(&ctx),
        support::gate(),
        limits,
        None,
        std::future::pending(),
    ));

    let post = tokio::spawn(
        reqwest::Client::new()
            .post(&url)
            .basic_auth("admin", Some("secret"))
            .send(),
    );
    let sent = tokio::time::timeout(GUARD, queued.recv())
        .await
        .expect("the reload queues its inventory")
        .unwrap();
    assert_eq!(sent.devices.len(), 2);
    let answer = post.await.unwrap().unwrap();
    assert_eq!(
        answer.status(),
        503,
        "the request timed out before the apply"
    );
    assert_eq!(reloader.status().revision, 0, "not applied yet");

    // The app applies it only now, after the request is gone.
    applied.send_replace(2);
    let deadline = Instant::now() + GUARD;
    while reloader.status().revision == 0 {
        assert!(
            Instant::now() < deadline,
            "the applied inventory was never recorded: the reload was cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = reloader.status();
    assert_eq!((status.revision, status.devices), (1, 2));
    assert_eq!(status.hash, sent.hash);

    // A request that waits is answered when the reload completes, with its outcome.
    std::fs::write(inventory_dir.join("a.yaml"), inventory(3)).unwrap();
    let app = tokio::spawn(async move {
        let next = queued.recv().await.unwrap();
        applied.send_replace(3);
        next
    });
    let answer = reqwest::Client::new()
        .post(&url)
        .basic_auth("admin", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let outcome: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(outcome["result"], "success", "{outcome}");
    assert_eq!(outcome["revision"], 2, "{outcome}");
    assert_eq!(app.await.unwrap().devices.len(), 3);
}
