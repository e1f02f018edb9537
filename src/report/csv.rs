//! A report as CSV that a spreadsheet opens as it is: UTF-8 with a byte-order mark (so
//! Excel reads Georgian names as UTF-8, not as the locale's code page), CRLF line ends,
//! a header row, quoting by the `csv` crate. Durations in seconds, availability in
//! percent; an empty cell where a figure has no value (no judged time, no outage).

use super::group::{GroupBy, Row};

/// Excel's cue that the file is UTF-8.
pub const BOM: &str = "\u{feff}";

/// The header and one line per row.
pub fn write(by: &GroupBy, rows: &[Row]) -> Vec<u8> {
    let mut out = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(BOM.as_bytes().to_vec());
    let group = by.name();
    let header = [
        group.as_str(),
        "region",
        "branch",
        "kind",
        "devices",
        "availability_percent",
        "downtime_seconds",
        "unreachable_seconds",
        "maintenance_seconds",
        "unmonitored_seconds",
        "outages",
        "mttr_seconds",
        "mtbf_seconds",
        "longest_outage_seconds",
        "sla_target_percent",
        "sla_met",
        "devices_breached",
    ];
    // Writing to a Vec cannot fail.
    out.write_record(header).expect("in memory");
    for r in rows {
        let t = &r.totals;
        let record = [
            r.key.clone(),
            r.region.clone(),
            r.branch.clone(),
            r.kind.clone(),
            r.devices.to_string(),
            t.availability().map(percent).unwrap_or_default(),
            seconds(t.down),
            seconds(t.unreachable),
            seconds(t.maintenance),
            seconds(t.unmonitored),
            t.outages.to_string(),
            t.mttr().map(seconds).unwrap_or_default(),
            t.mtbf().map(seconds).unwrap_or_default(),
            seconds(t.longest_outage),
            r.sla.target.map(|t| t.to_string()).unwrap_or_default(),
            match r.sla.met() {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => String::new(),
            },
            r.sla.breached.to_string(),
        ];
        out.write_record(&record).expect("in memory");
    }
    out.into_inner().expect("in memory")
}

/// Microseconds as seconds, exact: `90`, `90.5`, `0.000001`.
pub fn seconds(micros: i64) -> String {
    let (s, us) = (micros / 1_000_000, (micros % 1_000_000).abs());
    if us == 0 {
        return s.to_string();
    }
    let sign = if micros < 0 && s == 0 { "-" } else { "" };
    let frac = format!("{us:06}");
    format!("{sign}{s}.{}", frac.trim_end_matches('0'))
}

/// A percentage to six decimals (99.999999: a second in eleven days).
fn percent(p: f64) -> String {
    format!("{p:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(90_000_000), "90");
        assert_eq!(seconds(90_500_000), "90.5");
        assert_eq!(seconds(1), "0.000001");
        assert_eq!(seconds(0), "0");
    }
}
