//! The route table and what every request goes through: method check, body cap,
//! the per-request timeout, and the common headers.
//!
//! A route says how its handler runs: `Inline` for cheap work, `Blocking` for work
//! proportional to the inventory (it goes to tokio's blocking pool so that a 100k-device
//! scrape never delays the prober's tasks), `Streaming` for long-lived responses (SSE),
//! which are exempt from the request timeout because their body outlives the handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper::{Method, Request, Response, StatusCode};

use super::response::{self, Body};
use super::{HttpContext, api, api_alerts, dashboard, health, metrics, status};
use crate::web;

/// Requests bodies are ignored by every current route, but are read (to keep the
/// connection reusable) only up to this size.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub type BoxFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// How a route's handler runs.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Cheap and bounded: runs on the connection's task.
    Inline(fn(&HttpContext, &Request<Bytes>) -> Response<Body>),
    /// Proportional to the inventory: runs on the blocking pool.
    Blocking(fn(&HttpContext, &Request<Bytes>) -> Response<Body>),
    /// Waits on I/O (a bounded database read): async on the connection's task, under
    /// the request timeout.
    Async(fn(Arc<HttpContext>, Request<Bytes>) -> BoxFuture),
    /// A response that streams for as long as the client stays: no request timeout.
    Streaming(fn(Arc<HttpContext>, Request<Bytes>) -> BoxFuture),
    /// An action (`POST` only), async, under the request timeout.
    Post(fn(Arc<HttpContext>, Request<Bytes>) -> BoxFuture),
}

#[derive(Clone, Copy)]
enum Path {
    Exact(&'static str),
    /// The route owns everything under this prefix (the rest is a parameter).
    Prefix(&'static str),
}

pub struct Route {
    path: Path,
    /// HEAD is served by running GET and dropping the body (hyper omits it); allowed
    /// only where that is cheap.
    head: bool,
    handler: Handler,
}

const ROUTES: &[Route] = &[
    Route {
        path: Path::Exact("/api/v1/devices"),
        head: true,
        handler: Handler::Blocking(api::list),
    },
    Route {
        path: Path::Prefix(api::DEVICE_PREFIX),
        head: true,
        // A device from the snapshot, or its transitions from the store.
        handler: Handler::Async(api::device),
    },
    Route {
        path: Path::Exact("/api/v1/alerts"),
        head: true,
        handler: Handler::Async(api_alerts::route),
    },
    Route {
        path: Path::Exact("/api/v1/dashboard"),
        head: true,
        handler: Handler::Blocking(dashboard::get),
    },
    Route {
        path: Path::Exact("/metrics"),
        head: false,
        handler: Handler::Blocking(metrics::get),
    },
    Route {
        path: Path::Exact("/healthz"),
        head: true,
        handler: Handler::Inline(health::healthz),
    },
    // The readiness check is the app's closure, of unknown cost: keep it off the runtime.
    Route {
        path: Path::Exact("/readyz"),
        head: true,
        handler: Handler::Blocking(health::readyz),
    },
    Route {
        path: Path::Exact("/api/v1/status"),
        head: true,
        handler: Handler::Blocking(status::get),
    },
    Route {
        path: Path::Exact("/-/reload"),
        head: false,
        handler: Handler::Post(status::post),
    },
    // Web pages and the live feed (crate::web).
    Route {
        path: Path::Exact("/api/v1/events"),
        head: false,
        handler: Handler::Streaming(web::sse::get),
    },
    Route {
        path: Path::Exact("/"),
        head: true,
        handler: Handler::Blocking(web::dashboard::get),
    },
    Route {
        path: Path::Exact("/monitor"),
        head: true,
        handler: Handler::Blocking(web::monitor::get),
    },
    Route {
        path: Path::Prefix(web::device::PREFIX),
        head: true,
        handler: Handler::Blocking(web::device::get),
    },
    Route {
        path: Path::Exact("/alerts"),
        head: true,
        handler: Handler::Blocking(web::alerts::get),
    },
    Route {
        path: Path::Exact("/infrastructure"),
        head: true,
        handler: Handler::Blocking(web::infrastructure::get),
    },
    Route {
        path: Path::Exact("/static/app.js"),
        head: true,
        handler: Handler::Inline(web::assets::app_js),
    },
    Route {
        path: Path::Exact("/static/app.css"),
        head: true,
        handler: Handler::Inline(web::assets::app_css),
    },
];

fn find(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| match r.path {
        Path::Exact(p) => p == path,
        Path::Prefix(p) => path.len() > p.len() && path.starts_with(p),
    })
}

/// hyper's service entry point: never fails, every error is a JSON response.
pub async fn handle(
    ctx: Arc<HttpContext>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let mut response = dispatch(ctx, req).await;
    response::add_security_headers(response.headers_mut());
    Ok(response)
}

async fn dispatch(ctx: Arc<HttpContext>, req: Request<Incoming>) -> Response<Body> {
    let Some(route) = find(req.uri().path()) else {
        return response::error(
            StatusCode::NOT_FOUND,
            &format!("no route for {}", req.uri().path()),
        );
    };
    if let Handler::Post(_) = route.handler {
        if req.method() != Method::POST {
            return response::method_not_allowed("POST");
        }
    } else if !(req.method() == Method::GET || (route.head && req.method() == Method::HEAD)) {
        return response::method_not_allowed(if route.head { "GET, HEAD" } else { "GET" });
    }
    if declared_length(&req).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    match route.handler {
        Handler::Streaming(f) => match read_body(req).await {
            Ok(req) => f(ctx, req).await,
            Err(response) => response,
        },
        _ => {
            let timeout = ctx.limits.request_timeout;
            match tokio::time::timeout(timeout, run(route.handler, ctx, req)).await {
                Ok(response) => response,
                Err(_) => response::error(StatusCode::SERVICE_UNAVAILABLE, "request timed out"),
            }
        }
    }
}

async fn run(handler: Handler, ctx: Arc<HttpContext>, req: Request<Incoming>) -> Response<Body> {
    let req = match read_body(req).await {
        Ok(req) => req,
        Err(response) => return response,
    };
    match handler {
        Handler::Inline(f) => f(&ctx, &req),
        Handler::Blocking(f) => match tokio::task::spawn_blocking(move || f(&ctx, &req)).await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = %e, "handler panicked");
                response::error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        },
        Handler::Streaming(f) | Handler::Post(f) | Handler::Async(f) => f(ctx, req).await,
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

    #[test]
    fn exact_routes_do_not_match_longer_paths() {
        assert!(find("/metrics").is_some());
        assert!(find("/metrics/x").is_none());
        assert!(find("/api/v1/devicesx").is_none());
    }

    #[test]
    fn the_device_prefix_needs_a_name() {
        assert!(find("/api/v1/devices/").is_none());
        assert!(matches!(
            find("/api/v1/devices/a%2Fb").map(|r| r.path),
            Some(Path::Prefix(_))
        ));
        assert!(matches!(
            find("/api/v1/devices").map(|r| r.path),
            Some(Path::Exact(_))
        ));
    }
}
