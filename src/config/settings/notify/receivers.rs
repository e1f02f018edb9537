//! The resolved configuration of each kind of receiver, as `notifications.receivers`
//! names it: what `crate::notify` builds a [`crate::notify::Deliver`] from. Parsed and
//! checked by the `notifications:` section; secrets already read from the environment or
//! a file (never from the YAML).

use std::time::Duration;

use crate::notify::Secret;

/// `alertmanager:` — every alert posted to every URL (an HA pair gets each one).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerReceiver {
    /// The Alertmanagers' base URLs (`http://am:9093`); `/api/v2/alerts` is appended.
    pub urls: Vec<reqwest::Url>,
    /// How often alerts still firing are posted again (their `endsAt` lies a few
    /// intervals ahead, so a lost wardops lets them expire instead of firing forever).
    pub resend_interval: Duration,
    /// For one POST to one URL.
    pub timeout: Duration,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587 or 25); refused if the server
    /// does not offer it, never silently sent in the clear.
    StartTls,
    /// TLS from the first byte (implicit TLS, port 465).
    Tls,
    /// No encryption at all: only for a relay on the same host (loopback), and for tests.
    None,
}

/// `email:` — one mail per message, a plain and an HTML part.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailReceiver {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// With `password`, authenticates (PLAIN or LOGIN, as the server offers).
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `wardops@bank.example` or `wardops <wardops@bank.example>`.
    pub from: String,
    pub to: Vec<String>,
    /// For the whole delivery of one mail (connect, TLS, auth, send).
    pub timeout: Duration,
}

/// `webhook:` — a signed JSON POST per message.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookReceiver {
    pub url: reqwest::Url,
    /// Signs each body (`X-Wardops-Signature: sha256=<hex hmac>`).
    pub secret: Option<Secret>,
    pub timeout: Duration,
}
