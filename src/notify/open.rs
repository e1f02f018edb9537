//! The alerts open right now, as notices: what the Alertmanager resend loop posts again
//! every `resend_interval` so that Alertmanager keeps them firing.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::Notice;
use super::outbox::Builder;
use crate::state::State;
use crate::store::Db;
use crate::store::notify::NotifyStore;

/// Source of the currently open alerts (from the store, with the inventory's labels and
/// the devices unreachable behind each), every one as a firing [`Notice`].
pub trait OpenNotices: Send + Sync {
    fn open_notices(&self) -> BoxFuture<'_, anyhow::Result<Vec<Notice>>>;
}

/// [`OpenNotices`] from the store's open alerts and the state's current snapshot. A
/// notice's `outbox_id` is its alert's latest opening row (0 for an alert opened before
/// notifications existed).
pub struct StoreOpenNotices {
    pub store: Arc<Db>,
    pub state: State,
    pub external_url: Option<reqwest::Url>,
}

impl OpenNotices for StoreOpenNotices {
    fn open_notices(&self) -> BoxFuture<'_, anyhow::Result<Vec<Notice>>> {
        Box::pin(async move {
            let rows = self.store.outbox_open().await?;
            let snapshot = self.state.snapshot();
            let mut builder = Builder::new(&snapshot, self.external_url.as_ref());
            Ok(rows.iter().map(|r| builder.notice(r)).collect())
        })
    }
}
