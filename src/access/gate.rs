//! The gate every request passes: who it is (an API token, basic auth, a page session,
//! or nobody), and whether a state-changing request comes from our own pages (its
//! origin, and the session's CSRF token).
//!
//! Passwords are bcrypt (exporter-toolkit's convention), which costs a quarter of a
//! second a check by design: a password that checked out is remembered for a while by
//! the digest of (user, password, hash), so basic auth on every API call does not pay
//! it each time, and at most [`BCRYPT_AT_ONCE`] checks run at once, so a flood of
//! guesses cannot take every core. An unknown user costs the same check as a known one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::attempts::Attempts;
use super::sessions::{self, Identity, Session, Sessions};
use super::users::Users;
use super::{Principal, Role, Via};
use crate::config::settings::AccessSettings;

/// bcrypt checks running at once; the rest wait their turn (under the request timeout).
pub const BCRYPT_AT_ONCE: usize = 2;

/// How long a password that checked out is taken without checking again.
pub const VERIFIED_FOR: Duration = Duration::from_secs(300);

/// Most remembered (user, password) digests.
const MAX_VERIFIED: usize = 4096;

/// Why a request is not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Credentials were sent and are wrong (unknown user, wrong password or token, an
    /// expired session is not this: it is no credentials).
    BadCredentials,
    /// Too many failures for this user or address: retry after this long.
    TooMany(Duration),
    /// An `Authorization` header that is neither `Basic` nor `Bearer`, or not readable.
    Malformed,
}

/// A page session as the router hands it on: its CSRF token goes into every form.
#[derive(Debug, Clone)]
pub struct SessionToken {
    pub csrf: Arc<str>,
}

pub struct Gate {
    users: ArcSwap<Users>,
    pub sessions: Sessions,
    pub attempts: Attempts,
    anonymous: Option<Role>,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    bcrypt: Semaphore,
}

impl Gate {
    pub fn new(settings: &AccessSettings, users: Users) -> Gate {
        Gate {
            users: ArcSwap::from_pointee(users),
            sessions: Sessions::new(settings.session_idle, settings.session_absolute),
            attempts: Attempts::new(
                settings.login_failures_per_user,
                settings.login_failures_per_address,
                settings.login_window,
            ),
            anonymous: settings.anonymous,
            verified: Mutex::new(HashMap::new()),
            bcrypt: Semaphore::new(BCRYPT_AT_ONCE),
        }
    }

    /// The gate of an appliance without a users file that lets anyone read: the
    /// default on loopback.
    pub fn open() -> Gate {
        Gate::new(&AccessSettings::defaults(true), Users::default())
    }

    pub fn users(&self) -> Arc<Users> {
        self.users.load_full()
    }

    /// Puts a newly read users file in force; sessions of users it no longer has end.
    pub fn replace_users(&self, users: Users) {
        let old = self.users.swap(Arc::new(users));
        let new = self.users.load();
        for name in old.account_names() {
            if new.account(name).is_none() {
                self.sessions.remove_user(name);
            }
        }
        self.verified.lock().clear();
    }

    /// Whether a request without credentials may read.
    pub fn anonymous(&self) -> Option<Role> {
        self.anonymous
    }

    /// Who sent a request with `headers` from `address`: a token or basic auth in
    /// `Authorization` (which, if sent, must be right: a wrong one is not read as
    /// anonymous), else the session its cookie names, else the anonymous viewer (its
    /// role None when anonymous access is off).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        address: IpAddr,
    ) -> Result<(Principal, Option<Session>), Denied> {
        if let Some(value) = headers.get(AUTHORIZATION) {
            let value = value.to_str().map_err(|_| Denied::Malformed)?;
            let (scheme, credentials) = value.split_once(' ').ok_or(Denied::Malformed)?;
            let credentials = credentials.trim();
            if scheme.eq_ignore_ascii_case("bearer") {
                return self.token(credentials, address).map(|p| (p, None));
            }
            if scheme.eq_ignore_ascii_case("basic") {
                let decoded = STANDARD
                    .decode(credentials)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(Denied::Malformed)?;
                let (user, password) = decoded.split_once(':').ok_or(Denied::Malformed)?;
                let mut principal = self.password(user, password, address).await?;
                principal.via = Via::Basic;
                return Ok((principal, None));
            }
            return Err(Denied::Malformed);
        }
        if let Some(session) = session_cookie(headers).and_then(|id| self.sessions.get(id))
            && let Some(principal) = self.session_principal(&session, address)
        {
            return Ok((principal, Some(session)));
        }
        Ok((self.nobody(address), None))
    }

    /// The principal of a request without credentials.
    pub fn nobody(&self, address: IpAddr) -> Principal {
        Principal::anonymous(address)
    }

    /// True if `principal` may call a route that needs `role`: an authenticated one
    /// with the role, or nobody where anonymous access reaches that far (never past
    /// reading).
    pub fn admits(&self, principal: &Principal, role: Role) -> bool {
        principal.may(role)
            && (principal.is_authenticated() || self.anonymous.is_some_and(|a| a >= role))
    }

    /// The principal a session stands for, with its user's role and scope as the users
    /// file says now; None when the user is gone from it.
    pub fn session_principal(&self, session: &Session, address: IpAddr) -> Option<Principal> {
        let (role, scope) = match &session.identity {
            Identity::External { role, scope } => (*role, scope.clone()),
            Identity::Local => {
                let users = self.users.load();
                let account = users.account(&session.user)?;
                (account.role, account.scope.clone())
            }
        };
        Some(Principal {
            name: session.user.clone(),
            role,
            scope,
            via: Via::Session,
            address,
        })
    }

    /// Checks `user`'s `password` (rate-limited per user and address): the principal it
    /// proves, or why not.
    pub async fn password(
        &self,
        user: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<Principal, Denied> {
        self.attempts
            .check(user, address)
            .map_err(Denied::TooMany)?;
        let users = self.users.load_full();
        let account = users.account(user);
        let key: [u8; 32] = {
            let mut h = Sha256::new();
            for part in [user, password, account.map_or("", |a| &a.hash)] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.finalize().into()
        };
        let remembered = account.is_some()
            && self
                .verified
                .lock()
                .get(&key)
                .is_some_and(|at| at.elapsed() < VERIFIED_FOR);
        let good = remembered || {
            // An unknown user is checked against a real hash too: the answer takes as
            // long, and says nothing of which names exist.
            let Some(hash) = account.map(|a| a.hash.clone()).or_else(|| users.any_hash()) else {
                self.attempts.failed(user, address);
                return Err(Denied::BadCredentials);
            };
            let _turn = self.bcrypt.acquire().await.expect("never closed");
            let password = password.to_owned();
            let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(false);
            ok && account.is_some()
        };
        let Some(account) = account.filter(|_| good) else {
            self.attempts.failed(user, address);
            return Err(Denied::BadCredentials);
        };
        if !remembered {
            let mut verified = self.verified.lock();
            if verified.len() >= MAX_VERIFIED {
                verified.retain(|_, at| at.elapsed() < VERIFIED_FOR);
                if verified.len() >= MAX_VERIFIED {
                    verified.clear();
                }
            }
            verified.insert(key, Instant::now());
        }
        self.attempts.succeeded(user);
        Ok(Principal {
            name: account.name.clone(),
            role: account.role,
            scope: account.scope.clone(),
            via: Via::Session,
            address,
        })
    }

    fn token(&self, token: &str, address: IpAddr) -> Result<Principal, Denied> {
        // Tokens are 256 random bits: no guessing to rate-limit, and SHA-256 is enough.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let users = self.users.load();
        let t = users.token(&digest).ok_or(Denied::BadCredentials)?;
        Ok(Principal {
            name: t.name.clone(),
            role: t.role,
            scope: t.scope.clone(),
            via: Via::Token,
            address,
        })
    }
}

/// The session id the request's cookies carry, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == sessions::COOKIE)
        .map(|(_, value)| value)
}

/// True unless the request says it comes from another site: its `Origin` names
/// another host than the one it was sent to (or is `null`), or, without `Origin`, the
/// browser marks it `Sec-Fetch-Site: cross-site`. Clients that are not browsers send
/// neither and are let through (they carry their own credentials, not a cookie).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        return matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
    }
    headers
        .get("sec-fetch-site")
        .is_none_or(|v| v.as_bytes() != b"cross-site")
}

/// True if the request carries `session`'s CSRF token, in `X-CSRF-Token` or as the
/// `csrf_token` field of a form body; compared in constant time.
pub fn carries_csrf(session: &Session, headers: &HeaderMap, body: &[u8]) -> bool {
    let want = session.csrf.as_bytes();
    let matches = |have: &[u8]| bool::from(have.ct_eq(want));
    if let Some(v) = headers.get("x-csrf-token") {
        return matches(v.as_bytes());
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf_token")
        .is_some_and(|(_, v)| matches(v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_post_from_another_site_is_not_ours() {
        let host = ("host", "127.0.0.1:5001");
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:5001")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "https://127.0.0.1:5001")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[(
            "origin",
            "http://127.0.0.1:5001"
        )])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(same_origin(&headers(&[host])), "curl sends neither");
    }

    #[test]
    fn the_session_cookie_among_others() {
        let h = headers(&[("cookie", "theme=dark; wardops_session=abc; x=1")]);
        assert_eq!(session_cookie(&h), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "wardops_session=def")]);
        assert_eq!(session_cookie(&h), Some("def"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "wardops_sessionx=1")])),
            None
        );
    }

    #[tokio::test]
    async fn csrf_in_a_header_or_a_form_field() {
        let gate = Gate::open();
        let (_, s) = gate.sessions.create("alice".into(), Identity::Local);
        let token = s.csrf.to_string();
        assert!(carries_csrf(&s, &headers(&[("x-csrf-token", &token)]), b""));
        let body = format!("comment=hi&csrf_token={token}");
        assert!(carries_csrf(&s, &HeaderMap::new(), body.as_bytes()));
        assert!(!carries_csrf(&s, &HeaderMap::new(), b"comment=hi"));
        assert!(!carries_csrf(
            &s,
            &headers(&[("x-csrf-token", "wrong")]),
            body.as_bytes()
        ));
    }
}
