//! What the action routes share in reading a body: its content type (JSON or a page's
//! form), a comment's limits, and the `back` path a page's form is answered with (a 303
//! to it, never to another site).

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::http::response::{self, Body};

/// Characters a comment may have: a sentence or two for the next shift, not a report.
pub const MAX_COMMENT: usize = 500;

/// How a body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Empty,
    Json,
    Form,
}

/// The body's kind, or why it is refused.
pub fn kind(req: &Request<Bytes>) -> Result<Kind, String> {
    if req.body().is_empty() {
        return Ok(Kind::Empty);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/json" => Ok(Kind::Json),
        "application/x-www-form-urlencoded" => Ok(Kind::Form),
        other => Err(format!(
            "unsupported content type {other:?}: send application/json or \
             application/x-www-form-urlencoded"
        )),
    }
}

/// The comment trimmed, or why it is refused.
pub fn check_comment(comment: &str) -> Result<String, String> {
    let comment = comment.trim();
    let chars = comment.chars().count();
    if chars > MAX_COMMENT {
        return Err(format!(
            "the comment is {chars} characters long; at most {MAX_COMMENT} are kept"
        ));
    }
    if comment
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("the comment has control characters".into());
    }
    Ok(comment.to_string())
}

/// Only a path of this appliance: `/alerts?x=1`, never `//evil.example` or `https://…`
/// (an open redirect).
pub fn is_local_path(back: &str) -> bool {
    back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && !back.chars().any(|c| c.is_control())
        && back.len() <= 2048
}

/// The answer to a page's form: back to where it came from.
pub fn see_other(to: &str) -> Response<Body> {
    let mut r = response::bytes(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_redirected_to() {
        for (back, ok) in [
            ("/alerts", true),
            ("/devices/a%2Fb?x=1", true),
            ("//evil.example/", false),
            ("https://evil.example/", false),
            ("/\\evil.example", false),
            ("alerts", false),
        ] {
            assert_eq!(is_local_path(back), ok, "{back}");
        }
    }

    #[test]
    fn bodies_are_json_or_a_form() {
        let req = |ct: &str, body: &str| {
            Request::post("/")
                .header(header::CONTENT_TYPE, ct)
                .body(Bytes::from(body.to_string()))
                .unwrap()
        };
        assert_eq!(kind(&req("text/plain", "")), Ok(Kind::Empty));
        assert_eq!(
            kind(&req("Application/JSON; charset=utf-8", "{}")),
            Ok(Kind::Json)
        );
        assert_eq!(
            kind(&req("application/x-www-form-urlencoded", "a=b")),
            Ok(Kind::Form)
        );
        assert!(
            kind(&req("text/plain", "x"))
                .unwrap_err()
                .contains("unsupported")
        );
    }
}
