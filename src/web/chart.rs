//! Server-drawn SVG: the branch map here, a device's history chart in [`history`].
//! Every text that reaches the markup is escaped here, since the result is inserted into
//! templates as safe HTML.

pub mod history;

use std::fmt::Write as _;

use super::view::escape;

/// A round axis top at or above `v`: 1, 2, 5 × 10^n.
fn nice(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
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
    fn axis_tops_are_round() {
        assert_eq!(nice(3.2), 5.0);
        assert_eq!(nice(0.7), 1.0);
    }
}
