//! One level's `snmp:` checked value by value (once per level, so a region's bad value
//! or unreadable secret is reported once, not for each of its devices), and the cascade
//! of levels key by key: device over branch over region over the defaults.

use std::path::Path;
use std::time::Duration;

use super::read::SnmpOverrides;
use super::{DEFAULT_INTERVAL, DEFAULT_RETRIES, DEFAULT_TIMEOUT};
use crate::config::duration;
use crate::config::error::{ConfigError, Location, Place, Spanned};
use crate::config::secret;
use crate::snmp::{AuthProtocol, Credentials, DEFAULT_PORT, PrivProtocol};

const TIMEOUT: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(60));
// From 1s: the end-to-end tests poll a simulated agent that often; 30s is the default.
const INTERVAL: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));
const RETRIES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2c,
    V3,
}

/// What one level says, each value checked, with where it is written. A key whose
/// value is bad is absent here (its error reported) and `broken` is set, so that the
/// checks of the whole (`v3 needs a user`) stay silent about it.
#[derive(Debug, Clone, Default)]
pub struct SnmpLevel {
    pub version: Option<Spanned<Version>>,
    pub community: Option<Spanned<String>>,
    pub port: Option<u16>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub interval: Option<Duration>,
    pub user: Option<Spanned<String>>,
    pub auth: Option<AuthProtocol>,
    pub auth_key: Option<String>,
    pub privacy: Option<PrivProtocol>,
    pub privacy_key: Option<Spanned<String>>,
    pub broken: bool,
}

impl SnmpLevel {
    /// Checks `raw`, written in `file` (secrets' files are relative to its directory).
    pub fn resolve(raw: &SnmpOverrides, file: &Path, errors: &mut Vec<ConfigError>) -> Self {
        let mut l = SnmpLevel::default();
        if raw.at.is_none() {
            return l;
        }
        let mut error = |at: Location, message: String| {
            errors.push(ConfigError::new(Place::at(file, at), message));
        };
        let mut broken = false;
        if let Some(v) = &raw.version {
            match v.value.trim() {
                "2c" => {
                    l.version = Some(Spanned {
                        value: Version::V2c,
                        at: v.at,
                    })
                }
                "3" => {
                    l.version = Some(Spanned {
                        value: Version::V3,
                        at: v.at,
                    })
                }
                other => {
                    error(v.at, format!("snmp.version: {other:?} is not 2c or 3"));
                    broken = true;
                }
            }
        }
        if let Some(p) = &raw.port {
            match u16::try_from(p.value) {
                Ok(port) if port > 0 => l.port = Some(port),
                _ => {
                    error(
                        p.at,
                        format!("snmp.port {} is out of range (1 to 65535)", p.value),
                    );
                    broken = true;
                }
            }
        }
        if let Some(r) = &raw.retries {
            if r.value > RETRIES {
                error(
                    r.at,
                    format!("snmp.retries {} is out of range (0 to {RETRIES})", r.value),
                );
                broken = true;
            } else {
                l.retries = Some(r.value);
            }
        }
        let mut dur = |d: &Option<Spanned<String>>, key: &str, range: (Duration, Duration)| {
            let d = d.as_ref()?;
            let problem = match duration::parse(&d.value) {
                Ok(v) if v >= range.0 && v <= range.1 => return Some(v),
                Ok(_) => format!(
                    "snmp.{key} {} is out of range ({} to {})",
                    d.value.trim(),
                    duration::format(range.0),
                    duration::format(range.1)
                ),
                Err(e) => format!("snmp.{key}: {e}"),
            };
            error(d.at, problem);
            broken = true;
            None
        };
        l.timeout = dur(&raw.timeout, "timeout", TIMEOUT);
        l.interval = dur(&raw.interval, "interval", INTERVAL);
        if let Some(u) = &raw.user {
            if u.value.trim().is_empty() || u.value.chars().any(char::is_control) {
                error(u.at, "snmp.user: a user name, visible text".to_string());
                broken = true;
            } else {
                l.user = Some(Spanned {
                    value: u.value.trim().to_string(),
                    at: u.at,
                });
            }
        }
        if let Some(a) = &raw.auth {
            l.auth = match a.value.trim().to_ascii_lowercase().as_str() {
                "sha224" => Some(AuthProtocol::Sha224),
                "sha256" => Some(AuthProtocol::Sha256),
                "sha384" => Some(AuthProtocol::Sha384),
                "sha512" => Some(AuthProtocol::Sha512),
                weak @ ("md5" | "sha" | "sha1" | "sha-1") => {
                    error(
                        a.at,
                        format!(
                            "snmp.auth: {weak} is refused: MD5 and SHA-1 are obsolete digests (weak key localisation, 96-bit MACs); use sha224, sha256, sha384 or sha512 (RFC 7860)"
                        ),
                    );
                    None
                }
                other => {
                    error(
                        a.at,
                        format!(
                            "snmp.auth: {other:?} is not one of sha224, sha256, sha384, sha512"
                        ),
                    );
                    None
                }
            };
            broken |= l.auth.is_none();
        }
        if let Some(p) = &raw.privacy {
            l.privacy = match p.value.trim().to_ascii_lowercase().as_str() {
                "aes128" | "aes" => Some(PrivProtocol::Aes128),
                "aes192" => Some(PrivProtocol::Aes192),
                "aes256" => Some(PrivProtocol::Aes256),
                other => {
                    let why = if other == "des" || other == "3des" {
                        " (DES is refused: a 56-bit key)"
                    } else {
                        ""
                    };
                    error(
                        p.at,
                        format!(
                            "snmp.privacy: {other:?} is not one of aes128, aes192, aes256{why}"
                        ),
                    );
                    None
                }
            };
            broken |= l.privacy.is_none();
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let mut secret =
            |env: &Option<Spanned<String>>, file: &Option<Spanned<String>>, key: &str| {
                let keys = (format!("snmp.{key}_env"), format!("snmp.{key}_file"));
                let at = env.as_ref().or(file.as_ref())?.at;
                match secret::read(env.as_ref(), file.as_ref(), (&keys.0, &keys.1), base) {
                    Ok(value) => value.map(|value| Spanned { value, at }),
                    Err((at, message)) => {
                        error(at, message);
                        broken = true;
                        None
                    }
                }
            };
        l.community = secret(&raw.community_env, &raw.community_file, "community");
        l.auth_key = secret(&raw.auth_key_env, &raw.auth_key_file, "auth_key").map(|s| s.value);
        l.privacy_key = secret(&raw.privacy_key_env, &raw.privacy_key_file, "privacy_key");
        l.broken = broken;
        l
    }

    /// This level over `parent`, key by key.
    pub fn over(&self, parent: &SnmpLevel) -> SnmpLevel {
        fn pick<T: Clone>(own: &Option<T>, parent: &Option<T>) -> Option<T> {
            own.as_ref().or(parent.as_ref()).cloned()
        }
        SnmpLevel {
            version: pick(&self.version, &parent.version),
            community: pick(&self.community, &parent.community),
            port: self.port.or(parent.port),
            timeout: self.timeout.or(parent.timeout),
            retries: self.retries.or(parent.retries),
            interval: self.interval.or(parent.interval),
            user: pick(&self.user, &parent.user),
            auth: self.auth.or(parent.auth),
            auth_key: pick(&self.auth_key, &parent.auth_key),
            privacy: self.privacy.or(parent.privacy),
            privacy_key: pick(&self.privacy_key, &parent.privacy_key),
            broken: self.broken || parent.broken,
        }
    }

    /// A privacy key written at this level (`own`) where the cascade down to it
    /// (`self`) has no privacy: the key would be silently unused.
    pub fn check_privacy_key(&self, own: &SnmpLevel, file: &Path, errors: &mut Vec<ConfigError>) {
        if let (Some(key), None, false) = (&own.privacy_key, self.privacy, self.broken) {
            errors.push(ConfigError::new(
                Place::at(file, key.at),
                "snmp: a privacy key without privacy (aes128, aes192 or aes256) here or above: add privacy, or remove the key for authNoPriv",
            ));
        }
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(DEFAULT_RETRIES)
    }

    pub fn interval(&self) -> Duration {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    /// The credentials the whole cascade gives, or what is missing, in words.
    pub fn credentials(&self) -> Result<Credentials, String> {
        match self.version.as_ref().map_or(Version::V2c, |v| v.value) {
            Version::V2c => match &self.community {
                Some(c) => Ok(Credentials::V2c {
                    community: c.value.clone(),
                }),
                None => Err("SNMP v2c needs community_env or community_file (on the device, its branch or its region)".into()),
            },
            Version::V3 => {
                let mut missing = Vec::new();
                if self.user.is_none() {
                    missing.push("user");
                }
                if self.auth.is_none() {
                    missing.push("auth");
                }
                if self.auth_key.is_none() {
                    missing.push("auth_key_env or auth_key_file");
                }
                if self.privacy.is_some() && self.privacy_key.is_none() {
                    missing.push("privacy_key_env or privacy_key_file for its privacy");
                }
                match (&self.user, self.auth, &self.auth_key) {
                    (Some(user), Some(auth), Some(auth_key)) if missing.is_empty() => {
                        Ok(Credentials::V3 {
                            user: user.value.clone(),
                            auth,
                            auth_key: auth_key.clone(),
                            privacy: self
                                .privacy
                                .zip(self.privacy_key.as_ref().map(|k| k.value.clone())),
                        })
                    }
                    _ => Err(format!(
                        "SNMP v3 needs {} (on the device, its branch or its region)",
                        missing.join("; ")
                    )),
                }
            }
        }
    }
}
