//! `http.tls_server_config:`: HTTPS for the appliance's own server (see
//! `crate::http::tls`), in exporter-toolkit's names: `cert_file` and `key_file`
//! (relative to the settings file's directory), `min_version` and `max_version`
//! (`TLS12`, `TLS13`). Absent or empty: plain HTTP. The files themselves are read when
//! the server starts, not here.

use std::path::Path;

use crate::config::error::{ConfigError, Location, Place, Spanned};
use crate::config::walk::{Walk, Walker};
use crate::http::tls::{TlsServerConfig, TlsVersion};

const TLS_KEYS: &[&str] = &["cert_file", "key_file", "min_version", "max_version"];
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
    use crate::http::tls::TlsVersion;

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
        assert_eq!(tls.min_version, Some(TlsVersion::Tls13));
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
