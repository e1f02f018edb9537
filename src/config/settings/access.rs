//! The `access:` section: who may read and act (see `crate::access`). The users and
//! tokens themselves are in the users file it names, never in the settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::access::Role;
use crate::config::duration;
use crate::config::error::{ConfigError, Place, Spanned};
use crate::config::walk::{Walk, Walker};

pub(in crate::config) mod oidc;
pub use oidc::OidcSettings;

/// Who may read and act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSettings {
    /// The users file (exporter-toolkit's web config, extended with roles, regions and
    /// API tokens), resolved against the settings file's directory; re-read on change.
    pub users_file: Option<PathBuf>,
    /// What a request without credentials may do: read as a viewer, or nothing. Written
    /// `viewer` or `off`; unset, `viewer` when listening on loopback only, else `off`.
    pub anonymous: Option<Role>,
    /// A page session ends after this long without a request.
    pub session_idle: Duration,
    /// A page session ends this long after login, however busy.
    pub session_absolute: Duration,
    /// Failed logins allowed per user, and per client address, within `login_window`
    /// before further attempts are refused with 429 until it passes.
    pub login_failures_per_user: u32,
    pub login_failures_per_address: u32,
    pub login_window: Duration,
    /// Sign-in with an OpenID Connect provider, beside the users file's passwords.
    pub oidc: Option<OidcSettings>,
}

impl AccessSettings {
    /// The defaults for an appliance listening on `loopback` only or not.
    pub fn defaults(loopback: bool) -> Self {
        Self {
            users_file: None,
            anonymous: loopback.then_some(Role::Viewer),
            session_idle: Duration::from_secs(3600),
            session_absolute: Duration::from_secs(24 * 3600),
            login_failures_per_user: 5,
            login_failures_per_address: 20,
            login_window: Duration::from_secs(300),
            oidc: None,
        }
    }
}

pub(in crate::config) const KEYS: &[&str] = &[
    "users_file",
    "anonymous",
    "session_idle",
    "session_absolute",
    "login_failures_per_user",
    "login_failures_per_address",
    "login_window",
    "oidc",
];

/// `access:` as written.
#[derive(Debug, Default)]
pub(super) struct RawAccess {
    users_file: Option<Spanned<String>>,
    anonymous: Option<Spanned<String>>,
    session_idle: Option<Spanned<String>>,
    session_absolute: Option<Spanned<String>>,
    failures_per_user: Option<Spanned<u32>>,
    failures_per_address: Option<Spanned<u32>>,
    login_window: Option<Spanned<String>>,
    oidc: oidc::RawOidc,
}

impl RawAccess {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        w.section("access", KEYS, |w, key, name| {
            match key {
                0 => raw.users_file = w.optional_string(name)?,
                1 => raw.anonymous = w.optional_string(name)?,
                2 => raw.session_idle = w.optional_string(name)?,
                3 => raw.session_absolute = w.optional_string(name)?,
                4 => raw.failures_per_user = w.number(name, "a whole number from 1 to 1000")?,
                5 => raw.failures_per_address = w.number(name, "a whole number from 1 to 1000")?,
                6 => raw.login_window = w.optional_string(name)?,
                _ => raw.oidc = oidc::RawOidc::read(w)?,
            }
            Ok(())
        })?;
        Ok(raw)
    }

    /// Resolves the section for an appliance listening on `loopback` only or not;
    /// `users_file` is relative to `base`, and `env` (`WARDOPS_USERS_FILE`) wins over it.
    pub(super) fn resolve(
        &self,
        loopback: bool,
        base: &Path,
        env: Option<&str>,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> AccessSettings {
        let mut s = AccessSettings::defaults(loopback);
        s.users_file = match (env, &self.users_file) {
            (Some(v), _) => Some(base.join(v)),
            (None, Some(v)) if v.value.trim().is_empty() => {
                errors.push(ConfigError::new(
                    Place::at(path, v.at),
                    "access.users_file is empty",
                ));
                None
            }
            (None, Some(v)) => Some(base.join(&v.value)),
            (None, None) => None,
        };
        if let Some(v) = &self.anonymous {
            match &*v.value {
                "viewer" => s.anonymous = Some(Role::Viewer),
                "off" => s.anonymous = None,
                other => errors.push(ConfigError::new(
                    Place::at(path, v.at),
                    format!(
                        "access.anonymous {other:?} is not viewer or off (anonymous users \
                         never act: only a logged-in operator or admin may)"
                    ),
                )),
            }
        }
        let mut span =
            |v: &Option<Spanned<String>>, name: &str, range: (u64, u64), out: &mut Duration| {
                let Some(v) = v else { return };
                let place = Place::at(path, v.at);
                match duration::parse(&v.value) {
                    Ok(d) if d.as_secs() < range.0 || d.as_secs() > range.1 => {
                        errors.push(ConfigError::new(
                            place,
                            format!(
                                "access.{name} {} is out of range ({} to {})",
                                v.value,
                                duration::format(Duration::from_secs(range.0)),
                                duration::format(Duration::from_secs(range.1))
                            ),
                        ))
                    }
                    Ok(d) => *out = d,
                    Err(e) => errors.push(ConfigError::new(place, format!("access.{name}: {e}"))),
                }
            };
        span(
            &self.session_idle,
            "session_idle",
            (60, 7 * 86400),
            &mut s.session_idle,
        );
        span(
            &self.session_absolute,
            "session_absolute",
            (60, 30 * 86400),
            &mut s.session_absolute,
        );
        span(
            &self.login_window,
            "login_window",
            (10, 86400),
            &mut s.login_window,
        );
        for (v, name, out) in [
            (
                &self.failures_per_user,
                "login_failures_per_user",
                &mut s.login_failures_per_user,
            ),
            (
                &self.failures_per_address,
                "login_failures_per_address",
                &mut s.login_failures_per_address,
            ),
        ] {
            let Some(v) = v else { continue };
            if (1..=1000).contains(&v.value) {
                *out = v.value;
            } else {
                errors.push(ConfigError::new(
                    Place::at(path, v.at),
                    format!("access.{name} {} is out of range (1 to 1000)", v.value),
                ));
            }
        }
        if s.session_idle > s.session_absolute {
            errors.push(ConfigError::new(
                Place::of_file(path),
                "access.session_idle is longer than access.session_absolute",
            ));
        }
        s.oidc = self.oidc.resolve(base, path, errors);
        if s.anonymous.is_none() && s.users_file.is_none() && s.oidc.is_none() {
            errors.push(ConfigError::new(
                Place::of_file(path),
                "access: anonymous access is off and there is no access.users_file: nobody \
                 could read anything (set access.users_file or access.oidc, or access.anonymous: viewer)",
            ));
        }
        s
    }
}
