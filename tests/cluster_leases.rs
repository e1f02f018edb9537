//! The shard leases (issue #18, docs/cluster.md) on the real PostgreSQL, a database of the
//! test's own: members race for a free shard and one wins; a live owner's lease is never
//! taken; an expired one is taken with epoch + 1, after which the old owner can neither
//! renew it nor pass the write fence; a release hands it over at once; expiry is the
//! database's clock.

mod pgdb;

use std::time::Duration;

use pgdb::TestDb;
use wardops::cluster::leases::{Held, Leases};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_wins_a_shard_and_loses_it_only_once_its_lease_expires() {
    let db = TestDb::create("leases");
    let pool = db.migrated().await;
    let ttl = Duration::from_secs(2);
    let a = Leases::new(pool.clone(), "a", ttl);
    let b = Leases::new(pool.clone(), "b", ttl);
    let c = Leases::new(pool.clone(), "c", ttl);
    assert_eq!(
        a.all().await.unwrap().len(),
        1024,
        "every shard has its row"
    );

    // Three members race for shard 7: exactly one wins, at epoch 1.
    let (ra, rb, rc) = tokio::join!(a.acquire(7), b.acquire(7), c.acquire(7));
    let won: Vec<Held> = [ra, rb, rc]
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert_eq!(won, [Held { shard: 7, epoch: 1 }]);
    let owner = a.all().await.unwrap()[7].owner.clone().unwrap();
    let (holder, other) = if owner == "a" { (&a, &b) } else { (&b, &a) };
    let held = won[0];

    // A live lease is not taken, and renewing keeps it.
    assert_eq!(other.acquire(7).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(holder.renew(&[held]).await.unwrap(), [held]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(other.acquire(7).await.unwrap(), None, "renewed 1.2 s ago");
    assert!(holder.may_write(held).await.unwrap());

    // Not renewed for a TTL: the other takes it with epoch + 1; the old owner's renewal
    // and writes are refused from then on.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!holder.may_write(held).await.unwrap(), "expired: fenced");
    let taken = other
        .acquire(7)
        .await
        .unwrap()
        .expect("expired: free to take");
    assert_eq!(taken, Held { shard: 7, epoch: 2 });
    assert_eq!(holder.renew(&[held]).await.unwrap(), []);
    assert!(!holder.may_write(held).await.unwrap());
    assert!(other.may_write(taken).await.unwrap());

    // Released: the next member takes it at once, epoch 3.
    other.release(&[taken]).await.unwrap();
    assert!(!other.may_write(taken).await.unwrap());
    assert_eq!(
        c.acquire(7).await.unwrap(),
        Some(Held { shard: 7, epoch: 3 })
    );
    // A release of a stale epoch frees nothing.
    holder.release(&[held]).await.unwrap();
    assert_eq!(a.all().await.unwrap()[7].owner.as_deref(), Some("c"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_live_for_one_ttl_after_their_heartbeat_and_renewal_is_one_statement() {
    let db = TestDb::create("members");
    let pool = db.migrated().await;
    let ttl = Duration::from_secs(2);
    let a = Leases::new(pool.clone(), "a", ttl);
    let b = Leases::new(pool.clone(), "b", ttl);
    a.heartbeat("http://127.0.0.1:1").await.unwrap();
    b.heartbeat("http://127.0.0.1:2").await.unwrap();
    assert_eq!(a.live_members().await.unwrap(), ["a", "b"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.heartbeat("http://127.0.0.1:1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        a.live_members().await.unwrap(),
        ["a"],
        "b's heartbeat is 2.5 s old"
    );

    // A member renews a hundred shards in one statement; one taken from it is left out.
    let mut held = Vec::new();
    for shard in 0..100 {
        held.push(a.acquire(shard).await.unwrap().unwrap());
    }
    db.query("UPDATE shard_leases SET owner = 'b', epoch = epoch + 1 WHERE shard = 42");
    let renewed = a.renew(&held).await.unwrap();
    assert_eq!(renewed.len(), 99);
    assert!(!renewed.iter().any(|h| h.shard == 42));
}
