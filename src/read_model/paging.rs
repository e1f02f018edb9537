//! What the history listings (`/api/v1/alerts`, `/api/v1/devices/{name}/transitions`)
//! share: `limit` and the `before` cursor.
//!
//! History is read from the database, newest first, ordered by (time, id). A cursor is
//! the (time, id) of the last row of a page, written `2026-11-28T20:06:10.123456Z_42`:
//! microseconds because that is what both backends store (a millisecond cursor would
//! skip rows), and the id because rows share instants (one transition to down can open
//! `device_down` and `flapping` with the same `opened_at`). A
//! bare RFC 3339 time is accepted too and means "strictly before this time".

use chrono::{DateTime, SecondsFormat, Utc};

use super::query::ParamError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// A position in a newest-first listing: rows strictly older than (`at`, `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    /// None for a bare time: everything at `at` is excluded.
    pub id: Option<i64>,
}

impl Cursor {
    pub fn parse(value: &str) -> Result<Cursor, ParamError> {
        let bad = || {
            (
                "before",
                format!(
                    "before {value:?} is not a cursor (next_before of a previous page) \
                     or an RFC 3339 time"
                ),
            )
        };
        let (time, id) = match value.rsplit_once('_') {
            Some((time, id)) => (time, Some(id.parse::<i64>().map_err(|_| bad())?)),
            None => (value, None),
        };
        let at = DateTime::parse_from_rfc3339(time).map_err(|_| bad())?;
        Ok(Cursor {
            at: at.with_timezone(&Utc),
            id,
        })
    }

    /// The cursor after a row at `at` with `id`, as `next_before` gives it.
    pub fn format(at: DateTime<Utc>, id: i64) -> String {
        format!("{}_{id}", at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

/// `limit`: 1 to [`MAX_LIMIT`]; a larger one is an error rather than a silently shorter
/// page that a client could take for the end.
pub fn limit(value: &str) -> Result<i64, ParamError> {
    match value.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err((
            "limit",
            format!("limit {value:?} is not an integer from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// Given `limit + 1` rows, keeps `limit` and says where the next page starts: fetching
/// one more row than asked is how a page knows it is not the last without a count query.
pub fn paginate<T>(
    mut rows: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (DateTime<Utc>, i64),
) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(|r| {
        let (at, id) = key(r);
        Cursor::format(at, id)
    });
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_at_microsecond_precision() {
        let at = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let text = Cursor::format(at, 42);
        assert_eq!(text, "2027-01-15T08:00:00.123456Z_42");
        assert_eq!(Cursor::parse(&text).unwrap(), Cursor { at, id: Some(42) });
    }

    #[test]
    fn a_bare_time_is_a_cursor_without_id() {
        let c = Cursor::parse("2027-01-15T10:00:00+02:00").unwrap();
        assert_eq!(c.at, DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        assert_eq!(c.id, None);
        for bad in [
            "",
            "yesterday",
            "2027-01-15T08:00:00Z_x",
            "_5",
            "2027-01-15_5",
        ] {
            assert_eq!(Cursor::parse(bad).unwrap_err().0, "before", "{bad}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit("1000"), Ok(1000));
        for bad in ["0", "1001", "-1", "ten", ""] {
            assert_eq!(limit(bad).unwrap_err().0, "limit", "{bad}");
        }
    }

    #[test]
    fn a_page_knows_whether_more_follow() {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        let rows = vec![(t(3), 3), (t(2), 2), (t(2), 1)];
        let (page, next) = paginate(rows.clone(), 2, |r| *r);
        assert_eq!(page.len(), 2);
        assert_eq!(next.as_deref(), Some("1970-01-01T00:00:02.000000Z_2"));
        let (page, next) = paginate(rows, 3, |r| *r);
        assert_eq!((page.len(), next), (3, None));
    }
}
