//! The parameters of a report (`GET /api/v1/reports/availability` and `/reports`),
//! read from a query string against `now` and the display zone. A bad value is an error
//! naming its parameter.
//!
//! The period is either `period=day|week|month` (the one holding `at`, a local date,
//! default today; weeks start on Monday) or `from` and `to`, each an RFC 3339 instant or
//! a local date or date and time (`2026-12-01`, `2026-12-01T08:00`) in the display zone.
//! Nothing given: this month. At most [`MAX_DAYS`] days.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use super::group::GroupBy;
use crate::maintenance::local;
use crate::read_model::ParamError;

/// The longest period a report covers: a year and a bit (a leap year's report of the
/// whole year, with a day's margin either side of the zone).
pub const MAX_DAYS: i64 = 400;
/// Rows per page, by default and at most.
pub const DEFAULT_LIMIT: usize = 1_000;
pub const MAX_LIMIT: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// The order of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By the group's name (branches by region, then name).
    Key,
    /// Worst availability first (no judged time last).
    Availability,
    /// Most downtime (down and unreachable) first.
    Downtime,
    /// Most outages first.
    Outages,
    /// Breaches first (most devices breached), then worst availability.
    Breach,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Key => "key",
            Sort::Availability => "availability",
            Sort::Downtime => "downtime",
            Sort::Outages => "outages",
            Sort::Breach => "breach",
        }
    }
}

/// A report asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: GroupBy,
    pub format: Format,
    pub sort: Sort,
    /// Only the devices of this region, branch or device (exact names): drill-down.
    pub region: Option<String>,
    pub branch: Option<String>,
    pub device: Option<String>,
    pub limit: usize,
    pub offset: usize,
    /// How the period was asked for, to be shown again (`day`, `week`, `month`,
    /// `range`) and the local date it holds.
    pub period: &'static str,
    pub at: NaiveDate,
}

/// The query of `text` at `now`, dates read in `zone`.
pub fn parse(text: Option<&str>, now: DateTime<Utc>, zone: Tz) -> Result<Query, ParamError> {
    let mut from = None;
    let mut to = None;
    let mut period = None;
    let mut at = None;
    let mut q = Query {
        from: now,
        to: now,
        group_by: GroupBy::Device,
        format: Format::Json,
        sort: Sort::Key,
        region: None,
        branch: None,
        device: None,
        limit: DEFAULT_LIMIT,
        offset: 0,
        period: "month",
        at: local::local(now, zone).date(),
    };
    for (key, value) in form_urlencoded::parse(text.unwrap_or("").as_bytes()) {
        let v = value.trim();
        if v.is_empty() {
            continue;
        }
        match &*key {
            "from" => from = Some(instant(v, zone).ok_or(("from", bad_time("from", v)))?),
            "to" => to = Some(instant(v, zone).ok_or(("to", bad_time("to", v)))?),
            "period" => {
                period = Some(match v {
                    "day" => "day",
                    "week" => "week",
                    "month" => "month",
                    _ => return Err(("period", format!("period {v:?} is not day, week or month"))),
                })
            }
            "at" => {
                at =
                    Some(NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                        ("at", format!("at {v:?} is not a date such as 2026-12-01"))
                    })?)
            }
            "group_by" => {
                q.group_by = GroupBy::parse(v).ok_or((
                    "group_by",
                    format!("group_by {v:?} is not device, branch, region, kind or label:NAME"),
                ))?
            }
            "format" => {
                q.format = match v {
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    _ => return Err(("format", format!("format {v:?} is not json or csv"))),
                }
            }
            "sort" => {
                q.sort = match v {
                    "key" => Sort::Key,
                    "availability" => Sort::Availability,
                    "downtime" => Sort::Downtime,
                    "outages" => Sort::Outages,
                    "breach" => Sort::Breach,
                    _ => {
                        return Err((
                            "sort",
                            format!(
                                "sort {v:?} is not key, availability, downtime, outages or breach"
                            ),
                        ));
                    }
                }
            }
            "region" => q.region = Some(name("region", v)?),
            "branch" => q.branch = Some(name("branch", v)?),
            "device" => q.device = Some(name("device", v)?),
            "limit" => {
                q.limit = match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err((
                            "limit",
                            format!("limit {v:?} is not an integer from 1 to {MAX_LIMIT}"),
                        ));
                    }
                }
            }
            "offset" => {
                q.offset = v.parse::<usize>().map_err(|_| {
                    (
                        "offset",
                        format!("offset {v:?} is not a non-negative integer"),
                    )
                })?
            }
            _ => {}
        }
    }
    match (period, from, to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err((
                "period",
                "give either period (with at) or from and to, not both".into(),
            ));
        }
        (None, Some(f), Some(t)) => {
            q.from = f;
            q.to = t;
            q.period = "range";
            q.at = local::local(f, zone).date();
        }
        (None, Some(_), None) => return Err(("to", "to is missing (from is given)".into())),
        (None, None, Some(_)) => return Err(("from", "from is missing (to is given)".into())),
        (p, None, None) => {
            let p = p.unwrap_or("month");
            let day = at.unwrap_or(q.at);
            let (start, end) =
                span_of(p, day).ok_or(("at", format!("at {day} is out of range")))?;
            q.from = local::instant(start.and_time(NaiveTime::MIN), zone);
            q.to = local::instant(end.and_time(NaiveTime::MIN), zone);
            q.period = p;
            q.at = day;
        }
    }
    if q.to <= q.from {
        return Err(("to", "to must be after from".into()));
    }
    if q.to - q.from > chrono::TimeDelta::days(MAX_DAYS) {
        return Err((
            "to",
            format!("the period is longer than {MAX_DAYS} days; ask for less"),
        ));
    }
    Ok(q)
}

/// The local dates a day, week or month holding `day` starts and ends at.
fn span_of(period: &str, day: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    match period {
        "day" => Some((day, day.checked_add_days(Days::new(1))?)),
        "week" => {
            let monday =
                day.checked_sub_days(Days::new(day.weekday().num_days_from_monday().into()))?;
            Some((monday, monday.checked_add_days(Days::new(7))?))
        }
        _ => {
            let first = day.with_day(1)?;
            Some((first, first.checked_add_months(Months::new(1))?))
        }
    }
}

/// An RFC 3339 instant, or a local date (midnight) or date and time in `zone`.
fn instant(v: &str, zone: Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, format) {
            return Some(local::instant(t, zone));
        }
    }
    let date = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    Some(local::instant(date.and_time(NaiveTime::MIN), zone))
}

fn bad_time(key: &str, v: &str) -> String {
    format!(
        "{key} {v:?} is not a time: an RFC 3339 instant (2026-12-01T00:00:00Z) or a local date (2026-12-01) or date and time (2026-12-01T08:00)"
    )
}

/// Names are compared exactly; one longer than any inventory name is a mistake.
fn name(key: &'static str, v: &str) -> Result<String, ParamError> {
    if v.len() > 200 {
        return Err((key, format!("{key} is longer than 200 bytes")));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-03T06:00:00Z".parse().unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn periods_are_local_days_weeks_and_months() {
        let tbilisi = chrono_tz::Asia::Tbilisi;
        let q = parse(None, now(), tbilisi).unwrap();
        assert_eq!(
            (q.from, q.to),
            (at("2026-11-30T20:00:00Z"), at("2026-12-31T20:00:00Z"))
        );
        let q = parse(Some("period=week&at=2026-12-03"), now(), tbilisi).unwrap();
        assert_eq!(
            (q.from, q.to),
            (at("2026-11-29T20:00:00Z"), at("2026-12-06T20:00:00Z"))
        );
        let q = parse(Some("period=day"), now(), Tz::UTC).unwrap();
        assert_eq!(
            (q.from, q.to),
            (at("2026-12-03T00:00:00Z"), at("2026-12-04T00:00:00Z"))
        );
        let q = parse(Some("from=2026-12-01&to=2026-12-02T12:30"), now(), tbilisi).unwrap();
        assert_eq!(
            (q.from, q.to),
            (at("2026-11-30T20:00:00Z"), at("2026-12-02T08:30:00Z"))
        );
        let q = parse(
            Some("from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00%2B04:00"),
            now(),
            tbilisi,
        )
        .unwrap();
        assert_eq!(
            (q.from, q.to),
            (at("2026-12-01T00:00:00Z"), at("2026-12-01T20:00:00Z"))
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let err = |q: &str| parse(Some(q), now(), Tz::UTC).unwrap_err().0;
        assert_eq!(err("from=yesterday&to=2026-12-01"), "from");
        assert_eq!(err("from=2026-12-02&to=2026-12-01"), "to");
        assert_eq!(err("from=2025-01-01&to=2026-12-01"), "to");
        assert_eq!(err("from=2026-12-01"), "to");
        assert_eq!(err("to=2026-12-01"), "from");
        assert_eq!(err("period=year"), "period");
        assert_eq!(err("period=day&from=2026-12-01"), "period");
        assert_eq!(err("at=3.12.2026"), "at");
        assert_eq!(err("group_by=city"), "group_by");
        assert_eq!(err("group_by=label:"), "group_by");
        assert_eq!(err("format=pdf"), "format");
        assert_eq!(err("limit=0"), "limit");
        assert_eq!(err("limit=100000"), "limit");
        assert_eq!(err("offset=-1"), "offset");
        assert_eq!(err("sort=name"), "sort");
        let q = parse(
            Some("group_by=label:tier&format=csv&sort=breach"),
            now(),
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(q.group_by, GroupBy::Label("tier".into()));
        assert_eq!((q.format, q.sort), (Format::Csv, Sort::Breach));
    }
}
