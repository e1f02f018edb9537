//! How every surface writes a time: RFC 3339 in UTC with milliseconds and a `Z`
//! (`2026-11-28T20:06:10.123Z`), by chrono (design rule: no naive timestamps; local time
//! only when rendering, in the browser).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// `t` as the API and the pages write it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A UTC time that serialises and displays as [`rfc3339`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub DateTime<Utc>);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&rfc3339(self.0))
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn milliseconds_and_a_z() {
        let t = |secs, nanos| Utc.timestamp_opt(secs, nanos).unwrap();
        assert_eq!(Rfc3339(t(0, 0)).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Rfc3339(t(1_800_000_000, 123_456_789)).to_string(),
            "2027-01-15T08:00:00.123Z"
        );
        assert_eq!(
            serde_json::to_string(&Rfc3339(t(253_402_300_799, 999_999_999))).unwrap(),
            "\"9999-12-31T23:59:59.999Z\""
        );
    }
}
