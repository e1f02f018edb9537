//! The `cluster_outbox` table (migration 0008): the events of a commit, written in its
//! transaction, waiting for the relay. Every function is one statement.
//!
//! The writer calls [`insert`] inside its transaction; the relay calls [`pending`],
//! [`mark_sent`] and [`prune`].

use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::PgPool;

use super::ClusterEvent;

/// One unsent row: its id and the event as JSON, its `outbox_id` set to that id.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: i64,
    pub event: String,
}

/// Appends `events`, in order, in the open transaction `tx` (one multi-row INSERT; their
/// ids follow that order). Nothing is published unless `tx` commits.
pub async fn insert(tx: &mut PgConnection, events: &[ClusterEvent]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = events.iter().map(ClusterEvent::to_json).collect();
    sqlx::query(
        "INSERT INTO cluster_outbox (event) \
         SELECT e::jsonb FROM unnest($1::text[]) WITH ORDINALITY AS t(e, n) ORDER BY n",
    )
    .bind(&texts)
    .execute(tx)
    .await?;
    Ok(())
}

/// Up to `limit` of `member`'s unsent rows, by id.
pub async fn pending(pool: &PgPool, member: &str, limit: i64) -> sqlx::Result<Vec<Pending>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, (event || jsonb_build_object('outbox_id', id))::text FROM cluster_outbox \
         WHERE sent_at IS NULL AND event ->> 'member' = $1 ORDER BY id LIMIT $2",
    )
    .bind(member)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, event)| Pending { id, event })
        .collect())
}

/// The rows `ids` are in the stream.
pub async fn mark_sent(pool: &PgPool, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query("UPDATE cluster_outbox SET sent_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes the rows sent more than `after` ago; answers how many.
pub async fn prune(pool: &PgPool, after: Duration) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM cluster_outbox \
         WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)",
    )
    .bind(after.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
