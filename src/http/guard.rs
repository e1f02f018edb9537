//! The door of every route: who the request is ([`crate::access::gate`]), whether that
//! is enough for the route's [`Need`], and, for a write, whether it comes from our own
//! pages. Runs in the router after the request is read and before its handler, so no
//! route can forget it; the handler finds the [`Principal`] (and a session's CSRF
//! token) in the request's extensions.
//!
//! - Not enough and nobody signed in: a browser asking for a page is sent to
//!   `/login?next=…`; anything else gets 401 (`WWW-Authenticate: Basic` only when it
//!   tried basic auth, so that a page's script never pops up the browser's own dialog).
//! - Signed in without the role: 403 naming the role it needs.
//! - A `POST` whose `Origin` is another site: 403, whoever it is; a `POST` of a page
//!   session without its CSRF token: 403.

use std::net::IpAddr;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::response::{self, Body};
use super::route::Need;
use crate::access::gate::{self, Denied, Gate, SessionToken};
use crate::access::{Principal, Role};

/// Lets `req` through to a route that needs `need` (a write when `write`), with its
/// principal in its extensions; or the response that refuses it.
pub async fn admit(
    gate: &Gate,
    need: Need,
    write: bool,
    req: &mut Request<Bytes>,
    peer: IpAddr,
) -> Result<(), Response<Body>> {
    if write && !gate::same_origin(req.headers()) {
        return Err(response::error(
            StatusCode::FORBIDDEN,
            "cross-origin request refused: changes are made from this appliance's own pages",
        ));
    }
    let (principal, session) = match need {
        // Public routes never fail on credentials; a session still names its user
        // (the login page says who is signed in).
        Need::Nobody => {
            match gate::session_cookie(req.headers()).and_then(|id| gate.sessions.get(id)) {
                Some(s) => match gate.session_principal(&s, peer) {
                    Some(p) => (p, Some(s)),
                    None => (gate.nobody(peer), None),
                },
                None => (gate.nobody(peer), None),
            }
        }
        Need::Role(role) => {
            let (principal, session) = match gate.authenticate(req.headers(), peer).await {
                Ok(found) => found,
                Err(denied) => return Err(refused(denied, req)),
            };
            if !gate.admits(&principal, role) {
                return Err(if principal.is_authenticated() {
                    response::error(
                        StatusCode::FORBIDDEN,
                        &format!(
                            "{} is a {}; this needs the {} role",
                            principal.name,
                            principal.role.as_str(),
                            role.as_str()
                        ),
                    )
                } else {
                    sign_in_first(req, role)
                });
            }
            (principal, session)
        }
    };
    if let Some(session) = session {
        if write && !gate::carries_csrf(&session, req.headers(), req.body()) {
            return Err(response::error(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again",
            ));
        }
        req.extensions_mut().insert(SessionToken {
            csrf: session.csrf.clone(),
        });
    }
    req.extensions_mut().insert::<Principal>(principal);
    Ok(())
}

fn refused(denied: Denied, req: &Request<Bytes>) -> Response<Body> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "));
    let mut r = match denied {
        Denied::BadCredentials => response::error(
            StatusCode::UNAUTHORIZED,
            "wrong user name, password or token",
        ),
        Denied::Malformed => response::error(
            StatusCode::UNAUTHORIZED,
            "unreadable Authorization header: send Basic user:password or Bearer <token>",
        ),
        Denied::TooMany(wait) => {
            let mut r = response::error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins for this user or address: wait and try again",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            return r;
        }
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(if basic {
            "Basic realm=\"wardops\", charset=\"UTF-8\""
        } else {
            "Bearer realm=\"wardops\""
        }),
    );
    r
}

/// Nobody is signed in and the route needs `role`: a page is sent to the login page,
/// which comes back here after; anything else is a 401.
fn sign_in_first(req: &Request<Bytes>, role: Role) -> Response<Body> {
    let path = req.uri().path();
    let page =
        req.method() == hyper::Method::GET && super::error_page::wants_html(req.headers(), path);
    if page {
        let here = req.uri().path_and_query().map_or(path, |p| p.as_str());
        let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
        let mut r = response::bytes(
            StatusCode::SEE_OTHER,
            "text/plain; charset=utf-8",
            "sign in first\n",
        );
        if let Ok(location) = HeaderValue::from_str(&format!("/login?next={next}")) {
            r.headers_mut().insert(header::LOCATION, location);
        }
        return r;
    }
    let mut r = response::error(
        StatusCode::UNAUTHORIZED,
        &format!(
            "sign in first: this needs {} {} (basic auth, an API token, or a session from /login)",
            if role == Role::Admin { "an" } else { "a" },
            role.as_str()
        ),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"wardops\""),
    );
    r
}
