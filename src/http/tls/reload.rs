//! The key pair the server presents, replaced when its files change.
//!
//! exporter-toolkit reads the files on every handshake; here a task reads them every
//! [`POLL`] instead (two small files a second) and a handshake only loads an `Arc`, so
//! no handshake waits on the disk. The contents are compared, not the modification
//! times: a rotation that keeps the times, or a Kubernetes secret whose symlinks are
//! swapped, is seen all the same. A new pair that does not load keeps the old one
//! serving; its error is logged once per content (not every second), and
//! `wardops_tls_config_last_reload_successful` is 0 until a good pair is in place.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::TlsServerConfig;
use super::load::{Pair, TlsError};

/// How often the certificate and key files are looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// `wardops_tls_config_*` families.
#[derive(Debug, Default)]
pub struct TlsMetrics {
    successful: Gauge,
    success_timestamp: Gauge<f64, AtomicU64>,
}

impl TlsMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wardops_tls_config_last_reload_successful",
            "Whether the TLS certificate and key last read loaded (1) or were refused (0)",
            self.successful.clone(),
        );
        registry.register(
            "wardops_tls_config_last_reload_success_timestamp_seconds",
            "When the TLS certificate and key being served were loaded",
            self.success_timestamp.clone(),
        );
    }

    fn loaded(&self) {
        self.successful.set(1);
        self.success_timestamp.set(now_unix_seconds());
    }

    pub fn last_successful(&self) -> bool {
        self.successful.get() == 1
    }
}

fn now_unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What one look at the files found.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// The same contents as last time (served, or refused and already logged).
    Unchanged,
    /// A new pair, now served.
    Reloaded,
    /// New contents that do not load; the old pair is still served.
    Refused(TlsError),
}

/// The served pair and what its files last held. Resolves every handshake.
pub struct Keys {
    config: TlsServerConfig,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    /// The digests of the contents last looked at (good or bad: what "changed" means)
    /// and of those served.
    seen: Mutex<Seen>,
    metrics: TlsMetrics,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("config", &self.config)
            .finish()
    }
}

impl Keys {
    /// Reads the pair of `config` (an error here stops the start).
    pub(super) fn load(
        config: TlsServerConfig,
        provider: Arc<CryptoProvider>,
    ) -> Result<Keys, TlsError> {
        let pair = Pair::read(&config)?;
        let key = pair.certified_key(&config, &provider)?;
        let metrics = TlsMetrics::default();
        metrics.loaded();
        Ok(Keys {
            seen: Mutex::new(Seen {
                last: digest(&pair),
                served: digest(&pair),
            }),
            current: ArcSwap::new(key),
            config,
            provider,
            metrics,
        })
    }

    pub fn metrics(&self) -> &TlsMetrics {
        &self.metrics
    }

    /// The pair a handshake starting now is served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Reads the files and serves them if they changed and load. Blocking (small
    /// reads): run it off the async workers.
    pub fn check(&self) -> Checked {
        let pair = match Pair::read(&self.config) {
            Ok(pair) => pair,
            // A file being replaced may be missing for a moment: not yet a new pair, so
            // nothing is recorded and the next look tries again. Still said, once per
            // error, so that a file deleted for good is not silent.
            Err(e) => return self.refused(e, None),
        };
        let digest = digest(&pair);
        let seen = *self.seen.lock();
        if seen.last == digest {
            // Back after a moment unreadable: what is served is what is there again.
            if seen.served == digest {
                self.metrics.successful.set(1);
            }
            return Checked::Unchanged;
        }
        match pair.certified_key(&self.config, &self.provider) {
            Ok(key) => {
                self.current.store(key);
                *self.seen.lock() = Seen {
                    last: digest,
                    served: digest,
                };
                self.metrics.loaded();
                tracing::info!(
                    cert_file = %self.config.cert_file.display(),
                    "tls: new certificate and key loaded; served from the next handshake"
                );
                Checked::Reloaded
            }
            Err(e) => self.refused(e, Some(digest)),
        }
    }

    fn refused(&self, e: TlsError, digest: Option<[u8; 32]>) -> Checked {
        let first = self.metrics.last_successful();
        self.metrics.successful.set(0);
        if let Some(digest) = digest {
            self.seen.lock().last = digest;
        }
        // Once per bad content; an unreadable file is logged when it first goes bad.
        if digest.is_some() || first {
            tracing::error!(error = %e, "tls: the new certificate and key are refused; still serving the previous ones");
        }
        Checked::Refused(e)
    }
}

impl ResolvesServerCert for Keys {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    last: [u8; 32],
    served: [u8; 32],
}

/// Looks at the files every [`POLL`] until dropped (the server aborts it when it ends).
pub async fn watch(keys: Arc<Keys>) {
    let mut ticks = tokio::time::interval(POLL);
    // A slow disk delays the next look; it never queues looks up.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let keys = keys.clone();
        if tokio::task::spawn_blocking(move || keys.check())
            .await
            .is_err()
        {
            tracing::error!("tls: the certificate check panicked");
        }
    }
}

/// Of both files at once: a pair is one content.
fn digest(pair: &Pair) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((pair.cert.len() as u64).to_le_bytes());
    h.update(&pair.cert);
    h.update(&pair.key);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::super::load::tests::make_pair;
    use super::*;

    fn keys(dir: &std::path::Path) -> Keys {
        let config = TlsServerConfig {
            cert_file: dir.join("server.crt"),
            key_file: dir.join("server.key"),
            min_version: None,
            max_version: None,
        };
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        Keys::load(config, provider).unwrap()
    }

    fn install(dir: &std::path::Path, name: &str) {
        std::fs::copy(dir.join(format!("{name}.crt")), dir.join("server.crt")).unwrap();
        std::fs::copy(dir.join(format!("{name}.key")), dir.join("server.key")).unwrap();
    }

    #[test]
    fn a_changed_pair_is_served_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_pair(d, "one", false);
        make_pair(d, "two", true);
        install(d, "one");
        let keys = keys(d);
        let first = keys.current();
        assert_eq!(keys.check(), Checked::Unchanged);

        install(d, "two");
        assert_eq!(keys.check(), Checked::Reloaded);
        let second = keys.current();
        assert_ne!(first.cert, second.cert);
        assert!(keys.metrics().last_successful());

        // Half a rotation: one's certificate with two's key.
        std::fs::copy(d.join("one.crt"), d.join("server.crt")).unwrap();
        assert!(
            matches!(keys.check(), Checked::Refused(e) if e.to_string().contains("does not match"))
        );
        assert_eq!(
            keys.current().cert,
            second.cert,
            "the old pair still serves"
        );
        assert!(!keys.metrics().last_successful());
        assert_eq!(
            keys.check(),
            Checked::Unchanged,
            "refused once, not every look"
        );

        std::fs::copy(d.join("one.key"), d.join("server.key")).unwrap();
        assert_eq!(keys.check(), Checked::Reloaded);
        assert_eq!(keys.current().cert, first.cert);
        assert!(keys.metrics().last_successful());

        std::fs::remove_file(d.join("server.key")).unwrap();
        assert!(
            matches!(keys.check(), Checked::Refused(e) if e.to_string().contains("cannot read"))
        );
        assert_eq!(keys.current().cert, first.cert);
        assert!(!keys.metrics().last_successful());
        std::fs::copy(d.join("one.key"), d.join("server.key")).unwrap();
        assert_eq!(keys.check(), Checked::Unchanged);
        assert!(keys.metrics().last_successful(), "the served pair is back");
    }
}
