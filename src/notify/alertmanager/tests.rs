//! Against a fake Alertmanager (a few lines of HTTP on loopback that records each POST
//! and answers with the status it is told); the real one is in tests/notify_alertmanager.rs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::notify::Notice;
use crate::notify::fixture::notice;

/// One request the fake saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    key: Option<String>,
    alerts: Vec<Value>,
}

struct Fake {
    url: Url,
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    async fn start(prefix: &str) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{prefix}", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(200));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (status.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut conn).await else {
                        return;
                    };
                    let code = s.load(Ordering::SeqCst);
                    if code == 200 {
                        r.lock().unwrap().push(request);
                    }
                    let answer = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        Fake {
            url: url.parse().unwrap(),
            status,
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length")?.parse().ok()?;
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let path = head.split_whitespace().nth(1)?.to_string();
    let alerts = serde_json::from_slice(&buf[head_end..head_end + length]).ok()?;
    Some(Seen {
        path,
        key: header("idempotency-key"),
        alerts,
    })
}

fn receiver(fakes: &[&Fake]) -> Alertmanager {
    let config = AlertmanagerReceiver {
        urls: fakes.iter().map(|f| f.url.clone()).collect(),
        resend_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    };
    Alertmanager::new("noc-am", &config, None).unwrap()
}

fn message(id: u32, notices: Vec<Notice>) -> Message {
    Message {
        receiver: "noc-am".into(),
        idempotency_key: format!("wardops-noc-am-{id}"),
        group: BTreeMap::new(),
        notices,
        summarised: 0,
        test: false,
    }
}

fn firing() -> Notice {
    notice(NoticeState::Firing)
}

fn resolved() -> Notice {
    notice(NoticeState::Resolved)
}

fn ends_at(alert: &Value) -> DateTime<Utc> {
    alert["endsAt"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn every_alertmanager_gets_every_alert_with_the_key() {
    let (a, b) = (Fake::start("").await, Fake::start("/am/").await);
    let am = receiver(&[&a, &b]);
    am.deliver(&message(1, vec![firing()])).await.unwrap();
    for (fake, path) in [(&a, "/api/v2/alerts"), (&b, "/am/api/v2/alerts")] {
        let seen = fake.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].path, path);
        assert_eq!(seen[0].key.as_deref(), Some("wardops-noc-am-1"));
        let alerts = &seen[0].alerts;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["labels"]["alertname"], "device_down");
        assert!(ends_at(&alerts[0]) > Utc::now() + TimeDelta::seconds(200));
    }
}

#[tokio::test]
async fn one_alertmanager_down_does_not_hold_back_the_other_and_gets_its_resolves_later() {
    let (a, b) = (Fake::start("").await, Fake::start("").await);
    let am = receiver(&[&a, &b]);
    b.answer(503);
    am.deliver(&message(1, vec![resolved()])).await.unwrap();
    assert_eq!(a.seen().len(), 1);
    assert!(b.seen().is_empty());
    b.answer(200);
    am.deliver(&message(2, vec![firing()])).await.unwrap();
    let seen = b.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let alerts = &seen[0].alerts;
    assert_eq!(
        alerts.len(),
        2,
        "the missed resolve, then the new alert: {alerts:?}"
    );
    assert_eq!(
        ends_at(&alerts[0]),
        crate::notify::fixture::t("2026-12-02T07:00:00Z")
    );
    assert!(ends_at(&alerts[1]) > Utc::now());
    // Sent once: not again with the next post.
    am.deliver(&message(3, vec![firing()])).await.unwrap();
    assert_eq!(b.seen()[1].alerts.len(), 1);
}

#[tokio::test]
async fn the_engine_retries_only_when_no_alertmanager_took_the_message() {
    let (a, b) = (Fake::start("").await, Fake::start("").await);
    let am = receiver(&[&a, &b]);
    let m = message(1, vec![firing()]);
    a.answer(503);
    b.answer(429);
    assert!(matches!(am.deliver(&m).await, Err(DeliveryError::Retry(_))));
    b.answer(400);
    assert!(matches!(am.deliver(&m).await, Err(DeliveryError::Retry(_))));
    a.answer(422);
    let Err(DeliveryError::Permanent(why)) = am.deliver(&m).await else {
        panic!("both refused the alert itself")
    };
    assert!(why.contains("422") && why.contains("400"), "{why}");
    drop(a);
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: Url = format!("http://{}", closed.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(closed);
    let config = AlertmanagerReceiver {
        urls: vec![url],
        resend_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    };
    let gone = Alertmanager::new("noc-am", &config, None).unwrap();
    let Err(DeliveryError::Retry(why)) = gone.deliver(&m).await else {
        panic!("a refused connection is retried")
    };
    assert!(why.contains("/api/v2/alerts"), "{why}");
}

/// Open alerts that answer only when `release` is notified, counting the reads.
struct Gate {
    release: tokio::sync::Notify,
    reads: AtomicUsize,
    fail: bool,
}

impl OpenNotices for Gate {
    fn open_notices(&self) -> BoxFuture<'_, anyhow::Result<Vec<Notice>>> {
        Box::pin(async move {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                anyhow::bail!("the store is down");
            }
            self.release.notified().await;
            Ok(vec![firing()])
        })
    }
}

#[tokio::test]
async fn a_resolve_is_never_overtaken_by_a_resend_that_read_before_it() {
    let a = Fake::start("").await;
    let am = Arc::new(receiver(&[&a]));
    let gate = Arc::new(Gate {
        release: tokio::sync::Notify::new(),
        reads: AtomicUsize::new(0),
        fail: false,
    });
    let resend = tokio::spawn({
        let (am, gate) = (am.clone(), gate.clone());
        async move { am.resend(gate.as_ref()).await }
    });
    while gate.reads.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // The resend has read "firing"; the resolve committed after that read waits for it.
    let resolve = tokio::spawn({
        let am = am.clone();
        async move { am.deliver(&message(9, vec![resolved()])).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        a.seen().is_empty(),
        "the resolve went first: {:?}",
        a.seen()
    );
    gate.release.notify_one();
    resend.await.unwrap().unwrap();
    resolve.await.unwrap().unwrap();
    let seen = a.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].key, None, "the resend first");
    assert_eq!(seen[1].key.as_deref(), Some("wardops-noc-am-9"));
    assert_eq!(
        ends_at(&seen[1].alerts[0]),
        crate::notify::fixture::t("2026-12-02T07:00:00Z")
    );
}

#[tokio::test(start_paused = true)]
async fn the_loop_resends_at_once_and_then_every_interval_even_after_a_failure() {
    let config = AlertmanagerReceiver {
        urls: vec!["http://127.0.0.1:9".parse().unwrap()],
        resend_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    };
    let am = Arc::new(Alertmanager::new("noc-am", &config, None).unwrap());
    let gate = Arc::new(Gate {
        release: tokio::sync::Notify::new(),
        reads: AtomicUsize::new(0),
        fail: true,
    });
    let running = tokio::spawn(am.resend_loop(gate.clone()));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(gate.reads.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(gate.reads.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(gate.reads.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(gate.reads.load(Ordering::SeqCst), 12);
    running.abort();
}

#[tokio::test]
async fn a_test_message_posts_an_alert_that_ends_by_itself() {
    let a = Fake::start("").await;
    let config = AlertmanagerReceiver {
        urls: vec![a.url.clone()],
        resend_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    };
    let external: Url = "https://wardops.bank.example/".parse().unwrap();
    let am = Alertmanager::new("noc-am", &config, Some(&external)).unwrap();
    let mut m = message(1, Vec::new());
    m.test = true;
    am.deliver(&m).await.unwrap();
    let alert = &a.seen()[0].alerts[0];
    assert_eq!(alert["labels"]["alertname"], "WardopsTest");
    assert_eq!(alert["labels"]["receiver"], "noc-am");
    assert_eq!(alert["generatorURL"], "https://wardops.bank.example/");
    let ends = ends_at(alert);
    assert!(ends > Utc::now() && ends < Utc::now() + TimeDelta::minutes(6));
}

#[test]
fn endpoints_keep_a_path_prefix_and_refuse_other_schemes() {
    let e = |s: &str| endpoint(&s.parse().unwrap()).map(|u| u.to_string());
    assert_eq!(
        e("http://127.0.0.1:9093").unwrap(),
        "http://127.0.0.1:9093/api/v2/alerts"
    );
    assert_eq!(
        e("https://am.example/prefix/?x=1").unwrap(),
        "https://am.example/prefix/api/v2/alerts"
    );
    assert!(e("ftp://am.example/").is_err());
    let config = AlertmanagerReceiver {
        urls: Vec::new(),
        resend_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    };
    assert!(Alertmanager::new("noc-am", &config, None).is_err());
}

/// Open alerts read from a script: each read takes the next answer, an error once it is
/// used up (the store is down).
struct Script(parking_lot::Mutex<std::collections::VecDeque<Vec<Notice>>>);

impl OpenNotices for Script {
    fn open_notices(&self) -> BoxFuture<'_, anyhow::Result<Vec<Notice>>> {
        let next = self.0.lock().pop_front();
        Box::pin(async move { next.ok_or_else(|| anyhow::anyhow!("the database is down")) })
    }
}

#[tokio::test]
async fn a_store_outage_resends_the_last_known_alerts_but_never_one_resolved_since() {
    let a = Fake::start("").await;
    let am = receiver(&[&a]);
    let never_read = Script(parking_lot::Mutex::new(Default::default()));
    assert!(
        am.resend(&never_read).await.is_err(),
        "nothing known: an error"
    );
    assert!(a.seen().is_empty());

    let mut other = firing();
    other.alert_id = 4;
    other.device = "e-01-sw1".into();
    let open = Script(parking_lot::Mutex::new([vec![firing(), other]].into()));
    am.resend(&open).await.unwrap();
    assert_eq!(a.seen()[0].alerts.len(), 2);
    // The store cannot be read: the same two stay firing.
    am.resend(&open).await.unwrap();
    let devices = |seen: &Seen| -> Vec<String> {
        seen.alerts
            .iter()
            .map(|x| x["labels"]["device"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(devices(&a.seen()[1]), ["e-01-r1", "e-01-sw1"]);
    // One resolves (delivered from the outbox); the next blind resend leaves it resolved.
    am.deliver(&message(5, vec![resolved()])).await.unwrap();
    am.resend(&open).await.unwrap();
    let seen = a.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(devices(&seen[3]), ["e-01-sw1"]);
}
