//! How a handler writes: [`Actions`] sends a user's action (an acknowledgement, an audit
//! entry) to the one writer, which spools it and applies it in order with the state's
//! changes. A handler never opens a transaction of its own: the writer is the only
//! writer of alerts (see [`crate::notify::dispatch`] for why that matters), and an action
//! taken while the database is away is kept in the spool, not lost.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::RecordKind;
use crate::state::StoreEvent;

/// A cheap-to-clone handle on the writer's feed.
#[derive(Clone)]
pub struct Actions {
    sink: Option<mpsc::UnboundedSender<StoreEvent>>,
}

/// The writer is gone (the appliance is stopping): the action was not taken.
#[derive(Debug, thiserror::Error)]
#[error("the store writer has stopped; the action was not recorded")]
pub struct WriterGone;

impl Actions {
    /// Actions sent to the writer that `sink` feeds (`Started::sink`).
    pub fn new(sink: mpsc::UnboundedSender<StoreEvent>) -> Actions {
        Actions { sink: Some(sink) }
    }

    /// A handle that records nothing (a context rendering a fixed state).
    pub fn none() -> Actions {
        Actions { sink: None }
    }

    /// Queues `kind`, decided at `at`. It is durable once the writer has spooled it, a
    /// moment later; a crash before that loses it, as it loses a transition.
    pub fn send(&self, at: DateTime<Utc>, kind: RecordKind) -> Result<(), WriterGone> {
        match &self.sink {
            Some(sink) => sink
                .send(StoreEvent::Action { at, kind })
                .map_err(|_| WriterGone),
            None => Err(WriterGone),
        }
    }
}
