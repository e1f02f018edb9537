//! Who is asking, and what they may do: roles, region scope and the principal every
//! request carries.
//!
//! The HTTP router authenticates each request before its handler runs and puts the
//! [`Principal`] in the request's extensions; handlers read it with
//! [`Principal::of`]. A route says the least [`Role`] it needs; a write always needs
//! an authenticated user. A principal limited to some regions sees only those
//! regions' devices, alerts, counts, transitions and events on every surface
//! ([`Scope`]).
//!
//! - [`users`]: the users file (exporter-toolkit's web config with roles, regions and
//!   API tokens); [`watch`] re-reads it when it changes.
//! - [`gate`]: who a request is (token, basic auth, session, nobody), same-origin and
//!   CSRF checks; [`sessions`]: page sessions; [`attempts`]: the login rate limit;
//!   [`probe_limits`]: how often "probe now" may be asked for.
//! - [`oidc`]: sign-in with an OpenID Connect provider, role and regions from claims.

pub mod attempts;
pub mod gate;
pub mod oidc;
pub mod probe_limits;
pub mod sessions;
pub mod users;
pub mod watch;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::Bytes;
use hyper::Request;

/// What a principal may do; each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads every surface in its scope.
    Viewer,
    /// Also acknowledges, silences and probes now.
    Operator,
    /// Also reloads, reads the audit log: everything.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The regions a principal sees: all of them, or a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(Option<Arc<[Arc<str>]>>);

impl Scope {
    /// Every region.
    pub fn all() -> Scope {
        Scope(None)
    }

    /// Only these regions (none at all when `regions` is empty).
    pub fn regions<I: IntoIterator<Item = S>, S: Into<Arc<str>>>(regions: I) -> Scope {
        Scope(Some(regions.into_iter().map(Into::into).collect()))
    }

    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }

    /// The regions of a limited scope; None for all.
    pub fn listed(&self) -> Option<&[Arc<str>]> {
        self.0.as_deref()
    }

    /// True if a device of `region` is visible in this scope.
    pub fn allows(&self, region: &str) -> bool {
        self.0
            .as_deref()
            .is_none_or(|list| list.iter().any(|r| &**r == region))
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Nobody: the read-only viewer that `access.anonymous: viewer` lets in.
    Anonymous,
    /// A page session (`/login`, or OpenID Connect).
    Session,
    /// HTTP basic auth against the users file.
    Basic,
    /// `Authorization: Bearer` with an API token.
    Token,
}

impl Via {
    /// As the audit log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Anonymous => "anonymous",
            Via::Session => "session",
            Via::Basic => "basic",
            Via::Token => "token",
        }
    }
}

/// Who sent a request, with the role and scope they act with.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user or token name; `anonymous` for nobody.
    pub name: Arc<str>,
    pub role: Role,
    pub scope: Scope,
    pub via: Via,
    /// The client's address, for the audit log and rate limits.
    pub address: IpAddr,
}

impl Principal {
    /// The anonymous read-only viewer of every region.
    pub fn anonymous(address: IpAddr) -> Principal {
        Principal {
            name: "anonymous".into(),
            role: Role::Viewer,
            scope: Scope::all(),
            via: Via::Anonymous,
            address,
        }
    }

    /// The principal the router put on `req`. A request that did not come through the
    /// router (a handler called directly by a unit test or a bench) is the anonymous
    /// viewer: the router always sets one, so this never widens a real request.
    pub fn of(req: &Request<Bytes>) -> Principal {
        req.extensions()
            .get::<Principal>()
            .cloned()
            .unwrap_or_else(|| Principal::anonymous(IpAddr::V4(Ipv4Addr::LOCALHOST)))
    }

    pub fn is_authenticated(&self) -> bool {
        self.via != Via::Anonymous
    }

    /// True if this principal has at least `role`; writes also need an authenticated
    /// user whatever the anonymous role.
    pub fn may(&self, role: Role) -> bool {
        self.role >= role && (role == Role::Viewer || self.is_authenticated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_limited_scope_sees_only_its_regions() {
        let s = Scope::regions(["tbilisi"]);
        assert!(s.allows("tbilisi") && !s.allows("kakheti") && !s.allows("Tbilisi"));
        assert!(Scope::all().allows("anything"));
        assert!(!Scope::regions(Vec::<String>::new()).allows("tbilisi"));
    }

    #[test]
    fn anonymous_never_writes() {
        let mut p = Principal::anonymous(IpAddr::V4(Ipv4Addr::LOCALHOST));
        p.role = Role::Admin;
        assert!(p.may(Role::Viewer) && !p.may(Role::Operator));
        p.via = Via::Session;
        assert!(p.may(Role::Admin));
    }
}
