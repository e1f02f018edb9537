//! How every surface writes a time: RFC 3339 in UTC with milliseconds and a `Z`
//! (`2026-11-28T20:06:10.123Z`), by chrono (design rule: no naive timestamps; local time
//! only when rendering, in the browser).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// `t` as the API and the pages write it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes many times as [`rfc3339`] into one buffer, as the device list does (three per
/// device, tens of thousands per response). chrono formats each distinct second once; the
/// 19 bytes of date and time it wrote are kept in a small direct-mapped cache, so a list
/// whose devices were probed within the same few seconds costs a copy and three digits
/// per time instead of a `String` each (about 20% of the list's encoding otherwise).
pub struct TimeWriter {
    seconds: [Option<(i64, [u8; 19])>; 64],
}

impl Default for TimeWriter {
    fn default() -> Self {
        TimeWriter {
            seconds: [None; 64],
        }
    }
}

impl TimeWriter {
    /// Appends `t` as [`rfc3339`] writes it.
    pub fn write(&mut self, out: &mut Vec<u8>, t: DateTime<Utc>) {
        let millis = t.timestamp_subsec_millis();
        // A leap second (millis >= 1000) is chrono's to write.
        if millis >= 1000 {
            out.extend_from_slice(rfc3339(t).as_bytes());
            return;
        }
        let second = t.timestamp();
        let entry = &mut self.seconds[second.rem_euclid(64) as usize];
        let prefix = match entry {
            Some((s, prefix)) if *s == second => prefix,
            _ => {
                let text = t.to_rfc3339_opts(SecondsFormat::Secs, true);
                // Years 0000..=9999 only: chrono writes a sign beyond them.
                let Some(prefix) = text
                    .as_bytes()
                    .get(..19)
                    .and_then(|p| <[u8; 19]>::try_from(p).ok())
                    .filter(|_| text.len() == 20)
                else {
                    out.extend_from_slice(rfc3339(t).as_bytes());
                    return;
                };
                &mut entry.insert((second, prefix)).1
            }
        };
        out.extend_from_slice(prefix);
        let digits = [
            b'.',
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
            b'Z',
        ];
        out.extend_from_slice(&digits);
    }
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

    #[test]
    fn the_writer_writes_what_chrono_writes_hits_misses_and_collisions_alike() {
        let mut writer = TimeWriter::default();
        let mut times = Vec::new();
        // Same second repeated, seconds 64 apart (one cache entry), the far past and
        // future, every millisecond digit pattern.
        for i in 0..5_000i64 {
            let secs = match i % 5 {
                0 => 1_800_000_000,
                1 => 1_800_000_000 + 64 * (i % 7),
                2 => -62_135_596_800 + i,
                3 => 253_402_300_799 - i,
                _ => 1_800_000_000 + i * 37,
            };
            times.push(
                Utc.timestamp_opt(secs, ((i * 7_919) % 1_000) as u32 * 1_000_000 + 123)
                    .unwrap(),
            );
        }
        times.push(Utc.timestamp_opt(253_402_300_800, 0).unwrap()); // year 10000
        for t in times {
            let mut out = Vec::new();
            writer.write(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), rfc3339(t), "{t:?}");
        }
    }
}
