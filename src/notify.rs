//! Notifications: telling people that an alert opened or resolved, once per outage, and
//! never losing that message to a restart.
//!
//! The decision to notify is written by the store in the same transaction as the alert
//! change (the outbox); a sender per receiver delivers it with retries, at least once,
//! each message carrying an idempotency key that a redelivery repeats. Webhook and e-mail
//! receivers get grouped messages (routes, `group_by`, `group_wait`, …); Alertmanager
//! receivers get every alert as Prometheus sends them and group on their own.
//!
//! - [`message`]: what a receiver is given ([`Notice`], [`Message`]) and the one
//!   interface every receiver implements ([`Deliver`]).
//! - [`open`]: the alerts open now ([`OpenNotices`]), for receivers that re-send them.
//! - [`alertmanager`]: posts alerts to Alertmanager's API v2, and re-posts the firing ones.
//! - [`email`]: one mail per message over SMTP (plain and HTML parts).

pub mod alertmanager;
pub mod email;
#[cfg(test)]
mod fixture;
pub mod message;
pub mod open;

pub use message::{Deliver, DeliveryError, Message, Notice, Secret};
pub use open::OpenNotices;
