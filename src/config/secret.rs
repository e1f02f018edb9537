//! Secrets named in configuration, never written in it: an environment variable
//! (`…_env`) or a file (`…_file`), read when the configuration is loaded (a reload reads
//! them again). The settings' notification receivers and the inventory's SNMP
//! credentials both take theirs this way.

use std::path::Path;

use super::error::{Location, Spanned};

/// The secret named by `env` (a variable) or `file` (a path, relative to `base`), at
/// most one of them; trailing line ends of a file are not part of it. `keys` are the
/// two keys' full names, for the messages. `Ok(None)` when neither is given; `Err` is
/// where the problem is written and what it is.
pub(crate) fn read(
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<String>>,
    keys: (&str, &str),
    base: &Path,
) -> Result<Option<String>, (Location, String)> {
    let short = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    match (env, file) {
        (Some(_), Some(f)) => Err((
            f.at,
            format!(
                "{}: give {} or {}, not both",
                keys.1,
                short(keys.0),
                short(keys.1)
            ),
        )),
        (Some(var), None) => match std::env::var(var.value.trim()) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err((
                var.at,
                format!(
                    "{}: the environment variable {} is not set (or empty)",
                    keys.0, var.value
                ),
            )),
        },
        (None, Some(f)) => {
            let path = base.join(f.value.trim());
            match std::fs::read_to_string(&path) {
                Ok(v) if !v.trim_end_matches(['\r', '\n']).is_empty() => {
                    Ok(Some(v.trim_end_matches(['\r', '\n']).to_string()))
                }
                Ok(_) => Err((f.at, format!("{}: {} is empty", keys.1, path.display()))),
                Err(e) => Err((
                    f.at,
                    format!("{}: cannot read {}: {e}", keys.1, path.display()),
                )),
            }
        }
        (None, None) => Ok(None),
    }
}
