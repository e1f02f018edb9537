//! The device page's history chart: two stacked panels on one time axis — RTT (a line,
//! its ms axis on the left) above loss (bars, its own 0–100 % axis on the right) — with
//! the outages from the store's transitions shaded across both, and time labels in the
//! display zone. Whatever the source (VictoriaMetrics or the hour in memory), the same
//! drawing; the `<svg>` says which in `data-source` and how many points it drew in
//! `data-points`.

use std::fmt::Write as _;

use chrono::{DateTime, Offset as _, TimeDelta, TimeZone as _, Utc};
use chrono_tz::Tz;

use super::super::templates::{duration, local_time, offset};
use super::super::view::escape;
use super::nice;
use crate::history::Span;

const W: f64 = 960.0;
const H: f64 = 260.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 48.0;
/// RTT panel, top to bottom.
const RTT: (f64, f64) = (14.0, 150.0);
/// Loss panel, top to bottom, below the RTT one with a gap for its label.
const LOSS: (f64, f64) = (172.0, 232.0);

/// What one chart shows.
pub struct Drawing<'a> {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Two points further apart than this have a gap between them.
    pub step: TimeDelta,
    /// Between two labelled ticks of the time axis.
    pub tick: TimeDelta,
    pub rtt_ms: &'a [(DateTime<Utc>, f64)],
    pub loss_percent: &'a [(DateTime<Utc>, f64)],
    pub outages: Vec<Span>,
    pub zone: Tz,
    /// `victoriametrics` or `memory`.
    pub source: &'static str,
    /// `24h`, for `data-range`.
    pub range: &'static str,
}

impl Drawing<'_> {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let total = (self.end - self.start).num_milliseconds().max(1) as f64;
        let frac = (t - self.start).num_milliseconds() as f64 / total;
        PAD_L + frac.clamp(0.0, 1.0) * (W - PAD_L - PAD_R)
    }

    /// The SVG.
    pub fn svg(&self) -> String {
        let points = self.rtt_ms.len() + self.loss_percent.len();
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg class="chart history" viewBox="0 0 {W} {H}" role="img" data-source="{}" data-range="{}" data-points="{points}" data-outages="{}" aria-label="RTT in ms and loss in %, with outages shaded"><title>RTT (line, ms, left axis), loss (bars, %, right axis); outages shaded</title>"#,
            self.source,
            self.range,
            self.outages.len()
        );
        self.bands(&mut svg);
        self.rtt(&mut svg);
        self.loss(&mut svg);
        self.time_axis(&mut svg);
        let _ = write!(
            svg,
            r#"<text class="legend" x="{PAD_L}" y="10">— RTT (ms)</text><text class="legend" x="{PAD_L}" y="{:.0}">▮ loss (%)</text><text class="legend legend-band" x="{:.0}" y="10" text-anchor="end">▒ outage (from the transitions)</text></svg>"#,
            LOSS.0 - 5.0,
            W - PAD_R
        );
        svg
    }

    fn bands(&self, svg: &mut String) {
        for s in &self.outages {
            let (x0, x1) = (self.x(s.from), self.x(s.to));
            let title = format!(
                "{} {} – {} ({})",
                s.status.as_str(),
                local_time(s.from, self.zone),
                local_time(s.to, self.zone),
                duration((s.to - s.from).num_seconds())
            );
            // A short outage stays visible at 30 days: at least 2 px wide.
            let _ = write!(
                svg,
                r#"<rect class="band band-{}" x="{x0:.1}" y="{}" width="{:.1}" height="{}" data-from="{}" data-to="{}"><title>{}</title></rect>"#,
                s.status.as_str(),
                RTT.0,
                (x1 - x0).max(2.0),
                LOSS.1 - RTT.0,
                s.from.timestamp(),
                s.to.timestamp(),
                escape(&title)
            );
        }
    }

    fn rtt(&self, svg: &mut String) {
        let max = self.rtt_ms.iter().map(|p| p.1).fold(0.0_f64, f64::max);
        // A round axis top: 1, 2, 5 × 10^n ms.
        let top = nice(max.max(1.0));
        let y = |ms: f64| RTT.1 - (RTT.1 - RTT.0) * (ms / top).clamp(0.0, 1.0);
        for frac in [0.0, 0.5, 1.0] {
            let yy = y(top * frac);
            let _ = write!(
                svg,
                r#"<line class="grid" x1="{PAD_L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}"/><text class="axis axis-rtt" x="{}" y="{:.1}" text-anchor="end">{} ms</text>"#,
                W - PAD_R,
                PAD_L - 4.0,
                yy + 4.0,
                fmt_ms(top * frac)
            );
        }
        let mut path = String::new();
        let mut last: Option<DateTime<Utc>> = None;
        let mut alone = false;
        for &(t, ms) in self.rtt_ms {
            // A gap in the data is a gap in the line; a point between two gaps is a
            // dash, not nothing.
            let joined = last.is_some_and(|l| t - l <= self.step * 2);
            if !joined && alone {
                path.push_str("h2");
            }
            let cmd = if joined { 'L' } else { 'M' };
            let _ = write!(path, "{cmd}{:.1},{:.1}", self.x(t), y(ms));
            alone = !joined;
            last = Some(t);
        }
        if alone {
            path.push_str("h2");
        }
        if !path.is_empty() {
            let _ = write!(svg, r#"<path class="rtt" d="{path}"/>"#);
        }
    }

    fn loss(&self, svg: &mut String) {
        let y = |pct: f64| LOSS.1 - (LOSS.1 - LOSS.0) * (pct / 100.0).clamp(0.0, 1.0);
        for pct in [0.0, 50.0, 100.0] {
            let yy = y(pct);
            let _ = write!(
                svg,
                r#"<line class="grid" x1="{PAD_L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}"/><text class="axis axis-loss" x="{}" y="{:.1}" text-anchor="start">{pct:.0} %</text>"#,
                W - PAD_R,
                W - PAD_R + 4.0,
                yy + 4.0
            );
        }
        let width = (self.x(self.start + self.step) - self.x(self.start) - 0.5).max(1.0);
        for &(t, pct) in self.loss_percent {
            if pct <= 0.0 {
                continue;
            }
            let top = y(pct);
            let _ = write!(
                svg,
                r#"<rect class="loss" x="{:.1}" y="{top:.1}" width="{width:.1}" height="{:.1}"><title>{} loss {pct:.1} %</title></rect>"#,
                self.x(t) - width / 2.0,
                LOSS.1 - top,
                escape(&local_time(t, self.zone))
            );
        }
    }

    /// Ticks at round local times (every `tick` of the zone's clock at the start: a
    /// DST change inside a month shifts the later ticks by its hour, their labels stay
    /// true), labelled `14:00` within a day and `02 Dec` beyond.
    fn time_axis(&self, svg: &mut String) {
        let tick = self.tick.num_seconds().max(60);
        let off = i64::from(
            self.zone
                .offset_from_utc_datetime(&self.start.naive_utc())
                .fix()
                .local_minus_utc(),
        );
        let local = self.start.timestamp() + off;
        let mut t = (local.div_euclid(tick) + 1) * tick - off;
        let format = if tick >= 86_400 { "%d %b" } else { "%H:%M" };
        while t < self.end.timestamp() {
            let at = DateTime::from_timestamp(t, 0).unwrap_or(self.end);
            let x = self.x(at);
            let _ = write!(
                svg,
                r#"<line class="grid tick" x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}"/><text class="axis axis-time" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                LOSS.1,
                LOSS.1 + 4.0,
                H - 12.0,
                at.with_timezone(&self.zone).format(format)
            );
            t += tick;
        }
        let _ = write!(
            svg,
            r#"<text class="axis axis-zone" x="{}" y="{}" text-anchor="end">{} {}</text>"#,
            W - PAD_R,
            H - 1.0,
            escape(self.zone.name()),
            offset(self.end, self.zone)
        );
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn two_axes_bands_and_local_ticks() {
        let rtt = [(t(60), 1.5), (t(75), 2.5), (t(900), 3.0)];
        let loss = [(t(60), 0.0), (t(600), 100.0)];
        let d = Drawing {
            start: t(0),
            end: t(3600),
            step: TimeDelta::seconds(15),
            tick: TimeDelta::minutes(10),
            rtt_ms: &rtt,
            loss_percent: &loss,
            outages: vec![Span {
                from: t(500),
                to: t(700),
                status: Status::Down,
            }],
            zone: chrono_tz::Asia::Kolkata,
            source: "victoriametrics",
            range: "1h",
        };
        let svg = d.svg();
        assert!(svg.contains(r#"data-source="victoriametrics""#), "{svg}");
        assert!(svg.contains(r#"data-points="5""#), "{svg}");
        assert!(svg.contains(r#"data-outages="1""#), "{svg}");
        assert!(
            svg.contains("axis-rtt") && svg.contains(">5.0 ms<"),
            "{svg}"
        );
        assert!(
            svg.contains("axis-loss") && svg.contains(">100 %<"),
            "{svg}"
        );
        assert!(svg.contains(r#"class="band band-down""#), "{svg}");
        // The 15 s neighbours are joined; the one 825 s later starts a new line.
        let path = svg.split(r#"class="rtt" d=""#).nth(1).unwrap();
        let path = path.split('"').next().unwrap();
        assert_eq!(path, "M70.3,109.2L73.8,82.0M270.0,68.4h2");
        // 1_800_000_000 is 08:00 UTC, 13:30 in Kolkata (+05:30): ticks at 13:40, 13:50 …
        assert!(svg.contains(">13:40<") && svg.contains(">14:20<"), "{svg}");
        assert!(svg.contains("Asia&#x2f;Kolkata +05:30"), "{svg}");
        assert!(svg.contains("down 2027-01-15 13:38:20 +05:30"), "{svg}");
    }
}
