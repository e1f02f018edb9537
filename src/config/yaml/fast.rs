//! A fast path for the plain YAML that inventories are written in.
//!
//! It takes block mappings and lists nested by indentation, one-line flow mappings
//! (`{ name: x, labels: { isp: y } }`), one-line flow lists of scalars as a value
//! (`parents: [a, b]`) and one-line plain or quoted scalars, and yields exactly the
//! events libyaml yields for them, places included. Anything else (anchors, tags,
//! multi-line or block scalars, flow lists of collections or as list items or keys,
//! tabs, control characters and line
//! breaks other than `\n` anywhere, comments included, indentless lists, empty values,
//! errors of any kind) makes it give up, and the file goes through libyaml instead: the
//! fast path only ever decides how fast a file is read, never what it means. The tests
//! hold it to libyaml's events on every text it takes, generated ones included.
//!
//! Why: libyaml-safer builds every scalar one character at a time; this is a single
//! pass over lines that slices them, about four times faster on a 100,000-device
//! inventory (docs/benchmarks.md).

use std::borrow::Cow;

use super::{Event, Location, Scalar};

/// The events of `text`, ending with [`Event::End`], or None when the text is not in
/// the subset this path reads.
pub fn events(text: &str) -> Option<Vec<Event<'_>>> {
    let mut scan = Scan {
        // About one event per eight bytes of a typical inventory.
        out: Vec::with_capacity(text.len() / 8),
        open: Vec::new(),
        awaiting_value: false,
        started: false,
    };
    for (i, text) in text.split('\n').enumerate() {
        scan.line(&Line {
            number: i as u64 + 1,
            text,
            ascii: text.is_ascii(),
        })?;
    }
    scan.finish()
}

#[derive(Clone, Copy, PartialEq)]
enum Block {
    Mapping,
    List,
}

struct Scan<'a> {
    out: Vec<Event<'a>>,
    /// Open block collections with the column (0-based) of their items.
    open: Vec<(Block, usize)>,
    /// The last line was `key:` alone: its value is the block on the next lines.
    awaiting_value: bool,
    started: bool,
}

struct Line<'a> {
    number: u64,
    text: &'a str,
    ascii: bool,
}

impl Line<'_> {
    /// The place of byte `at`: libyaml counts columns in characters.
    fn at(&self, at: usize) -> Location {
        let column = if self.ascii {
            at
        } else {
            self.text[..at].chars().count()
        };
        Location {
            line: self.number,
            column: column as u64 + 1,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

/// Deeper flow mappings than this are left to libyaml (and keep the recursion shallow).
const MAX_FLOW_DEPTH: usize = 8;
/// libyaml does not take a key longer than this on one line.
const MAX_KEY: usize = 1000;

impl<'a> Scan<'a> {
    fn line(&mut self, line: &Line<'a>) -> Option<()> {
        let b = line.bytes();
        // Tabs, `\r` and other controls anywhere, comments included, and every
        // non-ASCII line break (NEL, U+2028, U+2029, which end a comment for libyaml
        // and so turn its rest into content), the BOM and whatever libyaml refuses are
        // left to libyaml: the lines this path takes are split only at `\n`.
        let plain = if line.ascii {
            !b.iter().any(|&c| c < 0x20 || c == 0x7f)
        } else {
            line.text.chars().all(printable)
        };
        if !plain {
            return None;
        }
        let indent = b.iter().take_while(|&&c| c == b' ').count();
        if matches!(b.get(indent), None | Some(b'#')) {
            return Some(());
        }
        if std::mem::take(&mut self.awaiting_value) {
            // A value on the next lines must be indented deeper than its key.
            let (_, parent) = *self.open.last()?;
            if indent <= parent {
                return None;
            }
            return self.block(line, indent);
        }
        while self.open.last().is_some_and(|&(_, column)| column > indent) {
            self.close();
        }
        match self.open.last() {
            None if !self.started => {
                self.started = true;
                self.block(line, indent)
            }
            Some(&(kind, column)) if column == indent => match kind {
                Block::List => self.list_item(line, indent),
                Block::Mapping => self.entry(line, indent),
            },
            // A second top-level node, or an indentation libyaml would reject.
            _ => None,
        }
    }

    /// A block collection whose first item starts at `at`.
    fn block(&mut self, line: &Line<'a>, at: usize) -> Option<()> {
        if line.bytes()[at] == b'-' {
            self.out.push(Event::SequenceStart(line.at(at)));
            self.open.push((Block::List, at));
            self.list_item(line, at)
        } else {
            self.out.push(Event::MappingStart(line.at(at)));
            self.open.push((Block::Mapping, at));
            self.entry(line, at)
        }
    }

    /// `- item` at `at`: a mapping that starts on this line, a flow mapping or a scalar.
    fn list_item(&mut self, line: &Line<'a>, at: usize) -> Option<()> {
        let b = line.bytes();
        if b.get(at..at + 2) != Some(b"- ") {
            return None;
        }
        let start = skip_spaces(b, at + 2);
        match b.get(start) {
            None | Some(b'#' | b'-') => None,
            Some(b'{') => {
                let end = self.flow_mapping(line, start, 1)?;
                line_end(b, end)
            }
            _ if is_key(b, start) => {
                self.out.push(Event::MappingStart(line.at(start)));
                self.open.push((Block::Mapping, start));
                self.entry(line, start)
            }
            _ => {
                let end = self.scalar(line, start)?;
                line_end(b, end)
            }
        }
    }

    /// `key: value` or `key:` at `at`.
    fn entry(&mut self, line: &Line<'a>, at: usize) -> Option<()> {
        let b = line.bytes();
        if !is_key(b, at) {
            return None;
        }
        let colon = at + plain_len(b, at);
        self.push_plain(line, at, colon);
        let start = skip_spaces(b, colon + 1);
        match b.get(start) {
            None | Some(b'#') => {
                self.awaiting_value = true;
                Some(())
            }
            Some(b'{') => {
                let end = self.flow_mapping(line, start, 1)?;
                line_end(b, end)
            }
            Some(b'[') => {
                let end = self.flow_list(line, start)?;
                line_end(b, end)
            }
            _ => {
                let end = self.scalar(line, start)?;
                line_end(b, end)
            }
        }
    }

    /// `[a, b, ...]` of scalars starting at `at`, on this line; returns where it ends.
    fn flow_list(&mut self, line: &Line<'a>, at: usize) -> Option<usize> {
        let b = line.bytes();
        self.out.push(Event::SequenceStart(line.at(at)));
        let mut i = skip_spaces(b, at + 1);
        if b.get(i) == Some(&b']') {
            self.out.push(Event::SequenceEnd);
            return Some(i + 1);
        }
        loop {
            // A list or mapping inside, or `key: value` pairs, are left to libyaml.
            i = self.scalar(line, i)?;
            i = skip_spaces(b, i);
            match b.get(i) {
                Some(b']') => {
                    self.out.push(Event::SequenceEnd);
                    return Some(i + 1);
                }
                Some(b',') => {
                    i = skip_spaces(b, i + 1);
                    // A trailing comma (`[a, ]`) is left to libyaml.
                    if b.get(i) == Some(&b']') {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    /// `{ key: value, ... }` starting at `at`, on this line; returns where it ends.
    fn flow_mapping(&mut self, line: &Line<'a>, at: usize, depth: usize) -> Option<usize> {
        if depth > MAX_FLOW_DEPTH {
            return None;
        }
        let b = line.bytes();
        self.out.push(Event::MappingStart(line.at(at)));
        let mut i = skip_spaces(b, at + 1);
        if b.get(i) == Some(&b'}') {
            self.out.push(Event::MappingEnd);
            return Some(i + 1);
        }
        loop {
            if !is_key(b, i) {
                return None;
            }
            let colon = i + plain_len(b, i);
            self.push_plain(line, i, colon);
            if b.get(colon + 1) != Some(&b' ') {
                return None;
            }
            i = skip_spaces(b, colon + 1);
            i = match b.get(i) {
                Some(b'{') => self.flow_mapping(line, i, depth + 1)?,
                Some(b'[') => self.flow_list(line, i)?,
                _ => self.scalar(line, i)?,
            };
            i = skip_spaces(b, i);
            match b.get(i) {
                Some(b'}') => {
                    self.out.push(Event::MappingEnd);
                    return Some(i + 1);
                }
                Some(b',') => {
                    i = skip_spaces(b, i + 1);
                    // A trailing comma (`{ a: 1, }`) is left to libyaml.
                    if b.get(i) == Some(&b'}') {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }

    /// A one-line scalar at `at` (plain, or quoted without escapes); returns its end.
    fn scalar(&mut self, line: &Line<'a>, at: usize) -> Option<usize> {
        let b = line.bytes();
        match b.get(at) {
            Some(&quote @ (b'"' | b'\'')) => {
                let body = &line.text[at + 1..];
                let len = body.find([quote as char, '\\'])?;
                if body.as_bytes()[len] != quote || !body[..len].chars().all(printable) {
                    return None;
                }
                self.out.push(Event::Scalar(Scalar {
                    value: Cow::Borrowed(&body[..len]),
                    plain: false,
                    at: line.at(at),
                }));
                Some(at + 1 + len + 1)
            }
            _ => {
                if !plain_start(b, at) {
                    return None;
                }
                let end = at + plain_len(b, at);
                self.push_plain(line, at, end);
                Some(end)
            }
        }
    }

    fn push_plain(&mut self, line: &Line<'a>, start: usize, end: usize) {
        self.out.push(Event::Scalar(Scalar {
            value: Cow::Borrowed(&line.text[start..end]),
            plain: true,
            at: line.at(start),
        }));
    }

    fn close(&mut self) {
        let (kind, _) = self.open.pop().expect("called with a collection open");
        self.out.push(match kind {
            Block::Mapping => Event::MappingEnd,
            Block::List => Event::SequenceEnd,
        });
    }

    fn finish(mut self) -> Option<Vec<Event<'a>>> {
        if self.awaiting_value || !self.started {
            return None;
        }
        while !self.open.is_empty() {
            self.close();
        }
        self.out.push(Event::End);
        Some(self.out)
    }
}

/// A plain key at `at`: a plain scalar directly followed by `:` and a space or the end
/// of the line.
fn is_key(b: &[u8], at: usize) -> bool {
    if !plain_start(b, at) {
        return false;
    }
    let len = plain_len(b, at);
    len <= MAX_KEY
        && b.get(at + len) == Some(&b':')
        && matches!(b.get(at + len + 1), None | Some(b' '))
}

/// Plain scalars start with a letter, a digit, `_`, `/`, `(`, `~`, or `-` and a digit
/// (a negative number): never with one of YAML's indicators.
fn plain_start(b: &[u8], at: usize) -> bool {
    match b.get(at) {
        Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b'(' | b'~') => true,
        Some(b'-') => b.get(at + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// The length of the plain scalar at `at`, without trailing spaces. It stops at `: `,
/// ` #`, quotes, brackets and commas, and at the first byte that is not printable ASCII
/// (what follows decides whether the line is still in the subset). A `:` goes on only
/// before a letter, digit or `:` (as in IPv6 addresses). The same bytes end a scalar in
/// a block and in a flow mapping: libyaml would read on past some of them in a block,
/// and then the line is left to it.
fn plain_len(b: &[u8], at: usize) -> usize {
    let mut end = at;
    let mut i = at;
    while let Some(&c) = b.get(i) {
        match c {
            b' ' => {}
            b'#' if b[i - 1] == b' ' => break,
            b':' if !b
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b':') =>
            {
                break;
            }
            b'"' | b'\'' | b',' | b'[' | b']' | b'{' | b'}' => break,
            0x21..=0x7e => end = i + 1,
            _ => break,
        }
        i += 1;
    }
    end - at
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// Nothing but spaces and a comment may follow the last node of a line.
fn line_end(b: &[u8], end: usize) -> Option<()> {
    let next = skip_spaces(b, end);
    match b.get(next) {
        None => Some(()),
        Some(b'#') if next > end => Some(()),
        _ => None,
    }
}

/// What this path takes anywhere in a line: YAML's printable set without tabs, line
/// breaks and the BOM (also what libyaml takes inside a quoted scalar, tabs aside).
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
        && c != '\u{2028}'
        && c != '\u{2029}'
}

#[cfg(test)]
mod tests {
    use super::super::Reader;
    use super::*;

    /// libyaml's events for `text`, up to the end or the first error.
    fn libyaml(text: &str) -> Option<Vec<Event<'_>>> {
        let mut reader = Reader::libyaml(text);
        let mut out = Vec::new();
        loop {
            let event = reader.next().ok()?;
            let end = event == Event::End;
            out.push(event);
            if end {
                return Some(out);
            }
        }
    }

    /// Whenever the fast path takes `text`, libyaml must read the same events from it.
    fn agrees(text: &str) -> bool {
        let Some(fast) = events(text) else {
            return false;
        };
        let slow = libyaml(text);
        assert_eq!(
            Some(&fast),
            slow.as_ref(),
            "the fast path and libyaml differ on:\n{text}"
        );
        true
    }

    const INVENTORY: &str = "# a comment\nregions:\n  - name: tbilisi # the capital\n    probe: { interval: 5s }\n    branches:\n      - name: Vake Branch\n        lat: 41.709\n        lon: -44.766\n        devices:\n          - { name: vake-router-1, address: 127.1.1.1, kind: router, labels: { isp: magti, tier: \"1\" }, parents: [] }\n          - { name: 'vake-switch-1', address: fd00::1, kind: switch, labels: {}, parents: [vake-router-1, \"core 2\"] }\n\n          - name: vake-atm-1\n            address: 127.1.1.3\n            kind: atm\n            parents: [ vake-switch-1,'vake-router-1' ]\n            labels:\n              isp: silknet\n              floor: '2'\n      - name: saburtalo\n        parents:\n          - vake-router-1\n        devices:\n          - { name: s-1, address: 127.1.2.1, kind: atm }\n";

    #[test]
    fn an_inventory_in_the_usual_style_takes_the_fast_path_with_libyamls_events() {
        assert!(agrees(INVENTORY));
        let out = tempfile::tempdir().unwrap();
        crate::demo::write(out.path(), 500, None).unwrap();
        let files = crate::config::load::list_files(&out.path().join("inventory")).unwrap();
        assert!(!files.is_empty());
        for file in files {
            assert!(agrees(&std::fs::read_to_string(file).unwrap()));
        }
    }

    #[test]
    fn one_line_flow_lists_of_scalars_take_the_fast_path() {
        for text in [
            "parents: [a, b]\n",
            "parents: []\n",
            "parents: [ ]\n",
            "parents: [ a ,b ]  # two\n",
            "parents: ['a b', \"c\", d e]\n",
            "parents: [fd00::1, -1, x:y]\n",
            "- { name: x, parents: [a, b], labels: {} }\n",
            "a: { b: [], c: [d] }\n",
        ] {
            assert!(agrees(text), "not taken: {text:?}");
        }
    }

    #[test]
    fn maintenance_windows_take_the_fast_path() {
        // Flow mappings, quoted times and plain date-times with colons, block lists of
        // days and one-line flow lists of them.
        let block = "regions:\n  - name: t\n    maintenance:\n      - { start: 2026-12-06T22:00, end: 2026-12-07T02:00, zone: Asia/Tbilisi, reason: \"firmware: r1\" }\n      - { cron: \"0 22 * * 0\", duration: 4h }\n      - from: \"22:00\"\n        to: 02:00\n        days:\n          - sun\n          - mon\n";
        assert!(agrees(block));
        let flow = "regions:\n  - name: t\n    maintenance:\n      - { days: [sun, mon], from: \"22:00\", to: \"02:00\" }\n";
        assert!(agrees(flow));
    }

    #[test]
    fn other_yaml_is_left_to_libyaml() {
        for text in [
            "a: &x 1\nb: *x\n",        // anchors and aliases
            "a: !!str 1\n",            // tags
            "a: |\n  text\n",          // block scalars
            "a: [[1], 2]\n",           // flow lists of lists
            "a: [{ b: 1 }]\n",         // flow lists of mappings
            "a: [b: 1]\n",             // a pair in a flow list
            "a: [1, ]\n",              // a trailing comma in a flow list
            "a: [1, 2\n",              // an unclosed flow list
            "- [1, 2]\n",              // a flow list as a list item
            "a:\n- 1\n",               // an indentless list
            "a:\nb: 1\n",              // an empty value
            "a: \"x\\ty\"\n",          // escapes
            "a: plain\n  continued\n", // a multi-line scalar
            "a:\tb\n",                 // tabs
            "---\na: 1\n",             // document markers
            "a: { b: 1, }\n",          // a trailing comma
            "a: { b: { c: 1 }\n",      // unclosed
            "a: 1\n b: 2\n",           // bad indentation
            "a: ::1\n",                // a scalar that starts with ':'
            "a: b # c\u{2028}d: e\n",  // a line break libyaml knows, in a comment
            "# \u{85}x\na: 1\n",       // NEL in a comment
            "a: 1 # \u{2029}\n",       // PS in a comment
            "a: 1 # \u{1}\n",          // a control character in a comment
            "\u{feff}a: 1\n",          // a BOM
            "",                        // nothing
        ] {
            assert_eq!(events(text), None, "{text:?}");
        }
    }

    /// Every kind of character that YAML, libyaml or this path treats apart.
    const CLASSES: &[(&str, &[char])] = &[
        (
            "ASCII control",
            &[
                '\u{0}', '\u{1}', '\u{8}', '\u{b}', '\u{c}', '\u{1b}', '\u{7f}',
            ],
        ),
        ("tab", &['\t']),
        ("CR", &['\r']),
        ("LF", &['\n']),
        ("NEL", &['\u{85}']),
        ("LS", &['\u{2028}']),
        ("PS", &['\u{2029}']),
        ("BOM", &['\u{feff}']),
        ("C1 control", &['\u{80}', '\u{9f}']),
        (
            "other non-ASCII",
            &[
                '\u{a0}',
                '\u{e9}',
                '\u{436}',
                '\u{e000}',
                '\u{fffd}',
                '\u{fffe}',
                '\u{1f600}',
            ],
        ),
        ("quote", &['"', '\'']),
        (
            "indicator",
            &[
                '#', ':', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '%', '@', '`', '-',
                '?', '~',
            ],
        ),
        ("space", &[' ']),
        ("plain", &['a', 'Z', '0', '_', '.', '/', '(', '=']),
    ];

    /// Where in a line an edit lands.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Position {
        Indentation,
        Key,
        Value,
        Comment,
    }

    /// The (character) offsets of `text` by position: the leading spaces of each line,
    /// its first key, what follows the key's `: ` up to a comment, and a comment's text.
    fn positions(text: &str) -> Vec<(Position, usize)> {
        let mut out = Vec::new();
        let mut start = 0;
        for line in text.split('\n') {
            let indent = line.len() - line.trim_start_matches(' ').len();
            out.extend((start..=start + indent).map(|i| (Position::Indentation, i)));
            let comment = line.find('#');
            let code = &line[..comment.unwrap_or(line.len())];
            let key = indent + usize::from(code[indent..].starts_with("- ")) * 2;
            if let Some(colon) = code[key..].find(':') {
                out.extend((start + key..=start + key + colon).map(|i| (Position::Key, i)));
                let value = key + colon + 1;
                out.extend((start + value..start + code.len()).map(|i| (Position::Value, i)));
            }
            if let Some(c) = comment {
                out.extend((start + c + 1..=start + line.len()).map(|i| (Position::Comment, i)));
            }
            start += line.len() + 1;
        }
        out
    }

    /// Each character of every class, inserted at and written over several places of
    /// each position: whatever the fast path still takes, libyaml reads the same way.
    #[test]
    fn every_character_class_in_every_position_reads_as_libyaml_reads_it() {
        let base: Vec<char> = INVENTORY.chars().collect();
        let all = positions(INVENTORY);
        let mut taken_plain = 0;
        for (class, chars) in CLASSES {
            for position in [
                Position::Indentation,
                Position::Key,
                Position::Value,
                Position::Comment,
            ] {
                let at: Vec<usize> = all
                    .iter()
                    .filter(|(p, _)| *p == position)
                    .map(|(_, i)| *i)
                    .collect();
                assert!(at.len() >= 8, "{position:?}: {} places", at.len());
                for &c in *chars {
                    for k in 0..8 {
                        let i = at[k * at.len() / 8];
                        let mut inserted = base.clone();
                        inserted.insert(i, c);
                        let mut replaced = base.clone();
                        if i < replaced.len() && replaced[i] != '\n' {
                            replaced[i] = c;
                        }
                        for text in [inserted, replaced] {
                            let text: String = text.into_iter().collect();
                            let took = agrees(&text);
                            if *class == "plain" && position != Position::Indentation {
                                taken_plain += usize::from(took);
                            }
                            // The characters that break lines or that libyaml refuses
                            // are never taken here, wherever they stand.
                            if matches!(
                                *class,
                                "ASCII control"
                                    | "tab"
                                    | "CR"
                                    | "NEL"
                                    | "LS"
                                    | "PS"
                                    | "BOM"
                                    | "C1 control"
                            ) {
                                assert!(!took, "{class} {c:?} at {position:?} taken:\n{text}");
                            }
                        }
                    }
                }
            }
        }
        // Harmless edits stay on the fast path, so the comparison means something.
        assert!(
            taken_plain > 100,
            "only {taken_plain} plain edits took the fast path"
        );
    }

    /// Edits of an inventory, one character at a time (deterministic): whatever the fast
    /// path still takes, libyaml must read the same way.
    #[test]
    fn generated_edits_never_make_the_two_disagree() {
        let palette: Vec<char> = CLASSES
            .iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        let base: Vec<char> = INVENTORY.chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut taken, rounds) = (0, 20_000);
        for _ in 0..rounds {
            let mut text = base.clone();
            for _ in 0..1 + random(3) {
                let at = random(text.len());
                match random(3) {
                    0 => text[at] = palette[random(palette.len())],
                    1 => text.insert(at, palette[random(palette.len())]),
                    _ => {
                        text.remove(at);
                    }
                }
            }
            let text: String = text.into_iter().collect();
            taken += usize::from(agrees(&text));
        }
        // Enough edits stay in the subset for the comparison to mean something.
        assert!(
            taken > rounds / 10,
            "only {taken} of {rounds} edits took the fast path"
        );
    }
}
