//! Walking the YAML events of one file into the shapes of its grammar.
//!
//! The settings file ([`super::settings`]) and the inventory files ([`super::raw`]) are
//! both read this way: a [`Walker`] over the events of [`super::yaml::Reader`], and
//! small pieces that each grammar combines: a mapping with known keys, a list, a
//! single value with its place ([`scalar`]). Every problem is reported as
//! `file:line:column: message` and the walk goes on past it (unknown, repeated and
//! missing keys, a value of the wrong type), so one run shows every problem of a file;
//! only malformed YAML stops it ([`Malformed`]).

use std::borrow::Cow;
use std::path::Path;

use super::error::{ConfigError, Location, Place, unknown_key};
use super::yaml::{Event, Reader};

mod scalar;

/// Text as written: borrowed from the file whenever the YAML reader could.
pub type Text<'a> = Cow<'a, str>;

/// The YAML is malformed (already reported): nothing after it can be read.
pub struct Malformed;

pub type Walk<T> = Result<T, Malformed>;

/// The events of one file, and where its problems go.
pub struct Walker<'a, 'e> {
    events: Reader<'a>,
    file: &'e Path,
    errors: &'e mut Vec<ConfigError>,
}

impl<'a, 'e> Walker<'a, 'e> {
    /// A walk over `text`, the content of `file`, adding every problem to `errors`.
    pub fn new(text: &'a str, file: &'e Path, errors: &'e mut Vec<ConfigError>) -> Self {
        Self {
            events: Reader::new(text),
            file,
            errors,
        }
    }

    /// The file's one document: `root(walker, first event)` reads its top node (the
    /// first event is [`Event::End`] when the file holds none).
    pub fn document<T>(&mut self, root: impl FnOnce(&mut Self, Event<'a>) -> Walk<T>) -> Walk<T> {
        let first = self.next()?;
        let empty = first == Event::End;
        let value = root(self, first)?;
        if !empty {
            // Reads past the document's end, where a second document would be an error.
            self.next()?;
        }
        Ok(value)
    }

    /// Walks the keys of a mapping whose start was read, up to its end: `value(walker,
    /// index of the key in known)` reads the value of each known key; unknown
    /// and repeated keys are reported and their values skipped. Returns the keys seen, as
    /// bits by index, with every bit set after an unknown key: that key is most likely
    /// the missing one misspelt, and is reported as such already.
    pub fn mapping(
        &mut self,
        section: &str,
        known: &[&str],
        mut value: impl FnMut(&mut Self, usize) -> Walk<()>,
    ) -> Walk<u32> {
        debug_assert!(known.len() <= 32);
        let (mut seen, mut unknown) = (0u32, false);
        loop {
            let key = match self.next()? {
                Event::MappingEnd if unknown => return Ok(u32::MAX),
                Event::MappingEnd => return Ok(seen),
                Event::Scalar(key) => key,
                collection => {
                    self.collection_as_key(collection)?;
                    continue;
                }
            };
            match known.iter().position(|k| *k == key.value) {
                Some(i) if seen & (1 << i) != 0 => {
                    self.error(key.at, format!("duplicate key {:?}", key.value));
                    self.skip_value()?;
                }
                Some(i) => {
                    seen |= 1 << i;
                    value(self, i)?;
                }
                None => {
                    self.error(key.at, unknown_key(Some(section), &key.value, known));
                    self.skip_value()?;
                    unknown = true;
                }
            }
        }
    }

    /// Reports every key of `required` that `seen` lacks, at the mapping's start.
    pub fn require(&mut self, at: Location, seen: u32, known: &[&str], required: &[&str]) {
        for name in required {
            let i = known.iter().position(|k| k == name).expect("a known key");
            if seen & (1 << i) == 0 {
                self.error(at, format!("missing required key {name:?}"));
            }
        }
    }

    /// A list under `key`: `item(walker, first event of the item)` reads each item.
    pub fn list(
        &mut self,
        key: &str,
        mut item: impl FnMut(&mut Self, Event<'a>) -> Walk<()>,
    ) -> Walk<()> {
        match self.next()? {
            Event::SequenceStart(_) => loop {
                match self.next()? {
                    Event::SequenceEnd => return Ok(()),
                    first => item(self, first)?,
                }
            },
            other => {
                self.error(start_of(&other), format!("{key}: expected a list"));
                self.skip(other)
            }
        }
    }

    /// The place of a mapping that starts with `first`; otherwise reports the node as
    /// not a mapping, skips it and returns None.
    pub fn open_mapping(&mut self, key: Option<&str>, first: Event<'a>) -> Walk<Option<Location>> {
        if let Event::MappingStart(at) = first {
            return Ok(Some(at));
        }
        let message = match key {
            Some(key) => format!("{key}: expected a mapping (key: value)"),
            None => "expected a mapping (key: value)".to_string(),
        };
        self.error(start_of(&first), message);
        self.skip(first)?;
        Ok(None)
    }

    /// The value of `key` when it is a section that may be left empty (`key:` alone):
    /// true when a mapping was opened, false for null and for anything else (reported).
    pub fn optional_mapping(&mut self, key: &str) -> Walk<bool> {
        let first = self.next()?;
        if matches!(&first, Event::Scalar(s) if s.is_null()) {
            return Ok(false);
        }
        Ok(self.open_mapping(Some(key), first)?.is_some())
    }

    /// The value of `key` as a section of `known` keys that may be left empty: walks it
    /// like [`Walker::mapping`], handing `value` each known key's index and name.
    pub fn section(
        &mut self,
        key: &str,
        known: &[&str],
        mut value: impl FnMut(&mut Self, usize, &str) -> Walk<()>,
    ) -> Walk<()> {
        if self.optional_mapping(key)? {
            self.mapping(key, known, |w, i| value(w, i, known[i]))?;
        }
        Ok(())
    }

    /// A list or mapping where a key belongs: reported, then skipped with its value.
    pub fn collection_as_key(&mut self, key: Event<'a>) -> Walk<()> {
        self.error(
            start_of(&key),
            "a key must be a single value, not a list or mapping",
        );
        self.skip(key)?;
        self.skip_value()
    }

    pub fn skip_value(&mut self) -> Walk<()> {
        let first = self.next()?;
        self.skip(first)
    }

    /// Reads to the end of the node that starts with `first`.
    pub fn skip(&mut self, first: Event<'a>) -> Walk<()> {
        let mut open = usize::from(matches!(
            first,
            Event::MappingStart(_) | Event::SequenceStart(_)
        ));
        while open > 0 {
            match self.next()? {
                Event::MappingStart(_) | Event::SequenceStart(_) => open += 1,
                Event::MappingEnd | Event::SequenceEnd => open -= 1,
                Event::Scalar(_) | Event::End => {}
            }
        }
        Ok(())
    }

    pub fn next(&mut self) -> Walk<Event<'a>> {
        // Every syntax error has a place within the file (`yaml` sees to it).
        self.events.next().map_err(|e| {
            self.errors
                .push(ConfigError::new(Place::at(self.file, e.at), e.message));
            Malformed
        })
    }

    pub fn error(&mut self, at: Location, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(Place::at(self.file, at), message));
    }
}

/// Where a node starts (an empty document "starts" at its top).
pub(crate) fn start_of(event: &Event<'_>) -> Location {
    match event {
        Event::MappingStart(at) | Event::SequenceStart(at) => *at,
        Event::Scalar(s) => s.at,
        Event::MappingEnd | Event::SequenceEnd | Event::End => Location { line: 1, column: 1 },
    }
}
