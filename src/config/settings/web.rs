//! The `http:` and `web:` sections: limits of the HTTP server (its HTTPS is
//! `settings/tls.rs`), and the web pages with their live event feed.

use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;

use crate::config::error::{ConfigError, Place, Spanned};
use crate::config::maintenance::parse_zone;
use crate::config::walk::{Walk, Walker};

/// Limits on the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Connections one client address may hold; more are closed at once. None: as many
    /// as `max_connections` (one address may take the public share, not the reserve).
    pub max_connections_per_client: Option<usize>,
    /// Time allowed to read a request's headers.
    pub header_timeout: Duration,
    /// Time allowed to read a request's body once its headers are in (every route,
    /// streaming ones too).
    pub body_timeout: Duration,
    /// Time allowed to produce a (non-streaming) response.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            // Not below the server's own limit: behind a reverse proxy every client is
            // one address, and a NOC's wall of screens must not be cut short by it.
            max_connections_per_client: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Web pages and the live event feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// Concurrent `GET /api/v1/events` streams; one more gets a 503.
    pub max_event_streams: usize,
    /// Base URL of a VictoriaMetrics (vmui) that scrapes this appliance; device pages
    /// link to their series there when set. Always `victoriametrics.url`: this key is
    /// its old name, read and checked in `settings/victoriametrics.rs`.
    pub victoriametrics_url: Option<String>,
    /// The IANA zone the pages write times in (with its offset; UTC on hover). JSON
    /// stays UTC. Default UTC; the shipped config sets Asia/Tbilisi.
    pub display_zone: Tz,
    /// A label key whose value, when a device has it, the pages show as its name (the
    /// inventory name stays its identity, in links and the API).
    pub display_name_label: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            max_event_streams: 1000,
            victoriametrics_url: None,
            display_zone: Tz::UTC,
            display_name_label: None,
        }
    }
}

pub(in crate::config) const HTTP_KEYS: &[&str] = &[
    "max_connections",
    "max_connections_per_client",
    "tls_server_config",
];
pub(in crate::config) const WEB_KEYS: &[&str] = &[
    "max_event_streams",
    "victoriametrics_url",
    "display_zone",
    "display_name_label",
];

/// `http.max_connections`, `http.max_connections_per_client` and `web.max_event_streams`: at least one, and few enough that
/// every one can have its task and buffers (tokio's semaphore refuses more than
/// `usize::MAX >> 3` permits: `check` took 18446744073709551615, `serve` exited 101).
const CONNECTIONS: (usize, usize) = (1, 100_000);
/// A URL longer than this in every device page is a mistake.
const MAX_URL: usize = 2048;

/// `http:` as written.
#[derive(Debug, Default)]
pub(super) struct RawHttp {
    max_connections: Option<Spanned<usize>>,
    max_connections_per_client: Option<Spanned<usize>>,
    /// HTTPS, resolved into `Settings::tls_server_config` (not [`HttpSettings`], which
    /// is `Copy`).
    pub(super) tls: super::tls::RawTls,
}

impl RawHttp {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("http", HTTP_KEYS, |w, key, name| {
            match key {
                0 => raw.max_connections = w.number(name, "a whole number")?,
                1 => raw.max_connections_per_client = w.number(name, "a whole number")?,
                _ => raw.tls = super::tls::RawTls::read(w)?,
            }
            Ok(())
        })?;
        Ok(raw)
    }

    pub(super) fn resolve(&self, path: &Path, errors: &mut Vec<ConfigError>) -> HttpSettings {
        let mut http = HttpSettings::default();
        if let Some(n) = count(&self.max_connections, "http.max_connections", path, errors) {
            http.max_connections = n;
        }
        let per_client = &self.max_connections_per_client;
        if let Some(n) = count(per_client, "http.max_connections_per_client", path, errors) {
            http.max_connections_per_client = Some(n);
        }
        http
    }
}

/// `web:` as written.
#[derive(Debug, Default)]
pub(super) struct RawWeb {
    max_event_streams: Option<Spanned<usize>>,
    /// The old name of `victoriametrics.url`, resolved with it.
    pub(super) victoriametrics_url: Option<Spanned<String>>,
    display_zone: Option<Spanned<String>>,
    display_name_label: Option<Spanned<String>>,
}

impl RawWeb {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("web", WEB_KEYS, |w, key, name| {
            match key {
                0 => raw.max_event_streams = w.number(name, "a whole number")?,
                1 => raw.victoriametrics_url = w.optional_string(name)?,
                2 => raw.display_zone = w.optional_string(name)?,
                _ => raw.display_name_label = w.optional_string(name)?,
            }
            Ok(())
        })?;
        Ok(raw)
    }

    /// `victoriametrics_url` is left for the `victoriametrics:` section to resolve.
    pub(super) fn resolve(self, path: &Path, errors: &mut Vec<ConfigError>) -> WebSettings {
        let defaults = WebSettings::default();
        let streams = count(
            &self.max_event_streams,
            "web.max_event_streams",
            path,
            errors,
        );
        let display_zone = match &self.display_zone {
            None => defaults.display_zone,
            Some(zone) => parse_zone(&zone.value).unwrap_or_else(|message| {
                let message = format!("web.display_zone: {message}");
                errors.push(ConfigError::new(Place::at(path, zone.at), message));
                defaults.display_zone
            }),
        };
        let display_name_label = self
            .display_name_label
            .map(|l| l.value.trim().to_string())
            .filter(|l| !l.is_empty());
        WebSettings {
            max_event_streams: streams.unwrap_or(defaults.max_event_streams),
            victoriametrics_url: None,
            display_zone,
            display_name_label,
        }
    }
}

/// A count in [`CONNECTIONS`], or the error at its place.
fn count(
    value: &Option<Spanned<usize>>,
    name: &str,
    path: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<usize> {
    let v = value.as_ref()?;
    if (CONNECTIONS.0..=CONNECTIONS.1).contains(&v.value) {
        return Some(v.value);
    }
    let (lo, hi) = CONNECTIONS;
    let message = format!("{name} {} is out of range ({lo} to {hi})", v.value);
    errors.push(ConfigError::new(Place::at(path, v.at), message));
    None
}

/// What is wrong with a base URL that pages link to, if anything.
pub(super) fn url_problem(url: &str) -> Option<&'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        None => Some("must start with http:// or https://"),
        Some("") => Some("has no host"),
        Some(_) if url.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Some("must not contain spaces or control characters")
        }
        Some(_) if url.len() > MAX_URL => Some("is longer than 2048 characters"),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::settings::tests::parse;

    #[test]
    fn the_display_zone_and_name_label_are_read_and_a_bad_zone_is_refused() {
        let s = parse("web:\n  display_zone: Asia/Tbilisi\n  display_name_label: ' nick '\n");
        let web = s.unwrap().web;
        assert_eq!(web.display_zone, chrono_tz::Asia::Tbilisi);
        assert_eq!(web.display_name_label.as_deref(), Some("nick"));
        let err = parse("web:\n  display_zone: asia/tbilisi\n").unwrap_err();
        assert!(
            err.contains(":2:17: web.display_zone: unknown time zone"),
            "{err}"
        );
        assert!(err.contains("did you mean \"Asia/Tbilisi\"?"), "{err}");
        assert_eq!(
            parse("web:\n  display_name_label: ''\n")
                .unwrap()
                .web
                .display_name_label,
            None
        );
    }
}
