//! The live event feed of a cluster (issue #18, docs/cluster.md) on the real PostgreSQL
//! (a database of each test's own) and a real Redis: the shared one at 127.0.0.1:6379
//! with a stream key of each test's own, or, for the test that kills Redis, a
//! redis-server of its own. Committed outbox rows reach another member in order and
//! once; rolled-back ones never; Redis away keeps the rows and puts readers in fallback
//! until it is back; a relay that published without marking repeats nothing a reader
//! hands on; garbage in the stream is counted and skipped.

mod pgdb;
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pgdb::TestDb;
use sqlx::postgres::PgPool;
use support::redis::OwnRedis;
use tokio::sync::{mpsc, watch};
use wardops::cluster::events::fallback;
use wardops::cluster::events::outbox;
use wardops::cluster::events::reader::{Reader, ReaderStats};
use wardops::cluster::events::relay::{self, Relay};
use wardops::cluster::events::{ClusterEvent, EventKind, FeedSettings, FeedStatus, VERSION};
use wardops::state::Status;

const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// Settings on `url` with a stream key of the test's own.
fn settings(url: &str, test: &str) -> FeedSettings {
    let mut s = FeedSettings::new(url);
    s.stream = format!("wardops:test:{test}:{:08x}", rand::random::<u32>());
    s.timeout = Duration::from_millis(500);
    s
}

fn transition(member: &str, device: &str) -> ClusterEvent {
    ClusterEvent {
        v: VERSION,
        outbox_id: 0,
        member: member.into(),
        epoch: 1,
        at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        kind: EventKind::Transition {
            device: device.into(),
            from: Status::Up,
            to: Status::Down,
            down_since: DateTime::from_timestamp(1_799_999_990, 0),
        },
    }
}

/// Commits `events` to the outbox in one transaction.
async fn commit(pool: &PgPool, events: &[ClusterEvent]) {
    let mut tx = pool.begin().await.unwrap();
    outbox::insert(&mut tx, events).await.unwrap();
    tx.commit().await.unwrap();
}

async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM cluster_outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A relay that retries quickly, spawned; its waker.
fn relay(pool: &PgPool, s: &FeedSettings, member: &str) -> std::sync::Arc<tokio::sync::Notify> {
    let mut r = Relay::new(pool.clone(), s.clone(), member);
    r.backoff = (Duration::from_millis(50), Duration::from_millis(300));
    r.poll = Duration::from_millis(200);
    let wake = r.waker();
    tokio::spawn(r.run());
    wake
}

struct Feed {
    events: mpsc::Receiver<ClusterEvent>,
    status: watch::Receiver<FeedStatus>,
    stats: std::sync::Arc<ReaderStats>,
}

/// A reader for `member` from now on, once it is live.
async fn reader(s: &FeedSettings, member: &str) -> Feed {
    let mut r = Reader::new(s.clone(), member);
    r.block = Duration::from_millis(200);
    r.backoff = (Duration::from_millis(50), Duration::from_millis(300));
    let stats = r.stats();
    let (tx, events) = mpsc::channel(1000);
    let (mut status, _task) = r.spawn(tx);
    wait_status(&mut status, |s| *s == FeedStatus::Live).await;
    Feed {
        events,
        status,
        stats,
    }
}

async fn wait_status(status: &mut watch::Receiver<FeedStatus>, ok: impl Fn(&FeedStatus) -> bool) {
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| ok(s)))
        .await
        .expect("feed status in time")
        .unwrap();
}

/// The next `n` events, or fails after 10 s.
async fn next(feed: &mut Feed, n: usize) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(10), feed.events.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} events arrived: {out:?}", out.len()))
            .unwrap();
        out.push(e);
    }
    out
}

/// Nothing more arrives for a while.
async fn nothing_more(feed: &mut Feed) {
    let more = tokio::time::timeout(Duration::from_millis(1200), feed.events.recv()).await;
    assert!(more.is_err(), "unexpected {more:?}");
}

fn devices(events: &[ClusterEvent]) -> Vec<String> {
    events.iter().map(|e| e.device().to_string()).collect()
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_reach_another_member_in_order_and_once_and_its_own_are_skipped() {
    let db = TestDb::create("events_order");
    let pool = db.migrated().await;
    let s = settings(SHARED_REDIS, "order");
    let mut b = reader(&s, "b").await;
    let (wake_a, wake_b) = (relay(&pool, &s, "a"), relay(&pool, &s, "b"));

    let a_events: Vec<_> = (0..5).map(|i| transition("a", &format!("a{i}"))).collect();
    commit(&pool, &a_events[..3]).await;
    commit(&pool, &[transition("b", "b0"), transition("b", "b1")]).await;
    commit(&pool, &a_events[3..]).await;
    wake_a.notify_one();
    wake_b.notify_one();

    let got = next(&mut b, 5).await;
    assert_eq!(devices(&got), ["a0", "a1", "a2", "a3", "a4"]);
    assert!(got.windows(2).all(|w| w[0].outbox_id < w[1].outbox_id));
    assert!(got.iter().all(|e| e.member == "a" && e.outbox_id > 0));
    nothing_more(&mut b).await;
    assert_eq!(unsent(&pool).await, 0, "every row is marked sent");
    // b's own rows were published all the same (a would read them).
    let len: usize = redis::cmd("XLEN")
        .arg(&s.stream)
        .query_async(&mut redis_conn(SHARED_REDIS).await)
        .await
        .unwrap();
    assert_eq!(len, 7);
    assert_eq!(b.stats.delivered.load(Ordering::Relaxed), 5);
    drop_stream(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_publishes_nothing() {
    let db = TestDb::create("events_rollback");
    let pool = db.migrated().await;
    let s = settings(SHARED_REDIS, "rollback");
    let mut b = reader(&s, "b").await;
    let wake = relay(&pool, &s, "a");

    let mut tx = pool.begin().await.unwrap();
    outbox::insert(
        &mut tx,
        &[transition("a", "gone0"), transition("a", "gone1")],
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    commit(&pool, &[transition("a", "kept")]).await;
    wake.notify_one();

    assert_eq!(devices(&next(&mut b, 1).await), ["kept"]);
    nothing_more(&mut b).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM cluster_outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    drop_stream(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_keeps_the_rows_and_puts_readers_in_fallback_until_it_is_back() {
    let db = TestDb::create("events_outage");
    let pool = db.migrated().await;
    let mut redis = OwnRedis::start();
    let s = settings(&redis.url(), "outage");
    let mut b = reader(&s, "b").await;
    let wake = relay(&pool, &s, "a");
    commit(&pool, &[transition("a", "before")]).await;
    wake.notify_one();
    assert_eq!(devices(&next(&mut b, 1).await), ["before"]);

    redis.kill();
    wait_status(&mut b.status, |s| matches!(s, FeedStatus::Fallback { .. })).await;
    assert_eq!(b.stats.fallbacks.load(Ordering::Relaxed), 1);
    commit(&pool, &[transition("a", "d0"), transition("a", "d1")]).await;
    commit(&pool, &[transition("a", "d2")]).await;
    wake.notify_one();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(unsent(&pool).await, 3, "the rows wait for Redis");
    assert!(matches!(*b.status.borrow(), FeedStatus::Fallback { .. }));

    // Back, empty, on the same port.
    redis.restart();
    wait_status(&mut b.status, |s| *s == FeedStatus::Live).await;
    let got = next(&mut b, 3).await;
    assert_eq!(devices(&got), ["d0", "d1", "d2"]);
    nothing_more(&mut b).await;
    assert_eq!(unsent(&pool).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_published_twice_by_a_relay_that_crashed_before_marking_arrive_once() {
    let db = TestDb::create("events_repeat");
    let pool = db.migrated().await;
    let s = settings(SHARED_REDIS, "repeat");
    let mut b = reader(&s, "b").await;
    commit(&pool, &[transition("a", "x0"), transition("a", "x1")]).await;
    commit(&pool, &[transition("a", "x2")]).await;

    // The first relay publishes and dies before its mark.
    let rows = outbox::pending(&pool, "a", 500).await.unwrap();
    assert_eq!(rows.len(), 3);
    relay::publish(&mut redis_conn(SHARED_REDIS).await, &s, &rows)
        .await
        .unwrap();
    assert_eq!(unsent(&pool).await, 3);
    assert_eq!(devices(&next(&mut b, 3).await), ["x0", "x1", "x2"]);

    // The next one finds them unsent and publishes them again, then one more.
    let wake = relay(&pool, &s, "a");
    commit(&pool, &[transition("a", "x3")]).await;
    wake.notify_one();
    assert_eq!(devices(&next(&mut b, 1).await), ["x3"]);
    nothing_more(&mut b).await;
    assert_eq!(b.stats.repeats.load(Ordering::Relaxed), 3);
    assert_eq!(unsent(&pool).await, 0);
    drop_stream(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_entry_is_counted_and_skipped_and_the_next_one_arrives() {
    let db = TestDb::create("events_garbage");
    let pool = db.migrated().await;
    let s = settings(SHARED_REDIS, "garbage");
    let mut b = reader(&s, "b").await;
    let mut conn = redis_conn(SHARED_REDIS).await;
    for (field, value) in [
        ("event", "not json"),
        ("other", "no event field"),
        ("event", r#"{"v":2,"member":"a"}"#),
    ] {
        let _: String = redis::cmd("XADD")
            .arg(&s.stream)
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let wake = relay(&pool, &s, "a");
    commit(&pool, &[transition("a", "after")]).await;
    wake.notify_one();

    assert_eq!(devices(&next(&mut b, 1).await), ["after"]);
    assert_eq!(b.stats.undecodable.load(Ordering::Relaxed), 3);
    assert_eq!(*b.status.borrow(), FeedStatus::Live);
    drop_stream(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_reads_every_live_devices_stored_status() {
    let db = TestDb::create("events_fallback");
    let pool = db.migrated().await;
    db.query(
        "INSERT INTO devices (name, address, region, branch, kind, first_seen_at, updated_at, removed_at) VALUES \
         ('atm-1', '127.0.0.1', 'r', 'b', 'atm', now(), now(), NULL), \
         ('atm-2', '127.0.0.2', 'r', 'b', 'atm', now(), now(), NULL), \
         ('old', '127.0.0.3', 'r', 'b', 'atm', now(), now(), now()); \
         INSERT INTO device_state (device, status, down_since, changed_at, state_version) VALUES \
         ('atm-1', 'down', '2027-01-15T07:59:50Z', '2027-01-15T08:00:00Z', 3), \
         ('atm-2', 'up', NULL, '2027-01-15T08:00:00Z', 4), \
         ('old', 'up', NULL, '2027-01-15T08:00:00Z', 5)",
    );
    let states = fallback::device_states(&pool).await.unwrap();
    let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
    assert_eq!(
        states,
        [
            fallback::DeviceState {
                device: "atm-1".into(),
                status: Status::Down,
                down_since: Some(at("2027-01-15T07:59:50Z")),
                changed_at: at("2027-01-15T08:00:00Z"),
            },
            fallback::DeviceState {
                device: "atm-2".into(),
                status: Status::Up,
                down_since: None,
                changed_at: at("2027-01-15T08:00:00Z"),
            },
        ]
    );
}

/// The test's stream off the shared Redis.
async fn drop_stream(s: &FeedSettings) {
    let _: i64 = redis::cmd("DEL")
        .arg(&s.stream)
        .query_async(&mut redis_conn(SHARED_REDIS).await)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_behind_a_trimmed_stream_falls_back_then_goes_on_live() {
    let s = settings(SHARED_REDIS, "trimmed");
    let mut conn = redis_conn(SHARED_REDIS).await;
    // A reader whose consumer is slow: one event in the channel, two read at a time.
    let mut r = Reader::new(s.clone(), "b");
    r.block = Duration::from_millis(200);
    r.count = 2;
    r.check_every = Duration::from_millis(300);
    let stats = r.stats();
    let (tx, mut events) = mpsc::channel(1);
    let (mut status, _task) = r.spawn(tx);
    wait_status(&mut status, |s| *s == FeedStatus::Live).await;

    for i in 1..=10 {
        let mut e = transition("a", &format!("t{i}"));
        e.outbox_id = i;
        let _: String = redis::cmd("XADD")
            .arg(&s.stream)
            .arg("*")
            .arg("event")
            .arg(e.to_json())
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // The reader holds t1 and t2 (the channel is full); the rest is trimmed unread.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _: i64 = redis::cmd("XTRIM")
        .arg(&s.stream)
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    let first = events.recv().await.unwrap();
    let second = events.recv().await.unwrap();
    assert_eq!(devices(&[first, second]), ["t1", "t2"]);
    tokio::time::timeout(Duration::from_secs(10), async {
        while stats.fallbacks.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the gap is seen");
    wait_status(&mut status, |s| *s == FeedStatus::Live).await;

    let mut e = transition("a", "t11");
    e.outbox_id = 11;
    let _: String = redis::cmd("XADD")
        .arg(&s.stream)
        .arg("*")
        .arg("event")
        .arg(e.to_json())
        .query_async(&mut conn)
        .await
        .unwrap();
    // What the reader had read before the trim may still come (t3); nothing trimmed does.
    let mut rest = Vec::new();
    while rest.last().map(ClusterEvent::device) != Some("t11") {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap_or_else(|_| panic!("t11 did not arrive: {rest:?}"))
            .unwrap();
        rest.push(e);
    }
    let rest = devices(&rest);
    assert!(rest == ["t11"] || rest == ["t3", "t11"], "{rest:?}");
    drop_stream(&s).await;
}
