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

/// A value and where it is written, so that a check made after parsing can point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub at: Location,
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
}

/// The message of a caught panic (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
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

/// The known key a misspelt one most likely meant: one is a prefix of the other
/// (`database` → `database_url`), or they are a couple of edits apart (`adress`).
pub(crate) fn closest<'a>(field: &str, known: &[&'a str]) -> Option<&'a str> {
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
