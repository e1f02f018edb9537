//! One entry of a route table: a path, the methods it answers, and how its handler runs.
//!
//! A route says how its handler runs: `Inline` for cheap work, `Blocking` for work
//! proportional to the inventory (it goes to tokio's blocking pool so that a 100k-device
//! scrape never delays the prober's tasks), `Async` for bounded I/O (a database read),
//! `Streaming` for long-lived responses (SSE), which are exempt from the request timeout
//! because their body outlives the handler, and `Post` for actions.
//!
//! A route may be `reserved`: served also on the connections kept for a busy server
//! (see [`super::admission`]). Mark only what a monitoring system needs to see the
//! appliance under load (health, readiness, metrics).
//!
//! Handlers are closures over whatever context their module owns, so this layer knows
//! neither the routes nor their context: a module builds its [`Route`]s with
//! [`Route::exact`] or [`Route::prefix`] and a handler over its context, e.g.
//! `Route::exact("/healthz").sync(Run::Inline, ctx, health::healthz)`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response};

use super::response::Body;
use crate::access::Role;

pub type BoxFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

pub(super) type SyncFn = Arc<dyn Fn(&Request<Bytes>) -> Response<Body> + Send + Sync>;
pub(super) type AsyncFn = Arc<dyn Fn(Request<Bytes>) -> BoxFuture + Send + Sync>;

/// How a route's handler runs.
#[derive(Clone)]
pub(super) enum Handler {
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
    /// True if a request for `path` is this route's.
    pub fn matches(self, path: &str) -> bool {
        match self {
            Path::Exact(p) => p == path,
            Path::Prefix(p) => path.len() > p.len() && path.starts_with(p),
        }
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Anyone, before authentication: health, the login page, static files.
    Nobody,
    /// A principal with at least this role (the anonymous viewer counts for `Viewer`
    /// when anonymous access is on; anything above needs an authenticated user).
    Role(Role),
}

/// A path and whether HEAD is served on it, waiting for its handler.
pub struct RoutePath {
    path: Path,
    head: bool,
    reserved: bool,
    need: Option<Need>,
}

/// One entry of a route table.
#[derive(Clone)]
pub struct Route {
    pub(super) path: Path,
    /// HEAD is served by running GET and dropping the body (hyper omits it); allowed
    /// only where that is cheap.
    pub(super) head: bool,
    /// Served on reserve connections too.
    pub(super) reserved: bool,
    /// Who may call it.
    pub(super) need: Need,
    pub(super) handler: Handler,
}

impl Route {
    /// A route for exactly `path`, GET and HEAD.
    pub fn exact(path: &'static str) -> RoutePath {
        RoutePath {
            path: Path::Exact(path),
            head: true,
            reserved: false,
            need: None,
        }
    }

    /// A route for every path under `prefix` (at least one more character), GET and HEAD.
    pub fn prefix(prefix: &'static str) -> RoutePath {
        RoutePath {
            path: Path::Prefix(prefix),
            head: true,
            reserved: false,
            need: None,
        }
    }

    pub fn path(&self) -> Path {
        self.path
    }

    /// Who may call the route.
    pub fn need(&self) -> Need {
        self.need
    }

    /// Whether the route is served on reserve connections too.
    /// Runs the handler on `req` as the router would after its checks (no method,
    /// body or authentication check, no timeout): for handler-level tests that put
    /// their own principal in the request.
    pub async fn call(&self, req: Request<Bytes>) -> Response<Body> {
        match &self.handler {
            Handler::Inline(f) => f(&req),
            // Off the runtime, as the router runs it: such a handler may block on a read.
            Handler::Blocking(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f(&req))
                    .await
                    .expect("handler panicked")
            }
            Handler::Async(f) | Handler::Streaming(f) | Handler::Post(f) => f(req).await,
        }
    }

    pub fn is_reserved(&self) -> bool {
        self.reserved
    }

    /// True for an action (`POST`).
    pub fn is_post(&self) -> bool {
        matches!(self.handler, Handler::Post(_))
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

    /// Served also when the public share of connections is full: for health checks and
    /// scrapes, which must see a busy appliance. Keep such handlers cheap.
    pub fn reserved(mut self) -> Self {
        self.reserved = true;
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

    /// Open to anyone, before authentication (health, login, static files).
    pub fn public(mut self) -> Self {
        self.need = Some(Need::Nobody);
        self
    }

    /// Needs a principal with at least `role`.
    pub fn needs(mut self, role: Role) -> Self {
        self.need = Some(Need::Role(role));
        self
    }

    fn with(self, handler: Handler) -> Route {
        // Unless the table says otherwise: reading needs a viewer, a write an admin (a
        // route that forgets to say gets the narrowest door, not the widest).
        let need = self.need.unwrap_or(match handler {
            Handler::Post(_) => Need::Role(Role::Admin),
            _ => Need::Role(Role::Viewer),
        });
        Route {
            path: self.path,
            head: self.head,
            reserved: self.reserved,
            need,
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
