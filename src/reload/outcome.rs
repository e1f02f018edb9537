//! What a reload reports: what asked for it ([`Trigger`]), how one attempt went
//! ([`Outcome`]), and what `GET /api/v1/status` shows of the running inventory
//! ([`ReloadStatus`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Diff, ReloadResult};

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A filesystem event under the inventory directory.
    Watch,
    /// The periodic hash check.
    Periodic,
    /// SIGHUP.
    Signal,
    /// `POST /-/reload`.
    Http,
}

impl Trigger {
    /// Explicit requests re-validate content that already failed, so they answer with
    /// its errors; automatic ones stay quiet about a failure already logged.
    pub(super) fn is_explicit(self) -> bool {
        matches!(self, Trigger::Signal | Trigger::Http)
    }
}

/// The result of one reload attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub result: ReloadResult,
    pub trigger: Trigger,
    pub at: DateTime<Utc>,
    /// Hash of what was found on disk (empty when the directory could not be read).
    pub hash: String,
    /// Revision running after this attempt.
    pub revision: u64,
    /// Devices in the running inventory after this attempt.
    pub devices: usize,
    /// The difference applied (success only).
    pub diff: Option<Diff>,
    /// Every validation error, `file:line:column: message` (failure only).
    pub errors: Vec<String>,
    /// Time spent reading, hashing and validating.
    pub duration_seconds: f64,
}

/// What `GET /api/v1/status` shows of the inventory.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    /// Applied reloads since start; 0 is the inventory loaded at start-up.
    pub revision: u64,
    /// Content hash of the running inventory.
    pub hash: String,
    pub devices: usize,
    /// When the running inventory was loaded or reloaded.
    pub applied_at: DateTime<Utc>,
    pub last_reload_successful: bool,
    /// The last attempt that found changed content (success or failure); None until the
    /// first. Checks that found nothing new only move `last_check_at`.
    pub last_reload: Option<Outcome>,
    pub last_check_at: Option<DateTime<Utc>>,
    pub check_interval_seconds: f64,
    pub http_endpoint: bool,
}
