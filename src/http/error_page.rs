//! Errors as a browser reads them: an HTML page (status, what went wrong, links back to
//! the pages) instead of the JSON `{"error": ...}` every route answers, when the request
//! accepts `text/html` and is not for the API (`/api/...` stays JSON whatever it
//! accepts: scripts send `Accept: */*` or even `text/html` by habit).

use http_body_util::BodyExt;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::response::{self, Body};

/// The page loads the style sheet and nothing else.
const CSP: &str = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// True for a browser's request of a path outside the API.
pub fn wants_html(headers: &HeaderMap, path: &str) -> bool {
    if path == "/api" || path.starts_with("/api/") {
        return false;
    }
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            let mut parts = media.split(';');
            let ty = parts.next().unwrap_or("").trim();
            // `text/html;q=0` is a refusal.
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (ty.eq_ignore_ascii_case("text/html")
                || ty.eq_ignore_ascii_case("application/xhtml+xml"))
                && !refused
        })
}

/// `response` as an HTML page when it is a JSON error (4xx, 5xx); unchanged otherwise.
/// Its status and headers (`Allow`, `Retry-After`, `Connection`) are kept.
pub async fn as_html(response: Response<Body>, path: &str) -> Response<Body> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(response::JSON.as_bytes()));
    if !(response.status().is_client_error() || response.status().is_server_error()) || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Error bodies are small buffered JSON: collecting them does not wait.
    let message = match body.collect().await {
        Ok(b) => serde_json::from_slice::<serde_json::Value>(&b.to_bytes())
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    let html = page(parts.status, &message, path);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    Response::from_parts(parts, response::full(html))
}

/// The page itself; everything from the request is escaped.
pub fn page(status: StatusCode, message: &str, path: &str) -> String {
    let e = |s: &str| minijinja::HtmlEscape(s).to_string();
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("error");
    let what = if status == StatusCode::NOT_FOUND {
        format!("There is no page at <code>{}</code>.", e(path))
    } else {
        format!("The request for <code>{}</code> failed.", e(path))
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{code} {reason} · wardops</title>\n<link rel=\"stylesheet\" href=\"/static/app.css\">\n</head>\n\
<body data-page=\"error\">\n<header class=\"top\"><a class=\"brand\" href=\"/\">wardops</a>\n<nav>\
<a href=\"/\">Dashboard</a> <a href=\"/monitor\">Monitor</a> <a href=\"/alerts\">Alerts</a> \
<a href=\"/infrastructure\">Infrastructure</a> <a href=\"/wall\">Wall</a></nav></header>\n\
<main class=\"error-page\">\n<h1>{code} {reason}</h1>\n<p>{what}</p>\n{detail}\
<p><a href=\"/\">← back to the dashboard</a></p>\n</main>\n</body>\n</html>\n",
        reason = e(reason),
        detail = if message.is_empty() {
            String::new()
        } else {
            format!("<p class=\"warn\">{}</p>\n", e(message))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_get_html_and_the_api_and_scripts_json() {
        let browser = accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        assert!(wants_html(&browser, "/nope"));
        assert!(wants_html(&browser, "/devices/x"));
        assert!(!wants_html(&browser, "/api/v1/nope"));
        assert!(!wants_html(&accept("*/*"), "/nope"));
        assert!(!wants_html(&accept("application/json"), "/nope"));
        assert!(!wants_html(
            &accept("text/html;q=0, application/json"),
            "/nope"
        ));
        assert!(!wants_html(&HeaderMap::new(), "/nope"));
    }

    #[tokio::test]
    async fn a_json_error_becomes_an_escaped_page_with_its_status() {
        let json = response::error(StatusCode::NOT_FOUND, "no route for /<script>");
        let html = as_html(json, "/<script>").await;
        assert_eq!(html.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            html.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = html.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("<h1>404 Not Found</h1>"), "{body}");
        assert!(body.contains("&lt;script&gt;"), "{body}");
        assert!(!body.contains("<script>"), "{body}");

        // A success, or a body that is not a JSON error, is left alone.
        let ok = response::json(StatusCode::OK, &serde_json::json!({"a": 1}));
        let same = as_html(ok, "/x").await;
        assert_eq!(same.headers()[header::CONTENT_TYPE], response::JSON);
    }
}
