//! Server-drawn SVG: a device's last hour (RTT line over loss bars) and the branch map.
//! Every text that reaches the markup is escaped here, since the result is inserted into
//! templates as safe HTML.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::view::escape;
use crate::read_model::history::Point;

const W: f64 = 720.0;
const H: f64 = 180.0;
const PAD_L: f64 = 48.0;
const PAD_B: f64 = 22.0;

/// RTT (line, left axis in ms) and loss (bars, 0–100 %) per minute of the last hour.
pub fn device_chart(series: &[(DateTime<Utc>, Point)], now: DateTime<Utc>) -> String {
    let rtts: Vec<f64> = series.iter().filter_map(|(_, p)| p.rtt_ms()).collect();
    if series.is_empty()
        || (rtts.is_empty() && series.iter().all(|(_, p)| p.loss_percent().is_none()))
    {
        // A sentence, not an empty frame the size of a chart.
        return r#"<p class="no-chart">No measurements yet: the chart gains one point per minute of probing.</p>"#.into();
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="RTT and loss, last hour, per minute"><title>RTT (line) and loss (bars), last hour</title>"#
    );
    let max_rtt = rtts.iter().cloned().fold(0.0_f64, f64::max).max(1.0);
    // A round axis top: 1, 2, 5 × 10^n ms.
    let top = nice(max_rtt);
    let plot_w = W - PAD_L - 8.0;
    let plot_h = H - PAD_B - 8.0;
    let start = now - chrono::TimeDelta::minutes(60);
    let x = |t: DateTime<Utc>| {
        PAD_L + ((t - start).num_seconds() as f64 / 3600.0).clamp(0.0, 1.0) * plot_w
    };
    let y = |ms: f64| 8.0 + plot_h * (1.0 - ms / top);
    for frac in [0.0, 0.5, 1.0] {
        let yy = y(top * frac);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{PAD_L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{} ms</text>"#,
            W - 8.0,
            PAD_L - 4.0,
            yy + 4.0,
            fmt_ms(top * frac)
        );
    }
    let bar_w = plot_w / 60.0;
    for (t, p) in series {
        if let Some(loss) = p.loss_percent().filter(|l| *l > 0) {
            let hgt = plot_h * f64::from(loss) / 100.0;
            let _ = write!(
                svg,
                r#"<rect class="loss" x="{:.1}" y="{:.1}" width="{:.1}" height="{hgt:.1}"><title>{} loss {loss}%</title></rect>"#,
                x(*t),
                8.0 + plot_h - hgt,
                (bar_w - 1.0).max(1.0),
                t.format("%H:%M")
            );
        }
    }
    let mut path = String::new();
    for (t, p) in series {
        match p.rtt_ms() {
            Some(ms) => {
                let cmd = if path.is_empty() || path.ends_with(' ') {
                    'M'
                } else {
                    'L'
                };
                let _ = write!(path, "{cmd}{:.1},{:.1}", x(*t) + bar_w / 2.0, y(ms));
            }
            // A gap in the data is a gap in the line.
            None if !path.is_empty() && !path.ends_with(' ') => path.push(' '),
            None => {}
        }
    }
    if !path.is_empty() {
        let _ = write!(svg, r#"<path class="rtt" d="{}"/>"#, path.trim());
    }
    for (label, t) in [
        ("−60 min", start),
        ("−30 min", now - chrono::TimeDelta::minutes(30)),
        ("now", now),
    ] {
        let anchor = if label == "now" { "end" } else { "start" };
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{}" text-anchor="{anchor}">{label}</text>"#,
            x(t),
            H - 6.0
        );
    }
    svg.push_str(r#"<text class="legend" x="60" y="20">— RTT   ▮ loss %</text></svg>"#);
    svg
}

fn nice(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

fn fmt_ms(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// One branch on the map.
pub struct Pin<'a> {
    pub region: &'a str,
    pub branch: &'a str,
    pub lat: f64,
    pub lon: f64,
    pub down: usize,
    /// Not answering because their parents are out: counted apart from `down`, as
    /// much out of service as a down device on the ground.
    pub unreachable: usize,
    pub total: usize,
}

/// Branches with coordinates on an equirectangular projection fitted to their bounding
/// box: no tiles, no internet. A branch with a device down is a larger, labelled ▼; one
/// whose devices are only unreachable (its gateway behind a down core) a labelled ⊘, so
/// a dark branch never reads as "all up".
pub fn map(pins: &[Pin]) -> Option<String> {
    if pins.is_empty() {
        return None;
    }
    let (mw, mh, pad) = (720.0, 360.0, 30.0);
    let lat0 = pins.iter().map(|p| p.lat).fold(f64::MAX, f64::min);
    let lat1 = pins.iter().map(|p| p.lat).fold(f64::MIN, f64::max);
    let lon0 = pins.iter().map(|p| p.lon).fold(f64::MAX, f64::min);
    let lon1 = pins.iter().map(|p| p.lon).fold(f64::MIN, f64::max);
    // Longitude degrees shrink with latitude; keep the map's aspect honest.
    let k = ((lat0 + lat1) / 2.0).to_radians().cos().max(0.1);
    let span_x = ((lon1 - lon0) * k).max(0.01);
    let span_y = (lat1 - lat0).max(0.01);
    let scale = ((mw - 2.0 * pad) / span_x).min((mh - 2.0 * pad) / span_y);
    let mut svg = format!(
        r#"<svg class="map" viewBox="0 0 {mw} {mh}" role="img" aria-label="branches by location"><title>Branches by location</title><rect class="map-bg" width="{mw}" height="{mh}"/>"#
    );
    let mut sorted: Vec<&Pin> = pins.iter().collect();
    // Branches not answering drawn last, on top; down above unreachable.
    sorted.sort_by_key(|p| (p.down > 0, p.unreachable > 0));
    for p in sorted {
        let x = pad + (p.lon - lon0) * k * scale + (mw - 2.0 * pad - span_x * scale) / 2.0;
        let y = pad + (lat1 - p.lat) * scale + (mh - 2.0 * pad - span_y * scale) / 2.0;
        let name = escape(&format!("{} / {}", p.region, p.branch));
        let href = format!(
            "/monitor?region={}&amp;branch={}",
            escape(&form_urlencoded::byte_serialize(p.region.as_bytes()).collect::<String>()),
            escape(
                &form_urlencoded::byte_serialize(
                    crate::read_model::TextFilter::exact(p.branch)
                        .written
                        .as_bytes()
                )
                .collect::<String>()
            )
        );
        if p.down > 0 || p.unreachable > 0 {
            // Labels on the right half go to the left of their pin, so none is clipped.
            let (lx, anchor) = if x > mw * 0.6 {
                (x - 10.0, "end")
            } else {
                (x + 10.0, "start")
            };
            let (shape, symbol) = if p.down > 0 {
                (
                    format!(
                        r#"<path class="pin pin-down" d="M{x:.1},{:.1} l7,-12 h-14 z"/>"#,
                        y + 6.0
                    ),
                    "▼",
                )
            } else {
                (
                    format!(
                        r#"<circle class="pin pin-unreachable" cx="{x:.1}" cy="{y:.1}" r="6"/>"#
                    ),
                    "⊘",
                )
            };
            let counts = match (p.down, p.unreachable) {
                (d, 0) => format!("{d}/{}", p.total),
                (0, u) => format!("{u} unreachable/{}", p.total),
                (d, u) => format!("{d} down, {u} unreachable/{}", p.total),
            };
            let _ = write!(
                svg,
                r#"<a href="{href}">{shape}<text class="pin-label{}" x="{lx:.1}" y="{:.1}" text-anchor="{anchor}">{symbol} {} ({counts})</text><title>{name}: {} down, {} unreachable of {}</title></a>"#,
                if p.down > 0 {
                    ""
                } else {
                    " pin-label-unreachable"
                },
                y + 4.0,
                escape(p.branch),
                p.down,
                p.unreachable,
                p.total
            );
        } else {
            let _ = write!(
                svg,
                r#"<a href="{href}"><circle class="pin pin-up" cx="{x:.1}" cy="{y:.1}" r="4"/><title>{name}: all {} up or unknown</title></a>"#,
                p.total
            );
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_escapes_names_and_marks_down_branches() {
        let pins = [
            Pin {
                region: "r",
                branch: "<b>",
                lat: 41.7,
                lon: 44.8,
                down: 1,
                unreachable: 0,
                total: 3,
            },
            Pin {
                region: "r",
                branch: "ok",
                lat: 41.6,
                lon: 41.6,
                down: 0,
                unreachable: 0,
                total: 2,
            },
        ];
        let svg = map(&pins).unwrap();
        assert!(svg.contains("▼ &lt;b&gt; (1/3)"), "{svg}");
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn map_counts_unreachable_devices_as_not_answering() {
        let pin = |branch, down, unreachable| Pin {
            region: "r",
            branch,
            lat: 41.7,
            lon: 44.8,
            down,
            unreachable,
            total: 8,
        };
        // A dark branch: its gateway down, the rest unreachable behind it.
        let svg = map(&[pin("dark", 1, 7)]).unwrap();
        assert!(svg.contains("pin-down"), "{svg}");
        assert!(svg.contains("▼ dark (1 down, 7 unreachable/8)"), "{svg}");
        assert!(svg.contains("dark: 1 down, 7 unreachable of 8"), "{svg}");
        // Behind a down core, with nothing down of its own: not "all up".
        let svg = map(&[pin("behind", 0, 8)]).unwrap();
        assert!(svg.contains("pin-unreachable"), "{svg}");
        assert!(svg.contains("⊘ behind (8 unreachable/8)"), "{svg}");
        assert!(
            !svg.contains("pin-up") && !svg.contains("all 8 up"),
            "{svg}"
        );
    }

    #[test]
    fn chart_without_data_says_so() {
        assert!(device_chart(&[], Utc::now()).contains("No measurements yet"));
        assert_eq!(nice(3.2), 5.0);
        assert_eq!(nice(0.7), 1.0);
    }
}
