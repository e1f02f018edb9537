//! The report read ([`crate::store::report`]) in PostgreSQL: five queries in one
//! snapshot; the transitions unordered (put in order per device by `report::in_order`).
//!
//! The transitions (a million rows for a month of a large fleet) come as binary
//! `COPY … TO STDOUT`, parsed here ([`Copy`]), not as a row each: sqlx's decoding of a
//! `DataRow` (its columns checked and decoded one `try_get` at a time) cost more than a
//! second for a million rows where the server sends them in 0.1 to 0.4 s
//! (`docs/benchmarks.md`). The binary format keeps every value as stored: names as
//! UTF-8 (sent in the client encoding, which sqlx sets to UTF-8), times as PostgreSQL's
//! microseconds.
//!
//! The period's transitions are read on one connection while the rest (the spans of
//! presence, the runs, each device's status before the period, the silences) is read on
//! a second one in the same snapshot, exported by the first transaction
//! (`pg_export_snapshot`) and imported by the second (`SET TRANSACTION SNAPSHOT`), so a
//! commit between the two cannot make a device's spans and transitions disagree.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt as _;
use sqlx::{PgConnection, PgPool};

use crate::store::report::{self, ReportData, ReportTransition, Transitions};
use crate::store::rows::{self, silence_columns};
use crate::store::{Result, StoreError};

/// How long a report waits for a second connection before it reads on one only.
const SPARE: Duration = Duration::from_millis(100);

pub(super) async fn read(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ReportData> {
    // One snapshot for all: a commit between the queries cannot make a device's spans
    // and transitions disagree. A read of a million rows is all execution: compiling it
    // (JIT) cost a tenth of it.
    const BEGIN: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY;
                         SET LOCAL jit = off";
    let mut tx = pool.begin().await?;
    sqlx::raw_sql(BEGIN).execute(&mut *tx).await?;
    // The period's transitions are most of the read; with a second connection the rest
    // is read beside them, in the same snapshot (exported by the first transaction's
    // first query, imported before the second's first; the first stays open until the
    // second is done). The pool's connections are shared with the writer and other
    // requests: without one to spare soon, all is read on one.
    let (mut data, mut devices) = match tokio::time::timeout(SPARE, pool.acquire()).await {
        Ok(Ok(mut second)) => {
            let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut *tx)
                .await?;
            // An identifier such as `00000003-0000001B-1`, spliced into a `SET`, which
            // takes no parameters.
            if !snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                let what = format!("pg_export_snapshot() answered {snapshot:?}");
                return Err(sqlx::Error::Protocol(what).into());
            }
            let import = format!("{BEGIN}; SET TRANSACTION SNAPSHOT '{snapshot}'");
            // A task of its own, so that decoding its rows is not on this one's thread.
            let beside = tokio::spawn(async move {
                let mut other = sqlx::Acquire::begin(&mut second).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(import))
                    .execute(&mut *other)
                    .await?;
                let data = rest(&mut other, from, to).await?;
                other.commit().await?;
                Ok::<_, StoreError>(data)
            });
            let devices = period(&mut tx, from, to).await?;
            let data = beside
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            (data, devices)
        }
        _ => (
            rest(&mut tx, from, to).await?,
            period(&mut tx, from, to).await?,
        ),
    };
    tx.commit().await?;
    // Each device's last transition before the period, at most one a device.
    for (device, before) in std::mem::take(&mut data.transitions) {
        devices.entry(device).or_default().extend(before);
    }
    data.transitions = report::in_order(devices);
    Ok(data)
}

/// All but the period's transitions: the spans of presence, the runs, the silences, and
/// (as `transitions`) the last transition before the period of each device present in
/// it, the status the period starts with: the latest instant before it through
/// `transitions_device_at`, then the highest id of that instant.
async fn rest(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ReportData> {
    let mut data = ReportData::default();
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
        .fetch_all(&mut *conn)
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
        .fetch_all(&mut *conn)
        .await?
    {
        data.runs.push(report::run(&row)?);
    }
    let before = format!(
        concat!(
            "SELECT t.*
             FROM (SELECT DISTINCT device FROM device_presence
                   WHERE added_at < {to} AND (removed_at IS NULL OR removed_at > {from})) p
             CROSS JOIN LATERAL (
                 SELECT ",
            report::report_transition_columns!(),
            " FROM transitions
                 WHERE device = p.device
                   AND at = (SELECT max(at) FROM transitions
                             WHERE device = p.device AND at < {from})
                 ORDER BY id DESC LIMIT 1) t"
        ),
        from = literal(from),
        to = literal(to)
    );
    data.transitions = copy(conn, &before).await?;
    let silences = concat!(
        "SELECT ",
        silence_columns!(),
        " FROM silences WHERE starts_at < $2 AND ends_at > $1
           AND (expired_at IS NULL OR expired_at > $1) ORDER BY starts_at, id"
    );
    for row in sqlx::query(silences)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?
    {
        data.silences.push(rows::silence(&row)?);
    }
    Ok(data)
}

/// The period's transitions, by device, in no order.
async fn period(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Transitions> {
    let select = format!(
        concat!(
            "SELECT ",
            report::report_transition_columns!(),
            " FROM transitions WHERE at >= {from} AND at < {to}"
        ),
        from = literal(from),
        to = literal(to)
    );
    copy(conn, &select).await
}

/// The rows of `select` (of [`report::report_transition_columns`]) by device, in no
/// order, read as a binary `COPY`.
///
/// `COPY` takes no parameters, so the queries splice the period's bounds in as literals:
/// times this process formats, never text from a request.
async fn copy(conn: &mut PgConnection, select: &str) -> Result<Transitions> {
    let mut devices = Transitions::default();
    let mut parsed = Copy::default();
    let mut failed = None;
    let copy = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
    let mut chunks = conn.copy_out_raw(&copy).await?;
    while let Some(chunk) = chunks.try_next().await? {
        // After an error the rest is still read: a `COPY` left half-read would be
        // misread as the answer to the connection's next query.
        if failed.is_none() {
            failed = parsed.feed(&chunk, &mut devices).err();
        }
    }
    match failed {
        Some(e) => Err(e),
        None => parsed.finish().map(|()| devices),
    }
}

/// A time as a `timestamptz` literal, to the microsecond.
fn literal(at: DateTime<Utc>) -> String {
    format!(
        "'{}'::timestamptz",
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}

/// The signature of a binary `COPY`, then its flags (none) and the length of its header
/// extension (none).
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
const HEADER: usize = SIGNATURE.len() + 4 + 4;

/// A binary `COPY` of [`report::report_transition_columns`] parsed as its chunks come:
/// each whole row is added to the devices (its name borrowed from the chunk), a row cut
/// between two chunks is kept until the rest comes.
#[derive(Default)]
struct Copy {
    header: bool,
    trailer: bool,
    /// The start of a row the next chunk ends.
    partial: Vec<u8>,
}

impl Copy {
    fn feed(&mut self, chunk: &[u8], devices: &mut Transitions) -> Result<()> {
        if self.partial.is_empty() {
            let used = self.rows(chunk, devices)?;
            self.partial.extend_from_slice(&chunk[used..]);
        } else {
            let mut bytes = std::mem::take(&mut self.partial);
            bytes.extend_from_slice(chunk);
            let used = self.rows(&bytes, devices)?;
            bytes.drain(..used);
            self.partial = bytes;
        }
        Ok(())
    }

    /// The end of the data: it must have ended with the trailer.
    fn finish(self) -> Result<()> {
        match (self.trailer, self.partial.is_empty()) {
            (true, true) => Ok(()),
            _ => Err(malformed("it ends before its trailer")),
        }
    }

    /// Adds the whole rows `bytes` starts with; how many bytes they took.
    fn rows(&mut self, bytes: &[u8], devices: &mut Transitions) -> Result<usize> {
        let mut at = 0;
        if !self.header {
            if bytes.len() < HEADER {
                return Ok(0);
            }
            if &bytes[..SIGNATURE.len()] != SIGNATURE || bytes[SIGNATURE.len()..HEADER] != [0; 8] {
                return Err(malformed("not a binary COPY without header extension"));
            }
            self.header = true;
            at = HEADER;
        }
        while at < bytes.len() {
            if self.trailer {
                return Err(malformed("data after its trailer"));
            }
            let mut row = Fields(&bytes[at..]);
            match row.count() {
                None => break,
                Some(-1) => self.trailer = true,
                Some(5) => match transition(&mut row)? {
                    None => break,
                    Some((device, transition)) => report::add(devices, device, transition),
                },
                Some(n) => return Err(malformed(&format!("a row of {n} columns"))),
            }
            at = bytes.len() - row.0.len();
        }
        Ok(at)
    }
}

/// The fields of one row of [`report::report_transition_columns`] after its count: the
/// device and its transition, `None` if the row goes on in the next chunk.
fn transition<'a>(row: &mut Fields<'a>) -> Result<Option<(&'a str, ReportTransition)>> {
    let (Some(device), Some(id), Some(at), Some(to), Some(down_since)) =
        (row.next(), row.next(), row.next(), row.next(), row.next())
    else {
        return Ok(None);
    };
    let transition = ReportTransition {
        id: int(value(id)?)?,
        at: time(value(at)?)?,
        to: report::status(text(value(to)?)?),
        down_since: down_since.map(time).transpose()?,
    };
    Ok(Some((text(value(device)?)?, transition)))
}

/// What is left of a chunk, read a big-endian field at a time.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    /// A row's column count, or -1 for the trailer.
    fn count(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    /// The next field: `Some(None)` for a NULL, `None` if it is not all in the chunk.
    fn next(&mut self) -> Option<Option<&'a [u8]>> {
        let len = i32::from_be_bytes(self.take(4)?.try_into().ok()?);
        match usize::try_from(len) {
            Ok(len) => self.take(len).map(Some),
            Err(_) => Some(None),
        }
    }
}

/// A field of a column that is `NOT NULL`.
fn value(field: Option<&[u8]>) -> Result<&[u8]> {
    field.ok_or_else(|| malformed("a NULL in a column that has none"))
}

fn text(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| malformed("a text not in UTF-8"))
}

fn int(bytes: &[u8]) -> Result<i64> {
    <[u8; 8]>::try_from(bytes)
        .map(i64::from_be_bytes)
        .map_err(|_| malformed("an int8 not of 8 bytes"))
}

/// A `timestamptz`: microseconds since 2000-01-01 UTC.
fn time(bytes: &[u8]) -> Result<DateTime<Utc>> {
    const SINCE_1970: i64 = 946_684_800_000_000;
    int(bytes)?
        .checked_add(SINCE_1970)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| malformed("a time out of range"))
}

/// An error of decoding a `COPY` of transitions, as a column of the wrong type would be.
fn malformed(what: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(
        format!("a COPY of transitions: {what}").into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;

    /// A binary `COPY` of `rows` (device, id, at and down_since in microseconds since
    /// 2000, status), as PostgreSQL writes it.
    fn copy(rows: &[(&str, i64, i64, &str, Option<i64>)]) -> Vec<u8> {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend([0; 8]);
        let field = |bytes: &mut Vec<u8>, value: &[u8]| {
            bytes.extend((value.len() as i32).to_be_bytes());
            bytes.extend(value);
        };
        for &(device, id, at, to, down_since) in rows {
            bytes.extend(5i16.to_be_bytes());
            field(&mut bytes, device.as_bytes());
            field(&mut bytes, &id.to_be_bytes());
            field(&mut bytes, &at.to_be_bytes());
            field(&mut bytes, to.as_bytes());
            match down_since {
                Some(t) => field(&mut bytes, &t.to_be_bytes()),
                None => bytes.extend((-1i32).to_be_bytes()),
            }
        }
        bytes.extend((-1i16).to_be_bytes());
        bytes
    }

    fn parse(chunks: &[&[u8]]) -> Result<Transitions> {
        let mut devices = Transitions::default();
        let mut parsed = Copy::default();
        for chunk in chunks {
            parsed.feed(chunk, &mut devices)?;
        }
        parsed.finish()?;
        Ok(report::in_order(devices))
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn rows_keep_names_times_and_absent_down_since_whatever_the_chunks() {
        // 2026-11-01T00:00:00Z is 846,806,400 s after 2000-01-01.
        let day = 846_806_400_000_000;
        let bytes = copy(&[
            (r#"a"b\c"#, 7, day, "down", Some(day - 1)),
            ("თბილისი-1", 3, day + 1_000_000, "up", None),
            (r#"a"b\c"#, 2, day, "unreachable", None),
            ("x", 9, -1, "something new", None),
        ]);
        // In one chunk, and cut at every byte (a row split between two chunks).
        for cut in 0..=bytes.len() {
            let devices = parse(&[&bytes[..cut], &bytes[cut..]]).unwrap();
            let quoted = &devices[r#"a"b\c"#];
            // In order: the same instant is ordered by id.
            assert_eq!(quoted.iter().map(|t| t.id).collect::<Vec<_>>(), [2, 7]);
            assert_eq!(quoted[1].at, utc("2026-11-01T00:00:00Z"));
            assert_eq!(quoted[1].to, Status::Down);
            assert_eq!(
                quoted[1].down_since,
                Some(utc("2026-10-31T23:59:59.999999Z"))
            );
            assert_eq!(quoted[0].down_since, None);
            assert_eq!(quoted[0].to, Status::Unreachable);
            let georgian = &devices["თბილისი-1"][0];
            assert_eq!(georgian.at, utc("2026-11-01T00:00:01Z"));
            assert_eq!(devices["x"][0].at, utc("1999-12-31T23:59:59.999999Z"));
            assert_eq!(devices["x"][0].to, Status::Unknown);
        }
        // Byte by byte.
        let bytes: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse(&bytes).unwrap().len(), 3);
        assert!(parse(&[&copy(&[])]).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_copy_is_an_error_not_a_panic() {
        let good = copy(&[("d", 1, 0, "up", None)]);
        let header = HEADER + 2 + 4 + 1 + 4;
        // Cut short: before its trailer, in a row, in the header.
        for end in [good.len() - 2, good.len() - 3, header, 5, 0] {
            assert!(parse(&[&good[..end]]).is_err(), "cut at {end}");
        }
        let mut wrong = good.clone();
        wrong[0] = b'X';
        assert!(parse(&[&wrong]).is_err(), "signature");
        let mut wrong = good.clone();
        wrong[HEADER + 1] = 4;
        assert!(parse(&[&wrong]).is_err(), "a row of 4 columns");
        let mut wrong = good.clone();
        wrong[HEADER + 2 + 4] = 0xff;
        assert!(parse(&[&wrong]).is_err(), "a name not in UTF-8");
        let mut wrong = good.clone();
        wrong.extend([0, 5]);
        assert!(parse(&[&wrong]).is_err(), "data after the trailer");
        let mut wrong = copy(&[("d", 1, i64::MAX, "up", None)]);
        assert!(parse(&[&wrong]).is_err(), "infinity");
        // A NULL name; a length past the row's end.
        wrong = good.clone();
        wrong[HEADER + 2..HEADER + 6].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(parse(&[&wrong]).is_err(), "a NULL name");
        wrong = good.clone();
        wrong[HEADER + 2..HEADER + 6].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse(&[&wrong]).is_err(), "a name longer than the data");
        // An id of 4 bytes.
        let mut short = SIGNATURE.to_vec();
        short.extend([0; 8]);
        short.extend(5i16.to_be_bytes());
        for field in [&b"d"[..], &[0, 0, 0, 1], &[0; 8], b"up"] {
            short.extend((field.len() as i32).to_be_bytes());
            short.extend(field);
        }
        short.extend((-1i32).to_be_bytes());
        short.extend((-1i16).to_be_bytes());
        assert!(parse(&[&short]).is_err(), "an int8 of 4 bytes");
    }
}
