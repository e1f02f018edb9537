//! `http.tls_server_config:`: HTTPS for the appliance's own server (see
//! `crate::http::tls`), in exporter-toolkit's names: `cert_file` and `key_file`
//! (relative to the settings file's directory), `min_version` and `max_version`
//! (`TLS12`, `TLS13`). Absent or empty: plain HTTP. The files themselves are read when
//! the server starts, not here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::error::{ConfigError, Location, Place, Spanned};
use crate::config::walk::{Walk, Walker};

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
}

pub(in crate::config) const TLS_KEYS: &[&str] =
    &["cert_file", "key_file", "min_version", "max_version"];
const NAME: &str = "http.tls_server_config";

/// `tls_server_config:` as written; `at` is where its mapping starts, None if absent.
#[derive(Debug, Default)]
pub(super) struct RawTls {
    at: Option<Location>,
    files: [Option<Spanned<String>>; 2],
    versions: [Option<Spanned<String>>; 2],
}

impl RawTls {
    pub(super) fn read(w: &mut Walker<'_, '_>) -> Walk<Self> {
        let mut raw = Self::default();
        let first = w.next()?;
        if matches!(&first, crate::config::yaml::Event::Scalar(s) if s.is_null()) {
            return Ok(raw);
        }
        let Some(at) = w.open_mapping(Some(NAME), first)? else {
            return Ok(raw);
        };
        let seen = w.mapping(NAME, TLS_KEYS, |w, key| {
            let value = w.optional_string(TLS_KEYS[key])?;
            match key {
                0 | 1 => raw.files[key] = value,
                _ => raw.versions[key - 2] = value,
            }
            Ok(())
        })?;
        w.require(at, seen, TLS_KEYS, &["cert_file", "key_file"]);
        raw.at = Some(at);
        Ok(raw)
    }

    /// The block with its paths under `base`, or None for plain HTTP.
    pub(super) fn resolve(
        self,
        base: &Path,
        path: &Path,
        errors: &mut Vec<ConfigError>,
    ) -> Option<TlsServerConfig> {
        self.at?;
        let mut bad = false;
        let mut error = |at: Location, message: String| {
            errors.push(ConfigError::new(Place::at(path, at), message));
            bad = true;
        };
        let [cert_file, key_file] = self.files;
        for (key, file) in [("cert_file", &cert_file), ("key_file", &key_file)] {
            // A missing one was reported by `read`.
            if let Some(problem) = file.as_ref().and_then(|f| super::path_problem(&f.value)) {
                let file = file.as_ref().expect("a problem is of a file");
                error(file.at, format!("{NAME}.{key} {:?} {problem}", file.value));
            }
        }
        let [min_version, max_version] = self.versions;
        let mut version = |key: &str, v: Option<Spanned<String>>| {
            let v = v?;
            v.value
                .trim()
                .parse::<TlsVersion>()
                .map_err(|message| error(v.at, format!("{NAME}.{key}: {message}")))
                .ok()
        };
        let min_version = version("min_version", min_version);
        let max_version = version("max_version", max_version);
        let (Some(cert_file), Some(key_file)) = (cert_file, key_file) else {
            return None;
        };
        if bad {
            return None;
        }
        let config = TlsServerConfig {
            cert_file: cert_file.value.into(),
            key_file: key_file.value.into(),
            min_version,
            max_version,
        };
        Some(config.relative_to(base))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::settings::tests::parse;

    #[test]
    fn the_block_is_read_relative_to_the_settings_and_checked() {
        let s = parse(
            "http:\n  tls_server_config:\n    cert_file: tls/a.crt\n    key_file: /k/a.key\n    min_version: TLS13\n",
        )
        .unwrap();
        let tls = s.tls_server_config.unwrap();
        assert_eq!(
            tls.cert_file,
            Path::new("tls/a.crt"),
            "under w.yaml's directory"
        );
        assert_eq!(tls.key_file, Path::new("/k/a.key"));
        assert_eq!(tls.min_version, Some(super::TlsVersion::Tls13));
        assert_eq!(
            parse("http:\n  tls_server_config:\n")
                .unwrap()
                .tls_server_config,
            None
        );
        assert_eq!(parse("").unwrap().tls_server_config, None);

        assert_eq!(
            parse("http:\n  tls_server_config:\n    cert_file: a.crt\n").unwrap_err(),
            "w.yaml:3:5: missing required key \"key_file\""
        );
        assert_eq!(
            parse(
                "http:\n  tls_server_config:\n    cert_file: a\n    key_file: b\n    ciphers: x\n"
            )
            .unwrap_err(),
            "w.yaml:5:5: http.tls_server_config: unknown key \"ciphers\" \
             (known keys: cert_file, key_file, min_version, max_version)"
        );
        assert_eq!(
            parse("http:\n  tls_server_config:\n    cert_file: a\n    key_file: b\n    max_version: TLS11\n")
                .unwrap_err(),
            "w.yaml:5:18: http.tls_server_config.max_version: TLS11 is not supported \
             (TLS 1.0 and 1.1 are obsolete): use TLS12 or TLS13"
        );
        assert_eq!(
            parse("http:\n  tls_server_config:\n    cert_file: ' '\n    key_file: b\n")
                .unwrap_err(),
            "w.yaml:3:16: http.tls_server_config.cert_file \" \" is empty"
        );
    }
}
