//! Configuration errors that point at the place in a file that caused them.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a settings or inventory file (1-based line and column; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl Place {
    pub fn new(file: &Path, line: u64, column: u64) -> Self {
        Self { file: file.to_path_buf(), line, column }
    }

    pub fn of_file(file: &Path) -> Self {
        Self::new(file, 0, 0)
    }

    pub(crate) fn at(file: &Path, location: &serde_saphyr::Location) -> Self {
        Self::new(file, location.line(), location.column())
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
        Self { place, message: message.into() }
    }

    /// Turns a YAML parse or shape error into ours, keeping only its first line
    /// (the crate appends a source snippet that our `file:line:column` replaces).
    pub(crate) fn from_yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        let place = err
            .location()
            .map(|l| Place::at(file, &l))
            .unwrap_or_else(|| Place::of_file(file));
        let text = err.without_snippet().to_string();
        let message = text.lines().next().unwrap_or("invalid YAML").trim();
        let message = strip_location_suffix(message);
        Self::new(place, message)
    }
}

/// serde-saphyr ends messages with " at line L, column C"; we print the place up front.
fn strip_location_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
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
        errors.sort_by(|a, b| a.place.cmp(&b.place).then_with(|| a.message.cmp(&b.message)));
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
