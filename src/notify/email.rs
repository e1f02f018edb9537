//! An e-mail receiver: one mail per message over SMTP, with a plain and an HTML part
//! (`render`), to every address of `to`.
//!
//! The connection is STARTTLS (refused, never downgraded, if the server does not offer
//! it), TLS from the first byte, or — `tls: none` — unencrypted, which only makes sense
//! for a relay on the same host (loopback), since credentials and mail then cross the
//! network in the clear. Authentication is optional; the password is a [`Secret`] read
//! from the environment or a file.
//!
//! Every mail carries the message's idempotency key twice: as `X-Wardops-Idempotency-Key`
//! and inside its `Message-ID`, so a redelivery (a retry after a lost reply, a restart)
//! is the same mail to a mail client, which shows it once.

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Deliver, DeliveryError, Message, Secret};
use crate::config::settings::notify::{EmailReceiver, SmtpTls};

mod render;

pub use render::{Mail, render, subject};

const KEY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Wardops-Idempotency-Key");

/// One configured e-mail receiver.
pub struct Email {
    name: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// For a whole delivery; lettre's own timeout is per SMTP command.
    timeout: std::time::Duration,
}

impl Email {
    pub fn new(name: &str, config: &EmailReceiver) -> anyhow::Result<Email> {
        let from = mailbox(&config.from)
            .with_context(|| format!("receiver {name:?}: from {:?}", config.from))?;
        let to = config
            .to
            .iter()
            .map(|a| mailbox(a).with_context(|| format!("receiver {name:?}: to {a:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!to.is_empty(), "receiver {name:?}: no address in `to`");
        // `[::1]` as written in YAML is `::1` to the resolver (and to the certificate).
        let host = config.host.trim_matches(['[', ']']);
        let builder = match config.tls {
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .with_context(|| format!("receiver {name:?}: TLS for {host}"))?;
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let Some(user) = &config.username {
            let password = config.password.as_ref().map(Secret::expose).unwrap_or("");
            builder = builder.credentials(Credentials::new(user.clone(), password.to_string()));
        }
        Ok(Email {
            name: name.to_string(),
            from,
            to,
            transport: builder.build(),
            timeout: config.timeout,
        })
    }

    /// `message` as the mail sent for it.
    pub fn mail(&self, message: &Message) -> Result<lettre::Message, DeliveryError> {
        let mail = render(message)
            .map_err(|e| DeliveryError::Permanent(format!("rendering the mail: {e}")))?;
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(mail.subject)
            .message_id(Some(message_id(&message.idempotency_key, &self.from)));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let mut built = builder
            .multipart(MultiPart::alternative_plain_html(mail.plain, mail.html))
            .map_err(|e| DeliveryError::Permanent(format!("building the mail: {e}")))?;
        built.headers_mut().insert_raw(HeaderValue::new(
            KEY_HEADER,
            message.idempotency_key.clone(),
        ));
        Ok(built)
    }
}

impl Deliver for Email {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let mail = self.mail(message)?;
            match tokio::time::timeout(self.timeout, self.transport.send(mail)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(classify(e)),
                Err(_) => Err(DeliveryError::Retry(format!(
                    "no answer from the SMTP server within {:?}",
                    self.timeout
                ))),
            }
        })
    }
}

/// A mail address as `from`/`to` take it (`noc@bank.example`, `NOC <noc@bank.example>`),
/// parsed as the receiver will: for `wardops check`, so it refuses what serving would.
pub fn mailbox(text: &str) -> anyhow::Result<Mailbox> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| anyhow::anyhow!("not a mail address: {e}"))
}

/// `<wardops-noc-mail-42@bank.example>`: the key (only the characters a message id
/// allows) at the sender's domain.
fn message_id(key: &str, from: &Mailbox) -> String {
    let local: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("<{local}@{}>", from.email.domain())
}

/// A 5xx reply refuses the mail itself (a bad address, a policy) and is not retried;
/// everything else — the server down, 4xx, TLS, a timeout — is. Except a refused
/// login (530/534/535/538): that is the configuration, so the mails wait for it to be
/// fixed instead of being dropped.
fn classify(e: lettre::transport::smtp::Error) -> DeliveryError {
    let auth_problem = e
        .status()
        .is_some_and(|code| ["530", "534", "535", "538"].contains(&code.to_string().as_str()));
    let permanent = e.is_permanent() && !auth_problem;
    let why = format!("{:#}", anyhow::Error::new(e));
    if permanent {
        DeliveryError::Permanent(why)
    } else {
        DeliveryError::Retry(why)
    }
}

#[cfg(test)]
mod tests;
