//! The evaluation of windows across daylight-saving changes, midnight and weeks.

use chrono::{NaiveDateTime, NaiveTime, TimeDelta, Weekday};
use chrono_tz::Tz;
use chrono_tz::{America::New_York, Asia::Tbilisi, Europe::Berlin, UTC};

use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
}

fn naive(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
}

fn time(text: &str) -> NaiveTime {
    NaiveTime::parse_from_str(text, "%H:%M").unwrap()
}

fn window(rule: Rule, zone: Option<Tz>) -> Window {
    Window {
        scope: Scope::Region { region: "r".into() },
        ordinal: 0,
        rule,
        zone,
        reason: None,
    }
}

fn once(start: &str, end: &str, zone: Tz) -> Window {
    let rule = Rule::Once {
        start: naive(start),
        end: naive(end),
    };
    window(rule, Some(zone))
}

fn weekly(days: &[Weekday], from: &str, to: &str, zone: Tz) -> Window {
    let days = days.iter().fold(Days::default(), |d, &day| d.with(day));
    let rule = Rule::Weekly {
        days,
        from: time(from),
        to: time(to),
    };
    window(rule, Some(zone))
}

fn cron(pattern: &str, hours: i64, zone: Option<Tz>) -> Window {
    window(Rule::cron(pattern, TimeDelta::hours(hours)).unwrap(), zone)
}

fn occurrence(start: &str, end: &str) -> Occurrence {
    Occurrence {
        start: utc(start),
        end: utc(end),
    }
}

#[test]
fn a_one_off_is_active_from_its_start_inclusive_to_its_end_exclusive() {
    let w = once("2026-12-06 22:00", "2026-12-07 02:00", Tbilisi);
    // Tbilisi is UTC+4 all year.
    assert_eq!(w.active_at(utc("2026-12-06 17:59"), UTC), None);
    assert_eq!(
        w.active_at(utc("2026-12-06 18:00"), UTC),
        Some(occurrence("2026-12-06 18:00", "2026-12-06 22:00"))
    );
    assert!(w.active_at(utc("2026-12-06 21:59"), UTC).is_some());
    assert_eq!(w.active_at(utc("2026-12-06 22:00"), UTC), None);
    assert_eq!(
        w.starts_in(utc("2026-12-01 00:00"), utc("2026-12-08 00:00"), UTC, 10),
        [occurrence("2026-12-06 18:00", "2026-12-06 22:00")]
    );
    // The start is inclusive in a search too, the search's end exclusive.
    assert_eq!(
        w.starts_in(utc("2026-12-06 18:00"), utc("2026-12-06 18:01"), UTC, 10)
            .len(),
        1
    );
    assert!(
        w.starts_in(utc("2026-12-01 00:00"), utc("2026-12-06 18:00"), UTC, 10)
            .is_empty()
    );
}

#[test]
fn a_one_off_in_the_past_is_never_active_and_never_starts() {
    let w = once("2025-01-05 22:00", "2025-01-06 02:00", Tbilisi);
    assert_eq!(w.active_at(utc("2026-12-06 19:00"), UTC), None);
    assert!(
        w.starts_in(utc("2026-12-01 00:00"), utc("2026-12-08 00:00"), UTC, 10)
            .is_empty()
    );
}

#[test]
fn a_weekly_window_crosses_midnight_when_it_ends_before_it_starts() {
    // Sundays 22:00 to Mondays 02:00, Tbilisi time; 2026-12-06 is a Sunday.
    let w = weekly(&[Weekday::Sun], "22:00", "02:00", Tbilisi);
    let sunday = occurrence("2026-12-06 18:00", "2026-12-06 22:00");
    assert_eq!(w.active_at(utc("2026-12-06 18:00"), UTC), Some(sunday));
    // Monday 01:59 local belongs to Sunday's window.
    assert_eq!(w.active_at(utc("2026-12-06 21:59"), UTC), Some(sunday));
    assert_eq!(w.active_at(utc("2026-12-06 22:00"), UTC), None);
    // Saturday night is not Sunday night.
    assert_eq!(w.active_at(utc("2026-12-05 19:00"), UTC), None);
    assert_eq!(
        w.starts_in(utc("2026-12-01 00:00"), utc("2026-12-15 00:00"), UTC, 10),
        [sunday, occurrence("2026-12-13 18:00", "2026-12-13 22:00")]
    );
}

#[test]
fn a_weekly_window_across_the_week_boundary() {
    // Saturday 23:00 to Sunday 01:00 and Sunday 23:00 to Monday 01:00, UTC: the week's
    // last day and the next week's first.
    let w = weekly(&[Weekday::Sat, Weekday::Sun], "23:00", "01:00", UTC);
    assert_eq!(
        w.active_at(utc("2026-12-07 00:30"), UTC),
        Some(occurrence("2026-12-06 23:00", "2026-12-07 01:00"))
    );
    assert_eq!(w.active_at(utc("2026-12-07 23:30"), UTC), None);
    // From a Monday, the next start is five days on.
    assert_eq!(
        w.starts_in(utc("2026-12-07 01:00"), utc("2026-12-14 01:00"), UTC, 10),
        [
            occurrence("2026-12-12 23:00", "2026-12-13 01:00"),
            occurrence("2026-12-13 23:00", "2026-12-14 01:00"),
        ]
    );
    // Every day, 00:00 to 00:00: the whole of each day.
    let all = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let daily = weekly(&all, "00:00", "00:00", UTC);
    assert_eq!(
        daily.active_at(utc("2026-12-09 13:00"), UTC),
        Some(occurrence("2026-12-09 00:00", "2026-12-10 00:00"))
    );
}

#[test]
fn berlin_spring_forward_a_skipped_start_begins_when_the_clocks_jump() {
    // 2026-03-29 (a Sunday): 02:00 CET became 03:00 CEST, at 01:00 UTC.
    let w = weekly(&[Weekday::Sun], "02:30", "04:00", Berlin);
    let shifted = occurrence("2026-03-29 01:00", "2026-03-29 02:00");
    assert_eq!(w.active_at(utc("2026-03-29 00:59"), UTC), None);
    assert_eq!(w.active_at(utc("2026-03-29 01:00"), UTC), Some(shifted));
    assert_eq!(w.active_at(utc("2026-03-29 02:00"), UTC), None);
    // The Sunday before, in winter time, and the one after, in summer time.
    assert_eq!(
        w.starts_in(utc("2026-03-22 00:00"), utc("2026-04-06 00:00"), UTC, 10),
        [
            occurrence("2026-03-22 01:30", "2026-03-22 03:00"),
            shifted,
            occurrence("2026-04-05 00:30", "2026-04-05 02:00"),
        ]
    );
    // A window from 01:00 to 03:00 local lasts one hour of real time that night.
    let across = weekly(&[Weekday::Sun], "01:00", "03:00", Berlin);
    assert_eq!(
        across.active_at(utc("2026-03-29 00:30"), UTC),
        Some(occurrence("2026-03-29 00:00", "2026-03-29 01:00"))
    );
}

#[test]
fn berlin_fall_back_a_repeated_start_takes_the_first_pass() {
    // 2026-10-25 (a Sunday): 03:00 CEST went back to 02:00 CET, at 01:00 UTC.
    let w = weekly(&[Weekday::Sun], "02:30", "03:30", Berlin);
    // 02:30 CEST (00:30 UTC) to 03:30 CET (02:30 UTC): two hours of real time.
    let night = occurrence("2026-10-25 00:30", "2026-10-25 02:30");
    assert_eq!(w.active_at(utc("2026-10-25 00:29"), UTC), None);
    assert_eq!(w.active_at(utc("2026-10-25 00:30"), UTC), Some(night));
    // 02:45 CET, the second pass of the repeated hour: still inside.
    assert_eq!(w.active_at(utc("2026-10-25 01:45"), UTC), Some(night));
    assert_eq!(w.active_at(utc("2026-10-25 02:30"), UTC), None);
    let cron = cron("30 2 * * *", 1, Some(Berlin));
    assert_eq!(
        cron.starts_in(utc("2026-10-24 12:00"), utc("2026-10-26 12:00"), UTC, 10),
        [
            occurrence("2026-10-25 00:30", "2026-10-25 01:30"),
            occurrence("2026-10-26 01:30", "2026-10-26 02:30"),
        ]
    );
    // Asked in the second pass, the cron window that started in the first is over.
    assert_eq!(cron.active_at(utc("2026-10-25 01:35"), UTC), None);
    assert_eq!(
        cron.active_at(utc("2026-10-25 01:29"), UTC),
        Some(occurrence("2026-10-25 00:30", "2026-10-25 01:30"))
    );
}

#[test]
fn new_york_spring_forward_and_fall_back() {
    // 2026-03-08: 02:00 EST became 03:00 EDT (07:00 UTC). A cron window at 02:30 that
    // night starts at the jump and lasts its full duration of real time.
    let w = cron("30 2 * * *", 2, Some(New_York));
    assert_eq!(
        w.starts_in(utc("2026-03-07 12:00"), utc("2026-03-09 12:00"), UTC, 10),
        [
            occurrence("2026-03-08 07:00", "2026-03-08 09:00"),
            occurrence("2026-03-09 06:30", "2026-03-09 08:30"),
        ]
    );
    assert_eq!(
        w.active_at(utc("2026-03-08 08:59"), UTC),
        Some(occurrence("2026-03-08 07:00", "2026-03-08 09:00"))
    );
    // 2026-11-01: 02:00 EDT went back to 01:00 EST. A one-off from 01:30 to 01:45 is
    // read at the first pass (EDT).
    let one = once("2026-11-01 01:30", "2026-11-01 01:45", New_York);
    assert_eq!(
        one.active_at(utc("2026-11-01 05:40"), UTC),
        Some(occurrence("2026-11-01 05:30", "2026-11-01 05:45"))
    );
    assert_eq!(one.active_at(utc("2026-11-01 06:40"), UTC), None);
    // A weekly window from 00:30 to 01:30 covers the repeated hour's first pass only.
    let sunday = weekly(&[Weekday::Sun], "00:30", "01:30", New_York);
    assert_eq!(
        sunday.active_at(utc("2026-11-01 05:00"), UTC),
        Some(occurrence("2026-11-01 04:30", "2026-11-01 05:30"))
    );
}

#[test]
fn tbilisi_has_no_shift_all_year() {
    let w = weekly(&[Weekday::Sun], "02:30", "03:30", Tbilisi);
    assert_eq!(
        w.starts_in(utc("2026-03-28 00:00"), utc("2026-03-30 00:00"), UTC, 10),
        [occurrence("2026-03-28 22:30", "2026-03-28 23:30")]
    );
    assert_eq!(
        w.starts_in(utc("2026-10-24 00:00"), utc("2026-10-26 00:00"), UTC, 10),
        [occurrence("2026-10-24 22:30", "2026-10-24 23:30")]
    );
}

#[test]
fn a_cron_rule_with_a_duration_in_the_default_zone() {
    // "0 22 * * 0": Sundays at 22:00, for 4 hours; no zone of its own, so the default.
    let w = cron("0 22 * * 0", 4, None);
    let sunday = occurrence("2026-12-06 18:00", "2026-12-06 22:00");
    assert_eq!(w.active_at(utc("2026-12-06 18:00"), Tbilisi), Some(sunday));
    assert_eq!(w.active_at(utc("2026-12-06 21:59"), Tbilisi), Some(sunday));
    assert_eq!(w.active_at(utc("2026-12-06 22:00"), Tbilisi), None);
    assert_eq!(
        w.active_at(utc("2026-12-06 22:30"), UTC),
        Some(occurrence("2026-12-06 22:00", "2026-12-07 02:00"))
    );
    assert_eq!(
        w.starts_in(
            utc("2026-12-01 00:00"),
            utc("2026-12-14 00:00"),
            Tbilisi,
            10
        ),
        [sunday, occurrence("2026-12-13 18:00", "2026-12-13 22:00")]
    );
    // Names and Sunday as 7 read the same.
    for same in ["0 22 * * sun", "0 22 * * 7", "0 22 * * SUN"] {
        let starts = cron(same, 4, None).starts_in(
            utc("2026-12-01 00:00"),
            utc("2026-12-14 00:00"),
            Tbilisi,
            10,
        );
        assert_eq!(starts.len(), 2, "{same}");
        assert_eq!(starts[0], sunday, "{same}");
    }
    assert!(Rule::cron("0 22 * *", TimeDelta::hours(1)).is_err());
    assert!(
        Rule::cron("0 0 22 * * 0", TimeDelta::hours(1)).is_err(),
        "no seconds field"
    );
}

#[test]
fn overlapping_and_touching_windows_of_a_device_merge_to_the_latest_end() {
    let windows = [
        once("2026-12-06 22:00", "2026-12-07 02:00", UTC),
        once("2026-12-07 01:00", "2026-12-07 04:00", UTC),
        // Touches the second: one stretch of maintenance.
        once("2026-12-07 04:00", "2026-12-07 05:00", UTC),
        // An hour after: a stretch of its own.
        once("2026-12-07 06:00", "2026-12-07 07:00", UTC),
    ];
    assert_eq!(active_at(&windows, utc("2026-12-06 21:59"), UTC), None);
    assert_eq!(
        active_at(&windows, utc("2026-12-06 22:00"), UTC),
        Some(utc("2026-12-07 05:00"))
    );
    assert_eq!(
        active_at(&windows, utc("2026-12-07 04:59"), UTC),
        Some(utc("2026-12-07 05:00"))
    );
    assert_eq!(active_at(&windows, utc("2026-12-07 05:00"), UTC), None);
    assert_eq!(
        active_at(&windows, utc("2026-12-07 06:30"), UTC),
        Some(utc("2026-12-07 07:00"))
    );
    assert_eq!(active_at(&[], utc("2026-12-07 06:30"), UTC), None);
    let starts = starts_in(
        &windows,
        utc("2026-12-06 23:00"),
        utc("2026-12-07 06:00"),
        UTC,
        10,
    );
    assert_eq!(
        starts
            .iter()
            .map(|(i, o)| (*i, o.start))
            .collect::<Vec<_>>(),
        [(1, utc("2026-12-07 01:00")), (2, utc("2026-12-07 04:00"))]
    );
}

#[test]
fn an_endless_chain_is_followed_a_bounded_number_of_links() {
    // Every hour for an hour: maintenance that never stops, reported a chain at a time.
    let w = [cron("0 * * * *", 1, Some(UTC))];
    let end = active_at(&w, utc("2026-12-06 10:30"), UTC).unwrap();
    assert_eq!(
        end,
        utc("2026-12-06 11:00") + TimeDelta::hours(MAX_CHAIN as i64)
    );
    // Bounded output however often a pattern matches.
    let every_minute = cron("* * * * *", 1, Some(UTC));
    let week = every_minute.starts_in(utc("2026-12-06 00:00"), utc("2026-12-13 00:00"), UTC, 100);
    assert_eq!(week.len(), 100);
}

#[test]
fn a_local_range_lasts_less_or_more_real_time_on_the_nights_clocks_change() {
    let w = weekly(&[Weekday::Sun], "01:00", "05:00", Berlin);
    let length = |from: &str, until: &str| {
        let o = w.starts_in(utc(from), utc(until), UTC, 1)[0];
        o.end - o.start
    };
    assert_eq!(
        length("2026-03-28 12:00", "2026-03-29 12:00"),
        TimeDelta::hours(3)
    );
    assert_eq!(
        length("2026-10-24 12:00", "2026-10-25 12:00"),
        TimeDelta::hours(5)
    );
    assert_eq!(
        length("2026-11-28 12:00", "2026-11-29 12:00"),
        TimeDelta::hours(4)
    );
    // A cron window lasts its duration of real time whatever the clocks do.
    let c = cron("0 1 * * 0", 4, Some(Berlin));
    let o = c.starts_in(utc("2026-10-24 12:00"), utc("2026-10-25 12:00"), UTC, 1)[0];
    assert_eq!(o.end - o.start, TimeDelta::hours(4));
}

#[test]
fn a_pattern_of_a_day_that_never_comes_is_refused_quickly_and_a_leap_day_is_not() {
    let started = std::time::Instant::now();
    for pattern in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
        assert_eq!(
            Rule::cron(pattern, TimeDelta::hours(1)),
            Err(CronError::NeverMatches),
            "{pattern}"
        );
    }
    for _ in 0..20 {
        assert!(Rule::cron("0 0 30 2 *", TimeDelta::hours(1)).is_err());
    }
    // croner's own search scans to the year 5000: ~70 ms each in a debug build, 1.6 s
    // for these 23; the 28-year scan takes a few milliseconds.
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    let leap = cron("0 0 29 2 *", 1, Some(UTC));
    assert_eq!(
        leap.starts_in(utc("2026-12-01 00:00"), utc("2029-01-01 00:00"), UTC, 10),
        [occurrence("2028-02-29 00:00", "2028-02-29 01:00")]
    );
}
