//! The shard leases and the member list in PostgreSQL (migration 0007; docs/cluster.md).
//! Every decision about time is the database's (`now()`): a member only says how long a
//! lease it renews or takes should last.
//!
//! - [`Leases::heartbeat`]: the member is live for one TTL from now.
//! - [`Leases::acquire`]: take a shard that is free or expired, with epoch + 1; a live
//!   owner's lease is never taken.
//! - [`Leases::renew`]: extend the leases still held at the epoch they were taken with;
//!   whatever another member took since is gone from the answer.
//! - [`Leases::release`]: give leases up now (SIGTERM), for an immediate hand-over.
//! - [`Leases::acquire_all`]: [`Leases::acquire`] for many shards in one statement.
//! - [`Leases::leave`]: leave the member list at shutdown.
//!
//! The statements that change many rows lock them in shard order first (`ORDER BY shard
//! FOR UPDATE`): one member's renewal and another's take-over touch overlapping rows,
//! and in the order of a scan they could each hold a row the other waits for.
//!
//! [`FENCE`] is the check every write of a device's shard makes in its own transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;

/// Holds only while `$1` (shard) is owned by `$2` (member) at epoch `$3` and not expired.
/// A writer runs it in the transaction of its write and rolls back without a row.
pub const FENCE: &str = "SELECT 1 FROM shard_leases WHERE shard = $1 AND owner = $2 AND epoch = $3 \
                         AND expires_at > now() FOR SHARE";

/// A shard held at an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub shard: u16,
    pub epoch: i64,
}

/// One lease row, as `GET /api/v1/cluster` will show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub shard: u16,
    pub owner: Option<String>,
    pub epoch: i64,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One row of `cluster_members`, as `GET /api/v1/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub id: String,
    pub url: String,
    pub heartbeat_at: DateTime<Utc>,
    /// Its last heartbeat is less than one TTL old (by the database's clock).
    pub live: bool,
}

/// One member's view of the lease table.
#[derive(Debug)]
pub struct Leases {
    pool: PgPool,
    member: String,
    ttl: Duration,
}

fn interval(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `(shard, epoch)` rows as leases held, by shard.
fn to_held(rows: Vec<(i16, i64)>) -> Vec<Held> {
    let mut out: Vec<Held> = rows
        .into_iter()
        .map(|(shard, epoch)| Held {
            shard: shard as u16,
            epoch,
        })
        .collect();
    out.sort();
    out
}

impl Leases {
    pub fn new(pool: PgPool, member: impl Into<String>, ttl: Duration) -> Leases {
        Leases {
            pool,
            member: member.into(),
            ttl,
        }
    }

    /// This member is live (and reachable at `url`) for one TTL from now.
    pub async fn heartbeat(&self, url: &str) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO cluster_members (id, url, heartbeat_at) VALUES ($1, $2, now()) \
             ON CONFLICT (id) DO UPDATE SET url = $2, heartbeat_at = now()",
        )
        .bind(&self.member)
        .bind(url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The members whose last heartbeat is less than one TTL old, by id.
    pub async fn live_members(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT id FROM cluster_members \
             WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY id",
        )
        .bind(interval(self.ttl))
        .fetch_all(&self.pool)
        .await
    }

    /// Every member that ever heartbeat and has not left, by id.
    pub async fn members(&self) -> sqlx::Result<Vec<MemberRow>> {
        let rows: Vec<(String, String, DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT id, url, heartbeat_at, heartbeat_at > now() - make_interval(secs => $1) \
             FROM cluster_members ORDER BY id",
        )
        .bind(interval(self.ttl))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, url, heartbeat_at, live)| MemberRow {
                id,
                url,
                heartbeat_at,
                live,
            })
            .collect())
    }

    /// Takes `shard` if it is free or its lease has expired: the new epoch, or None
    /// while another member holds it. Taking one's own expired lease is a new epoch too
    /// (writes of the old one may have been refused meanwhile).
    pub async fn acquire(&self, shard: u16) -> sqlx::Result<Option<Held>> {
        let epoch: Option<i64> = sqlx::query_scalar(
            "UPDATE shard_leases SET owner = $2, epoch = epoch + 1, \
                 expires_at = now() + make_interval(secs => $3) \
             WHERE shard = $1 AND (owner IS NULL OR expires_at <= now()) \
             RETURNING epoch",
        )
        .bind(i16::try_from(shard).unwrap_or(i16::MAX))
        .bind(&self.member)
        .bind(interval(self.ttl))
        .fetch_optional(&self.pool)
        .await?;
        Ok(epoch.map(|epoch| Held { shard, epoch }))
    }

    /// [`Leases::acquire`] for many shards in one statement (the same conditions, each
    /// shard taken at epoch + 1): a first round takes 1,024 shards, and a committed
    /// statement each took longer than a round (1.2 s on the test machine).
    pub async fn acquire_all(&self, shards: &[u16]) -> sqlx::Result<Vec<Held>> {
        let shards: Vec<i16> = shards.iter().map(|&s| s as i16).collect();
        let rows: Vec<(i16, i64)> = sqlx::query_as(
            "WITH free AS (SELECT shard FROM shard_leases \
                 WHERE shard = ANY($1) AND (owner IS NULL OR expires_at <= now()) \
                 ORDER BY shard FOR UPDATE) \
             UPDATE shard_leases l SET owner = $2, epoch = l.epoch + 1, \
                 expires_at = now() + make_interval(secs => $3) \
             FROM free WHERE l.shard = free.shard \
             RETURNING l.shard, l.epoch",
        )
        .bind(&shards)
        .bind(&self.member)
        .bind(interval(self.ttl))
        .fetch_all(&self.pool)
        .await?;
        Ok(to_held(rows))
    }

    /// Leaves the member list: the others' maps stop giving this member shards at once.
    pub async fn leave(&self) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM cluster_members WHERE id = $1")
            .bind(&self.member)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Extends, in one statement, the leases of `held` still this member's at their
    /// epoch and not expired; answers those (an expired one must be acquired anew).
    pub async fn renew(&self, held: &[Held]) -> sqlx::Result<Vec<Held>> {
        let shards: Vec<i16> = held.iter().map(|h| h.shard as i16).collect();
        let epochs: Vec<i64> = held.iter().map(|h| h.epoch).collect();
        let rows: Vec<(i16, i64)> = sqlx::query_as(
            "WITH mine AS (SELECT l.shard FROM shard_leases l \
                 JOIN unnest($3::smallint[], $4::bigint[]) AS h(shard, epoch) \
                   ON l.shard = h.shard AND l.epoch = h.epoch \
                 WHERE l.owner = $1 AND l.expires_at > now() \
                 ORDER BY l.shard FOR UPDATE OF l) \
             UPDATE shard_leases l SET expires_at = now() + make_interval(secs => $2) \
             FROM mine WHERE l.shard = mine.shard \
             RETURNING l.shard, l.epoch",
        )
        .bind(&self.member)
        .bind(interval(self.ttl))
        .bind(&shards)
        .bind(&epochs)
        .fetch_all(&self.pool)
        .await?;
        Ok(to_held(rows))
    }

    /// Gives `held` up now: free for the next member to acquire.
    pub async fn release(&self, held: &[Held]) -> sqlx::Result<()> {
        let shards: Vec<i16> = held.iter().map(|h| h.shard as i16).collect();
        let epochs: Vec<i64> = held.iter().map(|h| h.epoch).collect();
        sqlx::query(
            "WITH mine AS (SELECT l.shard FROM shard_leases l \
                 JOIN unnest($2::smallint[], $3::bigint[]) AS h(shard, epoch) \
                   ON l.shard = h.shard AND l.epoch = h.epoch \
                 WHERE l.owner = $1 ORDER BY l.shard FOR UPDATE OF l) \
             UPDATE shard_leases l SET owner = NULL, expires_at = '-infinity' \
             FROM mine WHERE l.shard = mine.shard",
        )
        .bind(&self.member)
        .bind(&shards)
        .bind(&epochs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every lease row, by shard.
    pub async fn all(&self) -> sqlx::Result<Vec<Lease>> {
        type Row = (i16, Option<String>, i64, Option<DateTime<Utc>>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT shard, owner, epoch, \
                 CASE WHEN isfinite(expires_at) THEN expires_at END \
             FROM shard_leases ORDER BY shard",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(shard, owner, epoch, expires_at)| Lease {
                shard: shard as u16,
                owner,
                epoch,
                expires_at,
            })
            .collect())
    }

    /// Whether a write of `held`'s shard by this member would pass [`FENCE`] now.
    pub async fn may_write(&self, held: Held) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row: Option<i32> = sqlx::query_scalar(FENCE)
            .bind(held.shard as i16)
            .bind(&self.member)
            .bind(held.epoch)
            .fetch_optional(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(row.is_some())
    }
}
