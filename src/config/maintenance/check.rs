//! The checks of a `maintenance:` list as written: each window of exactly one kind with
//! all its keys, its dates, times, days, zone, cron pattern and duration valid, every
//! problem at its place; what passes becomes a [`Window`].

use std::path::Path;

use chrono::{NaiveDateTime, NaiveTime, TimeDelta, Weekday};
use chrono_tz::Tz;

use super::{CRON, ONE_OFF, RawWindow, WEEKLY, WINDOW_KEYS, parse_zone};
use crate::config::duration;
use crate::config::error::{ConfigError, Location, Place, Spanned};
use crate::config::walk::Text;
use crate::maintenance::{CronError, Days, Rule, Scope, Window};

/// A list longer than this on one region, branch or device is a mistake (and would
/// make every evaluation of its devices slow).
pub const MAX_WINDOWS: usize = 100;
/// Bounds on a cron window's duration and a one-off's length.
const MIN_DURATION: TimeDelta = TimeDelta::minutes(1);
const MAX_DURATION: TimeDelta = TimeDelta::days(7);
const MAX_ONE_OFF: TimeDelta = TimeDelta::days(366);
/// Reasons are shown as they are: visible text of a sensible length.
const MAX_REASON: usize = 256;

/// The windows written on `scope`, checked; each problem goes to `errors` and its
/// window is left out.
pub(in crate::config) fn windows(
    raw: &[RawWindow<'_>],
    scope: &Scope,
    file: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<Window> {
    if let Some(extra) = raw.get(MAX_WINDOWS) {
        let message = format!(
            "maintenance: more than {MAX_WINDOWS} windows on {} {:?}",
            scope.level(),
            scope.name()
        );
        errors.push(ConfigError::new(Place::at(file, extra.at), message));
        return Vec::new();
    }
    let mut check = Check { file, errors };
    raw.iter()
        .enumerate()
        .filter_map(|(i, raw)| check.window(raw, scope, i as u32))
        .collect()
}

struct Check<'e> {
    file: &'e Path,
    errors: &'e mut Vec<ConfigError>,
}

impl Check<'_> {
    fn error(&mut self, at: Location, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(Place::at(self.file, at), message));
    }

    fn window(&mut self, raw: &RawWindow<'_>, scope: &Scope, ordinal: u32) -> Option<Window> {
        if raw.seen == u32::MAX {
            return None; // an unknown key, reported already
        }
        let before = self.errors.len();
        let zone = raw.zone.as_ref().and_then(|z| match parse_zone(&z.value) {
            Ok(zone) => Some(zone),
            Err(message) => {
                self.error(z.at, format!("zone: {message}"));
                None
            }
        });
        let reason = raw.reason.as_ref().and_then(|r| self.reason(r));
        let kinds = [ONE_OFF, WEEKLY, CRON]
            .into_iter()
            .filter(|kind| raw.seen & kind != 0)
            .count();
        let rule = match kinds {
            0 => {
                self.error(
                    raw.at,
                    "maintenance window: needs start and end, days with from and to, or cron with duration",
                );
                None
            }
            1 if raw.seen & ONE_OFF != 0 => self.one_off(raw, zone),
            1 if raw.seen & WEEKLY != 0 => self.weekly(raw),
            1 => self.cron(raw),
            _ => {
                self.error(
                    raw.at,
                    "maintenance window: is one of start/end, days/from/to or cron/duration, not a mix; write one window each",
                );
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(Window {
            scope: scope.clone(),
            ordinal,
            rule: rule?,
            zone,
            reason,
        })
    }

    /// Reports every key of `keys` the window lacks; the values of those it has.
    fn require<'r, 'a>(
        &mut self,
        raw: &'r RawWindow<'a>,
        keys: [(&str, &'r Option<Spanned<Text<'a>>>); 2],
    ) -> Option<[&'r Spanned<Text<'a>>; 2]> {
        for (name, value) in keys {
            if value.is_none() && raw.seen & (1 << key_index(name)) == 0 {
                self.error(raw.at, format!("missing required key {name:?}"));
            }
        }
        match keys {
            [(_, Some(a)), (_, Some(b))] => Some([a, b]),
            _ => None,
        }
    }

    fn one_off(&mut self, raw: &RawWindow<'_>, zone: Option<Tz>) -> Option<Rule> {
        let [start, end] = self.require(raw, [("start", &raw.start), ("end", &raw.end)])?;
        // Both read before either is given up on, so both are reported.
        let (s, e) = (self.local_time(start, "start"), self.local_time(end, "end"));
        let (start_at, end_at) = (s?, e?);
        if end_at <= start_at {
            let (written_end, written_start) = (end.value.trim(), start.value.trim());
            let message = format!("end {written_end} is not after start {written_start}");
            self.error(end.at, message);
            return None;
        }
        if end_at - start_at > MAX_ONE_OFF {
            self.error(end.at, "end: a one-off window lasts at most 366 days");
            return None;
        }
        let rule = Rule::Once {
            start: start_at,
            end: end_at,
        };
        // Only a zone written here is known now; the default one is the settings'.
        if let Some(zone) = zone {
            let (a, b) = (
                crate::maintenance::local::instant(start_at, zone),
                crate::maintenance::local::instant(end_at, zone),
            );
            if a >= b {
                self.error(
                    start.at,
                    format!("the window is empty in {zone}: it lies in the hour its clocks skip"),
                );
                return None;
            }
        }
        Some(rule)
    }

    fn weekly(&mut self, raw: &RawWindow<'_>) -> Option<Rule> {
        if raw.seen & (1 << key_index("days")) == 0 {
            self.error(raw.at, "missing required key \"days\"");
        }
        let times = self.require(raw, [("from", &raw.from), ("to", &raw.to)]);
        let mut days = Days::default();
        let mut ok = true;
        for day in &raw.days {
            match weekday(&day.value) {
                Some(d) if days.contains(d) => {
                    self.error(day.at, format!("days: {:?} is listed twice", day.value));
                    ok = false;
                }
                Some(d) => days = days.with(d),
                None => {
                    self.error(
                        day.at,
                        format!(
                            "days: unknown day {:?} (mon, tue, wed, thu, fri, sat, sun)",
                            day.value
                        ),
                    );
                    ok = false;
                }
            }
        }
        if ok && days.is_empty() && raw.seen & (1 << key_index("days")) != 0 {
            self.error(raw.at, "days: the list is empty; name at least one day");
        }
        let [from, to] = times?;
        let (f, t) = (self.time_of_day(from, "from"), self.time_of_day(to, "to"));
        (ok && !days.is_empty()).then_some(())?;
        Some(Rule::Weekly {
            days,
            from: f?,
            to: t?,
        })
    }

    fn cron(&mut self, raw: &RawWindow<'_>) -> Option<Rule> {
        let [pattern, length] =
            self.require(raw, [("cron", &raw.cron), ("duration", &raw.duration)])?;
        let duration = match duration::parse(&length.value) {
            Ok(d) => match TimeDelta::from_std(d) {
                Ok(d) if d < MIN_DURATION => {
                    let message = format!("duration {} is shorter than 1m", length.value.trim());
                    self.error(length.at, message);
                    None
                }
                Ok(d) if d > MAX_DURATION => {
                    let message = format!(
                        "duration {} is longer than 7 days (168h)",
                        length.value.trim()
                    );
                    self.error(length.at, message);
                    None
                }
                Ok(d) => Some(d),
                Err(_) => {
                    self.error(
                        length.at,
                        format!("duration {:?} is too long", length.value),
                    );
                    None
                }
            },
            Err(e) => {
                self.error(length.at, format!("duration: {e}"));
                None
            }
        };
        let rule = match Rule::cron(&pattern.value, duration.unwrap_or(MIN_DURATION)) {
            Ok(rule) => rule,
            Err(e) => {
                let message = match e {
                    CronError::NeverMatches => {
                        format!("cron: {:?} never matches a date", pattern.value)
                    }
                    CronError::Pattern(e) => format!(
                        "cron: {:?} is not a cron pattern of five fields (minute hour day-of-month month day-of-week): {e}",
                        pattern.value
                    ),
                };
                self.error(pattern.at, message);
                return None;
            }
        };
        duration.map(|_| rule)
    }

    fn local_time(&mut self, value: &Spanned<Text<'_>>, key: &str) -> Option<NaiveDateTime> {
        let text = value.value.trim();
        let parsed = [
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok());
        if parsed.is_none() {
            let message = format!(
                "{key}: {:?} is not a local date and time such as 2026-12-06T22:00 (no offset: the zone is given by zone:)",
                value.value
            );
            self.error(value.at, message);
        }
        parsed
    }

    fn time_of_day(&mut self, value: &Spanned<Text<'_>>, key: &str) -> Option<NaiveTime> {
        let text = value.value.trim();
        // `%H:%M` alone would also take `7:5`; a time of day is written with two digits each.
        let shaped = text.len() == 5 && text.as_bytes()[2] == b':';
        let parsed = shaped
            .then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
            .flatten();
        if parsed.is_none() {
            let message = format!(
                "{key}: {:?} is not a time of day such as 22:00 (00:00 to 23:59)",
                value.value
            );
            self.error(value.at, message);
        }
        parsed
    }

    fn reason(&mut self, value: &Spanned<Text<'_>>) -> Option<std::sync::Arc<str>> {
        let text = value.value.trim();
        let problem = if text.chars().any(char::is_control) {
            "contains control characters"
        } else if text.chars().count() > MAX_REASON {
            "is longer than 256 characters"
        } else {
            return (!text.is_empty()).then(|| text.into());
        };
        self.error(value.at, format!("reason {problem}"));
        None
    }
}

fn key_index(name: &str) -> usize {
    WINDOW_KEYS
        .iter()
        .position(|k| *k == name)
        .expect("a window key")
}

/// `mon` … `sun`, or the whole English name, in any case.
fn weekday(text: &str) -> Option<Weekday> {
    let text = text.trim().to_ascii_lowercase();
    let days = [
        ("mon", "monday", Weekday::Mon),
        ("tue", "tuesday", Weekday::Tue),
        ("wed", "wednesday", Weekday::Wed),
        ("thu", "thursday", Weekday::Thu),
        ("fri", "friday", Weekday::Fri),
        ("sat", "saturday", Weekday::Sat),
        ("sun", "sunday", Weekday::Sun),
    ];
    days.iter()
        .find(|(short, long, _)| text == *short || text == *long)
        .map(|(_, _, d)| *d)
}
