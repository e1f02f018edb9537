//! Local wall-clock times in an IANA zone turned into instants, by one rule for every
//! kind of window: a local time that does not exist (skipped by a daylight-saving jump
//! forward) starts at the next instant that exists, which is the jump itself; a local
//! time that happens twice (the hour repeated when clocks go back) takes the first.
//!
//! With that rule the map from local time to instant never goes backwards (a later
//! local time never gives an earlier instant), which is what lets [`super::rule`]
//! search occurrences in local time and compare them as instants.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant of the local time `local` in `zone`.
pub fn instant(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
        LocalResult::None => after_gap(local, zone),
    }
}

/// The local wall-clock time of `t` in `zone`.
pub fn local(t: DateTime<Utc>, zone: Tz) -> NaiveDateTime {
    t.with_timezone(&zone).naive_local()
}

/// The first instant after the gap that swallows `local`: the moment the clocks jumped.
/// It lies between `local` read with the offset after the jump and `local` read with
/// the offset before it; found by halving that span down to the second.
fn after_gap(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    let offset_at = |t: DateTime<Utc>| zone.offset_from_utc_datetime(&t.naive_utc()).fix();
    let as_utc = |l: NaiveDateTime| Utc.from_utc_datetime(&l);
    let day = TimeDelta::days(1);
    // Gaps are at most a few hours long, and zones do not jump twice in a day.
    let before = offset_at(as_utc(local) - day);
    let after = offset_at(as_utc(local) + day);
    // In whole seconds: transitions are at whole seconds, and so is the answer.
    let seconds = |t: DateTime<Utc>| t.timestamp();
    let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut lo = seconds(as_utc(local)) - i64::from(after.local_minus_utc());
    let mut hi = seconds(as_utc(local)) - i64::from(before.local_minus_utc());
    if lo < hi && offset_at(at(lo)) == before && offset_at(at(hi)) != before {
        // Invariant: `lo` still has the old offset, `hi` the new one.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_at(at(mid)) == before {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return at(hi);
    }
    // A zone whose offsets do not fit the above (none in the database today): walk
    // forward minute by minute to the first local time that exists.
    let mut probe = local;
    for _ in 0..(48 * 60) {
        probe += TimeDelta::minutes(1);
        if let Some(t) = zone.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
    }
    as_utc(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        naive(text).and_utc()
    }

    #[test]
    fn a_skipped_local_time_starts_when_the_clocks_jump() {
        // Berlin: 2026-03-29 02:00 CET became 03:00 CEST (01:00 UTC).
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            instant(naive("2026-03-29 01:59"), berlin),
            utc("2026-03-29 00:59")
        );
        assert_eq!(
            instant(naive("2026-03-29 02:00"), berlin),
            utc("2026-03-29 01:00")
        );
        assert_eq!(
            instant(naive("2026-03-29 02:30"), berlin),
            utc("2026-03-29 01:00")
        );
        assert_eq!(
            instant(naive("2026-03-29 03:00"), berlin),
            utc("2026-03-29 01:00")
        );
        assert_eq!(
            instant(naive("2026-03-29 03:01"), berlin),
            utc("2026-03-29 01:01")
        );
        // New York: 2026-03-08 02:00 EST became 03:00 EDT (07:00 UTC).
        let new_york = chrono_tz::America::New_York;
        assert_eq!(
            instant(naive("2026-03-08 02:15"), new_york),
            utc("2026-03-08 07:00")
        );
    }

    #[test]
    fn a_repeated_local_time_takes_its_first_instant() {
        // Berlin: 2026-10-25 03:00 CEST went back to 02:00 CET; 02:30 happened twice.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            instant(naive("2026-10-25 02:30"), berlin),
            utc("2026-10-25 00:30")
        );
        assert_eq!(
            instant(naive("2026-10-25 03:00"), berlin),
            utc("2026-10-25 02:00")
        );
        // New York: 2026-11-01 02:00 EDT went back to 01:00 EST.
        let new_york = chrono_tz::America::New_York;
        assert_eq!(
            instant(naive("2026-11-01 01:30"), new_york),
            utc("2026-11-01 05:30")
        );
        assert_eq!(
            instant(naive("2026-11-01 02:00"), new_york),
            utc("2026-11-01 07:00")
        );
    }

    #[test]
    fn later_local_times_never_give_earlier_instants() {
        for zone in [
            chrono_tz::Europe::Berlin,
            chrono_tz::America::New_York,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Tbilisi,
        ] {
            for start in [
                "2026-03-07 00:00",
                "2026-03-28 00:00",
                "2026-10-03 00:00",
                "2026-10-24 00:00",
                "2026-10-31 00:00",
            ] {
                let mut previous = instant(naive(start), zone);
                for minutes in 1..(3 * 24 * 60) {
                    let next = instant(naive(start) + TimeDelta::minutes(minutes), zone);
                    assert!(next >= previous, "{zone} {start} +{minutes}m");
                    previous = next;
                }
            }
        }
    }

    #[test]
    fn tbilisi_has_no_daylight_saving() {
        let tbilisi = chrono_tz::Asia::Tbilisi;
        for day in ["2026-03-29 02:30", "2026-10-25 02:30", "2026-06-01 12:00"] {
            assert_eq!(
                instant(naive(day), tbilisi),
                naive(day).and_utc() - TimeDelta::hours(4)
            );
        }
    }
}
