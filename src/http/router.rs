//! What every request goes through: route lookup, the reserve lane's route check,
//! method check, body cap, the deadline to read the request, the per-request timeout,
//! the blocking pool for heavy handlers, and the common headers.
//!
//! Reading a request and answering it have separate deadlines: the whole request (its
//! body, after hyper's header timeout for the head) is read before the handler runs,
//! within `body_timeout`, on every route; only then does `request_timeout` start, for
//! the handler alone, and not for streaming routes. A client that declares a body and
//! never sends it thus gets a 408 and loses the connection, whichever route it named.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, CONTENT_LENGTH, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::admission::Lane;
use super::response::{self, Body};
use super::route::{Handler, Route};
use crate::access::gate::Gate;

/// Requests bodies are ignored by every current route, but are read (to keep the
/// connection reusable) only up to this size.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The composed route table of a server, and its deadlines.
pub struct Router {
    routes: Vec<Route>,
    /// Who may call what (see [`super::guard`]).
    gate: Arc<Gate>,
    body_timeout: Duration,
    request_timeout: Duration,
}

impl Router {
    /// Panics when two routes claim one path for the same methods (a path may have a
    /// reading route and a `POST` one): a table is code, and this is a bug in it.
    pub fn new(
        routes: Vec<Route>,
        gate: Arc<Gate>,
        body_timeout: Duration,
        request_timeout: Duration,
    ) -> Router {
        for (i, a) in routes.iter().enumerate() {
            for b in &routes[i + 1..] {
                assert!(
                    a.path != b.path || a.is_post() != b.is_post(),
                    "two routes for {:?}",
                    a.path
                );
            }
        }
        Router {
            routes,
            gate,
            body_timeout,
            request_timeout,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    #[cfg(test)]
    fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.path.matches(path))
    }

    /// The route for `path` that answers `method`; when none does, the methods the
    /// path answers (empty: no route has the path).
    fn route_for(&self, path: &str, method: &Method) -> Result<&Route, Vec<&'static str>> {
        let mut allow = Vec::new();
        for route in self.routes.iter().filter(|r| r.path.matches(path)) {
            let answers = if route.is_post() {
                method == Method::POST
            } else {
                method == Method::GET || (route.head && method == Method::HEAD)
            };
            if answers {
                return Ok(route);
            }
            allow.push(route.methods());
        }
        Err(allow)
    }

    /// hyper's service entry point for a connection from `peer` on `lane`: never fails,
    /// every error is a JSON response (an HTML page for a browser outside the API).
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        lane: Lane,
        peer: IpAddr,
    ) -> Result<Response<Body>, std::convert::Infallible> {
        let html = super::error_page::wants_html(req.headers(), req.uri().path())
            .then(|| req.uri().path().to_owned());
        let mut response = self.dispatch(req, lane, peer).await;
        if let Some(path) = html {
            response = super::error_page::as_html(response, &path).await;
        }
        response::add_security_headers(response.headers_mut());
        Ok(response)
    }

    async fn dispatch(&self, req: Request<Incoming>, lane: Lane, peer: IpAddr) -> Response<Body> {
        let route = match self.route_for(req.uri().path(), req.method()) {
            Ok(route) => route,
            Err(allow) if allow.is_empty() => {
                return response::error(
                    StatusCode::NOT_FOUND,
                    &format!("no route for {}", req.uri().path()),
                );
            }
            Err(allow) => return response::method_not_allowed(&allow.join(", ")),
        };
        if lane == Lane::Reserve && !route.reserved {
            return busy();
        }
        if declared_length(&req).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return too_large();
        }
        let mut req = match tokio::time::timeout(self.body_timeout, read_body(req)).await {
            Ok(Ok(req)) => req,
            Ok(Err(response)) => return response,
            Err(_) => {
                return closing(response::error(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                ));
            }
        };
        let write = route.is_post();
        // Under the request timeout: a password check may wait its turn for bcrypt.
        let admitted = tokio::time::timeout(
            self.request_timeout,
            super::guard::admit(&self.gate, route.need, write, &mut req, peer),
        );
        match admitted.await {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return refused,
            Err(_) => return response::error(StatusCode::SERVICE_UNAVAILABLE, "request timed out"),
        }
        let handler = route.handler.clone();
        match handler {
            Handler::Streaming(f) => f(req).await,
            _ => match tokio::time::timeout(self.request_timeout, run(handler, req)).await {
                Ok(response) => response,
                Err(_) => response::error(StatusCode::SERVICE_UNAVAILABLE, "request timed out"),
            },
        }
    }
}

async fn run(handler: Handler, req: Request<Bytes>) -> Response<Body> {
    match handler {
        Handler::Inline(f) => f(&req),
        Handler::Blocking(f) => match tokio::task::spawn_blocking(move || f(&req)).await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = %e, "handler panicked");
                response::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        },
        Handler::Streaming(f) | Handler::Post(f) | Handler::Async(f) => f(req).await,
    }
}

/// A public route asked for on a reserve connection: the public share is full.
fn busy() -> Response<Body> {
    let mut r = closing(response::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is at its connection limit; only health and metrics are served now, retry later",
    ));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// `response`, after which hyper closes the connection.
fn closing(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn declared_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads the body (at most [`MAX_BODY_BYTES`]) so the connection can serve the next
/// request; chunked bodies have no declared length and are capped while read.
async fn read_body(req: Request<Incoming>) -> Result<Request<Bytes>, Response<Body>> {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return Ok(Request::from_parts(parts, Bytes::new()));
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(Request::from_parts(parts, collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(response::error(
            StatusCode::BAD_REQUEST,
            &format!("cannot read request body: {e}"),
        )),
    }
}

fn too_large() -> Response<Body> {
    response::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body larger than {MAX_BODY_BYTES} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::route::{Path, Run};

    fn ok(_: &(), _: &Request<Bytes>) -> Response<Body> {
        response::error(StatusCode::OK, "ok")
    }

    fn router() -> Router {
        let ctx = Arc::new(());
        Router::new(
            vec![
                Route::exact("/metrics")
                    .no_head()
                    .sync(Run::Blocking, &ctx, ok),
                Route::exact("/api/v1/devices").sync(Run::Blocking, &ctx, ok),
                Route::prefix("/api/v1/devices/").sync(Run::Inline, &ctx, ok),
            ],
            Arc::new(Gate::open()),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn exact_routes_do_not_match_longer_paths() {
        let r = router();
        assert!(r.find("/metrics").is_some());
        assert!(r.find("/metrics/x").is_none());
        assert!(r.find("/api/v1/devicesx").is_none());
    }

    #[test]
    fn the_device_prefix_needs_a_name() {
        let r = router();
        assert!(r.find("/api/v1/devices/").is_none());
        assert!(matches!(
            r.find("/api/v1/devices/a%2Fb").map(|r| r.path),
            Some(Path::Prefix(_))
        ));
        assert!(matches!(
            r.find("/api/v1/devices").map(|r| r.path),
            Some(Path::Exact(_))
        ));
    }

    #[test]
    #[should_panic(expected = "two routes")]
    fn two_routes_for_one_path_are_a_bug() {
        let ctx = Arc::new(());
        Router::new(
            vec![
                Route::exact("/x").sync(Run::Inline, &ctx, ok),
                Route::exact("/x").sync(Run::Blocking, &ctx, ok),
            ],
            Arc::new(Gate::open()),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
    }
}
