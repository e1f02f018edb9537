//! The appliance's own settings (`wardops.yaml`): where to listen, which database, where
//! the inventory lives, and the probe defaults. Environment variables override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::Spanned;
use serde::Deserialize;

use super::error::{ConfigError, ConfigErrors, Place};
use super::probe::{ProbeOverrides, ProbeSettings, inconsistencies};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5001";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/wardops.db";

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The settings file itself; relative paths in it are relative to its directory.
    pub path: PathBuf,
    pub listen: SocketAddr,
    pub database_url: String,
    pub inventory_dir: PathBuf,
    /// Probe defaults, the first level of the cascade.
    pub probe: ProbeSettings,
    pub http: HttpSettings,
    pub reload: ReloadSettings,
    /// Where durable state goes besides the database (see `crate::store`).
    pub store: StoreSettings,
    /// Web pages and the live event feed (see `crate::web`).
    pub web: WebSettings,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    max_event_streams: Option<usize>,
    victoriametrics_url: Option<String>,
}

/// Limits on the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time allowed to read a request's headers.
    pub header_timeout: Duration,
    /// Time allowed to produce a (non-streaming) response.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// How inventory changes are picked up (see `crate::reload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSettings {
    /// Backstop for missed filesystem events: the inventory's hash is checked this often.
    pub check_interval: Duration,
    /// Whether `POST /-/reload` may trigger a reload (off: anyone reaching the port could).
    pub http_endpoint: bool,
    /// Whether a missing directory, an empty file or no devices at all is a valid (empty)
    /// inventory; off, it is an error and the last good inventory keeps running.
    pub allow_empty: bool,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(30),
            http_endpoint: false,
            allow_empty: false,
        }
    }
}

/// Durable state and alert rules (`data_dir`, `retention`, `alerts`; see `crate::store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// The spool (and by default the SQLite file) live here; created if missing.
    pub data_dir: PathBuf,
    /// Transitions and resolved alerts older than this are pruned.
    pub retention: Duration,
    /// `flapping` opens when a device changes status this many times within the window.
    pub flapping_transitions: u32,
    pub flapping_window: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    flapping_transitions: Option<Spanned<u32>>,
    flapping_window: Option<Spanned<String>>,
}

impl StoreSettings {
    fn resolve(
        raw: &RawSettings,
        base: &Path,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> StoreSettings {
        let mut s = StoreSettings {
            data_dir: base.join(raw.data_dir.as_deref().unwrap_or("data")),
            retention: Duration::from_secs(400 * 86_400),
            flapping_transitions: 3,
            flapping_window: Duration::from_secs(300),
        };
        if let Some(v) = &raw.retention {
            // Days are the natural unit here; the shared duration syntax stops at hours.
            let parsed = match v.value.trim().strip_suffix('d').map(str::parse::<u64>) {
                Some(Ok(days)) => Ok(Duration::from_secs(days.saturating_mul(86_400))),
                _ => super::duration::parse(&v.value),
            };
            match parsed {
                Ok(d) if d >= Duration::from_secs(86_400) => s.retention = d,
                Ok(_) => errors.push(ConfigError::new(
                    Place::at(path, v.at),
                    "retention must be at least 1d",
                )),
                Err(e) => errors.push(ConfigError::new(
                    Place::at(path, v.at),
                    format!("retention: {e} (or days: 400d)"),
                )),
            }
        }
        if let Some(v) = &raw.alerts.flapping_transitions {
            match v.value {
                n if n >= 2 => s.flapping_transitions = n,
                _ => errors.push(ConfigError::new(
                    Place::at(path, v.at),
                    "alerts.flapping_transitions must be at least 2",
                )),
            }
        }
        if let Some(v) = &raw.alerts.flapping_window {
            match super::duration::parse(&v.value) {
                Ok(d) if d >= Duration::from_secs(1) => s.flapping_window = d,
                Ok(_) => errors.push(ConfigError::new(
                    Place::at(path, v.at),
                    "alerts.flapping_window must be at least 1s",
                )),
                Err(e) => errors.push(ConfigError::new(
                    Place::at(path, v.at),
                    format!("alerts.flapping_window: {e}"),
                )),
            }
        }
        s
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReload {
    check_interval: Option<Spanned<String>>,
    http_endpoint: Option<bool>,
    allow_empty: Option<bool>,
}

/// `check_interval` bounds: below a second it is a busy loop over the whole inventory.
const CHECK_INTERVAL: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));

impl RawReload {
    fn apply(&self, path: &Path, errors: &mut Vec<ConfigError>) -> ReloadSettings {
        let mut s = ReloadSettings::default();
        if let Some(v) = &self.check_interval {
            let place = Place::at(path, v.at);
            match super::duration::parse(&v.value) {
                Ok(d) if d < CHECK_INTERVAL.0 || d > CHECK_INTERVAL.1 => {
                    let message = format!(
                        "reload.check_interval {} is out of range (1s to 24h)",
                        v.value
                    );
                    errors.push(ConfigError::new(place, message));
                }
                Ok(d) => s.check_interval = d,
                Err(e) => {
                    errors.push(ConfigError::new(
                        place,
                        format!("reload.check_interval: {e}"),
                    ));
                }
            }
        }
        s.http_endpoint = self.http_endpoint.unwrap_or(s.http_endpoint);
        s.allow_empty = self.allow_empty.unwrap_or(s.allow_empty);
        s
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    listen: Option<Spanned<String>>,
    database_url: Option<String>,
    inventory: Option<String>,
    #[serde(default)]
    probe: ProbeOverrides,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    reload: RawReload,
    data_dir: Option<String>,
    retention: Option<Spanned<String>>,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    web: RawWeb,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    max_connections: Option<usize>,
}

/// Where a setting can be overridden from the environment.
pub struct Env {
    pub listen: Option<String>,
    pub database_url: Option<String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            listen: std::env::var("WARDOPS_LISTEN")
                .ok()
                .filter(|v| !v.is_empty()),
            database_url: std::env::var("WARDOPS_DATABASE_URL")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}

impl Settings {
    /// Reads the settings file at `path`, then applies `env`.
    pub fn load(path: &Path, env: &Env) -> Result<Settings, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                Place::of_file(path),
                format!("cannot read settings: {e}"),
            )])
        })?;
        Self::parse(path, &text, env)
    }

    pub fn parse(path: &Path, text: &str, env: &Env) -> Result<Settings, ConfigErrors> {
        let raw: RawSettings = if text.trim().is_empty() {
            RawSettings::default()
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| ConfigErrors(vec![ConfigError::from_yaml(path, text, &e)]))?
        };
        let mut errors = Vec::new();
        let listen = match (&env.listen, &raw.listen) {
            (Some(v), _) => {
                parse_listen(v, Place::of_file(Path::new("WARDOPS_LISTEN")), &mut errors)
            }
            (None, Some(v)) => parse_listen(&v.value, Place::at(path, v.at), &mut errors),
            (None, None) => DEFAULT_LISTEN.parse().ok(),
        };
        let probe = raw.probe.apply(ProbeSettings::default(), path, &mut errors);
        // Pointed at the first probe key written, as the inventory levels do.
        let probe_place = raw
            .probe
            .first_place(path)
            .unwrap_or_else(|| Place::of_file(path));
        for message in inconsistencies(&probe) {
            errors.push(ConfigError::new(
                probe_place.clone(),
                format!("probe: {message}"),
            ));
        }
        let mut http = HttpSettings::default();
        if let Some(n) = raw.http.max_connections {
            http.max_connections = n.max(1);
        }
        let reload = raw.reload.apply(path, &mut errors);
        let base = path.parent().unwrap_or(Path::new("."));
        let store = StoreSettings::resolve(&raw, base, path, &mut errors);
        let web = WebSettings {
            max_event_streams: raw.web.max_event_streams.unwrap_or(1000).max(1),
            victoriametrics_url: raw
                .web
                .victoriametrics_url
                .clone()
                .filter(|u| !u.trim().is_empty()),
        };
        let inventory = raw.inventory.unwrap_or_else(|| "inventory".into());
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        Ok(Settings {
            path: path.to_path_buf(),
            listen: listen.expect("listen is valid when there are no errors"),
            database_url: env
                .database_url
                .clone()
                .or(raw.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            inventory_dir: base.join(inventory),
            probe,
            http,
            reload,
            store,
            web,
        })
    }

    /// The directory relative paths in the settings are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

fn parse_listen(value: &str, place: Place, errors: &mut Vec<ConfigError>) -> Option<SocketAddr> {
    match value.trim().parse() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(ConfigError::new(
                place,
                format!("listen {value:?} is not an address:port such as 127.0.0.1:5001"),
            ));
            None
        }
    }
}
