//! The YAML events of one configuration file, each with its line and column: the one
//! reader of the settings file and of the inventory files, walked by [`super::walk`].
//!
//! Files are parsed with libyaml's grammar (the `libyaml-safer` port) rather than
//! through serde: parsing dominates a reload, and at 100,000 devices serde-saphyr spent
//! about four times as long as this reader plus the walker (see docs/benchmarks.md,
//! "Inventory hot reload"). A fast path ([`fast`]) takes the plain subset inventories
//! are written in; it only ever decides how fast a file is read, and nothing else
//! knows of it: removing it is removing that module and the branch of [`Reader`] that
//! chooses it.
//!
//! Anchors and aliases are expanded here, so the walker never sees an alias; the
//! expansion is bounded so that a file of nested aliases (a "billion laughs") is an
//! error instead of an endless loop.
//!
//! Whatever the text, reading it ends in events or in one [`SyntaxError`] with a place
//! within the file, in time linear in its length: nesting is limited to [`MAX_DEPTH`]
//! (libyaml's scanner does work proportional to the depth for every token, so 80,000
//! `[` took 13 s), a character libyaml refuses is pointed at ([`place`]), and a panic
//! inside libyaml-safer is caught and reported as an error ([`guard`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use libyaml_safer::{EventData, Mark, Parser};

use super::error::Location;

mod fast;
mod guard;
pub(super) mod place;

impl From<Mark> for Location {
    fn from(m: Mark) -> Self {
        Self {
            line: m.line + 1,
            column: m.column + 1,
        }
    }
}

/// One event of the document's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    MappingStart(Location),
    MappingEnd,
    SequenceStart(Location),
    SequenceEnd,
    Scalar(Scalar<'a>),
    /// The document is over.
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar<'a> {
    /// Borrowed from the text when the fast path read it.
    pub value: Cow<'a, str>,
    /// Unquoted (only a plain scalar can be a null).
    pub plain: bool,
    pub at: Location,
}

impl Scalar<'_> {
    /// `key:` with nothing after it, `~` or `null`.
    pub fn is_null(&self) -> bool {
        self.plain && matches!(&*self.value, "" | "~" | "null" | "Null" | "NULL")
    }
}

/// Malformed YAML: the file cannot be read any further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: Location,
    pub message: String,
}

/// Alias expansion may replay this many events beyond ten per event in the file: far
/// above any inventory that shares label sets, far below a nested-alias bomb.
const EXPANSION_ALLOWANCE: usize = 1_000_000;
const EXPANSION_PER_EVENT: usize = 10;

/// Lists and mappings nest at most this deep. An inventory needs 8 (file, regions,
/// region, branches, branch, devices, device, labels); the limit stops a file of
/// nested brackets at its 65th bracket, before libyaml's per-token work, which grows
/// with the depth, adds up to quadratic time.
pub const MAX_DEPTH: usize = 64;

/// The events of one file: from the fast path when it takes the file, else from libyaml.
pub struct Reader<'a> {
    source: Source<'a>,
    /// Collections open at the current event.
    depth: usize,
}

enum Source<'a> {
    Scanned(std::vec::IntoIter<Event<'a>>),
    Parsed(Box<LibYaml<'a>>),
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        let source = match fast::events(text) {
            Some(events) => Source::Scanned(events.into_iter()),
            None => Source::Parsed(Box::new(LibYaml::new(text))),
        };
        Self { source, depth: 0 }
    }

    /// Through libyaml, whatever the text: what the fast path is held to.
    #[cfg(test)]
    pub fn libyaml(text: &'a str) -> Self {
        Self {
            source: Source::Parsed(Box::new(LibYaml::new(text))),
            depth: 0,
        }
    }

    pub fn next(&mut self) -> Result<Event<'a>, SyntaxError> {
        let event = match &mut self.source {
            // The fast path's list ends with `End`; asking again stays at the end.
            Source::Scanned(events) => events.next().unwrap_or(Event::End),
            Source::Parsed(parser) => parser.next()?,
        };
        match &event {
            Event::MappingStart(at) | Event::SequenceStart(at) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(SyntaxError {
                        at: *at,
                        message: format!("lists and mappings nested more than {MAX_DEPTH} deep"),
                    });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => self.depth = self.depth.saturating_sub(1),
            Event::Scalar(_) | Event::End => {}
        }
        Ok(event)
    }
}

/// libyaml's parser, with anchors and aliases expanded.
struct LibYaml<'a> {
    text: &'a str,
    parser: Parser<&'a [u8]>,
    anchors: HashMap<String, Rc<[Event<'a>]>>,
    /// Anchored nodes being captured: their name, events so far, open collections.
    recording: Vec<(String, Vec<Event<'a>>, usize)>,
    /// Aliases being replayed, innermost last, with the alias's place.
    replaying: Vec<(Rc<[Event<'a>]>, usize, Location)>,
    parsed: usize,
    replayed: usize,
    documents: usize,
    /// The error that ended the reading: libyaml is not called again after it (after a
    /// panic, its state is unknown).
    failed: Option<SyntaxError>,
}

impl<'a> LibYaml<'a> {
    fn new(text: &'a str) -> Self {
        let mut parser = Parser::new();
        parser.set_input(text.as_bytes());
        Self {
            text,
            parser,
            anchors: HashMap::new(),
            recording: Vec::new(),
            replaying: Vec::new(),
            parsed: 0,
            replayed: 0,
            documents: 0,
            failed: None,
        }
    }

    fn next(&mut self) -> Result<Event<'a>, SyntaxError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let next = self.read();
        if let Err(e) = &next {
            self.failed = Some(e.clone());
        }
        next
    }

    fn read(&mut self) -> Result<Event<'a>, SyntaxError> {
        loop {
            if let Some((events, i, _)) = self.replaying.last_mut() {
                let Some(event) = events.get(*i).cloned() else {
                    self.replaying.pop();
                    continue;
                };
                *i += 1;
                self.replayed += 1;
                if self.replayed > EXPANSION_ALLOWANCE + EXPANSION_PER_EVENT * self.parsed {
                    return Err(SyntaxError {
                        // The alias written in the file (an inner one was expanded
                        // when its anchor was recorded).
                        at: self.replaying[0].2,
                        message: format!("aliases expand to more than {} nodes", self.replayed - 1),
                    });
                }
                self.record(&event, None);
                return Ok(event);
            }
            let parser = &mut self.parser;
            let raw = match guard::catch(|| parser.parse()) {
                Ok(parsed) => parsed.map_err(|e| syntax_error(self.text, e))?,
                Err(panic) => {
                    return Err(SyntaxError {
                        at: guard::place_of_panic(self.text),
                        message: format!(
                            "the YAML parser (libyaml-safer) failed here: {panic:?}; write this part another way (a tag such as !x directly followed by ',' is one such case)"
                        ),
                    });
                }
            };
            self.parsed += 1;
            let mut at = Location::from(raw.start_mark);
            if raw.start_mark.index as usize >= self.text.len() {
                // An empty value at the end of the file "starts" after its last line
                // break; cheap to move only there.
                at = place::within(self.text, at);
            }
            let (event, anchor) = match raw.data {
                EventData::StreamStart { .. } | EventData::DocumentEnd { .. } => continue,
                EventData::DocumentStart { .. } => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(SyntaxError {
                            at,
                            message:
                                "a second YAML document ('---'); a configuration file holds one"
                                    .into(),
                        });
                    }
                    continue;
                }
                EventData::StreamEnd => (Event::End, None),
                EventData::Alias { anchor } => {
                    let Some(events) = self.anchors.get(&anchor) else {
                        return Err(SyntaxError {
                            at,
                            message: format!("alias *{anchor} names no anchor defined before it"),
                        });
                    };
                    self.replaying.push((events.clone(), 0, at));
                    continue;
                }
                EventData::Scalar {
                    anchor,
                    value,
                    style,
                    ..
                } => {
                    let plain = style == libyaml_safer::ScalarStyle::Plain;
                    (
                        Event::Scalar(Scalar {
                            value: Cow::Owned(value),
                            plain,
                            at,
                        }),
                        anchor,
                    )
                }
                EventData::SequenceStart { anchor, .. } => (Event::SequenceStart(at), anchor),
                EventData::SequenceEnd => (Event::SequenceEnd, None),
                EventData::MappingStart { anchor, .. } => (Event::MappingStart(at), anchor),
                EventData::MappingEnd => (Event::MappingEnd, None),
            };
            self.record(&event, anchor);
            return Ok(event);
        }
    }

    /// Adds `event` to every anchored node being captured, starting a capture first if
    /// the event carries an anchor, and keeps the nodes that it completes.
    fn record(&mut self, event: &Event<'a>, anchor: Option<String>) {
        if let Some(name) = anchor {
            self.recording.push((name, Vec::new(), 0));
        }
        if self.recording.is_empty() {
            return;
        }
        for (_, events, open) in &mut self.recording {
            events.push(event.clone());
            match event {
                Event::MappingStart(_) | Event::SequenceStart(_) => *open += 1,
                Event::MappingEnd | Event::SequenceEnd => *open -= 1,
                Event::Scalar(_) | Event::End => {}
            }
        }
        // Captures nest, so the ones completed are the innermost, at the end.
        while self.recording.last().is_some_and(|(_, _, open)| *open == 0) {
            let (name, events, _) = self.recording.pop().expect("checked above");
            self.anchors.insert(name, events.into());
        }
    }
}

fn syntax_error(text: &str, e: libyaml_safer::Error) -> SyntaxError {
    let mut error = describe(text, e);
    error.at = place::within(text, error.at);
    error
}

fn describe(text: &str, e: libyaml_safer::Error) -> SyntaxError {
    // The reader's errors carry a byte offset, not a place, and libyaml-safer keeps it
    // private; the text is already UTF-8, so the only one is a refused character.
    if e.kind() == libyaml_safer::ErrorKind::Reader {
        return match place::first_unreadable(text) {
            Some((c, at)) => SyntaxError {
                at,
                message: format!("{} (U+{:04X})", e.problem(), u32::from(c)),
            },
            None => SyntaxError {
                at: Location { line: 1, column: 1 },
                message: e.problem().to_string(),
            },
        };
    }
    // libyaml finds an unclosed quote at the end of the file (or at the next `---`);
    // what needs fixing is the quote that opened it.
    if let (Some("while scanning a quoted scalar"), Some(mark)) = (e.context(), e.context_mark()) {
        return SyntaxError {
            at: Location::from(mark),
            message: "unclosed quote".into(),
        };
    }
    let at = e.problem_mark().map(Location::from).unwrap_or_default();
    let message = match (e.context(), e.context_mark()) {
        (Some(context), Some(mark)) => {
            let start = Location::from(mark);
            format!(
                "{} ({context} that starts at line {}, column {})",
                e.problem(),
                start.line,
                start.column
            )
        }
        _ => e.problem().to_string(),
    };
    SyntaxError {
        at,
        message: message + hint(text, at),
    }
}

/// What most likely caused a syntax error that libyaml describes in its own terms.
fn hint(text: &str, at: Location) -> &'static str {
    let line = text.lines().nth(at.line.saturating_sub(1) as usize);
    // YAML 1.1 takes `::1` for a key indicator inside `{ ... }`; YAML 1.2 parsers differ.
    if line.is_some_and(|l| l.contains(": :")) {
        return "; quote a value that starts with ':', such as the IPv6 address \"::1\"";
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Result<Vec<String>, SyntaxError> {
        let mut reader = Reader::libyaml(text);
        let mut out = Vec::new();
        loop {
            let shown = match reader.next()? {
                Event::End => return Ok(out),
                Event::MappingStart(_) => "{".to_string(),
                Event::MappingEnd => "}".to_string(),
                Event::SequenceStart(_) => "[".to_string(),
                Event::SequenceEnd => "]".to_string(),
                Event::Scalar(s) => s.value.into_owned(),
            };
            out.push(shown);
        }
    }

    #[test]
    fn aliases_replay_their_anchored_node() {
        let text = "a: &l { isp: magti, tier: 1 }\nb: *l\nc: &s x\nd: *s\n";
        assert_eq!(
            events(text).unwrap().join(" "),
            "{ a { isp magti tier 1 } b { isp magti tier 1 } c x d x }"
        );
    }

    #[test]
    fn nested_anchors_are_each_captured() {
        let text = "a: &outer [1, &inner [2, 3]]\nb: *inner\nc: *outer\n";
        assert_eq!(
            events(text).unwrap().join(" "),
            "{ a [ 1 [ 2 3 ] ] b [ 2 3 ] c [ 1 [ 2 3 ] ] }"
        );
    }

    #[test]
    fn an_alias_bomb_is_an_error_not_a_hang() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text += &format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            );
        }
        let error = events(&text).unwrap_err();
        assert!(
            error.message.starts_with("aliases expand to more than"),
            "{error:?}"
        );
    }

    #[test]
    fn an_unknown_alias_and_a_second_document_are_errors() {
        let unknown = events("a: *nowhere\n").unwrap_err();
        assert_eq!(
            unknown.message,
            "alias *nowhere names no anchor defined before it"
        );
        assert_eq!((unknown.at.line, unknown.at.column), (1, 4));
        let second = events("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(second.at.line, 2);
    }

    #[test]
    fn syntax_errors_name_the_problem_and_where_its_context_starts() {
        let error = events("a:\n  b: { c: 1, d: 2\n").unwrap_err();
        assert!(
            error
                .message
                .contains("flow mapping that starts at line 2, column 6"),
            "{error:?}"
        );
    }

    #[test]
    fn an_unquoted_ipv6_address_that_starts_with_a_colon_gets_a_hint() {
        let error = events("- { name: a, address: ::1 }\n").unwrap_err();
        assert!(
            error.message.ends_with("such as the IPv6 address \"::1\""),
            "{error:?}"
        );
        assert_eq!(
            events("- { name: a, address: \"::1\" }\n")
                .unwrap()
                .join(" "),
            "[ { name a address ::1 } ]"
        );
    }

    #[test]
    fn locations_are_one_based() {
        let mut reader = Reader::libyaml("key:\n  - value\n");
        assert!(
            matches!(reader.next().unwrap(), Event::MappingStart(l) if l == Location { line: 1, column: 1 })
        );
        let Event::Scalar(key) = reader.next().unwrap() else {
            panic!()
        };
        assert_eq!((key.at.line, key.at.column), (1, 1));
        assert!(matches!(reader.next().unwrap(), Event::SequenceStart(_)));
        let Event::Scalar(value) = reader.next().unwrap() else {
            panic!()
        };
        assert_eq!((value.at.line, value.at.column), (2, 5));
    }
}
