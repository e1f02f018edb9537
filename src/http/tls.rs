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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::Request;
use serde::Deserialize;
use tokio_rustls::rustls;

pub mod accept;
mod load;
pub mod reload;

pub use load::TlsError;
pub use reload::TlsMetrics;

/// `tls_server_config:` as exporter-toolkit names it. Of its keys, the ones that are
/// cheap with rustls and worth having: the files, and the protocol range. Cipher
/// suites and curves are rustls' safe defaults; client certificates are not offered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC), not encrypted.
    pub key_file: PathBuf,
    /// Lowest protocol accepted; default `TLS12` (exporter-toolkit's default too).
    #[serde(default)]
    pub min_version: Option<TlsVersion>,
    /// Highest protocol accepted; default `TLS13`.
    #[serde(default)]
    pub max_version: Option<TlsVersion>,
}

/// A protocol version as exporter-toolkit writes it. rustls speaks 1.2 and 1.3 only,
/// so `TLS10` and `TLS11` are refused with a message saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl std::str::FromStr for TlsVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "{s} is not supported (TLS 1.0 and 1.1 are obsolete): use TLS12 or TLS13"
            )),
            _ => Err(format!("unknown TLS version {s:?}: use TLS12 or TLS13")),
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        })
    }
}

impl TryFrom<String> for TlsVersion {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl TlsServerConfig {
    /// The same block with relative paths taken relative to `base` (the directory of
    /// the file it was written in).
    pub fn relative_to(mut self, base: &Path) -> TlsServerConfig {
        self.cert_file = base.join(&self.cert_file);
        self.key_file = base.join(&self.key_file);
        self
    }

    /// The protocol versions to offer, lowest first.
    fn versions(&self) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
        let min = self.min_version.unwrap_or(TlsVersion::Tls12);
        let max = self.max_version.unwrap_or(TlsVersion::Tls13);
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
        let versions = config.versions()?;
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
        assert_eq!(config(None, None).versions().unwrap().len(), 2);
        let only13 = config(Some(TlsVersion::Tls13), None).versions().unwrap();
        assert_eq!(only13[0].version, rustls::ProtocolVersion::TLSv1_3);
        assert_eq!(only13.len(), 1);
        let e = config(Some(TlsVersion::Tls13), Some(TlsVersion::Tls12))
            .versions()
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
