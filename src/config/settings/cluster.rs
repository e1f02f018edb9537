//! The `cluster:` section: this appliance as one member of several that share one
//! PostgreSQL and split the devices between them (see `crate::cluster`,
//! docs/cluster.md). Without a member id there is no cluster, and the appliance runs
//! alone exactly as without the section.
//!
//! The member id usually differs per host while the file is the same everywhere (it is
//! kept in git), so `WARDOPS_CLUSTER_MEMBER_ID` sets it; `WARDOPS_REDIS_URL` likewise
//! sets the Redis URL, which may then carry a password the file must not.

use std::path::Path;
use std::time::Duration;

use crate::config::duration;
use crate::config::error::{ConfigError, Location, Place, Spanned};
use crate::config::walk::{Walk, Walker};
use crate::config::yaml::Event;

/// One member's cluster settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// This member's name in `cluster_members` and the leases: unique in the cluster,
    /// stable across restarts (a restart under a new id waits out the old one's leases).
    pub member_id: String,
    /// Where this member's pages and API are, as `GET /api/v1/cluster` shows it to the
    /// others. None: `http://` and the listen address.
    pub url: Option<String>,
    /// How long a lease lasts unrenewed: a dead member's devices wait at most this long
    /// (plus a renewal) for a new owner.
    pub lease_ttl: Duration,
    /// How long before its lease could expire a member that cannot renew stops probing
    /// and writing: covers clock drift, a pause of the process and stopping the probes.
    pub fence_margin: Duration,
    /// The Redis of the live event feed. Required: while it is away the members read
    /// each other's devices from PostgreSQL instead, but the outbox of events waits for
    /// it.
    pub redis_url: String,
}

pub(in crate::config) const KEYS: &[&str] =
    &["member_id", "url", "lease_ttl", "fence_margin", "redis_url"];

pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(6);
/// Below 2 s a renewal every `ttl / 3` is a busy database's jitter; above a minute a
/// dead member's devices go unwatched longer than anyone would choose.
const LEASE_TTL: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(60));
/// At least the margin a pause of the process needs; under a third of the TTL, so that
/// the fence comes after the next renewal is due and a healthy member never stops.
const MIN_MARGIN: Duration = Duration::from_millis(100);

/// `cluster:` as written.
#[derive(Debug, Default)]
pub(super) struct RawCluster {
    at: Option<Location>,
    member_id: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    lease_ttl: Option<Spanned<String>>,
    fence_margin: Option<Spanned<String>>,
    redis_url: Option<Spanned<String>>,
}

/// What the environment says of the cluster.
#[derive(Debug, Default, Clone)]
pub struct ClusterEnv {
    /// `WARDOPS_CLUSTER_MEMBER_ID`.
    pub member_id: Option<String>,
    /// `WARDOPS_REDIS_URL`.
    pub redis_url: Option<String>,
}

impl RawCluster {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        // Like `Walker::section`, but where the section starts is kept: a section with
        // no member id is an error there.
        let first = w.next()?;
        if matches!(&first, Event::Scalar(s) if s.is_null()) {
            return Ok(raw);
        }
        raw.at = w.open_mapping(Some("cluster"), first)?;
        if raw.at.is_none() {
            return Ok(raw);
        }
        w.mapping("cluster", KEYS, |w, key| {
            let value = w.optional_string(KEYS[key])?;
            match key {
                0 => raw.member_id = value,
                1 => raw.url = value,
                2 => raw.lease_ttl = value,
                3 => raw.fence_margin = value,
                _ => raw.redis_url = value,
            }
            Ok(())
        })?;
        Ok(raw)
    }

    /// The member's settings, or None when no member id is set (in the file or the
    /// environment). `postgres` says whether the database is PostgreSQL: a cluster
    /// needs one.
    pub(super) fn resolve(
        &self,
        env: &ClusterEnv,
        postgres: bool,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> Option<ClusterSettings> {
        let place = |at: Option<Location>| match at {
            Some(at) => Place::at(path, at),
            None => Place::of_file(path),
        };
        let env_place = |name: &str| Place::of_file(Path::new(name));
        let (member_id, id_place) = match (&env.member_id, &self.member_id) {
            (Some(id), _) => (
                id.trim().to_string(),
                env_place("WARDOPS_CLUSTER_MEMBER_ID"),
            ),
            (None, Some(v)) if !v.value.trim().is_empty() => {
                (v.value.trim().to_string(), Place::at(path, v.at))
            }
            (None, _) => {
                if self.at.is_some() {
                    errors.push(ConfigError::new(
                        place(self.at),
                        "cluster: member_id is required (or WARDOPS_CLUSTER_MEMBER_ID); \
                         leave the section out to run alone",
                    ));
                }
                return None;
            }
        };
        let before = errors.len();
        if let Some(problem) = member_id_problem(&member_id) {
            errors.push(ConfigError::new(
                id_place.clone(),
                format!("cluster.member_id {member_id:?} {problem}"),
            ));
        }
        if !postgres {
            errors.push(ConfigError::new(
                id_place,
                "cluster: a member needs PostgreSQL (database_url postgres://…): the \
                 members share its leases and history",
            ));
        }
        let mut s = ClusterSettings {
            member_id,
            url: None,
            lease_ttl: DEFAULT_LEASE_TTL,
            fence_margin: DEFAULT_LEASE_TTL / 6,
            redis_url: String::new(),
        };
        if let Some(v) = &self.url {
            s.url = url(
                &v.value,
                "cluster.url",
                &["http", "https"],
                Place::at(path, v.at),
                errors,
            );
        }
        let mut time = |v: &Option<Spanned<String>>, key: &str| {
            let v = v.as_ref()?;
            match duration::parse(&v.value) {
                Ok(d) => Some((d, Place::at(path, v.at))),
                Err(e) => {
                    errors.push(ConfigError::new(
                        Place::at(path, v.at),
                        format!("cluster.{key}: {e}"),
                    ));
                    None
                }
            }
        };
        let ttl = time(&self.lease_ttl, "lease_ttl");
        let margin = time(&self.fence_margin, "fence_margin");
        if let Some((ttl, at)) = ttl {
            let (lo, hi) = LEASE_TTL;
            if (lo..=hi).contains(&ttl) {
                s.lease_ttl = ttl;
                s.fence_margin = ttl / 6;
            } else {
                let message = format!(
                    "cluster.lease_ttl {} is out of range (2s to 60s)",
                    duration::format(ttl)
                );
                errors.push(ConfigError::new(at, message));
            }
        }
        if let Some((margin, at)) = margin {
            if margin >= MIN_MARGIN && margin < s.lease_ttl / 3 {
                s.fence_margin = margin;
            } else {
                let message = format!(
                    "cluster.fence_margin {} is out of range (100ms to under a third of \
                     lease_ttl {}: a member renews every third of it)",
                    duration::format(margin),
                    duration::format(s.lease_ttl)
                );
                errors.push(ConfigError::new(at, message));
            }
        }
        let redis_url = match (&env.redis_url, &self.redis_url) {
            // The environment is not the repository: a password may be in it.
            (Some(v), _) => redis_url_problem(v, true).map_or_else(
                || Some(v.trim().to_string()),
                |problem| {
                    errors.push(ConfigError::new(
                        env_place("WARDOPS_REDIS_URL"),
                        format!("WARDOPS_REDIS_URL {problem}"),
                    ));
                    None
                },
            ),
            (None, Some(v)) if !v.value.trim().is_empty() => {
                match redis_url_problem(&v.value, false) {
                    None => Some(v.value.trim().to_string()),
                    Some(problem) => {
                        errors.push(ConfigError::new(
                            Place::at(path, v.at),
                            format!("cluster.redis_url {problem}"),
                        ));
                        None
                    }
                }
            }
            (None, _) => {
                errors.push(ConfigError::new(
                    place(self.at),
                    "cluster: redis_url is required (or WARDOPS_REDIS_URL): the members' \
                     live event feed",
                ));
                None
            }
        };
        s.redis_url = redis_url.unwrap_or_default();
        (errors.len() == before).then_some(s)
    }
}

/// Ids go into URLs, logs and label values: a short word, no spaces or markup.
fn member_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() || id.len() > 64 {
        Some("must be 1 to 64 characters")
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
    {
        Some("may hold only letters, digits and . _ - :")
    } else {
        None
    }
}

/// `url` trimmed of a trailing `/` if it parses with one of `schemes` and holds no
/// password; else its error is reported.
fn url(
    text: &str,
    key: &str,
    schemes: &[&str],
    place: Place,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let text = text.trim();
    let problem = match reqwest::Url::parse(text) {
        Err(e) => Some(format!("is not a URL: {e}")),
        Ok(u) if !schemes.contains(&u.scheme()) => {
            Some(format!("must start with {}://", schemes.join(":// or ")))
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            Some("must not hold a user name or password".into())
        }
        Ok(_) => None,
    };
    match problem {
        None => Some(text.trim_end_matches('/').to_string()),
        Some(problem) => {
            errors.push(ConfigError::new(place, format!("{key} {text:?} {problem}")));
            None
        }
    }
}

/// What is wrong with a Redis URL, if anything; a password only where `secret_ok`.
fn redis_url_problem(text: &str, secret_ok: bool) -> Option<String> {
    match reqwest::Url::parse(text.trim()) {
        Err(e) => Some(format!("is not a URL: {e}")),
        Ok(u) if !matches!(u.scheme(), "redis" | "rediss") => {
            Some("must start with redis:// or rediss://".into())
        }
        Ok(u) if !secret_ok && u.password().is_some() => Some(
            "must not hold a password (the settings are kept in git): set \
             WARDOPS_REDIS_URL in the environment instead"
                .into(),
        ),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::settings::tests::parse;

    const PG: &str = "database_url: postgres://wardops@db/wardops\n";
    const REDIS: &str = "redis_url: redis://127.0.0.1:6379\n";

    #[test]
    fn no_member_id_no_cluster() {
        assert_eq!(parse("").unwrap().cluster, None);
        assert_eq!(parse(PG).unwrap().cluster, None);
    }

    #[test]
    fn a_member_with_defaults_and_with_every_key() {
        let s = parse(&format!("{PG}cluster:\n  member_id: noc-a\n  {REDIS}")).unwrap();
        let c = s.cluster.unwrap();
        assert_eq!(c.member_id, "noc-a");
        assert_eq!(c.lease_ttl, Duration::from_secs(6));
        assert_eq!(c.fence_margin, Duration::from_secs(1));
        assert_eq!(c.url, None);
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379");
        let s = parse(&format!(
            "{PG}cluster:\n  member_id: noc-b\n  url: https://noc-b.bank:5001/\n  \
             lease_ttl: 9s\n  fence_margin: 2s\n  redis_url: redis://127.0.0.1:6379/0\n"
        ))
        .unwrap();
        let c = s.cluster.unwrap();
        assert_eq!(c.url.as_deref(), Some("https://noc-b.bank:5001"));
        assert_eq!(c.lease_ttl, Duration::from_secs(9));
        assert_eq!(c.fence_margin, Duration::from_secs(2));
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379/0");
        // The margin follows a TTL written without it.
        let s = parse(&format!(
            "{PG}cluster:\n  member_id: x\n  lease_ttl: 12s\n  {REDIS}"
        ))
        .unwrap();
        assert_eq!(s.cluster.unwrap().fence_margin, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_are_refused_at_their_place() {
        let err = parse(&format!(
            "{PG}cluster:\n  member_id: a b\n  lease_ttl: 1s\n  url: ftp://x\n  {REDIS}"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            "w.yaml:3:14: cluster.member_id \"a b\" may hold only letters, digits and . _ - :\n\
             w.yaml:4:14: cluster.lease_ttl 1s is out of range (2s to 60s)\n\
             w.yaml:5:8: cluster.url \"ftp://x\" must start with http:// or https://"
        );
        let err = parse(&format!(
            "{PG}cluster:\n  member_id: a\n  fence_margin: 2s\n  redis_url: redis://:pw@r:6379\n"
        ))
        .unwrap_err();
        assert!(
            err.starts_with(
                "w.yaml:4:17: cluster.fence_margin 2s is out of range (100ms to under a third of lease_ttl 6s"
            ),
            "{err}"
        );
        assert!(
            err.contains("w.yaml:5:14: cluster.redis_url must not hold a password"),
            "{err}"
        );
        assert!(!err.contains("pw"), "the password is not repeated: {err}");
        assert_eq!(
            parse("cluster:\n  lease_ttl: 6s\n").unwrap_err(),
            "w.yaml:2:3: cluster: member_id is required (or WARDOPS_CLUSTER_MEMBER_ID); \
             leave the section out to run alone"
        );
        assert_eq!(
            parse(&format!("cluster:\n  member_id: a\n  {REDIS}")).unwrap_err(),
            "w.yaml:2:14: cluster: a member needs PostgreSQL (database_url postgres://…): \
             the members share its leases and history"
        );
        assert_eq!(
            parse(&format!("{PG}cluster:\n  member_id: a\n")).unwrap_err(),
            "w.yaml:3:3: cluster: redis_url is required (or WARDOPS_REDIS_URL): the members' \
             live event feed"
        );
        let err = parse("cluster:\n  member_ip: a\n").unwrap_err();
        assert!(err.contains("did you mean \"member_id\"?"), "{err}");
    }
}
