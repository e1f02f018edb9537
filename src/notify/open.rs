//! The alerts open right now, as notices: what the Alertmanager resend loop posts again
//! every `resend_interval` so that Alertmanager keeps them firing.

use futures_util::future::BoxFuture;

use super::Notice;

/// Source of the currently open alerts (from the store, with the inventory's labels and
/// the devices unreachable behind each), every one as a firing [`Notice`].
pub trait OpenNotices: Send + Sync {
    fn open_notices(&self) -> BoxFuture<'_, anyhow::Result<Vec<Notice>>>;
}
