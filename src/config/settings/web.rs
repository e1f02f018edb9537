//! The `http:` and `web:` sections: limits of the HTTP server, and the web pages with
//! their live event feed.

use std::time::Duration;

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
    /// link to their series there when set.
    pub victoriametrics_url: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            max_event_streams: 1000,
            victoriametrics_url: None,
        }
    }
}

const HTTP_KEYS: &[&str] = &["max_connections", "max_connections_per_client"];
const WEB_KEYS: &[&str] = &["max_event_streams", "victoriametrics_url"];

/// `http:` as written.
#[derive(Debug, Default)]
pub(super) struct RawHttp {
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
}

impl RawHttp {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("http", HTTP_KEYS, |w, key, name| {
            let n = w.number(name, "a whole number")?.map(|n| n.value);
            match key {
                0 => raw.max_connections = n,
                _ => raw.max_connections_per_client = n,
            }
            Ok(())
        })?;
        Ok(raw)
    }

    /// At least one connection, whatever is written.
    pub(super) fn resolve(&self) -> HttpSettings {
        let mut http = HttpSettings::default();
        if let Some(n) = self.max_connections {
            http.max_connections = n.max(1);
        }
        if let Some(n) = self.max_connections_per_client {
            http.max_connections_per_client = Some(n.max(1));
        }
        http
    }
}

/// `web:` as written.
#[derive(Debug, Default)]
pub(super) struct RawWeb {
    max_event_streams: Option<usize>,
    victoriametrics_url: Option<String>,
}

impl RawWeb {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("web", WEB_KEYS, |w, key, name| {
            match key {
                0 => {
                    raw.max_event_streams = w.number(name, "a whole number")?.map(|n| n.value);
                }
                _ => raw.victoriametrics_url = w.optional_string(name)?.map(|u| u.value),
            }
            Ok(())
        })?;
        Ok(raw)
    }

    /// At least one stream; a blank URL is none.
    pub(super) fn resolve(self) -> WebSettings {
        let defaults = WebSettings::default();
        WebSettings {
            max_event_streams: self
                .max_event_streams
                .unwrap_or(defaults.max_event_streams)
                .max(1),
            victoriametrics_url: self.victoriametrics_url.filter(|u| !u.trim().is_empty()),
        }
    }
}
