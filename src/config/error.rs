//! Configuration errors that point at the place in a file that caused them.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A place in a settings or inventory file (1-based line and column; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    /// Shared: every device of a file points at the same path.
    pub file: Arc<Path>,
    pub line: u64,
    pub column: u64,
}

impl Place {
    pub fn new(file: &Path, line: u64, column: u64) -> Self {
        Self {
            file: Arc::from(file),
            line,
            column,
        }
    }

    /// A place in `file` without copying its path (devices keep theirs for good).
    pub(crate) fn in_file(file: &Arc<Path>, at: Location) -> Self {
        Self {
            file: file.clone(),
            line: at.line,
            column: at.column,
        }
    }

    pub fn of_file(file: &Path) -> Self {
        Self::new(file, 0, 0)
    }

    pub(crate) fn at(file: &Path, at: Location) -> Self {
        Self::new(file, at.line, at.column)
    }
}

/// A place in a text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl From<&serde_saphyr::Location> for Location {
    fn from(l: &serde_saphyr::Location) -> Self {
        Self {
            line: l.line(),
            column: l.column(),
        }
    }
}

/// A value and where it is written, so that a check made after parsing can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub at: Location,
}

/// The settings file is read with serde; its values get their places from serde-saphyr.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Spanned<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Spanned {
            at: Location::from(&s.referenced),
            value: s.value,
        })
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        Ok(())
    }
}

/// One problem found while loading configuration: `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub place: Place,
    pub message: String,
}

impl ConfigError {
    pub fn new(place: Place, message: impl Into<String>) -> Self {
        Self {
            place,
            message: message.into(),
        }
    }

    /// Turns a YAML parse or shape error into ours: one line, context first, in the
    /// words of the file (keys, lists) rather than of serde (fields, sequences). `text`
    /// is the file's content, read to name the key and quote the value at fault.
    pub(crate) fn from_yaml(file: &Path, text: &str, err: &serde_saphyr::Error) -> Self {
        let location = err.location();
        let place = location
            .map(|l| Place::at(file, Location::from(&l)))
            .unwrap_or_else(|| Place::of_file(file));
        let key = location.and_then(|l| key_before(text, l.line(), l.column()));
        let with_key = |m: String| match key {
            Some(k) => format!("{k}: {m}"),
            None => m,
        };
        use serde_saphyr::Error as E;
        let message = match err.without_snippet() {
            E::SerdeUnknownField {
                field, expected, ..
            } => unknown_key(section_of(expected), field, expected),
            E::SerdeMissingField { field, .. } => format!("missing required key {field:?}"),
            E::NullIntoString { .. } => with_key("expected a value, found nothing".to_string()),
            E::DuplicateMappingKey { key: Some(k), .. } => format!("duplicate key {k:?}"),
            E::DuplicateMappingKey { key: None, .. } => "duplicate key".to_string(),
            E::InvalidScalar { ty, .. } => {
                let found = location
                    .map(|l| value_at(text, l.line(), l.column()))
                    .unwrap_or_default();
                with_key(format!("expected {}, found {found:?}", describe(ty)))
            }
            E::SerdeInvalidType {
                unexpected,
                expected,
                ..
            }
            | E::SerdeInvalidValue {
                unexpected,
                expected,
                ..
            } => with_key(format!("expected {expected}, found {unexpected}")),
            E::Budget { breach, .. } => format!("file is beyond a YAML parser limit: {breach:?}"),
            E::Unexpected { expected, .. } => with_key(format!("expected {}", describe(expected))),
            other => {
                let shown = other.to_string();
                strip_location_suffix(shown.lines().next().unwrap_or("invalid YAML").trim())
            }
        };
        Self::new(place, message)
    }
}

/// `section: unknown key "x" (did you mean "y"?)`, or the known keys when none is close.
pub(crate) fn unknown_key(section: Option<&str>, key: &str, known: &[&str]) -> String {
    let hint = match closest(key, known) {
        Some(k) => format!("did you mean {k:?}?"),
        None => format!("known keys: {}", known.join(", ")),
    };
    match section {
        Some(s) => format!("{s}: unknown key {key:?} ({hint})"),
        None => format!("unknown key {key:?} ({hint})"),
    }
}

/// Which part of the configuration a struct is, told by its keys (serde names only the
/// unknown key and the known ones).
fn section_of(known: &[&str]) -> Option<&'static str> {
    let has = |k: &str| known.contains(&k);
    Some(match () {
        _ if has("address") => "device",
        _ if has("devices") => "branch",
        _ if has("branches") => "region",
        _ if has("regions") => "inventory file",
        _ if has("retry_interval") => "probe",
        _ if has("database_url") => "settings",
        _ if has("max_connections") => "http",
        _ if has("check_interval") => "reload",
        _ if has("flapping_window") => "alerts",
        _ if has("max_event_streams") => "web",
        _ => return None,
    })
}

/// The known key a misspelt one most likely meant: one is a prefix of the other
/// (`database` → `database_url`), or they are a couple of edits apart (`adress`).
fn closest<'a>(field: &str, known: &[&'a str]) -> Option<&'a str> {
    let prefix = |k: &&&str| k.len() > 1 && (k.starts_with(field) || field.starts_with(**k));
    if let Some(k) = known.iter().find(prefix) {
        return Some(k);
    }
    let limit = (field.chars().count() / 3).clamp(1, 2);
    known
        .iter()
        .map(|k| (edit_distance(field, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance; keys are short, so the simple quadratic form is plenty.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// serde-saphyr's names for what it wanted, in plain words.
fn describe(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "floating point" => "a number",
        "boolean" => "true or false",
        "sequence start" => "a list",
        "mapping start" => "a mapping (key: value)",
        "string scalar" => "a single value, not a list or mapping",
        other => other,
    }
}

/// The key a value at `line:column` (1-based) belongs to: the word before the `:` that
/// precedes it, in block (`key: value`) or flow (`{ key: value }`) style, or the key
/// ending the line above when the value starts on its own line.
fn key_before(text: &str, line: u64, column: u64) -> Option<String> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    let row = text.lines().nth(index)?;
    let column = usize::try_from(column).ok()?;
    // A missing value is reported at its key's colon rather than after it.
    let upto = if row.chars().nth(column.saturating_sub(1)) == Some(':') {
        column
    } else {
        column.saturating_sub(1)
    };
    let head: String = row.chars().take(upto).collect();
    let head = if head.trim().is_empty() {
        let above = text.lines().take(index).map(str::trim_end);
        above
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .last()?
            .to_string()
    } else {
        head
    };
    let head = head.trim_end().strip_suffix(':')?;
    let key = head
        .rsplit(|c: char| c.is_whitespace() || matches!(c, '{' | ',' | '-'))
        .next()?;
    let key = key.trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then(|| key.to_string())
}

/// serde-saphyr ends messages with " at line L, column C"; we print the place up front.
fn strip_location_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The scalar written at `line:column`, up to the end of its flow item.
fn value_at(text: &str, line: u64, column: u64) -> String {
    let row = usize::try_from(line)
        .ok()
        .and_then(|l| text.lines().nth(l.checked_sub(1)?));
    let rest: String = row
        .unwrap_or_default()
        .chars()
        .skip(usize::try_from(column).unwrap_or(1).saturating_sub(1))
        .take_while(|c| !matches!(c, ',' | '}' | ']' | '#'))
        .collect();
    rest.trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_string()
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// All the problems of one load, sorted by place so output is stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub(crate) fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by(|a, b| {
            a.place
                .cmp(&b.place)
                .then_with(|| a.message.cmp(&b.message))
        });
        Self(errors)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
