//! The minijinja environment: every template from `templates/` compiled into the
//! binary, autoescaped (the `.html` names turn HTML escaping on), plus the helpers that
//! format times from the RFC 3339 strings the views carry: `time` in the display zone
//! (`web.display_zone`, the page's `zone`) with its offset, `utc` for the hover text,
//! `ago` for durations.

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use minijinja::{Environment, Value};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    ("monitor.html", include_str!("../../templates/monitor.html")),
    ("device.html", include_str!("../../templates/device.html")),
    ("alerts.html", include_str!("../../templates/alerts.html")),
    ("wall.html", include_str!("../../templates/wall.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("reports.html", include_str!("../../templates/reports.html")),
    (
        "infrastructure.html",
        include_str!("../../templates/infrastructure.html"),
    ),
];

pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e:#}"));
        }
        env.add_function("time", time);
        env.add_function("hms", hms);
        env.add_function("utc", utc);
        env.add_function("ago", ago);
        // `branch={{ b.name|exact|urlencode }}`: a link to one branch matches it exactly
        // (a bare value is a substring: `vake` would also list `vake-2`).
        env.add_filter("exact", |s: String| {
            crate::read_model::TextFilter::exact(&s).written
        });
        env.add_filter("bps", bps);
        Templates { env }
    }

    /// Renders `name` with `ctx`; an error is a bug in a template or a view.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// A line's rate as `12.3 Mbit/s`; `—` when there is none yet.
fn bps(v: Option<f64>) -> String {
    let Some(v) = v else { return "—".into() };
    let (scaled, unit) = [(1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")]
        .into_iter()
        .find(|(f, _)| v >= *f)
        .map_or((v, "bit/s"), |(f, u)| (v / f, u));
    format!("{scaled:.1} {unit}")
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The page's display zone (`zone` in its context, as [`super::view::Common`] sets it);
/// UTC when it has none or an unknown one.
fn zone(state: &minijinja::State) -> Tz {
    state
        .lookup("zone")
        .and_then(|v| v.as_str().and_then(|z| z.parse::<Tz>().ok()))
        .unwrap_or(Tz::UTC)
}

/// `2026-03-01 14:05:09 +04`: in the page's display zone, with its offset.
fn time(state: &minijinja::State, t: Option<String>) -> String {
    match t.as_deref().and_then(parse) {
        Some(t) => local_time(t, zone(state)),
        None => "—".into(),
    }
}

/// `14:05:09 +04`: the time of day only (the header clock, "data as of").
fn hms(state: &minijinja::State, t: Option<String>) -> String {
    match t.as_deref().and_then(parse) {
        Some(t) => local_clock(t, zone(state)),
        None => "—".into(),
    }
}

/// `2026-03-01 10:05:09 UTC`: the same instant in UTC (the title on hover).
fn utc(t: Option<String>) -> String {
    match t.as_deref().and_then(parse) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => "—".into(),
    }
}

/// `+04`, `+05:30`, `-03`, `+00`: a zone's offset at one instant, as short as it reads.
pub fn offset(t: DateTime<Utc>, zone: Tz) -> String {
    let secs = zone
        .offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let m = secs.unsigned_abs() / 60;
    if m.is_multiple_of(60) {
        format!("{sign}{:02}", m / 60)
    } else {
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

/// `2026-03-01 14:05:09 +04`.
pub fn local_time(t: DateTime<Utc>, zone: Tz) -> String {
    format!(
        "{} {}",
        t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S"),
        offset(t, zone)
    )
}

/// `14:05:09 +04`.
pub fn local_clock(t: DateTime<Utc>, zone: Tz) -> String {
    format!(
        "{} {}",
        t.with_timezone(&zone).format("%H:%M:%S"),
        offset(t, zone)
    )
}

/// How long ago `t` was, as of the page's `now`: `1h 03m`.
fn ago(state: &minijinja::State, t: Option<String>) -> String {
    let now = state
        .lookup("now")
        .and_then(|v| v.as_str().and_then(parse))
        .unwrap_or_else(Utc::now);
    match t.as_deref().and_then(parse) {
        Some(t) => duration((now - t).num_seconds()),
        None => String::new(),
    }
}

/// `42s`, `5m 07s`, `1h 03m`, `2d 04h`: two units, the way a wall reads at a glance.
/// The script formats the same way (`static/app.js`, `fmtDuration`).
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(-3), "0s");
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(307), "5m 07s");
        assert_eq!(duration(3780), "1h 03m");
        assert_eq!(duration(2 * 86_400 + 4 * 3600 + 5), "2d 04h");
    }

    #[test]
    fn times_read_in_the_display_zone_with_their_offset() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T10:05:09.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(local_time(t, Tz::Asia__Tbilisi), "2026-03-01 14:05:09 +04");
        assert_eq!(local_clock(t, Tz::Asia__Tbilisi), "14:05:09 +04");
        assert_eq!(local_time(t, Tz::UTC), "2026-03-01 10:05:09 +00");
        assert_eq!(local_clock(t, Tz::Asia__Kolkata), "15:35:09 +05:30");
        assert_eq!(local_clock(t, Tz::America__Sao_Paulo), "07:05:09 -03");
        // Across midnight the date is the zone's.
        let late = DateTime::parse_from_rfc3339("2026-03-01T22:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            local_time(late, Tz::Asia__Tbilisi),
            "2026-03-02 02:30:00 +04"
        );
        // Summer time: the offset is the one of that instant.
        let summer = DateTime::parse_from_rfc3339("2026-07-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(local_clock(summer, Tz::Europe__Berlin), "14:00:00 +02");
        assert_eq!(local_clock(t, Tz::Europe__Berlin), "11:05:09 +01");
    }

    #[test]
    fn template_times_use_the_page_zone_and_utc_on_hover() {
        let t = Templates::new();
        let mut env = t.env.clone();
        env.add_template(
            "t.html",
            "{{ time(x) }}|{{ hms(x) }}|{{ utc(x) }}|{{ time(bad) }}",
        )
        .unwrap();
        let out = env
            .get_template("t.html")
            .unwrap()
            .render(minijinja::context! { zone => "Asia/Tbilisi", x => "2026-03-01T10:05:09Z", bad => "nope" })
            .unwrap();
        assert_eq!(
            out,
            "2026-03-01 14:05:09 +04|14:05:09 +04|2026-03-01 10:05:09 UTC|—"
        );
        // No zone, or one that does not exist: UTC.
        let out = env
            .get_template("t.html")
            .unwrap()
            .render(minijinja::context! { zone => "Mars/Olympus", x => "2026-03-01T10:05:09Z" })
            .unwrap();
        assert!(out.starts_with("2026-03-01 10:05:09 +00|"), "{out}");
    }

    #[test]
    fn every_template_compiles() {
        let t = Templates::new();
        for (name, _) in TEMPLATES {
            assert!(t.env.get_template(name).is_ok(), "{name}");
        }
    }
}
