//! `access.oidc:`: sign-in with an OpenID Connect provider (see `crate::access::oidc`).
//! The client secret comes from a file or an environment variable, never from the
//! YAML; the role and regions of a user come from claims of the ID token (or userinfo).

use std::path::Path;

use crate::access::Role;
use crate::config::error::Location;
use crate::config::error::{ConfigError, Place, Spanned};
use crate::config::walk::{Walk, Walker};
use crate::config::yaml::Event;
use crate::notify::Secret;

/// Sign-in with an OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// What the login page calls the provider: "Sign in with <name>".
    pub name: String,
    /// The issuer URL; its `/.well-known/openid-configuration` is read at start.
    pub issuer: String,
    pub client_id: String,
    /// None for a public client (PKCE alone).
    pub client_secret: Option<Secret>,
    /// This appliance's `…/login/oidc/callback` as the provider reaches the browser back.
    pub redirect_url: String,
    pub scopes: Vec<String>,
    /// The claim that names the user; `sub` when a token lacks it.
    pub username_claim: String,
    /// The claim (a string or a list of strings) that `roles` maps to a role.
    pub role_claim: String,
    /// Claim values that give each role, highest first; a user with none of them is
    /// refused (never a viewer by default).
    pub roles: Vec<(Role, Vec<String>)>,
    /// The claim listing the regions a user sees (`"*"`: every region). Unset: every
    /// user of the provider sees every region; set and absent from a token: refused.
    pub regions_claim: Option<String>,
}

pub(in crate::config) const KEYS: &[&str] = &[
    "name",
    "issuer",
    "client_id",
    "client_secret_file",
    "client_secret_env",
    "redirect_url",
    "scopes",
    "username_claim",
    "role_claim",
    "roles",
    "regions_claim",
];
pub(in crate::config) const REQUIRED: &[&str] = &["issuer", "client_id", "redirect_url", "roles"];
const ROLES: &[&str] = &["admin", "operator", "viewer"];

/// `access.oidc:` as written.
#[derive(Debug, Default)]
pub(in crate::config::settings) struct RawOidc {
    at: Option<Location>,
    name: Option<Spanned<String>>,
    issuer: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    redirect_url: Option<Spanned<String>>,
    scopes: Option<Vec<Spanned<String>>>,
    username_claim: Option<Spanned<String>>,
    role_claim: Option<Spanned<String>>,
    roles: Vec<(Role, Vec<Spanned<String>>)>,
    regions_claim: Option<Spanned<String>>,
}

/// A list of single values under `key`.
fn strings(w: &mut Walker<'_, '_>, key: &str) -> Walk<Vec<Spanned<String>>> {
    let mut out = Vec::new();
    w.list(key, |w, first| {
        match first {
            Event::Scalar(s) if !s.is_null() => out.push(Spanned {
                value: s.value.into_owned(),
                at: s.at,
            }),
            Event::Scalar(s) => w.error(s.at, format!("{key}: an empty item")),
            other => {
                w.error(
                    crate::config::walk::start_of(&other),
                    format!("{key}: expected a single value, not a list or mapping"),
                );
                w.skip(other)?;
            }
        }
        Ok(())
    })?;
    Ok(out)
}

impl RawOidc {
    pub(in crate::config::settings) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        let first = w.next()?;
        if matches!(&first, Event::Scalar(s) if s.is_null()) {
            return Ok(raw);
        }
        let Some(at) = w.open_mapping(Some("access.oidc"), first)? else {
            return Ok(raw);
        };
        raw.at = Some(at);
        let seen = w.mapping("access.oidc", KEYS, |w, key| {
            let name = KEYS[key];
            match key {
                0 => raw.name = w.optional_string(name)?,
                1 => raw.issuer = w.optional_string(name)?,
                2 => raw.client_id = w.optional_string(name)?,
                3 => raw.secret_file = w.optional_string(name)?,
                4 => raw.secret_env = w.optional_string(name)?,
                5 => raw.redirect_url = w.optional_string(name)?,
                6 => raw.scopes = Some(strings(w, "access.oidc.scopes")?),
                7 => raw.username_claim = w.optional_string(name)?,
                8 => raw.role_claim = w.optional_string(name)?,
                9 => {
                    w.section("access.oidc.roles", ROLES, |w, i, role| {
                        let values = strings(w, &format!("access.oidc.roles.{role}"))?;
                        let role = [Role::Admin, Role::Operator, Role::Viewer][i];
                        raw.roles.push((role, values));
                        Ok(())
                    })?;
                }
                _ => raw.regions_claim = w.optional_string(name)?,
            }
            Ok(())
        })?;
        w.require(at, seen, KEYS, REQUIRED);
        Ok(raw)
    }

    /// The settings, or None when the section is absent or wrong (each problem in
    /// `errors` at its place); the secret file is relative to `base`.
    pub(in crate::config::settings) fn resolve(
        &self,
        base: &Path,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> Option<OidcSettings> {
        let at = self.at?;
        let before = errors.len();
        let mut err =
            |at: Location, m: String| errors.push(ConfigError::new(Place::at(path, at), m));
        let url =
            |v: &Option<Spanned<String>>, key: &str, err: &mut dyn FnMut(Location, String)| {
                let v = v.as_ref()?;
                match openidconnect::url::Url::parse(v.value.trim()) {
                    Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {
                        Some(v.value.trim().to_string())
                    }
                    Ok(_) => {
                        err(
                            v.at,
                            format!("access.oidc.{key} {:?} is not an http(s) URL", v.value),
                        );
                        None
                    }
                    Err(e) => {
                        err(
                            v.at,
                            format!("access.oidc.{key} {:?} is not a URL: {e}", v.value),
                        );
                        None
                    }
                }
            };
        let issuer = url(&self.issuer, "issuer", &mut err);
        let redirect_url = url(&self.redirect_url, "redirect_url", &mut err);
        if let (Some(r), Some(v)) = (&redirect_url, &self.redirect_url)
            && !r
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .ends_with("/login/oidc/callback")
        {
            err(
                v.at,
                format!(
                    "access.oidc.redirect_url {r:?} does not end in /login/oidc/callback \
                     (the appliance's callback, as the browser reaches it)"
                ),
            );
        }
        let nonempty =
            |v: &Option<Spanned<String>>, key: &str, err: &mut dyn FnMut(Location, String)| {
                let v = v.as_ref()?;
                if v.value.trim().is_empty() {
                    err(v.at, format!("access.oidc.{key} is empty"));
                    return None;
                }
                Some(v.value.trim().to_string())
            };
        let client_id = nonempty(&self.client_id, "client_id", &mut err);
        let username_claim = nonempty(&self.username_claim, "username_claim", &mut err)
            .unwrap_or_else(|| "preferred_username".into());
        let role_claim =
            nonempty(&self.role_claim, "role_claim", &mut err).unwrap_or_else(|| "groups".into());
        let regions_claim = nonempty(&self.regions_claim, "regions_claim", &mut err);
        let name =
            nonempty(&self.name, "name", &mut err).unwrap_or_else(|| "OpenID Connect".into());
        let client_secret = match (&self.secret_env, &self.secret_file) {
            (Some(_), Some(f)) => {
                err(
                    f.at,
                    "access.oidc: give client_secret_file or client_secret_env, not both".into(),
                );
                None
            }
            (Some(var), None) => match std::env::var(var.value.trim()) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    err(
                        var.at,
                        format!(
                            "access.oidc.client_secret_env: the environment variable {} is not set (or empty)",
                            var.value
                        ),
                    );
                    None
                }
            },
            (None, Some(f)) => {
                let file = base.join(f.value.trim());
                match std::fs::read_to_string(&file) {
                    Ok(v) if !v.trim_end_matches(['\r', '\n']).is_empty() => {
                        Some(Secret::new(v.trim_end_matches(['\r', '\n']).to_string()))
                    }
                    Ok(_) => {
                        err(
                            f.at,
                            format!(
                                "access.oidc.client_secret_file: {} is empty",
                                file.display()
                            ),
                        );
                        None
                    }
                    Err(e) => {
                        err(
                            f.at,
                            format!(
                                "access.oidc.client_secret_file: cannot read {}: {e}",
                                file.display()
                            ),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        };
        let mut scopes: Vec<String> = match &self.scopes {
            Some(list) => list.iter().map(|s| s.value.trim().to_string()).collect(),
            None => ["openid", "profile", "email"].map(String::from).to_vec(),
        };
        if !scopes.iter().any(|s| s == "openid") {
            // Without it there is no ID token: OpenID Connect needs it, so it is implied.
            scopes.insert(0, "openid".into());
        }
        let mut roles: Vec<(Role, Vec<String>)> = self
            .roles
            .iter()
            .map(|(r, v)| (*r, v.iter().map(|s| s.value.trim().to_string()).collect()))
            .collect();
        roles.sort_by_key(|r| std::cmp::Reverse(r.0));
        if self.at.is_some() && !self.roles.is_empty() && roles.iter().all(|(_, v)| v.is_empty()) {
            err(
                self.at.unwrap_or(at),
                "access.oidc.roles: no claim value gives any role: nobody could sign in".into(),
            );
        }
        if errors.len() > before {
            return None;
        }
        Some(OidcSettings {
            name,
            issuer: issuer?,
            client_id: client_id?,
            client_secret,
            redirect_url: redirect_url?,
            scopes,
            username_claim,
            role_claim,
            roles,
            regions_claim,
        })
    }
}
