//! The answers of the last few seconds, by device and range: every open device page
//! re-reads itself on each feed event, and without this each re-read would query
//! VictoriaMetrics again (and, with it down, wait out its timeout every time). A
//! failure is kept as well as a success, for the same few seconds.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{Range, Series};

/// How long an answer is used again. Shorter than the shortest range's step (15 s), so a
/// chart is at most one point behind.
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// Answers kept at most; past it, the stale ones go, and if none is stale, all of them.
const MAX_KEPT: usize = 1024;

type Answer = Result<Series, String>;

/// Recent answers; the caller holds it behind a lock.
#[derive(Default)]
pub struct Recent {
    answers: HashMap<(String, Range), (Instant, Answer)>,
}

impl Recent {
    /// The answer for `device` over `range` if it is younger than [`FRESH_FOR`] at `now`.
    pub fn get(&self, device: &str, range: Range, now: Instant) -> Option<Answer> {
        self.answers
            .get(&(device.to_string(), range))
            .filter(|(at, _)| now.duration_since(*at) < FRESH_FOR)
            .map(|(_, a)| a.clone())
    }

    pub fn put(&mut self, device: &str, range: Range, answer: Answer, now: Instant) {
        if self.answers.len() >= MAX_KEPT {
            self.answers
                .retain(|_, (at, _)| now.duration_since(*at) < FRESH_FOR);
            if self.answers.len() >= MAX_KEPT {
                self.answers.clear();
            }
        }
        self.answers
            .insert((device.to_string(), range), (now, answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_serves_for_a_few_seconds_per_device_and_range() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        r.put("d", Range::H1, Err("refused".into()), t0);
        assert_eq!(
            r.get("d", Range::H1, t0 + Duration::from_secs(4)),
            Some(Err("refused".into()))
        );
        assert_eq!(r.get("d", Range::H1, t0 + FRESH_FOR), None, "stale");
        assert_eq!(r.get("d", Range::H24, t0), None, "another range");
        assert_eq!(r.get("e", Range::H1, t0), None, "another device");
    }

    #[test]
    fn it_never_holds_more_than_its_bound() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        for i in 0..MAX_KEPT * 3 {
            r.put(&format!("d{i}"), Range::H1, Ok(Series::default()), t0);
            assert!(r.answers.len() <= MAX_KEPT);
        }
        // Stale ones go first: a fresh one put later survives the sweep.
        let later = t0 + FRESH_FOR;
        r.put("fresh", Range::H1, Ok(Series::default()), later);
        assert!(r.get("fresh", Range::H1, later).is_some());
        assert_eq!(r.answers.len(), 1, "every stale answer swept out");
    }
}
