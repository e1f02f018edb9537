//! The scripts (the pages' and the wall's clock) and the style sheet, built into the binary. URLs carry a hash of the
//! content so a browser may cache them for a day and still never run a stale script.

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::Pages;
use crate::http::response::{self, Body};

pub const APP_JS: &str = include_str!("../../static/app.js");
pub const APP_CSS: &str = include_str!("../../static/app.css");
pub const WALL_JS: &str = include_str!("../../static/wall.js");
pub const FILTERS_JS: &str = include_str!("../../static/filters.js");

/// A short content hash of both assets, for `?v=` cache busting: XXH3-64, as the
/// inventory's revision hash, fixed by its specification across builds and platforms.
pub fn version() -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(APP_JS.as_bytes());
    h.update(APP_CSS.as_bytes());
    h.update(WALL_JS.as_bytes());
    h.update(FILTERS_JS.as_bytes());
    format!("{:08x}", h.digest() as u32)
}

fn asset(content_type: &'static str, text: &'static str) -> Response<Body> {
    let mut r = response::bytes(
        StatusCode::OK,
        content_type,
        Bytes::from_static(text.as_bytes()),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    r
}

/// `GET /static/app.js`
pub fn app_js(_: &Pages, _: &Request<Bytes>) -> Response<Body> {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /static/app.css`
pub fn app_css(_: &Pages, _: &Request<Bytes>) -> Response<Body> {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// `GET /static/wall.js`
pub fn wall_js(_: &Pages, _: &Request<Bytes>) -> Response<Body> {
    asset("text/javascript; charset=utf-8", WALL_JS)
}

/// `GET /static/filters.js`
pub fn filters_js(_: &Pages, _: &Request<Bytes>) -> Response<Body> {
    asset("text/javascript; charset=utf-8", FILTERS_JS)
}
