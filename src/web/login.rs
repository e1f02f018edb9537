//! `/login` and `/logout`: a page session from a user name and password of the users
//! file (see [`crate::access`]). The session id goes into an HttpOnly, SameSite=Lax
//! cookie (`Secure` under HTTPS) with the session's absolute lifetime; the login is
//! rate-limited per user and address by the gate, and written to the audit log, failed
//! or not. `next` is followed only to a path of this appliance, never off it.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::{Pages, view};
use crate::access::gate::{Denied, SessionToken};
use crate::access::sessions::{COOKIE, Identity};
use crate::access::{Principal, Via};
use crate::http::BoxFuture;
use crate::http::response::Body;

/// Longest user name and password read from the form.
const MAX_FIELD: usize = 1024;

/// `GET /login`: the form, or who is signed in.
pub fn get(pages: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let next = next_of(req.uri().query().unwrap_or(""));
    form(pages, req, StatusCode::OK, &next, "", None)
}

/// `POST /login` with `user`, `password` and `next`.
pub fn post(pages: Arc<Pages>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        let mut user = String::new();
        let mut password = String::new();
        let mut next = "/".to_string();
        for (k, v) in form_urlencoded::parse(req.body()) {
            match &*k {
                "user" => user = v.chars().take(MAX_FIELD).collect(),
                "password" => password = v.chars().take(MAX_FIELD).collect(),
                "next" => next = safe_next(&v),
                _ => {}
            }
        }
        let asker = Principal::of(&req);
        let gate = &pages.ctx.gate;
        match gate.password(&user, &password, asker.address).await {
            Ok(principal) => signed_in(
                &pages,
                &req,
                &principal,
                Identity::Local,
                &next,
                "signed in",
            ),
            Err(denied) => {
                let (status, problem, detail) = match denied {
                    Denied::TooMany(wait) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "Too many failed sign-ins for this user or from this address: try again in {} s.",
                            wait.as_secs().max(1)
                        ),
                        "refused: too many failures",
                    ),
                    _ => (
                        StatusCode::UNAUTHORIZED,
                        "Wrong user name or password.".to_string(),
                        "failed",
                    ),
                };
                let mut tried = asker.clone();
                tried.name = user.clone().into();
                pages.ctx.audit(&tried, "login", &user, detail);
                form(&pages, &req, status, &next, &user, Some(&problem))
            }
        }
    })
}

/// `POST /logout`: ends the session (the router checked its CSRF token).
pub fn logout(pages: Arc<Pages>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        let principal = Principal::of(&req);
        if let Some(id) = crate::access::gate::session_cookie(req.headers()) {
            pages.ctx.gate.sessions.remove(id);
        }
        if principal.via == Via::Session {
            pages
                .ctx
                .audit(&principal, "logout", &principal.name, "signed out");
        }
        let mut r = see_other("/login");
        r.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static("wardops_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        );
        r
    })
}

/// A page session for `principal` (who `identity` says), written to the audit log with
/// `detail`: the cookie, and a 303 to `next` (a checked local path). Shared by the
/// password login and OpenID Connect's callback.
pub(super) fn signed_in(
    pages: &Pages,
    req: &Request<Bytes>,
    principal: &Principal,
    identity: Identity,
    next: &str,
    detail: &str,
) -> Response<Body> {
    let gate = &pages.ctx.gate;
    let (id, _) = gate.sessions.create(principal.name.clone(), identity);
    pages.ctx.audit(principal, "login", &principal.name, detail);
    let mut r = see_other(next);
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        gate.sessions.absolute().as_secs(),
        if crate::http::is_secure(req) {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The login page with `status`, and `problem` said above the form.
pub(super) fn form(
    pages: &Pages,
    req: &Request<Bytes>,
    status: StatusCode,
    next: &str,
    typed_user: &str,
    problem: Option<&str>,
) -> Response<Body> {
    let principal = Principal::of(req);
    let user = req.extensions().get::<SessionToken>().map(|s| {
        minijinja::context! {
            name => &*principal.name,
            role => principal.role.as_str(),
            regions => principal.scope.listed().map(|r| r.iter().map(|r| r.to_string()).collect::<Vec<_>>()),
            csrf => &*s.csrf,
        }
    });
    let ctx = minijinja::context! {
        asset_version => super::assets::version(),
        user,
        next,
        typed_user,
        problem,
        anonymous => pages.ctx.gate.anonymous().is_some(),
        oidc => pages.ctx.oidc.as_ref().map(|o| o.name()),
    };
    let mut r = view::render(pages, "login.html", ctx);
    *r.status_mut() = status;
    r
}

pub(super) fn see_other(location: &str) -> Response<Body> {
    let mut r =
        crate::http::response::bytes(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub(super) fn next_of(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "next")
        .map_or_else(|| "/".into(), |(_, v)| safe_next(&v))
}

/// `next` if it is a path of this appliance (`/…`, not `//host` nor `/\host`, which
/// browsers read as another site), else `/`.
fn safe_next(next: &str) -> String {
    let ours = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control())
        && next.len() <= 2048;
    if ours { next.into() } else { "/".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_never_leaves_the_appliance() {
        for (given, kept) in [
            ("/monitor?region=a", "/monitor?region=a"),
            ("//evil.example/", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example", "/"),
            ("javascript:alert(1)", "/"),
            ("/x\r\nSet-Cookie: a=b", "/"),
            ("", "/"),
        ] {
            assert_eq!(safe_next(given), kept, "{given:?}");
        }
        assert_eq!(next_of("next=%2Falerts"), "/alerts");
    }
}
