//! Response building shared by every route: the boxed body type, JSON bodies, JSON
//! errors, and the headers every response carries.
//!
//! The body is boxed so that buffered routes and a future streaming route (SSE) share
//! one type and one router.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response.
pub type Body = BoxBody<Bytes, BoxError>;

pub const JSON: &str = "application/json";

/// A complete, already-buffered body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A buffered response with `content_type`.
pub fn bytes(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `value` as a JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => bytes(status, JSON, body),
        // Only a non-string map key or a failing Serialize impl can get here: a bug.
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode response: {e}"),
        ),
    }
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
    }
    let body = serde_json::to_vec(&Error { error: message }).unwrap_or_default();
    bytes(status, JSON, body)
}

/// A 400 that names the query parameter at fault: `{"error": ..., "parameter": ...}`.
pub fn bad_parameter(parameter: &str, message: &str) -> Response<Body> {
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
        parameter: &'a str,
    }
    json(
        StatusCode::BAD_REQUEST,
        &Error {
            error: message,
            parameter,
        },
    )
}

/// 405 with the `Allow` header the RFC asks for.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed; allowed: {allow}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Headers on every response the router produces. The API is read-only live state:
/// nothing may cache it (design rule: no stale status), nothing may frame it, and
/// browsers must not sniff a JSON body into HTML.
pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn errors_are_json_and_escaped() {
        let response = error(StatusCode::NOT_FOUND, "no device \"a\\b\"");
        assert_eq!(response.headers()[header::CONTENT_TYPE], JSON);
        let value: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
        assert_eq!(value["error"], "no device \"a\\b\"");
    }

    #[tokio::test]
    async fn bad_parameter_names_the_parameter() {
        let response = bad_parameter("limit", "limit must be a non-negative integer");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let value: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
        assert_eq!(value["parameter"], "limit");
    }

    #[test]
    fn security_headers_keep_a_route_specific_cache_control() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        add_security_headers(&mut headers);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
