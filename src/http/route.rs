//! A route table and what every request goes through: method check, body cap, the
//! per-request timeout, and the common headers.
//!
//! A route says how its handler runs: `Inline` for cheap work, `Blocking` for work
//! proportional to the inventory (it goes to tokio's blocking pool so that a 100k-device
//! scrape never delays the prober's tasks), `Async` for bounded I/O (a database read),
//! `Streaming` for long-lived responses (SSE), which are exempt from the request timeout
//! because their body outlives the handler, and `Post` for actions.
//!
//! Handlers are closures over whatever context their module owns, so this layer knows
//! neither the routes nor their context: a module builds its [`Route`]s with
//! [`Route::exact`] or [`Route::prefix`] and a handler over its context, e.g.
//! `Route::exact("/healthz").sync(Run::Inline, ctx, health::healthz)`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper::{Method, Request, Response, StatusCode};

use super::response::{self, Body};

/// Requests bodies are ignored by every current route, but are read (to keep the
/// connection reusable) only up to this size.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub type BoxFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

type SyncFn = Arc<dyn Fn(&Request<Bytes>) -> Response<Body> + Send + Sync>;
type AsyncFn = Arc<dyn Fn(Request<Bytes>) -> BoxFuture + Send + Sync>;

/// How a route's handler runs.
#[derive(Clone)]
enum Handler {
    /// Cheap and bounded: runs on the connection's task.
    Inline(SyncFn),
    /// Proportional to the inventory: runs on the blocking pool.
    Blocking(SyncFn),
    /// Waits on I/O (a bounded database read): async on the connection's task, under
    /// the request timeout.
    Async(AsyncFn),
    /// A response that streams for as long as the client stays: no request timeout.
    Streaming(AsyncFn),
    /// An action (`POST` only), async, under the request timeout.
    Post(AsyncFn),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Exact(&'static str),
    /// The route owns everything under this prefix (the rest is a parameter).
    Prefix(&'static str),
}

impl Path {
    fn matches(self, path: &str) -> bool {
        match self {
            Path::Exact(p) => p == path,
            Path::Prefix(p) => path.len() > p.len() && path.starts_with(p),
        }
    }
}

/// A path and whether HEAD is served on it, waiting for its handler.
pub struct RoutePath {
    path: Path,
    head: bool,
}

/// One entry of a route table.
#[derive(Clone)]
pub struct Route {
    path: Path,
    /// HEAD is served by running GET and dropping the body (hyper omits it); allowed
    /// only where that is cheap.
    head: bool,
    handler: Handler,
}

impl Route {
    /// A route for exactly `path`, GET and HEAD.
    pub fn exact(path: &'static str) -> RoutePath {
        RoutePath {
            path: Path::Exact(path),
            head: true,
        }
    }

    /// A route for every path under `prefix` (at least one more character), GET and HEAD.
    pub fn prefix(prefix: &'static str) -> RoutePath {
        RoutePath {
            path: Path::Prefix(prefix),
            head: true,
        }
    }

    pub fn path(&self) -> Path {
        self.path
    }

    /// The methods this route answers, as an `Allow` header lists them.
    pub fn methods(&self) -> &'static str {
        match (&self.handler, self.head) {
            (Handler::Post(_), _) => "POST",
            (_, true) => "GET, HEAD",
            (_, false) => "GET",
        }
    }
}

impl RoutePath {
    /// GET only: HEAD would cost a whole GET (a scrape, a stream).
    pub fn no_head(mut self) -> Self {
        self.head = false;
        self
    }

    /// A handler over `ctx` that answers from what it holds: run as `run` says.
    pub fn sync<C: Send + Sync + 'static>(
        self,
        run: Run,
        ctx: &Arc<C>,
        f: fn(&C, &Request<Bytes>) -> Response<Body>,
    ) -> Route {
        let ctx = ctx.clone();
        let f: SyncFn = Arc::new(move |req| f(&ctx, req));
        let handler = match run {
            Run::Inline => Handler::Inline(f),
            Run::Blocking => Handler::Blocking(f),
        };
        self.with(handler)
    }

    /// A handler over `ctx` that waits on something: run as `wait` says.
    pub fn task<C: Send + Sync + 'static>(
        self,
        wait: Wait,
        ctx: &Arc<C>,
        f: fn(Arc<C>, Request<Bytes>) -> BoxFuture,
    ) -> Route {
        let ctx = ctx.clone();
        let f: AsyncFn = Arc::new(move |req| f(ctx.clone(), req));
        match wait {
            Wait::Io => self.with(Handler::Async(f)),
            Wait::Streaming => self.with(Handler::Streaming(f)),
            Wait::Post => self.no_head().with(Handler::Post(f)),
        }
    }

    fn with(self, handler: Handler) -> Route {
        Route {
            path: self.path,
            head: self.head,
            handler,
        }
    }
}

/// How a handler that answers from memory runs.
#[derive(Clone, Copy, Debug)]
pub enum Run {
    /// Cheap and bounded work, on the connection's task.
    Inline,
    /// Work proportional to the inventory, on the blocking pool.
    Blocking,
}

/// How a handler that waits runs.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// Bounded I/O (a database read), under the request timeout.
    Io,
    /// A response that streams as long as the client stays: no request timeout.
    Streaming,
    /// An action: POST only, under the request timeout.
    Post,
}

/// The composed route table of a server, and the per-request timeout.
pub struct Router {
    routes: Vec<Route>,
    request_timeout: Duration,
}

impl Router {
    /// Panics when two routes claim one path: a table is code, and this is a bug in it.
    pub fn new(routes: Vec<Route>, request_timeout: Duration) -> Router {
        for (i, a) in routes.iter().enumerate() {
            for b in &routes[i + 1..] {
                assert!(a.path != b.path, "two routes for {:?}", a.path);
            }
        }
        Router {
            routes,
            request_timeout,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.path.matches(path))
    }

    /// hyper's service entry point: never fails, every error is a JSON response.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, std::convert::Infallible> {
        let mut response = self.dispatch(req).await;
        response::add_security_headers(response.headers_mut());
        Ok(response)
    }

    async fn dispatch(&self, req: Request<Incoming>) -> Response<Body> {
        let Some(route) = self.find(req.uri().path()) else {
            return response::error(
                StatusCode::NOT_FOUND,
                &format!("no route for {}", req.uri().path()),
            );
        };
        let allowed = match route.handler {
            Handler::Post(_) => req.method() == Method::POST,
            _ => req.method() == Method::GET || (route.head && req.method() == Method::HEAD),
        };
        if !allowed {
            return response::method_not_allowed(route.methods());
        }
        if declared_length(&req).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return too_large();
        }
        let handler = route.handler.clone();
        match handler {
            Handler::Streaming(f) => match read_body(req).await {
                Ok(req) => f(req).await,
                Err(response) => response,
            },
            _ => match tokio::time::timeout(self.request_timeout, run(handler, req)).await {
                Ok(response) => response,
                Err(_) => response::error(StatusCode::SERVICE_UNAVAILABLE, "request timed out"),
            },
        }
    }
}

async fn run(handler: Handler, req: Request<Incoming>) -> Response<Body> {
    let req = match read_body(req).await {
        Ok(req) => req,
        Err(response) => return response,
    };
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
            Duration::from_secs(1),
        );
    }
}
