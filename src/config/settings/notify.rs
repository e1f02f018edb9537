//! The `notifications:` section (placeholder on the receivers branch: only the receiver
//! shapes; the section itself is parsed on the notify-core branch).

mod receivers;

pub use receivers::{AlertmanagerReceiver, EmailReceiver, SmtpTls, WebhookReceiver};
