//! The provider's HTTP client: ours (reqwest 0.13, rustls), not the crate's, with no
//! redirects followed, timeouts, and a bound on every answer read.

use std::time::Duration;

use super::{MAX_BODY, TIMEOUT};

/// The client every request to the provider goes through.
pub(super) fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        // The flow's redirects are the browser's; a back-channel one is refused (a token
        // endpoint redirecting elsewhere would carry the code and secret along).
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(TIMEOUT)
        .build()
}

/// Why a request to the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("the answer is over {MAX_BODY} bytes")]
    TooLarge,
    #[error("{0}")]
    Http(#[from] openidconnect::http::Error),
}

/// Sends `req` to the provider with our client; reads at most [`MAX_BODY`] bytes.
pub(super) async fn send(
    client: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let mut resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(HttpError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    let mut out = openidconnect::http::Response::builder()
        .status(resp.status())
        .body(buf)?;
    *out.headers_mut() = resp.headers().clone();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::oidc;
    use super::*;

    /// A provider whose metadata never ends is cut off at [`MAX_BODY`], and one that
    /// redirects is not followed.
    #[tokio::test]
    async fn answers_are_bounded_and_redirects_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for (head, endless) in [
            (
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n",
                true,
            ),
            (
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\n\r\n",
                false,
            ),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                sock.write_all(head.as_bytes()).await.unwrap();
                if endless {
                    let chunk = vec![b' '; 64 * 1024];
                    while sock.write_all(&chunk).await.is_ok() {}
                }
            });
            let mut o = oidc(None);
            o.settings.issuer = format!("http://127.0.0.1:{port}");
            let e = o.begin("/".into()).await.unwrap_err().to_string();
            if endless {
                assert!(e.contains(&format!("over {MAX_BODY} bytes")), "{e}");
            } else {
                assert!(o.provider.load_full().is_none(), "{e}");
                // Followed, it would be a refused connection to port 1 instead.
                assert!(e.contains("cannot be reached") && e.contains("302"), "{e}");
            }
            server.abort();
        }
    }
}
