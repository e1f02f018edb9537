//! The appliance's own settings (`wardops.yaml`): where to listen, which database, where
//! the inventory lives, and the probe defaults. Environment variables override the file.
//!
//! The file is walked like an inventory file (`config::walk`), with the same errors
//! (`file:line:column: message`, unknown keys with a "did you mean"); each section,
//! its keys and its checks, is a file under `settings/`. Shape comes before values: a
//! file with an unknown key, a value of the wrong type or malformed YAML is reported
//! with those alone, and its values are checked (ranges, the environment's overrides,
//! defaults) once it reads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigErrors, Place, Spanned};
use super::probe::{ProbeOverrides, ProbeSettings, inconsistencies};
use super::walk::{Walk, Walker};
use super::yaml::Event;

pub(in crate::config) mod access;
pub(in crate::config) mod cluster;
pub(in crate::config) mod maintenance;
pub mod notify;
pub(in crate::config) mod reload;
pub(in crate::config) mod reports;
pub(in crate::config) mod store;
pub mod tls;
pub(in crate::config) mod victoriametrics;
pub(in crate::config) mod web;

pub use access::{AccessSettings, OidcSettings};
pub use cluster::{ClusterEnv, ClusterSettings};
pub use maintenance::MaintenanceSettings;
pub use notify::NotifySettings;
pub use reload::ReloadSettings;
pub use reports::{ReportSettings, SlaRule};
pub use store::StoreSettings;
pub use victoriametrics::VictoriaMetricsSettings;
pub use web::{HttpSettings, WebSettings};

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
    /// `http.tls_server_config`: HTTPS when set (see `crate::http::tls`), paths under
    /// the settings file's directory. None: plain HTTP, the default.
    pub tls_server_config: Option<tls::TlsServerConfig>,
    pub reload: ReloadSettings,
    /// Where durable state goes besides the database (see `crate::store`).
    pub store: StoreSettings,
    /// Web pages and the live event feed (see `crate::web`).
    pub web: WebSettings,
    /// The default zone of maintenance windows (see `crate::maintenance`).
    pub maintenance: MaintenanceSettings,
    /// Receivers, routes and grouping of notifications (see `crate::notify`).
    pub notifications: NotifySettings,
    /// Where device pages read their RTT and loss history (see `crate::history`).
    pub victoriametrics: VictoriaMetricsSettings,
    /// Who may read and act (see `crate::access`).
    pub access: AccessSettings,
    /// SLA targets of the availability reports (see `crate::report`).
    pub reports: ReportSettings,
    /// This appliance as a member of a cluster (see `crate::cluster`); None: alone.
    pub cluster: Option<ClusterSettings>,
}

/// The top-level keys, in the order the hints list them.
pub(in crate::config) const SETTINGS_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "inventory",
    "probe",
    "http",
    "reload",
    "data_dir",
    "retention",
    "alerts",
    "web",
    "maintenance",
    "notifications",
    "victoriametrics",
    "access",
    "reports",
    "cluster",
];

/// The settings file as written; every key optional.
#[derive(Debug, Default)]
struct RawSettings {
    listen: Option<Spanned<String>>,
    database_url: Option<Spanned<String>>,
    inventory: Option<Spanned<String>>,
    probe: ProbeOverrides,
    http: web::RawHttp,
    reload: reload::RawReload,
    store: store::RawStore,
    web: web::RawWeb,
    maintenance: maintenance::RawMaintenance,
    notifications: notify::RawNotify,
    victoriametrics: victoriametrics::RawVictoriaMetrics,
    access: access::RawAccess,
    reports: reports::RawReports,
    cluster: cluster::RawCluster,
}

impl RawSettings {
    fn read<'a>(w: &mut Walker<'a, '_>, first: Event<'a>) -> Walk<Self> {
        let mut raw = Self::default();
        // A file of nothing but comments: every default.
        if first == Event::End || w.open_mapping(None, first)?.is_none() {
            return Ok(raw);
        }
        w.mapping("settings", SETTINGS_KEYS, |w, key| {
            let name = SETTINGS_KEYS[key];
            match key {
                0 => raw.listen = w.optional_string(name)?,
                1 => raw.database_url = w.optional_string(name)?,
                2 => raw.inventory = w.optional_string(name)?,
                3 => raw.probe = ProbeOverrides::read(w)?,
                4 => raw.http = web::RawHttp::read(w)?,
                5 => raw.reload = reload::RawReload::read(w)?,
                6 => raw.store.data_dir = w.optional_string(name)?,
                7 => raw.store.retention = w.optional_string(name)?,
                8 => raw.store.alerts = store::RawAlerts::read(w)?,
                10 => raw.maintenance = maintenance::RawMaintenance::read(w)?,
                11 => raw.notifications = notify::RawNotify::read(w)?,
                12 => raw.victoriametrics = victoriametrics::RawVictoriaMetrics::read(w)?,
                13 => raw.access = access::RawAccess::read(w)?,
                14 => raw.reports = reports::RawReports::read(w)?,
                15 => raw.cluster = cluster::RawCluster::read(w)?,
                _ => raw.web = web::RawWeb::read(w)?,
            }
            Ok(())
        })?;
        Ok(raw)
    }
}

/// Where a setting can be overridden from the environment.
pub struct Env {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    /// `WARDOPS_USERS_FILE`: the users file, outside the settings (e.g. a secret mount).
    pub users_file: Option<String>,
    /// `WARDOPS_DATA_DIR`: the spool's directory (a packaged appliance keeps the installed
    /// settings and points this at its state directory).
    pub data_dir: Option<String>,
    /// `WARDOPS_CLUSTER_MEMBER_ID`, `WARDOPS_REDIS_URL`.
    pub cluster: ClusterEnv,
}

/// The variable `name` of the process, unless unset or empty (an empty one is ignored).
fn set_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            listen: set_var("WARDOPS_LISTEN"),
            database_url: set_var("WARDOPS_DATABASE_URL"),
            users_file: set_var("WARDOPS_USERS_FILE"),
            data_dir: set_var("WARDOPS_DATA_DIR"),
            cluster: ClusterEnv {
                member_id: set_var("WARDOPS_CLUSTER_MEMBER_ID"),
                redis_url: set_var("WARDOPS_REDIS_URL"),
            },
        }
    }
}

impl Settings {
    /// Reads the settings file at `path`, then applies `env`.
    pub fn load(path: &Path, env: &Env) -> Result<Settings, ConfigErrors> {
        // Read as an inventory file is: never blocking, never past the size limit.
        let text = super::load::read_text(path).map_err(|e| ConfigErrors(vec![e]))?;
        Self::parse(path, &text, env)
    }

    pub fn parse(path: &Path, text: &str, env: &Env) -> Result<Settings, ConfigErrors> {
        let mut errors = Vec::new();
        let mut raw = match Walker::new(text, path, &mut errors).document(RawSettings::read) {
            Ok(raw) if errors.is_empty() => raw,
            _ => return Err(ConfigErrors::sorted(errors)),
        };
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
        let http = raw.http.resolve(path, &mut errors);
        let reload = raw.reload.apply(path, &mut errors);
        let base = path.parent().unwrap_or(Path::new("."));
        let tls_server_config = std::mem::take(&mut raw.http.tls).resolve(base, path, &mut errors);
        let mut store = raw.store.resolve(base, path, &mut errors);
        if let Some(dir) = &env.data_dir {
            store.data_dir = PathBuf::from(dir);
        }
        let victoriametrics =
            raw.victoriametrics
                .resolve(raw.web.victoriametrics_url.as_ref(), path, &mut errors);
        let mut web = raw.web.resolve(path, &mut errors);
        web.victoriametrics_url = victoriametrics.url.clone();
        let maintenance = raw.maintenance.resolve(path, &mut errors);
        let notifications = raw.notifications.resolve(base, path, &mut errors);
        let reports = raw.reports.resolve(path, &mut errors);
        // An unreadable `listen` is reported already: its defaults are the loopback ones.
        let loopback = listen.is_none_or(|a| a.ip().is_loopback());
        let access =
            raw.access
                .resolve(loopback, base, env.users_file.as_deref(), path, &mut errors);
        let database_url = match (&env.database_url, raw.database_url) {
            (Some(v), _) => check_database_url(
                v,
                Place::of_file(Path::new("WARDOPS_DATABASE_URL")),
                &mut errors,
            ),
            (None, Some(v)) => check_database_url(&v.value, Place::at(path, v.at), &mut errors),
            (None, None) => DEFAULT_DATABASE_URL.into(),
        };
        let postgres = !database_url.starts_with("sqlite:");
        let cluster = raw
            .cluster
            .resolve(&env.cluster, postgres, path, &mut errors);
        let inventory = match raw.inventory {
            Some(v) => match path_problem(&v.value) {
                None => v.value,
                Some(problem) => {
                    let message = format!("inventory {:?} {problem}", v.value);
                    errors.push(ConfigError::new(Place::at(path, v.at), message));
                    String::new()
                }
            },
            None => "inventory".into(),
        };
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        Ok(Settings {
            path: path.to_path_buf(),
            listen: listen.expect("listen is valid when there are no errors"),
            database_url,
            inventory_dir: base.join(inventory),
            probe,
            http,
            tls_server_config,
            reload,
            store,
            web,
            maintenance,
            notifications,
            victoriametrics,
            access,
            reports,
            cluster,
        })
    }

    /// The directory relative paths in the settings are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// The backends `crate::store` opens; anything else would pass `check` and stop `serve`.
fn check_database_url(url: &str, place: Place, errors: &mut Vec<ConfigError>) -> String {
    let url = url.trim();
    let known = ["postgres://", "postgresql://", "sqlite:"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    let problem = if !known {
        Some("must start with postgres://, postgresql:// or sqlite:")
    } else if url.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    if let Some(problem) = problem {
        // Not the URL itself: it may hold a password.
        errors.push(ConfigError::new(place, format!("database_url {problem}")));
    }
    url.to_string()
}

/// What is wrong with a directory written in the settings, if anything.
pub(super) fn path_problem(path: &str) -> Option<&'static str> {
    if path.trim().is_empty() {
        Some("is empty")
    } else if path.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The settings of `text` (no environment overrides), or their errors as text.
    pub(crate) fn parse(text: &str) -> Result<Settings, String> {
        let env = Env {
            listen: None,
            database_url: None,
            users_file: None,
            data_dir: None,
            cluster: Default::default(),
        };
        Settings::parse(Path::new("w.yaml"), text, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn a_file_of_comments_or_of_empty_sections_is_every_default() {
        for text in [
            "",
            "# nothing yet\n",
            "probe:\nhttp:\nreload: ~\nalerts:\nweb:\n",
        ] {
            let s = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
            assert_eq!(s.probe, ProbeSettings::default());
            assert_eq!(s.http, HttpSettings::default());
            assert_eq!(s.reload, ReloadSettings::default());
            assert_eq!(s.web, WebSettings::default());
            assert_eq!(s.store.flapping_transitions, 3);
        }
    }

    #[test]
    fn values_are_checked_once_the_file_reads() {
        // `listen` is wrong as well, and reported once the shape is right.
        assert_eq!(
            parse("listen: nowhere\nreload: { allow_empty: maybe }\n").unwrap_err(),
            "w.yaml:2:24: allow_empty: expected true or false, found \"maybe\""
        );
        assert_eq!(
            parse("listen: nowhere\nreload: { allow_empty: yes }\n").unwrap_err(),
            "w.yaml:1:9: listen \"nowhere\" is not an address:port such as 127.0.0.1:5001"
        );
    }
}
