//! The ranges a device page offers (`?range=1h|6h|24h|7d|30d`) and the query step of
//! each: a few hundred points per chart, whatever the range.

use chrono::TimeDelta;

/// One of the device page's ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    H1,
    H6,
    H24,
    D7,
    D30,
}

impl Range {
    /// Every range, in the order the page lists them.
    pub const ALL: [Range; 5] = [Range::H1, Range::H6, Range::H24, Range::D7, Range::D30];

    /// The range of a `range=` query value; None for anything else.
    pub fn parse(text: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.key() == text)
    }

    /// As written in the query: `24h`.
    pub fn key(self) -> &'static str {
        match self {
            Range::H1 => "1h",
            Range::H6 => "6h",
            Range::H24 => "24h",
            Range::D7 => "7d",
            Range::D30 => "30d",
        }
    }

    /// As the page writes it: `24 h`.
    pub fn label(self) -> &'static str {
        match self {
            Range::H1 => "1 h",
            Range::H6 => "6 h",
            Range::H24 => "24 h",
            Range::D7 => "7 d",
            Range::D30 => "30 d",
        }
    }

    pub fn length(self) -> TimeDelta {
        match self {
            Range::H1 => TimeDelta::hours(1),
            Range::H6 => TimeDelta::hours(6),
            Range::H24 => TimeDelta::hours(24),
            Range::D7 => TimeDelta::days(7),
            Range::D30 => TimeDelta::days(30),
        }
    }

    /// The `query_range` step: 240 to 360 points per chart, each a round duration so
    /// that points fall on the same instants from one page load to the next.
    pub fn step(self) -> TimeDelta {
        match self {
            Range::H1 => TimeDelta::seconds(15),
            Range::H6 => TimeDelta::minutes(1),
            Range::H24 => TimeDelta::minutes(5),
            Range::D7 => TimeDelta::minutes(30),
            Range::D30 => TimeDelta::hours(2),
        }
    }

    /// The window each point summarises (`avg_over_time`, `increase`): the step, but at
    /// least a minute, so that every window holds several scrapes whatever the scrape
    /// interval (Prometheus needs two samples inside a window; VictoriaMetrics less).
    pub fn window(self) -> TimeDelta {
        self.step().max(TimeDelta::minutes(1))
    }

    /// Time between two labelled ticks of the time axis.
    pub fn tick(self) -> TimeDelta {
        match self {
            Range::H1 => TimeDelta::minutes(10),
            Range::H6 => TimeDelta::hours(1),
            Range::H24 => TimeDelta::hours(3),
            Range::D7 => TimeDelta::days(1),
            Range::D30 => TimeDelta::days(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_reads_back_and_has_a_few_hundred_points() {
        for r in Range::ALL {
            assert_eq!(Range::parse(r.key()), Some(r));
            let points = r.length().num_seconds() / r.step().num_seconds();
            assert!((200..=400).contains(&points), "{r:?}: {points}");
            assert!(r.window() >= r.step());
        }
        assert_eq!(Range::parse("2h"), None);
        assert_eq!(Range::parse("24H"), None);
    }
}
