//! `/login/oidc` and its callback: sign-in with the OpenID Connect provider of
//! `access.oidc` (see [`crate::access::oidc`]). The first sends the browser to the
//! provider with a fresh `state` in a short-lived cookie of its own; the callback checks
//! the provider's answer and makes a page session with the role and regions the claims
//! give, as `/login` does. Every refusal is the login page with its reason and a 4xx
//! (503 while the provider cannot be reached); 404 when OIDC is not set up.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::Pages;
use super::login::{form, next_of, see_other, signed_in};
use crate::access::oidc::{OidcError, PENDING_FOR, STATE_COOKIE};
use crate::access::sessions::Identity;
use crate::access::{Principal, Via};
use crate::http::BoxFuture;
use crate::http::response::{self, Body};

/// Longest `code`, `state` or provider error text read from the callback's query.
const MAX_PARAM: usize = 2048;

/// `GET /login/oidc?next=…`: a 303 to the provider.
pub fn begin(pages: Arc<Pages>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        let Some(oidc) = pages.ctx.oidc.clone() else {
            return not_set_up();
        };
        let next = next_of(req.uri().query().unwrap_or(""));
        match oidc.begin(next.clone()).await {
            Ok((url, state)) => {
                let mut r = see_other(&url);
                set_state_cookie(&mut r, &req, &state, PENDING_FOR.as_secs());
                r
            }
            Err(e) => {
                tracing::warn!(error = %e, "OpenID sign-in could not begin");
                form(&pages, &req, status_of(&e), &next, "", Some(&e.to_string()))
            }
        }
    })
}

/// `GET /login/oidc/callback?code=…&state=…` (or `?error=…`): a session and a 303 to
/// where the sign-in began, or the login page saying why not.
pub fn callback(pages: Arc<Pages>, req: Request<Bytes>) -> BoxFuture {
    Box::pin(async move {
        let Some(oidc) = pages.ctx.oidc.clone() else {
            return not_set_up();
        };
        let (mut code, mut state, mut error, mut description) =
            (String::new(), String::new(), String::new(), String::new());
        for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
            let v: String = v.chars().take(MAX_PARAM).collect();
            match &*k {
                "code" => code = v,
                "state" => state = v,
                "error" => error = v,
                "error_description" => description = v,
                _ => {}
            }
        }
        let cookie = state_cookie(&req);
        let result = if !error.is_empty() {
            // Forget the sign-in: its state is not to be tried again.
            oidc.abandon(&state, cookie.as_deref());
            Err(OidcError::Provider(if description.is_empty() {
                error
            } else {
                format!("{error}: {description}")
            }))
        } else if code.is_empty() || state.is_empty() {
            Err(OidcError::UnknownState)
        } else {
            oidc.finish(&code, &state, cookie.as_deref()).await
        };
        let asker = Principal::of(&req);
        let mut r = match result {
            Ok(signed) => {
                let principal = Principal {
                    name: signed.user.into(),
                    role: signed.role,
                    scope: signed.scope.clone(),
                    via: Via::Session,
                    address: asker.address,
                };
                let identity = Identity::External {
                    role: signed.role,
                    scope: signed.scope,
                };
                signed_in(&pages, &req, &principal, identity, &signed.next, "oidc")
            }
            Err(e) => {
                tracing::info!(error = %e, "OpenID sign-in refused");
                pages
                    .ctx
                    .audit(&asker, "login", "oidc", &format!("refused: {e}"));
                form(&pages, &req, status_of(&e), "/", "", Some(&e.to_string()))
            }
        };
        set_state_cookie(&mut r, &req, "", 0);
        r
    })
}

fn status_of(e: &OidcError) -> StatusCode {
    match e {
        OidcError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OidcError::UnknownState => StatusCode::BAD_REQUEST,
        OidcError::Provider(_) | OidcError::Invalid(_) => StatusCode::UNAUTHORIZED,
        OidcError::NoRole(..) | OidcError::NoRegions(..) => StatusCode::FORBIDDEN,
    }
}

fn not_set_up() -> Response<Body> {
    response::error(
        StatusCode::NOT_FOUND,
        "OpenID Connect sign-in is not set up (access.oidc)",
    )
}

/// The `state` cookie, scoped to the callback's path; `max_age` 0 removes it. Lax: the
/// provider's redirect back is a top-level navigation from another site.
fn set_state_cookie(r: &mut Response<Body>, req: &Request<Bytes>, state: &str, max_age: u64) {
    let cookie = format!(
        "{STATE_COOKIE}={state}; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if crate::http::is_secure(req) {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn state_cookie(req: &Request<Bytes>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == STATE_COOKIE)
        .map(|(_, v)| v.chars().take(MAX_PARAM).collect())
}
