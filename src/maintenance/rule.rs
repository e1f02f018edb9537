//! When a window's rule happens, as instants: the one-off's single occurrence, the
//! weekly days at their local times, the cron rule's matches. Every occurrence is found
//! in local time and only then turned into an instant ([`super::local`]), so the three
//! kinds follow the same daylight-saving rule.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;

use super::local::{instant, local};

/// One occurrence of a window: from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What a window says about time, in its zone's local time.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// From one local time to another.
    Once {
        start: NaiveDateTime,
        end: NaiveDateTime,
    },
    /// On each of `days`, from the local time `from` to `to`; when `to` is not after
    /// `from` the window ends on the next day (`22:00`–`02:00`; `00:00`–`00:00` is the
    /// whole day).
    Weekly {
        days: Days,
        from: NaiveTime,
        to: NaiveTime,
    },
    /// At each local time the cron pattern matches (minute resolution), for `duration`
    /// of real time.
    Cron {
        pattern: Box<croner::Cron>,
        duration: TimeDelta,
    },
}

/// Why a cron pattern cannot be a window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not a pattern of five fields croner reads (its words).
    #[error("{0}")]
    Pattern(String),
    /// A valid pattern of a day that never comes (`0 0 31 2 *`).
    #[error("it never matches a date")]
    NeverMatches,
}

/// A set of weekdays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Days(u8);

impl Days {
    pub fn with(self, day: Weekday) -> Self {
        Self(self.0 | 1 << day.num_days_from_monday())
    }

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Monday first.
    pub fn iter(self) -> impl Iterator<Item = Weekday> {
        (0..7u8)
            .map(|i| Weekday::try_from(i).expect("0 to 6 are weekdays"))
            .filter(move |d| self.contains(*d))
    }
}

/// Whether `pattern` matches some day (its minute and hour fields always match some
/// time of day). The calendar repeats every 28 years in weekdays and leap days alike
/// (between 1901 and 2099), so 28 years from 2001 hold every day a pattern can ask for.
/// croner's own search would tell as well, but only after scanning up to the year
/// 5000, ~70 ms a pattern: a file of such patterns must not take minutes to check.
fn matches_a_day(pattern: &croner::Cron) -> bool {
    use croner::Weekday as W;
    let Some(mut day) = NaiveDate::from_ymd_opt(2001, 1, 1) else {
        return false;
    };
    let last = NaiveDate::from_ymd_opt(2029, 1, 1).unwrap_or(day);
    while day < last {
        let weekday = match day.weekday() {
            Weekday::Mon => W::Monday,
            Weekday::Tue => W::Tuesday,
            Weekday::Wed => W::Wednesday,
            Weekday::Thu => W::Thursday,
            Weekday::Fri => W::Friday,
            Weekday::Sat => W::Saturday,
            Weekday::Sun => W::Sunday,
        };
        let p = &pattern.pattern;
        let (y, m, d) = (day.year(), day.month(), day.day());
        if p.month_match(m).unwrap_or(false) && p.day_match(y, m, d, weekday).unwrap_or(false) {
            return true;
        }
        let Some(next) = day.succ_opt() else {
            return false;
        };
        day = next;
    }
    false
}

/// A cron match and a skipped local time can be this far apart in local time from the
/// instant asked about (daylight-saving shifts are at most 2 hours; 3 leaves room).
const SHIFT: TimeDelta = TimeDelta::hours(3);
/// Searches of a cron pattern for the occurrences around one instant stop after this
/// many matches (a pattern matching every minute, across a repeated hour: 180).
const MAX_STEPS: usize = 400;

impl Rule {
    /// A cron rule: `pattern` is five fields (minute, hour, day of month, month, day of
    /// week; Sunday is 0 or 7, names such as `sun` and `jan` work), read as POSIX cron
    /// reads them (a day of month and a day of week both given: either matches).
    pub fn cron(pattern: &str, duration: TimeDelta) -> Result<Rule, CronError> {
        use croner::parser::{CronParser, Seconds, Year};
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let pattern = parser
            .parse(pattern)
            .map_err(|e| CronError::Pattern(e.to_string()))?;
        if !matches_a_day(&pattern) {
            return Err(CronError::NeverMatches);
        }
        Ok(Rule::Cron {
            pattern: Box::new(pattern),
            duration,
        })
    }

    /// The occurrence that starts last at or before `t`; of those starting by `t` it is
    /// also the one that ends last (a later start never ends earlier: a weekly window
    /// lasts less than a day plus a shift, a cron window always the same).
    pub fn latest_start(&self, t: DateTime<Utc>, zone: Tz) -> Option<Occurrence> {
        match self {
            Rule::Once { start, end } => {
                let start = instant(*start, zone);
                (start <= t).then(|| Occurrence {
                    start,
                    end: instant(*end, zone),
                })
            }
            Rule::Weekly { days, from, to } => {
                let today = local(t, zone).date();
                // Tomorrow's start can still be before `t` across a shift; a week and
                // two days back always holds a listed day.
                (-1..=8)
                    .filter_map(|back| today.checked_sub_signed(TimeDelta::days(back)))
                    .filter(|day| days.contains(day.weekday()))
                    .map(|day| self.weekly_on(day, *from, *to, zone))
                    .find(|o| o.start <= t)
            }
            Rule::Cron { pattern, duration } => {
                let at = local(t, zone);
                // `at` itself gives an instant at or before `t`; a later local time can too
                // when `t` is in the second pass of a repeated hour.
                let mut best = pattern.find_previous_occurrence(&at, true).ok()?;
                let mut next = best;
                for _ in 0..MAX_STEPS {
                    next = match pattern.find_next_occurrence(&next, false) {
                        Ok(n) if n <= at + SHIFT && instant(n, zone) <= t => n,
                        _ => break,
                    };
                    best = next;
                }
                let start = instant(best, zone);
                Some(Occurrence {
                    start,
                    end: start + *duration,
                })
            }
        }
    }

    /// Every occurrence that starts in `[from, until)`, in order, at most `limit`.
    pub fn starts_in(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        zone: Tz,
        limit: usize,
    ) -> Vec<Occurrence> {
        let within = |o: &Occurrence| from <= o.start && o.start < until;
        match self {
            Rule::Once { .. } => self
                .latest_start(until - TimeDelta::nanoseconds(1), zone)
                .filter(within)
                .into_iter()
                .collect(),
            Rule::Weekly { days, from: f, to } => {
                let (first, last) = (local(from, zone).date(), local(until, zone).date());
                let mut out = Vec::new();
                let mut day = first.pred_opt().unwrap_or(first);
                while day <= last.succ_opt().unwrap_or(last) && out.len() < limit {
                    if days.contains(day.weekday()) {
                        let o = self.weekly_on(day, *f, *to, zone);
                        if within(&o) {
                            out.push(o);
                        }
                    }
                    let Some(next) = day.succ_opt() else { break };
                    day = next;
                }
                out
            }
            Rule::Cron { pattern, duration } => {
                let mut out = Vec::new();
                let mut at = local(from, zone) - SHIFT;
                let mut inclusive = true;
                // Local times before `from` (the shift) are skipped, each once.
                let mut skipped = 0;
                while out.len() < limit && skipped < MAX_STEPS {
                    let Ok(n) = pattern.find_next_occurrence(&at, inclusive) else {
                        break;
                    };
                    (at, inclusive) = (n, false);
                    let start = instant(n, zone);
                    if start >= until {
                        break;
                    }
                    if start < from {
                        skipped += 1;
                        continue;
                    }
                    out.push(Occurrence {
                        start,
                        end: start + *duration,
                    });
                }
                // Two local times in one gap start at the same instant: one occurrence.
                out.dedup_by_key(|o| o.start);
                out
            }
        }
    }

    fn weekly_on(&self, day: NaiveDate, from: NaiveTime, to: NaiveTime, zone: Tz) -> Occurrence {
        let end_day = if to <= from {
            day.succ_opt().unwrap_or(day)
        } else {
            day
        };
        Occurrence {
            start: instant(day.and_time(from), zone),
            end: instant(end_day.and_time(to), zone),
        }
    }
}
