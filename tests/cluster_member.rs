//! The members' loop (issue #18, docs/cluster.md) on the real PostgreSQL, a database of the
//! test's own, in real time with a short TTL: one member takes every shard in its first
//! round; two converge to the rendezvous split without ever both publishing a shard; a
//! member shut down hands over at once, one killed only once its leases expire; and one
//! cut off from the database withdraws its shards at its fence, before the database would
//! let anyone take them.

mod pgdb;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pgdb::TestDb;
use pgdb::proxy::Proxy;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wardops::cluster::member::{Config, Counters, Member, Owned};
use wardops::cluster::{Assignment, SHARDS};

const TTL: Duration = Duration::from_secs(2);
const MARGIN: Duration = Duration::from_millis(500);
const ROUND: Duration = Duration::from_millis(667);

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(6)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .unwrap()
}

/// A running member: what it publishes, its counters, and how to stop or kill it.
struct Running {
    owned: watch::Receiver<Owned>,
    counters: std::sync::Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

fn start(pool: PgPool, id: &str, ttl: Duration, margin: Duration) -> Running {
    let member = Member::new(
        pool,
        Config {
            id: id.into(),
            url: format!("http://{id}.test"),
            ttl,
            margin,
        },
    );
    let (stop, stopped) = oneshot::channel();
    let owned = member.owned();
    let counters = member.counters();
    let task = tokio::spawn(member.run(async {
        let _ = stopped.await;
    }));
    Running {
        owned,
        counters,
        stop: Some(stop),
        task,
    }
}

fn shards(owned: &watch::Receiver<Owned>) -> BTreeSet<u16> {
    owned.borrow().shards.keys().copied().collect()
}

/// Waits (at most `within`) until `pred` holds of the published value; when it did.
async fn until_published(
    owned: &mut watch::Receiver<Owned>,
    within: Duration,
    pred: impl Fn(&Owned) -> bool,
) -> Instant {
    tokio::time::timeout(within, owned.wait_for(|o| pred(o)))
        .await
        .expect("published in time")
        .expect("member running");
    Instant::now()
}

/// Shard → (owner, epoch), straight from the table.
fn table(db: &TestDb) -> Vec<(Option<String>, i64)> {
    db.query("SELECT coalesce(owner, ''), epoch FROM shard_leases ORDER BY shard")
        .lines()
        .map(|l| {
            let (owner, epoch) = l.split_once('|').unwrap();
            let owner = (!owner.is_empty()).then(|| owner.to_string());
            (owner, epoch.parse().unwrap())
        })
        .collect()
}

fn owned_by(db: &TestDb, id: &str) -> BTreeSet<u16> {
    table(db)
        .into_iter()
        .enumerate()
        .filter(|(_, (o, _))| o.as_deref() == Some(id))
        .map(|(s, _)| s as u16)
        .collect()
}

fn split(id: &str) -> BTreeSet<u16> {
    let map = Assignment::new(["a".to_string(), "b".to_string()]).unwrap();
    map.shards_of(id).into_iter().collect()
}

/// Starts `a`, lets it take everything, starts `b`, and waits for the rendezvous split.
async fn two_converged(db: &TestDb) -> (Running, Running) {
    let mut a = start(pool(&db.url()).await, "a", TTL, MARGIN);
    until_published(&mut a.owned, TTL, |o| o.shards.len() == 1024).await;
    let mut b = start(pool(&db.url()).await, "b", TTL, MARGIN);
    let (to_a, to_b) = (split("a"), split("b"));
    let within = 6 * ROUND;
    until_published(&mut b.owned, within, |o| {
        o.shards.keys().copied().collect::<BTreeSet<_>>() == to_b
    })
    .await;
    until_published(&mut a.owned, within, |o| {
        o.shards.keys().copied().collect::<BTreeSet<_>>() == to_a
    })
    .await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_alone_takes_every_shard_in_its_first_round() {
    let db = TestDb::create("member_alone");
    db.migrated().await;
    let started = Instant::now();
    let mut a = start(pool(&db.url()).await, "a", TTL, MARGIN);
    let at = until_published(&mut a.owned, TTL, |o| !o.shards.is_empty()).await;
    let owned = a.owned.borrow().clone();
    assert_eq!(owned.shards.len(), usize::from(SHARDS), "all at once");
    assert!(
        owned.shards.values().all(|&e| e == 1),
        "each taken at epoch 1"
    );
    assert!(owned.until.unwrap() > Instant::now());
    assert!(at - started < ROUND, "first round took {:?}", at - started);
    assert_eq!(owned_by(&db, "a").len(), 1024);
    assert_eq!(a.counters.acquisitions.load(Ordering::Relaxed), 1024);
    assert_eq!(a.counters.shards_owned.load(Ordering::Relaxed), 1024);

    // Later rounds renew and keep the same epochs, the fence moving on.
    let first_until = owned.until.unwrap();
    until_published(&mut a.owned, 2 * ROUND, |o| {
        o.until.is_some_and(|u| u > first_until)
    })
    .await;
    assert_eq!(a.owned.borrow().shards, owned.shards);
    assert!(a.counters.renewals_ok.load(Ordering::Relaxed) >= 1);
    assert_eq!(a.counters.renewals_failed.load(Ordering::Relaxed), 0);
    assert!(a.counters.last_renewal_micros.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_converge_to_the_rendezvous_split_never_both_owning_a_shard() {
    let db = TestDb::create("member_two");
    db.migrated().await;
    let mut a = start(pool(&db.url()).await, "a", TTL, MARGIN);
    until_published(&mut a.owned, TTL, |o| o.shards.len() == 1024).await;
    let b = start(pool(&db.url()).await, "b", TTL, MARGIN);

    // Sample while they hand over and for a while after.
    let (to_a, to_b) = (split("a"), split("b"));
    let deadline = Instant::now() + 8 * ROUND;
    let mut converged_at = None;
    // A shard a gives up: when it stopped publishing it, at which epoch, and whether
    // its lease was seen still a's a while later (drained before it is freed).
    let mut prev_a = a.owned.borrow().clone();
    let mut withdrawn: std::collections::HashMap<u16, (Instant, i64, bool)> = Default::default();
    while Instant::now() < deadline {
        let (sa, sb) = (a.owned.borrow().clone(), b.owned.borrow().clone());
        let rows = table(&db);
        for (&shard, &epoch) in &prev_a.shards {
            if !sa.shards.contains_key(&shard) {
                withdrawn
                    .entry(shard)
                    .or_insert((Instant::now(), epoch, false));
            }
        }
        prev_a = sa.clone();
        for (shard, (at, epoch, seen)) in withdrawn.iter_mut() {
            let age = at.elapsed();
            if !*seen && age >= ROUND / 4 && age < ROUND / 2 {
                let (owner, e) = &rows[usize::from(*shard)];
                assert_eq!(
                    (owner.as_deref(), *e),
                    (Some("a"), *epoch),
                    "shard {shard} freed before its records had a round to commit"
                );
                *seen = true;
            }
        }
        for (who, owned) in [("a", &sa), ("b", &sb)] {
            for (&shard, &epoch) in &owned.shards {
                let other = if who == "a" { &sb } else { &sa };
                assert!(
                    !other.shards.contains_key(&shard),
                    "{shard} published by both"
                );
                // Read after: still its lease, or freed / taken since (a newer epoch).
                let (owner, e) = &rows[usize::from(shard)];
                assert!(
                    (*e == epoch && owner.as_deref() != Some(if who == "a" { "b" } else { "a" }))
                        || *e > epoch,
                    "{who} publishes {shard}@{epoch}, table says {owner:?}@{e}"
                );
            }
        }
        let keys = |o: &Owned| o.shards.keys().copied().collect::<BTreeSet<_>>();
        if converged_at.is_none() && keys(&sa) == to_a && keys(&sb) == to_b {
            converged_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(converged_at.is_some(), "never converged");
    assert!(
        withdrawn.values().any(|w| w.2),
        "a drained lease was looked at: {} withdrawn",
        withdrawn.len()
    );
    assert_eq!(shards(&a.owned), to_a);
    assert_eq!(shards(&b.owned), to_b);
    assert_eq!(owned_by(&db, "a"), to_a);
    assert_eq!(owned_by(&db, "b"), to_b);
    assert_eq!(
        a.counters.releases.load(Ordering::Relaxed),
        to_b.len() as u64
    );
    // The shards that moved were taken anew; the others kept their epoch.
    for (shard, (_, epoch)) in table(&db).into_iter().enumerate() {
        let moved = to_b.contains(&(shard as u16));
        assert_eq!(epoch, if moved { 2 } else { 1 }, "shard {shard}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_shut_down_releases_at_once_and_the_other_takes_all_within_a_round() {
    let db = TestDb::create("member_shutdown");
    db.migrated().await;
    let (mut a, mut b) = two_converged(&db).await;

    let stopped = Instant::now();
    a.stop.take().unwrap().send(()).unwrap();
    a.task.await.unwrap();
    assert!(a.owned.borrow().shards.is_empty(), "published empty");
    assert!(owned_by(&db, "a").is_empty(), "released at once");
    let members = db.query("SELECT id FROM cluster_members ORDER BY id");
    assert_eq!(members.trim(), "b", "left the member list");

    let took = until_published(&mut b.owned, TTL, |o| o.shards.len() == 1024).await;
    assert!(took - stopped < TTL, "hand-over took {:?}", took - stopped);
    assert_eq!(owned_by(&db, "b").len(), 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_keeps_its_shards_until_its_leases_expire() {
    let db = TestDb::create("member_killed");
    db.migrated().await;
    let (a, mut b) = two_converged(&db).await;
    let to_a = split("a");

    a.task.abort();
    let _ = a.task.await;
    // A statement sent just before the abort may still land: let it, then read how long
    // the leases it left have to run, by the database's clock.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let epochs_before = table(&db);
    let remaining: f64 = db
        .query(
            "SELECT extract(epoch FROM min(expires_at) - now()) FROM shard_leases \
             WHERE owner = 'a'",
        )
        .trim()
        .parse()
        .unwrap();
    let read_at = Instant::now();
    assert!(remaining > 0.0, "a's leases still live");
    let remaining = Duration::from_secs_f64(remaining);

    // b takes none of them before they expire, and all of them within a round after.
    let first = until_published(&mut b.owned, remaining + TTL, |o| {
        o.shards.keys().any(|s| to_a.contains(s))
    })
    .await;
    let slack = Duration::from_millis(100);
    assert!(
        first - read_at + slack >= remaining,
        "taken {:?} after, the leases had {remaining:?} left",
        first - read_at
    );
    until_published(&mut b.owned, 3 * ROUND, |o| o.shards.len() == 1024).await;
    for (&shard, &epoch) in &b.owned.borrow().shards {
        if to_a.contains(&shard) {
            assert_eq!(
                epoch,
                epochs_before[usize::from(shard)].1 + 1,
                "shard {shard}"
            );
        }
    }
    assert_eq!(owned_by(&db, "b").len(), 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_from_the_database_withdraws_its_shards_before_they_expire() {
    withdraws_at_its_fence("member_cut", Proxy::cut).await;
}

/// Statements hang instead of failing: the round in flight never ends, and the fence's
/// timer must withdraw the shards while it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_database_stalls_withdraws_its_shards_mid_round() {
    withdraws_at_its_fence("member_stall", Proxy::stall).await;
}

/// A member alone behind `proxy`, which `outage` makes unreachable: its published set
/// empties at its fence (`sent + ttl - margin`), while the database still holds its leases.
async fn withdraws_at_its_fence(tag: &str, outage: fn(&Proxy)) {
    let db = TestDb::create(tag);
    db.migrated().await;
    let proxy = Proxy::start();
    let (ttl, margin) = (Duration::from_secs(3), Duration::from_secs(1));
    let mut a = start(pool(&db.url_via(proxy.addr)).await, "a", ttl, margin);
    until_published(&mut a.owned, ttl, |o| o.shards.len() == 1024).await;
    // Wait for a renewal, so the fence counts from one.
    until_published(&mut a.owned, ttl, |_| {
        a.counters.renewals_ok.load(Ordering::Relaxed) >= 1
    })
    .await;

    outage(&proxy);
    let cut = Instant::now();
    // A renewal in flight at the outage has its answer lost: the fence stays where it was.
    let until = a.owned.borrow().until.unwrap();
    let emptied = until_published(&mut a.owned, ttl, |o| o.shards.is_empty()).await;
    assert!(a.owned.borrow().until.is_none());
    let slack = Duration::from_millis(100);
    assert!(
        emptied <= until + slack,
        "emptied {:?} past its fence",
        emptied - until
    );
    assert!(
        emptied + slack >= until,
        "emptied by the fence, {:?} early",
        until - emptied
    );
    assert!(emptied - cut <= ttl - margin + slack);
    // At that moment, the database still holds every lease for a: nobody could have
    // taken them yet.
    let live =
        db.query("SELECT count(*) FROM shard_leases WHERE owner = 'a' AND expires_at > now()");
    assert_eq!(live.trim(), "1024");
    assert_eq!(a.counters.shards_owned.load(Ordering::Relaxed), 0);

    // Back: a hung round is given up after a TTL, and the next one holds every shard
    // again (renewed at the same epoch, or taken anew once expired).
    proxy.restore();
    until_published(&mut a.owned, 3 * ttl, |o| o.shards.len() == 1024).await;
    assert_eq!(owned_by(&db, "a").len(), 1024);
    assert!(a.counters.rounds_failed.load(Ordering::Relaxed) >= 1);
}
