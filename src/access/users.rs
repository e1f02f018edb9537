//! The users file: the Prometheus exporter-toolkit web config (`basic_auth_users`, a
//! bcrypt hash per user name) extended with each user's role and regions (`users`) and
//! with API tokens kept as SHA-256 digests (`api_tokens`). Read with the same walker
//! and errors as the settings (`file:line:column: message`, every problem at once);
//! an invalid file never replaces a valid one (see [`super::watch`]).
//!
//! ```yaml
//! basic_auth_users:
//!   alice: $2b$12$…            # wardops hash-password
//! users:                       # optional per user; a user not listed is a viewer
//!   alice: { role: admin }
//!   nino: { role: operator, regions: [tbilisi] }
//! api_tokens:                  # wardops new-token NAME
//!   vmscrape: { sha256: 5e88…, role: viewer }
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Role, Scope};
use crate::config::error::{ConfigError, ConfigErrors, Location};
use crate::config::walk::{Walk, Walker};
use crate::config::yaml::Event;

/// A user who logs in with a password.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: Arc<str>,
    /// The bcrypt hash as written (`$2b$…`).
    pub hash: String,
    pub role: Role,
    pub scope: Scope,
}

/// An API token, known only by its digest.
#[derive(Debug, Clone)]
pub struct Token {
    pub name: Arc<str>,
    pub digest: [u8; 32],
    pub role: Role,
    pub scope: Scope,
}

/// The users file as read: who may log in, with which role and scope.
#[derive(Debug, Default)]
pub struct Users {
    accounts: HashMap<String, Account>,
    tokens: Vec<Token>,
    /// SHA-256 of the file's text: a re-read that finds the same text changes nothing.
    pub digest: [u8; 32],
}

const KEYS: &[&str] = &[
    "basic_auth_users",
    "users",
    "api_tokens",
    "tls_server_config",
];
const ENTRY_KEYS: &[&str] = &["role", "regions"];
const TOKEN_KEYS: &[&str] = &["sha256", "role", "regions"];

/// Most names a file may hold: a users file is written by hand, and each entry costs
/// memory on every request's lookups.
pub const MAX_ENTRIES: usize = 10_000;

/// A role, a scope and where they were written, before the names are checked.
#[derive(Default)]
struct RawEntry {
    role: Option<(String, Location)>,
    regions: Option<Vec<String>>,
    sha256: Option<(String, Location)>,
}

impl Users {
    /// Reads the users file at `path`.
    pub fn load(path: &Path) -> Result<Users, ConfigErrors> {
        let text = crate::config::load::read_text(path).map_err(|e| ConfigErrors(vec![e]))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Users, ConfigErrors> {
        let mut errors = Vec::new();
        let mut hashes: Vec<(String, String, Location)> = Vec::new();
        let mut entries: Vec<(String, RawEntry, Location)> = Vec::new();
        let mut tokens: Vec<(String, RawEntry, Location)> = Vec::new();
        let _ = Walker::new(text, path, &mut errors).document(|w, first| {
            if first == Event::End {
                return Ok(());
            }
            let Some(name_at) = w.open_mapping(None, first)? else {
                return Ok(());
            };
            w.mapping("users file", KEYS, |w, key| match key {
                0 => named_values(w, "basic_auth_users", |w, name, at| {
                    if let Some(hash) = w.text(&format!("basic_auth_users.{name}"))? {
                        hashes.push((name, hash.value.into_owned(), at));
                    }
                    Ok(())
                }),
                1 => named_values(w, "users", |w, name, at| {
                    let entry = read_entry(w, &format!("users.{name}"), ENTRY_KEYS)?;
                    entries.push((name, entry, at));
                    Ok(())
                }),
                2 => named_values(w, "api_tokens", |w, name, at| {
                    let entry = read_entry(w, &format!("api_tokens.{name}"), TOKEN_KEYS)?;
                    tokens.push((name, entry, at));
                    Ok(())
                }),
                // exporter-toolkit keeps HTTPS in this file; here it is a setting, so that
                // HTTPS needs no users file.
                _ => {
                    w.error(
                        name_at,
                        "tls_server_config belongs in wardops.yaml, under http: (see \
                         docs/configuration.md, HTTPS)",
                    );
                    w.skip_value()
                }
            })?;
            Ok(())
        });
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        let mut users = Users {
            digest: Sha256::digest(text.as_bytes()).into(),
            ..Users::default()
        };
        let mut error = |at: Location, message: String| {
            errors.push(ConfigError::new(
                crate::config::error::Place::at(path, at),
                message,
            ));
        };
        if hashes.len() + tokens.len() > MAX_ENTRIES {
            error(
                Location::default(),
                format!("more than {MAX_ENTRIES} users and tokens"),
            );
        }
        let written: std::collections::HashSet<String> =
            hashes.iter().map(|(name, _, _)| name.clone()).collect();
        for (name, hash, at) in hashes {
            if let Some(problem) = name_problem(&name) {
                error(
                    at,
                    format!("basic_auth_users: user name {name:?} {problem}"),
                );
            } else if hash.parse::<bcrypt::HashParts>().is_err() {
                error(
                    at,
                    format!(
                        "basic_auth_users.{name}: not a bcrypt hash ($2b$… as `wardops \
                         hash-password` prints); never write a password here"
                    ),
                );
            } else {
                users.accounts.insert(
                    name.clone(),
                    Account {
                        name: name.into(),
                        hash,
                        role: Role::Viewer,
                        scope: Scope::all(),
                    },
                );
            }
        }
        for (name, entry, at) in entries {
            let what = format!("users.{name}");
            let (role, scope) = role_and_scope(&entry, &what, at, &mut error);
            match users.accounts.get_mut(&name) {
                Some(account) => {
                    account.role = role;
                    account.scope = scope;
                }
                // A user whose hash was wrong is reported there, not again here.
                None if written.contains(&name) => {}
                None => error(at, format!("{what}: no such user in basic_auth_users")),
            }
        }
        for (name, entry, at) in tokens {
            let what = format!("api_tokens.{name}");
            if let Some(problem) = name_problem(&name) {
                error(at, format!("api_tokens: token name {name:?} {problem}"));
                continue;
            }
            let (role, scope) = role_and_scope(&entry, &what, at, &mut error);
            let digest = match &entry.sha256 {
                None => {
                    error(at, format!("{what}: missing required key \"sha256\""));
                    continue;
                }
                Some((hex_digest, at)) => match hex::decode(hex_digest.trim()) {
                    Ok(bytes) if bytes.len() == 32 => <[u8; 32]>::try_from(bytes).unwrap(),
                    _ => {
                        error(
                            *at,
                            format!(
                                "{what}.sha256: not a SHA-256 digest (64 hex digits, as \
                                 `wardops new-token` prints); never write the token itself here"
                            ),
                        );
                        continue;
                    }
                },
            };
            if users.tokens.iter().any(|t| t.digest == digest) {
                error(at, format!("{what}: the same token as another"));
                continue;
            }
            users.tokens.push(Token {
                name: name.into(),
                digest,
                role,
                scope,
            });
        }
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        Ok(users)
    }

    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }

    /// The token whose digest is `digest`. Every token is compared, in constant time
    /// each, so how long this takes says nothing of which one (nearly) matched.
    pub fn token(&self, digest: &[u8; 32]) -> Option<&Token> {
        use subtle::ConstantTimeEq;
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.digest.ct_eq(digest)) {
                found = Some(t);
            }
        }
        found
    }

    pub fn account_names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// A hash of the file to check a password of an unknown user against.
    pub fn any_hash(&self) -> Option<String> {
        self.accounts.values().next().map(|a| a.hash.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.tokens.is_empty()
    }

    /// Every (user or token, region) it is limited to, for a warning when the
    /// inventory has no such region (a typo would show that user nothing).
    pub fn regions(&self) -> Vec<(&str, &str)> {
        let accounts = self.accounts.values().map(|a| (&a.name, &a.scope));
        let tokens = self.tokens.iter().map(|t| (&t.name, &t.scope));
        let mut out = Vec::new();
        for (name, scope) in accounts.chain(tokens) {
            for region in scope.listed().unwrap_or_default() {
                out.push((&**name, &**region));
            }
        }
        out
    }
}

/// A mapping from free names to values: `value(walker, name, place)` reads each value.
fn named_values<'a>(
    w: &mut Walker<'a, '_>,
    key: &str,
    mut value: impl FnMut(&mut Walker<'a, '_>, String, Location) -> Walk<()>,
) -> Walk<()> {
    if !w.optional_mapping(key)? {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    loop {
        match w.next()? {
            Event::MappingEnd => return Ok(()),
            Event::Scalar(name) => {
                let name_text = name.value.into_owned();
                if !seen.insert(name_text.clone()) {
                    w.error(name.at, format!("{key}: duplicate name {name_text:?}"));
                    w.skip_value()?;
                } else {
                    value(w, name_text, name.at)?;
                }
            }
            collection => w.collection_as_key(collection)?,
        }
    }
}

fn read_entry(w: &mut Walker<'_, '_>, what: &str, keys: &[&str]) -> Walk<RawEntry> {
    let mut entry = RawEntry::default();
    w.section(what, keys, |w, _, name| {
        match name {
            "role" => {
                if let Some(v) = w.text(&format!("{what}.role"))? {
                    entry.role = Some((v.value.into_owned(), v.at));
                }
            }
            "sha256" => {
                if let Some(v) = w.text(&format!("{what}.sha256"))? {
                    entry.sha256 = Some((v.value.into_owned(), v.at));
                }
            }
            _ => {
                let mut regions = Vec::new();
                w.list(&format!("{what}.regions"), |w, first| {
                    match first {
                        Event::Scalar(s) if !s.is_null() && !s.value.trim().is_empty() => {
                            regions.push(s.value.into_owned())
                        }
                        other => {
                            w.error(
                                start(&other),
                                format!("{what}.regions: expected region names"),
                            );
                            w.skip(other)?;
                        }
                    }
                    Ok(())
                })?;
                entry.regions = Some(regions);
            }
        }
        Ok(())
    })?;
    Ok(entry)
}

fn start(event: &Event<'_>) -> Location {
    match event {
        Event::MappingStart(at) | Event::SequenceStart(at) => *at,
        Event::Scalar(s) => s.at,
        _ => Location::default(),
    }
}

fn role_and_scope(
    entry: &RawEntry,
    what: &str,
    at: Location,
    error: &mut impl FnMut(Location, String),
) -> (Role, Scope) {
    let role = match &entry.role {
        None => Role::Viewer,
        Some((text, at)) => Role::parse(text).unwrap_or_else(|| {
            error(
                *at,
                format!("{what}.role {text:?} is not one of viewer, operator, admin"),
            );
            Role::Viewer
        }),
    };
    let scope = match &entry.regions {
        None => Scope::all(),
        Some(list) if list.is_empty() => {
            error(
                at,
                format!(
                    "{what}.regions is empty: the user would see nothing (leave it out for every region)"
                ),
            );
            Scope::all()
        }
        Some(list) => Scope::regions(list.iter().map(String::as_str)),
    };
    (role, scope)
}

/// What makes a user or token name unusable: it shows in the audit log and the pages,
/// and a basic-auth user name cannot hold `:`.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 64 {
        Some("is longer than 64 bytes")
    } else if name.contains(':') {
        Some("contains ':' (basic auth separates the user name from the password with it)")
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("contains a space or a control character")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `wardops hash-password --cost 4` of "secret".
    pub(crate) const SECRET_HASH: &str =
        "$2b$04$/O/YdYaCmG9hTP.Q59421O3FbMRHvpTtwo3jJYdCtVjpSOf9MCnea";

    fn parse(text: &str) -> Result<Users, String> {
        Users::parse(Path::new("users.yml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn users_roles_regions_and_tokens() {
        let digest = hex::encode(Sha256::digest(b"wdo_token"));
        let text = format!(
            "basic_auth_users:\n  alice: {SECRET_HASH}\n  nino: {SECRET_HASH}\nusers:\n  nino: {{ role: operator, regions: [tbilisi] }}\napi_tokens:\n  vm: {{ sha256: {digest} }}\n"
        );
        let users = parse(&text).unwrap();
        let alice = users.account("alice").unwrap();
        assert_eq!((alice.role, alice.scope.is_all()), (Role::Viewer, true));
        let nino = users.account("nino").unwrap();
        assert_eq!(nino.role, Role::Operator);
        assert!(nino.scope.allows("tbilisi") && !nino.scope.allows("kakheti"));
        let t = users.token(&Sha256::digest(b"wdo_token").into()).unwrap();
        assert_eq!((&*t.name, t.role), ("vm", Role::Viewer));
        assert!(users.token(&Sha256::digest(b"wdo_other").into()).is_none());
        assert!(users.account("bob").is_none());
    }

    #[test]
    fn every_problem_with_its_place() {
        let text = format!(
            "basic_auth_users:\n  alice: hunter2\n  \"a:b\": {SECRET_HASH}\nusers:\n  bob: {{ role: viewer }}\n  alice: {{ role: root, regions: [] }}\napi_tokens:\n  vm: {{ sha256: abc }}\n  x: {{ role: admin }}\nextra: 1\n"
        );
        assert_eq!(
            parse(&text).unwrap_err(),
            "users.yml:10:1: users file: unknown key \"extra\" (known keys: basic_auth_users, users, api_tokens, tls_server_config)"
        );
        let text = text.replace("extra: 1\n", "");
        let e = parse(&text).unwrap_err();
        for want in [
            "users.yml:2:3: basic_auth_users.alice: not a bcrypt hash",
            "users.yml:3:3: basic_auth_users: user name \"a:b\" contains ':'",
            "users.yml:5:3: users.bob: no such user in basic_auth_users",
            "users.yml:6:18: users.alice.role \"root\" is not one of viewer, operator, admin",
            "users.yml:6:3: users.alice.regions is empty",
            "users.yml:8:17: api_tokens.vm.sha256: not a SHA-256 digest",
            "users.yml:9:3: api_tokens.x: missing required key \"sha256\"",
        ] {
            assert!(e.contains(want), "{want}\nnot in:\n{e}");
        }
        assert_eq!(e.lines().count(), 7, "{e}");
    }

    #[test]
    fn an_empty_file_has_nobody() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("basic_auth_users:\n").unwrap().is_empty());
    }
}
