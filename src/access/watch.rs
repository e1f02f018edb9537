//! Re-reads the users file when it changes, as the inventory is: checked every
//! [`CHECK_EVERY`] by its content, an invalid file reported once and the running users
//! kept, `wardops_access_users_last_reload_successful` saying which.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

use super::gate::Gate;
use super::users::Users;

/// How often the file is looked at: a few hundred bytes read and hashed.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct AccessMetrics {
    pub last_reload_successful: Gauge<i64, AtomicI64>,
    pub last_reload_timestamp: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl AccessMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wardops_access_users_last_reload_successful",
            "Whether the users file last read was valid (1) or is being ignored (0)",
            self.last_reload_successful.clone(),
        );
        registry.register(
            "wardops_access_users_last_reload_success_timestamp_seconds",
            "When the users file in force was read (Unix time)",
            self.last_reload_timestamp.clone(),
        );
    }

    fn succeeded(&self) {
        self.last_reload_successful.set(1);
        self.last_reload_timestamp.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
        );
    }
}

/// Watches `path` for `gate` until the gate is dropped.
pub fn spawn(path: PathBuf, gate: &Arc<Gate>, metrics: Arc<AccessMetrics>) {
    metrics.succeeded();
    let gate = Arc::downgrade(gate);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported = None;
        loop {
            tick.tick().await;
            let Some(gate) = gate.upgrade() else { return };
            let p = path.clone();
            let Ok(read) =
                tokio::task::spawn_blocking(move || crate::config::load::read_text(&p)).await
            else {
                continue;
            };
            let text = match read {
                Ok(text) => text,
                Err(e) => {
                    let digest = Sha256::digest(e.to_string().as_bytes()).into();
                    if reported != Some(digest) {
                        tracing::error!(error = %e, "users file: cannot read it; the users read before stay in force");
                        reported = Some(digest);
                    }
                    metrics.last_reload_successful.set(0);
                    continue;
                }
            };
            let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
            if digest == gate.users().digest || reported == Some(digest) {
                continue;
            }
            match Users::parse(&path, &text) {
                Ok(users) => {
                    tracing::info!(path = %path.display(), "users file reloaded");
                    gate.replace_users(users);
                    metrics.succeeded();
                    reported = None;
                }
                Err(errors) => {
                    tracing::error!(errors = %errors, "users file: invalid; the users read before stay in force");
                    metrics.last_reload_successful.set(0);
                    reported = Some(digest);
                }
            }
        }
    });
}
