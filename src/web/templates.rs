//! The minijinja environment: every template from `templates/` compiled into the
//! binary, autoescaped (the `.html` names turn HTML escaping on), plus two helpers that
//! format times from the RFC 3339 strings the views carry.

use chrono::{DateTime, Utc};
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
        env.add_function("ago", ago);
        Templates { env }
    }

    /// Renders `name` with `ctx`; an error is a bug in a template or a view.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `2026-03-01 14:05:09 UTC`: the page is rendered in UTC; the script shows local time.
fn time(t: Option<String>) -> String {
    match t.as_deref().and_then(parse) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => "—".into(),
    }
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
    fn every_template_compiles() {
        let t = Templates::new();
        for (name, _) in TEMPLATES {
            assert!(t.env.get_template(name).is_ok(), "{name}");
        }
    }
}
