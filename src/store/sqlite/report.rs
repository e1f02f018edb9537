//! The report read ([`crate::store::report`]) in SQLite: the same four queries as
//! PostgreSQL's, in one read transaction; the status each device starts the period with
//! is a correlated lookup over `transitions_device_at`, the period's own rows a scan of
//! a range of ids.

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use super::micros;
use crate::store::Result;
use crate::store::report::{self, ReportData};
use crate::store::rows::{self, silence_columns};

pub(super) async fn read(
    pool: &SqlitePool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ReportData> {
    let (from, to) = (micros(from), micros(to));
    let mut data = ReportData::default();
    // One read transaction: WAL gives it one snapshot of the file.
    let mut tx = pool.begin().await?;
    let presence = concat!(
        "SELECT ",
        report::presence_columns!(),
        " FROM device_presence p JOIN devices d ON d.name = p.device
         WHERE p.added_at < ?2 AND (p.removed_at IS NULL OR p.removed_at > ?1)
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
        " FROM runs WHERE started_at < ?2 AND last_seen_at > ?1 ORDER BY started_at"
    );
    for row in sqlx::query(runs)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
    {
        data.runs.push(report::run(&row)?);
    }
    // The period's transitions by a range of ids: every row from `from` on has an id at
    // least the least of theirs (exact in any order), and as ids follow time closely, a
    // scan of the table from there reads its pages in order where the `at` index reads
    // them at random (0.17 s against 1.3 s for a million rows). `+at` keeps the planner
    // off that index. Then each present device's last one before the period, as in
    // PostgreSQL's read.
    let transitions = concat!(
        "SELECT ",
        report::report_transition_columns!(),
        " FROM transitions
         WHERE id >= (SELECT min(id) FROM transitions WHERE at >= ?1)
           AND +at >= ?1 AND +at < ?2
         UNION ALL
         SELECT device, id, at, to_status, down_since FROM transitions
         WHERE id IN (
             SELECT (SELECT id FROM transitions t
                     WHERE t.device = p.device
                       AND t.at = (SELECT max(at) FROM transitions
                                   WHERE device = p.device AND at < ?1)
                     ORDER BY t.id DESC LIMIT 1)
             FROM (SELECT DISTINCT device FROM device_presence
                   WHERE added_at < ?2 AND (removed_at IS NULL OR removed_at > ?1)) p)"
    );
    data.transitions =
        report::transitions_by_device(sqlx::query(transitions).bind(from).bind(to).fetch(&mut *tx))
            .await?;
    let silences = concat!(
        "SELECT ",
        silence_columns!(),
        " FROM silences WHERE starts_at < ?2 AND ends_at > ?1
           AND (expired_at IS NULL OR expired_at > ?1) ORDER BY starts_at, id"
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
