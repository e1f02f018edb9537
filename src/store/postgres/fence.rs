//! The lease check and the cluster outbox of a member's write transaction: PostgreSQL's
//! side of [`Fencing`] (the decision what to leave out is `apply::fenced`'s).

use crate::cluster::events::{ClusterEvent, outbox};
use crate::store::apply::fenced::Fencing;
use crate::store::{Result, Stamp};

use super::write::PgWrite;

/// [`crate::cluster::leases::FENCE`] for every stamp of a batch at once. `FOR SHARE`
/// keeps the rows as they are until the commit: a take-over (an `UPDATE` of the row)
/// waits for it, so nothing this transaction writes can land after another member's
/// epoch began. The expiry is the database's clock, as for every lease decision.
const HELD: &str = "SELECT l.shard, l.owner, l.epoch FROM shard_leases l \
                    JOIN unnest($1::smallint[], $2::text[], $3::bigint[]) AS s(shard, owner, epoch) \
                        ON l.shard = s.shard AND l.owner = s.owner AND l.epoch = s.epoch \
                    WHERE l.expires_at > now() \
                    FOR SHARE OF l";

/// Bounds of a fenced write transaction, set first in it: the server aborts it after
/// 2 s waiting on this member mid-transaction (so its lease locks are released within
/// the shortest lease TTL), or a statement running 5 s.
pub(super) const BOUNDED: &str =
    "SET LOCAL idle_in_transaction_session_timeout = '2s'; SET LOCAL statement_timeout = '5s'";

impl Fencing for PgWrite {
    async fn leases_held(&mut self, stamps: &[&Stamp]) -> Result<Vec<Stamp>> {
        // A shard past i16 cannot be a lease row; it maps to -1, which matches none.
        let shards: Vec<i16> = stamps
            .iter()
            .map(|s| i16::try_from(s.shard).unwrap_or(-1))
            .collect();
        let members: Vec<&str> = stamps.iter().map(|s| s.member.as_str()).collect();
        let epochs: Vec<i64> = stamps.iter().map(|s| s.epoch).collect();
        let rows: Vec<(i16, String, i64)> = sqlx::query_as(HELD)
            .bind(shards)
            .bind(members)
            .bind(epochs)
            .fetch_all(&mut *self.0)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(shard, member, epoch)| Stamp {
                member,
                shard: shard as u16,
                epoch,
            })
            .collect())
    }

    async fn write_cluster_events(&mut self, events: &[ClusterEvent]) -> Result<()> {
        outbox::insert(&mut self.0, events).await?;
        Ok(())
    }
}
