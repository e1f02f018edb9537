//! The report read ([`crate::store::report`]) in SQLite: the same four reads as
//! PostgreSQL's, in one read transaction; the status each device starts the period with
//! is a correlated lookup over `transitions_device_at`, the period's own rows a scan of
//! a range of ids.
//!
//! The two large reads (the spans of presence, a row a device, and the transitions, a
//! million for a month of a large fleet) come as JSON arrays built by SQLite
//! (`json_group_array`), not as a row each: sqlx hands each SQLite row from its worker
//! thread to the async side one by one, which cost 2 s for 100,000 spans and seconds
//! for the transitions where the engine spent a fifth of one (`docs/benchmarks.md`).
//! The arrays keep every value as stored (names escaped by SQLite, numbers as numbers),
//! so nothing is lost by the detour.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::{from_micros, micros};
use crate::store::report::{self, PresenceRow, ReportData, ReportTransition, Transitions};
use crate::store::rows::{self, silence_columns};
use crate::store::{Result, StoreError};

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
        "SELECT json_group_array(json_array(",
        report::presence_columns!(),
        ")) FROM device_presence p JOIN devices d ON d.name = p.device
         WHERE p.added_at < ?2 AND (p.removed_at IS NULL OR p.removed_at > ?1)"
    );
    let json = json_text(sqlx::query_scalar(presence).bind(from).bind(to), &mut tx).await?;
    data.presence = parse::<Span>(&json)?
        .into_iter()
        .map(
            |Span(device, region, branch, kind, added_at, removed_at)| PresenceRow {
                device,
                region,
                branch,
                kind,
                added_at: from_micros(added_at).unwrap_or_default(),
                removed_at: removed_at.and_then(from_micros),
            },
        )
        .collect();
    // By device, then start, as `ReportData` promises (an aggregate keeps no order).
    data.presence
        .sort_unstable_by(|a, b| (&a.device, a.added_at).cmp(&(&b.device, b.added_at)));
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
    data.transitions = transitions(&mut tx, from, to).await?;
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

/// Ids a chunk of the period's transitions spans: at most this many rows a JSON array
/// (a few MiB), so the text and its parse stay small beside the report's own data.
const CHUNK: i64 = 65_536;

/// One JSON element of the spans of presence: `[device, region, branch, kind,
/// added_at, removed_at]`.
#[derive(serde::Deserialize)]
struct Span(String, String, String, String, i64, Option<i64>);

/// One JSON element of [`transitions`]: `[device, id, at, to_status, down_since]`.
#[derive(serde::Deserialize)]
struct Element<'a>(
    #[serde(borrow)] Cow<'a, str>,
    i64,
    i64,
    #[serde(borrow)] Cow<'a, str>,
    Option<i64>,
);

/// The period's transitions and each present device's last one before it, by device.
///
/// The period's rows are found by a range of ids, a chunk at a time: every row of the
/// period has an id between the least and the greatest of theirs (exact in any order,
/// so records applied late from the spool are not missed), and as ids follow time
/// closely, a scan of that range reads the table's pages in order where the `at` index
/// reads them at random (0.17 s against 1.3 s for a million rows). `+at` keeps the
/// planner off that index.
async fn transitions(tx: &mut Transaction<'_, Sqlite>, from: i64, to: i64) -> Result<Transitions> {
    let mut devices = Transitions::default();
    let (low, high): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT min(id), max(id) FROM transitions WHERE at >= ?1 AND at < ?2")
            .bind(from)
            .bind(to)
            .fetch_one(&mut **tx)
            .await?;
    if let (Some(low), Some(high)) = (low, high) {
        let chunk = concat!(
            "SELECT json_group_array(json_array(",
            report::report_transition_columns!(),
            ")) FROM transitions WHERE id >= ?3 AND id < ?4 AND +at >= ?1 AND +at < ?2"
        );
        let mut start = low;
        while start <= high {
            let end = start.saturating_add(CHUNK);
            let query = sqlx::query_scalar(chunk)
                .bind(from)
                .bind(to)
                .bind(start)
                .bind(end);
            let json = json_text(query, tx).await?;
            add_json(&mut devices, &json)?;
            start = end;
        }
    }
    // The status each present device starts the period with, as in PostgreSQL's read.
    let before = concat!(
        "SELECT json_group_array(json_array(",
        report::report_transition_columns!(),
        ")) FROM transitions
         WHERE id IN (
             SELECT (SELECT id FROM transitions t
                     WHERE t.device = p.device
                       AND t.at = (SELECT max(at) FROM transitions
                                   WHERE device = p.device AND at < ?1)
                     ORDER BY t.id DESC LIMIT 1)
             FROM (SELECT DISTINCT device FROM device_presence
                   WHERE added_at < ?2 AND (removed_at IS NULL OR removed_at > ?1)) p)"
    );
    let json = json_text(sqlx::query_scalar(before).bind(from).bind(to), tx).await?;
    add_json(&mut devices, &json)?;
    Ok(report::in_order(devices))
}

/// Adds the transitions of one JSON array of [`Element`]s.
fn add_json(devices: &mut Transitions, json: &str) -> Result<()> {
    for Element(device, id, at, to, down_since) in parse(json)? {
        let transition = ReportTransition {
            id,
            at: from_micros(at).unwrap_or_default(),
            to: report::status(&to),
            down_since: down_since.and_then(from_micros),
        };
        report::add(devices, &device, transition);
    }
    Ok(())
}

/// The one JSON text a `json_group_array` query answers.
async fn json_text(
    query: sqlx::query::QueryScalar<'_, Sqlite, String, SqliteArguments>,
    tx: &mut Transaction<'_, Sqlite>,
) -> Result<String> {
    Ok(query.fetch_one(&mut **tx).await?)
}

/// The elements of a JSON array; one that does not read as `T` is a decoding error of
/// the query, as a column of the wrong type would be.
fn parse<'a, T: serde::Deserialize<'a>>(json: &'a str) -> Result<Vec<T>> {
    serde_json::from_str(json).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;

    #[test]
    fn json_elements_keep_escaped_names_and_absent_down_since() {
        let mut devices = Transitions::default();
        let json = r#"[["a\"b\\c",7,1000000,"down",500000],["თბილისი-1",3,2000000,"up",null],["a\"b\\c",2,1000000,"unreachable",null]]"#;
        add_json(&mut devices, json).unwrap();
        let devices = report::in_order(devices);
        let quoted = &devices[r#"a"b\c"#];
        // In order: the same instant is ordered by id.
        assert_eq!(quoted.iter().map(|t| t.id).collect::<Vec<_>>(), [2, 7]);
        assert_eq!(quoted[1].to, Status::Down);
        assert_eq!(quoted[1].down_since, from_micros(500_000));
        assert_eq!(quoted[0].down_since, None);
        assert_eq!(devices["თბილისი-1"][0].at, from_micros(2_000_000).unwrap());
    }

    #[test]
    fn a_malformed_array_is_an_error_not_a_panic() {
        let mut devices = Transitions::default();
        assert!(add_json(&mut devices, r#"[["x","not a number",1,"up",null]]"#).is_err());
        assert!(add_json(&mut devices, "").is_err());
    }
}
