//! The webhook receiver: each message is one `POST` of a documented JSON body
//! ([`Body`]), signed with HMAC-SHA256 over the exact bytes sent when a secret is set
//! (`X-Wardops-Signature: sha256=<hex>`), with the message's `Idempotency-Key`. TLS is
//! verified against the platform's roots (reqwest with rustls; nothing turns it off);
//! redirects are not followed (a signed body must not travel on to a third party).
//!
//! 2xx is delivered; 408, 429 and 5xx, a timeout or a refused connection are retried;
//! any other answer is the receiver refusing the message for good.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::{Deliver, DeliveryError, Message, Notice};
use crate::config::settings::notify::WebhookReceiver;

/// The signature header: `sha256=` and the lowercase hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Wardops-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// What a webhook receives (version 1; fields are only ever added).
#[derive(Debug, Serialize)]
pub struct Body<'a> {
    pub version: &'static str,
    pub receiver: &'a str,
    /// Equal on every delivery of this message; a receiver that sees one twice has seen
    /// a repeat delivery.
    pub idempotency_key: &'a str,
    /// `firing` while any notice of the message fires, else `resolved`.
    pub status: &'static str,
    /// The `group_by` fields and their values.
    pub group: &'a BTreeMap<String, String>,
    pub firing: usize,
    pub resolved: usize,
    /// Older notices of this group not listed (the receiver was away for longer than
    /// `max_replay_age`).
    pub summarised: u32,
    /// A test message of `wardops notify-test` (no alert behind it).
    pub test: bool,
    /// In outbox order.
    pub notices: &'a [Notice],
}

impl<'a> Body<'a> {
    pub fn of(m: &'a Message) -> Body<'a> {
        let firing = m.firing().count();
        Body {
            version: "1",
            receiver: &m.receiver,
            idempotency_key: &m.idempotency_key,
            status: if firing > 0 { "firing" } else { "resolved" },
            group: &m.group,
            firing,
            resolved: m.resolved().count(),
            summarised: m.summarised,
            test: m.test,
            notices: &m.notices,
        }
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct Webhook {
    name: String,
    config: WebhookReceiver,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(name: &str, config: &WebhookReceiver) -> anyhow::Result<Webhook> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wardops/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Webhook {
            name: name.to_string(),
            config: config.clone(),
            client,
        })
    }

    async fn post(&self, message: &Message) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&Body::of(message))
            .map_err(|e| DeliveryError::Permanent(format!("cannot encode the message: {e}")))?;
        let mut request = self
            .client
            .post(self.config.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &message.idempotency_key);
        if let Some(secret) = &self.config.secret {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret.expose().as_bytes(), &body),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::Retry(crate::outbound::error_text(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = format!("{} answered {status}", self.host());
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(DeliveryError::Retry(text))
        } else {
            Err(DeliveryError::Permanent(text))
        }
    }

    fn host(&self) -> String {
        let url = &self.config.url;
        match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        }
    }
}

impl Deliver for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.post(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
