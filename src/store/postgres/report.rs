//! The report read ([`crate::store::report`]) in PostgreSQL: four queries in one
//! snapshot; the transitions streamed, unordered (put in order per device by
//! `transitions_by_device`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::store::Result;
use crate::store::report::{self, ReportData};
use crate::store::rows::{self, silence_columns};

pub(super) async fn read(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ReportData> {
    let mut data = ReportData::default();
    // One snapshot for all four: a commit between them cannot make a device's spans and
    // transitions disagree.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let presence = concat!(
        "SELECT ",
        report::presence_columns!(),
        " FROM device_presence p JOIN devices d ON d.name = p.device
         WHERE p.added_at < $2 AND (p.removed_at IS NULL OR p.removed_at > $1)
         ORDER BY p.device, p.added_at"
    );
    for row in sqlx::query(presence)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
    {
        data.presence.push(report::presence(&row)?);
    }
    let runs = concat!(
        "SELECT ",
        report::run_columns!(),
        " FROM runs WHERE started_at < $2 AND last_seen_at > $1 ORDER BY started_at"
    );
    for row in sqlx::query(runs)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
    {
        data.runs.push(report::run(&row)?);
    }
    // The period's transitions, then the last one before it of each device present in
    // it (the status the period starts with: the latest instant before it through
    // `transitions_device_at`, then the highest id of that instant), in no order.
    let transitions = concat!(
        "SELECT ",
        report::report_transition_columns!(),
        " FROM transitions WHERE at >= $1 AND at < $2
         UNION ALL
         SELECT t.device, t.id, t.at, t.to_status, t.down_since
         FROM (SELECT DISTINCT device FROM device_presence
               WHERE added_at < $2 AND (removed_at IS NULL OR removed_at > $1)) p
         CROSS JOIN LATERAL (
             SELECT device, id, at, to_status, down_since FROM transitions
             WHERE device = p.device
               AND at = (SELECT max(at) FROM transitions WHERE device = p.device AND at < $1)
             ORDER BY id DESC LIMIT 1) t"
    );
    // A read of a million rows is all execution: compiling it (JIT) cost a tenth of it.
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    data.transitions =
        report::transitions_by_device(sqlx::query(transitions).bind(from).bind(to).fetch(&mut *tx))
            .await?;
    let silences = concat!(
        "SELECT ",
        silence_columns!(),
        " FROM silences WHERE starts_at < $2 AND ends_at > $1
           AND (expired_at IS NULL OR expired_at > $1) ORDER BY starts_at, id"
    );
    for row in sqlx::query(silences)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
    {
        data.silences.push(rows::silence(&row)?);
    }
    tx.commit().await?;
    Ok(data)
}
