//! The `victoriametrics:` section: the VictoriaMetrics (or any Prometheus-compatible
//! query API) that scrapes this appliance, which device pages read their RTT and loss
//! history from (`crate::history`). `web.victoriametrics_url`, the older name of
//! `url`, is still read: the same checks, and an error when both are set and differ.

use std::path::Path;
use std::time::Duration;

use crate::config::duration;
use crate::config::error::{ConfigError, Place, Spanned};
use crate::config::walk::{Walk, Walker};

/// Where the device pages' history comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VictoriaMetricsSettings {
    /// Base URL of the query API (`/api/v1/query_range` is appended), no trailing `/`.
    /// None: the pages show the last hour kept in memory.
    pub url: Option<String>,
    /// How long a page waits for VictoriaMetrics before rendering without its chart.
    pub timeout: Duration,
}

impl Default for VictoriaMetricsSettings {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(5),
        }
    }
}

pub(in crate::config) const KEYS: &[&str] = &["url", "timeout"];

/// Below 100 ms a healthy VictoriaMetrics 30 days back times out; above 20 s a page
/// would wait on it longer than anyone waits for a page (and near `http` timeouts).
const TIMEOUT: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(20));

/// `victoriametrics:` as written.
#[derive(Debug, Default)]
pub(super) struct RawVictoriaMetrics {
    url: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

impl RawVictoriaMetrics {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("victoriametrics", KEYS, |w, key, name| {
            match key {
                0 => raw.url = w.optional_string(name)?,
                _ => raw.timeout = w.optional_string(name)?,
            }
            Ok(())
        })?;
        Ok(raw)
    }

    /// Resolves the section with `alias` (`web.victoriametrics_url` as written). A blank
    /// URL is none.
    pub(super) fn resolve(
        &self,
        alias: Option<&Spanned<String>>,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> VictoriaMetricsSettings {
        let mut s = VictoriaMetricsSettings::default();
        let url = checked(self.url.as_ref(), "victoriametrics.url", path, errors);
        let old = checked(alias, "web.victoriametrics_url", path, errors);
        s.url = match (url, old) {
            (Some((a, at)), Some((b, _))) if a != b => {
                let message = format!(
                    "victoriametrics.url {a:?} and web.victoriametrics_url {b:?} differ: \
                     set victoriametrics.url only (web.victoriametrics_url is its old name)"
                );
                errors.push(ConfigError::new(Place::at(path, at), message));
                None
            }
            (Some((a, _)), _) => Some(a),
            (None, b) => b.map(|(b, _)| b),
        };
        if let Some(v) = &self.timeout {
            let place = Place::at(path, v.at);
            match duration::parse(&v.value) {
                Ok(d) if d < TIMEOUT.0 || d > TIMEOUT.1 => {
                    let message = format!(
                        "victoriametrics.timeout {} is out of range (100ms to 20s)",
                        v.value
                    );
                    errors.push(ConfigError::new(place, message));
                }
                Ok(d) => s.timeout = d,
                Err(e) => errors.push(ConfigError::new(
                    place,
                    format!("victoriametrics.timeout: {e}"),
                )),
            }
        }
        s
    }
}

/// The URL of `key` without a trailing `/`, and its place, or none (blank, or wrong:
/// then its error is reported).
fn checked(
    value: Option<&Spanned<String>>,
    key: &str,
    path: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<(String, crate::config::error::Location)> {
    let v = value.filter(|u| !u.value.trim().is_empty())?;
    let url = v.value.trim();
    let problem = super::web::url_problem(url)
        .map(str::to_string)
        .or_else(|| {
            match reqwest::Url::parse(url) {
                Err(e) => Some(format!("is not a URL: {e}")),
                // The settings file lives in git: no password in it, not even in a URL.
                Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                    Some("must not hold a user name or password".into())
                }
                Ok(_) => None,
            }
        });
    match problem {
        None => Some((url.trim_end_matches('/').to_string(), v.at)),
        Some(problem) => {
            // Not the URL itself when it holds a password.
            let shown = if problem.contains("password") {
                "…".into()
            } else {
                format!("{:?}", v.value)
            };
            let message = format!("{key} {shown} {problem}");
            errors.push(ConfigError::new(Place::at(path, v.at), message));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::settings::tests::parse;

    #[test]
    fn the_url_is_read_from_either_name_and_they_must_agree() {
        let s = parse("victoriametrics:\n  url: http://vm:8428/\n  timeout: 2s\n").unwrap();
        assert_eq!(s.victoriametrics.url.as_deref(), Some("http://vm:8428"));
        assert_eq!(s.victoriametrics.timeout, Duration::from_secs(2));
        // The vmui link reads the same URL.
        assert_eq!(s.web.victoriametrics_url.as_deref(), Some("http://vm:8428"));
        let s = parse("web:\n  victoriametrics_url: https://vm.example\n").unwrap();
        assert_eq!(s.victoriametrics.url.as_deref(), Some("https://vm.example"));
        assert_eq!(s.victoriametrics.timeout, Duration::from_secs(5));
        let same = "victoriametrics:\n  url: http://vm:8428\nweb:\n  victoriametrics_url: http://vm:8428/\n";
        assert_eq!(
            parse(same).unwrap().victoriametrics.url.as_deref(),
            Some("http://vm:8428")
        );
        let differ = "victoriametrics:\n  url: http://vm:8428\nweb:\n  victoriametrics_url: http://other:8428\n";
        assert_eq!(
            parse(differ).unwrap_err(),
            "w.yaml:2:8: victoriametrics.url \"http://vm:8428\" and web.victoriametrics_url \
             \"http://other:8428\" differ: set victoriametrics.url only \
             (web.victoriametrics_url is its old name)"
        );
        assert_eq!(
            parse("victoriametrics:\n  url: ''\n")
                .unwrap()
                .victoriametrics
                .url,
            None
        );
    }

    #[test]
    fn a_bad_url_timeout_or_key_is_refused_at_its_place() {
        assert_eq!(
            parse("victoriametrics:\n  url: vm:8428\n  timeout: 1m\n").unwrap_err(),
            "w.yaml:2:8: victoriametrics.url \"vm:8428\" must start with http:// or https://\n\
             w.yaml:3:12: victoriametrics.timeout 1m is out of range (100ms to 20s)"
        );
        assert_eq!(
            parse("victoriametrics:\n  url: http://u:secret@vm:8428\n").unwrap_err(),
            "w.yaml:2:8: victoriametrics.url … must not hold a user name or password"
        );
        assert_eq!(
            parse("victoriametrics:\n  timeout: 5\n").unwrap_err(),
            "w.yaml:2:12: victoriametrics.timeout: duration \"5\" needs a unit (ms, s, m or h)"
        );
        let err = parse("victoriametrics:\n  uri: http://vm\n").unwrap_err();
        assert!(err.starts_with("w.yaml:2:3: "), "{err}");
        assert!(err.contains("did you mean \"url\"?"), "{err}");
    }
}
