//! The loop every cluster member runs (docs/cluster.md, issue #18): every `ttl / 3` it
//! renews the leases it holds, heartbeats, reads the live members, and moves its leases
//! towards the rendezvous map: it releases what the map gives to another live member (so
//! that member takes it at its next round) and acquires what the map gives it that is free
//! or expired (a live owner's lease is never taken).
//!
//! What the member may act on is published through a `watch` channel as [`Owned`]: the
//! shards with the epoch each was taken at, and the instant the [`Fence`] runs out. The
//! fence counts from when the last successful renewal was *sent*, so a member cut off from
//! the database publishes an empty set at `sent + ttl - margin`, by a timer of the loop,
//! before any other member can take its shards. Consumers (scheduler, writer) read the
//! channel; the write itself is still checked by the database ([`super::leases::FENCE`]).
//!
//! `app::cluster` spawns [`Member::run`]; `super::view` passes its channel on.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sqlx::postgres::PgPool;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::leases::{Held, Leases};
use super::{Assignment, Fence};

/// Who this member is and how long its leases last.
#[derive(Debug, Clone)]
pub struct Config {
    /// The member's id in `cluster_members` (unique in the cluster).
    pub id: String,
    /// Where its pages and API are, for the other members.
    pub url: String,
    /// Lease and heartbeat TTL; a round runs every `ttl / 3`.
    pub ttl: Duration,
    /// How long before the TTL could run out the member stops acting (see [`Fence`]).
    pub margin: Duration,
}

/// What a member may act on now. Empty (`until: None`) when it holds nothing or its fence
/// has run out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    /// Shard → the epoch it was taken at (the writer's fence checks that epoch).
    pub shards: BTreeMap<u16, i64>,
    /// Acting on any of them is allowed strictly before this instant.
    pub until: Option<Instant>,
}

impl Owned {
    /// The epoch `shard` may be acted on with at `now`, if it may be at all. A consumer
    /// checks `now` too: a value read just before the loop published its expiry is stale.
    pub fn epoch(&self, shard: u16, now: Instant) -> Option<i64> {
        let until = self.until?;
        (now < until).then(|| self.shards.get(&shard).copied())?
    }
}

/// Counters for the cluster metrics (registered elsewhere): totals since start, except
/// `shards_owned` and `last_renewal_micros`, which are the latest values.
#[derive(Debug, Default)]
pub struct Counters {
    /// Renewal statements the database answered.
    pub renewals_ok: AtomicU64,
    /// Renewal statements that failed (database away): nothing was renewed.
    pub renewals_failed: AtomicU64,
    /// Rounds that failed at any statement, or were given up after a TTL.
    pub rounds_failed: AtomicU64,
    /// From sending the last answered renewal to its answer.
    pub last_renewal_micros: AtomicU64,
    /// Shards in the last published [`Owned`].
    pub shards_owned: AtomicU64,
    pub acquisitions: AtomicU64,
    pub releases: AtomicU64,
    /// Held shards a renewal no longer returned (expired, or taken by another member).
    pub losses: AtomicU64,
    /// Live members at the last round that read them.
    pub members_live: AtomicU64,
}

/// What a round does with the leases, given what it holds after renewing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Shards the map gives to this member that it does not hold.
    pub acquire: Vec<u16>,
    /// Held shards the map gives to another (live) member.
    pub release: Vec<Held>,
}

/// The moves from `held` towards `map` for member `me`. Without a map (no live member
/// read), nothing moves: giving a shard up needs a live member to take it.
pub fn plan(me: &str, held: &BTreeMap<u16, i64>, map: Option<&Assignment>) -> Plan {
    let Some(map) = map else {
        return Plan::default();
    };
    let release = held
        .iter()
        .filter(|&(&shard, _)| map.owner(shard) != me)
        .map(|(&shard, &epoch)| Held { shard, epoch })
        .collect();
    let acquire = map
        .shards_of(me)
        .into_iter()
        .filter(|s| !held.contains_key(s))
        .collect();
    Plan { acquire, release }
}

/// The leases this member holds in the database, and how long it may act on them.
struct State {
    held: BTreeMap<u16, i64>,
    /// Leases given up but not yet freed: no longer acted on (so no new record is made
    /// for them), still renewed for one round, so that the writer commits what it made
    /// for them before under a lease that holds. Freed at the next round.
    draining: BTreeMap<u16, i64>,
    /// One fence for every held shard: fed with the earliest send instant that covers
    /// them all (see [`Member::renew`] and [`Member::acquire`]).
    fence: Fence,
}

/// One cluster member: see the module doc. Build it, take [`Member::owned`] and
/// [`Member::counters`], then spawn [`Member::run`].
pub struct Member {
    leases: Leases,
    config: Config,
    /// Locked briefly, never across an `.await`, and dropped before publishing.
    state: Mutex<State>,
    owned: watch::Sender<Owned>,
    counters: Arc<Counters>,
}

impl Member {
    /// A member on `pool` (the cluster's PostgreSQL, migrated). Panics if the margin
    /// leaves the fence shorter than a round: it would run out before every renewal.
    pub fn new(pool: PgPool, config: Config) -> Member {
        assert!(
            config.margin < config.ttl - config.ttl / 3,
            "the fence (ttl - margin) must outlast a round (ttl / 3)"
        );
        Member {
            leases: Leases::new(pool, config.id.clone(), config.ttl),
            state: Mutex::new(State {
                held: BTreeMap::new(),
                draining: BTreeMap::new(),
                fence: Fence::new(config.ttl, config.margin),
            }),
            config,
            owned: watch::Sender::new(Owned::default()),
            counters: Arc::default(),
        }
    }

    /// What this member may act on, as it changes.
    pub fn owned(&self) -> watch::Receiver<Owned> {
        self.owned.subscribe()
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Runs rounds every `ttl / 3` until `shutdown` completes, then releases every lease
    /// and leaves the member list, so the others take over at their next round. A round
    /// still in flight at shutdown is dropped. Aborting the task instead (a crash) leaves
    /// the leases to expire.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut tick = tokio::time::interval(self.config.ttl / 3);
        // A round late by more than a period is not caught up: the next one is enough.
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        'rounds: loop {
            tokio::select! {
                _ = &mut shutdown => break 'rounds,
                _ = tick.tick() => {}
                _ = self.fence_runs_out() => { self.publish(); continue 'rounds }
            }
            // A round may hang on a database that is away: the fence still runs out on
            // time, and shutdown still stops it. Past one TTL the round is given up (its
            // leases have expired by then anyway): a statement lost in a network that
            // drops packets would otherwise wait for TCP to give up, many minutes.
            let mut round = std::pin::pin!(self.round());
            let give_up = Instant::now() + self.config.ttl;
            loop {
                tokio::select! {
                    result = &mut round => {
                        if let Err(e) = result {
                            tracing::warn!(member = %self.config.id, error = %e, "cluster round failed");
                            self.counters.rounds_failed.fetch_add(1, Ordering::Relaxed);
                        }
                        self.publish();
                        break;
                    }
                    _ = self.fence_runs_out() => self.publish(),
                    _ = tokio::time::sleep_until(give_up) => {
                        tracing::warn!(member = %self.config.id, "cluster round timed out");
                        self.counters.rounds_failed.fetch_add(1, Ordering::Relaxed);
                        self.publish();
                        break;
                    }
                    _ = &mut shutdown => break 'rounds,
                }
            }
        }
        self.leave().await;
    }

    /// Completes when the published set must be withdrawn; never while it is empty.
    async fn fence_runs_out(&self) {
        let until = self.owned.borrow().until;
        match until {
            Some(until) => tokio::time::sleep_until(until).await,
            None => std::future::pending().await,
        }
    }

    /// Publishes what may be acted on now: the held shards while the fence allows.
    fn publish(&self) {
        let now = Instant::now();
        let owned = {
            let state = self.state.lock();
            if state.held.is_empty() || !state.fence.allows(now) {
                Owned::default()
            } else {
                Owned {
                    shards: state.held.clone(),
                    until: state.fence.until(),
                }
            }
        };
        let n = owned.shards.len() as u64;
        self.counters.shards_owned.store(n, Ordering::Relaxed);
        self.owned.send_replace(owned);
    }

    /// One round. Renewing comes first: the fence counts from it, and a database that is
    /// away shows as a failed renewal before anything else is tried.
    async fn round(&self) -> sqlx::Result<()> {
        self.renew().await?;
        self.leases.heartbeat(&self.config.url).await?;
        let live = self.leases.live_members().await?;
        let n = live.len() as u64;
        self.counters.members_live.store(n, Ordering::Relaxed);
        let map = Assignment::new(live);
        let plan = plan(&self.config.id, &self.state.lock().held, map.as_ref());
        self.release(&plan.release).await?;
        self.acquire(&plan.acquire).await
    }

    /// Extends the held leases (and the draining ones); those missing from the answer
    /// are lost at once.
    async fn renew(&self) -> sqlx::Result<()> {
        let held = self.in_database();
        if held.is_empty() {
            return Ok(());
        }
        let sent = Instant::now();
        let renewed = match self.leases.renew(&held).await {
            Ok(renewed) => renewed,
            Err(e) => {
                self.counters
                    .renewals_failed
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let c = &self.counters;
        c.renewals_ok.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        c.last_renewal_micros.store(micros, Ordering::Relaxed);
        let lost = held.len() - renewed.len();
        c.losses.fetch_add(lost as u64, Ordering::Relaxed);
        {
            let mut state = self.state.lock();
            let renewed: BTreeMap<u16, i64> = renewed.iter().map(|h| (h.shard, h.epoch)).collect();
            state.draining.retain(|s, e| renewed.get(s) == Some(e));
            state.held = renewed;
            let draining: Vec<u16> = state.draining.keys().copied().collect();
            for s in draining {
                state.held.remove(&s);
            }
            if state.held.is_empty() && state.draining.is_empty() {
                state.fence.released();
            } else {
                state.fence.renewed(sent);
            }
        }
        self.publish();
        Ok(())
    }

    /// Gives `release` up in two steps: frees the shards given up at the previous round
    /// (drained: their records had a round to commit under the lease), then stops
    /// acting on `release` and keeps renewing them until the next round. A shard is
    /// never published once its release has begun, and never freed while published:
    /// once freed, another member may take it at once.
    async fn release(&self, release: &[Held]) -> sqlx::Result<()> {
        let drained: Vec<Held> = {
            let mut state = self.state.lock();
            let drained = std::mem::take(&mut state.draining)
                .into_iter()
                .map(|(shard, epoch)| Held { shard, epoch })
                .collect();
            for h in release {
                state.held.remove(&h.shard);
                state.draining.insert(h.shard, h.epoch);
            }
            drained
        };
        if !release.is_empty() {
            self.publish();
        }
        if drained.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.leases.release(&drained).await {
            // Still held in the database: freed at the next round, or they expire.
            self.state
                .lock()
                .draining
                .extend(drained.iter().map(|h| (h.shard, h.epoch)));
            return Err(e);
        }
        {
            let mut state = self.state.lock();
            if state.held.is_empty() && state.draining.is_empty() {
                state.fence.released();
            }
        }
        let n = drained.len() as u64;
        self.counters.releases.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Takes the free or expired shards of `acquire`, in one statement; what another
    /// member holds live is skipped.
    async fn acquire(&self, acquire: &[u16]) -> sqlx::Result<()> {
        if acquire.is_empty() {
            return Ok(());
        }
        // Every lease taken was taken at or after `sent`: if the fence is not counting
        // from a renewal of this round, it counts from here.
        let sent = Instant::now();
        let taken = self.leases.acquire_all(acquire).await?;
        let n = taken.len() as u64;
        {
            let mut state = self.state.lock();
            if !taken.is_empty() && state.fence.until().is_none() {
                state.fence.renewed(sent);
            }
            state.held.extend(taken.iter().map(|h| (h.shard, h.epoch)));
        }
        self.counters.acquisitions.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// At shutdown: stop acting, then free every lease and leave the member list, so the
    /// map of the others no longer gives this member anything. Bounded by one TTL: past
    /// it the leases have expired anyway.
    async fn leave(&self) {
        let held = self.in_database();
        {
            let mut state = self.state.lock();
            state.held.clear();
            state.draining.clear();
            state.fence.released();
        }
        self.publish();
        let give_up = async {
            self.leases.release(&held).await?;
            self.counters
                .releases
                .fetch_add(held.len() as u64, Ordering::Relaxed);
            self.leases.leave().await
        };
        match tokio::time::timeout(self.config.ttl, give_up).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(member = %self.config.id, error = %e, "cluster leave failed")
            }
            Err(_) => tracing::warn!(member = %self.config.id, "cluster leave timed out"),
        }
    }

    /// Every lease this member has in the database: held and draining, by shard.
    fn in_database(&self) -> Vec<Held> {
        let state = self.state.lock();
        let mut all: Vec<Held> = state
            .held
            .iter()
            .chain(&state.draining)
            .map(|(&shard, &epoch)| Held { shard, epoch })
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::SHARDS;

    fn map(members: &[&str]) -> Assignment {
        Assignment::new(members.iter().map(|m| m.to_string())).unwrap()
    }

    fn held(shards: impl IntoIterator<Item = u16>) -> BTreeMap<u16, i64> {
        shards.into_iter().map(|s| (s, 7)).collect()
    }

    #[test]
    fn alone_a_member_acquires_every_shard_it_does_not_hold() {
        let p = plan("a", &held([3, 9]), Some(&map(&["a"])));
        assert!(p.release.is_empty());
        assert_eq!(p.acquire.len(), usize::from(SHARDS) - 2);
        assert!(!p.acquire.contains(&3) && !p.acquire.contains(&9));
    }

    #[test]
    fn a_member_joining_makes_the_holder_release_exactly_its_share() {
        let two = map(&["a", "b"]);
        let p = plan("a", &held(0..SHARDS), Some(&two));
        let to_b = two.shards_of("b");
        let released: Vec<u16> = p.release.iter().map(|h| h.shard).collect();
        assert_eq!(released, to_b);
        assert!(p.release.iter().all(|h| h.epoch == 7), "at the epoch held");
        assert!(p.acquire.is_empty());
        // The newcomer asks for its share; the holder's live leases refuse until released.
        assert_eq!(plan("b", &BTreeMap::new(), Some(&two)).acquire, to_b);
    }

    #[test]
    fn without_a_map_nothing_moves() {
        assert_eq!(plan("a", &held([1, 2]), None), Plan::default());
    }

    #[tokio::test(start_paused = true)]
    async fn an_owned_set_is_acted_on_only_before_its_fence() {
        let now = Instant::now();
        let owned = Owned {
            shards: held([5]),
            until: Some(now + Duration::from_secs(1)),
        };
        assert_eq!(owned.epoch(5, now), Some(7));
        assert_eq!(owned.epoch(6, now), None, "not held");
        assert_eq!(owned.epoch(5, now + Duration::from_secs(1)), None, "fenced");
        assert_eq!(Owned::default().epoch(5, now), None);
    }
}
