//! The report read ([`crate::store::report`]) in PostgreSQL: four queries, each over an
//! index (`device_presence`'s key, `transitions_at`, `transitions_device_at` once per
//! device for the status the period starts with).

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
    // The last transition before the period of each device present in it, then the
    // period's own, ordered together by device and time.
    let transitions = concat!(
        "SELECT ",
        report::report_transition_columns!(),
        " FROM (
             SELECT t.device, t.at, t.to_status, t.down_since, t.id
             FROM (SELECT DISTINCT device FROM device_presence
                   WHERE added_at < $2 AND (removed_at IS NULL OR removed_at > $1)) p
             CROSS JOIN LATERAL (
                 SELECT device, at, to_status, down_since, id FROM transitions
                 WHERE device = p.device AND at < $1 ORDER BY at DESC, id DESC LIMIT 1) t
             UNION ALL
             SELECT device, at, to_status, down_since, id FROM transitions
             WHERE at >= $1 AND at < $2
         ) all_t ORDER BY device, at, id"
    );
    for row in sqlx::query(transitions)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
    {
        data.transitions.push(report::transition(&row)?);
    }
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
