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
pub fn method_not_allowed(allow: &str) -> Response<Body> {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed; allowed: {allow}"),
    );
    response.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_str(allow).unwrap_or(HeaderValue::from_static("GET")),
    );
    response
}

/// The policy of every response that does not set its own (the pages do): a JSON body,
/// an error, a stream or a script loads nothing and may be framed by nobody, so that a
/// response opened as a document (a sniffing browser, a crafted link) can do nothing.
pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Headers on every response the router produces. The API is read-only live state:
/// nothing may cache it (design rule: no stale status), nothing may frame it, browsers
/// must not sniff a JSON body into HTML, and no URL (device names, filters) leaks to
/// another site as a referrer. A route's own `Cache-Control`, `Content-Security-Policy`
/// and `Referrer-Policy` are kept.
pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_CSP));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
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
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], DEFAULT_CSP);
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    }

    #[test]
    fn a_route_specific_policy_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        add_security_headers(&mut headers);
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'"
        );
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    }
}
