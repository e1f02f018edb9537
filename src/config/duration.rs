//! Human durations in configuration: `250ms`, `10s`, `5m`, `1h`, or combinations (`1m30s`).

use std::time::Duration;

/// Parses a duration such as `10s`, `200ms`, `1m30s`. A bare number is rejected so that
/// `interval: 10` can never silently mean milliseconds or seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad(text));
        }
        // Only digits: the parse fails on overflow alone.
        let number: u64 = rest[..digits].parse().map_err(|_| too_long(text))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = |per: u64| number.checked_mul(per).map(Duration::from_secs);
        let part = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(number)),
            "s" => seconds(1),
            "m" => seconds(60),
            "h" => seconds(3600),
            "" => return Err(format!("duration {text:?} needs a unit (ms, s, m or h)")),
            _ => return Err(bad(text)),
        };
        // Checked: `Duration`'s `+` panics past u64::MAX seconds (`18446744073709551615s1s`).
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| too_long(text))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn too_long(text: &str) -> String {
    format!("duration {text:?} is too long")
}

fn bad(text: &str) -> String {
    format!("{text:?} is not a duration (examples: 200ms, 10s, 5m, 1h)")
}

/// Formats a duration the way the configuration writes it (`1m30s`, `200ms`).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(parse("10").unwrap_err().contains("needs a unit"));
        assert!(parse("10 parsecs").is_err());
        assert!(parse("s").is_err());
        assert!(parse("").is_err());
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn a_duration_too_long_to_represent_is_an_error_not_a_panic() {
        for text in [
            "18446744073709551615s1s",
            "18446744073709551615h",
            "307445734561825861m",
            "99999999999999999999s",
            "18446744073709551615s1000ms",
        ] {
            assert!(parse(text).unwrap_err().contains("too long"), "{text}");
        }
        assert_eq!(
            parse("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn formats_back() {
        for text in ["200ms", "10s", "1m30s", "1h"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
