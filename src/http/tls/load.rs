//! Reading a certificate chain and its private key from PEM files into what rustls
//! signs with, with errors that name the setting and the file.
//!
//! Files are read as the configuration is (never blocking on a FIFO, at most
//! [`MAX_PEM_BYTES`]); the key must match the first certificate, checked here rather
//! than found out by every client's failed handshake.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::sign::CertifiedKey;

use super::TlsServerConfig;
use crate::config::load::read::read_bytes_limited;

/// The largest certificate or key file read: a long chain is a few tens of KiB.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// Why a certificate and key could not be loaded; the message names the setting and
/// the file (`tls_server_config.cert_file /etc/x.pem: no certificate in it`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl TlsError {
    pub(crate) fn new(message: String) -> TlsError {
        TlsError(message)
    }
}

/// The bytes of a certificate file and a key file, as read.
pub(super) struct Pair {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl Pair {
    /// Reads both files of `config`.
    pub fn read(config: &TlsServerConfig) -> Result<Pair, TlsError> {
        Ok(Pair {
            cert: read("cert_file", &config.cert_file)?,
            key: read("key_file", &config.key_file)?,
        })
    }

    /// The chain and key of these bytes, checked to belong together.
    pub fn certified_key(
        &self,
        config: &TlsServerConfig,
        provider: &CryptoProvider,
    ) -> Result<Arc<CertifiedKey>, TlsError> {
        let (cert_file, key_file) = (&config.cert_file, &config.key_file);
        let at = |name: &str, path: &Path, what: String| {
            TlsError(format!(
                "tls_server_config.{name} {}: {what}",
                path.display()
            ))
        };
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| at("cert_file", cert_file, format!("not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(at(
                "cert_file",
                cert_file,
                "no certificate in it (expected PEM \"BEGIN CERTIFICATE\" blocks)".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => at(
                "key_file",
                key_file,
                "no private key in it (expected PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" \
                 or \"EC PRIVATE KEY\"; an encrypted key is not supported)"
                    .into(),
            ),
            e => at("key_file", key_file, format!("not PEM: {e}")),
        })?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| at("key_file", key_file, format!("cannot use the key: {e}")))?;
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) => Ok(Arc::new(certified)),
            // A key type whose public half rustls cannot derive: nothing to compare.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(Arc::new(certified))
            }
            Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError(format!(
                "tls_server_config: the key in {} does not match the certificate in {} \
                 (the first certificate must be the server's own)",
                key_file.display(),
                cert_file.display()
            ))),
            Err(e) => Err(at(
                "cert_file",
                cert_file,
                format!("cannot read the first certificate: {e}"),
            )),
        }
    }
}

fn read(name: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    read_bytes_limited(path, MAX_PEM_BYTES).map_err(|e| {
        TlsError(format!(
            "tls_server_config.{name} {}: {}",
            path.display(),
            e.message
        ))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;

    /// A self-signed certificate for `name` and its key, made by the `openssl` CLI in
    /// `dir` as `<name>.crt` and `<name>.key`; `kind` is `rsa:2048` or `ec`.
    pub(crate) fn make_pair(dir: &Path, name: &str, ec: bool) -> (PathBuf, PathBuf) {
        let (cert, key) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        let mut cmd = Command::new("openssl");
        cmd.args(["req", "-x509", "-nodes", "-days", "2", "-subj"])
            .arg(format!("/CN={name}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert);
        if ec {
            cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]);
        } else {
            cmd.args(["-newkey", "rsa:2048"]);
        }
        let out = cmd
            .output()
            .expect("openssl is installed (scripts/test installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (cert, key)
    }

    fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
        let config = TlsServerConfig {
            cert_file: cert.into(),
            key_file: key.into(),
            min_version: None,
            max_version: None,
        };
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        Pair::read(&config)
            .and_then(|p| p.certified_key(&config, &provider))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_pair_loads_and_every_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (cert, key) = make_pair(d, "a", false);
        let (ec_cert, ec_key) = make_pair(d, "b", true);
        assert_eq!(load(&cert, &key).unwrap().cert.len(), 1);
        assert!(load(&ec_cert, &ec_key).is_ok());

        let missing = d.join("missing.crt");
        let e = load(&missing, &key).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "tls_server_config.cert_file {}: cannot read: ",
                missing.display()
            )),
            "{e}"
        );
        assert_eq!(
            load(&key, &key).unwrap_err(),
            format!(
                "tls_server_config.cert_file {}: no certificate in it \
                 (expected PEM \"BEGIN CERTIFICATE\" blocks)",
                key.display()
            )
        );
        let e = load(&cert, &cert).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "tls_server_config.key_file {}: no private key in it",
                cert.display()
            )),
            "{e}"
        );
        assert_eq!(
            load(&cert, &ec_key).unwrap_err(),
            format!(
                "tls_server_config: the key in {} does not match the certificate in {} \
                 (the first certificate must be the server's own)",
                ec_key.display(),
                cert.display()
            )
        );
        let dir_as_file = load(d, &key).unwrap_err();
        assert!(dir_as_file.contains("not a regular file"), "{dir_as_file}");
    }

    #[test]
    fn broken_pem_and_an_encrypted_key_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (cert, key) = make_pair(d, "a", false);
        let truncated = d.join("truncated.crt");
        let text = std::fs::read_to_string(&cert).unwrap();
        std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
        let e = load(&truncated, &key).unwrap_err();
        assert!(e.contains("truncated.crt: not PEM: "), "{e}");

        let encrypted = d.join("encrypted.key");
        let out = Command::new("openssl")
            .args(["pkcs8", "-topk8", "-passout", "pass:secret", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&encrypted)
            .output()
            .unwrap();
        assert!(out.status.success());
        let e = load(&cert, &encrypted).unwrap_err();
        assert!(e.contains("an encrypted key is not supported"), "{e}");
    }
}
