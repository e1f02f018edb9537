//! HTTPS: the `tls_server_config` of the Prometheus exporter-toolkit's web config, served
//! with rustls.
//!
//! [`TlsServerConfig`] is that block (`cert_file`, `key_file`, and `min_version` /
//! `max_version`); [`Tls::load`] reads the PEM files once, at start, and fails with a
//! message naming the key and the file. While the server runs, [`reload`] looks at the
//! two files every [`reload::POLL`] and serves a changed pair from the next handshake
//! on, without a restart; a pair that does not load (half-written during a rotation, a
//! key that does not match) keeps the old one serving, is logged once, and shows in
//! `wardops_tls_config_last_reload_successful`. The handshake itself ([`accept`]) runs
//! in the connection's task under the header deadline, so a client that opens TCP and
//! never says hello cannot hold a connection slot; a plain-HTTP request to the HTTPS
//! port is answered with a plain 400 that says so.
//!
//! A request that came over TLS carries the [`Secure`] extension ([`is_secure`]): the
//! session code marks its cookies `Secure` on it.

use std::sync::Arc;

use hyper::Request;
use tokio_rustls::rustls;

pub mod accept;
mod load;
pub mod reload;

pub use load::TlsError;
pub use reload::TlsMetrics;

pub use crate::config::settings::tls::{TlsServerConfig, TlsVersion};

/// The protocol versions to offer, lowest first.
fn versions(
    config: &TlsServerConfig,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let (min, max) = (config.min_version, config.max_version);
    let min = min.unwrap_or(TlsVersion::Tls12);
    let max = max.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(TlsError::new(format!(
            "tls_server_config: min_version {min} is above max_version {max}"
        )));
    }
    let all = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ];
    Ok(all
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, p)| p)
        .collect())
}

/// A loaded HTTPS setup: the acceptor's configuration over the reloading key pair.
/// Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
    keys: Arc<reload::Keys>,
}

impl Tls {
    /// Reads `config`'s files (blocking, small reads: call it at start, not on a hot
    /// path) and builds the server configuration; every error names key and file.
    pub fn load(config: &TlsServerConfig) -> Result<Tls, TlsError> {
        let versions = versions(config)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let keys = Arc::new(reload::Keys::load(config.clone(), provider.clone())?);
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::new(format!("tls_server_config: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(keys.clone());
        // hyper serves HTTP/1 only here; saying so lets a client skip asking for h2.
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(server),
            keys,
        })
    }

    /// The reload gauges (register them where `/metrics` is composed).
    pub fn metrics(&self) -> &TlsMetrics {
        self.keys.metrics()
    }

    /// The key pair the server is presenting; for `wardops` code that needs to see a
    /// reload happen (tests, logs).
    pub fn keys(&self) -> &Arc<reload::Keys> {
        &self.keys
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

/// Marks a request that came over TLS (in its extensions). Absent: plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secure;

/// True if `req` came over TLS: cookies set in its answer should be `Secure`.
pub fn is_secure<B>(req: &Request<B>) -> bool {
    req.extensions().get::<Secure>().is_some()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(min: Option<TlsVersion>, max: Option<TlsVersion>) -> TlsServerConfig {
        TlsServerConfig {
            cert_file: "c.pem".into(),
            key_file: "k.pem".into(),
            min_version: min,
            max_version: max,
        }
    }

    #[test]
    fn versions_are_a_range_and_old_ones_are_refused_by_name() {
        assert_eq!(versions(&config(None, None)).unwrap().len(), 2);
        let only13 = versions(&config(Some(TlsVersion::Tls13), None)).unwrap();
        assert_eq!(only13[0].version, rustls::ProtocolVersion::TLSv1_3);
        assert_eq!(only13.len(), 1);
        let e = versions(&config(Some(TlsVersion::Tls13), Some(TlsVersion::Tls12)))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "tls_server_config: min_version TLS13 is above max_version TLS12"
        );
        assert_eq!(
            "TLS10".parse::<TlsVersion>().unwrap_err(),
            "TLS10 is not supported (TLS 1.0 and 1.1 are obsolete): use TLS12 or TLS13"
        );
        assert!("tls13".parse::<TlsVersion>().is_err());
    }

    #[test]
    fn the_block_reads_as_exporter_toolkit_writes_it() {
        let c: TlsServerConfig = serde_json::from_str(
            r#"{"cert_file": "a.crt", "key_file": "a.key", "min_version": "TLS13"}"#,
        )
        .unwrap();
        assert_eq!(c.min_version, Some(TlsVersion::Tls13));
        let c = c.relative_to(Path::new("/etc/wardops"));
        assert_eq!(c.cert_file, Path::new("/etc/wardops/a.crt"));
        let absolute = config(None, None).relative_to(Path::new("/x"));
        assert_eq!(
            TlsServerConfig {
                cert_file: "/abs/c.pem".into(),
                ..absolute
            }
            .relative_to(Path::new("/x"))
            .cert_file,
            Path::new("/abs/c.pem")
        );
        let unknown = serde_json::from_str::<TlsServerConfig>(
            r#"{"cert_file": "a", "key_file": "b", "client_ca_file": "c"}"#,
        );
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `client_ca_file`")
        );
    }
}
