//! Receivers from the settings: one [`Deliver`] per configured receiver, and for an
//! Alertmanager one its resend loop, which runs beside the engine.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::Deliver;
use super::alertmanager::Alertmanager;
use super::email::Email;
use super::open::OpenNotices;
use super::webhook::Webhook;
use crate::config::settings::notify::{NotifySettings, Receiver, ReceiverKind};

/// A receiver ready to deliver, and what must run beside it.
pub struct Built {
    pub deliver: Arc<dyn Deliver>,
    /// Started by the app with the engine, stopped at shutdown (Alertmanager resends).
    pub background: Option<BoxFuture<'static, ()>>,
}

/// Builds `receiver`; `open` is what an Alertmanager's resend loop posts again.
pub fn build(
    receiver: &Receiver,
    settings: &NotifySettings,
    open: &Arc<dyn OpenNotices>,
) -> anyhow::Result<Built> {
    match &receiver.kind {
        ReceiverKind::Webhook(config) => Ok(Built {
            deliver: Arc::new(Webhook::new(&receiver.name, config)?),
            background: None,
        }),
        ReceiverKind::Alertmanager(config) => {
            let external = settings.external_url.as_ref();
            let am = Arc::new(Alertmanager::new(&receiver.name, config, external)?);
            Ok(Built {
                background: Some(Box::pin(am.clone().resend_loop(open.clone()))),
                deliver: am,
            })
        }
        ReceiverKind::Email(config) => Ok(Built {
            deliver: Arc::new(Email::new(&receiver.name, config)?),
            background: None,
        }),
    }
}

/// Every receiver of the settings, in order.
pub fn build_all(
    settings: &NotifySettings,
    open: &Arc<dyn OpenNotices>,
) -> anyhow::Result<Vec<Built>> {
    settings
        .receivers
        .iter()
        .map(|r| build(r, settings, open))
        .collect()
}
